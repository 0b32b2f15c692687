"""``kpiforge run``: KPI values per period and dimension, computed from the project's sources."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NoReturn, Sequence

import click
from click.core import ParameterSource

if TYPE_CHECKING:  # rich is imported when output is drawn: --help does not need it
    from rich.table import Table
    from rich.text import Text

from ._cli_common import (fail, format_option, load_project_or_fail, loaded_engine,
                          print_csv, print_diagnostics, print_json, project_option,
                          quiet_option, stderr, stdout)
from ._cli_objectives import objectives_note, objectives_table
from ._cli_progress import progress_display
from ._format import STATUS_STYLE, format_change, format_value, plural
from ._periods import GRAINS
from ._terminal import text
from .errors import KpiforgeError

__all__ = ["EXIT_FAIL_ON", "EXIT_UNDELIVERED", "run_command"]

# Exit codes of kpiforge run: 0 success, 1 a definition, project or data error (or a data
# warning under --strict), 2 a usage error, EXIT_UNDELIVERED when the KPIs were computed but
# some notification is left undelivered in the outbox, EXIT_FAIL_ON when --fail-on matched.
# When several apply, the smallest code wins.
EXIT_UNDELIVERED = 3
EXIT_FAIL_ON = 4
_SEVERITY = {"warning": 1, "critical": 2}

@click.command(name="run")
@project_option("kpiforge.yaml")
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
@click.option("--lang", type=click.Choice(["en", "fr"]), default="en", show_default=True,
              help="Language of KPI names and of alert messages. Without it, alert messages "
                   "follow the project's alerting.lang, else its lang.")
@format_option("table", "text", "json", "csv")
@quiet_option
@click.option("--no-alerts", is_flag=True, help="Compute only; leave alert state and sinks alone.")
@click.option("--no-history", is_flag=True, help="Do not store this run's values in the history.")
@click.option("--dry-run", is_flag=True,
              help="Print the alerts this run would send, without sending or recording them.")
@click.option("--strict", is_flag=True,
              help="Treat data warnings (rows left out for lack of a time) as errors: exit 1, "
                   "and send no alert.")
@click.option("--fail-on", type=click.Choice(["warning", "critical"]),
              help="Exit 4 when any KPI has this status or a worse one (for CI jobs).")
@click.pass_obj
def run_command(context: Any, project_file: str, grain: str | None, period: str | None,
                start: str | None, end: str | None, last: int | None, by: Sequence[str],
                kpis: Sequence[str], compare: Sequence[str], lang: str, fmt: str, quiet: bool,
                no_alerts: bool, no_history: bool, dry_run: bool, strict: bool,
                fail_on: str | None) -> None:
    """Compute KPIs per period (and dimension) from the project's data sources.

    Periods are whole: --from/--to select every period overlapping the dates. Without --period,
    --from or --last, the latest period with data is computed. A period or slice without data
    is null with the reason "no data", never 0.

    Unless --dry-run or --no-history, the values are stored in the project's history
    (kpiforge history), replacing those of an earlier run of the same periods.

    Exit codes: 0 success; 1 a definition, project or data error (with --strict, also a data
    warning); 2 a usage error; 3 computed, but some notification is left undelivered in the
    outbox (kpiforge alerts retry); 4 --fail-on matched. The smallest that applies wins.
    """
    if sum(x is not None for x in (period, start if start is not None else end, last)) > 1:
        fail("use one of --period, --from/--to and --last", 2)
    project = load_project_or_fail(project_file, context.plugins)
    engine = loaded_engine(lambda: project.engine)
    if not no_alerts:
        route_problems = project.check_routes(engine)
        if route_problems:
            print_diagnostics(route_problems)
            fail(f"{plural(len(route_problems), 'error')} in the routes of {project_file}")
    try:
        with progress_display("computing KPIs", quiet=quiet) as progress:
            result = project.run(grain=grain, period=period, by=list(by),
                                 kpis=list(kpis) or None, compare=list(compare), start=start,
                                 end=end, last=last, progress=progress)
    except KpiforgeError as exc:
        fail_with_debug(exc, context)
    records = result.to_records()
    for warning in result.warnings:
        from rich.text import Text  # only for a warning: JSON and CSV output need no rich

        label = ("error:", "bold red") if strict else ("warning:", "yellow")
        stderr.print(Text.assemble(label, " ", text(warning)), highlight=False)
    if not records and fmt == "table":
        stderr.print("no data in the sources for the requested periods", highlight=False)
    if fmt == "json":
        print_json({"results": records, "warnings": list(result.warnings),
                    "objectives": [p.to_dict() for p in result.objective_progress]})
    elif fmt == "csv":
        print_csv_records(records, result)
    else:
        stdout.print(run_table(records, engine, result, compare_columns_of(result), lang))
        for note in collapsed_notes(records, engine):
            stdout.print(note, highlight=False)
        for extra in (objectives_table(engine, result, lang), objectives_note(engine, result)):
            if extra is not None:
                stdout.print(extra, highlight=False)
    if strict and result.warnings:
        count = len(result.warnings)
        fail(f"--strict: {plural(count, 'data warning')}"
             + ("; no alert was sent" if project.sinks and not no_alerts else ""))
    if not dry_run and not no_history:
        from ._cli_history import store_history

        store_history(project, result)
    code = 0
    if not no_alerts and (project.sinks or dry_run):
        # --lang given on the command line wins; else the project's alerting.lang / lang
        explicit = click.get_current_context().get_parameter_source("lang")
        report = dispatch_alerts(project, result, dry_run=dry_run,
                                 lang=lang if explicit is ParameterSource.COMMANDLINE else None)
        if not dry_run and report.pending:
            code = EXIT_UNDELIVERED
    if not code and fail_on is not None:
        worst = [r for r in records if _SEVERITY.get(r["status"], 0) >= _SEVERITY[fail_on]]
        if worst:
            stderr.print(f"--fail-on {fail_on}: {plural(len(worst), 'KPI value')} "
                         f"{'are' if len(worst) != 1 else 'is'} {fail_on} or worse",
                         markup=False, highlight=False)
            code = EXIT_FAIL_ON
    if code:
        raise SystemExit(code)


def fail_with_debug(exc: BaseException, context: Any) -> NoReturn:
    """The error on stderr (exit 1); with --debug, first the SQL and the engine's own words."""
    from rich.text import Text
    if getattr(context, "debug", False):
        seen: BaseException | None = exc
        while seen is not None:
            debug = getattr(seen, "debug", None)
            if debug:
                stderr.print(Text("debug:", style="dim"), highlight=False)
                stderr.out(debug, highlight=False)
                break
            seen = seen.__cause__
    fail(str(exc))


