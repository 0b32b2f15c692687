"""Progress towards SMART objective targets: how far a KPI has come and whether it is on track.

``progress`` is the share of the way from the baseline to the target that the value has
covered, ``(value - baseline) / (target - baseline)``: 0 at the baseline, 1 at the target,
negative when the KPI moved away, above 1 past the target (kept raw; ``shown`` clips it to
[0, 1] for display). Without a baseline, a ``higher_is_better`` KPI is measured from zero
(``value / target``: 120 leads of a 200-lead target is 60 %); for ``lower_is_better`` and
``target`` KPIs zero is no natural starting point, so progress is unknown, though reaching the
target is still recognised.

On track compares progress with the share of time elapsed between ``start`` and ``deadline``
(both days included) at the end of ``as_of``, the last day the value covers: a linear
expectation, so half-way through the time the KPI should be half-way there. Pure functions:
nothing here reads a clock, so the same run gives the same answer on any day.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum
from typing import Any, Iterable, Mapping

from ._model import Definition, Direction, Objective, ObjectiveTarget
from ._objectives_check import parse_target_date

__all__ = ["ObjectiveProgress", "ObjectiveStatus", "measure_progress", "progress_of_records",
           "run_progress"]


class ObjectiveStatus(StrEnum):
    """Where an objective's target stands for one period.

    ``achieved``: the value reached the target; ``overdue``: the deadline has passed without
    it; ``on_track`` / ``behind``: progress is at least / below the share of time elapsed;
    ``unknown``: it cannot be told, and ``ObjectiveProgress.missing`` says what is missing.
    """

    ACHIEVED = "achieved"
    ON_TRACK = "on_track"
    BEHIND = "behind"
    OVERDUE = "overdue"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class ObjectiveProgress:
    """One objective's target measured on one period's value.

    ``progress`` is raw (may be negative or above 1), ``shown`` the same clipped to [0, 1];
    ``expected`` the share of time elapsed (None without start or deadline); ``remaining``
    how far the value still is from the target, in the KPI's unit (0 once achieved).
    ``missing`` names what prevents a verdict (``value``, ``baseline``, ``start``,
    ``deadline``) and ``note`` says it in words.
    """

    objective: str
    kpi: str
    period: str
    value: float | None
    target: float
    status: ObjectiveStatus
    baseline: float | None = None
    start: str | None = None
    deadline: str | None = None
    owner: str = ""
    progress: float | None = None
    expected: float | None = None
    remaining: float | None = None
    missing: tuple[str, ...] = ()
    note: str = ""

    @property
    def shown(self) -> float | None:
        """``progress`` clipped to [0, 1], for a bar or a percentage."""
        return None if self.progress is None else min(max(self.progress, 0.0), 1.0)

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready dict of ``kpiforge run --format json``'s ``objectives``."""
        return {"objective": self.objective, "kpi": self.kpi, "period": self.period,
                "value": self.value, "target": self.target, "baseline": self.baseline,
                "progress": self.progress, "progress_shown": self.shown,
                "expected": self.expected, "remaining": self.remaining,
                "status": str(self.status), "missing": list(self.missing), "note": self.note,
                "start": self.start, "deadline": self.deadline, "owner": self.owner}


def _pct(share: float) -> str:
    return f"{share * 100:.0f} %"


def _sense(target: ObjectiveTarget, direction: Direction) -> int:
    """+1 when the target asks for more, -1 for less, 0 when that cannot be told."""
    if target.baseline is not None and target.value != target.baseline:
        # what the writer set wins; a target on the wrong side was warned about at load time
        return 1 if target.value > target.baseline else -1
    return {Direction.HIGHER_IS_BETTER: 1, Direction.LOWER_IS_BETTER: -1}.get(direction, 0)


def _elapsed(start: date, deadline: date, as_of: date) -> float:
    total = (deadline - start).days + 1
    return min(max(((as_of - start).days + 1) / total, 0.0), 1.0)


