"""Dispatch: queue what evaluation decided in the outbox, then deliver the outbox to sinks.

:func:`dispatch` evaluates and writes state and outbox in one transaction, then delivers;
:func:`retry_pending` delivers what is left; :func:`send_test` sends one test alert straight
to a sink. See :mod:`kpiforge.alerts` for the whole lifecycle.
"""

from __future__ import annotations

import contextlib
import time as _time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from .._model import AlertState
from .._state_path import DEFAULT_STATE_PATH, resolve_state_path
from ..errors import AlertConfigError, KpiforgeError, SinkError, StateError
from ._delivery import RetryPolicy, deliver, failpoint, send_with_retries
from ._evaluate import Settings, evaluate
from ._messages import Messages, ReadThrough
from ._model import Alert, DispatchReport, Notification, attributes, iso, to_timestamp
from ._routing import build_sink, parse_routes, parse_sinks, route_alert
from ._state import Store

__all__ = [
    "DEFAULT_STATE_PATH",
    "dispatch",
    "resolve_state_path",
    "retry_pending",
    "send_test",
]

# Delivered outbox rows are kept this long (duplicate analysis, ``alerts pending`` history).
_KEEP_DELIVERED = 30 * 86400


def _sink_types(plugins: Any) -> Mapping[str, Any]:
    # Explicit on purpose: a process-wide fallback would hide which plugins a caller uses.
    if plugins is None:
        raise TypeError("alerting needs the plugins that provide the sinks: pass plugins= "
                        "(kpiforge.Project.dispatch does)")
    return getattr(plugins, "sink_types", plugins)


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
    now_ts = to_timestamp(now)
    settings = Settings.from_alerting(alerting, lang)
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
    definitions = settings.alerted(engine.definitions)
    if dry_run and (db_path == ":memory:" or not Path(db_path).exists()):
        store = Store(":memory:")  # a dry run never creates the state database
    else:
        store = Store(db_path)
    try:
        silences = store.silences(active_at=now_ts)

        def queue(alert: Alert, silenced: bool) -> None:
            targets = () if silenced else tuple(route_alert(attributes(alert), route_list,
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
            evaluate(ReadThrough(store), records, definitions.get, settings, now_ts, silences,
                      DispatchReport(), lambda alert, silenced: None, messages)
        for attempt in range(3):
            messages.strict = attempt < 2
            store.begin()
            try:
                with store.errors():
                    evaluate(store, records, definitions.get, settings, now_ts, silences,
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
    now_ts = to_timestamp(now)
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
    now = iso(to_timestamp(None)) or ""
    alert = Alert(
        fingerprint="0000000000000000", kpi="kpiforge_test", name="kpiforge test alert",
        state=AlertState.FIRING, severity="info", status="ok", value=1.0, unit="count", period=None,
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