def alert_summary(summary: Any) -> str:
    """Notifications (what alerts said) and deliveries (what sinks got) counted apart: the
    line of a :class:`kpiforge.DispatchSummary` (or of an alerts ``DispatchReport``)."""
    from ._dispatch import DispatchSummary

    if not isinstance(summary, DispatchSummary):
        summary = DispatchSummary.from_report(summary)
    return summary.text()


def compare_columns_of(result: Any) -> list[str]:
    columns = ["previous", "change_pct"] if result.compare else []
    if len(result.compare) == 2:
        columns += ["previous_year", "change_pct_year"]
    if getattr(result, "baselines", ()):  # a KPI with an anomaly rule: its expected range
        columns += ["expected_low", "expected_high"]
    return columns


def print_csv_records(records: list[dict[str, Any]], result: Any) -> None:
    rows = [{**{k: v for k, v in r.items() if k != "slice"}, **r["slice"]} for r in records]
    extra = ["expected", "expected_reason"] if getattr(result, "baselines", ()) else []
    print_csv(rows, ["kpi", "period", *result.by, "value", "unit", "status", "reason",
                     "reason_code", *compare_columns_of(result), *extra])


def dispatch_alerts(project: Any, result: Any, *, dry_run: bool,
                    lang: str | None = None) -> Any:
    """Alerts for this run's records; the summary goes to stderr so stdout stays data."""
    from rich.text import Text

    try:
        report = project.dispatch(result, dry_run=dry_run, lang=lang)
    except KpiforgeError as exc:
        fail(str(exc))
    if dry_run:
        for n in report.notifications:
            where = ", ".join(n.sinks) or "no sink"
            state = "silenced" if n.silenced else f"would send to {where}"
            stderr.print(Text.assemble(("dry run", "dim"), " ", text(
                f"{n.alert.severity.upper()} {n.alert.kpi} {n.alert.period or ''} {state}: "
                f"{n.alert.message}")), highlight=False)
    stderr.print(report.text(), markup=False, highlight=False)
    for sink, errors in report.errors.items():
        for error in errors[:3]:
            stderr.print(Text.assemble(text(f"sink {sink}:", "yellow"), " ", text(error)),
                         highlight=False)
    return report

