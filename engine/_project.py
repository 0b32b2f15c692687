"""The project file, ``kpiforge.yaml``: definitions, currency, time zone, week start, sources.

Loading validates the file against ``schemas/project.schema.json`` composed with the settings
schema of every registered source and sink type (:mod:`kpiforge._settings`), and then checks
what a schema cannot: the time zone exists, each source type is registered by a plugin, an
input names a ``column`` or an ``expression`` (not both), no input is provided by two sources,
and every ``${VAR}`` in a source's settings names a set environment variable. Every problem is
reported at once, as positioned diagnostics in one :class:`kpiforge.ProjectError`.

Secrets never live in the file: ``${PG_PASSWORD}`` is expanded from the environment when a
source is built (:meth:`Project.source_settings`, :mod:`kpiforge._env`), so a :class:`Project`
(and its repr) only ever holds the placeholder.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Mapping

from . import _env
from ._defpaths import resolve_definition_path, unknown_reference
from ._periods import PeriodError, week_start_index, zone
from ._schema import validate
from ._settings import core_keys, project_validator
from ._sources import InputSpec
from ._yamlio import Document, field_name, load_document
from .errors import DefinitionError, Diagnostic, ProjectError, SourceError, did_you_mean

if TYPE_CHECKING:
    from ._engine import Engine
    from ._plugins import Plugins

__all__ = ["DEFAULT_PROJECT_FILE", "Project", "SourceConfig", "expand_env", "load_project", "project_from_dict"]

DEFAULT_PROJECT_FILE = "kpiforge.yaml"
SCHEMA = "project.schema.json"
# what the core reads in a source; the rest is the type's settings (where ${VAR} expands)
_CORE = core_keys("source")
_DATA = "data"  # the table of a source type with the "data" capability
_EMPTY: Mapping[str, Any] = MappingProxyType({})


def _freeze(value: Any) -> Any:
    if isinstance(value, Mapping):
        return MappingProxyType({k: _freeze(v) for k, v in value.items()})
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    return value


def _thaw(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _thaw(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [_thaw(v) for v in value]
    return value


def expand_env(text: str, environ: Mapping[str, str] | None = None) -> str:
    """Replace each ``${NAME}`` with the environment variable NAME; unset is an error naming it."""
    try:
        return _env.expand(text, os.environ if environ is None else environ)
    except _env.UnsetVariable as exc:
        raise SourceError(str(exc)) from None


@dataclass(frozen=True)
class SourceConfig:
    """One entry of ``sources:``. ``settings`` is everything written for it, unexpanded."""

    name: str
    type: str
    time: str
    dimensions: tuple[str, ...]
    inputs: Mapping[str, InputSpec]
    settings: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)
    line: int = 0
    # where each setting was written (``("inputs", "cost", "column")`` -> line), for data errors
    lines: Mapping[tuple[Any, ...], int] = field(default_factory=lambda: _EMPTY, repr=False)
    file: str = ""

    def line_of(self, path: tuple[Any, ...]) -> int:
        """The line of ``path`` or of its nearest written ancestor (0: not from a file)."""
        key = tuple(path)
        while key and key not in self.lines:
            key = key[:-1]
        return self.lines.get(key, self.line)


@dataclass(frozen=True)
class Project:
    """A loaded project file. ``root`` is the folder relative paths are resolved against."""

    path: Path | None
    root: Path
    sources: Mapping[str, SourceConfig]
    definitions: tuple[Path, ...] = ()
    currency: str = "EUR"
    timezone: str = "UTC"
    week_start: str = "monday"
    state: str | None = None
    alerting: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)
    sinks: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)
    routes: tuple[Any, ...] = ()
    # in-memory tables of sources whose type has the "data" capability (inline rows, DataFrames)
    inline_data: Mapping[str, Any] = field(default_factory=lambda: _EMPTY, repr=False)
    # the file's data as written (read-only, ${VAR} unexpanded), for features reading own keys
    raw: Mapping[str, Any] = field(default_factory=lambda: _EMPTY, repr=False)
    # the loaded file with its positions, for checks that need the definitions (alert routes)
    document: Document | None = field(default=None, repr=False, compare=False)

    @property
    def week_start_index(self) -> int:
        return week_start_index(self.week_start)

    def input_sources(self) -> dict[str, str]:
        """Which source provides each input."""
        return {inp: name for name, src in self.sources.items() for inp in src.inputs}

    def dimensions(self) -> list[str]:
        """Every dimension some source can be split by, in first-declared order."""
        seen: list[str] = []
        for src in self.sources.values():
            seen.extend(d for d in src.dimensions if d not in seen)
        return seen

    def source_settings(self, name: str, environ: Mapping[str, str] | None = None, *,
                        expanded: list[str] | None = None) -> dict[str, Any]:
        """The settings handed to the source factory, with ``${VAR}`` expanded in the type's
        own settings; the values put in are appended to ``expanded`` (secrets to mask)."""
        config = self.sources[name]
        settings = _thaw(config.settings)
        env = os.environ if environ is None else environ
        for key in settings:
            if key in _CORE:
                continue
            try:
                settings[key] = _env.expand(settings[key], env, (key,), expanded)
            except _env.UnsetVariable as exc:
                raise SourceError(f"source '{name}': {key}: {exc}") from None
        settings["time"] = config.time
        settings["dimensions"] = list(config.dimensions)
        settings["inputs"] = dict(config.inputs)
        return settings

    def check_routes(self, engine: "Engine") -> list[Diagnostic]:
        """``routes`` matchers naming a KPI, category, owner or label no loaded KPI has."""
        if self.document is None or not self.routes:
            return []
        from .alerts._config import check_routes_against

        return check_routes_against(self.document, engine.definitions, self.dimensions())

    def engine(self, plugins: "Plugins | None" = None) -> "Engine":
        """The :class:`kpiforge.Engine` of this project's definitions (bundled by default)."""
        from ._engine import Engine

        return Engine.load(*self.definitions, plugins=plugins, currency=self.currency)


