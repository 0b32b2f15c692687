"""``Project.run(...)``: KPI values per period and per slice, computed from a project's sources.

The steps, each done once per run:

1. pick the periods (``period``, ``start``/``end``, ``last`` or the latest period with data)
   and, for comparisons, the previous / year-earlier periods; merge them into time ranges;
2. fetch every needed source ONCE: one aggregate query grouped by period and the requested
   dimensions (a source that cannot be split by one of them is not queried at all);
3. lay the aggregated rows out on one grid, period x slice, with NaN where a source has no
   row (numpy, keyed by period label and slice);
4. call ``Engine.evaluate`` ONCE on the whole grid (vectorised over every row);
5. post-process the reasons row by row: ``source 'shop' cannot be split by campaign`` when an
   input comes from such a source, ``no source provides input 'x'`` when nobody provides it,
   ``no data`` when none of the KPI's inputs has a row there, else the engine's own reason
   (``missing input: x``, ``division by zero``, ...).

Ratios are therefore computed from aggregated inputs of the whole period (sum of clicks over
sum of impressions), ``count_distinct`` is recomputed by the database at each grain, and a
period without data is null, never 0.

This module knows the engine and the sources, never the project file: it takes any object
shaped like :class:`RunProject`, so the dependency arrow is ``_project -> _run -> _engine``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Protocol, Sequence

import numpy as np

from ._definitions import did_you_mean
from ._engine import Engine
from ._model import Status
from ._periods import GRAINS, Period, finer, parse_date, parse_period, period_of, periods_between
from ._records import Record, RunResult, frozen_slice
from ._redact import RedactingSource, redact_source_error, redact_text, secret_values
from .sources import SourceFrame, SourceRequest
from .errors import KpiforgeError, PeriodError, RunError, SourceError
from .hookspecs import SourceContext

__all__ = ["COMPARE_MODES", "Record", "RunError", "RunProject", "RunResult", "run"]

COMPARE_MODES = ("previous", "year")
NO_DATA = "no data"


class RunProject(Protocol):
    """What a run reads of a project (``kpiforge.Project`` is one)."""

    @property
    def root(self) -> Path: ...
    @property
    def sources(self) -> Mapping[str, Any]: ...  # name -> SourceConfig
    @property
    def timezone(self) -> str: ...
    @property
    def week_start_index(self) -> int: ...
    @property
    def inline_data(self) -> Mapping[str, Any]: ...
    def input_sources(self) -> dict[str, str]: ...
    def dimensions(self) -> list[str]: ...
    def source_settings(self, name: str) -> dict[str, Any]: ...


# --------------------------------------------------------------------------- inputs to a run

def _compare_modes(compare: Iterable[str] | str | None) -> tuple[str, ...]:
    if not compare:
        return ()
    items = [compare] if isinstance(compare, str) else list(compare)
    modes: list[str] = []
    for item in items:
        for part in str(item).split(","):
            part = part.strip()
            if not part:
                continue
            if part not in COMPARE_MODES:
                raise RunError(f"unknown comparison '{part}'{did_you_mean(part, COMPARE_MODES)}; "
                               f"use {' or '.join(COMPARE_MODES)}")
            if part not in modes:
                modes.append(part)
    return tuple(sorted(modes, key=COMPARE_MODES.index))


def _as_date(value: Any, what: str) -> date:
    if isinstance(value, date):
        return value if type(value) is date else value.date()  # type: ignore[union-attr]
    try:
        return parse_date(str(value))
    except PeriodError:
        raise RunError(f"{what}: {value} is not a date (YYYY-MM-DD)") from None


# --------------------------------------------------------------------------- sources

@dataclass
class _Fetched:
    name: str
    inputs: tuple[str, ...]
    missing_dims: tuple[str, ...]  # requested dimensions this source cannot be split by
    frame: SourceFrame | None = None
    present: np.ndarray | None = None  # per grid row: the source has a row there


def _build_sources(project: RunProject, names: Iterable[str], plugins: Any,
                   data: Mapping[str, Any]) -> dict[str, Any]:
    built = {}
    for name in names:
        config = project.sources[name]
        registration = plugins.source_types.get(config.type)
        if registration is None:
            raise SourceError(f"source '{name}': unknown source type '{config.type}'"
                              f"{did_you_mean(config.type, plugins.source_types)}")
        expanded: list[str] = []
        settings = project.source_settings(name, expanded=expanded)
        if name in data:
            settings["data"] = data[name]
        secrets = secret_values(registration.secrets, settings, expanded)
        try:
            source = registration.obj(name, settings, SourceContext(project_dir=project.root))
        except SourceError as exc:
            exc = redact_source_error(exc, secrets)
            located = _located(project, name, exc) if exc.field else None
            if located is None:
                raise exc from None
            raise located from None
        except KpiforgeError:
            raise
        except Exception as exc:  # a plugin's factory: translate, naming source and plugin
            raise SourceError(redact_text(f"source '{name}' ({config.type}, plugin "
                                          f"{registration.plugin}): {type(exc).__name__}: {exc}",
                                          secrets)) from None
        built[name] = RedactingSource(name, source, secrets) if secrets else source
    return built


def _call(project: RunProject, name: str, what: str, func: Any, *args: Any) -> Any:
    try:
        return func(*args)
    except SourceError as exc:
        located = _located(project, name, exc)
        if located is None:
            raise
        raise located from exc
    except KpiforgeError:
        raise
    except Exception as exc:
        raise SourceError(f"source '{name}': {what} failed: {type(exc).__name__}: {exc}") from exc


def _located(project: RunProject, name: str, exc: SourceError) -> SourceError | None:
    """``exc`` with each problem prefixed by the kpiforge.yaml line that declared the setting
    it is about; None when there is nothing to add (no file, or already located)."""
    config = project.sources.get(name)
    if config is None or not config.file or getattr(exc, "located", False):
        return None
    problems = getattr(exc, "problems", None) or ((getattr(exc, "field", ()), str(exc)),)
    lines = [f"{config.file}:{config.line_of(field)}: {text}" for field, text in problems]
    located = SourceError("\n".join(lines), field=getattr(exc, "field", ()),
                          debug=getattr(exc, "debug", None))
    located.located = True  # type: ignore[attr-defined]
    return located


def _latest(project: RunProject, sources: Mapping[str, Any]) -> date | None:
    """The newest local day with data over ``sources``."""
    best: date | None = None
    request = SourceRequest("day", project.timezone, project.week_start_index)
    for name, source in sources.items():
        if hasattr(source, "latest"):
            moment = _call(project, name, "finding the latest data", source.latest, request)
            day = moment.date() if hasattr(moment, "date") and moment is not None else moment
        else:  # a plugin source without latest(): ask for every day, keep the last label
            frame = _call(project, name, "fetch", source.fetch, request)
            day = max((date.fromisoformat(p) for p in frame.periods), default=None)
        if day is not None and (best is None or day > best):
            best = day
    return best


def _ranges(periods: Iterable[Period]) -> tuple[tuple[date, date], ...]:
    """Contiguous periods merged into [start, end) day ranges."""
    ranges: list[list[date]] = []
    for period in sorted(set(periods)):
        if ranges and ranges[-1][1] >= period.start:
            ranges[-1][1] = max(ranges[-1][1], period.end)
        else:
            ranges.append([period.start, period.end])
    return tuple((a, b) for a, b in ranges)


# --------------------------------------------------------------------------- the run

def run(engine: Engine, project: RunProject, *, grain: str | None = None,
        period: str | None = None, by: Sequence[str] | str | None = (),
        kpis: Sequence[str] | None = None, compare: Iterable[str] | str | None = (),
        start: Any = None, end: Any = None, last: int | None = None,
        data: Mapping[str, Any] | Any = None,
        progress: Callable[[str, int, int], None] | None = None) -> RunResult:
    """Compute KPIs per period and slice from a project's sources (see the module docstring).

    Periods: ``period`` (``"2026-10"``, ``"2026-W43"``, ...), or ``start``/``end`` (dates,
    both included; each period overlapping them is computed whole; ``end`` defaults to the
    latest data), or ``last=N`` (the N periods ending with the latest period that has data,
    which may still be in progress), or by default the latest period with data. ``grain``
    defaults to the period's own grain with ``period``, else ``month``. ``by`` lists
    dimensions; ``compare`` holds ``"previous"`` and/or ``"year"``. ``data`` maps a
    dataframe/records source name to its table (a single table is accepted when the project
    has exactly one such source). ``progress(step, done, total)``, if given, is called before
    each source is read and before the evaluation (the command line's progress bar).
    """
    modes = _compare_modes(compare)
    dims = _dims(by)
    ws = project.week_start_index
    if grain is not None and grain not in GRAINS:
        raise RunError(f"unknown grain '{grain}'{did_you_mean(grain, GRAINS)}; use one of {', '.join(GRAINS)}")
    chosen = [n for n, v in (("period", period), ("start/end", start if start is not None else end),
                             ("last", last)) if v is not None]
    if len(chosen) > 1:
        raise RunError(f"choose one of period, start/end and last (got {' and '.join(chosen)})")
    if last is not None and (not isinstance(last, int) or isinstance(last, bool) or last < 1):
        raise RunError(f"last must be a whole number of periods >= 1, got {last!r}")
    if not project.sources:
        raise RunError("the project has no sources")

    # which KPIs, which inputs, which sources
    provided = project.input_sources()
    if kpis:
        wanted = list(dict.fromkeys(kpis))
        engine.plan(wanted)  # UnknownKpiError (with did-you-mean) for an unknown id
    else:
        wanted = engine.computable(provided)
        if not wanted:
            raise RunError("no KPI can be computed from the inputs the sources provide "
                           f"({', '.join(sorted(provided)) or 'none'})")
    required = {kpi: engine.required_inputs(kpi) for kpi in wanted}
    needed_inputs = sorted(set().union(*required.values()) & set(provided))
    needed_sources = list(dict.fromkeys(provided[i] for i in needed_inputs))

    known_dims = project.dimensions()
    for dim in dims:
        if dim not in known_dims:
            raise RunError(f"unknown dimension '{dim}'{did_you_mean(dim, known_dims)}; "
                           f"the sources can be split by: {', '.join(known_dims) or 'nothing'}")
    fetched: dict[str, _Fetched] = {}
    for name in needed_sources:
        config = project.sources[name]
        fetched[name] = _Fetched(name, tuple(i for i in needed_inputs if provided[i] == name),
                                 tuple(d for d in dims if d not in config.dimensions))
    splittable = [f.name for f in fetched.values() if not f.missing_dims]
    # every needed source, even one that cannot be split: it still tells where data ends
    sources = _build_sources(project, needed_sources, engine.plugins, _data_by_source(project, data, engine.plugins))

    # which periods
    grain, current = _select_periods(project, sources, grain, period, start, end, last, ws)
    if not current:
        return RunResult((), grain, (), dims, tuple(wanted), modes)
    shifted = {mode: {p: (p.previous() if mode == "previous" else p.year_before()) for p in current}
               for mode in modes}
    all_periods = sorted(set(current).union(*(m.values() for m in shifted.values())))
    ranges = _ranges(all_periods)

    # fetch: one aggregate query per source
    warnings: list[str] = []
    for done, name in enumerate(splittable):
        if progress is not None:
            progress(f"source '{name}'", done, len(splittable) + 1)
        f = fetched[name]
        config = project.sources[name]
        request = SourceRequest(grain, project.timezone, ws, ranges, dims,
                                {i: config.inputs[i] for i in f.inputs})
        frame = _call(project, name, "fetch", sources[name].fetch, request)
        if not isinstance(frame, SourceFrame):
            raise SourceError(f"source '{name}': fetch returned {type(frame).__name__}, not a SourceFrame")
        for what, keys in (("dimension", dims), ("input", f.inputs)):
            table = frame.dims if what == "dimension" else frame.inputs
            absent = [k for k in keys if k not in table]
            if absent:
                raise SourceError(f"source '{name}': fetch returned no {what} {', '.join(absent)}")
        f.frame = frame
        warnings.extend(w for w in getattr(frame, "warnings", ()) if w not in warnings)

    # the grid: every period x every slice seen in the current periods
    current_labels = {p.label for p in current}
    slices: list[tuple[Any, ...]] = []
    seen: set[tuple[Any, ...]] = set()
    for f in fetched.values():
        if f.frame is None:
            continue
        columns = [f.frame.dims[d] for d in dims]
        for i, label in enumerate(f.frame.periods.tolist()):
            if label in current_labels:
                key = tuple(c[i] for c in columns)
                if key not in seen:
                    seen.add(key)
                    slices.append(key)
    if not dims:
        slices = [()]
    elif not slices:
        # no slice has data (or nothing can be split): one row per period to carry the reason
        slices = [tuple(None for _ in dims)]
    slices.sort(key=lambda s: tuple((v is None, "" if v is None else v) for v in s))
    slice_index = {s: i for i, s in enumerate(slices)}
    period_index = {p.label: i for i, p in enumerate(all_periods)}
    n_rows = len(all_periods) * len(slices)

    arrays: dict[str, np.ndarray] = {}
    for f in fetched.values():
        present = np.zeros(n_rows, dtype=bool)
        for name in f.inputs:
            arrays[name] = np.full(n_rows, np.nan)
        if f.frame is not None and len(f.frame):
            rows, where = _locate(f.frame, dims, period_index, slice_index, len(slices))
            present[rows] = True
            for name in f.inputs:
                arrays[name][rows] = np.asarray(f.frame.inputs[name], dtype=np.float64)[where]
        f.present = present

    # one vectorised evaluation for every row of every period
    if progress is not None:
        progress("evaluating KPIs", len(splittable), len(splittable) + 1)
    results = engine.evaluate(arrays, kpis=wanted)

    # reasons, row by row
    values: dict[str, np.ndarray] = {}
    statuses: dict[str, np.ndarray] = {}
    reasons: dict[str, np.ndarray] = {}
    for kpi in wanted:
        result = results[kpi]
        value = np.array(result.value, dtype=np.float64, copy=True)
        status = np.array(result.status, dtype=object, copy=True)
        reason = np.array(result.reason, dtype=object, copy=True)
        inputs = required[kpi]
        blocked = [fetched[provided[i]] for i in sorted(inputs) if i in provided
                   and fetched[provided[i]].missing_dims]
        unprovided = sorted(i for i in inputs if i not in provided)
        forced = np.zeros(n_rows, dtype=bool)
        if blocked:
            first = blocked[0]
            reason[:] = f"source '{first.name}' cannot be split by {', '.join(first.missing_dims)}"
            forced[:] = True
        elif unprovided:
            nulls = np.isnan(value)
            reason[nulls] = (f"no source provides input '{unprovided[0]}'" if len(unprovided) == 1
                             else f"no source provides inputs {', '.join(unprovided)}")
        elif inputs:
            absent = np.ones(n_rows, dtype=bool)
            for i in inputs:
                absent &= ~fetched[provided[i]].present
            reason[absent] = NO_DATA
            forced |= absent
        value[forced] = np.nan
        status[forced | np.isnan(value)] = Status.UNKNOWN
        values[kpi], statuses[kpi], reasons[kpi] = value, status, reason

    records = _records(engine, wanted, results, current, slices, dims, values, statuses, reasons,
                       shifted, modes, period_index, len(slices))
    return RunResult(tuple(records), grain, tuple(p.label for p in current), dims, tuple(wanted), modes,
                     tuple(warnings))


def _dims(by: Sequence[str] | str | None) -> tuple[str, ...]:
    if not by:
        return ()
    items = [by] if isinstance(by, str) else list(by)
    out: list[str] = []
    for item in items:
        for part in str(item).split(","):
            part = part.strip()
            if part and part not in out:
                out.append(part)
    return tuple(out)


def _data_by_source(project: RunProject, data: Any, plugins: Any) -> dict[str, Any]:
    tables = dict(project.inline_data)
    types = plugins.source_types
    in_memory = [n for n, s in project.sources.items()
                 if s.type in types and "data" in types[s.type].capabilities]
    if data is None:
        return tables
    if isinstance(data, Mapping):
        # a table type is never a Mapping (DataFrame, pyarrow Table, list): this is {name: table}
        unknown = [k for k in data if k not in project.sources]
        if unknown:
            key = unknown[0]
            expected = ", ".join(f"'{n}'" for n in in_memory) or "none"
            raise RunError(f"data: no source is named {key!r}{did_you_mean(key, project.sources)}; "
                           f"the project's sources that take in-memory data: {expected}")
        tables.update(data)
        return tables
    if len(in_memory) == 1:
        tables[in_memory[0]] = data
        return tables
    names = ", ".join(in_memory) or "none"
    raise RunError(f"data: pass a mapping of source name to table (sources that take in-memory data: {names})")


def _select_periods(project: RunProject, sources: Mapping[str, Any], grain: str | None,
                    period: str | None, start: Any, end: Any, last: int | None,
                    ws: int) -> tuple[str, list[Period]]:
    if period is not None:
        try:
            chosen = parse_period(str(period), ws)
        except PeriodError as exc:
            raise RunError(str(exc)) from None
        grain = grain or chosen.grain
        if finer(chosen.grain, grain):
            raise RunError(f"period {chosen.label} is a {chosen.grain}, shorter than the grain "
                           f"'{grain}'; use a longer period or a finer grain")
        return grain, periods_between(chosen.start, chosen.end - timedelta(days=1), grain, ws)
    grain = grain or "month"
    if start is not None or end is not None:
        if start is None:
            raise RunError("an end date needs a start date")
        first = _as_date(start, "--from")
        if end is not None:
            final = _as_date(end, "--to")
        else:
            latest = _latest(project, sources)
            if latest is None:
                return grain, []
            final = latest
        if final < first:
            raise RunError(f"the end date {final} is before the start date {first}")
        return grain, periods_between(first, final, grain, ws)
    latest = _latest(project, sources)
    if latest is None:
        return grain, []
    newest = period_of(latest, grain, ws)
    count = last or 1
    return grain, [newest.shift(i - count + 1) for i in range(count)]


def _locate(frame: SourceFrame, dims: Sequence[str], period_index: Mapping[str, int],
            slice_index: Mapping[tuple[Any, ...], int], n_slices: int) -> tuple[np.ndarray, np.ndarray]:
    """Grid row of each frame row that falls on the grid: ``(grid rows, frame rows)``."""
    columns = [frame.dims[d].tolist() for d in dims]
    labels = frame.periods.tolist()
    rows: list[int] = []
    where: list[int] = []
    seen: set[int] = set()
    for i, label in enumerate(labels):
        p = period_index.get(label)
        if p is None:
            continue
        s = slice_index.get(tuple(c[i] for c in columns))
        if s is None:
            continue
        row = p * n_slices + s
        if row in seen:  # a plugin returned the same period/slice twice
            raise SourceError(f"period {label} appears twice for the same slice")
        seen.add(row)
        rows.append(row)
        where.append(i)
    return np.asarray(rows, dtype=np.intp), np.asarray(where, dtype=np.intp)


def _plain(value: float) -> float | None:
    return None if math.isnan(value) else float(value)


def _change(value: float | None, previous: float | None) -> float | None:
    if value is None or previous is None or previous == 0:
        return None
    return (value - previous) / abs(previous) * 100.0


def _records(engine: Engine, kpis: Sequence[str], results: Any, current: Sequence[Period], slices: Sequence[tuple],
             dims: Sequence[str], values: Mapping[str, np.ndarray], statuses: Mapping[str, np.ndarray],
             reasons: Mapping[str, np.ndarray], shifted: Mapping[str, Mapping[Period, Period]],
             modes: Sequence[str], period_index: Mapping[str, int], n_slices: int) -> list[Record]:
    records: list[Record] = []
    both = len(modes) == 2
    # a label is computed, not stored: once per period here, not once per KPI x slice
    labels = [period.label for period in current]
    bases = [period_index[label] * n_slices for label in labels]
    compare_bases = [{m: period_index[shifted[m][period].label] * n_slices for m in modes}
                     for period in current]
    frozen = [frozen_slice(zip(dims, key)) for key in slices]
    for kpi in kpis:
        unit = results[kpi].unit
        currency = engine.definitions[kpi].currency if unit == "currency" else None
        value_list = values[kpi].tolist()
        status_list = statuses[kpi].tolist()
        reason_list = reasons[kpi].tolist()
        for label, base, compared in zip(labels, bases, compare_bases):
            for s in range(len(slices)):
                row = base + s
                value = _plain(value_list[row])
                compared_values: dict[str, Any] = {}
                for mode in modes:
                    previous = _plain(value_list[compared[mode] + s])
                    suffix = "_year" if both and mode == "year" else ""
                    compared_values["previous" + suffix] = previous
                    compared_values["change_pct" + suffix] = _change(value, previous)
                records.append(Record(kpi, label, frozen[s], value, unit, currency,
                                      Status(status_list[row]),
                                      reason_list[row] if value is None else None,
                                      **compared_values))
    return records