def _collapsible(rows: list[dict[str, Any]]) -> str | None:
    """The one reason shared by every row of a KPI that has no value anywhere, else None."""
    reasons = {r["reason"] for r in rows}
    if len(reasons) == 1 and all(r["value"] is None for r in rows):
        return next(iter(reasons))
    return None


def _by_kpi(records: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in records:
        groups.setdefault(r["kpi"], []).append(r)
    return groups


def collapsed_notes(records: list[dict[str, Any]], engine: Any) -> list[Text]:
    """KPIs left out of the table because they have no value anywhere, one line per reason."""
    by_reason: dict[str, list[str]] = {}
    for kpi, rows in _by_kpi(records).items():
        reason = _collapsible(rows)
        if reason is not None and len(rows) > 1:
            by_reason.setdefault(reason, []).append(kpi)
    return [text(f"not computed — {reason}: {', '.join(kpis)}", "dim")
            for reason, kpis in by_reason.items()]


def _kpi_cell(kpi: str, definition: Any, lang: str, row: int, rows: int) -> Text:
    """The id on a KPI's first row, its name in ``lang`` on the second (or under the id)."""
    from rich.text import Text
    label = definition.label(lang) if definition is not None else ""
    if row == 0:
        return Text.assemble(text(kpi), "\n", text(label, "dim")) if rows == 1 and label else text(kpi)
    return text(label, "dim") if row == 1 else text("")


def run_table(records: list[dict[str, Any]], engine: Any, result: Any,
              compare_columns: Sequence[str], lang: str = "en") -> Table:
    """One section per KPI, one row per period and slice; periods and slices only when they vary."""
    from rich.table import Table
    periods = list(dict.fromkeys(r["period"] for r in records))
    title = "KPIs for " + (periods[0] if len(periods) == 1 else f"{periods[0]} … {periods[-1]}")
    if result.by:
        title += " by " + ", ".join(result.by)
    table = Table(title=text(title), title_justify="left")
    # the id (what people type) over its name in --lang: a column of its own would wrap
    table.add_column("KPI", no_wrap=True)
    if len(periods) > 1:
        table.add_column("period", no_wrap=True)
    for dim in result.by:
        table.add_column(text(dim), no_wrap=True)
    table.add_column("value", justify="right", no_wrap=True)
    table.add_column("status", no_wrap=True)
    for column in compare_columns:
        table.add_column(column.replace("_pct", " %").replace("_", " "), justify="right", no_wrap=True)
    table.add_column("reason", style="dim", overflow="fold")
    for kpi, rows in _by_kpi(records).items():
        if len(rows) > 1 and _collapsible(rows) is not None:
            continue
        definition = engine.definitions.get(kpi)
        currency = definition.currency if definition else None
        for i, r in enumerate(rows):
            cells = [_kpi_cell(kpi, definition, lang, i, len(rows))]
            if len(periods) > 1:
                cells.append(text(r["period"]))
            cells.extend(text("∅" if r["slice"].get(d) is None else r["slice"][d]) for d in result.by)
            cells.append(text(format_value(r["value"], r["unit"], currency)))
            cells.append(text(r["status"], STATUS_STYLE.get(r["status"], "")))
            for column in compare_columns:
                cells.append(text(format_change(r[column]) if column.startswith("change")
                                  else format_value(r[column], r["unit"], currency)))
            cells.append(text(r["reason"] or ""))
            table.add_row(*cells)
        if len(rows) > 1:
            table.add_section()
    return table
