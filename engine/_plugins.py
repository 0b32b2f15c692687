"""Plugin manager: built-in plugins, entry points, a plugins directory, and the registries.

Built-ins are listed in :data:`DEFAULT_PLUGINS` and loaded exactly like third-party plugins.
``KPIFORGE_LOAD_PLUGINS`` (comma-separated plugin names; empty string = none) limits which
third-party plugins load, like llm's ``LLM_LOAD_PLUGINS``. A plugin that fails to import or to
register is recorded in :attr:`Plugins.failures` and the others keep working.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import keyword
import os
import re
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import pluggy

from . import hookspecs
from .errors import PluginError

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
)
ENTRY_POINT_GROUP = "kpiforge"
LOAD_PLUGINS_ENV = "KPIFORGE_LOAD_PLUGINS"
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_TYPE_NAME = re.compile(r"^[a-z][a-z0-9_-]*$")


@dataclass(frozen=True, slots=True)
class Registration:
    """One thing a plugin registered: a function, a source type or a sink type."""

    kind: str
    name: str
    plugin: str
    obj: Any
    doc: str = ""
    min_args: int = 0
    max_args: int | None = None


@dataclass(frozen=True, slots=True)
class PluginInfo:
    name: str
    origin: str  # "builtin", "entry point <dist>", or a file path
    registered: tuple[str, ...] = ()


@dataclass
class Plugins:
    """The loaded plugins and everything they registered. Read-only once built."""

    manager: pluggy.PluginManager
    functions: dict[str, Registration] = field(default_factory=dict)
    source_types: dict[str, Registration] = field(default_factory=dict)
    sink_types: dict[str, Registration] = field(default_factory=dict)
    commands: dict[str, str] = field(default_factory=dict)  # CLI command name -> plugin
    origins: dict[str, str] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)

    def infos(self) -> list[PluginInfo]:
        by_plugin: dict[str, list[str]] = {name: [] for name in self.origins}
        for table in (self.functions, self.source_types, self.sink_types):
            for reg in table.values():
                by_plugin.setdefault(reg.plugin, []).append(f"{reg.kind}:{reg.name}")
        for command, plugin in self.commands.items():
            by_plugin.setdefault(plugin, []).append(f"command:{command}")
        return [
            PluginInfo(name, self.origins.get(name, "?"), tuple(sorted(items)))
            for name, items in sorted(by_plugin.items())
        ]


def _plugin_name(manager: pluggy.PluginManager, plugin: object) -> str:
    return manager.get_name(plugin) or getattr(plugin, "__name__", repr(plugin))


def _collect(plugins: Plugins, kind: str, hook_name: str, table: dict[str, Registration],
             pattern: re.Pattern[str]) -> None:
    """Call one register hook plugin by plugin so a failure is pinned on the plugin that raised."""
    manager = plugins.manager
    # registration order, so built-ins (registered first) keep their names against late-comers
    for impl in getattr(manager.hook, hook_name).get_hookimpls():
        plugin_name = _plugin_name(manager, impl.plugin)
        pending: list[Registration] = []

        def register(name: str, obj: Any, *, doc: str = "", min_args: int = 0,
                     max_args: int | None = None, _plugin: str = plugin_name) -> None:
            if not isinstance(name, str) or not pattern.match(name) or keyword.iskeyword(name):
                raise PluginError(f"plugin {_plugin!r} registered an invalid {kind} name {name!r}")
            if not callable(obj):
                raise PluginError(f"plugin {_plugin!r} registered {kind} {name!r} that is not callable")
            for other in (table.get(name), next((p for p in pending if p.name == name), None)):
                if other is not None:
                    raise PluginError(
                        f"{kind} {name!r} is registered by both plugin {other.plugin!r} "
                        f"and plugin {_plugin!r}"
                    )
            pending.append(Registration(kind, name, _plugin, obj, doc, min_args, max_args))

        try:
            impl.function(register)
        except Exception as exc:  # a broken plugin must not take the others down
            plugins.failures[plugin_name] = f"{hook_name}: {type(exc).__name__}: {exc}"
            continue
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
                 extra: tuple[object, ...] = ()) -> Plugins:
    """Build a plugin manager with built-ins, entry points, ``plugins_dir`` and ``extra`` modules."""
    manager = pluggy.PluginManager("kpiforge")
    manager.add_hookspecs(hookspecs)
    plugins = Plugins(manager)
    allowed = _allowed_names()

    def add(module: object, name: str, origin: str) -> None:
        try:
            manager.register(module, name=name)
        except Exception as exc:
            plugins.failures[name] = f"registration: {type(exc).__name__}: {exc}"
            return
        plugins.origins[name] = origin

    for dotted in DEFAULT_PLUGINS:
        try:
            module = importlib.import_module(dotted)
        except Exception as exc:
            plugins.failures[dotted] = f"import: {type(exc).__name__}: {exc}"
            continue
        add(module, dotted, "builtin")

    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        if allowed is not None and ep.name not in allowed:
            continue
        try:
            module = ep.load()
        except Exception as exc:
            plugins.failures[ep.name] = f"import: {type(exc).__name__}: {exc}"
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
                plugins.failures[path.stem] = f"import {path}: {type(exc).__name__}: {exc}"
                continue
            add(module, path.stem, str(path))

    for module in extra:
        add(module, getattr(module, "__name__", repr(module)), "extra")

    _collect(plugins, "function", "kpiforge_register_functions", plugins.functions, _NAME)
    _collect(plugins, "source", "kpiforge_register_source_types", plugins.source_types, _TYPE_NAME)
    _collect(plugins, "sink", "kpiforge_register_sink_types", plugins.sink_types, _TYPE_NAME)
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
