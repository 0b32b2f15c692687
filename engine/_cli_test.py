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
                          print_json, project_option)

__all__ = ["test_command"]


@click.command(name="test")
@click.argument("paths", nargs=-1, type=click.Path(exists=True))
@definitions_option
@project_option(help="Use the definitions of this project file, and run their tests.")
@format_option("text", "table", "json")
@click.pass_obj
def test_command(context: Any, paths: tuple[str, ...], definitions: tuple[str, ...],
                 project_file: str | None, fmt: str) -> None:
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

    if fmt == "json":
        print_json(report.to_dict())
        raise SystemExit(0 if report.ok else 1)
    print_diagnostics(report.diagnostics)
    if not test_files:
        click.echo("warning: no test files (*.test.yaml) found", err=True)
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
    raise SystemExit(0 if report.ok else 1)

