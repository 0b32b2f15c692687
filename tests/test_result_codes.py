"""Array results keep statuses and reasons as integer codes; what callers read is unchanged."""

import math

import numpy as np

from kpiforge import Engine, Result, Status
from kpiforge._reasons import Reason


def _inputs(engine, n, seed):
    rng = np.random.default_rng(seed)
    names = sorted({name for d in engine.definitions.values() for name in d.inputs})
    data = {}
    for name in names:
        column = rng.uniform(0.0, 100.0, n)
        pick = rng.random(n)
        column[pick < 0.15] = np.nan          # missing input
        column[(pick >= 0.15) & (pick < 0.3)] = 0.0   # division by zero, churn 0 -> ltv null
        column[(pick >= 0.3) & (pick < 0.35)] = np.inf  # named as not finite
        data[name] = column
    return data


def test_array_results_read_as_slice_by_slice_scalar_results():
    engine = Engine.load()
    n = 120
    data = _inputs(engine, n, seed=3)
    results = engine.evaluate(data)
    for i in range(n):
        scalar = engine.evaluate({k: (None if math.isnan(v[i]) else float(v[i]))
                                  for k, v in data.items()})
        for kpi, one in scalar.items():
            arr = results[kpi]
            value = arr.value[i]
            assert (one.value is None and math.isnan(value)) or one.value == value, (kpi, i)
            assert arr.status[i] is one.status, (kpi, i)
            assert arr.reason[i] == one.reason, (kpi, i)
            assert getattr(arr.reason[i], "code", None) == getattr(one.reason, "code", None)


def test_status_and_reason_are_object_arrays_built_once():
    engine = Engine.load()
    data = _inputs(engine, 50, seed=4)
    result = engine.evaluate(data)["ltv_cac_ratio"]
    assert result.status.dtype == object and len(result.status) == 50
    assert all(isinstance(s, Status) for s in result.status)
    assert result.status is result.status and result.reason is result.reason
    reasons = [r for r in result.reason if r is not None]
    assert reasons and all(isinstance(r, Reason) for r in reasons)
    assert {r.code for r in reasons} <= {"depends_on", "missing_input", "input_not_finite",
                                         "division_by_zero", "not_finite"}
    assert any(r.code == "depends_on" and r.cause is not None for r in reasons)


def test_no_null_slice_gives_a_reason_array_of_none():
    engine = Engine.load()
    data = {name: np.full(10, 7.0) + np.arange(10) for name in
            engine.required_inputs("ctr")}
    result = engine.evaluate(data, ["ctr"])["ctr"]
    assert result.reason.dtype == object and list(result.reason) == [None] * 10
    assert result.records()[0]["reason"] is None


def test_records_from_the_codes_are_the_records_from_the_object_arrays():
    # Result.records() reads an engine result's codes; a Result given the object arrays (no
    # codes) builds the same records, slice by slice, with nulls, reasons and their codes
    engine = Engine.load()
    results = engine.evaluate(_inputs(engine, 80, seed=5))
    seen = set()
    for kpi, result in results.items():
        assert result.codes is not None
        plain = Result(kpi, result.value, result.unit, result.status, result.reason)
        fresh = engine.evaluate(_inputs(engine, 80, seed=5))[kpi]  # status/reason never read
        assert fresh.records() == plain.records(), kpi
        seen.update((r["status"], r["reason_code"]) for r in fresh.records())
    assert {s for s, _ in seen} >= {"good", "warning", "critical", "unknown"}
    assert {c for _, c in seen} >= {None, "missing_input", "depends_on"}
