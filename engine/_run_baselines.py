"""The seasonal baselines of a run: which earlier periods each anomaly rule needs (added to the
run's periods, so the sources answer them in the same query), and the expected range of each
current value, read off the evaluated grid (see :mod:`._baselines`)."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from ._baselines import (MAD_SCALE, SPREAD_FLOOR, Anomaly, Expected, anomaly_of,
                         baseline_periods, needed, too_few)
from ._periods import Period

__all__ = ["BaselinePlan", "all_baseline_periods", "expected_values", "plan_baselines"]


@dataclass(frozen=True)
class BaselinePlan:
    """One KPI's anomaly rule at the run's grain: ``season`` None when it does not apply."""

    rule: Anomaly
    season: str | None
    earlier: Mapping[Period, tuple[Period, ...]]
    reason: str | None = None
    periods: frozenset[Period] = frozenset()  # every period of ``earlier``


def all_baseline_periods(plans: Mapping[str, BaselinePlan]) -> set[Period]:
    """The earlier periods the run must fetch for every plan (each shared set counted once)."""
    distinct = {id(plan.periods): plan.periods for plan in plans.values()}
    return set().union(*distinct.values())


def plan_baselines(definitions: Mapping[str, Any], kpis: Iterable[str], grain: str,
                   current: Sequence[Period]) -> dict[str, BaselinePlan]:
    """The baseline of every KPI of ``kpis`` that has an anomaly rule."""
    plans: dict[str, BaselinePlan] = {}
    # KPIs sharing a season and a window share their periods (a catalog of such KPIs costs
    # one set of periods per distinct rule, not one per KPI)
    shared: dict[tuple[str, int], tuple[dict[Period, tuple[Period, ...]], frozenset[Period]]] = {}
    for kpi in kpis:
        rule = anomaly_of(definitions[kpi])
        if rule is None:
            continue
        season = rule.season_at(grain)
        if season is None:
            plans[kpi] = BaselinePlan(rule, None, {}, f"the anomaly rule applies at "
                                                      f"{rule.describe_grains()} grain, not {grain}")
        else:
            key = (season, rule.window)
            if key not in shared:
                earlier = baseline_periods(current, season, rule.window)
                shared[key] = (earlier, frozenset(p for ps in earlier.values() for p in ps))
            earlier, periods = shared[key]
            plans[kpi] = BaselinePlan(rule, season, earlier, None, periods)
    return plans


def expected_values(plans: Mapping[str, BaselinePlan], values: Mapping[str, np.ndarray],
                    current: Sequence[Period], period_index: Mapping[str, int],
                    n_slices: int) -> dict[str, list[Expected]]:
    """Per KPI, the expected range of each current row (``i * n_slices + slice`` for the i-th
    current period): from that slice's values in the earlier periods of the same season.
    Vectorised over periods, window and slices; :func:`._baselines.expected_range` is the same rule for
    one list of values (the tests hold the two to agree)."""
    out: dict[str, list[Expected]] = {}
    index_of: dict[int, np.ndarray] = {}
    for kpi, plan in plans.items():
        if plan.season is None:
            out[kpi] = [Expected(reason=plan.reason)] * (len(current) * n_slices)
            continue
        if id(plan.earlier) not in index_of:  # once per distinct season and window
            row_of = {p: period_index[p.label] * n_slices for p in plan.periods}  # a label each
            rows = np.array([[row_of[p] for p in plan.earlier[period]] for period in current],
                            dtype=np.intp)
            index_of[id(plan.earlier)] = rows[:, :, None] + np.arange(n_slices, dtype=np.intp)
        # earlier[i, k, s]: slice s of the k-th earlier period of current period i
        earlier = values[kpi][index_of[id(plan.earlier)]]
        count = np.count_nonzero(~np.isnan(earlier), axis=1)
        with warnings.catch_warnings():  # a slice without any earlier value: NaN, said below
            warnings.simplefilter("ignore", RuntimeWarning)
            median = np.nanmedian(earlier, axis=1)
            mad = np.nanmedian(np.abs(earlier - median[:, None, :]), axis=1)
        spread = np.maximum(MAD_SCALE * mad, SPREAD_FLOOR * np.abs(median))
        k, window = plan.rule.sensitivity, plan.rule.window
        low, high = (median - k * spread).tolist(), (median + k * spread).tolist()
        centre, counts = median.tolist(), count.tolist()
        enough = needed(window)
        ranges: list[Expected] = []
        for i in range(len(current)):
            for s in range(n_slices):
                n = counts[i][s]
                ranges.append(Expected(centre[i][s], low[i][s], high[i][s], n) if n >= enough
                              else Expected(count=n, reason=too_few(n, window)))
        out[kpi] = ranges
    return out
