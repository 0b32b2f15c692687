"""The ``kpiforge`` command line. One small function per command; tables via rich, or JSON/CSV.

Errors go to stderr with a non-zero exit code, never a traceback: 1 means "invalid input or a
failed check", 2 a usage error (click's convention).
"""

from __future__ import annotations

import csv
import io
import json
import os
import sys
from typing import Any, Iterable, NoReturn, Sequence

import click
from rich.console import Console
from rich.table import Table

from ._engine import Engine
from ._format import STATUS_STYLE, format_value
from ._plugins import Plugins, load_plugins
from .errors import DefinitionError, Diagnostic, KpiforgeError

PLUGINS_DIR_ENV = "KPIFORGE_PLUGINS_DIR"

# Piped output (make demo, CI logs) would otherwise be cut at 80 columns.
stdout = Console(soft_wrap=True, width=None if sys.stdout.isatty() else
                 int(os.environ.get("COLUMNS", "120")))
stderr = Console(stderr=True, soft_wrap=True)


def fail(message: str, code: int = 1) -> NoReturn:
    stderr.print(f"[bold red]error:[/] {message}", highlight=False, markup=True)
    raise SystemExit(code)


def print_json(data: Any) -> None:
    click.echo(json.dumps(data, ensure_ascii=False, indent=2, allow_nan=False))


def print_csv(rows: list[dict[str, Any]], columns: Sequence[str]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if row.get(k) is None else
                             json.dumps(row[k], ensure_ascii=False) if isinstance(row.get(k), dict)
                             else row[k]) for k in columns})
    click.echo(buffer.getvalue(), nl=False)


def print_diagnostics(diagnostics: Iterable[Diagnostic]) -> None:
    for d in diagnostics:
        click.echo(str(d), err=True)


class Context:
    """What every command shares: the plugins (loaded once) and how to load definitions."""

    def __init__(self, plugins: Plugins, debug: bool = False):
        self.plugins = plugins
        self.debug = debug

    def engine(self, paths: Sequence[str] = ()) -> Engine:
        try:
            engine = Engine.load(*paths, plugins=self.plugins)
        except DefinitionError as exc:
            print_diagnostics(exc.diagnostics)
            errors = len(exc.errors)
            fail(f"{errors} error{'s' if errors != 1 else ''} in the definitions")
        print_diagnostics(engine.warnings)
        return engine


pass_context = click.make_pass_decorator(Context)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--plugins-dir", type=click.Path(file_okay=False), envvar=PLUGINS_DIR_ENV,
              help="Also load plugins from the .py files in this folder.")
@click.option("--debug", is_flag=True,
              help="On a data error, also show the generated SQL and the engine's own message.")
@click.version_option(package_name="kpiforge")
@click.pass_context
def cli(ctx: click.Context, plugins_dir: str | None, debug: bool) -> None:
    """kpiforge: business KPIs defined once in YAML, validated, evaluated and alerted on."""
    plugins = ctx.obj if isinstance(ctx.obj, Plugins) else None
    if plugins is None:  # called without main(), e.g. from click's test runner
        try:
            plugins = load_plugins(plugins_dir)
        except KpiforgeError as exc:
            fail(str(exc), 2)
    for name, problem in sorted(plugins.failures.items()):
        stderr.print(f"[yellow]warning:[/] plugin {name} failed: {problem}", highlight=False)
    ctx.obj = Context(plugins, debug)


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
@pass_context
def validate(context: Context, paths: tuple[str, ...], fmt: str) -> None:
    """Check KPI definition files and folders (default: the bundled catalog)."""
    from ._definitions import load_catalog
    from ._formulas import function_specs

    try:
        catalog = load_catalog(paths or None, functions=function_specs(context.plugins.functions))
        diagnostics, ok, count = catalog.diagnostics, True, len(catalog.definitions)
    except DefinitionError as exc:
        diagnostics, ok, count = exc.diagnostics, False, None
    if fmt == "json":
        print_json({"valid": ok, "kpis": count,
                    "diagnostics": [d.to_dict() for d in diagnostics]})
    else:
        print_diagnostics(diagnostics)
        errors = sum(d.is_error for d in diagnostics)
        warnings = len(diagnostics) - errors
        if ok:
            click.echo(f"{count} KPIs valid, {warnings} warning{'s' if warnings != 1 else ''}")
        else:
            click.echo(f"{errors} error{'s' if errors != 1 else ''}, "
                       f"{warnings} warning{'s' if warnings != 1 else ''}", err=True)
    raise SystemExit(0 if ok else 1)


