"""``kpiforge import metricflow DIR -o OUT`` and ``kpiforge export metricflow -o DIR``: dbt
MetricFlow models in and out. Each prints a report of what was carried over and what was not,
and writes it next to its output (IMPORT_REPORT.md, EXPORT_REPORT.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from ._cli_common import Context, fail, pass_context, print_diagnostics, project_option
from ._format import plural
from ._metricflow_common import report_markdown
from ._terminal import echo
from .errors import DefinitionError, KpiforgeError, ProjectError

__all__ = ["export_group", "import_group", "write_export", "write_import"]

_SCHEMAS = "https://kpiforge.dev/schemas/v1"
_IMPORTED = "# Imported from MetricFlow metric"  # marks the files an import may replace


def _dump(data: Any) -> str:
    import yaml  # only for an export or import: --help does not need it

    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)


def _prepare(out: Path) -> None:
    if out.exists() and not out.is_dir():
        fail(f"{out}: not a folder")
    out.mkdir(parents=True, exist_ok=True)


def write_import(imported: Any, out: Path, origin: str) -> str:
    """Writes OUT/kpiforge.yaml, OUT/definitions/<id>.yaml and OUT/IMPORT_REPORT.md; the
    report's text."""
    folder = out / "definitions"
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.yaml"):  # a metric imported before may be gone: not left behind
        if _IMPORTED in old.read_text(encoding="utf-8", errors="replace")[:200]:
            old.unlink()
    for kpi_id, definition in imported.definitions.items():
        (folder / f"{kpi_id}.yaml").write_text(
            f"# yaml-language-server: $schema={_SCHEMAS}/kpi.schema.json\n"
            f"{_IMPORTED} {kpi_id} by kpiforge import metricflow.\n"
            + _dump(definition), encoding="utf-8")
    project = {"definitions": ["definitions/"], "sources": imported.sources}
    (out / "kpiforge.yaml").write_text(
        f"# yaml-language-server: $schema={_SCHEMAS}/project.schema.json\n"
        "# Imported from MetricFlow by kpiforge import metricflow (see IMPORT_REPORT.md).\n"
        "# Set WAREHOUSE_URL to the SQLAlchemy URL of the warehouse the dbt models are in.\n"
        + _dump(project), encoding="utf-8")
    done = [f"{plural(len(imported.definitions), 'KPI definition')} in definitions/: "
            + (", ".join(imported.definitions) or "none"),
            f"{plural(len(imported.sources), 'source')} in kpiforge.yaml: "
            + (", ".join(imported.sources) or "none")]
    report = report_markdown(f"MetricFlow import of {origin}", done, imported.notes)
    (out / "IMPORT_REPORT.md").write_text(report, encoding="utf-8")
    return report


def write_export(exported: Any, out: Path, origin: str) -> str:
    """Writes DIR/semantic_models.yml, DIR/metrics.yml and DIR/EXPORT_REPORT.md; the report."""
    header = f"# Exported from {origin} by kpiforge export metricflow (see EXPORT_REPORT.md).\n"
    (out / "semantic_models.yml").write_text(
        header + _dump({"semantic_models": list(exported.semantic_models)}), encoding="utf-8")
    (out / "metrics.yml").write_text(header + _dump({"metrics": list(exported.metrics)}),
                                     encoding="utf-8")
    kpis = [m["name"] for m in exported.metrics
            if not m.get("config", {}).get("meta", {}).get("kpiforge", {}).get("input")]
    done = [f"{plural(len(exported.semantic_models), 'semantic model')} in semantic_models.yml: "
            + (", ".join(m["name"] for m in exported.semantic_models) or "none"),
            f"{plural(len(kpis), 'KPI')} in metrics.yml: " + (", ".join(kpis) or "none"),
            f"{plural(len(exported.metrics) - len(kpis), 'input metric')} (simple metrics the "
            "KPIs use, meta kpiforge.input: true)"]
    report = report_markdown(f"MetricFlow export of {origin}", done, exported.notes)
    (out / "EXPORT_REPORT.md").write_text(report, encoding="utf-8")
    return report


@click.group(name="import")
def import_group() -> None:
    """Bring KPIs in from another tool's format."""


@import_group.command(name="metricflow")
@click.argument("directory", type=click.Path(file_okay=False))
@click.option("-o", "--output", "out", required=True, type=click.Path(file_okay=False),
              help="Folder to write kpiforge.yaml, definitions/ and IMPORT_REPORT.md to.")
@pass_context
def import_metricflow_command(context: Context, directory: str, out: str) -> None:
    """dbt MetricFlow semantic models and metrics (the YAML under DIRECTORY) as kpiforge
    definitions and a project file; what cannot be carried over is listed."""
    from ._metricflow_import import import_metricflow, read_metricflow

    try:
        imported = import_metricflow(*read_metricflow(directory))
    except DefinitionError as exc:
        print_diagnostics(exc.diagnostics)
        fail(f"{plural(len(exc.errors), 'error')} in {directory}")
    except KpiforgeError as exc:
        fail(str(exc))
    _prepare(Path(out))
    echo(write_import(imported, Path(out), directory), nl=False)


@click.group(name="export")
def export_group() -> None:
    """Write KPIs out in another tool's format."""


@export_group.command(name="metricflow")
@project_option("kpiforge.yaml")
@click.option("-o", "--output", "out", required=True, type=click.Path(file_okay=False),
              help="Folder to write semantic_models.yml, metrics.yml and EXPORT_REPORT.md to.")
@pass_context
def export_metricflow_command(context: Context, project_file: str, out: str) -> None:
    """The project's sources and KPIs as dbt MetricFlow semantic models and metrics;
    thresholds, direction, unit and alerts go into each metric's meta."""
    from ._cli_common import load_project_or_fail
    from ._formulas import function_specs
    from ._metricflow_export import export_metricflow

    project = load_project_or_fail(project_file, context.plugins)
    try:
        exported = export_metricflow(project, function_specs(context.plugins.functions))
    except DefinitionError as exc:
        print_diagnostics(exc.diagnostics)
        fail(f"{plural(len(exc.errors), 'error')} in the "
             f"{'project file' if isinstance(exc, ProjectError) else 'definitions'}")
    _prepare(Path(out))
    echo(write_export(exported, Path(out), project_file), nl=False)
