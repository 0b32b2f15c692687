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

from ._dispatch import DEFAULT_STATE_PATH, dispatch, resolve_state_path, retry_pending, send_test
from ._evaluate import DEFAULT_REPEAT_INTERVAL
from ._model import (
    ALERT_SCHEMA_ID,
    ALERT_TYPE,
    Alert,
    DispatchReport,
    Notification,
    silence_matches,
)
from ._model import attributes_of_row as _attributes_of_row
from ._rules import parse_duration
from ._simulate import simulate
from ._state import Store

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
