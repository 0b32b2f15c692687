"""Why a run's value is null, row by row, where the engine alone cannot know.

The engine sees only NaN inputs; the run knows more. In order of precedence, for each KPI:
``reach cannot be summed across channel`` when a non-additive input would be summed,
``source 'shop' cannot be split by campaign`` when an input comes from such a source (every
row is null then), ``no source provides input 'x'`` when nobody provides it, ``no data`` when
none of the KPI's inputs has a row there, else the engine's own reason (``missing input: x``,
``division by zero``, ...).
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from ._model import Status
from ._reasons import Reason
from ._run_grid import Grid
from ._run_plan import RunPlan

__all__ = ["NO_DATA", "attach_reasons"]

NO_DATA = Reason("no_data", "no data")


def _codes(result: Any, n_rows: int) -> tuple[np.ndarray, np.ndarray, list[Any]]:
    """Writable status codes, reason codes and reason table of one KPI's result."""
    codes = result.codes
    if codes is not None:
        reason = np.zeros(n_rows, dtype=np.int32) if codes.reason is None else codes.reason.copy()
        return codes.status.copy(), reason, list(codes.table)
    # a result without codes (scalar inputs): from its object arrays
    index = {s: i for i, s in enumerate(Status)}
    status = np.array([index[s] for s in np.broadcast_to(result.status, (n_rows,))],
                      dtype=np.uint8)
    table: list[Any] = [None]
    reason = np.zeros(n_rows, dtype=np.int32)
    for i, r in enumerate(np.broadcast_to(np.asarray(result.reason, dtype=object), (n_rows,))):
        if r is not None:
            table.append(r)
            reason[i] = len(table) - 1
    return status, reason, table


def attach_reasons(plan: RunPlan, results: Any, grid: Grid,
                   not_additive: Mapping[str, Reason] | None = None) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray],
                              dict[str, tuple[np.ndarray, list[Any]]]]:
    """Value, status and reason per KPI: the engine's, with the run's reasons put in (and
    the value forced null, the status unknown, where the run says there is no value).
    ``not_additive`` holds the inputs that cannot be answered at this grain and split, with
    why (every KPI needing one is null with that reason).
    Statuses are uint8 codes (``list(Status)[code]``) and reasons int32 codes into the
    KPI's table of reasons (code 0 is None), as the engine gives them."""
    values: dict[str, np.ndarray] = {}
    statuses: dict[str, np.ndarray] = {}
    reasons: dict[str, tuple[np.ndarray, list[Any]]] = {}
    provided, n_rows = plan.provided, grid.n_rows
    unknown = list(Status).index(Status.UNKNOWN)
    for kpi in plan.wanted:
        result = results[kpi]
        value = np.array(np.broadcast_to(result.value, (n_rows,)), dtype=np.float64, copy=True)
        status, reason, table = _codes(result, n_rows)
        inputs = plan.required[kpi]
        blocked = [plan.sources[provided[i]] for i in sorted(inputs) if i in provided
                   and plan.sources[provided[i]].missing_dims]
        unprovided = sorted(i for i in inputs if i not in provided)
        summed = [not_additive[i] for i in sorted(inputs) if not_additive and i in not_additive]
        forced = np.zeros(n_rows, dtype=bool)
        if summed:
            table.append(summed[0])
            reason[:] = len(table) - 1
            forced[:] = True
        elif blocked:
            first = blocked[0]
            table.append(Reason("not_splittable", f"source '{first.name}' cannot be split by "
                                f"{', '.join(first.missing_dims)}", first.name))
            reason[:] = len(table) - 1
            forced[:] = True
        elif unprovided:
            nulls = np.isnan(value)
            table.append(Reason("no_source", f"no source provides input '{unprovided[0]}'"
                                if len(unprovided) == 1 else
                                f"no source provides inputs {', '.join(unprovided)}",
                                unprovided[0]))
            reason[nulls] = len(table) - 1
        elif inputs:
            absent = np.ones(n_rows, dtype=bool)
            for i in inputs:
                absent &= ~grid.present[provided[i]]
            table.append(NO_DATA)
            reason[absent] = len(table) - 1
            forced |= absent
        value[forced] = np.nan
        status[forced | np.isnan(value)] = unknown
        values[kpi], statuses[kpi], reasons[kpi] = value, status, (reason, table)
    return values, statuses, reasons
