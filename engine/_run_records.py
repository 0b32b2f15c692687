"""The records of a run: one per KPI x current period x slice, each with the comparisons
asked for (the value of the previous / year-earlier period and the change in percent).

A KPI's columns (value, status, reason, comparisons) are taken off the grid with numpy and
turned into Python objects once per column; the records are then made by ``map`` over those
columns, so the only work per record is the record itself."""

from __future__ import annotations

from itertools import repeat
from typing import Any, Mapping, Sequence

import numpy as np

from ._baselines import Expected
from ._engine import Engine
from ._model import Status
from ._periods import Period
from ._records import Record, frozen_slice, make_records

__all__ = ["build_records"]

_STATUSES = np.array(list(Status), dtype=object)


def _objects(values: np.ndarray, null: np.ndarray) -> list[Any]:
    """``values`` as Python floats, None where ``null``."""
    out = values.astype(object)
    out[null] = None
    return out.tolist()


def _table(items: Sequence[Any]) -> np.ndarray:
    """An object array holding ``items`` as they are (never broadcast into)."""
    out = np.empty(len(items), dtype=object)
    for i, item in enumerate(items):
        out[i] = item
    return out


def _change_pct(value: np.ndarray, previous: np.ndarray) -> list[float | None]:
    """The change in percent from ``previous`` to ``value`` (NaN: no value), None where either
    is missing or ``previous`` is 0."""
    undefined = np.isnan(value) | np.isnan(previous) | (previous == 0)
    with np.errstate(all="ignore"):
        change = (value - previous) / np.abs(previous) * 100.0
    return _objects(change, undefined)


def build_records(engine: Engine, kpis: Sequence[str], results: Any, current: Sequence[Period],
                  slices: Sequence[tuple], dims: Sequence[str], values: Mapping[str, np.ndarray],
                  statuses: Mapping[str, np.ndarray],
                  reasons: Mapping[str, tuple[np.ndarray, list[Any]]],
                  shifted: Mapping[str, Mapping[Period, Period]], modes: Sequence[str],
                  period_index: Mapping[str, int], n_slices: int,
                  expected: Mapping[str, Sequence[Expected]] | None = None) -> list[Record]:
    """The records of the ``current`` periods; a value and its comparisons are read off the
    grid rows (``period_index[label] * n_slices + slice``). Statuses and reasons are codes, as
    :func:`attach_reasons` gives them. ``expected`` holds the expected range of each current
    row (``i * n_slices + slice``) of the KPIs with an anomaly rule."""
    records: list[Record] = []
    both = len(modes) == 2
    # the grid rows of the records, in record order: period by period, slice by slice
    # a label is computed, not stored: once per period here, not once per KPI x slice
    period_labels = [period.label for period in current]
    offsets = np.arange(len(slices), dtype=np.intp)
    rows = (np.array([period_index[label] for label in period_labels], dtype=np.intp)[:, None]
            * n_slices + offsets).reshape(-1)
    compared_rows = {m: (np.array([period_index[shifted[m][p].label] for p in current],
                                  dtype=np.intp)[:, None] * n_slices + offsets).reshape(-1)
                     for m in modes}
    count = len(rows)
    labels = [label for label in period_labels for _ in slices]
    frozen = [frozen_slice(zip(dims, key)) for key in slices] * len(current)
    for kpi in kpis:
        unit = results[kpi].unit
        currency = engine.definitions[kpi].currency if unit == "currency" else None
        value = values[kpi][rows]
        null = np.isnan(value)
        reason_codes, table = reasons[kpi]
        reason = _table(table)[reason_codes[rows]]
        reason[~null] = None
        columns: list[Any] = [repeat(kpi, count), labels, frozen, _objects(value, null),
                              repeat(unit, count), repeat(currency, count),
                              _STATUSES[statuses[kpi][rows]].tolist(), reason.tolist()]
        for mode in sorted(modes, key=lambda m: both and m == "year"):  # previous first
            previous = values[kpi][compared_rows[mode]]
            columns += [_objects(previous, np.isnan(previous)), _change_pct(value, previous)]
        ranges = (expected or {}).get(kpi)
        if ranges is not None:
            # grid rows of the current periods, in record order, are i * n_slices + slice
            # the comparisons not asked (one iterator each: map() advances every one per record)
            columns += [repeat(None, count) for _ in range(12 - len(columns))]
            bands = [ranges[i * n_slices + s] for i in range(len(current))
                     for s in range(len(slices))]
            columns += [[b.expected for b in bands], [b.low for b in bands],
                        [b.high for b in bands], [b.reason for b in bands]]
        records.extend(make_records(columns))
    return records
