"""The first step of a run: the options checked, and which KPIs, inputs and sources it needs.

Everything here is decided before any source is read, so a misspelt dimension or comparison
fails at once, with a did-you-mean, instead of after a query.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Protocol, Sequence

from ._definitions import did_you_mean
from ._engine import Engine
from ._periods import GRAINS
from ._totals import input_of, is_total, total_key
from .errors import RunError

__all__ = ["COMPARE_MODES", "RunPlan", "RunProject", "SourcePlan", "check_period_options",
           "compare_modes", "evaluate_overrides", "plan_run", "split_dimensions"]

COMPARE_MODES = ("previous", "year")


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
    def source_settings(self, name: str, environ: Mapping[str, str] | None = None, *,
                        expanded: list[str] | None = None) -> dict[str, Any]: ...


@dataclass(frozen=True)
class SourcePlan:
    """One source a run reads: the inputs it is asked for, and the requested dimensions it
    cannot be split by (such a source is built, to tell where data ends, but never fetched)."""

    name: str
    inputs: tuple[str, ...]
    missing_dims: tuple[str, ...]


@dataclass(frozen=True)
class RunPlan:
    """The KPIs of a run, the inputs each requires, and the sources that provide them."""

    wanted: tuple[str, ...]
    # KPI -> every input it needs, provided or not, by the key the grid holds it under
    required: Mapping[str, frozenset[str]]
    provided: Mapping[str, str]  # input key -> the source that provides it
    sources: Mapping[str, SourcePlan]  # the needed sources, in the order they are first needed
    # KPI -> {input: key} where a source binds the input for that KPI only (``for:``)
    overrides: Mapping[str, Mapping[str, str]] = field(default_factory=dict)

    @property
    def splittable(self) -> list[str]:
        """The sources to fetch: those that can be split by every requested dimension."""
        return [s.name for s in self.sources.values() if not s.missing_dims]


def compare_modes(compare: Iterable[str] | str | None) -> tuple[str, ...]:
    """``compare`` (a name, a comma-separated list or a sequence) as known modes, in order."""
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


def split_dimensions(by: Sequence[str] | str | None) -> tuple[str, ...]:
    """``by`` (a name, a comma-separated list or a sequence) as distinct dimension names."""
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


def check_period_options(grain: str | None, period: str | None, start: Any, end: Any,
                         last: int | None) -> None:
    """Refuse an unknown grain, more than one way of choosing periods, or a bad ``last``."""
    if grain is not None and grain not in GRAINS:
        raise RunError(f"unknown grain '{grain}'{did_you_mean(grain, GRAINS)}; use one of {', '.join(GRAINS)}")
    chosen = [n for n, v in (("period", period), ("start/end", start if start is not None else end),
                             ("last", last)) if v is not None]
    if len(chosen) > 1:
        raise RunError(f"choose one of period, start/end and last (got {' and '.join(chosen)})")
    if last is not None and (not isinstance(last, int) or isinstance(last, bool) or last < 1):
        raise RunError(f"last must be a whole number of periods >= 1, got {last!r}")


def plan_run(engine: Engine, project: RunProject, kpis: Sequence[str] | None,
             dims: Sequence[str]) -> RunPlan:
    """Which KPIs (``kpis``, or every one the sources provide all inputs for), which inputs
    and which sources; an unknown KPI or dimension is refused here."""
    provided = project.input_sources()
    overrides: dict[str, dict[str, str]] = {}
    for key in provided:
        name, _, kpi = key.partition("@")
        if kpi:
            overrides.setdefault(kpi, {})[name] = key
    if kpis:
        wanted = list(dict.fromkeys(kpis))
        engine.plan(wanted)  # UnknownKpiError (with did-you-mean) for an unknown id
    else:
        general = {k for k in provided if "@" not in k}
        general |= {total_key(k) for k in general}  # a total is provided with its input
        wanted = [kpi for kpi in engine.computable(general | {k.partition("@")[0] for k in provided})
                  if all(i in general or i in overrides.get(kpi, {})
                         for i in engine.required_inputs(kpi))]
        if not wanted:
            raise RunError("no KPI can be computed from the inputs the sources provide "
                           f"({', '.join(sorted(provided)) or 'none'})")
    required = {kpi: frozenset(overrides.get(kpi, {}).get(i, i) for i in engine.required_inputs(kpi))
                for kpi in wanted}
    # total(x) is fetched from x's source (without the --by dimensions), not listed by it
    provided = {**provided, **{k: provided[input_of(k)] for ks in required.values() for k in ks
                               if is_total(k) and input_of(k) in provided}}
    needed_inputs = sorted(i for i in set().union(*required.values()) & set(provided)
                           if not is_total(i))
    needed_sources = list(dict.fromkeys(provided[i] for i in needed_inputs))

    known_dims = project.dimensions()
    for dim in dims:
        if dim not in known_dims:
            raise RunError(f"unknown dimension '{dim}'{did_you_mean(dim, known_dims)}; "
                           f"the sources can be split by: {', '.join(known_dims) or 'nothing'}")
    sources = {}
    for name in needed_sources:
        config = project.sources[name]
        sources[name] = SourcePlan(name, tuple(i for i in needed_inputs if provided[i] == name),
                                   tuple(d for d in dims if d not in config.dimensions))
    used = {kpi: keys for kpi, keys in overrides.items() if kpi in wanted}
    return RunPlan(tuple(wanted), required, provided, sources, used)


def evaluate_overrides(engine: Engine, plan: RunPlan, arrays: Mapping[str, Any],
                       results: Any) -> Any:
    """``results`` with each KPI that reads some input from a binding of its own (``for:``)
    evaluated again on those inputs; the KPIs it feeds keep its general value's inputs."""
    merged = dict(results)
    for kpi, keys in plan.overrides.items():
        own = engine.evaluate({**arrays, **{name: arrays[key] for name, key in keys.items()}},
                              kpis=[kpi])
        merged[kpi] = own[kpi]
    return type(results)(merged)
