"""The ``jsonl_http`` source: rows as JSON Lines from an HTTP endpoint, aggregated here.

Each line is a JSON object with the time field, the dimension fields and the input columns.
The whole export is read per fetch, then filtered and aggregated in Python: fine for the few
thousand rows such exports hold; a big table belongs in a SQL source.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import date
from typing import Any

import httpx
import numpy as np

from kpiforge.errors import SourceError
from kpiforge.hookspecs import SourceContext
from kpiforge.sources import InputSpec, SourceFrame, SourceRequest, period_labels

SETTINGS_SCHEMA: Mapping[str, Any] = {
    "type": "object",
    "properties": {
        "url": {"type": "string", "pattern": "^https?://",
                "description": "The JSON Lines export to GET."},
        "token": {"type": "string", "minLength": 1,
                  "description": "Bearer token sent as `Authorization: Bearer ...` (secret)."},
        "timeout": {"type": "number", "exclusiveMinimum": 0, "default": 10,
                    "description": "Seconds to wait for the export."},
    },
    "required": ["url", "token"],
}

class JsonLinesHttpSource:
    """A source built from its settings; ``fetch`` does the I/O."""

    def __init__(self, name: str, settings: Mapping[str, Any], context: SourceContext):
        self.name = name
        self.url = settings["url"]
        self.token = settings["token"]
        self.timeout = float(settings.get("timeout", 10))
        self.time = settings["time"]
        self.dimensions = tuple(settings.get("dimensions") or ())
        self.inputs: Mapping[str, InputSpec] = settings["inputs"]
        for spec in self.inputs.values():
            if spec.expression is not None:
                raise SourceError(f"source '{name}': input '{spec.name}' uses an expression; "
                                  "jsonl_http reads fields only (use 'column')")

    def fetch(self, request: SourceRequest) -> SourceFrame:
        rows = [row for row in self._rows() if _in_ranges(self._day(row), request.ranges)]
        rows.sort(key=self._day)  # stable: first/last follow time, then export order
        labels = period_labels([self._day(r) for r in rows], request.grain, request.week_start)
        groups: dict[tuple[Any, ...], list[Mapping[str, Any]]] = {}
        for label, row in zip(labels.tolist(), rows):
            key = (label, *(_text(row.get(d)) for d in request.dims))
            groups.setdefault(key, []).append(row)
        keys = sorted(groups, key=lambda k: tuple("" if v is None else str(v) for v in k))
        values = {name: [self._aggregate(spec, groups[k]) for k in keys]
                  for name, spec in request.inputs.items()}
        return SourceFrame(
            np.array([k[0] for k in keys], dtype=object),
            {d: np.array([k[i + 1] for k in keys], dtype=object)
             for i, d in enumerate(request.dims)},
            {name: np.array(column, dtype=np.float64) for name, column in values.items()},
        )

    def _rows(self) -> list[Mapping[str, Any]]:
        try:
            response = httpx.get(self.url, timeout=self.timeout,
                                 headers={"Authorization": f"Bearer {self.token}"})
        except httpx.HTTPError as exc:
            raise SourceError(f"source '{self.name}': cannot read {self.url}: "
                              f"{type(exc).__name__}") from exc
        if response.status_code != 200:
            raise SourceError(f"source '{self.name}': {self.url} answered HTTP "
                              f"{response.status_code}")
        rows = []
        for number, line in enumerate(response.text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise SourceError(f"source '{self.name}': line {number} of {self.url} is not "
                                  f"JSON ({exc.msg})") from None
            if not isinstance(row, dict):
                raise SourceError(f"source '{self.name}': line {number} of {self.url} is not "
                                  "a JSON object")
            row["__line"] = number
            rows.append(row)
        return rows

    def _day(self, row: Mapping[str, Any]) -> date:
        value = row.get(self.time)
        try:
            return date.fromisoformat(str(value)[:10])
        except ValueError:
            raise SourceError(f"source '{self.name}': line {row['__line']} of {self.url}: "
                              f"field '{self.time}' is not a date: {value!r}") from None


    def _aggregate(self, spec: InputSpec, rows: list[Mapping[str, Any]]) -> float:
        rows = [r for r in rows if _matches(spec, r)]
        if spec.column == "*":
            return float(len(rows))
        column = spec.column or spec.name
        present = [r for r in rows if r.get(column) is not None]
        if spec.agg == "count":
            return float(len(present))
        if spec.agg == "count_distinct":
            return float(len({json.dumps(r[column]) for r in present}))
        if not present:
            return float("nan")  # kpiforge reads NaN as "no value", never as 0
        numbers = [self._number(r, column) for r in present]
        if spec.agg == "sum":
            return sum(numbers)
        if spec.agg == "avg":
            return sum(numbers) / len(numbers)
        if spec.agg == "min":
            return min(numbers)
        if spec.agg == "max":
            return max(numbers)
        return numbers[0] if spec.agg == "first" else numbers[-1]

    def _number(self, row: Mapping[str, Any], column: str) -> float:
        value = row[column]
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise SourceError(f"source '{self.name}': line {row['__line']} of {self.url}: "
                              f"field '{column}' is not a number: {value!r}")
        try:
            return float(value)
        except OverflowError:
            raise SourceError(f"source '{self.name}': line {row['__line']} of {self.url}: "
                              f"field '{column}' is too large") from None


def _in_ranges(day: date, ranges: tuple[tuple[date, date], ...]) -> bool:
    return not ranges or any(start <= day < end for start, end in ranges)


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _matches(spec: InputSpec, row: Mapping[str, Any]) -> bool:
    for column, wanted in spec.filter.items():
        options = wanted if isinstance(wanted, tuple) else (wanted,)
        if row.get(column) not in options:
            return False
    return True


