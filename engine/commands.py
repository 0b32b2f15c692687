"""The public API for writing a ``kpiforge`` sub-command (a ``kpiforge_register_commands`` plugin).

A command plugin attaches click commands to the ``kpiforge`` group and uses these helpers so
that it looks and fails like the built-in commands::

    import click
    from kpiforge import hookimpl
    from kpiforge.commands import current_plugins, echo, fail, load_definitions, project_option

    @click.command(name="kpi-count")
    @project_option("kpiforge.yaml")
    def kpi_count(project_file: str) -> None:
        \"\"\"How many KPIs the project defines.\"\"\"
        engine = load_definitions(project_file, plugins=current_plugins())
        echo(f"{len(engine.definitions)} KPIs")

    @hookimpl
    def kpiforge_register_commands(cli):
        cli.add_command(kpi_count)

* Output: :func:`echo` (plain lines), :data:`stdout` (a rich console for tables), :func:`text`
  (a table cell), :func:`print_json`. Text from KPI files, data or arguments is never read as
  markup or escape sequences by any of them.
* Errors: :func:`fail` (``error: ...`` on stderr, exit code), :func:`warn`,
  :func:`print_diagnostics` for a :class:`kpiforge.DefinitionError`'s diagnostics.
* Options that mean the same on every command: :func:`project_option`, :func:`format_option`.
* The project: :func:`read_project_file` (the file's data as written, unchecked),
  :func:`load_definitions` (its KPI definitions only), or the full :meth:`kpiforge.Project.load`
  with ``plugins=current_plugins()``.
* Words and secrets: :func:`plural`, :func:`redact_text`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Mapping, NoReturn

import click

from . import _cli_common
from ._cli_common import format_option, project_option, stdout
from ._defpaths import resolve_definition_path, unknown_reference, with_required_packs
from ._format import plural
from ._plugins import Plugins, load_plugins
from ._redact import redact_text
from ._terminal import echo, text
from .errors import Diagnostic, ProjectError

if TYPE_CHECKING:  # imported where used: plugin commands must not load numpy for --help
    from ._engine import Engine

__all__ = [
    "current_plugins",
    "echo",
    "fail",
    "format_option",
    "load_definitions",
    "plural",
    "print_diagnostics",
    "print_json",
    "project_option",
    "read_project_file",
    "redact_text",
    "stdout",
    "text",
    "warn",
]


def fail(message: str, code: int = 1) -> NoReturn:
    """Print ``error: <message>`` on stderr and exit with ``code`` (1: it failed; 2: it was
    called wrongly). ``message`` is shown as written, control characters made visible."""
    _cli_common.fail(message, code)


def warn(message: str) -> None:
    """Print ``warning: <message>`` on stderr and carry on."""
    _cli_common.warn(message)


def print_json(data: Any) -> None:
    """``data`` as one indented JSON document on stdout (non-ASCII kept, NaN refused): what
    ``--format json`` prints."""
    _cli_common.print_json(data)


def print_diagnostics(diagnostics: Iterable[Diagnostic]) -> None:
    """Each diagnostic on its own stderr line, ``file:line:col: error[code]: message``."""
    _cli_common.print_diagnostics(diagnostics)


def current_plugins() -> Plugins:
    """The plugins of the running ``kpiforge`` command (``--plugins-dir`` included, loaded
    once per invocation); outside a command, the built-ins and installed plugins, loaded now."""
    context = click.get_current_context(silent=True)
    obj = context.find_root().obj if context is not None else None
    plugins = obj if isinstance(obj, Plugins) else getattr(obj, "plugins", None)
    return plugins if isinstance(plugins, Plugins) else load_plugins()


def read_project_file(path: str | os.PathLike[str]) -> Mapping[str, Any]:
    """The data of a project file as written (``${VAR}`` unexpanded), with the same hardened
    YAML loader as every kpiforge file (size limits, no duplicate keys) but not checked
    against the project schema, so a command reading its own keys still works when another
    part of the project is wrong. Raises :class:`kpiforge.DefinitionError` for bad YAML or
    a top level that is not a mapping."""
    from ._yamlio import load_document  # yaml's loader: not needed for --help

    document = load_document(Path(path), display_path=os.fspath(path))
    if not isinstance(document.data, Mapping):
        raise ProjectError([Diagnostic(os.fspath(path), 1, 1, "project",
                                       "expected a mapping at the top level")])
    return document.data


def load_definitions(project_file: str | os.PathLike[str], *,
                     plugins: Plugins | None = None) -> Engine:
    """A :class:`kpiforge.Engine` of the KPI definitions a project file names (its
    ``definitions:`` and ``currency:``; the bundled catalog when it names none), without
    building its sources or sinks: an unset ``${PG_PASSWORD}`` does not stop it. Raises
    :class:`kpiforge.DefinitionError` for a bad project file or definitions."""
    data = read_project_file(project_file)
    items = data.get("definitions")
    items = [items] if isinstance(items, str) else items or []
    root = Path(project_file).resolve().parent
    plugins = plugins if plugins is not None else current_plugins()
    paths = []
    for item in with_required_packs(items, plugins.definition_packs()):
        path = resolve_definition_path(str(item), root, plugins.definition_packs())
        if path is None:
            raise ProjectError([Diagnostic(os.fspath(project_file), 1, 1, "definitions",
                                           unknown_reference(str(item), plugins.definition_packs()),
                                           field="definitions")])
        paths.append(path)
    currency = data.get("currency", "EUR")
    from ._engine import Engine

    return Engine.load(*paths, plugins=plugins,
                       currency=currency if isinstance(currency, str) else "EUR")