def load_project(path: str | os.PathLike[str] = DEFAULT_PROJECT_FILE, *,
                 plugins: "Plugins | None" = None,
                 environ: Mapping[str, str] | None = None) -> Project:
    """Load and check ``kpiforge.yaml``; raise :class:`ProjectError` listing every problem."""
    file = Path(path)
    try:
        document = load_document(file, display_path=os.fspath(path))
    except DefinitionError as exc:  # the YAML loader's diagnostics, as a project error
        raise ProjectError(exc.diagnostics) from None
    return _build(document, file.resolve().parent, file, plugins, environ)


def project_from_dict(data: Mapping[str, Any], *, root: str | os.PathLike[str] | None = None,
                      plugins: "Plugins | None" = None, environ: Mapping[str, str] | None = None,
                      display_path: str = "<project>") -> Project:
    """A project from a dict shaped like the file. Paths are relative to ``root`` (default: the
    working directory). A source whose type takes data may carry its table under ``data``."""
    if not isinstance(data, Mapping):
        raise ProjectError([Diagnostic(display_path, 0, 0, "schema", "a project must be a mapping")])
    plain = dict(data)
    inline: dict[str, Any] = {}
    sources = plain.get("sources")
    if isinstance(sources, Mapping):
        plain["sources"] = {}
        for name, spec in sources.items():
            if isinstance(spec, Mapping) and "data" in spec and not isinstance(spec["data"], list):
                spec = dict(spec)
                inline[name] = spec.pop("data")  # a DataFrame is not JSON: keep it aside
            plain["sources"][name] = spec
    document = Document(display_path, plain)
    project = _build(document, Path(root).resolve() if root else Path.cwd(), None, plugins, environ)
    if inline:
        object.__setattr__(project, "inline_data", MappingProxyType({**project.inline_data, **inline}))
    return project


def _build(document: Document, root: Path, path: Path | None, plugins: "Plugins | None",
           environ: Mapping[str, str] | None) -> Project:
    data = document.data
    if plugins is None:
        from ._plugins import default_plugins

        plugins = default_plugins()
    diagnostics = validate(document, project_validator(plugins))
    if not isinstance(data, dict):
        raise ProjectError(diagnostics or [document.diagnostic((), "schema", "expected a mapping")])
    diagnostics.extend(_check(document, root, plugins, environ))
    reported = {d.field for d in diagnostics}  # the schema's own finding on a field suffices
    diagnostics.extend(d for d in _check_alerting(document, root, plugins, environ)
                       if d.field not in reported)
    if any(d.is_error for d in diagnostics):
        raise ProjectError(diagnostics)

    raw_definitions = data.get("definitions")
    if isinstance(raw_definitions, str):
        raw_definitions = [raw_definitions]
    definitions = tuple(_definition_path(root, p) for p in raw_definitions or ())
    sources = {}
    inline: dict[str, Any] = {}
    for name, spec in (data.get("sources") or {}).items():
        inputs = {inp: InputSpec.from_settings(inp, s) for inp, s in spec["inputs"].items()}
        settings = {k: v for k, v in spec.items() if k not in ("time", "dimensions", "inputs")}
        registration = plugins.source_types.get(spec["type"])
        if registration is not None and "data" in registration.capabilities and _DATA in settings:
            inline[name] = settings.pop(_DATA)  # rows written in the file: the table, not a setting
        base = ("sources", name)
        lines = {key[2:]: at[0] for key, at in document.positions.items() if key[:2] == base}
        for i, dim in enumerate(spec.get("dimensions") or ()):
            if ("dimensions", i) in lines:
                lines[("dimensions", dim)] = lines[("dimensions", i)]
        sources[name] = SourceConfig(
            name, spec["type"], spec["time"], tuple(spec.get("dimensions") or ()),
            MappingProxyType(inputs), _freeze(settings), document.position(base)[0],
            MappingProxyType(lines) if path is not None else _EMPTY,
            document.path if path is not None else "")
    return Project(
        path=path.resolve() if path else None,
        root=root,
        sources=MappingProxyType(sources),
        definitions=definitions,
        currency=data.get("currency", "EUR"),
        timezone=data.get("timezone", "UTC"),
        week_start=data.get("week_start", "monday"),
        state=data.get("state"),
        alerting=_freeze(data.get("alerting") or {}),
        sinks=_freeze(data.get("sinks") or {}),
        routes=_freeze(data.get("routes") or []),
        inline_data=MappingProxyType(inline),
        raw=_freeze(data),
        document=document,
    )


