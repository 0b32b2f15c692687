"""``kpiforge run``'s objectives table: each SMART target's progress on the latest period."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # rich is imported when output is drawn: --help does not need it
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
    """One row per objective target measured by the run, None when there is none. The owner
    sits under the objective's name and the note is shown only when a verdict is missing, so
    the table fits a terminal like the KPI table above it."""
    from rich.table import Table
    from rich.text import Text
    rows = result.objective_progress
    if not rows:
        return None
    table = Table(title=text(f"Objectives for {rows[0].period}"), title_justify="left")
    table.add_column("objective")
    table.add_column("KPI", no_wrap=True)
    for name in ("value", "target", "progress", "time"):
        table.add_column(name, justify="right", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("deadline", no_wrap=True)
    notes = any(p.missing for p in rows)
    if notes:
        table.add_column("note", style="dim", overflow="fold")
    for p in rows:
        definition = engine.definitions.get(p.kpi)
        objective = engine.objectives.get(p.objective)
        unit = definition.unit.value if definition is not None else ""
        currency = definition.currency if definition is not None else None
        label = objective.label(lang) if objective is not None else p.objective
        cells = [Text.assemble(text(label), "\n", text(p.owner, "dim")) if p.owner else text(label),
                 text(p.kpi), text(format_value(p.value, unit, currency)),
                 text(format_value(p.target, unit, currency)),
                 text("—" if p.progress is None else f"{p.progress * 100:.0f} %"),
                 text("—" if p.expected is None else f"{p.expected * 100:.0f} %"),
                 text(str(p.status).replace("_", " "), OBJECTIVE_STYLE.get(str(p.status), "")),
                 text(p.deadline or "—")]
        if notes:
            cells.append(text(p.note if p.missing else ""))
        table.add_row(*cells)
    return table
