"""Plugin manager: built-in plugins, entry points, a plugins directory, and the registries.

Built-ins are listed in :data:`DEFAULT_PLUGINS` and loaded exactly like third-party plugins.
``KPIFORGE_LOAD_PLUGINS`` (comma-separated plugin names; empty string = none) limits which
third-party plugins load, like llm's ``LLM_LOAD_PLUGINS``. A plugin that fails to import or to
register is recorded in :attr:`Plugins.failures`, issued as a :class:`kpiforge.errors.PluginWarning`,
and the others keep working.
"""

from __future__ import annotations

import importlib
import importlib.util
import keyword
import os
import re
import sys
import threading
import warnings
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import pluggy

from . import hookspecs
from ._entry_points import entry_points
from ._packs import Pack, checked_pack
from ._plugin_types import checked_type
from .errors import PluginError, PluginWarning

DEFAULT_PLUGINS: tuple[str, ...] = (
    "kpiforge.plugins.functions",
    "kpiforge.plugins.sources.files",
    "kpiforge.plugins.sources.databases",
    "kpiforge.plugins.sources.records",
    "kpiforge.plugins.sinks.basic",
    "kpiforge.plugins.sinks.http",
    "kpiforge.plugins.sinks.email",
    "kpiforge.plugins.sinks.apprise",
    "kpiforge.plugins.alerting_cli",
    "kpiforge.plugins.packs",
)
# The built-ins that add CLI commands: with ``load_plugins(lazy=True)`` the others (they only
# register functions and types) are imported when a registry is first read, so that ``--help``
# does not import numpy, duckdb's helpers and every sink. tests/test_startup.py checks the split.
COMMAND_PLUGINS: tuple[str, ...] = ("kpiforge.plugins.alerting_cli",)
ENTRY_POINT_GROUP = "kpiforge"
LOAD_PLUGINS_ENV = "KPIFORGE_LOAD_PLUGINS"
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_TYPE_NAME = re.compile(r"^[a-z][a-z0-9_-]*$")


@dataclass(frozen=True, slots=True)
class Registration:
    """One thing a plugin registered: a function, a source or sink type, or a pack (``obj``
    is then its :class:`~kpiforge._packs.Pack`).

    ``settings_schema`` (types): the JSON Schema of the type's own settings, None when it
    accepts any. ``secrets``: setting name -> kind (see ``hookspecs.SECRET_KINDS``), None when
    the plugin declared nothing (then names are guessed). ``capabilities``: see
    ``hookspecs.SOURCE_CAPABILITIES``.
    """

    kind: str
    name: str
    plugin: str
    obj: Any
    doc: str = ""
    min_args: int = 0
    max_args: int | None = None
    settings_schema: Mapping[str, Any] | None = None
    secrets: Mapping[str, str] | None = None
    capabilities: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class PluginInfo:
    name: str
    origin: str  # "builtin", "entry point <dist>", or a file path
    registered: tuple[str, ...] = ()


@dataclass
class Plugins:
    """The loaded plugins and everything they registered. Read-only once built.

    The registries (functions, source and sink types) are collected when one is first read if
    the plugins were loaded with ``lazy=True``; :meth:`collect` forces it.
    """

    manager: pluggy.PluginManager
    commands: dict[str, str] = field(default_factory=dict)  # CLI command name -> plugin
    origins: dict[str, str] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)
    # derived once per plugin set (the composed project schema)
    cache: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    # kind -> registry; empty until collected
    tables: dict[str, dict[str, Registration]] = field(
        default_factory=lambda: {"function": {}, "source": {}, "sink": {}, "pack": {}}, repr=False)
    # what is left to do before the registries are complete (None once done)
    pending: Callable[[], None] | None = field(default=None, repr=False, compare=False)

    def collect(self) -> None:
        """Import the deferred built-ins and call every register hook, once."""
        pending, self.pending = self.pending, None
        if pending is not None:
            pending()

    @property
    def functions(self) -> dict[str, Registration]:
        self.collect()
        return self.tables["function"]

    @property
    def source_types(self) -> dict[str, Registration]:
        self.collect()
        return self.tables["source"]

    @property
    def sink_types(self) -> dict[str, Registration]:
        self.collect()
        return self.tables["sink"]

    @property
    def packs(self) -> dict[str, Registration]:
        self.collect()
        return self.tables["pack"]

    def definition_packs(self) -> dict[str, Pack]:
        """Pack name -> pack: what a ``definitions`` reference resolves against."""
        return {name: reg.obj for name, reg in self.packs.items()}

    def infos(self) -> list[PluginInfo]:
        by_plugin: dict[str, list[str]] = {name: [] for name in self.origins}
        for table in (self.functions, self.source_types, self.sink_types, self.packs):
            for reg in table.values():
                by_plugin.setdefault(reg.plugin, []).append(f"{reg.kind}:{reg.name}")
        for command, plugin in self.commands.items():
            by_plugin.setdefault(plugin, []).append(f"command:{command}")
        return [
            PluginInfo(name, self.origins.get(name, "?"), tuple(sorted(items)))
            for name, items in sorted(by_plugin.items())
        ]

    def fail(self, plugin: str, problem: str) -> None:
        """Record a problem of ``plugin``; several problems of one plugin are all kept."""
        before = self.failures.get(plugin)
        self.failures[plugin] = problem if before is None else f"{before}; {problem}"


