"""``Project.run(...)``: KPI values per period and per slice, computed from a project's sources.

The steps, each done once per run and each a function of its own module:

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
   (``missing input: x``, ``division by zero``, ...);
6. for a KPI with an anomaly rule, its expected range from the same grid: the rule's earlier
   periods of the same season were added to the periods of step 1 (:mod:`._run_baselines`).

Ratios are therefore computed from aggregated inputs of the whole period (sum of clicks over
sum of impressions), ``count_distinct`` is recomputed by the database at each grain, and a
period without data is null, never 0.

This module knows the engine and the sources, never the project file: it takes any object
shaped like :class:`RunProject`, so the dependency arrow is ``_project -> _run -> _engine``.
It only orders the steps: :mod:`._run_plan` (options, KPIs, inputs, sources),
:mod:`._run_sources` (building and fetching), :mod:`._run_periods`, :mod:`._run_grid`,
:mod:`._run_reasons` and :mod:`._run_records` (records with their comparisons).
"""

from __future__ import annotations

from datetime import date
from typing import Any, Callable, Iterable, Mapping, Sequence

from ._additivity import not_additive_reasons
from ._engine import Engine
from ._lifecycle_check import deprecated_uses
from ._records import Record, RunResult
from ._run_grid import lay_out_grid
from ._run_periods import day_ranges, select_periods, shift_periods
from ._run_baselines import all_baseline_periods, expected_values, plan_baselines
from ._run_plan import (
    COMPARE_MODES,
    evaluate_overrides,
    RunProject,
    check_period_options,
    compare_modes,
    plan_run,
    split_dimensions,
)
from ._run_reasons import attach_reasons
from ._run_records import build_records
from ._run_sources import build_sources, data_by_source, fetch_frames
from ._run_totals import fill_totals
from .errors import RunError

__all__ = ["COMPARE_MODES", "Record", "RunError", "RunProject", "RunResult", "run"]


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
    modes = compare_modes(compare)
    dims = split_dimensions(by)
    check_period_options(grain, period, start, end, last)
    if not project.sources:
        raise RunError("the project has no sources")
    plan = plan_run(engine, project, kpis, dims)
    # every needed source, even one that cannot be split: it still tells where data ends
    sources = build_sources(project, plan.sources, engine.plugins,
                            data_by_source(project, data, engine.plugins))

    grain, current = select_periods(project, sources, grain, period, start, end, last,
                                    project.week_start_index)
    if not current:
        return RunResult((), grain, (), dims, plan.wanted, modes)
    shifted = shift_periods(current, modes)
    # an anomaly rule's earlier periods are fetched with the others: the same single query
    baselines = plan_baselines(engine.definitions, plan.wanted, grain, current)
    all_periods = sorted(set(current).union(*(m.values() for m in shifted.values()),
                                            all_baseline_periods(baselines)))

    frames, warnings = fetch_frames(project, sources, plan, grain, day_ranges(all_periods), dims,
                                    progress)
    grid = lay_out_grid(plan, frames, dims, current, all_periods)
    grid, unanswered, more = fill_totals(project, sources, plan, grid, grain,
                                         day_ranges(all_periods), dims, engine.definitions)
    warnings.extend(w for w in more if w not in warnings)
    if progress is not None:
        fetched = len(plan.splittable)
        progress("evaluating KPIs", fetched, fetched + 1)
    results = engine.evaluate(grid.arrays, kpis=list(plan.wanted))
    if plan.overrides:
        results = evaluate_overrides(engine, plan, grid.arrays, results)
    blocked = {**not_additive_reasons(engine.definitions, project.sources, plan, grain, dims),
               **unanswered}
    values, statuses, reasons = attach_reasons(plan, results, grid, blocked)
    expected = expected_values(baselines, values, current, grid.period_index, len(grid.slices))
    records = build_records(engine, plan.wanted, results, current, grid.slices, dims, values,
                            statuses, reasons, shifted, modes, grid.period_index, len(grid.slices),
                            expected)
    labels = tuple(p.label for p in current)
    warnings = [*getattr(project, "binding_warnings", ()), *warnings,  # former input names
                *deprecated_uses(engine.definitions, plan.wanted)]
    return RunResult(tuple(records), grain, labels, dims, plan.wanted, modes, tuple(warnings),
                     _progress(engine, records, labels[-1], current[-1].end, dims),
                     tuple(k for k in plan.wanted if k in baselines))


def _progress(engine: Engine, records: list[Record], period: str, period_end: date,
              dims: tuple[str, ...]) -> tuple[Any, ...]:
    """``run_progress``; its module is imported only when there are objectives to report on."""
    if dims or not engine.objectives:
        return ()
    from ._objectives_progress import run_progress

    return run_progress(engine, records, period, period_end, dims)
