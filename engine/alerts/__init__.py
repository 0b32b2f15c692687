"""Alerts: KPI statuses become alerts with a lifecycle, delivered through sink plugins.

The public entry point is :meth:`kpiforge.Project.dispatch`, which calls :func:`dispatch`::

    report = dispatch(engine, records, project_dir=root, alerting=cfg.get("alerting"),
                      sinks=cfg.get("sinks"), routes=cfg.get("routes"),
                      state_path=cfg.get("state"), plugins=plugins)

It (1) applies each KPI's alert rule to each record, (2) advances the alert state machine
(inactive -> pending -> firing -> resolved) kept in SQLite, (3) writes every notification to
the outbox in the same transaction, then (4) delivers the outbox, each sink in its own thread
with a timeout and bounded retries. What fails stays in the outbox for the next dispatch or
``kpiforge alerts retry``. ``dry_run=True`` does steps 1-3 and rolls them back: the report
lists what would be sent and nothing changes.

An "evaluation" is one call with the records of one run; a record's step is keyed by its
``period``, so evaluating the same period twice replays that step instead of counting a second
consecutive evaluation, and a second identical run sends nothing new. Records without a
period (plain ``Engine.evaluate`` output) count as a new evaluation on every call.

:func:`simulate` runs the same rules and state machine in memory over a list of steps, for
declarative alert tests.
"""

from __future__ import annotations

import contextlib
import math
import time as _time
import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

from markupsafe import escape

from .._format import format_change, format_value
from ..errors import AlertConfigError, KpiforgeError, SinkError, StateError
from ._delivery import RetryPolicy, deliver, failpoint, send_with_retries
from ._routing import build_sink, parse_routes, parse_sinks, route_alert
from ._rules import Rule, fingerprint, parse_duration, rule_for, slice_text
from ._state import Store, advance, decide, mark_notified, new_row
from ._messages import Messages, ReadThrough

__all__ = [
    "Alert",
    "DEFAULT_STATE_PATH",
    "DispatchReport",
    "Notification",
    "dispatch",
    "resolve_state_path",
    "retry_pending",
    "send_test",
    "simulate",
]

DEFAULT_STATE_PATH = ".kpiforge/state.db"
DEFAULT_REPEAT_INTERVAL = "1d"
ALERT_TYPE = "kpi.alert"
ALERT_SCHEMA_ID = "https://kpiforge.dev/schemas/v1/alert.schema.json"
# Delivered outbox rows are kept this long (duplicate analysis, ``alerts pending`` history).
_KEEP_DELIVERED = 30 * 86400


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, timezone.utc).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class Alert:
    """One notification about one alert series, as handed to a sink's ``send``.

    ``id`` is the outbox message id: the same on every delivery attempt (Standard Webhooks
    ``webhook-id``). ``message`` is plain text (the template's output is never markup);
    ``message_html`` is that text HTML-escaped, for sinks that send HTML.
    """

    fingerprint: str
    kpi: str
    name: str
    state: str  # "firing" | "resolved"
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

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["slice"] = dict(self.slice)
        data["thresholds"] = dict(self.thresholds)
        data["labels"] = dict(self.labels)
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
                "state": self.state,
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
            },
        }


@dataclass(frozen=True)
class Notification:
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


def resolve_state_path(project_dir: str | Path, state: Any) -> str:
    """The state database path: ``state:`` (a path, or ``{path: ...}``) relative to the project."""
    if isinstance(state, Mapping):
        state = state.get("path")
    if state in (None, ""):
        state = DEFAULT_STATE_PATH
    if not isinstance(state, (str, Path)):
        raise AlertConfigError(f"state: expected a file path, got {state!r}", field="state")
    if str(state) == ":memory:":
        return ":memory:"
    path = Path(state).expanduser()
    if not path.is_absolute():
        path = Path(project_dir) / path
    return str(path)


# -- evaluation: rules + state machine -------------------------------------------------------

