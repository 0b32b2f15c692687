"""The alert model: what a sink receives (:class:`Alert`), what one dispatch created and did
(:class:`Notification`, :class:`DispatchReport`), and what routes and silences match on.

Kept free of SQLite and of the template sandbox, so a sink (``kpiforge.sinks``) can name
:class:`Alert` without loading either.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any, Mapping, Sequence

from .._format import format_value
from .._model import AlertState
from ._rules import slice_text

__all__ = [
    "ALERT_SCHEMA_ID",
    "ALERT_TYPE",
    "Alert",
    "DispatchReport",
    "Notification",
    "attributes",
    "attributes_of_row",
    "finite",
    "iso",
    "silence_matches",
    "silenced",
    "to_timestamp",
]

ALERT_TYPE = "kpi.alert"
ALERT_SCHEMA_ID = "https://kpiforge.dev/schemas/v1/alert.schema.json"


def iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, timezone.utc).isoformat().replace("+00:00", "Z")


def to_timestamp(now: datetime | float | None) -> float:
    if now is None:
        return datetime.now(timezone.utc).timestamp()
    if isinstance(now, datetime):
        if now.tzinfo is None:
            now = now.replace(tzinfo=timezone.utc)
        return now.timestamp()
    return float(now)


def finite(value: Any) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


@dataclass(frozen=True)
class Alert:
    """One notification about one alert series, as handed to a sink's ``send``.

    ``id`` is the outbox message id: the same on every delivery attempt (Standard Webhooks
    ``webhook-id``). ``message`` is plain text (the template's output is never markup);
    ``message_html`` is that text HTML-escaped, for sinks that send HTML. ``state`` is an
    :class:`~kpiforge.AlertState` (``FIRING`` or ``RESOLVED``); a string value is converted.
    """

    fingerprint: str
    kpi: str
    name: str
    state: AlertState
    severity: str
    status: str
    value: float | None
    unit: str
    period: str | None
    slice: Mapping[str, Any]
    thresholds: Mapping[str, float]
    message: str
    message_html: str = ""
    kind: str = "firing"  # firing | repeat | resolved | test
    labels: Mapping[str, str] = field(default_factory=dict)
    category: str = ""
    owner: str = ""
    currency: str | None = None
    previous: float | None = None
    change_pct: float | None = None
    starts_at: str | None = None
    ends_at: str | None = None
    timestamp: str = ""
    id: str = ""
    expected: float | None = None
    expected_low: float | None = None
    expected_high: float | None = None
    causes: tuple[str, ...] = ()  # the rules that made it fire: status, change, anomaly

    def __post_init__(self) -> None:
        # Outbox payloads and sinks' own tests give the state as its stored string.
        object.__setattr__(self, "state", AlertState(self.state))
        object.__setattr__(self, "causes", tuple(self.causes))  # a JSON list from the outbox

    def to_dict(self) -> dict[str, Any]:
        """Plain data (the outbox payload): the state is its string value."""
        data = asdict(self)
        data["state"] = str(self.state)
        data["slice"] = dict(self.slice)
        data["thresholds"] = dict(self.thresholds)
        data["labels"] = dict(self.labels)
        data["causes"] = list(self.causes)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], **changes: Any) -> "Alert":
        known = {f for f in cls.__dataclass_fields__}
        values = {k: v for k, v in data.items() if k in known}
        values.update(changes)
        return cls(**values)

    @property
    def value_text(self) -> str:
        return format_value(self.value, self.unit, self.currency)

    @property
    def slice_text(self) -> str:
        return slice_text(self.slice)

    def payload(self) -> dict[str, Any]:
        """The webhook body, as published in ``schemas/alert.schema.json``."""
        return {
            "type": ALERT_TYPE,
            "timestamp": self.timestamp,
            "data": {
                "fingerprint": self.fingerprint,
                "kpi": self.kpi,
                "name": self.name,
                "state": str(self.state),
                "severity": self.severity,
                "status": self.status,
                "value": self.value,
                "unit": self.unit,
                "period": self.period,
                "slice": dict(self.slice),
                "thresholds": dict(self.thresholds),
                "message": self.message,
                "kind": self.kind,
                "labels": dict(self.labels),
                "category": self.category,
                "owner": self.owner,
                "previous": self.previous,
                "change_pct": self.change_pct,
                "starts_at": self.starts_at,
                "ends_at": self.ends_at,
                "causes": list(self.causes),
                "expected": self.expected,
                "expected_low": self.expected_low,
                "expected_high": self.expected_high,
            },
        }


@dataclass(frozen=True)
class Notification:
    """One alert a dispatch created, with the sinks it was queued for (none when silenced)."""

    alert: Alert
    sinks: tuple[str, ...]
    silenced: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"alert": self.alert.payload()["data"], "sinks": list(self.sinks),
                "silenced": self.silenced}


@dataclass
class DispatchReport:
    """What one :func:`dispatch` did.

    ``notifications`` are the alerts created this call (``silenced`` ones were not queued);
    ``sent``/``failed`` count outbox messages per sink delivered or not in this call (older
    messages that came due included); ``pending`` is what remains in the outbox afterwards.
    """

    notifications: list[Notification] = field(default_factory=list)
    sent: dict[str, int] = field(default_factory=dict)
    failed: dict[str, int] = field(default_factory=dict)
    errors: dict[str, list[str]] = field(default_factory=dict)
    pending: int = 0
    silenced: int = 0
    unrouted: int = 0
    stale: int = 0
    dry_run: bool = False
    state_path: str = ""

    def reset(self) -> None:
        self.notifications.clear()
        self.silenced = self.unrouted = self.stale = 0

    @property
    def created(self) -> int:
        return sum(1 for n in self.notifications if not n.silenced)

    def to_dict(self) -> dict[str, Any]:
        return {
            "created": self.created,
            "notifications": [n.to_dict() for n in self.notifications],
            "sent": dict(self.sent),
            "failed": dict(self.failed),
            "errors": {k: list(v) for k, v in self.errors.items()},
            "pending": self.pending,
            "silenced": self.silenced,
            "unrouted": self.unrouted,
            "stale": self.stale,
            "dry_run": self.dry_run,
            "state_path": self.state_path,
        }


def attributes(alert: Alert) -> dict[str, str]:
    """What routes and silences match on: the fields, then slice values and labels."""
    result = {k: str(v) for k, v in alert.slice.items()}
    result.update({k: str(v) for k, v in alert.labels.items()})
    result.update(kpi=alert.kpi, category=alert.category, owner=alert.owner,
                  severity=alert.severity, state=str(alert.state), status=alert.status)
    return result


def attributes_of_row(row: Mapping[str, Any]) -> dict[str, str]:
    """Like :func:`attributes` for a stored alert row (no category/owner: not stored)."""
    result = {k: str(v) for k, v in (row.get("slice") or {}).items()}
    result.update({k: str(v) for k, v in (row.get("labels") or {}).items()})
    result.update(kpi=row["kpi"], severity=row.get("severity") or "",
                  state=row.get("state") or "", status=row.get("status") or "")
    return result


def silence_matches(attributes: Mapping[str, str], silence: Mapping[str, Any]) -> bool:
    """Whether one silence (its ``kpi`` and ``matchers``) covers an alert with ``attributes``."""
    if silence.get("kpi") and silence["kpi"] != attributes.get("kpi"):
        return False
    return all(attributes.get(k) == str(v) for k, v in (silence.get("matchers") or {}).items())


def silenced(alert: Alert, silences: Sequence[Mapping[str, Any]]) -> bool:
    matched_on = attributes(alert)
    return any(silence_matches(matched_on, s) for s in silences)