def measure_progress(target: ObjectiveTarget, direction: Direction, value: float | None,
                     as_of: date, *, objective: str = "", period: str = "",
                     owner: str = "", reason: str | None = None) -> ObjectiveProgress:
    """Progress of ``value`` (the KPI's value for the period ending on ``as_of``) towards
    ``target``; ``reason`` is why the value is null, if it is."""

    def result(status: ObjectiveStatus, note: str, missing: tuple[str, ...] = (), *,
               progress: float | None = None, expected: float | None = None,
               remaining: float | None = None) -> ObjectiveProgress:
        return ObjectiveProgress(objective, target.kpi, period, value, target.value, status,
                                 target.baseline, target.start, target.deadline,
                                 target.owner or owner, progress, expected, remaining, missing, note)

    if value is None or math.isnan(value):
        value = None
        why = f": {reason}" if reason else ""
        return result(ObjectiveStatus.UNKNOWN, f"no value for {period or 'the period'}{why}",
                      ("value",))
    sense = _sense(target, direction)
    if sense:
        achieved = (value - target.value) * sense >= 0
    else:
        achieved = math.isclose(value, target.value, rel_tol=1e-9, abs_tol=1e-12)
    progress: float | None = None
    if target.baseline is not None and target.value != target.baseline:
        progress = (value - target.baseline) / (target.value - target.baseline)
    elif target.baseline is None and direction is Direction.HIGHER_IS_BETTER and target.value:
        progress = value / target.value
    start, deadline = parse_target_date(target.start), parse_target_date(target.deadline)
    expected = _elapsed(start, deadline, as_of) if start and deadline and deadline > start else None
    numbers: dict[str, Any] = dict(progress=progress, expected=expected,
                                   remaining=0.0 if achieved else abs(target.value - value))

    if achieved:
        return result(ObjectiveStatus.ACHIEVED, f"target {target.value:g} reached ({value:g})",
                      **numbers)
    if deadline is not None and as_of >= deadline:
        way = f" at {_pct(progress)} of the way" if progress is not None else ""
        return result(ObjectiveStatus.OVERDUE,
                      f"deadline {deadline} reached{way}, target {target.value:g} not met", **numbers)
    if progress is None:
        what = "no baseline" if target.baseline is None else "the target equals the baseline"
        return result(ObjectiveStatus.UNKNOWN,
                      f"{what}: progress towards {target.value:g} cannot be measured",
                      ("baseline",), **numbers)
    if expected is None:
        missing = tuple(n for n, d in (("start", start), ("deadline", deadline)) if d is None)
        what = "no " + " and no ".join(missing) if missing else "a deadline not after the start"
        return result(ObjectiveStatus.UNKNOWN,
                      f"{_pct(progress)} of the way; {what}: whether that is on track cannot "
                      "be told", missing or ("deadline",), **numbers)
    status = ObjectiveStatus.ON_TRACK if progress >= expected else ObjectiveStatus.BEHIND
    return result(status, f"{_pct(progress)} of the way with {_pct(expected)} of the time elapsed",
                  **numbers)


def progress_of_records(objectives: Mapping[str, Objective],
                        definitions: Mapping[str, Definition], records: Iterable[Any],
                        period: str, last_day: date) -> tuple[ObjectiveProgress, ...]:
    """Progress of every objective whose target KPI has an un-sliced record for ``period``
    (whose last day is ``last_day``), in the objectives' order."""
    wanted = {o.target.kpi for o in objectives.values() if o.target is not None}
    found = {r.kpi: r for r in records
             if r.kpi in wanted and r.period == period and not r.slice}
    out = []
    for objective in objectives.values():
        target = objective.target
        if target is None or target.kpi not in found or target.kpi not in definitions:
            continue
        record = found[target.kpi]
        out.append(measure_progress(
            target, definitions[target.kpi].direction, record.value, last_day,
            objective=objective.id, period=period, owner=objective.owner,
            reason=None if record.reason is None else str(record.reason)))
    return tuple(out)


def run_progress(engine: Any, records: Iterable[Any], period: str, period_end: date,
                 dims: tuple[str, ...]) -> tuple[ObjectiveProgress, ...]:
    """What ``Project.run`` reports: progress on the latest period (its label and exclusive
    end, ``Period.end``), measured at its last day; nothing for a run split by dimensions,
    whose records are all slices."""
    if dims:
        return ()
    return progress_of_records(engine.objectives, engine.definitions, records, period,
                               period_end - timedelta(days=1))
