"""``kpiforge list``, ``show`` and ``eval``: looking at KPIs and computing them from given values.

Apart from the group (``cli``), so that every other command, ``run`` above all, does not build
these commands' options at start-up.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Sequence

import click

from ._cli_common import (Context, definitions_option, fail, format_option, lang_option,
                          pass_context, print_csv, print_diagnostics, print_json, project_option,
                          stdout)
from ._format import STATUS_STYLE, format_value, plain, plural, show_value
from ._terminal import clean, text
from .errors import DefinitionError, KpiforgeError, did_you_mean

if TYPE_CHECKING:  # imported by the commands that need it
    from rich.table import Table

    from ._engine import Engine

__all__ = ["eval_", "list_", "show"]


@click.command(name="list")
@definitions_option
@project_option()
@click.option("--category", "-c", help="Only KPIs of this category.")
@lang_option
@format_option("table", "text", "json")
@pass_context
def list_(context: Context, definitions: tuple[str, ...], project_file: str | None,
          category: str | None, lang: str, fmt: str) -> None:
    """List the loaded KPIs."""
    from rich.table import Table
    engine = context.engine(definitions, project_file)
    categories = sorted({d.category for d in engine.definitions.values()})
    if category is not None and category not in categories:
        hint = did_you_mean(category, categories) or f" (categories: {', '.join(categories)})"
        fail(f"--category: unknown category '{category}'{hint}")
    items = [d for d in engine.definitions.values() if category in (None, d.category)]
    items.sort(key=lambda d: (d.category, d.id))
    if fmt == "json":
        print_json({"kpis": [d.to_dict() for d in items]})
        return
    table = Table(title=text(plural(len(items), "KPI")))
    for column in ("id", "name", "category", "unit", "direction", "formula"):
        # ids are what people type: never cut; the other columns wrap instead
        table.add_column(column, no_wrap=column == "id")
    for d in items:
        table.add_row(*map(text, (d.id, d.label(lang), d.category, d.unit.value,
                                  d.direction.value, d.formula)))
    stdout.print(table)


@click.command()
@click.argument("kpi_id")
@definitions_option
@project_option()
@lang_option
@format_option("text", "table", "json")
@pass_context
def show(context: Context, kpi_id: str, definitions: tuple[str, ...], project_file: str | None,
         lang: str, fmt: str) -> None:
    """Show one KPI: definition, formula, dependencies, thresholds, labels."""
    from rich.table import Table
    engine = context.engine(definitions, project_file)
    try:
        d = engine[kpi_id]
    except KpiforgeError as exc:
        fail(str(exc))
    data = d.to_dict()
    data["inputs_needed"] = sorted(engine.required_inputs(kpi_id))
    data["used_by"] = sorted(k for k, other in engine.definitions.items() if kpi_id in other.depends_on)
    if d.alerts is not None:
        data["alerts"] = plain(d.alerts)
    if kpi_id in engine.catalog.extensions:  # provenance: base, its pack and version, changes
        data["extends"] = engine.catalog.extensions[kpi_id].to_dict()
    if fmt == "json":
        print_json(data)
        return
    table = Table(show_header=False, title=text(f"{d.id} — {d.label(lang)}"))
    table.add_column("field", style="bold")
    table.add_column("value")
    for key in ("description", "category", "objectives", "owner", "status", "replaced_by", "version", "formula",
                "unit", "currency", "direction", "target", "tolerance", "thresholds", "converted", "alerts",
                "inputs", "fields", "parameters", "depends_on", "inputs_needed", "used_by",
                "labels", "tags", "vanity", "path", "extends"):
        if key in data and data[key] not in (None, "", [], {}):
            value = d.text(lang) if key == "description" else data[key]
            table.add_row(key, text(show_value(key, value)))
    stdout.print(table)


def parse_assignment(text: str) -> tuple[str, float]:
    name, sep, raw = text.partition("=")
    if not sep or not name.strip():
        raise click.BadParameter(f"expected NAME=VALUE, got {text!r}", param_hint="--set")
    name = clean(name.strip())
    try:
        number = float(raw)
    except ValueError:
        raise click.BadParameter(f"{name}: {raw!r} is not a number", param_hint="--set") from None
    if not math.isfinite(number):  # nan would silently become a missing input
        raise click.BadParameter(f"{name}: {raw!r} is not a finite number", param_hint="--set")
    return name, number


def read_inputs_file(path: str) -> dict[str, Any]:
    from ._yamlio import load_document

    try:
        document = load_document(path)
    except DefinitionError as exc:
        print_diagnostics(exc.diagnostics)
        fail(f"cannot read inputs from {path}", 2)
    data = document.data
    if not isinstance(data, dict):
        fail(f"{path}: expected a mapping of input name to number or list of numbers", 2)
    return data


def check_input_names(engine: Engine, names: Sequence[tuple[str, str]]) -> None:
    """An input no loaded KPI uses is a typo (``clics``), not something to ignore silently."""
    known = {n for d in engine.definitions.values() for i in d.inputs for n in (i, f"total({i})")}
    for name, where in names:
        if name not in known:
            fail(f"{where}: no loaded KPI has an input named '{name}'"
                 f"{did_you_mean(name, sorted(known))}")


def nothing_computable(engine: Engine, given: set[str]) -> str:
    """Why no KPI can be computed: the KPIs closest to the inputs given and what they lack."""
    if not given:
        return "no inputs given (use --set NAME=VALUE or --inputs FILE)"
    lacking = []
    for kpi_id in engine.definitions:
        needed = engine.required_inputs(kpi_id)
        if needed & given:
            lacking.append((len(needed - given), kpi_id, sorted(needed - given)))
    lacking.sort()
    hints = "; ".join(f"{kpi_id} also needs {', '.join(missing)}"
                      for _, kpi_id, missing in lacking[:3])
    return (f"no KPI can be computed from {', '.join(sorted(given))}"
            + (f": {hints}" if hints else ""))


RESULT_COLUMNS = ("kpi", "value", "unit", "status", "reason")


def result_table(records: list[dict[str, Any]], engine: Engine, *, title: str,
                 extra: Sequence[str] = (), lang: str = "en") -> Table:
    from rich.table import Table
    table = Table(title=text(title))
    table.add_column("KPI")
    table.add_column("name")
    for column in extra:
        table.add_column(column)
    table.add_column("value", justify="right")
    table.add_column("status")
    table.add_column("reason", style="dim")
    for row in records:
        definition = engine.definitions.get(row["kpi"])
        currency = definition.currency if definition else None
        status = row["status"]
        table.add_row(
            text(row["kpi"]), text(definition.label(lang) if definition else ""),
            *[text(row.get(c, "")) for c in extra],
            text(format_value(row["value"], row["unit"], currency)),
            text(status, STATUS_STYLE.get(status, "")), text(row.get("reason") or ""))
    return table


@click.command(name="eval")
@definitions_option
@project_option()
@click.option("--set", "assignments", multiple=True, metavar="NAME=VALUE", help="An input value (repeatable).")
@click.option("--inputs", "inputs_file", type=click.Path(exists=True, dir_okay=False),
              help="A JSON or YAML file mapping input names to numbers or lists of numbers.")
@click.option("--kpi", "kpis", multiple=True, help="KPI to evaluate (repeatable). Default: all computable.")
@lang_option
@format_option("table", "text", "json", "csv")
@pass_context
def eval_(context: Context, definitions: tuple[str, ...], project_file: str | None,
          assignments: tuple[str, ...], inputs_file: str | None, kpis: tuple[str, ...],
          lang: str, fmt: str) -> None:
    """Evaluate KPIs on input values given on the command line or in a file."""
    engine = context.engine(definitions, project_file)
    inputs: dict[str, Any] = read_inputs_file(inputs_file) if inputs_file else {}
    given = [parse_assignment(a) for a in assignments]
    check_input_names(engine, [(name, "--set") for name, _ in given]
                      + [(str(name), inputs_file or "") for name in inputs])
    inputs.update(given)
    try:
        results = engine.evaluate(inputs, kpis=list(kpis) or None)
    except KpiforgeError as exc:
        fail(str(exc))
    records = results.to_records()
    if not kpis and not records:
        fail(nothing_computable(engine, {n for n, v in inputs.items() if v is not None}))
    if fmt == "json":
        print_json({"results": records})
    elif fmt == "csv":
        columns = ("kpi", "index", "value", "unit", "status", "reason") if any(
            "index" in r for r in records) else RESULT_COLUMNS
        print_csv(records, columns)
    else:
        extra = ("index",) if any("index" in r for r in records) else ()
        stdout.print(result_table(records, engine, title="KPI values", extra=extra, lang=lang))
    missing = sorted({n for k in kpis for n in engine.required_inputs(k)}
                     - {n for n, v in inputs.items() if v is not None})
    if kpis and missing and all(r["value"] is None for r in records):
        fail(f"no requested KPI can be computed: missing {plural(len(missing), 'input')}: "
             f"{', '.join(missing)}")
