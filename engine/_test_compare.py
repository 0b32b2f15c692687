"""Comparing a KPI test's expectations with the results (the rules are in ``_testing``)."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

REL_TOL = 1e-9
ABS_TOL = 1e-12


@dataclass(frozen=True)
class Mismatch:
    """One expected-vs-actual difference. ``index`` is the 0-based slice (or alert step)."""

    kpi: str
    field: str
    expected: Any
    actual: Any
    index: int | None = None
    note: str = ""
    label: str = ""  # overrides the rendered location, e.g. "ctr.alerts at step 2"

    @property
    def where(self) -> str:
        if self.label:
            return self.label
        return f"{self.kpi}.{self.field}" + (f"[{self.index}]" if self.index is not None else "")

    def __str__(self) -> str:
        # statuses are keywords, shown bare; reasons are free text, shown quoted
        render = str if self.field == "status" and isinstance(self.expected, str) else show
        text = f"{self.where}: expected {render(self.expected)}, got {render(self.actual)}"
        return f"{text} ({self.note})" if self.note else text

    def to_dict(self) -> dict[str, Any]:
        return {"kpi": self.kpi, "field": self.field, "index": self.index, "where": self.where,
                "expected": _plain(self.expected), "actual": _plain(self.actual), "note": self.note}


# -- comparing ---------------------------------------------------------------------------------
def compare(kpi: str, expect: Mapping[str, Any], result: Any) -> list[Mismatch]:
    """Every difference between one KPI's expectation and its result (scalar or series)."""
    tolerance = expect.get("tolerance")
    note = f"tolerance {tolerance:g}" if tolerance is not None else ""
    if result.is_array:
        actual = {"value": [_number(v) for v in result.value.tolist()],
                  "status": [str(s) for s in result.status],
                  "reason": list(result.reason)}
    else:
        actual = {"value": _number(result.value), "status": str(result.status),
                  "reason": result.reason}
    same = {"value": lambda e, a: _same_number(e, a, tolerance),
            "status": lambda e, a: e == a,
            "reason": lambda e, a: e == a}
    out: list[Mismatch] = []
    for name in ("value", "status", "reason"):
        if name not in expect:
            continue
        want, got = expect[name], actual[name]
        extra = note if name == "value" else ""
        if isinstance(want, list):
            if not isinstance(got, list):
                out.append(Mismatch(kpi, name, want, got, note="expected one entry per slice, "
                                    "but the inputs are not series"))
                continue
            if len(want) != len(got):
                out.append(Mismatch(kpi, name, want, got,
                                    note=f"expected {len(want)} slices, got {len(got)}"))
                continue
            out.extend(Mismatch(kpi, name, w, g, i, extra)
                       for i, (w, g) in enumerate(zip(want, got)) if not same[name](w, g))
        elif isinstance(got, list):
            # one expectation for a series holds for every slice
            out.extend(Mismatch(kpi, name, want, g, i, extra)
                       for i, g in enumerate(got) if not same[name](want, g))
        elif not same[name](want, got):
            out.append(Mismatch(kpi, name, want, got, note=extra))
    return out


def _number(value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) else value


def _same_number(expected: float | None, actual: float | None, tolerance: float | None) -> bool:
    if expected is None or actual is None:
        return expected is None and actual is None
    if math.isinf(actual) or math.isinf(expected):
        return actual == expected
    if tolerance is None:
        return math.isclose(actual, expected, rel_tol=REL_TOL, abs_tol=ABS_TOL)
    # 3.0 - 2.9 is 0.10000000000000009: a difference written as exactly the tolerance must pass
    return abs(actual - expected) <= tolerance + REL_TOL * max(abs(expected), abs(tolerance)) + ABS_TOL


def show(value: Any) -> str:
    """Values as the YAML/JSON author would write them: null, 3.0, "text", [..]."""
    if isinstance(value, (list, tuple, np.ndarray)):
        return "[" + ", ".join(show(v) for v in value) + "]"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (float, np.floating)):
        return "null" if math.isnan(value) else repr(float(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    return json.dumps(_plain(value), ensure_ascii=False, default=str)


def _plain(value: Any) -> Any:
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return None if math.isnan(value) or math.isinf(value) else value
    if isinstance(value, np.integer):
        return int(value)
    return value
