"""The plugin contract of kpiforge.

Every hook is named ``kpiforge_*``. Register hooks receive a ``register`` callback instead of
returning values: the host then knows which plugin registered what, validates the name, and
rejects a duplicate with an error that names both plugins. Built-in features are plugins
registered exactly like third-party ones (see ``kpiforge._plugins.DEFAULT_PLUGINS``).

Third-party plugins are modules exposing functions decorated with :data:`hookimpl`, found
through the ``kpiforge`` entry-point group or as loose ``.py`` files in ``--plugins-dir``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Protocol

import pluggy

if TYPE_CHECKING:
    import click

__all__ = [
    "FunctionRegister",
    "SinkTypeRegister",
    "SourceTypeRegister",
    "hookimpl",
    "hookspec",
    "kpiforge_register_commands",
    "kpiforge_register_functions",
    "kpiforge_register_sink_types",
    "kpiforge_register_source_types",
]

hookspec = pluggy.HookspecMarker("kpiforge")
hookimpl = pluggy.HookimplMarker("kpiforge")


class FunctionRegister(Protocol):
    def __call__(
        self,
        name: str,
        func: Callable[..., Any],
        *,
        min_args: int,
        max_args: int | None,
        doc: str = "",
    ) -> None: ...


class SourceTypeRegister(Protocol):
    def __call__(self, name: str, factory: Callable[..., Any], *, doc: str = "") -> None: ...


class SinkTypeRegister(Protocol):
    def __call__(self, name: str, factory: Callable[..., Any], *, doc: str = "") -> None: ...


@hookspec
def kpiforge_register_functions(register: FunctionRegister) -> None:
    """Add functions that formulas may call.

    Call ``register(name, func, min_args=..., max_args=..., doc=...)`` once per function.
    ``max_args=None`` means variadic. ``func`` must accept Python floats *and* numpy arrays
    of equal length (one call evaluates a KPI over every slice at once) and must neither
    allocate without bound nor touch the outside world: formulas are untrusted input.
    Names are lower snake_case identifiers; a name another plugin registered is an error.
    Every implementation is called; return values are ignored.
    """


@hookspec
def kpiforge_register_source_types(register: SourceTypeRegister) -> None:
    """Add data-source types usable as ``type:`` in a project's ``sources:``.

    Call ``register(type_name, factory, doc=...)``. ``factory(name, settings, project_dir)``
    returns an object implementing ``kpiforge._sources.Source`` (``fetch(request)``), raising
    :class:`kpiforge.SourceError` for bad settings. Every implementation is called.
    """


@hookspec
def kpiforge_register_sink_types(register: SinkTypeRegister) -> None:
    """Add alert-sink types usable as ``type:`` in a project's ``sinks:``.

    Call ``register(type_name, factory, doc=...)``. ``factory(name, settings)`` returns an
    object with ``send(alert) -> None`` raising :class:`kpiforge.SinkError` on failure. The
    engine calls each sink on its own, so one failing sink never stops the others.
    Every implementation is called.

    The factory is also called when the project loads, to check the settings before any
    query runs: it must only construct (validate, never connect), and it should raise
    ``SinkError(message, setting="url")`` naming the refused setting so the error points at
    its line in ``kpiforge.yaml``.
    """


@hookspec
def kpiforge_register_commands(cli: "click.Group") -> None:
    """Add sub-commands to the ``kpiforge`` command-line interface.

    Attach commands with ``@cli.command()`` or ``cli.add_command(...)``. A command name that
    already exists is an error naming the plugin. Every implementation is called.
    """
