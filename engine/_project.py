"""The project file, ``kpiforge.yaml``: definitions, currency, time zone, week start, sources.

Loading validates the file against ``schemas/project.schema.json`` composed with the settings
schema of every registered source and sink type (:mod:`kpiforge._settings`), and then checks
what a schema cannot: the time zone exists, each source type is registered by a plugin, an
input names a ``column`` or an ``expression`` (not both), no input is provided by two sources,
and every ``${VAR}`` in a source's settings names a set environment variable
(:mod:`._project_checks`). Every problem is reported at once, as positioned diagnostics in one
:class:`kpiforge.ProjectError`. The ``sources:`` become :class:`SourceConfig` objects
(:mod:`._project_sources`).

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
from datetime import date, datetime, timedelta
from functools import cached_property
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

from . import _env
from ._currency import check_project_currency, project_engine
from ._defpaths import with_required_packs
from ._engine import Engine
from ._measures import bind_sources
from ._periods import week_start_index
from ._plugins import Plugins, load_plugins
from ._project_checks import check_alerting_settings, check_values
from ._project_checks import definition_path as _definition_path  # plugins/_alerting_commands.py reads it here
from ._project_sources import EMPTY as _EMPTY
from ._project_sources import SourceConfig, factory_settings, source_configs
from ._project_sources import freeze as _freeze
from ._run import RunResult, run as run_kpis
from ._settings import project_schema_problems
from ._yamlio import Document, load_document
from .errors import AlertConfigError, DefinitionError, Diagnostic, ProjectError, SourceError

if TYPE_CHECKING:  # imported by the methods that use it
    from ._ab import AbResult
    from ._dispatch import DispatchSummary
    from ._annotations_store import Annotation
    from ._history import History

__all__ = ["DEFAULT_PROJECT_FILE", "Project", "SourceConfig", "expand_env", "load_project", "project_from_dict"]

DEFAULT_PROJECT_FILE = "kpiforge.yaml"
SCHEMA = "project.schema.json"


def expand_env(text: str, environ: Mapping[str, str] | None = None) -> str:
    """Replace each ``${NAME}`` with the environment variable NAME; unset is an error naming it."""
    try:
        return _env.expand(text, os.environ if environ is None else environ)
    except _env.UnsetVariable as exc:
        raise SourceError(str(exc)) from None


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
    # what binding the sources to the definitions noticed (former input names), set with engine
    binding_warnings: tuple[str, ...] = field(default=(), repr=False, compare=False)

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
        engine = project_engine(self, Engine.load(*self.definitions, plugins=self._plugins(),
                                                  currency=self.currency))
        # the sources as they will run: measures bound to the definitions, former names renamed
        sources, warnings = bind_sources(self, engine.definitions)
        object.__setattr__(self, "sources", sources)
        object.__setattr__(self, "binding_warnings", warnings)
        return engine

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
                 now: datetime | float | None = None, lang: str | None = None) -> DispatchSummary:
        """Alerting for a run's records, as ``kpiforge run`` does after computing them.

        Applies each KPI's alert rule, advances the alert state kept in ``state:`` (default
        ``.kpiforge/state.db`` next to the project file), queues notifications in its outbox
        and delivers them to the sinks ``routes:`` name. ``dry_run`` decides what would be sent
        and changes nothing. ``now`` replaces the clock (tests, replays). Delivery failures do
        not raise: they are counted in the summary and wait in the outbox. ``lang`` is the
        language of the messages; without it, ``alerting.lang``, else the project's ``lang``,
        else English. Raises
        :class:`kpiforge.ProjectError` for routes naming what no KPI has, and
        :class:`kpiforge.AlertConfigError` (positioned in the file) for unusable settings.
        """
        from ._dispatch import DispatchSummary
        from .alerts import dispatch
        from .alerts._lang import alert_language

        problems = self.check_routes(self.engine)
        if problems:
            raise ProjectError(problems)
        try:
            report = dispatch(self.engine, result.to_records(), project_dir=self.root,
                              alerting=self.alerting, sinks=self.sinks, routes=self.routes,
                              state_path=self.state, plugins=self._plugins(), now=now,
                              dry_run=dry_run,
                              lang=alert_language(lang, self.alerting, self.raw))
        except AlertConfigError as exc:
            raise self._positioned(exc) from None
        return DispatchSummary.from_report(report)

    def record_history(self, result: RunResult, *, now: float | None = None) -> int:
        """Store a run's values in the project's history (``history.db`` beside the alert
        state), as ``kpiforge run`` does unless ``--dry-run`` or ``--no-history``; a re-run of
        a period replaces its values. Returns the number of values stored."""
        from ._history import record_history

        return record_history(self.history_path, self.engine, result, now=now)

    def history(self, kpi: str, *, by: Sequence[str] | str = (), last: int | None = None,
                grain: str | None = None) -> "History":
        """The stored values of ``kpi`` (a :class:`kpiforge.History` of
        :class:`kpiforge.HistoryRecord`), split by exactly the dimensions ``by`` (none: the
        totals), of every grain or of ``grain``; ``last`` keeps the last N periods of each."""
        from ._annotations_store import attach_annotations
        from ._history import read_history

        history = read_history(self.history_path, kpi, by=by, last=last, grain=grain)
        return attach_annotations(history, kpi, self.week_start_index)

    def annotate(self, text: str, *, period: str, kpis: Sequence[str] | str | None = None,
                 grain: str | None = None, slice: Mapping[str, Any] | None = None,
                 author: str | None = None, now: float | None = None) -> tuple["Annotation", ...]:
        """Store a note about ``period`` (``"2026-10-14"`` ... ``"2026"``; with a coarser
        ``grain``, the period of that grain holding it) in the history database: one
        :class:`kpiforge.Annotation` per KPI of ``kpis`` (None or ``"*"``: every KPI), about
        one ``slice`` if given (``{"channel": "display"}``). ``author`` defaults to the current
        user. Raises :class:`kpiforge.AnnotationError` naming the argument, or
        :class:`kpiforge.UnknownKpiError`."""
        from ._annotations_store import annotate

        return annotate(self, text, period=period, kpis=kpis, grain=grain, slice=slice,
                        author=author, now=now)

    def annotations(self, kpi: str | None = None, *,
                    period: str | None = None) -> tuple["Annotation", ...]:
        """The stored annotations, by first day: of ``kpi`` (those about every KPI included),
        covering a day of ``period``."""
        from ._annotations_store import annotation_period, read_annotations

        first = last = None
        if period is not None:
            chosen = annotation_period(period, None, self.week_start_index)
            first, last = chosen.start, chosen.end - timedelta(days=1)
        return read_annotations(self.history_path, kpi, first=first, last=last)

    def delete_annotation(self, annotation_id: int) -> "Annotation":
        """Remove one annotation (``kpiforge annotate --delete ID``); returns what it was."""
        from ._annotations_store import delete_annotation

        return delete_annotation(self.history_path, annotation_id)

    def ab(self, kpi: str, *, variant: str, control: str, **options: Any) -> "AbResult":
        """An A/B comparison of ``kpi``: every value of dimension ``variant`` against
        ``control`` (options as for ``kpiforge ab``: ``period``, ``start``, ``end``,
        ``grain``, ``alpha``, ``split``, ``data``); see ``docs/ab.md``."""
        from ._ab import ab

        return ab(self, kpi, variant=variant, control=control, **options)

    @property
    def history_path(self) -> str:
        from ._history import history_path
        from ._state_path import resolve_state_path

        return history_path(resolve_state_path(self.root, self.state))

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
        return {inp: name for name, src in self.sources.items() for inp in src.provides}

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
        return factory_settings(self.sources[name], environ, expanded=expanded)

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
    diagnostics = project_schema_problems(document, plugins)
    if not isinstance(data, dict):
        raise ProjectError(diagnostics or [document.diagnostic((), "schema", "expected a mapping")])
    diagnostics.extend(check_values(document, root, plugins, environ))
    reported = {d.field for d in diagnostics}  # the schema's own finding on a field suffices
    diagnostics.extend(d for d in check_alerting_settings(document, root, plugins, environ)
                       if d.field not in reported)
    if any(d.is_error for d in diagnostics):
        raise ProjectError(diagnostics)

    raw_definitions = data.get("definitions")
    if isinstance(raw_definitions, str):
        raw_definitions = [raw_definitions]
    listed = with_required_packs(raw_definitions or (), plugins.definition_packs())
    definitions = tuple(_definition_path(root, str(p), plugins) for p in listed)
    sources, inline = source_configs(document, plugins, path)
    project = Project(
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
    check_project_currency(project)  # thresholds in another currency need a rate: say so now
    return project