def _check_alerting(document: Document, root: Path, plugins: "Plugins | None",
                    environ: Mapping[str, str] | None) -> list[Diagnostic]:
    """``alerting``/``sinks``/``routes``: every sink is built now, not after the queries."""
    data = document.data
    if not any(key in data for key in ("alerting", "sinks", "routes")):
        return []
    from .alerts._config import check_alerting

    if plugins is None:
        from ._plugins import default_plugins

        plugins = default_plugins()
    sources = data.get("sources")
    dimensions = [d for spec in (sources.values() if isinstance(sources, dict) else ())
                  if isinstance(spec, dict) and isinstance(spec.get("dimensions"), list)
                  for d in spec["dimensions"] if isinstance(d, str)]
    return check_alerting(document, root, plugins.sink_types, environ, dimensions)


def _definition_path(root: Path, item: str) -> Path:
    """A ``definitions`` item as a path: references (``kpiforge:standard``) resolve as
    everywhere else, other items relative to the project's folder."""
    path = resolve_definition_path(item, root)
    if path is None:  # _check reported it; the project is not built
        raise ValueError(item)
    return path


def _check(document: Document, root: Path, plugins: "Plugins | None",
           environ: Mapping[str, str] | None) -> list[Diagnostic]:
    """The checks a JSON schema cannot express; run on whatever is well-formed enough."""
    data = document.data
    out: list[Diagnostic] = []
    env = os.environ if environ is None else environ

    tz = data.get("timezone")
    if isinstance(tz, str):
        try:
            zone(tz)
        except PeriodError:
            out.append(document.diagnostic(("timezone",), "timezone", f"unknown time zone '{tz}' "
                                           "(use an IANA name such as Europe/Paris or UTC)"))

    raw_definitions = data.get("definitions")
    listed = [raw_definitions] if isinstance(raw_definitions, str) else raw_definitions
    if isinstance(listed, list):
        for i, item in enumerate(listed):
            where = ("definitions",) if isinstance(raw_definitions, str) else ("definitions", i)
            if not isinstance(item, str):
                continue
            if resolve_definition_path(item, root) is None:
                out.append(document.diagnostic(where, "unknown-reference", unknown_reference(item)))
            elif not _definition_path(root, item).exists():
                out.append(document.diagnostic(where, "path", f"'{item}' does not exist "
                                               f"(paths are relative to {root})"))

    sources = data.get("sources")
    if not isinstance(sources, dict):
        return out
    if plugins is None:
        from ._plugins import default_plugins

        plugins = default_plugins()
    types = plugins.source_types
    provided_by: dict[str, str] = {}
    for name, spec in sources.items():
        if not isinstance(spec, dict):
            continue
        base = ("sources", name)
        kind = spec.get("type")
        if isinstance(kind, str) and kind not in types:
            known = ", ".join(sorted(types)) or "none"
            out.append(document.diagnostic(base + ("type",), "source-type",
                                           f"unknown source type '{kind}'{did_you_mean(kind, types)}; "
                                           f"registered types: {known}"))
        takes_data = isinstance(kind, str) and kind in types and "data" in types[kind].capabilities
        for key in spec:
            if key in _CORE or (takes_data and key == _DATA):
                continue
            for sub, variable in _env.references(spec[key], (key,)):
                if variable not in env:
                    out.append(document.diagnostic(
                        base + sub, "env",
                        f"environment variable {variable} is not set (referenced as ${{{variable}}})"))
        inputs = spec.get("inputs")
        if not isinstance(inputs, dict):
            continue
        for input_name, input_spec in inputs.items():
            where = base + ("inputs", input_name)
            if isinstance(input_spec, dict) and "column" in input_spec and "expression" in input_spec:
                out.append(document.diagnostic(where, "input", "set 'column' or 'expression', not both"))
            if isinstance(input_spec, dict) and input_spec.get("column") == "*" and input_spec.get("agg") != "count":
                out.append(document.diagnostic(where + ("column",), "input",
                                               "column '*' (count rows) only works with agg: count"))
            other = provided_by.get(input_name)
            if other is not None:
                out.append(Diagnostic(document.path, *document.key_position(where), "duplicate-input",
                                      f"input '{input_name}' is provided by both source '{other}' "
                                      f"and source '{name}'", field=field_name(where)))
            else:
                provided_by[input_name] = name
    return out
