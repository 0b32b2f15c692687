"""Load-time checks of SMART objective targets (``target:`` in ``objectives.yaml``).

They run once every objective has its final members (those its file lists plus the KPIs that
name it), because a target may only aim at one of the objective's own KPIs. Errors are what
would make progress meaningless (an unknown KPI, a date that is not in the calendar, a
deadline before the start); warnings are what is probably a slip but still computes (a
target on the wrong side of the baseline for the KPI's direction, no deadline).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from typing import Mapping

from ._model import Definition, Direction, Objective
from ._yamlio import Document
from .errors import Diagnostic, did_you_mean

__all__ = ["check_targets", "parse_target_date"]

Where = tuple[str | int, ...]


def parse_target_date(text: str | None) -> date | None:
    """``2026-12-31`` as a date; None when absent or not a day of the calendar. The schema's
    ``format: date`` already rejects ``2026-02-30`` in a file; this also guards a target
    built in Python, whose dates reach progress without the schema."""
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


def _at(doc: Document, path: Where, code: str, message: str, severity: str = "error") -> Diagnostic:
    found = doc.diagnostic(path, code, message)
    return found if severity == "error" else replace(found, severity=severity)


def check_targets(objectives: Mapping[str, Objective], definitions: Mapping[str, Definition],
                  listed_at: Mapping[str, tuple[Document, Where]]) -> list[Diagnostic]:
    """Every problem of every objective's target, located in its objectives file."""
    found: list[Diagnostic] = []
    for objective_id, objective in objectives.items():
        target = objective.target
        if target is None or objective_id not in listed_at:
            continue
        doc, where = listed_at[objective_id]
        at = where + ("target",)
        definition = definitions.get(target.kpi)
        if definition is None:
            found.append(_at(doc, at + ("kpi",), "unknown-name",
                             f"objective '{objective_id}' targets unknown KPI '{target.kpi}'"
                             f"{did_you_mean(target.kpi, definitions)}"))
        elif target.kpi not in objective.kpis:
            found.append(_at(doc, at + ("kpi",), "target-not-member",
                             f"objective '{objective_id}' targets '{target.kpi}', which is not "
                             f"one of its KPIs{did_you_mean(target.kpi, objective.kpis)}; add it "
                             "to its kpis or name the objective in the KPI's objectives"))
        found.extend(_check_dates(doc, at, objective_id, target.start, target.deadline))
        if definition is not None:
            found.extend(_check_side(doc, at, definition, target.value, target.baseline))
    return found


def _check_dates(doc: Document, at: Where, objective_id: str, start_text: str | None,
                 deadline_text: str | None) -> list[Diagnostic]:
    found: list[Diagnostic] = []
    days: dict[str, date | None] = {}
    for name, text in (("start", start_text), ("deadline", deadline_text)):
        days[name] = parse_target_date(text)
        if text is not None and days[name] is None:
            found.append(_at(doc, at + (name,), "invalid-date",
                             f"{name} '{text}' is not a day of the calendar"))
    start, deadline = days["start"], days["deadline"]
    if start is not None and deadline is not None and deadline <= start:
        found.append(_at(doc, at + ("deadline",), "deadline-before-start",
                         f"deadline {deadline} is not after the start {start}"))
    if deadline_text is None:
        # SMART's T: without a date, progress can be shown but never judged on track
        found.append(_at(doc, at, "target-no-deadline",
                         f"objective '{objective_id}' has a target but no deadline: a SMART "
                         "objective is time-bound, and without one whether it is on track "
                         "cannot be told", "warning"))
    return found


def _check_side(doc: Document, at: Where, definition: Definition, value: float,
                baseline: float | None) -> list[Diagnostic]:
    if baseline is None:
        return []
    if value == baseline:
        return [_at(doc, at + ("value",), "target-at-baseline",
                    f"target {value:g} equals the baseline: there is no progress to measure",
                    "warning")]
    # a `target` KPI may rightly be moved up or down towards its ideal value
    wrong = {Direction.HIGHER_IS_BETTER: value < baseline,
             Direction.LOWER_IS_BETTER: value > baseline}.get(definition.direction, False)
    if not wrong:
        return []
    side = "below" if value < baseline else "above"
    return [_at(doc, at + ("value",), "target-direction",
                f"target {value:g} is {side} the baseline {baseline:g}, but '{definition.id}' "
                f"is {str(definition.direction).replace('_', ' ')}: reaching it would mean "
                "getting worse", "warning")]
