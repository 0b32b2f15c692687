"""The totals a run's formulas ask for (``total(sessions)``), fetched without the ``--by``
dimensions and laid out on the grid: each row gets its period's total.

A total is asked of the source again, not summed from the grid's slices: a distinct count's
total is recomputed by the data engine, and the slices need not cover the whole (a slice with
no dimension value is still in the total). With no ``--by`` dimension the total of a period is
the input itself and nothing is fetched.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from typing import Any, Mapping, Sequence

import numpy as np

from ._additivity import not_additive_reasons
from ._reasons import Reason
from ._run_grid import Grid
from ._run_plan import RunPlan, RunProject, SourcePlan
from ._run_sources import fetch_frames
from ._totals import input_of, is_total, total_key

__all__ = ["fill_totals", "total_keys"]


def total_keys(plan: RunPlan) -> list[str]:
    """The ``total(x)`` inputs the plan's KPIs read whose ``x`` a source provides."""
    keys = {k for inputs in plan.required.values() for k in inputs if is_total(k)}
    return sorted(k for k in keys if input_of(k) in plan.provided)


def fill_totals(project: RunProject, sources: Mapping[str, Any], plan: RunPlan, grid: Grid,
                grain: str, ranges: tuple[tuple[date, date], ...], dims: Sequence[str],
                definitions: Mapping[str, Any]) -> tuple[Grid, dict[str, Reason], list[str]]:
    """``grid`` with an array per total input, the totals that cannot be answered (a
    non-additive input summed across a key, with why), and the sources' warnings."""
    keys = total_keys(plan)
    arrays = dict(grid.arrays)
    if not keys:
        return grid, {}, []
    if not dims:
        for key in keys:
            arrays[key] = arrays[input_of(key)].copy()
        return replace(grid, arrays=arrays), {}, []
    bases = {input_of(k) for k in keys}
    by_source: dict[str, list[str]] = {}
    for base in sorted(bases):
        source = plan.provided[base]
        if not plan.sources[source].missing_dims:  # one that cannot be split is not fetched
            by_source.setdefault(source, []).append(base)
    whole = replace(plan, sources={name: SourcePlan(name, tuple(inputs), ())
                                   for name, inputs in by_source.items()})
    frames, warnings = fetch_frames(project, sources, whole, grain, ranges, (), None)
    n_slices = len(grid.slices)
    for key in keys:
        base = input_of(key)
        per_period = np.full(len(grid.period_index), np.nan)
        frame = frames.get(plan.provided[base])
        if frame is not None:
            for label, value in zip(frame.periods.tolist(), np.asarray(frame.inputs[base]).tolist()):
                index = grid.period_index.get(label)
                if index is not None:
                    per_period[index] = value
        arrays[key] = np.repeat(per_period, n_slices)
    blocked = not_additive_reasons(definitions, project.sources, whole, grain, ())
    return (replace(grid, arrays=arrays),
            {total_key(name): reason for name, reason in blocked.items() if name in bases},
            warnings)