def _plugin_name(manager: pluggy.PluginManager, plugin: object) -> str:
    return manager.get_name(plugin) or str(getattr(plugin, "__name__", repr(plugin)))


def _register_callback(kind: str, plugin: str, table: dict[str, Registration],
                       pending: list[Registration], clashes: list[str],
                       builtin: bool = False) -> Callable[..., None]:
    """The ``register`` a plugin's implementation gets: it checks and collects, never stores."""
    pattern = _NAME if kind == "function" else _TYPE_NAME

    def check(name: Any, obj: Any) -> bool:
        if kind == "pack":
            pass  # checked_pack checked it
        elif not isinstance(name, str) or not pattern.match(name) or keyword.iskeyword(name):
            raise PluginError(f"plugin {plugin!r} registered an invalid {kind} name {name!r}")
        elif not callable(obj):
            raise PluginError(f"plugin {plugin!r} registered {kind} {name!r} that is not callable")
        if kind == "function" and name == "total":  # formulas read total(x) as an input
            clashes.append(f"function 'total' is kpiforge's own (x over the whole breakdown); "
                           f"plugin {plugin!r}'s is ignored")
            return False
        for other in (table.get(name), next((p for p in pending if p.name == name), None)):
            if other is not None:
                # only this name is refused: the plugin's other registrations stand
                clashes.append(f"{kind} {name!r} is registered by both plugin {other.plugin!r} "
                               f"and plugin {plugin!r}; the latter is ignored")
                return False
        return True

    def register_function(name: str, func: Callable[..., Any], *, min_args: int = 0,
                          max_args: int | None = None, doc: str = "") -> None:
        if check(name, func):
            pending.append(Registration(kind, name, plugin, func, doc, min_args, max_args))

    def register_source(name: str, factory: Callable[..., Any], *,
                        settings_schema: Mapping[str, Any] | None = None,
                        secrets: Collection[str] | Mapping[str, str] | None = None,
                        capabilities: Collection[str] = (), doc: str = "") -> None:
        extra = checked_type(plugin, kind, name, settings_schema, secrets, capabilities,
                              hookspecs.SOURCE_CAPABILITIES, builtin)
        if check(name, factory):
            pending.append(Registration(kind, name, plugin, factory, doc, **extra))

    def register_sink(name: str, factory: Callable[..., Any], *,
                      settings_schema: Mapping[str, Any] | None = None,
                      secrets: Collection[str] | Mapping[str, str] | None = None,
                      doc: str = "") -> None:
        extra = checked_type(plugin, kind, name, settings_schema, secrets, (), (), builtin)
        if check(name, factory):
            pending.append(Registration(kind, name, plugin, factory, doc, **extra))

    def register_pack(name: str, *, files: Any, version: str, owner: str = "",
                      requires: Collection[str] = (), doc: str = "") -> None:
        pack = checked_pack(plugin, name, files, version, owner, doc, requires, builtin=builtin)
        if check(name, pack):
            pending.append(Registration(kind, name, plugin, pack, doc))

    registers: dict[str, Callable[..., None]] = {
        "function": register_function, "source": register_source, "sink": register_sink,
        "pack": register_pack}
    return registers[kind]


def _collect(plugins: Plugins, kind: str, hook_name: str, table: dict[str, Registration],
             order: list[str]) -> None:
    """Call one register hook plugin by plugin so a failure is pinned on the plugin that raised.

    Plugins are called in load order (built-ins first), not in pluggy's call order: a
    ``tryfirst``/``trylast`` mark must not let a third-party plugin take a built-in name.
    """
    manager = plugins.manager
    rank = {name: i for i, name in enumerate(order)}
    impls = sorted(getattr(manager.hook, hook_name).get_hookimpls(),
                   key=lambda impl: rank.get(_plugin_name(manager, impl.plugin), len(rank)))
    for impl in impls:
        plugin_name = _plugin_name(manager, impl.plugin)
        if impl.hookwrapper or impl.wrapper:
            plugins.fail(plugin_name, f"{hook_name}: a wrapper/hookwrapper implementation cannot "
                                      f"register anything; remove wrapper=True/hookwrapper=True")
            continue
        pending: list[Registration] = []
        clashes: list[str] = []
        try:
            builtin = plugins.origins.get(plugin_name) == "builtin"
            impl.function(_register_callback(kind, plugin_name, table, pending, clashes, builtin))
        except Exception as exc:  # a broken plugin must not take the others down
            # atomic: an implementation that raises registers nothing at all
            plugins.fail(plugin_name, f"{hook_name}: {type(exc).__name__}: {exc}")
            continue
        for problem in clashes:
            plugins.fail(plugin_name, problem)
        for reg in pending:
            table[reg.name] = reg


