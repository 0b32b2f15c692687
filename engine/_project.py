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

A :class:`Project` composes the rest: :attr:`Project.engine` (its own ``definitions:``),
:meth:`Project.run` (its sources) and :meth:`Project.dispatch` (its alerting). Plugins are
loaded once, by :meth:`Project.load` / :meth:`Project.from_dict` unless given, and handed down
to everything built from the project; no part of the core falls back to a process-wide set.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import cached_property
from pathlib import Path
from types import MappingProxyType
from typing import Any, Callable, Mapping, Sequence

from . import _env
from ._defpaths import resolve_definition_path, unknown_reference
from ._dispatch import DispatchSummary
from ._engine import Engine
from ._periods import week_start_index, zone
from ._plugins import Plugins, load_plugins
from ._run import RunResult, run as run_kpis
from ._schema import validate
from ._settings import core_keys, project_validator
from .sources import InputSpec
from ._yamlio import Document, field_name, load_document
from .errors import (
    AlertConfigError,
    DefinitionError,
    Diagnostic,
    PeriodError,
    ProjectError,
    SourceError,
    did_you_mean,
)

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
    """A loaded project: definitions, sources and alerting of one ``kpiforge.yaml``.

    Build one with :meth:`load` or :meth:`from_dict`. ``root`` is the folder relative paths are
    resolved against. Immutable; :attr:`engine` is loaded on first use and then kept.
    """

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
    # the plugins the project was checked with; its engine, sources and sinks use the same
    plugins: Plugins | None = field(default=None, repr=False, compare=False)

    # -- building ----------------------------------------------------------------------------
    @classmethod
    def load(cls, path: str | os.PathLike[str] = DEFAULT_PROJECT_FILE, *,
             plugins: Plugins | None = None,
             environ: Mapping[str, str] | None = None) -> "Project":
        """Load and check a project file (or the ``kpiforge.yaml`` of a folder).

        ``plugins`` (from ``kpiforge._plugins.load_plugins``) default to the built-ins plus
        installed entry points, loaded once here. Raises :class:`kpiforge.ProjectError` listing
        every problem of the file with its line.
        """
        file = Path(path)
        if file.is_dir():
            file = file / DEFAULT_PROJECT_FILE
            path = os.path.join(os.fspath(path), DEFAULT_PROJECT_FILE)
        try:
            document = load_document(file, display_path=os.fspath(path))
        except DefinitionError as exc:  # the YAML loader's diagnostics, as a project error
            raise ProjectError(exc.diagnostics) from None
        return _build(document, file.resolve().parent, file, _plugins_or_load(plugins), environ)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, root: str | os.PathLike[str] | None = None,
                  plugins: Plugins | None = None, environ: Mapping[str, str] | None = None,
                  display_path: str = "<project>") -> "Project":
        """A project from a dict shaped like the file. Paths (``definitions``, a source's
        ``path``) are relative to ``root`` (default: the working directory). A
        dataframe/records source may carry its table under ``data``."""
        return project_from_dict(data, root=root, plugins=plugins, environ=environ,
                                 display_path=display_path)

    # -- what it composes --------------------------------------------------------------------
    @cached_property
    def engine(self) -> Engine:
        """The :class:`kpiforge.Engine` of this project's own ``definitions:`` (the bundled
        catalog when it has none). Loaded on first use; raises
        :class:`kpiforge.DefinitionError` listing every error of the definition files."""
        return Engine.load(*self.definitions, plugins=self._plugins(), currency=self.currency)

    def _plugins(self) -> Plugins:
        if self.plugins is None:  # a Project built by hand, not by load/from_dict
            object.__setattr__(self, "plugins", load_plugins())
        assert self.plugins is not None
        return self.plugins

    def run(self, *, grain: str | None = None, period: str | None = None,
            start: date | datetime | str | None = None, end: date | datetime | str | None = None,
            last: int | None = None, by: Sequence[str] | str = (),
            kpis: Sequence[str] | None = None, compare: Sequence[str] | str = (),
            data: Mapping[str, Any] | Any = None,
            progress: Callable[[str, int, int], None] | None = None) -> RunResult:
        """KPI values per period and slice, computed from the project's sources by its engine.

        The options are those of ``kpiforge run``: ``grain`` (``day`` ... ``year``; default
        the ``period``'s own, else ``month``), one of ``period`` (``"2026-10"``,
        ``"2026-W43"``, ...), ``start``/``end`` (``--from``/``--to``: dates, both included,
        ``end`` defaulting to the latest data) or ``last`` (the N periods ending with the latest
        that has data); by default the latest period with data. ``by`` lists dimensions,
        ``kpis`` the KPIs (default: every KPI the sources provide all inputs for), ``compare``
        holds ``"previous"`` and/or ``"year"``. ``data`` maps a dataframe/records source name
        to its table (a single table is accepted when the project has one such source).
        ``progress(step, done, total)``, if given, is called before each source is read and
        before the evaluation (what the command line's progress bar shows).

        Raises :class:`kpiforge.RunError` for an inconsistent request, ``UnknownKpiError``,
        ``SourceError`` for data that cannot be read.
        """
        return run_kpis(self.engine, self, grain=grain, period=period, by=by, kpis=kpis,
                        compare=compare, start=start, end=end, last=last, data=data,
                        progress=progress)

    def dispatch(self, result: RunResult, *, dry_run: bool = False,
                 now: datetime | float | None = None, lang: str = "en") -> DispatchSummary:
        """Alerting for a run's records, as ``kpiforge run`` does after computing them.

        Applies each KPI's alert rule, advances the alert state kept in ``state:`` (default
        ``.kpiforge/state.db`` next to the project file), queues notifications in its outbox
        and delivers them to the sinks ``routes:`` name. ``dry_run`` decides what would be sent
        and changes nothing. ``now`` replaces the clock (tests, replays). Delivery failures do
        not raise: they are counted in the summary and wait in the outbox. Raises
        :class:`kpiforge.ProjectError` for routes naming what no KPI has, and
        :class:`kpiforge.AlertConfigError` (positioned in the file) for unusable settings.
        """
        from .alerts import dispatch

        problems = self.check_routes(self.engine)
        if problems:
            raise ProjectError(problems)
        try:
            report = dispatch(self.engine, result.to_records(), project_dir=self.root,
                              alerting=self.alerting, sinks=self.sinks, routes=self.routes,
                              state_path=self.state, plugins=self._plugins(), now=now,
                              dry_run=dry_run, lang=lang)
        except AlertConfigError as exc:
            raise self._positioned(exc) from None
        return DispatchSummary.from_report(report)

    def _positioned(self, exc: AlertConfigError) -> AlertConfigError:
        """``exc`` at the line of the project file that wrote its setting, when known."""
        if exc.path or not exc.field or self.document is None or self.path is None:
            return exc
        key = tuple(int(p) if p.isdigit() else p for p in exc.field.split("."))
        while key and key not in self.document.positions:
            key = key[:-1]
        if not key:
            return exc
        line, column = self.document.position(key)
        return exc.at(self.document.path, line, column)

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

    def check_routes(self, engine: Engine) -> list[Diagnostic]:
        """``routes`` matchers naming a KPI, category, owner or label no loaded KPI has."""
        if self.document is None or not self.routes:
            return []
        from .alerts._config import check_routes_against

        return check_routes_against(self.document, engine.definitions, self.dimensions())