definitions_option = click.option(
    "--definitions", "-d", "definitions", multiple=True, type=click.Path(),
    help="Definition files or folders (repeatable). Default: the bundled catalog.")


@cli.command(name="list")
@definitions_option
@click.option("--category", "-c", help="Only KPIs of this category.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
@pass_context
def list_(context: Context, definitions: tuple[str, ...], category: str | None, fmt: str) -> None:
    """List the loaded KPIs."""
    engine = context.engine(definitions)
    items = [d for d in engine.definitions.values() if category in (None, d.category)]
    items.sort(key=lambda d: (d.category, d.id))
    if fmt == "json":
        print_json({"kpis": [d.to_dict() for d in items]})
        return
    table = Table(title=f"{len(items)} KPIs")
    for column in ("id", "category", "name", "unit", "direction", "formula"):
        table.add_column(column)
    for d in items:
        table.add_row(d.id, d.category, d.name, d.unit.value, d.direction.value, d.formula)
    stdout.print(table)


@cli.command()
@click.argument("kpi_id")
@definitions_option
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
@pass_context
def show(context: Context, kpi_id: str, definitions: tuple[str, ...], fmt: str) -> None:
    """Show one KPI: definition, formula, dependencies, thresholds, labels."""
    engine = context.engine(definitions)
    try:
        d = engine[kpi_id]
    except KpiforgeError as exc:
        fail(str(exc))
    data = d.to_dict()
    data["inputs_needed"] = sorted(engine.required_inputs(kpi_id))
    data["used_by"] = sorted(k for k, other in engine.definitions.items() if kpi_id in other.depends_on)
    if fmt == "json":
        print_json(data)
        return
    table = Table(show_header=False, title=f"{d.id} — {d.name}")
    table.add_column("field", style="bold")
    table.add_column("value")
    for key in ("description", "category", "objectives", "owner", "status", "version", "formula",
                "unit", "currency", "direction", "target", "tolerance", "thresholds", "inputs",
                "depends_on", "inputs_needed", "used_by", "labels", "tags", "vanity", "path"):
        if key in data and data[key] not in (None, "", [], {}):
            value = data[key]
            if isinstance(value, dict):
                value = "\n".join(f"{k}: {v}" for k, v in value.items())
            elif isinstance(value, list):
                value = ", ".join(map(str, value))
            table.add_row(key, str(value))
    stdout.print(table)


def parse_assignment(text: str) -> tuple[str, float]:
    name, sep, raw = text.partition("=")
    if not sep or not name.strip():
        raise click.BadParameter(f"expected NAME=VALUE, got {text!r}", param_hint="--set")
    try:
        return name.strip(), float(raw)
    except ValueError:
        raise click.BadParameter(f"{name.strip()}: {raw!r} is not a number", param_hint="--set") from None


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


RESULT_COLUMNS = ("kpi", "value", "unit", "status", "reason")


def result_table(records: list[dict[str, Any]], engine: Engine, *, title: str,
                 extra: Sequence[str] = ()) -> Table:
    table = Table(title=title)
    table.add_column("KPI")
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
            row["kpi"], *[str(row.get(c, "")) for c in extra],
            format_value(row["value"], row["unit"], currency),
            f"[{STATUS_STYLE.get(status, '')}]{status}[/]", row.get("reason") or "")
    return table


