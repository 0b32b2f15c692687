"""Evaluation: alert rules applied to run records, through the state machine, to alerts.

Shared by :func:`kpiforge.alerts.dispatch` (against the SQLite store, inside its write
transaction) and :func:`kpiforge.alerts.simulate` (against an in-memory store). It decides what
is to be told; queueing and delivering is the caller's ``on_notification``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable, Iterable, Mapping, Protocol, Sequence

from markupsafe import escape

from .._format import format_change, format_value
from .._model import AlertState
from ..errors import AlertConfigError
from ._lang import alert_strings, localise_number
from ._messages import Messages
from ._model import Alert, DispatchReport, finite, iso, silenced
from ._rules import Rule, fingerprint, parse_duration, rule_for, slice_text
from ._state import advance, decide, mark_notified, new_row

__all__ = ["AlertRows", "DEFAULT_REPEAT_INTERVAL", "Settings", "build_alert", "evaluate", "step_key"]

DEFAULT_REPEAT_INTERVAL = "1d"


class AlertRows(Protocol):
    """The alert rows evaluation reads and writes: a :class:`~._state.Store`, or the
    :class:`~._messages.ReadThrough` view dispatch renders its messages against."""

    def get_alert(self, fp: str) -> dict[str, Any] | None: ...
    def put_alert(self, row: Mapping[str, Any]) -> None: ...


@dataclass
class Settings:
    repeat_interval: float
    send_resolved: bool
    lang: str
    drafts: bool = False  # whether KPIs with status: draft alert (alerting.drafts)

    @classmethod
    def from_alerting(cls, alerting: Mapping[str, Any] | None, lang: str) -> "Settings":
        alerting = alerting or {}
        if not isinstance(alerting, Mapping):
            raise AlertConfigError("alerting: expected a mapping", field="alerting")
        send_resolved = alerting.get("send_resolved", True)
        if not isinstance(send_resolved, bool):
            raise AlertConfigError("alerting.send_resolved: expected true or false",
                                   field="alerting.send_resolved")
        drafts = alerting.get("drafts", False)
        if not isinstance(drafts, bool):
            raise AlertConfigError("alerting.drafts: expected true or false", field="alerting.drafts")
        return cls(parse_duration(alerting.get("repeat_interval", DEFAULT_REPEAT_INTERVAL),
                                  field_name="alerting.repeat_interval"),
                   send_resolved, lang, drafts)

    def alerted(self, definitions: Mapping[str, Any]) -> Mapping[str, Any]:
        """The definitions that may alert: a draft is still being worked on, so its alerts
        would be noise to whoever is paged, unless the project opts in (``drafts: true``)."""
        if self.drafts:
            return definitions
        return {k: d for k, d in definitions.items() if getattr(d, "status", None) != "draft"}


def build_alert(definition: Any, rule: Rule, record: Mapping[str, Any], row: Mapping[str, Any],
                kind: str, change: float | None, now: float, lang: str,
                messages: Messages, causes: tuple[str, ...] = ()) -> Alert:
    state = AlertState.RESOLVED if kind == "resolved" else AlertState.FIRING
    value = finite(record.get("value"))
    unit = str(record.get("unit") or definition.unit.value)
    currency = getattr(definition, "currency", None)
    slice_ = dict(record.get("slice") or {})
    thresholds = definition.thresholds.to_dict()
    if getattr(definition, "target", None) is not None:
        thresholds = {**thresholds, "target": definition.target}
    base = dict(
        fingerprint=row["fingerprint"], kpi=definition.id, name=definition.label(lang),
        state=state, severity=row["severity"], status=str(record.get("status") or "unknown"),
        value=value, unit=unit, period=record.get("period"), slice=slice_,
        thresholds=thresholds, kind=kind, labels=dict(rule.labels),
        category=definition.category or "", owner=definition.owner or "", currency=currency,
        previous=finite(record.get("previous")), change_pct=change,
        starts_at=iso(row.get("fired_at")), ends_at=iso(row.get("resolved_at")) if state is AlertState.RESOLVED else None,
        timestamp=iso(now) or "",
        expected=finite(record.get("expected")), expected_low=finite(record.get("expected_low")),
        expected_high=finite(record.get("expected_high")), causes=causes,
    )
    words = alert_strings(lang)
    context = {
        **{k: v for k, v in base.items() if k not in ("timestamp",)},
        # status stays the code (templates compare it); status_text is it in words, in lang
        "status_text": words["statuses"].get(base["status"], base["status"]),
        "value_text": localise_number(format_value(value, unit, currency), lang),
        "slice_text": slice_text(slice_),
        "change_text": "" if change is None else localise_number(format_change(change), lang),
        "previous_text": localise_number(
            format_value(finite(record.get("previous")), unit, currency), lang),
        "reason": record.get("reason") or "",
        # an anomaly: the value left its expected range (the run's, so the same numbers)
        "anomaly": "anomaly" in causes and state is not AlertState.RESOLVED,
        "expected_text": _range_text(base, unit, currency, lang),
        "description": definition.text(lang),
        "lang": lang,
        "resolved": state is AlertState.RESOLVED,
    }
    message = messages.render(rule.message, context, resolved=state is AlertState.RESOLVED)
    return Alert(message=message, message_html=str(escape(message)), **base)


def _range_text(base: Mapping[str, Any], unit: str, currency: str | None, lang: str) -> str:
    low, high = base["expected_low"], base["expected_high"]
    if low is None or high is None:
        return ""
    return localise_number(f"{format_value(low, unit, currency)} – "
                           f"{format_value(high, unit, currency)}", lang)


def step_key(record: Mapping[str, Any], now: float) -> str:
    period = record.get("period")
    if period not in (None, ""):
        return str(period)
    # No period: every call is a new evaluation (microseconds keep keys unique and ordered).
    return "t:" + datetime.fromtimestamp(now, timezone.utc).strftime("%Y%m%dT%H%M%S.%f")


def evaluate(store: AlertRows, records: Iterable[Mapping[str, Any]],
             definition_of: Callable[[str], Any], settings: Settings, now: float,
             silences: Sequence[Mapping[str, Any]], report: DispatchReport,
             on_notification: Callable[[Alert, bool], None],
             messages: Messages | None = None) -> None:
    """Rules -> state machine -> notifications, all inside the caller's transaction."""
    messages = messages or Messages()
    rules: dict[str, Rule | None] = {}
    prepared = []
    for record in records:
        kpi = record.get("kpi")
        if not isinstance(kpi, str):
            continue
        if kpi not in rules:
            definition = definition_of(kpi)
            rules[kpi] = rule_for(definition) if definition is not None else None
        if rules[kpi] is None:
            continue
        prepared.append((step_key(record, now), kpi, record))
    # Oldest period first, so a run over several periods steps through them in order.
    prepared.sort(key=lambda item: (len(item[0]), item[0], item[1]))
    for key, kpi, record in prepared:
        rule = rules[kpi]
        assert rule is not None
        definition = definition_of(kpi)
        slice_ = dict(record.get("slice") or {})
        fp = fingerprint(kpi, slice_)
        condition = rule.evaluate(record)
        row = store.get_alert(fp) or new_row(fp, kpi, slice_)
        updated = advance(row, active=condition.active, severity=condition.severity,
                          step_key=key, steps_to_fire=rule.steps_to_fire,
                          keep_firing_for=rule.keep_firing_for, now=now)
        if updated is None:
            report.stale += 1
            continue
        updated.update(status=str(record.get("status") or "unknown"),
                       value=finite(record.get("value")), period=record.get("period"),
                       labels=dict(rule.labels))
        send_resolved = settings.send_resolved if rule.send_resolved is None else rule.send_resolved
        kind = decide(updated, now=now, repeat_interval=settings.repeat_interval,
                      send_resolved=send_resolved)
        if kind == "forget":
            mark_notified(updated, "resolved", now)  # a kind: what was last told
        elif kind is not None:
            alert = build_alert(definition, rule, record, updated, kind, condition.change_pct,
                                now, settings.lang, messages, condition.causes)
            is_silenced = silenced(alert, silences)
            if is_silenced:
                report.silenced += 1  # state kept; told nothing, so it is told when unsilenced
            else:
                mark_notified(updated, kind, now)
            on_notification(alert, is_silenced)
        store.put_alert(updated)
