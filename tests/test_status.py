"""Direction + thresholds -> status, scalar and vectorised, and the threshold-order check."""

import math

import numpy as np
import pytest

from kpiforge import Direction, Status, Thresholds
from kpiforge._status import classify, classify_array, threshold_order_problem

H, L, T = Direction.HIGHER_IS_BETTER, Direction.LOWER_IS_BETTER, Direction.TARGET
CTR = Thresholds(good=3, warning=1.5, critical=0.5)
BOUNCE = Thresholds(good=40, warning=55, critical=70)
FREQ = Thresholds(warning=1.5, critical=3)

CASES = [
    # value, direction, thresholds, target, tolerance, expected
    (3.0, H, CTR, None, None, Status.GOOD),        # good is inclusive
    (2.99, H, CTR, None, None, Status.OK),
    (1.5, H, CTR, None, None, Status.OK),          # warning fires strictly below
    (1.49, H, CTR, None, None, Status.WARNING),
    (0.5, H, CTR, None, None, Status.WARNING),
    (0.49, H, CTR, None, None, Status.CRITICAL),
    (None, H, CTR, None, None, Status.UNKNOWN),
    (math.nan, H, CTR, None, None, Status.UNKNOWN),
    (math.inf, H, CTR, None, None, Status.UNKNOWN),
    (40.0, L, BOUNCE, None, None, Status.GOOD),
    (40.1, L, BOUNCE, None, None, Status.OK),
    (55.0, L, BOUNCE, None, None, Status.OK),
    (55.1, L, BOUNCE, None, None, Status.WARNING),
    (70.1, L, BOUNCE, None, None, Status.CRITICAL),
    (3.0, T, FREQ, 3.0, 0.5, Status.GOOD),
    (3.5, T, FREQ, 3.0, 0.5, Status.GOOD),
    (2.4, T, FREQ, 3.0, 0.5, Status.OK),
    (4.6, T, FREQ, 3.0, 0.5, Status.WARNING),
    (1.4, T, FREQ, 3.0, 0.5, Status.WARNING),
    (6.1, T, FREQ, 3.0, 0.5, Status.CRITICAL),
    (550 / 1000 * 100, L, BOUNCE, None, None, Status.OK),  # 55.00000000000001 is 55
    (55.000001, L, BOUNCE, None, None, Status.WARNING),
    (12.0, H, Thresholds(), None, None, Status.OK),  # no thresholds: computed is ok
    (-5.0, H, Thresholds(good=0.0), None, None, Status.OK),
]


@pytest.mark.parametrize("value, direction, thresholds, target, tolerance, expected", CASES)
def test_classify(value, direction, thresholds, target, tolerance, expected):
    assert classify(value, direction, thresholds, target, tolerance) is expected


@pytest.mark.parametrize("direction, thresholds, target, tolerance",
                         sorted({(c[1], c[2], c[3], c[4]) for c in CASES}, key=repr))
def test_classify_array_matches_scalar(direction, thresholds, target, tolerance):
    values = [c[0] for c in CASES]
    array = np.array([math.nan if v is None else v for v in values], dtype=float)
    vectorised = classify_array(array, direction, thresholds, target, tolerance)
    assert list(vectorised) == [classify(v, direction, thresholds, target, tolerance) for v in values]


@pytest.mark.parametrize("direction, thresholds, problem", [
    (H, Thresholds(good=3, warning=5), "warning (5) must be <= good (3)"),
    (H, Thresholds(warning=1, critical=2), "warning (1)"),
    (L, Thresholds(good=50, warning=40), "warning (40) must be >= good (50)"),
    (L, Thresholds(good=10, critical=5), "must be >="),
    (T, Thresholds(warning=-1), "cannot be negative"),
    (T, Thresholds(warning=3, critical=2), "farther from the target"),
    (H, CTR, None),
    (L, BOUNCE, None),
    (T, FREQ, None),
    (H, Thresholds(good=3, warning=3), None),  # equal bounds are allowed
])
def test_threshold_order(direction, thresholds, problem):
    found = threshold_order_problem(direction, thresholds)
    if problem is None:
        assert found is None
    else:
        assert found is not None and problem in found


def _near(bounds, rng):
    """Values at, around and within the snapping tolerance of each bound, and random ones."""
    out = [math.nan, math.inf, -math.inf, 0.0, -0.0]
    for b in bounds:
        tol = 1e-9 * max(1.0, abs(b))
        for x in (b, b - tol, b + tol, b - 2 * tol, b + 2 * tol, b - tol / 2, b + tol / 2):
            out += [x, float(np.nextafter(x, math.inf)), float(np.nextafter(x, -math.inf))]
    return np.concatenate([np.array(out), rng.uniform(-300, 300, 300)])


@pytest.mark.parametrize("seed", range(40))
def test_classify_codes_is_the_written_out_rules(seed):
    # classify_codes turns the rules into a step function of the value: it must agree with
    # the rules run as written on every value, near the thresholds above all, for any
    # thresholds (also contradictory ones) and both with and without the finite promise
    from kpiforge._status import _reference_codes, classify_codes

    rng = np.random.default_rng(seed)
    pick = [None, 0.0, 1.0, -3.0, 55.0, 550 / 1000 * 100, 1e6, 0.1 + 0.2]
    for _ in range(25):
        g, w, c = (pick[i] if rng.random() < 0.5 else round(float(rng.uniform(-200, 200)), 2)
                   for i in rng.integers(0, len(pick), 3))
        th = Thresholds(g, w, c)
        direction = [H, L, T][int(rng.integers(0, 3))]
        target = None if rng.random() < 0.2 else float(rng.choice([0.0, 3.0, 50.0]))
        tol = None if rng.random() < 0.5 else float(rng.choice([0.0, 0.5, 2.0]))
        bounds = [b for b in (g, w, c, tol) if b is not None]
        values = _near(bounds + [(target or 0.0) + b for b in bounds]
                       + [(target or 0.0) - b for b in bounds], rng)
        expected = _reference_codes(values, direction, th, target, tol)
        assert classify_codes(values, direction, th, target, tol).tolist() == expected.tolist()
        finite = values[np.isfinite(values)]
        fast = classify_codes(finite, direction, th, target, tol, all_finite=True)
        assert fast.tolist() == _reference_codes(finite, direction, th, target, tol).tolist()


@pytest.mark.parametrize("direction, thresholds", [
    (Direction.HIGHER_IS_BETTER, Thresholds(good=1.0, warning=1.0 - 5e-10)),
    (Direction.LOWER_IS_BETTER, Thresholds(good=1.0, warning=1.0 + 5e-10, critical=1.0 + 9e-10)),
])
def test_a_value_close_to_two_bounds_gets_one_status_on_scalars_and_arrays(direction, thresholds):
    # bounds within the rounding tolerance of each other: the value snaps to one of them, the
    # same one on both paths
    values = np.array([1.0 - 2.5e-10, 1.0, 1.0 + 2.5e-10, 1.0 + 7e-10])
    scalars = [classify(float(v), direction, thresholds) for v in values]
    assert list(classify_array(values, direction, thresholds)) == scalars
