"""``kpiforge run``: KPI values per period and dimension, computed from the project's sources."""

from __future__ import annotations

from typing import Any, Sequence

import click
from rich.table import Table

from ._format import STATUS_STYLE, format_change, format_value
from ._periods import GRAINS
from .errors import DefinitionError, KpiforgeError

__all__ = ["project_option", "run_command"]

project_option = click.option(
    "--project", "project_file", default="kpiforge.yaml", show_default=True,
    type=click.Path(dir_okay=False),
    help="The project file: definitions, time zone and sources.")


def load_project_or_fail(path: str, plugins: Any) -> Any:
    """The project at ``path``, or its diagnostics on stderr and exit 1."""
    from ._project import load_project
    from .cli import fail, print_diagnostics

    try:
        return load_project(path, plugins=plugins)
    except DefinitionError as exc:
        print_diagnostics(exc.diagnostics)
        errors = len(exc.errors)
        fail(f"{errors} error{'s' if errors != 1 else ''} in {path}")


def _slice_text(slice_: dict[str, Any]) -> str:
    return ", ".join(f"{k}={'∅' if v is None else v}" for k, v in slice_.items())


@click.command(name="run")
@project_option
@click.option("--grain", type=click.Choice(GRAINS),
              help="Period length. Default: the --period's own grain, else month. "
                   "Weeks are ISO weeks unless the project sets week_start.")
@click.option("--period", metavar="PERIOD",
              help="One period: 2026-10-14, 2026-W43, 2026-10, 2026-Q4 or 2026. With a finer "
                   "--grain, every period of that grain overlapping it.")
@click.option("--from", "start", metavar="DATE", help="First day (YYYY-MM-DD), included.")
@click.option("--to", "end", metavar="DATE",
              help="Last day (YYYY-MM-DD), included. Default: the latest day with data.")
@click.option("--last", type=click.IntRange(min=1), metavar="N",
              help="The last N periods, ending with the latest period that has data "
                   "(which may still be in progress).")
@click.option("--by", "by", metavar="DIM,...", multiple=True,
              help="Split by these dimensions (comma-separated or repeated).")
@click.option("--kpi", "kpis", multiple=True, help="KPI to compute (repeatable). Default: every "
              "KPI the sources provide all inputs for.")
@click.option("--compare", metavar="previous,year", multiple=True,
              help="Also show the previous period's value and/or the same period a year earlier.")
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table")
@click.pass_obj
def run_command(context: Any, project_file: str, grain: str | None, period: str | None,
                start: str | None, end: str | None, last: int | None, by: Sequence[str],
                kpis: Sequence[str], compare: Sequence[str], fmt: str) -> None:
    """Compute KPIs per period (and dimension) from the project's data sources.

    Periods are whole: --from/--to select every period overlapping the dates. Without --period,
    --from or --last, the latest period with data is computed. A period or slice without data
    is null with the reason "no data", never 0.
    """
    from ._run import run
    from .cli import fail, print_csv, print_diagnostics, print_json, stderr, stdout

    if sum(x is not None for x in (period, start if start is not None else end, last)) > 1:
        fail("use one of --period, --from/--to and --last", 2)
    project = load_project_or_fail(project_file, context.plugins)
    try:
        engine = project.engine(context.plugins)
    except DefinitionError as exc:
        print_diagnostics(exc.diagnostics)
        fail(f"{len(exc.errors)} error(s) in the definitions")
    print_diagnostics(engine.warnings)
    try:
        result = run(engine, project, grain=grain, period=period, by=list(by),
                     kpis=list(kpis) or None, compare=list(compare), start=start, end=end, last=last)
    except KpiforgeError as exc:
        fail(str(exc))
    records = result.to_records()
    if not records and fmt == "table":
        stderr.print("no data in the sources for the requested periods", highlight=False)
    if fmt == "json":
        print_json({"results": records})
        return
    both = len(result.compare) == 2
    compare_columns = ["previous", "change_pct"] if result.compare else []
    if both:
        compare_columns += ["previous_year", "change_pct_year"]
    if fmt == "csv":
        rows = [{**{k: v for k, v in r.items() if k != "slice"}, **r["slice"]} for r in records]
        print_csv(rows, ["kpi", "period", *result.by, "value", "unit", "status", "reason",
                         *compare_columns])
        return
    table = Table(title=f"KPIs by {result.grain}" + (f" and {', '.join(result.by)}" if result.by else ""))
    for column in ("KPI", "period", *(["slice"] if result.by else []), "value", "status"):
        table.add_column(column, justify="right" if column == "value" else "left")
    for column in compare_columns:
        table.add_column(column.replace("_", " "), justify="right")
    table.add_column("reason", style="dim")
    for r in records:
        definition = engine.definitions.get(r["kpi"])
        currency = definition.currency if definition else None
        cells = [r["kpi"], r["period"], *([_slice_text(r["slice"])] if result.by else []),
                 format_value(r["value"], r["unit"], currency),
                 f"[{STATUS_STYLE.get(r['status'], '')}]{r['status']}[/]"]
        for column in compare_columns:
            cells.append(format_change(r[column]) if column.startswith("change")
                         else format_value(r[column], r["unit"], currency))
        cells.append(r["reason"] or "")
        table.add_row(*cells)
    stdout.print(table)
