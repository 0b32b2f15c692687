"""The grid of a run: every period x every slice, one row each, with the fetched inputs laid
out on it as float arrays (NaN where a source has no row), ready for one vectorised
``Engine.evaluate``.

The layout is done with numpy on codes, not row by row in Python: each dimension's values
are ranked once (``None`` after every value, as the slices are ordered), a slice is a row of
ranks, and a frame row's place on the grid is ``period * n_slices + slice``. A run's fixed
cost after the query then stays small however many rows the sources return.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from ._periods import Period
from ._run_plan import RunPlan
from .sources import SourceFrame
from .errors import SourceError

__all__ = ["Grid", "lay_out_grid"]


@dataclass(frozen=True)
class Grid:
    """Row ``period_index[label] * len(slices) + slice`` holds that period and slice."""

    slices: tuple[tuple[Any, ...], ...]
    period_index: Mapping[str, int]
    n_rows: int
    arrays: Mapping[str, np.ndarray]  # input -> value per row
    present: Mapping[str, np.ndarray]  # source -> whether it has a row there


def lay_out_grid(plan: RunPlan, frames: Mapping[str, SourceFrame], dims: Sequence[str],
                 current: Sequence[Period], all_periods: Sequence[Period]) -> Grid:
    """The grid over ``all_periods`` and every slice seen in the ``current`` periods."""
    period_index = {p.label: i for i, p in enumerate(all_periods)}
    fetched = [(name, frame) for name in plan.sources
               if (frame := frames.get(name)) is not None and len(frame)]
    # grid period of every fetched row (-1: not on the grid), all frames one after the other
    periods = np.concatenate([_period_rows(frame, period_index) for _, frame in fetched]
                             or [np.empty(0, dtype=np.intp)])
    current_index = np.array(sorted(period_index[p.label] for p in current), dtype=np.intp)
    in_current = np.isin(periods, current_index)
    slices, slice_of_row = _slices(fetched, dims, in_current)
    n_slices = len(slices)
    n_rows = len(all_periods) * n_slices

    arrays: dict[str, np.ndarray] = {}
    present: dict[str, np.ndarray] = {}
    first = 0
    rows_of = {}
    for name, frame in fetched:
        part = slice(first, first + len(frame))
        first += len(frame)
        rows_of[name] = _grid_rows(frame, periods[part], slice_of_row[part], n_slices)
    for name, source in plan.sources.items():
        has_row = np.zeros(n_rows, dtype=bool)
        for inp in source.inputs:
            arrays[inp] = np.full(n_rows, np.nan)
        if name in rows_of:
            rows, where = rows_of[name]
            has_row[rows] = True
            frame = frames[name]
            for inp in source.inputs:
                arrays[inp][rows] = np.asarray(frame.inputs[inp], dtype=np.float64)[where]
        present[name] = has_row
    return Grid(slices, period_index, n_rows, arrays, present)


def _period_rows(frame: SourceFrame, period_index: Mapping[str, int]) -> np.ndarray:
    """The grid period of each row of ``frame``, -1 for a period the run did not ask for."""
    labels = frame.periods.tolist()
    return np.fromiter((period_index.get(label, -1) for label in labels), dtype=np.intp,
                       count=len(labels))


def _ranked(column: list[Any]) -> tuple[list[Any], np.ndarray]:
    """The distinct values of ``column`` in slice order (``None`` last) and each row's rank.

    Values are told apart as dict keys are, and only the distinct values are sorted: a run
    returns many rows but few values per dimension."""
    first: dict[Any, int] = {}
    codes = np.fromiter((first.setdefault(v, len(first)) for v in column), dtype=np.intp,
                        count=len(column))
    distinct = list(first)
    order = sorted(range(len(distinct)),
                   key=lambda i: (distinct[i] is None, "" if distinct[i] is None else distinct[i]))
    rank = np.empty(len(distinct), dtype=np.intp)
    rank[order] = np.arange(len(distinct), dtype=np.intp)
    return [distinct[i] for i in order], rank[codes]


def _slices(fetched: Sequence[tuple[str, SourceFrame]], dims: Sequence[str],
            in_current: np.ndarray) -> tuple[tuple[tuple[Any, ...], ...], np.ndarray]:
    """The slices seen in the current periods, ordered by value with ``None`` last in each
    dimension, and the slice of every fetched row (-1: a slice not on the grid)."""
    n = len(in_current)
    if not dims:
        return ((),), np.zeros(n, dtype=np.intp)
    ranks = np.empty((n, len(dims)), dtype=np.intp)
    values: list[list[Any]] = []
    for d, dim in enumerate(dims):
        column = [v for _, frame in fetched for v in frame.dims[dim].tolist()]
        values_d, ranks[:, d] = _ranked(column)
        values.append(values_d)
    if not in_current.any():
        # no slice has data (or nothing can be split): one row per period to carry the
        # reason; rows without any dimension value still land on it
        none = np.array([v.index(None) if None in v else -1 for v in values], dtype=np.intp)
        return (tuple(None for _ in dims),), np.where(np.all(ranks == none, axis=1), 0, -1)
    distinct, inverse = np.unique(ranks, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    seen = np.zeros(len(distinct), dtype=bool)
    seen[inverse[in_current]] = True
    number = np.where(seen, np.cumsum(seen) - 1, -1)
    slices = tuple(tuple(v[r] for r, v in zip(row, values)) for row in distinct[seen].tolist())
    return slices, number[inverse]


def _grid_rows(frame: SourceFrame, periods: np.ndarray, slices: np.ndarray,
               n_slices: int) -> tuple[np.ndarray, np.ndarray]:
    """Grid row of each frame row that falls on the grid: ``(grid rows, frame rows)``."""
    where = np.flatnonzero((periods >= 0) & (slices >= 0))
    rows = periods[where] * n_slices + slices[where]
    order = np.argsort(rows, kind="stable")
    repeated = rows[order][1:] == rows[order][:-1]
    if repeated.any():  # a plugin returned the same period/slice twice: name the first repeat
        label = np.asarray(frame.periods, dtype=object)[where[order[1:][repeated].min()]]
        raise SourceError(f"period {label} appears twice for the same slice")
    return rows, where
