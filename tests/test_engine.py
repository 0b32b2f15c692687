"""Engine.evaluate: scalars and arrays, dependency order, null propagation, thread safety."""

import json
import math
import threading
from pathlib import Path

import numpy as np
import pytest

from kpiforge import Engine, InputError, Status, UnknownKpiError

VALID = Path(__file__).parent / "fixtures" / "valid"


@pytest.fixture(scope="module")
def engine():
    return Engine.load(VALID)


def test_scalar_evaluation_gives_plain_floats(engine):
    results = engine.evaluate({"clicks": 120, "impressions": 4000}, kpis=["ctr"])
    ctr = results["ctr"]
    assert ctr.value == pytest.approx(3.0) and type(ctr.value) is float
    assert ctr.status is Status.GOOD and ctr.unit == "percent" and ctr.reason is None
    json.dumps(results.to_records())  # plain numbers, no numpy scalars


@pytest.mark.parametrize("inputs, kpi, reason", [
    ({"clicks": 5, "impressions": 0}, "ctr", "division by zero"),
    ({"clicks": 5}, "ctr", "missing input: impressions"),
    ({"clicks": 5, "impressions": None}, "ctr", "missing input: impressions"),
    ({"clicks": 5, "impressions": math.nan}, "ctr", "missing input: impressions"),
    ({"cost": 10, "clicks": 0}, "clicks_per_euro", "depends on cpc: division by zero"),
])
def test_null_with_reason_never_a_number(engine, inputs, kpi, reason):
    result = engine.evaluate(inputs, kpis=[kpi])[kpi]
    assert result.value is None
    assert result.status is Status.UNKNOWN
    assert result.reason == reason


def test_asking_for_a_kpi_evaluates_its_dependencies_in_order(engine):
    results = engine.evaluate({"clicks": 50, "impressions": 1000, "cost": 100}, kpis=["doubled"])
    assert list(results) == engine.plan(["doubled"])
    assert results["cpc"].value == pytest.approx(2.0)
    assert results["clicks_per_euro"].value == pytest.approx(0.5)
    # safe_div(ctr / 100, 0, -1) is -1: the default, not a division error
    assert results["doubled"].value == pytest.approx(0.5 * 2 - 1)


def test_other_kpis_still_computed_when_one_fails(engine):
    results = engine.evaluate({"clicks": 0, "impressions": 1000, "cost": 100})
    assert results["ctr"].value == 0.0
    assert results["cpc"].value is None and results["cpc"].reason == "division by zero"


def test_without_kpis_only_computable_ones_are_evaluated(engine):
    results = engine.evaluate({"clicks": 10, "impressions": 100})
    assert list(results) == ["ctr"]


def test_arrays_are_evaluated_per_slice_in_one_call(engine):
    results = engine.evaluate(
        {"clicks": [30, 5, 90, 10], "impressions": [1000, 0, 1000, np.nan], "cost": [60, 10, 0, 5]},
        kpis=["ctr", "clicks_per_euro"])
    ctr = results["ctr"]
    np.testing.assert_allclose(ctr.value[[0, 2]], [3.0, 9.0])
    assert np.isnan(ctr.value[1]) and np.isnan(ctr.value[3])
    assert list(ctr.status) == [Status.GOOD, Status.UNKNOWN, Status.GOOD, Status.UNKNOWN]
    assert list(ctr.reason) == [None, "division by zero", None, "missing input: impressions"]
    per_euro = results["clicks_per_euro"]
    np.testing.assert_allclose(per_euro.value[[0, 1, 3]], [0.5, 0.5, 2.0])
    assert per_euro.reason[2] == "division by zero"  # cpc is 0 there: a value, not a failure
    records = results.to_records()
    assert len(records) == 12  # cpc is evaluated too: clicks_per_euro depends on it
    assert [r for r in records if r["kpi"] == "ctr"][1] == {
        "kpi": "ctr", "index": 1, "value": None, "unit": "percent", "status": "unknown",
        "reason": "division by zero", "reason_code": "division_by_zero"}
    json.dumps(records)


def test_scalars_broadcast_against_arrays(engine):
    result = engine.evaluate({"clicks": [10, 20], "impressions": 1000}, kpis=["ctr"])["ctr"]
    np.testing.assert_allclose(result.value, [1.0, 2.0])


@pytest.mark.parametrize("inputs, message", [
    ({"clicks": [1, 2], "impressions": [1, 2, 3]}, "has 3 values but other inputs have 2"),
    ({"clicks": "12", "impressions": 3}, "expected a number, got text"),
    ({"clicks": [[1], [2]], "impressions": 3}, "expected a flat list"),
    ({"clicks": ["a"], "impressions": 3}, "expected a number or a list of numbers"),
])
def test_bad_inputs_are_input_errors(engine, inputs, message):
    with pytest.raises(InputError, match=message):
        engine.evaluate(inputs, kpis=["ctr"])


def test_unknown_kpi_suggests_a_name(engine):
    with pytest.raises(UnknownKpiError, match="did you mean 'ctr'"):
        engine.evaluate({}, kpis=["ctrr"])


def test_engine_is_safe_to_share_between_threads(engine):
    errors = []

    def worker(seed: int) -> None:
        rng = np.random.default_rng(seed)
        for _ in range(200):
            clicks, impressions = float(rng.integers(0, 100)), float(rng.integers(1, 1000))
            value = engine.evaluate({"clicks": clicks, "impressions": impressions}, kpis=["ctr"])["ctr"].value
            if value != pytest.approx(clicks / impressions * 100):
                errors.append((clicks, impressions, value))

    threads = [threading.Thread(target=worker, args=(seed,)) for seed in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors


def test_a_missing_input_never_reuses_a_previous_value(engine):
    engine.evaluate({"clicks": 10, "impressions": 100}, kpis=["ctr"])
    assert engine.evaluate({"clicks": 10}, kpis=["ctr"])["ctr"].value is None


def test_engine_is_immutable(engine):
    with pytest.raises(AttributeError):
        engine._catalog = None  # type: ignore[misc]
    with pytest.raises(AttributeError):
        engine.extra = 1  # type: ignore[attr-defined]