@cli.command(name="eval")
@definitions_option
@click.option("--set", "assignments", multiple=True, metavar="NAME=VALUE", help="An input value (repeatable).")
@click.option("--inputs", "inputs_file", type=click.Path(exists=True, dir_okay=False),
              help="A JSON or YAML file mapping input names to numbers or lists of numbers.")
@click.option("--kpi", "kpis", multiple=True, help="KPI to evaluate (repeatable). Default: all computable.")
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table")
@pass_context
def eval_(context: Context, definitions: tuple[str, ...], assignments: tuple[str, ...],
          inputs_file: str | None, kpis: tuple[str, ...], fmt: str) -> None:
    """Evaluate KPIs on input values given on the command line or in a file."""
    engine = context.engine(definitions)
    inputs: dict[str, Any] = read_inputs_file(inputs_file) if inputs_file else {}
    inputs.update(parse_assignment(a) for a in assignments)
    try:
        results = engine.evaluate(inputs, kpis=list(kpis) or None)
    except KpiforgeError as exc:
        fail(str(exc))
    records = results.to_records()
    if fmt == "json":
        print_json({"results": records})
    elif fmt == "csv":
        columns = ("kpi", "index", "value", "unit", "status", "reason") if any(
            "index" in r for r in records) else RESULT_COLUMNS
        print_csv(records, columns)
    else:
        if not records:
            stderr.print("no KPI can be computed from the given inputs", highlight=False)
        extra = ("index",) if any("index" in r for r in records) else ()
        stdout.print(result_table(records, engine, title="KPI values", extra=extra))


@cli.command()
@pass_context
def plugins(context: Context) -> None:
    """List every plugin, where it came from, and what it registered."""
    table = Table(title="plugins")
    for column in ("plugin", "origin", "registered"):
        table.add_column(column)
    for info in context.plugins.infos():
        table.add_row(info.name, info.origin, "\n".join(info.registered) or "—")
    for name, problem in sorted(context.plugins.failures.items()):
        table.add_row(name, "[red]failed[/]", problem)
    stdout.print(table)


def build_cli(plugins: Plugins) -> click.Group:
    """Let every plugin add its commands; a name clash names the plugin instead of overwriting."""
    existing = set(cli.commands)
    for impl in plugins.manager.hook.kpiforge_register_commands.get_hookimpls():
        name = plugins.manager.get_name(impl.plugin)
        probe = click.Group()
        try:
            impl.function(cli=probe)
        except Exception as exc:
            plugins.failures[name] = f"kpiforge_register_commands: {type(exc).__name__}: {exc}"
            continue
        for command_name, command in probe.commands.items():
            if command_name in existing:
                plugins.failures[name] = f"command '{command_name}' already exists"
                continue
            cli.add_command(command, command_name)
            existing.add(command_name)
            plugins.commands[command_name] = name
    return cli


def _plugins_dir_from_argv(argv: Sequence[str]) -> str | None:
    for i, arg in enumerate(argv):
        if arg == "--plugins-dir" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--plugins-dir="):
            return arg.split("=", 1)[1]
    return os.environ.get(PLUGINS_DIR_ENV)


def main(argv: Sequence[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    plugins_dir = _plugins_dir_from_argv(args)
    try:
        plugins = load_plugins(plugins_dir)
    except KpiforgeError as exc:
        fail(str(exc), 2)
    group = build_cli(plugins)
    try:
        group.main(args=args, prog_name="kpiforge", obj=plugins)
    except KpiforgeError as exc:  # last line of defence: never a traceback for our own errors
        fail(str(exc))


# The commands below live in modules of their own and import this one for its helpers.
from ._cli_catalog import catalog_command  # noqa: E402
from ._cli_run import run_command  # noqa: E402
from ._cli_test import test_command  # noqa: E402

cli.add_command(catalog_command, "catalog")
cli.add_command(run_command, "run")
cli.add_command(test_command, "test")
