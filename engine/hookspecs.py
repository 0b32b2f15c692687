"""The plugin contract of kpiforge.

Every hook is named ``kpiforge_*``. Register hooks receive a ``register`` callback instead of
returning values: the host then knows which plugin registered what, validates the name, and
rejects a duplicate with an error that names both plugins. Built-in features are plugins
registered exactly like third-party ones (see ``kpiforge._plugins.DEFAULT_PLUGINS``); they are
registered first, whatever ``tryfirst``/``trylast`` a third-party implementation sets, and a
``wrapper``/``hookwrapper`` implementation of a register hook is refused.

Third-party plugins are modules exposing functions decorated with :data:`hookimpl`, found
through the ``kpiforge`` entry-point group or as loose ``.py`` files in ``--plugins-dir``.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Protocol

import pluggy

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

    import click

    from .sources import Source  # numpy's import: plugin loading (and --help) must not pay it

    from .sinks import Sink  # kpiforge.sinks re-exports SinkContext/SinkFactory from here

__all__ = [
    "SECRET_KINDS",
    "SOURCE_CAPABILITIES",
    "FunctionRegister",
    "PackRegister",
    "SinkContext",
    "SinkFactory",
    "SinkTypeRegister",
    "SourceContext",
    "SourceFactory",
    "SourceTypeRegister",
    "hookimpl",
    "hookspec",
    "kpiforge_register_commands",
    "kpiforge_register_functions",
    "kpiforge_register_packs",
    "kpiforge_register_sink_types",
    "kpiforge_register_source_types",
]

hookspec = pluggy.HookspecMarker("kpiforge")
hookimpl = pluggy.HookimplMarker("kpiforge")

#: How a secret setting is masked: ``value`` (the whole value, or each item or mapping value),
#: ``url`` (the URL's password, a lone user name, query values) or ``token_url`` (the whole URL,
#: its path and each long path segment: the path *is* the token, as in Slack webhooks).
SECRET_KINDS: tuple[str, ...] = ("value", "url", "token_url")

#: What a source type may declare in ``capabilities=``. ``data``: it reads an in-memory table
#: given to ``engine.run(data={name: table})`` (or inline rows under ``data:``), which the core
#: hands to the factory as ``settings["data"]``.
SOURCE_CAPABILITIES: tuple[str, ...] = ("data",)


@dataclass(frozen=True, slots=True, kw_only=True)
class SourceContext:
    """What a source factory may know besides its settings.

    ``project_dir`` is the folder of ``kpiforge.yaml`` (the working directory for a dict
    project): relative paths in settings are relative to it.
    """

    project_dir: Path


@dataclass(frozen=True, slots=True, kw_only=True)
class SinkContext:
    """What a sink factory may know besides its settings.

    ``project_dir`` is the folder of ``kpiforge.yaml``: relative paths in settings are relative
    to it.
    """

    project_dir: Path


class SourceFactory(Protocol):
    """What a source type registers: builds the :class:`~kpiforge.sources.Source` of one
    configured source from its name, its settings (``${VAR}`` expanded) and a :class:`SourceContext`."""

    def __call__(self, name: str, settings: Mapping[str, Any], context: SourceContext) -> Source: ...


class SinkFactory(Protocol):
    """What a sink type registers: builds one configured sink from its name, its settings
    (``${VAR}`` expanded) and a :class:`SinkContext`."""

    def __call__(self, name: str, settings: Mapping[str, Any], context: SinkContext) -> "Sink": ...


class FunctionRegister(Protocol):
    """The ``register`` callback of :func:`kpiforge_register_functions`."""

    def __call__(
        self,
        name: str,
        func: Callable[..., Any],
        *,
        min_args: int,
        max_args: int | None,
        doc: str = "",
    ) -> None:
        """Register formula function ``name``; ``max_args=None`` means variadic."""


class SourceTypeRegister(Protocol):
    """The ``register`` callback of :func:`kpiforge_register_source_types`."""

    def __call__(
        self,
        name: str,
        factory: SourceFactory,
        *,
        settings_schema: Mapping[str, Any] | None = None,
        secrets: Collection[str] | Mapping[str, str] | None = None,
        capabilities: Collection[str] = (),
        doc: str = "",
    ) -> None:
        """Register source type ``name``.

        ``settings_schema`` is a JSON Schema (draft 2020-12) object schema of the type's own
        settings (``properties``, ``required``, ...), ``None`` for "any settings, unchecked".
        The core adds ``type``, ``description``, ``time``, ``dimensions`` and ``inputs`` and
        refuses every setting neither declares. ``secrets`` names the secret settings (a list:
        each whole value; or a mapping of setting to one of :data:`SECRET_KINDS`); ``None``
        guesses from the names (password, secret, token, key, auth, credential; url).
        ``capabilities`` are taken from :data:`SOURCE_CAPABILITIES`.
        """


class SinkTypeRegister(Protocol):
    """The ``register`` callback of :func:`kpiforge_register_sink_types`."""

    def __call__(
        self,
        name: str,
        factory: SinkFactory,
        *,
        settings_schema: Mapping[str, Any] | None = None,
        secrets: Collection[str] | Mapping[str, str] | None = None,
        doc: str = "",
    ) -> None:
        """Register sink type ``name``.

        ``settings_schema`` and ``secrets`` as for source types; the core adds ``type``,
        ``timeout`` and ``retry``.
        """


class PackRegister(Protocol):
    """The ``register`` callback of :func:`kpiforge_register_packs`."""

    def __call__(
        self,
        name: str,
        *,
        files: Traversable | str | os.PathLike[str],
        version: str,
        owner: str = "",
        requires: Collection[str] = (),
        doc: str = "",
    ) -> None:
        """Register definition pack ``name`` (``namespace:name``, lower case; the namespace
        ``kpiforge`` is kept for the packs kpiforge ships).

        ``files`` is the folder of the pack's definitions, objectives and tests, on disk: an
        absolute path or an :mod:`importlib.resources` folder such as
        ``resources.files("acme_kpis") / "definitions"``. ``version`` is the pack's own
        version (``1.2.0``), ``owner`` the team answering for it. ``requires`` names the packs
        whose KPIs its formulas use (``["kpiforge:standard"]``): naming the pack loads them too.
        """


@hookspec
def kpiforge_register_functions(register: FunctionRegister) -> None:
    """Add functions that formulas may call.

    Call ``register(name, func, min_args=..., max_args=..., doc=...)`` once per function.
    ``max_args=None`` means variadic. ``func`` must accept Python floats *and* numpy arrays
    of equal length (one call evaluates a KPI over every slice at once) and must neither
    allocate without bound nor touch the outside world: formulas are untrusted input.
    Names are lower snake_case identifiers; a name another plugin registered is refused (that
    name only, naming both plugins). An implementation that raises registers nothing.
    Every implementation is called; return values are ignored.
    """


@hookspec
def kpiforge_register_source_types(register: SourceTypeRegister) -> None:
    """Add data-source types usable as ``type:`` in a project's ``sources:``.

    Call ``register(type_name, factory, settings_schema=..., secrets=..., capabilities=...,
    doc=...)``. ``factory(name, settings, context)`` gets the source's settings with ``${VAR}``
    expanded and a :class:`SourceContext`, and returns an object implementing
    :class:`kpiforge.sources.Source` (``fetch(request)``), raising :class:`kpiforge.SourceError`
    for bad settings. The settings were validated against ``settings_schema`` when the project
    loaded, with positioned errors. Every implementation is called.
    """


@hookspec
def kpiforge_register_sink_types(register: SinkTypeRegister) -> None:
    """Add alert-sink types usable as ``type:`` in a project's ``sinks:``.

    Call ``register(type_name, factory, settings_schema=..., secrets=..., doc=...)``.
    ``factory(name, settings, context)`` gets the settings with ``${VAR}`` expanded (and
    ``timeout`` in seconds) and a :class:`SinkContext`, and returns an object with
    ``send(alert) -> None`` raising :class:`kpiforge.SinkError` on failure. The engine calls
    each sink on its own, so one failing sink never stops the others. Every implementation is
    called.

    The factory is also called when the project loads, to check the settings before any
    query runs: it must only construct (validate, never connect), and it should raise
    ``SinkError(message, setting="url")`` naming the refused setting so the error points at
    its line in ``kpiforge.yaml``.
    """


@hookspec
def kpiforge_register_packs(register: PackRegister) -> None:
    """Add definition packs: named, versioned sets of KPI definitions.

    Call ``register(name, files=..., version=..., owner=..., doc=...)`` once per pack. A
    pack's name then works wherever a definitions path does: a project's ``definitions:``,
    every command's ``-d``, ``Engine.load(...)``. ``kpiforge packs`` lists them. The folder
    must exist when the pack is registered; a name another plugin registered is refused (that
    name only, naming both plugins). Every implementation is called.
    """


@hookspec
def kpiforge_register_commands(cli: "click.Group") -> None:
    """Add sub-commands to the ``kpiforge`` command-line interface.

    Attach commands with ``@cli.command()`` or ``cli.add_command(...)``. A command name that
    already exists is an error naming the plugin. Every implementation is called.
    """
