"""The totals of a run split ``--by``: ``total(x)`` for every KPI that reads one.

A slice's row cannot tell the whole, and summing the slices would count twice a person seen
in two of them (a distinct count). So each source that provides an ``x`` read as
``total(x)`` is asked once more, for the same periods WITHOUT the ``--by`` dimensions: one
more aggregate query, pushed down like every fetch, so the source recomputes a distinct
count over the whole. Each period's total is then broadcast to that period's slices, as the
input ``total(x)`` of the one vectorised evaluation.

Without ``--by`` nothing is fetched: the slice is the whole, and an absent ``total(x)`` is
``x`` (``_formula_total``). A non-additive ``x`` whose source keys would be summed by the
total query is blocked like any input (``_additivity``): the KPI is null with that reason.
"""

from __future__ import annotations

from datetime import date
from typing import Any, Mapping

import numpy as np

from ._additivity import not_additive_reasons
from ._formula_total import total_name
from ._reasons import Reason
from ._run_grid import Grid
from ._run_plan import RunPlan, RunProject, SourcePlan
from ._run_sources import fetch_frames

__all__ = ["fetch_totals", "totals_not_additive"]


def fetch_totals(project: RunProject, sources: Mapping[str, Any], plan: RunPlan, grain: str,
                 ranges: tuple[tuple[date, date], ...], grid: Grid, warnings: list[str]
                 ) -> dict[str, np.ndarray]:
    """``total(x)`` per grid row for every ``x`` of ``plan.totals`` whose source is fetched:
    one query per such source without dimensions, each period's value on all its slices
    (NaN for a period the source has no row for). The sources' warnings go to ``warnings``."""
    wanted = set().union(*plan.totals.values()) if plan.totals else set()
    by_source: dict[str, list[str]] = {}
    for name in plan.splittable:  # a source that cannot be split gives no slice anyway
        inputs = [i for i in plan.sources[name].inputs if i in wanted]
        if inputs:
            by_source[name] = inputs
    if not by_source:
        return {}
    whole = RunPlan(plan.wanted, plan.required, plan.provided,
                    {name: SourcePlan(name, tuple(inputs), ()) for name, inputs in by_source.items()})
    frames, more = fetch_frames(project, sources, whole, grain, ranges, (), None)
    warnings.extend(w for w in more if w not in warnings)
    n_slices = len(grid.slices)
    arrays: dict[str, np.ndarray] = {}
    for name, inputs in by_source.items():
        frame = frames[name]
        rows = [(grid.period_index.get(label), i) for i, label in enumerate(frame.periods.tolist())]
        for inp in inputs:
            column = np.asarray(frame.inputs[inp], dtype=np.float64)
            per_period = np.full(len(grid.period_index), np.nan)
            for p, i in rows:
                if p is not None:
                    per_period[p] = column[i]
            arrays[total_name(inp)] = np.repeat(per_period, n_slices)
    return arrays


def totals_not_additive(definitions: Mapping[str, Any], project_sources: Mapping[str, Any],
                        plan: RunPlan, grain: str) -> dict[str, Reason]:
    """``total(x)`` -> why it is null, for each non-additive ``x`` that the total query would
    sum across its source's keys (or to another grain)."""
    wanted = set().union(*plan.totals.values()) if plan.totals else set()
    blocked = not_additive_reasons(definitions, project_sources, plan, grain, ())
    return {total_name(name): reason for name, reason in blocked.items() if name in wanted}