def _import_file(path: Path) -> ModuleType:
    module_name = f"kpiforge_plugins_dir.{path.stem}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


def _allowed_names() -> set[str] | None:
    value = os.environ.get(LOAD_PLUGINS_ENV)
    if value is None:
        return None
    return {part.strip() for part in value.split(",") if part.strip()}


def load_plugins(plugins_dir: str | os.PathLike[str] | None = None,
                 extra: tuple[object, ...] = (), *, lazy: bool = False) -> Plugins:
    """Build a plugin manager with built-ins, entry points, ``plugins_dir`` and ``extra`` modules.

    ``lazy=True`` (the command line) imports only the built-ins that add commands now and the
    others, with every register hook call, when a registry is first read; a plugin that fails
    then is recorded and warned about at that point."""
    manager = pluggy.PluginManager("kpiforge")
    manager.add_hookspecs(hookspecs)
    plugins = Plugins(manager)
    allowed = _allowed_names()

    def add(module: object, name: str, origin: str) -> None:
        try:
            manager.register(module, name=name)
        except Exception as exc:
            plugins.fail(name, f"registration: {type(exc).__name__}: {exc}")
            return
        plugins.origins[name] = origin

    def add_builtin(dotted: str) -> None:
        try:
            module = importlib.import_module(dotted)
        except Exception as exc:
            plugins.origins.pop(dotted, None)
            plugins.fail(dotted, f"import: {type(exc).__name__}: {exc}")
            return
        add(module, dotted, "builtin")

    deferred = [d for d in DEFAULT_PLUGINS if lazy and d not in COMMAND_PLUGINS]
    for dotted in DEFAULT_PLUGINS:
        if dotted in deferred:
            plugins.origins[dotted] = "builtin"  # its place in the load order, kept for later
        else:
            add_builtin(dotted)

    for ep in entry_points(ENTRY_POINT_GROUP):
        if allowed is not None and ep.name not in allowed:
            continue
        try:
            module = ep.load()
        except Exception as exc:
            plugins.fail(ep.name, f"import: {type(exc).__name__}: {exc}")
            continue
        dist = ep.dist.name if ep.dist else "?"
        add(module, ep.name, f"entry point ({dist})")

    if plugins_dir is not None:
        directory = Path(plugins_dir)
        if not directory.is_dir():
            raise PluginError(f"--plugins-dir {directory}: not a directory")
        for path in sorted(directory.glob("*.py")):
            if allowed is not None and path.stem not in allowed:
                continue
            try:
                module = _import_file(path)
            except Exception as exc:
                plugins.fail(path.stem, f"import {path}: {type(exc).__name__}: {exc}")
                continue
            add(module, path.stem, str(path))

    for given in extra:
        add(given, getattr(given, "__name__", repr(given)), "extra")

    def collect_registries(stacklevel: int) -> None:
        for dotted in deferred:
            add_builtin(dotted)
        order = list(plugins.origins)
        known = dict(plugins.failures)
        _collect(plugins, "function", "kpiforge_register_functions", plugins.tables["function"],
                 order)
        _collect(plugins, "source", "kpiforge_register_source_types", plugins.tables["source"],
                 order)
        _collect(plugins, "sink", "kpiforge_register_sink_types", plugins.tables["sink"], order)
        _collect(plugins, "pack", "kpiforge_register_packs", plugins.tables["pack"], order)
        for name, problem in plugins.failures.items():
            if lazy and known.get(name) == problem:
                continue  # warned about when the plugins were loaded
            # library users see it too, not only the CLI (which shows plugins.failures itself)
            warnings.warn(f"plugin {name} failed: {problem}", PluginWarning, stacklevel=stacklevel)

    if lazy:
        for name, problem in plugins.failures.items():
            warnings.warn(f"plugin {name} failed: {problem}", PluginWarning, stacklevel=2)
        plugins.pending = lambda: collect_registries(stacklevel=4)
    else:
        collect_registries(stacklevel=3)
    return plugins


_default: Plugins | None = None
_default_lock = threading.Lock()


def default_plugins() -> Plugins:
    """The process-wide plugins (built-ins + entry points), loaded once."""
    global _default
    with _default_lock:
        if _default is None:
            _default = load_plugins()
        return _default


def reset_default_plugins() -> None:
    """Forget the cached plugins (tests, or after installing a plugin)."""
    global _default
    with _default_lock:
        _default = None
