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

This module is the public alerting API (what ``__all__`` lists; plugins use only these):

* the model: :class:`Alert` (what a sink's ``send`` gets), :class:`AlertState` (also
  ``kpiforge.AlertState``), :class:`Notification`, :class:`DispatchReport`;
* the lifecycle: :func:`dispatch`, :func:`retry_pending`, :func:`send_test`, :func:`simulate`;
* the state database: :class:`Store`, :func:`resolve_state_path`, :data:`DEFAULT_STATE_PATH`;
* matching: :func:`attributes_of_row` (what a stored alert is matched on) and
  :func:`silence_matches`;
* helpers for plugins: :func:`parse_duration` (``"90s"``, ``"1d"``...) and
  :func:`render_template` (the sandboxed Jinja2 renderer alert messages use).

The code lives in private modules: ``_model``, ``_evaluate``, ``_dispatch``, ``_simulate``,
with the state machine and store in ``_state`` and delivery in ``_delivery``.
"""

from __future__ import annotations

from .._model import AlertState
from ._dispatch import DEFAULT_STATE_PATH, dispatch, resolve_state_path, retry_pending, send_test
from ._model import Alert, DispatchReport, Notification, attributes_of_row, silence_matches
from ._rules import parse_duration
from ._simulate import simulate
from ._state import Store
from ._templates import render as render_template

__all__ = [
    "Alert",
    "AlertState",
    "DEFAULT_STATE_PATH",
    "DispatchReport",
    "Notification",
    "Store",
    "attributes_of_row",
    "dispatch",
    "parse_duration",
    "render_template",
    "resolve_state_path",
    "retry_pending",
    "send_test",
    "silence_matches",
    "simulate",
]