@dataclass
class _Settings:
    repeat_interval: float
    send_resolved: bool
    lang: str

    @classmethod
    def from_alerting(cls, alerting: Mapping[str, Any] | None, lang: str) -> "_Settings":
        alerting = alerting or {}
        if not isinstance(alerting, Mapping):
            raise AlertConfigError("alerting: expected a mapping", field="alerting")
        send_resolved = alerting.get("send_resolved", True)
        if not isinstance(send_resolved, bool):
            raise AlertConfigError("alerting.send_resolved: expected true or false",
                                   field="alerting.send_resolved")
        return cls(parse_duration(alerting.get("repeat_interval", DEFAULT_REPEAT_INTERVAL),
                                  field_name="alerting.repeat_interval"),
                   send_resolved, lang)


def _finite(value: Any) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def _attributes(alert: Alert) -> dict[str, str]:
    """What routes and silences match on: the fields, then slice values and labels."""
    attributes = {k: str(v) for k, v in alert.slice.items()}
    attributes.update({k: str(v) for k, v in alert.labels.items()})
    attributes.update(kpi=alert.kpi, category=alert.category, owner=alert.owner,
                      severity=alert.severity, state=alert.state, status=alert.status)
    return attributes


def _attributes_of_row(row: Mapping[str, Any]) -> dict[str, str]:
    """Like :func:`_attributes` for a stored alert row (no category/owner: not stored)."""
    attributes = {k: str(v) for k, v in (row.get("slice") or {}).items()}
    attributes.update({k: str(v) for k, v in (row.get("labels") or {}).items()})
    attributes.update(kpi=row["kpi"], severity=row.get("severity") or "",
                      state=row.get("state") or "", status=row.get("status") or "")
    return attributes


def silence_matches(attributes: Mapping[str, str], silence: Mapping[str, Any]) -> bool:
    if silence.get("kpi") and silence["kpi"] != attributes.get("kpi"):
        return False
    return all(attributes.get(k) == str(v) for k, v in (silence.get("matchers") or {}).items())


def _silenced(alert: Alert, silences: Sequence[Mapping[str, Any]]) -> bool:
    attributes = _attributes(alert)
    return any(silence_matches(attributes, s) for s in silences)


def _build_alert(definition: Any, rule: Rule, record: Mapping[str, Any], row: Mapping[str, Any],
                 kind: str, change: float | None, now: float, lang: str,
                 messages: Messages) -> Alert:
    state = "resolved" if kind == "resolved" else "firing"
    value = _finite(record.get("value"))
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
        previous=_finite(record.get("previous")), change_pct=change,
        starts_at=_iso(row.get("fired_at")), ends_at=_iso(row.get("resolved_at")) if state == "resolved" else None,
        timestamp=_iso(now) or "",
    )
    context = {
        **{k: v for k, v in base.items() if k not in ("timestamp",)},
        "value_text": format_value(value, unit, currency),
        "slice_text": slice_text(slice_),
        "change_text": "" if change is None else format_change(change),
        "previous_text": format_value(_finite(record.get("previous")), unit, currency),
        "reason": record.get("reason") or "",
        "description": definition.text(lang),
        "lang": lang,
        "resolved": state == "resolved",
    }
    message = messages.render(rule.message, context, resolved=state == "resolved")
    return Alert(message=message, message_html=str(escape(message)), **base)


def _step_key(record: Mapping[str, Any], now: float) -> str:
    period = record.get("period")
    if period not in (None, ""):
        return str(period)
    # No period: every call is a new evaluation (microseconds keep keys unique and ordered).
    return "t:" + datetime.fromtimestamp(now, timezone.utc).strftime("%Y%m%dT%H%M%S.%f")


def _evaluate(store: Store, records: Iterable[Mapping[str, Any]],
              definition_of: Callable[[str], Any], settings: _Settings, now: float,
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
        prepared.append((_step_key(record, now), kpi, record))
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
                       value=_finite(record.get("value")), period=record.get("period"),
                       labels=dict(rule.labels))
        send_resolved = settings.send_resolved if rule.send_resolved is None else rule.send_resolved
        kind = decide(updated, now=now, repeat_interval=settings.repeat_interval,
                      send_resolved=send_resolved)
        if kind == "forget":
            mark_notified(updated, "resolved", now)
        elif kind is not None:
            alert = _build_alert(definition, rule, record, updated, kind, condition.change_pct,
                                 now, settings.lang, messages)
            silenced = _silenced(alert, silences)
            if silenced:
                report.silenced += 1  # state kept; told nothing, so it is told when unsilenced
            else:
                mark_notified(updated, kind, now)
            on_notification(alert, silenced)
        store.put_alert(updated)


