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
