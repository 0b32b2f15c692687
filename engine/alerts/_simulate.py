"""Simulation: the alert rules and state machine run in memory over a list of steps.

For declarative alert tests (``kpiforge test``): nothing is stored or sent.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Mapping, Sequence

from ..errors import KpiforgeError
from ._evaluate import Settings, evaluate
from ._model import Alert, DispatchReport, finite, to_timestamp
from ._state import Store

__all__ = ["simulate"]


def _step_time(step: Mapping[str, Any], current: float) -> float:
    value = step.get("now", step.get("at"))
    if value is None:
        return current
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise KpiforgeError(f"step time {value!r} is not an ISO-8601 date-time") from None
    return to_timestamp(value)


def simulate(definition: Any, steps: Sequence[Mapping[str, Any]],
             alerting: Mapping[str, Any] | None = None, *, lang: str = "en") -> list[list[dict[str, Any]]]:
    """The notifications each step would produce, for declarative alert tests. Pure: in memory.

    A step is ``{period, value, status, previous}`` and optionally ``slice``, ``change_pct``,
    ``previous_year``, ``change_pct_year``, ``expected_low``/``expected_high`` (the expected
    range an anomaly rule compares with) and ``now``/``at`` (ISO date-time: the clock for
    ``repeat_interval``; without it the clock stands still, so repeats only appear when steps
    say when they happen). ``status`` defaults to the KPI's thresholds applied to ``value``;
    ``period`` defaults to the step number. The result has one list per step: empty means
    nothing is sent; otherwise dicts with ``state``, ``severity``, ``kind``, ``status``,
    ``value``, ``period``, ``slice``, ``fingerprint`` and ``message``.
    """
    from .._status import classify

    settings = Settings.from_alerting(alerting, lang)
    results: list[list[dict[str, Any]]] = []
    clock = datetime(2026, 1, 1, tzinfo=timezone.utc).timestamp()
    with Store(":memory:") as store:
        for i, step in enumerate(steps):
            clock = _step_time(step, clock)
            record = {k: step[k] for k in ("value", "status", "previous", "change_pct",
                                           "previous_year", "change_pct_year", "reason", "expected",
                                           "expected_low", "expected_high")
                      if k in step}
            record["kpi"] = definition.id
            record["period"] = str(step["period"]) if step.get("period") is not None else f"step-{i + 1:04d}"
            record["slice"] = dict(step.get("slice") or {})
            record.setdefault("unit", definition.unit.value)
            if "status" not in step:
                value = finite(step.get("value"))
                record["status"] = str(classify(value, definition.direction, definition.thresholds,
                                                definition.target, definition.tolerance))
            out: list[dict[str, Any]] = []

            def collect(alert: Alert, silenced: bool) -> None:
                out.append({"state": str(alert.state), "severity": alert.severity, "kind": alert.kind,
                            "status": alert.status, "value": alert.value, "period": alert.period,
                            "slice": dict(alert.slice), "fingerprint": alert.fingerprint,
                            "message": alert.message})

            report = DispatchReport()
            with store.transaction():
                evaluate(store, [record], lambda kpi: definition if kpi == definition.id else None,
                          settings, clock, (), report, collect)
            results.append(out)
    return results
