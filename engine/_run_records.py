"""The records of a run: one per KPI x current period x slice, each with the comparisons
asked for (the value of the previous / year-earlier period and the change in percent)."""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import numpy as np

from ._engine import Engine
from ._model import Status
from ._baselines import Expected
from ._periods import Period
from ._records import Record, frozen_slice

__all__ = ["build_records"]


def _plain(value: float) -> float | None:
    return None if math.isnan(value) else float(value)


def _change(value: float | None, previous: float | None) -> float | None:
    if value is None or previous is None or previous == 0:
        return None
    return (value - previous) / abs(previous) * 100.0


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
    # a label is computed, not stored: once per period here, not once per KPI x slice
    labels = [period.label for period in current]
    bases = [period_index[label] * n_slices for label in labels]
    compare_bases = [{m: period_index[shifted[m][period].label] * n_slices for m in modes}
                     for period in current]
    frozen = [frozen_slice(zip(dims, key)) for key in slices]
    by_code = list(Status)
    for kpi in kpis:
        unit = results[kpi].unit
        currency = engine.definitions[kpi].currency if unit == "currency" else None
        value_list = values[kpi].tolist()
        status_list = statuses[kpi].tolist()
        reason_codes, table = reasons[kpi]
        reason_list = reason_codes.tolist()
        ranges = (expected or {}).get(kpi)
        for i, (label, base, compared) in enumerate(zip(labels, bases, compare_bases)):
            for s in range(len(slices)):
                row = base + s
                value = _plain(value_list[row])
                compared_values: dict[str, Any] = {}
                for mode in modes:
                    previous = _plain(value_list[compared[mode] + s])
                    suffix = "_year" if both and mode == "year" else ""
                    compared_values["previous" + suffix] = previous
                    compared_values["change_pct" + suffix] = _change(value, previous)
                if ranges is not None:
                    band = ranges[i * n_slices + s]
                    compared_values.update(expected=band.expected, expected_low=band.low,
                                           expected_high=band.high, expected_reason=band.reason)
                records.append(Record(kpi, label, frozen[s], value, unit, currency,
                                      by_code[status_list[row]],
                                      table[reason_list[row]] if value is None else None,
                                      **compared_values))
    return records
