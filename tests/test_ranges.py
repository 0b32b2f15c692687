"""Valid ranges: a value outside its input's declared range is null with an ``out_of_range``
reason suggesting the likely mistake, on scalars and on arrays alike, for every KPI using it."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kpiforge import Engine

KPIS = """\
kpis:
  - id: margin_value
    name: Margin value
    description: Revenue times margin.
    formula: revenue * margin
    unit: currency
    direction: higher_is_better
    inputs:
      revenue: {description: Revenue., unit: currency, range: [0, null]}
      margin: {description: Margin as a ratio., unit: ratio, range: [0, 1]}
  - id: margin_share
    name: Margin share
    description: The margin as a percent.
    formula: margin * 100
    unit: percent
    direction: higher_is_better
    inputs:
      margin: {description: Margin as a ratio., unit: ratio, range: [0, 1]}
  - id: share_points
    name: Share points
    description: A percent input.
    formula: share / 100
    unit: ratio
    direction: higher_is_better
    inputs:
      share: {description: A share in percent., unit: percent, range: [0, 100]}
  - id: per_order
    name: Per order
    description: Revenue per order.
    formula: revenue / orders
    unit: currency
    direction: higher_is_better
    inputs:
      revenue: {description: Revenue., unit: currency, range: [0, null]}
      orders: {description: Orders., unit: count, range: [0, null]}
  - id: position
    name: Position
    description: A position, 1 at best.
    formula: rank
    unit: score
    direction: lower_is_better
    inputs:
      rank: {description: Rank., unit: score, range: [1, 100]}