# -- dispatch --------------------------------------------------------------------------------

def _sink_types(plugins: Any) -> Mapping[str, Any]:
    # Explicit on purpose: a process-wide fallback would hide which plugins a caller uses.
    if plugins is None:
        raise TypeError("alerting needs the plugins that provide the sinks: pass plugins= "
                        "(kpiforge.Project.dispatch does)")
    return getattr(plugins, "sink_types", plugins)


def _to_timestamp(now: datetime | float | None) -> float:
    if now is None:
        return datetime.now(timezone.utc).timestamp()
    if isinstance(now, datetime):
        if now.tzinfo is None:
            now = now.replace(tzinfo=timezone.utc)
        return now.timestamp()
    return float(now)


def _new_message_id() -> str:
    return "msg_" + uuid.uuid4().hex


def _deliver_outbox(store: Store, db_path: str, sink_configs: Mapping[str, Any],
                    sink_types: Mapping[str, Any], project_dir: Path, now: float,
                    report: DispatchReport, *, force: bool, include_failed: bool,
                    sink: str | None = None) -> None:
    rows = store.undelivered(due_before=None if force else now, include_failed=include_failed,
                             sink=sink)
    if not rows:
        return
    handles: dict[str, tuple[Any, SinkError | None, RetryPolicy]] = {}
    for name in {row["sink"] for row in rows}:
        config = sink_configs.get(name)
        if config is None:
            continue
        try:
            handles[name] = (build_sink(config, sink_types, project_dir), None, config.policy)
        except SinkError as exc:
            handles[name] = (None, exc, config.policy)
    started = _time.monotonic()

    def clock() -> float:
        return now + (_time.monotonic() - started)

    result = deliver(db_path, rows, handles, clock=clock,
                     make_alert=lambda row: Alert.from_dict(row["payload"], id=row["id"]),
                     statuses=("pending", "failed") if include_failed else ("pending",))
    for name, sink_result in result.by_sink.items():
        if sink_result.sent:
            report.sent[name] = report.sent.get(name, 0) + sink_result.sent
        if sink_result.failed or sink_result.deferred:
            report.failed[name] = report.failed.get(name, 0) + sink_result.failed + sink_result.deferred
        if sink_result.errors:
            report.errors.setdefault(name, []).extend(sink_result.errors)


