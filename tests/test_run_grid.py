"""The run's grid, laid out with numpy, agrees with a plain row-by-row layout (property test),
and records made from columns equal records made by the class.

The reference below is the layout as it was written before it was vectorised: slices are the
dimension tuples seen in the current periods, sorted with None last per dimension, and each
frame row is put at ``period * n_slices + slice`` by dict look-ups.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kpiforge._periods import periods_between
from kpiforge._run_grid import lay_out_grid
from kpiforge._run_plan import RunPlan, SourcePlan
from kpiforge.errors import SourceError
from kpiforge.sources import SourceFrame

PERIODS = periods_between(date(2026, 9, 28), date(2026, 10, 4), "day")  # 7 days
DIMS = ("channel", "campaign")


def reference(plan: RunPlan, frames: dict[str, SourceFrame], dims: tuple[str, ...],
              current: list[Any], all_periods: list[Any]) -> tuple[Any, dict[str, Any], dict[str, Any]]:
    labels = {p.label for p in current}
    slices: list[tuple[Any, ...]] = []
    for name in plan.sources:
        frame = frames.get(name)
        if frame is None:
            continue
        for i, label in enumerate(frame.periods.tolist()):
            key = tuple(frame.dims[d][i] for d in dims)
            if label in labels and key not in slices:
                slices.append(key)
    if not dims:
        slices = [()]
    elif not slices:
        slices = [tuple(None for _ in dims)]
    slices.sort(key=lambda s: tuple((v is None, "" if v is None else v) for v in s))
    period_index = {p.label: i for i, p in enumerate(all_periods)}
    n_rows = len(all_periods) * len(slices)
    arrays, present = {}, {}
    for name, source in plan.sources.items():
        present[name] = np.zeros(n_rows, dtype=bool)
        for inp in source.inputs:
            arrays[inp] = np.full(n_rows, np.nan)
        frame = frames.get(name)
        if frame is None:
            continue
        seen = set()
        for i, label in enumerate(frame.periods.tolist()):
            key = tuple(frame.dims[d][i] for d in dims)
            if label not in period_index or key not in slices:
                continue
            row = period_index[label] * len(slices) + slices.index(key)
            if row in seen:
                raise SourceError(f"period {label} appears twice for the same slice")
            seen.add(row)
            present[name][row] = True
            for inp in source.inputs:
                arrays[inp][row] = frame.inputs[inp][i]
    return tuple(slices), arrays, present


def _period_and_slice(row: tuple[Any, ...]) -> tuple[Any, ...]:
    return row[:-1]


def frame_rows(draw: Any, dims: tuple[str, ...], unique: bool) -> SourceFrame:
    value = st.sampled_from(["a", "b", "c", "Z", "", None])
    # rows of periods outside the grid too (the day before it), as a source may return
    labels = st.sampled_from([p.label for p in PERIODS] + ["2026-09-27"])
    rows = draw(st.lists(st.tuples(labels, *(value for _ in dims),
                                   st.floats(allow_nan=True, allow_infinity=False)),
                         max_size=30, unique_by=_period_and_slice if unique else None))
    return SourceFrame(np.array([r[0] for r in rows], dtype=object),
                       {d: np.array([r[1 + k] for r in rows], dtype=object) for k, d in enumerate(dims)},
                       {"x": np.array([r[-1] for r in rows], dtype=np.float64)})


@st.composite
def cases(draw: Any, unique: bool = True) -> tuple[Any, ...]:
    dims = DIMS[:draw(st.integers(0, 2))]
    frames = {"one": frame_rows(draw, dims, unique)}
    sources = {"one": SourcePlan("one", ("x",), ())}
    if draw(st.booleans()):
        frames["two"] = frame_rows(draw, dims, unique)
        frames["two"] = SourceFrame(frames["two"].periods, frames["two"].dims,
                                    {"y": frames["two"].inputs["x"]})
        sources["two"] = SourcePlan("two", ("y",), ())
    if draw(st.booleans()):
        sources["unfetched"] = SourcePlan("unfetched", ("z",), dims)
    first = draw(st.integers(0, 6))
    current = PERIODS[first:draw(st.integers(first + 1, 7))]
    plan = RunPlan(("k",), {}, {}, sources)
    return plan, frames, dims, current, PERIODS


@settings(max_examples=300, deadline=None)
@given(cases())
def test_the_numpy_layout_agrees_with_a_row_by_row_one(case):
    plan, frames, dims, current, all_periods = case
    grid = lay_out_grid(plan, frames, dims, current, all_periods)
    slices, arrays, present = reference(plan, frames, dims, current, all_periods)
    assert grid.slices == slices
    assert grid.n_rows == len(all_periods) * len(slices)
    assert grid.period_index == {p.label: i for i, p in enumerate(all_periods)}
    assert set(grid.arrays) == set(arrays)
    for name, values in arrays.items():
        np.testing.assert_array_equal(grid.arrays[name], values)
    for name, rows in present.items():
        np.testing.assert_array_equal(grid.present[name], rows)


@settings(max_examples=200, deadline=None)
@given(cases(unique=False))
def test_a_period_and_slice_given_twice_is_refused_alike(case):
    plan, frames, dims, current, all_periods = case
    try:
        expected = reference(plan, frames, dims, current, all_periods)
    except SourceError as exc:
        with pytest.raises(SourceError) as raised:
            lay_out_grid(plan, frames, dims, current, all_periods)
        assert str(raised.value) == str(exc)
    else:
        assert lay_out_grid(plan, frames, dims, current, all_periods).slices == expected[0]


# ----------------------------------------------------------------------------- records
def test_the_slots_are_the_record_fields_in_order_with_none_defaults():
    import dataclasses

    from kpiforge._records import Record

    fields = dataclasses.fields(Record)
    assert tuple(f.name for f in fields) == Record.__slots__
    # reason, the comparisons and the expected range
    assert [f.default for f in fields[7:]] == [None] * 9
    assert all(f.default is dataclasses.MISSING for f in fields[:7])


@pytest.mark.parametrize("width", [8, 10, 12, 16])
def test_records_made_from_columns_equal_records_made_by_the_class(width):
    import dataclasses
    from types import MappingProxyType

    from kpiforge import Reason, Status
    from kpiforge._records import Record, make_records

    slice_ = MappingProxyType({"channel": "email"})
    rows = [("ctr", "2026-10", slice_, 1.5, "percent", None, Status.GOOD, None, 1.0, 50.0, 3.0, -50.0,
             1.4, 1.2, 1.6, None),
            ("aov", "2026-W40", slice_, None, "currency", "EUR", Status.UNKNOWN,
             Reason("no_data", "no data"), None, None, 0.0, None, None, None, None,
             "baseline has 1 of 4 earlier values (needs 3)")]
    columns = [[row[i] for row in rows] for i in range(width)]
    made = list(make_records(columns))
    assert made == [Record(*row[:width]) for row in rows]
    assert ([r.to_dict(year=True, expected=True) for r in made]
            == [Record(*row[:width]).to_dict(year=True, expected=True) for row in rows])
    with pytest.raises(dataclasses.FrozenInstanceError):
        made[0].value = 2.0  # still frozen