"""


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    path = tmp_path_factory.mktemp("ranges") / "kpis.yaml"
    path.write_text(KPIS)
    return Engine.load(path)


CASES = [
    # (kpi, inputs, value, reason code, reason text)
    ("margin_share", {"margin": 50}, None, "out_of_range",
     "margin = 50 is outside [0, 1]: a percent given as a ratio?"),
    ("margin_share", {"margin": 100}, None, "out_of_range",
     "margin = 100 is outside [0, 1]: a percent given as a ratio?"),
    ("margin_share", {"margin": 1.5}, None, "out_of_range",
     "margin = 1.5 is outside [0, 1]: a percent given as a ratio?"),
    ("margin_share", {"margin": 250}, None, "out_of_range", "margin = 250 is outside [0, 1]"),
    ("margin_share", {"margin": -0.2}, None, "out_of_range", "margin = -0.2 is outside [0, 1]"),
    ("margin_share", {"margin": 1}, 100.0, None, None),  # bounds are valid
    ("margin_share", {"margin": 0}, 0.0, None, None),
    ("share_points", {"share": 0.5}, 0.005, None, None),  # a ratio-looking percent is valid
    ("share_points", {"share": 120}, None, "out_of_range", "share = 120 is outside [0, 100]"),
    ("per_order", {"revenue": 100, "orders": -3}, None, "out_of_range",
     "orders = -3 is outside [0, none]: a negative count?"),
    ("per_order", {"revenue": -100, "orders": 3}, None, "out_of_range",
     "revenue = -100 is outside [0, none]: a negative amount?"),
    ("position", {"rank": 0}, None, "out_of_range", "rank = 0 is outside [1, 100]"),
    ("position", {"rank": 1}, 1.0, None, None),
    # masked input: every KPI using it is null, not only the first
    ("margin_value", {"revenue": 100, "margin": 50}, None, "out_of_range",
     "margin = 50 is outside [0, 1]: a percent given as a ratio?"),
    # a missing input stays missing
    ("margin_value", {"revenue": 100, "margin": None}, None, "missing_input", "missing input: margin"),
]


def _scalar(engine, kpi, inputs):
    return engine.evaluate(inputs, [kpi])[kpi]


def _array(engine, kpi, inputs):
    """The same inputs as the middle slice of three, next to valid slices."""
    arrays = {n: np.array([1.0, math.nan if v is None else v, 1.0]) for n, v in inputs.items()}
    result = engine.evaluate(arrays, [kpi])[kpi]
    return result.value[1], result.reason[1], result.value[0]


@pytest.mark.parametrize("kpi, inputs, value, code, text", CASES)
def test_out_of_range_values_are_null_with_a_suggestion(engine, kpi, inputs, value, code, text):
    result = _scalar(engine, kpi, inputs)
    assert result.value == (pytest.approx(value) if value is not None else None)
    assert (getattr(result.reason, "code", None), result.reason) == (code, text)
    if code == "out_of_range":
        assert result.reason.subject == text.split(" = ")[0]


@pytest.mark.parametrize("kpi, inputs, value, code, text", CASES)
def test_arrays_agree_with_scalars(engine, kpi, inputs, value, code, text):
    scalar = _scalar(engine, kpi, inputs)
    array_value, array_reason, neighbour = _array(engine, kpi, inputs)
    if scalar.value is None:
        assert math.isnan(array_value)
    else:
        assert array_value == pytest.approx(scalar.value)
    assert array_reason == scalar.reason
    assert getattr(array_reason, "code", None) == getattr(scalar.reason, "code", None)
    assert not math.isnan(neighbour)  # only the bad slice is masked


def test_all_kpis_using_a_masked_input_are_null(engine):
    results = engine.evaluate({"revenue": 100.0, "margin": 50.0})
    assert {k: r.reason.code for k, r in results.items() if r.reason} == {
        "margin_value": "out_of_range", "margin_share": "out_of_range"}
    assert results["margin_value"].value is None


def test_distinct_bad_values_get_their_own_text(engine):
    result = engine.evaluate({"margin": [50.0, 0.5, 250.0, 50.0]}, ["margin_share"])["margin_share"]
    assert list(result.reason) == ["margin = 50 is outside [0, 1]: a percent given as a ratio?", None,
                                   "margin = 250 is outside [0, 1]",
                                   "margin = 50 is outside [0, 1]: a percent given as a ratio?"]
    assert result.value[1] == 50.0
    # one table entry per distinct bad value, however many slices share it
    assert sum(getattr(r, "code", None) == "out_of_range" for r in result.codes.table) == 2


def test_the_callers_array_is_not_changed(engine):
    margin = np.array([50.0, 0.5])
    engine.evaluate({"margin": margin}, ["margin_share"])
    assert margin.tolist() == [50.0, 0.5]


def test_the_guides_gross_margin_of_50_percent_gives_a_null_ltv():
    """The catalog's LTV: 100 EUR per customer, the guide's "50 %" typed as 50, 10 % churn."""
    engine = Engine.load()
    inputs = {"revenue_per_customer": 100.0, "gross_margin": 50.0, "customers_lost": 10.0,
              "customers_start": 100.0}
    ltv = engine.evaluate(inputs, ["ltv"])["ltv"]
    assert ltv.value is None and ltv.reason.code == "out_of_range"
    assert ltv.reason == "gross_margin = 50 is outside [0, 1]: a percent given as a ratio?"
    fixed = engine.evaluate({**inputs, "gross_margin": 0.5}, ["ltv"])["ltv"]
    assert fixed.value == pytest.approx(500.0)


def test_the_catalog_declares_a_range_for_every_input():
    engine = Engine.load()
    missing = sorted(f"{k}.{n}" for k, d in engine.definitions.items()
                     for n, spec in d.inputs.items() if spec.range is None)
    assert missing == []
    assert engine["ltv"].inputs["gross_margin"].range == (0.0, 1.0)


@settings(max_examples=200, deadline=None)
@given(rows=st.lists(st.tuples(
    st.one_of(st.none(), st.floats(-10, 1e6, allow_nan=False)),
    st.one_of(st.none(), st.floats(-2, 120, allow_nan=False), st.sampled_from([0.0, 1.0, 50.0]))),
    min_size=1, max_size=8))
def test_property_scalar_and_array_agree(engine, rows):
    arrays = {"revenue": np.array([math.nan if r is None else r for r, _ in rows]),
              "margin": np.array([math.nan if m is None else m for _, m in rows])}
    vector = engine.evaluate(arrays, ["margin_value"])["margin_value"]
    for i, (revenue, margin) in enumerate(rows):
        one = engine.evaluate({"revenue": revenue, "margin": margin}, ["margin_value"])["margin_value"]
        if one.value is None:
            assert math.isnan(vector.value[i])
        else:
            assert vector.value[i] == one.value
        assert vector.reason[i] == one.reason
        assert getattr(vector.reason[i], "code", None) == getattr(one.reason, "code", None)


def test_a_run_reports_out_of_range_per_slice():
    """Through a project: the slice with a negative cost is null, the other is computed."""
    from kpiforge import Project

    rows = [{"ts": "2026-10-05", "channel": "search", "cost": 500.0, "clicks": 200.0},
            {"ts": "2026-10-05", "channel": "social", "cost": -50.0, "clicks": 10.0}]
    project = Project.from_dict({"sources": {"ads": {
        "type": "records", "time": "ts", "data": rows, "dimensions": ["channel"],
        "inputs": {"cost": {"column": "cost", "agg": "sum"},
                   "clicks": {"column": "clicks", "agg": "sum"}}}}})
    records = {r["slice"]["channel"]: r for r in
               project.run(period="2026-10", by="channel", kpis=["cpc"]).to_records()}
    assert (records["search"]["value"], records["search"]["reason_code"]) == (2.5, None)
    assert (records["social"]["value"], records["social"]["reason_code"]) == (None, "out_of_range")
    assert records["social"]["reason"] == "cost = -50 is outside [0, none]: a negative amount?"


@given(st.lists(st.one_of(st.floats(allow_nan=True, allow_infinity=False),
                          st.sampled_from([math.nan, 0.0, -0.0, 1.0, -1e-300, 100.0])),
                max_size=40),
       st.sampled_from([(0.0, None), (None, 1.0), (0.0, 1.0), (-5.0, 5.0)]))
def test_array_range_mask_is_the_values_outside_the_bounds(items, bounds):
    # apply_ranges tells "nothing outside" by min/max before building a mask: it must mask
    # exactly the values a plain comparison finds, NaN never among them
    from kpiforge._ranges import apply_ranges

    low, high = bounds
    array = np.array(items, dtype=np.float64)
    expected = np.zeros(len(array), dtype=bool)
    if low is not None:
        expected |= array < low
    if high is not None:
        expected |= array > high
    values = {"x": array}
    outside = apply_ranges(values, {"x": (low, high, None)})
    if not expected.any():
        assert outside == {} and values["x"] is array
    else:
        mask, original = outside["x"]
        assert mask.tolist() == expected.tolist() and original is array
        assert np.isnan(values["x"][expected]).all()
