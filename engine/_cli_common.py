"""What every ``kpiforge`` command shares: consoles, error output, the context, common options.

The command modules (``cli.py``, ``_cli_*.py``, the alerting plugin) import from here and never
from ``cli.py``, which only assembles them into a group; so there is no import circle.

The options mean the same thing on every command:

* ``--project FILE``: the project file; its ``definitions:`` are the definitions.
* ``-d/--definitions PATH`` (repeatable): definition files, folders or packs
  (``kpiforge:standard``); without it (and without ``--project``), the bundled catalog.
* ``--format``: ``text``/``table`` for people (the one a command has), ``json`` for tools (one
  document on stdout), ``csv`` for spreadsheets where the output is rows.
"""

from __future__ import annotations

import io
import json
import os
import sys
from typing import TYPE_CHECKING, Any, Iterable, NoReturn, Sequence, cast

import click

from ._format import plural
from ._plugins import Plugins
from ._terminal import clean, echo
from .errors import DefinitionError, Diagnostic, ProjectError

if TYPE_CHECKING:  # loaded when a command loads definitions: --help must not load numpy
    from rich.console import Console

    from ._engine import Engine

__all__ = ["Context", "definitions_option", "fail", "format_option", "lang_option",
           "load_project_or_fail", "loaded_engine", "pass_context", "print_csv", "print_diagnostics",
           "print_json", "project_option", "quiet_option", "real_console", "stderr", "stdout",
           "strict_option", "warn"]


class _LazyConsole:
    """A rich ``Console`` made on first use: importing rich is a third of what ``--help``
    would cost, and most commands print through click alone."""

    def __init__(self, **options: Any):
        self._options = options
        self._console: Console | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.console, name)

    @property
    def is_terminal(self) -> bool:
        """rich's answer, without making the console for a stream that is no terminal (piped
        output is what scripts and benchmarks see): rich says True there only when
        TTY_COMPATIBLE or FORCE_COLOR tells it to."""
        if self._console is None and not ({"TTY_COMPATIBLE", "FORCE_COLOR"} & os.environ.keys()):
            stream = sys.stderr if self._options.get("stderr") else sys.stdout
            try:
                if not stream.isatty():
                    return False
            except (AttributeError, ValueError):  # no stream, or a closed one: no terminal
                return False
        return bool(self.console.is_terminal)

    @property
    def console(self) -> Console:
        """The console itself, for what takes one (a progress bar enters it as a context)."""
        console = self._console
        if console is None:
            from rich.console import Console

            console = self._console = Console(**self._options)
        return console


# Piped output (make demo, CI logs) would otherwise be cut at 80 columns.
_TERMINAL = sys.stdout is not None and sys.stdout.isatty()  # None: started with stdout closed
stdout = cast("Console", _LazyConsole(soft_wrap=True, width=None if _TERMINAL else
                                      int(os.environ.get("COLUMNS", "120"))))
stderr = cast("Console", _LazyConsole(stderr=True, soft_wrap=True))


def real_console(console: Console) -> Console:
    """``stdout`` or ``stderr`` as a rich ``Console`` made now, for an API that needs one."""
    return console.console if isinstance(console, _LazyConsole) else console


def fail(message: str, code: int = 1) -> NoReturn:
    from rich.text import Text

    stderr.print(Text.assemble(("error:", "bold red"), " ", clean(message)), highlight=False)
    raise SystemExit(code)


def warn(message: str) -> None:
    from rich.text import Text

    stderr.print(Text.assemble(("warning:", "yellow"), " ", clean(message)), highlight=False)


def print_json(data: Any) -> None:
    click.echo(json.dumps(data, ensure_ascii=False, indent=2, allow_nan=False))


def print_csv(rows: list[dict[str, Any]], columns: Sequence[str]) -> None:
    import csv

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
        echo(d, err=True)


def load_project_or_fail(path: str, plugins: Any) -> Any:
    """The project at ``path``, or its diagnostics on stderr and exit 1."""
    from ._project import load_project

    try:
        return load_project(path, plugins=plugins)
    except DefinitionError as exc:
        print_diagnostics(exc.diagnostics)
        fail(f"{plural(len(exc.errors), 'error')} in {path}")


class Context:
    """What every command shares: the plugins (loaded once) and how to load definitions."""

    def __init__(self, plugins: Plugins, debug: bool = False):
        self.plugins = plugins
        self.debug = debug

    def engine(self, paths: Sequence[str] = (), project_file: str | None = None) -> Engine:
        """The definitions of ``project_file`` if given, else of ``paths`` (default bundled)."""
        if project_file is not None:
            if paths:
                fail("give either --project or -d/--definitions, not both", 2)
            project = load_project_or_fail(project_file, self.plugins)
            return self._loaded(lambda: project.engine)
        from ._engine import Engine

        return self._loaded(lambda: Engine.load(*paths, plugins=self.plugins))

    def _loaded(self, load: Any) -> Engine:
        return loaded_engine(load)


def loaded_engine(load: Any) -> Engine:
    """``load()``'s engine with its warnings printed; its errors printed and exit 1."""
    try:
        engine = load()
    except DefinitionError as exc:
        print_diagnostics(exc.diagnostics)
        fail(f"{plural(len(exc.errors), 'error')} in the "
             f"{'project file' if isinstance(exc, ProjectError) else 'definitions'}")
    print_diagnostics(engine.warnings)
    return cast("Engine", engine)


pass_context = click.make_pass_decorator(Context)

definitions_option = click.option(
    "--definitions", "-d", "definitions", multiple=True, metavar="PATH",
    help="Definition files, folders or packs such as kpiforge:standard (repeatable). "
         "Default: the --project's definitions, else the bundled catalog.")


def project_option(default: str | None = None, help: str | None = None) -> Any:
    """``--project FILE``; commands that need a project default to ``kpiforge.yaml``."""
    return click.option(
        "--project", "project_file", default=default, show_default=default is not None,
        metavar="FILE", type=click.Path(dir_okay=False),
        help=help or ("The project file (kpiforge.yaml): its definitions, currency, sources."
                      if default else "Use the definitions of this project file (kpiforge.yaml)."))


_FORMAT_MEANING = {"text": "text/table for people", "table": "text/table for people",
                   "json": "json for tools", "csv": "csv for spreadsheets",
                   "md": "md for repositories", "html": "html for people",
                   "github": "github for workflow annotations", "sarif": "sarif for code scanning"}


def format_option(*choices: str) -> Any:
    """``--format``, the first choice the default; each choice means the same everywhere."""
    meanings = ", ".join(dict.fromkeys(_FORMAT_MEANING[c] for c in choices))
    return click.option("--format", "fmt", type=click.Choice(list(choices)), default=choices[0],
                        show_default=True, help=meanings + ".")


lang_option = click.option(
    "--lang", type=click.Choice(["en", "fr"]), default="en", show_default=True,
    help="Language of KPI names, labels and headings.")

strict_option = click.option("--strict", is_flag=True, help="Warnings are errors (exit 1).")

quiet_option = click.option(
    "--quiet", "-q", is_flag=True,
    help="No progress display (it is shown on stderr only when stderr is a terminal).")
