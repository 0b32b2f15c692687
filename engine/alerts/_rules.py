"""Alert rules: a KPI's ``alerts:`` block (or the default) applied to one record.

The default rule of a KPI with thresholds fires on ``warning`` and ``critical``. A KPI without
thresholds has no status worth alerting on, so it only alerts when its ``alerts:`` block asks
for something (a change rule, or explicit statuses).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass, field
from typing import Any, Mapping, TypeGuard

from .._baselines import Anomaly, anomaly_of
from ..errors import AlertConfigError

__all__ = [
    "SEVERITIES",
    "Condition",
    "Rule",
    "anomaly_side",
    "fingerprint",
    "parse_duration",
    "rule_for",
    "slice_text",
]

SEVERITIES = ("info", "warning", "critical")
_SEVERITY_RANK = {name: i for i, name in enumerate(SEVERITIES)}
_STATUS_SEVERITY = {"critical": "critical", "warning": "warning", "unknown": "warning"}
DEFAULT_ON = ("warning", "critical")

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|w|d|h|m|s)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
# Ten years: anything longer is a typo, and unbounded values overflow datetime arithmetic.
_MAX_DURATION = 10 * 365 * 86400


def parse_duration(value: Any, *, field_name: str = "duration") -> float:
    """Seconds from ``90``, ``"90s"``, ``"500ms"``, ``"1h30m"``, ``"2d"`` or ``"1w"``."""
    if isinstance(value, bool):
        raise AlertConfigError(f"{field_name}: expected a duration like '30s' or '1d', got {value!r}",
                               field=field_name)
    if isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str) and value.strip():
        text = value.strip().replace(" ", "")
        pos, seconds = 0, 0.0
        for match in _DURATION_PART.finditer(text):
            if match.start() != pos:
                break
            seconds += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
            pos = match.end()
        if pos != len(text):
            raise AlertConfigError(
                f"{field_name}: {value!r} is not a duration (examples: 500ms, 30s, 15m, 4h, 1d, 1w)",
                field=field_name)
    else:
        raise AlertConfigError(f"{field_name}: expected a duration like '30s' or '1d', got {value!r}",
                               field=field_name)
    if not math.isfinite(seconds) or seconds < 0 or seconds > _MAX_DURATION:
        raise AlertConfigError(f"{field_name}: {value!r} is out of range (0 to 10 years)",
                               field=field_name)
    return seconds


def fingerprint(kpi: str, slice_: Mapping[str, Any] | None) -> str:
    """Stable id of one alert series: the KPI and the slice, independent of key order."""
    canonical = json.dumps([kpi, {str(k): str(v) for k, v in sorted((slice_ or {}).items())}],
                           ensure_ascii=False, separators=(",", ":"), sort_keys=True)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]


def slice_text(slice_: Mapping[str, Any] | None) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted((slice_ or {}).items()))


def max_severity(*severities: str | None) -> str:
    present = [s for s in severities if s]
    return max(present, key=lambda s: _SEVERITY_RANK.get(s, 0)) if present else "info"


@dataclass(frozen=True, slots=True)
class Change:
    vs: str = "previous"
    drop_pct: float | None = None
    rise_pct: float | None = None


@dataclass(frozen=True, slots=True)
class Condition:
    """What one record says about one alert series: active or not, and how bad."""

    active: bool
    severity: str
    reasons: tuple[str, ...] = ()
    change_pct: float | None = None
    causes: tuple[str, ...] = ()  # which rules hold: status, change, anomaly


@dataclass(frozen=True, slots=True)
class Rule:
    kpi: str
    on: tuple[str, ...] = DEFAULT_ON
    for_: int = 0
    keep_firing_for: int = 0
    change: Change | None = None
    anomaly: Anomaly | None = None
    severity: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    message: str | None = None
    send_resolved: bool | None = None

    @property
    def steps_to_fire(self) -> int:
        # ``for: 0`` and ``for: 1`` both fire on the first active evaluation, as in Prometheus.
        return max(1, self.for_)

    def evaluate(self, record: Mapping[str, Any]) -> Condition:
        status = str(record.get("status") or "unknown")
        reasons: list[str] = []
        severities: list[str] = []
        causes: list[str] = []
        if status in self.on:
            reasons.append(f"status {status}")
            severities.append(_STATUS_SEVERITY.get(status, "info"))
            causes.append("status")
        pct = None
        if self.change is not None:
            pct = change_pct(record, self.change.vs)
            if pct is not None:
                if self.change.drop_pct is not None and pct <= -self.change.drop_pct:
                    reasons.append(f"dropped {-pct:.1f}% vs {self.change.vs}")
                    severities.append("warning")
                if self.change.rise_pct is not None and pct >= self.change.rise_pct:
                    reasons.append(f"rose {pct:.1f}% vs {self.change.vs}")
                    severities.append("warning")
            if len(reasons) > len(causes):
                causes.append("change")
        if self.anomaly is not None:
            outside = anomaly_side(record, self.anomaly.direction)
            if outside is not None:
                reasons.append(f"{outside} the expected range")
                severities.append("warning")
                causes.append("anomaly")
        if not reasons:
            return Condition(False, self.severity or "info", (), pct)
        return Condition(True, self.severity or max_severity(*severities), tuple(reasons), pct,
                         tuple(causes))


def change_pct(record: Mapping[str, Any], vs: str) -> float | None:
    """Percent change against the previous period or the same period a year earlier.

    Computed from the raw values when both are present (so the unit of ``change_pct`` fields
    never matters), else taken from the record's ``change_pct``/``change_pct_year``.
    """
    value = record.get("value")
    previous = record.get("previous" if vs == "previous" else "previous_year")
    if _finite(value) and _finite(previous) and previous != 0:
        return (float(value) - float(previous)) / abs(float(previous)) * 100.0
    given = record.get("change_pct" if vs == "previous" else "change_pct_year")
    return float(given) if _finite(given) else None


def anomaly_side(record: Mapping[str, Any], direction: str = "both") -> str | None:
    """``below``/``above`` when the record's value is outside its expected range on a side
    ``direction`` watches, else None (also when the range or the value is unknown: a rule
    without a baseline never guesses)."""
    value, low, high = (record.get(k) for k in ("value", "expected_low", "expected_high"))
    if not (_finite(value) and _finite(low) and _finite(high)):
        return None
    if value < low and direction in ("both", "below"):
        return "below"
    if value > high and direction in ("both", "above"):
        return "above"
    return None


def _finite(value: Any) -> TypeGuard[float]:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def rule_for(definition: Any) -> Rule | None:
    """The rule of one KPI definition, or None when the KPI never alerts.

    ``definition`` is a :class:`kpiforge.Definition` (only ``id``, ``thresholds`` and
    ``alerts`` are read). The block was validated by the KPI schema; this still refuses
    values of the wrong type so a rule built by hand fails loudly rather than silently.
    """
    block: Mapping[str, Any] = definition.alerts or {}
    if block.get("enabled") is False:
        return None
    thresholds = definition.thresholds.to_dict() if definition.thresholds is not None else {}
    has_thresholds = bool(thresholds) or getattr(definition, "target", None) is not None
    change = None
    if block.get("change"):
        raw = block["change"]
        change = Change(vs=str(raw.get("vs", "previous")),
                        drop_pct=_number(raw.get("drop_pct"), "alerts.change.drop_pct"),
                        rise_pct=_number(raw.get("rise_pct"), "alerts.change.rise_pct"))
        if change.vs not in ("previous", "year"):
            raise AlertConfigError(f"{definition.id}: alerts.change.vs must be 'previous' or 'year'",
                                   field="alerts.change.vs")
    if "on" in block:
        on = tuple(str(s) for s in block["on"])
    else:
        on = DEFAULT_ON if has_thresholds else ()
    anomaly = anomaly_of(definition)
    if not on and change is None and anomaly is None:
        return None
    severity = block.get("severity")
    if severity is not None and severity not in SEVERITIES:
        raise AlertConfigError(f"{definition.id}: alerts.severity must be one of "
                               f"{', '.join(SEVERITIES)}", field="alerts.severity")
    return Rule(
        kpi=definition.id,
        on=on,
        for_=int(block.get("for", 0) or 0),
        keep_firing_for=int(block.get("keep_firing_for", 0) or 0),
        change=change,
        anomaly=anomaly,
        severity=severity,
        labels={str(k): str(v) for k, v in (block.get("labels") or {}).items()},
        message=block.get("message"),
        send_resolved=block.get("send_resolved"),
    )


def _number(value: Any, name: str) -> float | None:
    if value is None:
        return None
    if not _finite(value) or value <= 0:
        raise AlertConfigError(f"{name} must be a positive number, got {value!r}", field=name)
    return float(value)
