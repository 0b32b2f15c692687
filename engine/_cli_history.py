"""``kpiforge history``: the values earlier runs stored, and the hook that stores them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping, Sequence

import click

if TYPE_CHECKING:  # rich is imported when output is drawn: --help does not need it
    from rich.table import Table

from ._cli_common import (fail, format_option, load_project_or_fail, print_csv,
                          print_diagnostics, print_json, project_option, stderr, stdout)
from ._format import STATUS_STYLE, format_value, plural
from ._periods import GRAINS
from ._terminal import text
from .errors import DefinitionError, KpiforgeError, did_you_mean

__all__ = ["history_command", "store_history"]

CSV_COLUMNS = ("kpi", "grain", "period", "value", "unit", "status", "reason", "reason_code",
               "version", "definition_hash", "definition_changed", "run_at", "annotations")


def store_history(project: Any, result: Any) -> None:
    """``kpiforge run``'s values into the history; a failure stops the run before alerting, so
    that what was alerted on is always what was stored."""
    try:
        project.record_history(result)
    except KpiforgeError as exc:
        fail(f"{exc} (kpiforge run --no-history computes without storing)")


@click.command(name="history")
@click.argument("kpi_id")
@project_option("kpiforge.yaml")
@click.option("--by", "by", metavar="DIM,...", multiple=True,
              help="The values stored for this split (comma-separated or repeated); "
                   "default: the totals.")
@click.option("--grain", type=click.Choice(GRAINS), help="Only this grain. Default: every grain stored.")
@click.option("--last", type=click.IntRange(min=1), metavar="N",
              help="Only the last N periods stored (of each grain).")
@format_option("table", "json", "csv")
@click.pass_obj
def history_command(context: Any, kpi_id: str, project_file: str, by: Sequence[str],
                    grain: str | None, last: int | None, fmt: str) -> None:
    """Show the values of a KPI that earlier `kpiforge run`s stored, oldest period first.

    A value computed with another definition (formula, inputs, unit, thresholds...) than the
    value before it is marked: the two may not be comparable. The annotations of each period
    shown (kpiforge annotate) are beside it.
    """
    project = load_project_or_fail(project_file, context.plugins)
    try:
        engine = project.engine
    except DefinitionError as exc:
        print_diagnostics(exc.diagnostics)
        fail(f"{plural(len(exc.errors), 'error')} in the definitions")
    try:
        history = project.history(kpi_id, by=list(by), last=last, grain=grain)
    except KpiforgeError as exc:
        fail(str(exc))
    if not history.records and kpi_id not in engine.definitions:
        fail(f"unknown KPI '{kpi_id}'{did_you_mean(kpi_id, sorted(engine.definitions))}")
    records = history.to_records()
    notes = {a.id: a for a in history.annotations}
    dims = sorted({d for r in records for d in r["slice"]})
    if fmt == "json":
        print_json({"results": records, "annotations": [a.to_dict() for a in notes.values()]})
    elif fmt == "csv":  # a spreadsheet reads the words, not ids
        rows = [{**{k: v for k, v in r.items() if k != "slice"}, **r["slice"],
                 "annotations": " | ".join(notes[i].text for i in r["annotations"])}
                for r in records]
        print_csv(rows, [*CSV_COLUMNS[:3], *dims, *CSV_COLUMNS[3:]])
    else:
        if not records:
            stderr.print(f"no stored values of {kpi_id}" + (f" by {', '.join(by)}" if by else "")
                         + f" in {history.path}: kpiforge run stores them", highlight=False,
                         markup=False)
            return
        stdout.print(history_table(records, engine, dims, notes))
        if any(r["definition_changed"] for r in records):
            stdout.print(text("* the definition changed since the value before: the two "
                              "may not be comparable", "dim"), highlight=False)


def history_table(records: list[dict[str, Any]], engine: Any, dims: Sequence[str],
                  notes: Mapping[int, Any] | None = None) -> Table:
    from rich.table import Table
    definition = engine.definitions.get(records[0]["kpi"])
    label = definition.label() if definition is not None else ""
    table = Table(title=text(f"{records[0]['kpi']} — {label}" if label else records[0]["kpi"]),
                  title_justify="left")
    grains = len({r["grain"] for r in records}) > 1
    if grains:
        table.add_column("grain", no_wrap=True)
    table.add_column("period", no_wrap=True)
    for dim in dims:
        table.add_column(text(dim), no_wrap=True)
    table.add_column("value", justify="right", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("version", justify="right", no_wrap=True)
    table.add_column("run at", no_wrap=True)
    table.add_column("reason", style="dim", overflow="fold")
    notes = notes or {}
    if notes:
        table.add_column("annotations", overflow="fold")
    for r in records:
        cells = [text(r["grain"])] if grains else []
        cells.append(text(r["period"] + (" *" if r["definition_changed"] else "")))
        cells.extend(text("∅" if r["slice"].get(d) is None else str(r["slice"][d])) for d in dims)
        cells += [text(format_value(r["value"], r["unit"], r["currency"])),
                  text(r["status"], STATUS_STYLE.get(r["status"], "")),
                  text(str(r["version"])), text(r["run_at"]), text(r["reason"] or "")]
        if notes:
            cells.append(text("\n".join(f"#{i} {notes[i].text}" for i in r["annotations"])))
        table.add_row(*cells)
    return table
