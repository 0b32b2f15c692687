"""``kpiforge run``'s objectives table: each SMART target's progress on the latest period."""

from __future__ import annotations

from typing import Any

from rich.table import Table
from rich.text import Text

from ._format import format_value
from ._terminal import text

__all__ = ["OBJECTIVE_STYLE", "objectives_note", "objectives_table"]

OBJECTIVE_STYLE = {
    "achieved": "bold green",
    "on_track": "green",
    "behind": "bold yellow",
    "overdue": "bold red",
    "unknown": "dim",
}


def _has_targets(engine: Any) -> bool:
    return any(o.target is not None for o in engine.objectives.values())


def objectives_note(engine: Any, result: Any) -> Text | None:
    """Why no objective is shown for a run split by dimensions, when some have a target."""
    if not result.by or not _has_targets(engine):
        return None
    return text("objectives: targets are for the whole, so their progress is shown only "
                "for a run without --by", "dim")


def objectives_table(engine: Any, result: Any, lang: str = "en") -> Table | None:
    """One row per objective target measured by the run, None when there is none."""
    rows = result.objective_progress
    if not rows:
        return None
    table = Table(title=text(f"Objectives for {rows[0].period}"), title_justify="left")
    for name, justify in (("objective", "left"), ("KPI", "left"), ("value", "right"),
                          ("target", "right"), ("progress", "right"), ("time", "right"),
                          ("status", "left"), ("deadline", "left"), ("owner", "left"),
                          ("note", "left")):
        table.add_column(name, justify=justify, no_wrap=name not in ("note", "owner"),  # type: ignore[arg-type]
                         style="dim" if name == "note" else None,
                         overflow="fold" if name == "note" else "ellipsis")
    for p in rows:
        definition = engine.definitions.get(p.kpi)
        objective = engine.objectives.get(p.objective)
        unit = definition.unit.value if definition is not None else ""
        currency = definition.currency if definition is not None else None
        label = objective.label(lang) if objective is not None else p.objective
        table.add_row(
            text(label), text(p.kpi), text(format_value(p.value, unit, currency)),
            text(format_value(p.target, unit, currency)),
            text("—" if p.progress is None else f"{p.progress * 100:.0f} %"),
            text("—" if p.expected is None else f"{p.expected * 100:.0f} %"),
            text(str(p.status), OBJECTIVE_STYLE.get(str(p.status), "")),
            text(p.deadline or "—"), text(p.owner or "—"), text(p.note))
    return table
