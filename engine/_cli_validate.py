"""``kpiforge validate``: definition files and folders, or a project file, its definitions and
its ``policy:`` (--project). ``--strict`` makes warnings errors; ``--format github`` and
``--format sarif`` give CI annotations and code-scanning logs of the same diagnostics.
"""

from __future__ import annotations

from typing import Any

import click

from ._cli_common import (Context, definitions_option, fail, format_option, pass_context,
                          print_diagnostics, print_json, project_option, strict_option)
from ._format import plural
from .errors import DefinitionError, ProjectError

__all__ = ["validate"]


def _validate_project(project_file: str, context: Context) -> tuple[list[Any], list[str]]:
    """The project file's own diagnostics, and the definition paths it names."""
    from ._project import load_project

    try:
        project = load_project(project_file, plugins=context.plugins)
    except DefinitionError as exc:
        return list(exc.diagnostics), []
    try:  # binding the sources to the definitions (measures, rates) needs them loaded
        project.engine  # noqa: B018
    except ProjectError as exc:
        return list(exc.diagnostics), []
    except DefinitionError:
        pass  # the definitions' own errors: reported by the catalog check that follows
    return [], [str(p) for p in project.definitions]


def _policy(project_file: str, catalog: Any) -> list[Any]:
    """The project's ``policy:`` violations (none without a policy)."""
    from ._policy import case_counts, check_policy
    from .commands import read_project_file

    policy = read_project_file(project_file).get("policy")
    if not policy:
        return []
    return check_policy(policy, catalog.definitions, catalog.objectives,
                        case_counts(catalog.test_files))


@click.command()
@click.argument("paths", nargs=-1, type=click.Path())
@definitions_option
@project_option(help="Validate this project file, its definitions and its policy.")
@format_option("text", "table", "json", "github", "sarif")
@strict_option
@pass_context
def validate(context: Context, paths: tuple[str, ...], definitions: tuple[str, ...],
             project_file: str | None, fmt: str, strict: bool) -> None:
    """Check KPI definition files and folders (default: the bundled catalog), or a project
    file, its definitions and its policy (--project)."""
    from ._annotations import github_lines, sarif_log
    from ._annotations import strict as make_strict
    from ._definitions import load_catalog
    from ._formulas import function_specs

    targets = list(paths) + list(definitions)
    diagnostics: list[Any] = []
    ok, count = True, None
    if project_file is not None:
        if targets:
            fail("give either --project or PATH / -d/--definitions, not both", 2)
        diagnostics, targets = _validate_project(project_file, context)
        ok = not any(d.is_error for d in diagnostics)
    if ok:
        try:
            catalog = load_catalog(targets or None,
                                   functions=function_specs(context.plugins.functions),
                                   packs=context.plugins.definition_packs())
            diagnostics, count = diagnostics + list(catalog.diagnostics), len(catalog.definitions)
            if project_file is not None:
                diagnostics += _policy(project_file, catalog)
        except DefinitionError as exc:
            diagnostics = diagnostics + list(exc.diagnostics)
    diagnostics = make_strict(diagnostics, strict)
    ok = not any(d.is_error for d in diagnostics)
    if fmt == "json":
        print_json({"valid": ok, "kpis": count,
                    "diagnostics": [d.to_dict() for d in diagnostics]})
    elif fmt == "github":
        for line in github_lines(diagnostics):
            click.echo(line)
    elif fmt == "sarif":
        print_json(sarif_log(diagnostics, command="validate"))
    else:
        print_diagnostics(diagnostics)
        errors = sum(d.is_error for d in diagnostics)
        warnings = sum(d.severity == "warning" for d in diagnostics)
        if ok:
            what = f"{project_file} and " if project_file else ""
            click.echo(f"{what}{plural(count or 0, 'KPI')} valid, {plural(warnings, 'warning')}")
        else:
            click.echo(f"{plural(errors, 'error')}, {plural(warnings, 'warning')}", err=True)
    raise SystemExit(0 if ok else 1)
