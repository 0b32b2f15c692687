"""The ``kpiforge`` command line. One small function per command; tables via rich, or JSON/CSV.

Errors go to stderr with a non-zero exit code, never a traceback: 1 means "invalid input or a
failed check", 2 a usage error (click's convention).
"""

from __future__ import annotations

import importlib
import os
import sys
import warnings
from typing import Sequence

import click

from . import __version__
from ._cli_common import (Context, fail, print_csv, print_diagnostics, print_json, stderr, stdout,
                          warn)
from ._plugins import Plugins, load_plugins
from .errors import KpiforgeError, PluginWarning

__all__ = ["Context", "build_cli", "fail", "help_text", "main", "print_csv", "print_diagnostics",
           "print_json", "stderr", "stdout", "warn"]

PLUGINS_DIR_ENV = "KPIFORGE_PLUGINS_DIR"


def _root_callback(ctx: click.Context, plugins_dir: str | None, debug: bool) -> None:
    """kpiforge: business KPIs defined once in YAML, validated, evaluated and alerted on."""
    plugins = ctx.obj if isinstance(ctx.obj, Plugins) else None
    if plugins is None:  # called without main(), e.g. from click's test runner
        try:
            plugins = _load_plugins(plugins_dir)
        except KpiforgeError as exc:
            fail(str(exc), 2)
    # a command runs: the registries now, so that every plugin failure is shown before it
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PluginWarning)
        plugins.collect()
    for name, problem in sorted(plugins.failures.items()):
        warn(f"plugin {name} failed: {problem}")
    ctx.obj = Context(plugins, debug)


def _new_group() -> click.Group:
    """A group per invocation (plugin commands are added to it): a second main() starts afresh."""
    callback = click.pass_context(_root_callback)
    # the version kpiforge carries: asking the installed metadata imports importlib.metadata
    callback = click.version_option(__version__, package_name="kpiforge")(callback)
    callback = click.option("--debug", is_flag=True, help="On a data error, also show the "
                            "generated SQL and the engine's own message.")(callback)
    callback = click.option(
        "--plugins-dir", type=click.Path(file_okay=False), envvar=PLUGINS_DIR_ENV,
        help="Also load plugins from the .py files in this folder.")(callback)
    group = click.group(name="kpiforge", cls=_BuiltinsGroup,
                        context_settings={"help_option_names": ["-h", "--help"]})(callback)
    return group


class _BuiltinsGroup(click.Group):
    """A group whose built-in commands are imported when one is asked for: a command imports
    its own module only (``--help``, which lists them all, imports them all)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *_BUILTINS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in _BUILTINS:
            self.add_command(_builtin(cmd_name), cmd_name)
        return self.commands.get(cmd_name)


def build_cli(plugins: Plugins) -> click.Group:
    """A fresh group with the built-in commands, then every plugin's; a name clash names the
    plugin instead of overwriting."""
    cli = _new_group()
    existing = set(cli.commands) | set(_BUILTINS)
    for impl in plugins.manager.hook.kpiforge_register_commands.get_hookimpls():
        name = impl.plugin_name
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


def _load_plugins(plugins_dir: str | None) -> Plugins:
    # the CLI shows plugins.failures itself, as one line each: no Python warning on top
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PluginWarning)
        # lazy: what only registers functions and types is imported when a command needs it,
        # so --help and --version stay cheap
        return load_plugins(plugins_dir, lazy=True)


def _plugins_dir_from_argv(argv: Sequence[str]) -> str | None:
    for i, arg in enumerate(argv):
        if arg == "--plugins-dir" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--plugins-dir="):
            return arg.split("=", 1)[1]
    return os.environ.get(PLUGINS_DIR_ENV)


def help_text() -> str | None:
    """What ``kpiforge --help`` prints with the built-in plugins only (what ``_launch`` caches);
    None when a plugin failed to load or another one loaded (its commands are not the code's)."""
    plugins = _load_plugins(None)
    group = build_cli(plugins)
    if plugins.failures or any(o != "builtin" for o in plugins.origins.values()):
        return None
    with group.make_context("kpiforge", [], resilient_parsing=True, obj=plugins) as ctx:
        return ctx.get_help() + "\n"


def main(argv: Sequence[str] | None = None) -> None:
    if "numpy" not in sys.modules:
        # kpiforge does no linear algebra, and the worker threads OpenBLAS starts when numpy
        # is imported spin for about 0.1 s of CPU (a third of a small run); the user's own
        # OPENBLAS_NUM_THREADS wins. The library leaves the embedding process's setting alone.
        os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    args = list(sys.argv[1:] if argv is None else argv)
    plugins_dir = _plugins_dir_from_argv(args)
    try:
        plugins = _load_plugins(plugins_dir)
    except KpiforgeError as exc:
        fail(str(exc), 2)
    group = build_cli(plugins)
    try:
        group.main(args=args, prog_name="kpiforge", obj=plugins)
    except KpiforgeError as exc:  # last line of defence: never a traceback for our own errors
        fail(str(exc))


# command name -> (module, attribute). Each module is imported when its command is first asked
# for (see _BuiltinsGroup)
_BUILTINS: dict[str, tuple[str, str]] = {
    "validate": ("_cli_validate", "validate"), "list": ("_cli_inspect", "list_"),
    "show": ("_cli_inspect", "show"), "eval": ("_cli_inspect", "eval_"),
    "plugins": ("_cli_plugins", "plugins_command"), "packs": ("_cli_plugins", "packs_command"),
    "catalog": ("_cli_catalog", "catalog_command"), "init": ("_cli_init", "init_command"),
    "run": ("_cli_run", "run_command"), "test": ("_cli_test", "test_command"),
    "history": ("_cli_history", "history_command"), "report": ("_cli_report", "report_command"),
    "diff": ("_cli_diff", "diff_command"), "import": ("_cli_metricflow", "import_group"),
    "export": ("_cli_metricflow", "export_group"), "sql": ("_cli_sql", "sql_command"),
    "serve": ("_cli_serve", "serve_command"), "ab": ("_cli_ab", "ab_command"),
    "annotate": ("_cli_annotate", "annotate_command")}


def _builtin(name: str) -> click.Command:
    module, attribute = _BUILTINS[name]
    command = getattr(importlib.import_module(f"{__package__}.{module}"), attribute)
    assert isinstance(command, click.Command), name
    return command


def _builtin_commands() -> dict[str, click.Command]:
    """Every built-in command by name, imported now."""
    return {name: _builtin(name) for name in _BUILTINS}