def dispatch(engine: Any, records: Iterable[Mapping[str, Any]], *, project_dir: str | Path,
             alerting: Mapping[str, Any] | None = None, sinks: Mapping[str, Any] | None = None,
             routes: Sequence[Any] | None = None, state_path: Any = None, plugins: Any = None,
             now: datetime | float | None = None, dry_run: bool = False,
             lang: str = "en") -> DispatchReport:
    """Evaluate alert rules on ``records``, advance the lifecycle, queue and deliver.

    ``engine`` gives the KPI definitions (``engine.definitions``); ``records`` are run records
    (``kpi``, ``period``, ``slice``, ``value``, ``unit``, ``status``, ``previous``,
    ``change_pct``, ...). ``alerting``/``sinks``/``routes``/``state_path`` are the raw values
    of the project file's keys; ``state_path`` is relative to ``project_dir`` (default
    ``.kpiforge/state.db``). ``plugins`` provides sink types (default: the engine's).
    ``now`` (datetime or epoch seconds) replaces the clock, for tests and replays.
    ``lang`` picks the KPI name (``labels``) used in messages.

    Sink factories get the sink's settings without ``type``/``retry``, with ``${ENV}``
    expanded and ``timeout`` in seconds (float), and a ``SinkContext`` holding
    ``project_dir`` (see :mod:`kpiforge.hookspecs`). With no ``routes`` every alert goes to every
    sink; an alert no route matches is counted in ``report.unrouted`` and not sent.
    Messages that failed for good (``failed``: a 4xx, a broken sink) are not retried by
    dispatch, only by :func:`retry_pending` (``kpiforge alerts retry``).

    Raises :class:`kpiforge.ProjectError` for an invalid ``sinks``/``routes`` configuration
    (before anything is written) and :class:`kpiforge.KpiforgeError` for other invalid
    settings. Delivery failures never raise: they are in the report and in the outbox.
    """
    project_dir = Path(project_dir)
    now_ts = _to_timestamp(now)
    settings = _Settings.from_alerting(alerting, lang)
    policy = RetryPolicy.from_alerting(alerting)
    sink_types = _sink_types(plugins if plugins is not None else getattr(engine, "plugins", None))
    sink_configs = parse_sinks(sinks, sink_types, base_policy=policy)
    route_list = parse_routes(routes, list(sink_configs))
    db_path = resolve_state_path(project_dir, state_path)
    if db_path == ":memory:" and not dry_run:
        # Delivery threads open their own connections, and an in-memory database would
        # forget every pending timer and outbox message at exit: never what a run wants.
        raise AlertConfigError("state: ':memory:' cannot hold alert state between runs; "
                               "give a file path (default .kpiforge/state.db)", field="state")
    report = DispatchReport(dry_run=dry_run, state_path=db_path)
    definitions = engine.definitions
    if dry_run and (db_path == ":memory:" or not Path(db_path).exists()):
        store = Store(":memory:")  # a dry run never creates the state database
    else:
        store = Store(db_path)
    try:
        silences = store.silences(active_at=now_ts)

        def queue(alert: Alert, silenced: bool) -> None:
            targets = () if silenced else tuple(route_alert(_attributes(alert), route_list,
                                                            list(sink_configs)))
            report.notifications.append(Notification(alert, targets, silenced))
            if silenced:
                return
            if not targets:
                report.unrouted += 1
            for sink in targets:
                store.add_outbox(_new_message_id(), alert.fingerprint, sink, alert.kind,
                                 alert.to_dict(), now_ts)

        # Templates are rendered first, outside any transaction, so a slow template never
        # holds the write lock; the transaction then uses those messages. Should another run
        # change the state in between, the new messages are rendered after a rollback.
        records = list(records)
        messages = Messages()
        with store.errors():
            _evaluate(ReadThrough(store), records, definitions.get, settings, now_ts, silences,
                      DispatchReport(), lambda alert, silenced: None, messages)
        for attempt in range(3):
            messages.strict = attempt < 2
            store.begin()
            try:
                with store.errors():
                    _evaluate(store, records, definitions.get, settings, now_ts, silences,
                              report, queue, messages)
            except BaseException:
                store.conn.execute("ROLLBACK")
                raise
            if not messages.missing:
                break
            store.conn.execute("ROLLBACK")
            messages.render_missing()
            report.reset()
        if dry_run:
            store.conn.execute("ROLLBACK")
            report.pending = store.pending_count()
            return report
        with store.errors():
            store.conn.execute("COMMIT")
        failpoint("after-outbox-write")
        _deliver_outbox(store, db_path, sink_configs, sink_types, project_dir, now_ts,
                        report, force=False, include_failed=False)
        with contextlib.suppress(StateError):
            store.prune_delivered(now_ts - _KEEP_DELIVERED)  # housekeeping: the next run can
        report.pending = store.pending_count()
        return report
    finally:
        store.close()


def retry_pending(*, project_dir: str | Path, sinks: Mapping[str, Any] | None,
                  state_path: Any = None, plugins: Any = None,
                  alerting: Mapping[str, Any] | None = None,
                  now: datetime | float | None = None, include_failed: bool = True,
                  sink: str | None = None) -> DispatchReport:
    """Deliver everything still in the outbox now, due or not (``kpiforge alerts retry``).

    With ``include_failed`` (the default) messages that failed for good (a 4xx, a broken sink
    configuration) are tried again too, since the reason may have been fixed.
    """
    project_dir = Path(project_dir)
    now_ts = _to_timestamp(now)
    sink_types = _sink_types(plugins)
    sink_configs = parse_sinks(sinks, sink_types, base_policy=RetryPolicy.from_alerting(alerting))
    db_path = resolve_state_path(project_dir, state_path)
    report = DispatchReport(state_path=db_path)
    if sink is not None:
        sink_configs = {k: v for k, v in sink_configs.items() if k == sink}
    with Store(db_path) as store:
        _deliver_outbox(store, db_path, sink_configs, sink_types, project_dir, now_ts, report,
                        force=True, include_failed=include_failed, sink=sink)
        report.pending = store.pending_count()
    return report


