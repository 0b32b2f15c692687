"""Why a run's value is null, row by row, where the engine alone cannot know.

The engine sees only NaN inputs; the run knows more. In order of precedence, for each KPI:
``source 'shop' cannot be split by campaign`` when an input comes from such a source (every
row is null then), ``no source provides input 'x'`` when nobody provides it, ``no data`` when
none of the KPI's inputs has a row there, else the engine's own reason (``missing input: x``,
``division by zero``, ...).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._model import Status
from ._reasons import Reason
from ._run_grid import Grid
from ._run_plan import RunPlan

__all__ = ["NO_DATA", "attach_reasons"]

NO_DATA = Reason("no_data", "no data")


def attach_reasons(plan: RunPlan, results: Any, grid: Grid
                   ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Value, status and reason arrays per KPI: the engine's, with the run's reasons put in
    (and the value forced null, the status unknown, where the run says there is no value)."""
    values: dict[str, np.ndarray] = {}
    statuses: dict[str, np.ndarray] = {}
    reasons: dict[str, np.ndarray] = {}
    provided, n_rows = plan.provided, grid.n_rows
    for kpi in plan.wanted:
        result = results[kpi]
        value = np.array(result.value, dtype=np.float64, copy=True)
        status = np.array(result.status, dtype=object, copy=True)
        reason = np.array(result.reason, dtype=object, copy=True)
        inputs = plan.required[kpi]
        blocked = [plan.sources[provided[i]] for i in sorted(inputs) if i in provided
                   and plan.sources[provided[i]].missing_dims]
        unprovided = sorted(i for i in inputs if i not in provided)
        forced = np.zeros(n_rows, dtype=bool)
        if blocked:
            first = blocked[0]
            reason[:] = Reason("not_splittable", f"source '{first.name}' cannot be split by "
                               f"{', '.join(first.missing_dims)}", first.name)
            forced[:] = True
        elif unprovided:
            nulls = np.isnan(value)
            reason[nulls] = Reason("no_source", f"no source provides input '{unprovided[0]}'"
                                   if len(unprovided) == 1 else
                                   f"no source provides inputs {', '.join(unprovided)}",
                                   unprovided[0])
        elif inputs:
            absent = np.ones(n_rows, dtype=bool)
            for i in inputs:
                absent &= ~grid.present[provided[i]]
            reason[absent] = NO_DATA
            forced |= absent
        value[forced] = np.nan
        status[forced | np.isnan(value)] = Status.UNKNOWN
        values[kpi], statuses[kpi], reasons[kpi] = value, status, reason
    return values, statuses, reasons
