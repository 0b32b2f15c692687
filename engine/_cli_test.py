"""``kpiforge test``: run the declarative ``*.test.yaml`` cases and say which pass.

Text output is one ``PASS``/``FAIL`` line per case (a failure is followed by expected vs
actual per KPI field and slice) and ``N passed, N failed`` alone on the last line, so scripts
can read the tail; file diagnostics go to stderr. Exit 1 on any failure or invalid test file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from ._cli_common import (definitions_option, fail, format_option, print_diagnostics,
                          print_json, project_option, strict_option)

__all__ = ["report_diagnostics", "test_command"]


def report_diagnostics(report: Any, strict: bool) -> list[Any]:
    """A test report as located diagnostics, for CI annotations: the files' own, each failed
    case at its line, and "no test cases" (an error with ``strict``)."""
    from ._annotations import strict as make_strict
    from .errors import Diagnostic

    found = list(report.diagnostics)
    for case in report.cases:
        found += case.problems
        if case.mismatches:
            found.append(Diagnostic(case.file, case.line, 1, "test-failed",
                                    f"{case.name}: " + "; ".join(map(str, case.mismatches))))
    if not report.cases:
        found.append(Diagnostic(".", 0, 0, "no-tests", "0 test cases found", "warning"))
    return make_strict(found, strict)


@click.command(name="test")
@click.argument("paths", nargs=-1, type=click.Path(exists=True))
@definitions_option
@project_option(help="Use the definitions of this project file, and run their tests.")
@format_option("text", "table", "json", "github", "sarif")
@strict_option
@click.pass_obj
def test_command(context: Any, paths: tuple[str, ...], definitions: tuple[str, ...],
                 project_file: str | None, fmt: str, strict: bool) -> None:
    """Run the KPI test files (*.test.yaml) of PATHs: folders (their definitions and tests) or
    test files. Without PATH, the tests of the loaded definitions: --project's, -d's, else the
    bundled catalog's."""
    from ._defpaths import display_path
    from ._format import plural
    from ._terminal import clean, echo
    from ._testing import find_test_files, is_test_file, run_tests

    folders = [p for p in paths if Path(p).is_dir()]
    files = [p for p in paths if not Path(p).is_dir()]
    for file in files:
        if not is_test_file(file):
            raise click.BadParameter(f"{file} is neither a folder nor a *.test.yaml file",
                                     param_hint="PATH")
    if project_file is not None and folders:
        fail("give either --project or folders, not both (test files may go with --project)", 2)
    engine = context.engine(list(definitions) + folders, project_file)
    if paths:
        test_files = find_test_files(files + folders)
    else:
        test_files = list(engine.catalog.test_files)
    # bundled files as definitions/..., a pack's as acme:sales/..., any other relative to here
    packs = engine.plugins.definition_packs()
    report = run_tests(engine, test_files, display=lambda path: display_path(path, packs))

    diagnostics = report_diagnostics(report, strict)
    # --strict: a warning (a case that cannot run fully, no cases at all) fails too
    ok = report.ok and not any(d.is_error for d in diagnostics)
    if fmt in ("github", "sarif"):
        from ._annotations import github_lines, sarif_log

        if fmt == "github":
            for line in github_lines(diagnostics):
                click.echo(line)
        else:
            print_json(sarif_log(diagnostics, command="test"))
        raise SystemExit(0 if ok else 1)
    if fmt == "json":
        print_json({**report.to_dict(), "ok": ok})
        raise SystemExit(0 if ok else 1)
    print_diagnostics(report.diagnostics)
    if not test_files:
        click.echo(f"{'error' if strict else 'warning'}: no test files (*.test.yaml) found",
                   err=True)
    elif not report.cases:
        click.echo(f"{'error' if strict else 'warning'}: 0 test cases", err=True)
    for case in report.cases:
        if case.passed:
            click.echo(f"{click.style('PASS', fg='green', bold=True)} "
                       f"{clean(f'{case.file}: {case.name}')}")
            continue
        click.echo(f"{click.style('FAIL', fg='red', bold=True)} {clean(f'{case.file}: {case.name}')}")
        for problem in case.problems:
            echo(f"    {problem}")
        for mismatch in case.mismatches:
            echo(f"    {mismatch}")
    invalid = report.invalid_files
    if invalid:
        echo(f"error: {plural(len(invalid), 'invalid test file')}, not run: {', '.join(invalid)}",
             err=True)
    click.echo(f"{report.passed} passed, {report.failed} failed")
    raise SystemExit(0 if ok else 1)