def send_test(sink_name: str, *, project_dir: str | Path, sinks: Mapping[str, Any] | None,
              plugins: Any = None, alerting: Mapping[str, Any] | None = None) -> Alert:
    """Send a test alert straight to one sink (no outbox); raise :class:`SinkError` on failure."""
    sink_types = _sink_types(plugins)
    sink_configs = parse_sinks(sinks, sink_types, base_policy=RetryPolicy.from_alerting(alerting))
    if sink_name not in sink_configs:
        known = ", ".join(sorted(sink_configs)) or "none defined"
        raise KpiforgeError(f"unknown sink '{sink_name}' (sinks in kpiforge.yaml: {known})")
    config = sink_configs[sink_name]
    sink = build_sink(config, sink_types, Path(project_dir))
    now = _iso(_to_timestamp(None)) or ""
    alert = Alert(
        fingerprint="0000000000000000", kpi="kpiforge_test", name="kpiforge test alert",
        state="firing", severity="info", status="ok", value=1.0, unit="count", period=None,
        slice={}, thresholds={}, kind="test",
        message=f"Test alert from kpiforge to sink '{sink_name}'. If you can read this, "
                "delivery works.",
        message_html=f"Test alert from kpiforge to sink &#39;{sink_name}&#39;. If you can read "
                     "this, delivery works.",
        timestamp=now, starts_at=now, id=_new_message_id())
    outcome = send_with_retries(sink.send, lambda: alert, config.policy)
    if not outcome.ok:
        assert outcome.error is not None
        raise SinkError(f"sink '{sink_name}': {outcome.error}", retryable=outcome.error.retryable)
    return alert


# -- simulation ------------------------------------------------------------------------------

def _step_time(step: Mapping[str, Any], current: float) -> float:
    value = step.get("now", step.get("at"))
    if value is None:
        return current
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise KpiforgeError(f"step time {value!r} is not an ISO-8601 date-time") from None
    return _to_timestamp(value)


def simulate(definition: Any, steps: Sequence[Mapping[str, Any]],
             alerting: Mapping[str, Any] | None = None, *, lang: str = "en") -> list[list[dict[str, Any]]]:
    """The notifications each step would produce, for declarative alert tests. Pure: in memory.

    A step is ``{period, value, status, previous}`` and optionally ``slice``, ``change_pct``,
    ``previous_year``, ``change_pct_year`` and ``now``/``at`` (ISO date-time: the clock for
    ``repeat_interval``; without it the clock stands still, so repeats only appear when steps
    say when they happen). ``status`` defaults to the KPI's thresholds applied to ``value``;
    ``period`` defaults to the step number. The result has one list per step: empty means
    nothing is sent; otherwise dicts with ``state``, ``severity``, ``kind``, ``status``,
    ``value``, ``period``, ``slice``, ``fingerprint`` and ``message``.
    """
    from .._status import classify

    settings = _Settings.from_alerting(alerting, lang)
    results: list[list[dict[str, Any]]] = []
    clock = datetime(2026, 1, 1, tzinfo=timezone.utc).timestamp()
    with Store(":memory:") as store:
        for i, step in enumerate(steps):
            clock = _step_time(step, clock)
            record = {k: step[k] for k in ("value", "status", "previous", "change_pct",
                                           "previous_year", "change_pct_year", "reason")
                      if k in step}
            record["kpi"] = definition.id
            record["period"] = str(step["period"]) if step.get("period") is not None else f"step-{i + 1:04d}"
            record["slice"] = dict(step.get("slice") or {})
            record.setdefault("unit", definition.unit.value)
            if "status" not in step:
                value = _finite(step.get("value"))
                record["status"] = str(classify(value, definition.direction, definition.thresholds,
                                                definition.target, definition.tolerance))
            out: list[dict[str, Any]] = []

            def collect(alert: Alert, silenced: bool) -> None:
                out.append({"state": alert.state, "severity": alert.severity, "kind": alert.kind,
                            "status": alert.status, "value": alert.value, "period": alert.period,
                            "slice": dict(alert.slice), "fingerprint": alert.fingerprint,
                            "message": alert.message})

            report = DispatchReport()
            with store.transaction():
                _evaluate(store, [record], lambda kpi: definition if kpi == definition.id else None,
                          settings, clock, (), report, collect)
            results.append(out)
    return results
