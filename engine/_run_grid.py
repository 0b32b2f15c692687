"""The grid of a run: every period x every slice, one row each, with the fetched inputs laid
out on it as float arrays (NaN where a source has no row), ready for one vectorised
``Engine.evaluate``."""

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
    current_labels = {p.label for p in current}
    slices: list[tuple[Any, ...]] = []
    seen: set[tuple[Any, ...]] = set()
    for name in plan.sources:
        frame = frames.get(name)
        if frame is None:
            continue
        columns = [frame.dims[d] for d in dims]
        for i, label in enumerate(frame.periods.tolist()):
            if label in current_labels:
                key = tuple(c[i] for c in columns)
                if key not in seen:
                    seen.add(key)
                    slices.append(key)
    if not dims:
        slices = [()]
    elif not slices:
        # no slice has data (or nothing can be split): one row per period to carry the reason
        slices = [tuple(None for _ in dims)]
    slices.sort(key=lambda s: tuple((v is None, "" if v is None else v) for v in s))
    slice_index = {s: i for i, s in enumerate(slices)}
    period_index = {p.label: i for i, p in enumerate(all_periods)}
    n_rows = len(all_periods) * len(slices)

    arrays: dict[str, np.ndarray] = {}
    present: dict[str, np.ndarray] = {}
    for name, source in plan.sources.items():
        has_row = np.zeros(n_rows, dtype=bool)
        for inp in source.inputs:
            arrays[inp] = np.full(n_rows, np.nan)
        frame = frames.get(name)
        if frame is not None and len(frame):
            rows, where = _locate(frame, dims, period_index, slice_index, len(slices))
            has_row[rows] = True
            for inp in source.inputs:
                arrays[inp][rows] = np.asarray(frame.inputs[inp], dtype=np.float64)[where]
        present[name] = has_row
    return Grid(tuple(slices), period_index, n_rows, arrays, present)


def _locate(frame: SourceFrame, dims: Sequence[str], period_index: Mapping[str, int],
            slice_index: Mapping[tuple[Any, ...], int], n_slices: int) -> tuple[np.ndarray, np.ndarray]:
    """Grid row of each frame row that falls on the grid: ``(grid rows, frame rows)``."""
    columns = [frame.dims[d].tolist() for d in dims]
    labels = frame.periods.tolist()
    rows: list[int] = []
    where: list[int] = []
    seen: set[int] = set()
    for i, label in enumerate(labels):
        p = period_index.get(label)
        if p is None:
            continue
        s = slice_index.get(tuple(c[i] for c in columns))
        if s is None:
            continue
        row = p * n_slices + s
        if row in seen:  # a plugin returned the same period/slice twice
            raise SourceError(f"period {label} appears twice for the same slice")
        seen.add(row)
        rows.append(row)
        where.append(i)
    return np.asarray(rows, dtype=np.intp), np.asarray(where, dtype=np.intp)