def _plugins_or_load(plugins: Plugins | None) -> Plugins:
    return plugins if plugins is not None else load_plugins()


def load_project(path: str | os.PathLike[str] = DEFAULT_PROJECT_FILE, *,
                 plugins: Plugins | None = None,
                 environ: Mapping[str, str] | None = None) -> Project:
    """:meth:`Project.load`."""
    return Project.load(path, plugins=plugins, environ=environ)


def project_from_dict(data: Mapping[str, Any], *, root: str | os.PathLike[str] | None = None,
                      plugins: Plugins | None = None, environ: Mapping[str, str] | None = None,
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
    project = _build(document, Path(root).resolve() if root else Path.cwd(), None,
                     _plugins_or_load(plugins), environ)
    if inline:
        object.__setattr__(project, "inline_data", MappingProxyType({**project.inline_data, **inline}))
    return project


def _build(document: Document, root: Path, path: Path | None, plugins: Plugins,
           environ: Mapping[str, str] | None) -> Project:
    data = document.data
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
        plugins=plugins,
    )


def _check_alerting(document: Document, root: Path, plugins: Plugins,
                    environ: Mapping[str, str] | None) -> list[Diagnostic]:
    """``alerting``/``sinks``/``routes``: every sink is built now, not after the queries."""
    data = document.data
    if not any(key in data for key in ("alerting", "sinks", "routes")):
        return []
    from .alerts._config import check_alerting

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


def _check(document: Document, root: Path, plugins: Plugins,
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
