"""``project.ab(...)``: an A/B comparison of one KPI across the values of a variant dimension.

The source computes sufficient statistics in its own engine (sums, sums of squares and of cross
products of the per-row values, row counts), split by the variant dimension, through the public
:class:`~kpiforge.sources.InputSpec` / ``Source.fetch`` contract: rows never come into Python.
Each row of the source is taken as one unit (visitor, recipient): the test follows from the
formula's shape and the inputs' aggregations (see docs/ab.md).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, replace
from typing import Any, Mapping

import numpy as np

from ._ab_stats import Estimate, chi2_sf, delta_ratio, holm, two_proportion, welch
from ._run_periods import day_ranges, select_periods
from ._run_sources import build_sources, call_source, data_by_source
from .errors import KpiforgeError, SourceError
from .sources import InputSpec, SourceRequest, quote_identifier

__all__ = ["AbComparison", "AbResult", "ab"]

SRM_ALPHA = 0.001  # the usual threshold of a sample-ratio-mismatch alarm


@dataclass(frozen=True)
class AbComparison:
    """One variant against the control. ``diff`` and its interval are in the KPI's unit."""

    kpi: str
    variant: str
    control: str
    value: float
    control_value: float
    diff: float
    ci_low: float
    ci_high: float
    lift: float | None
    p_value: float
    test: str
    significant: bool

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@dataclass(frozen=True)
class AbResult:
    """What ``kpiforge ab`` / :meth:`kpiforge.Project.ab` give: one comparison per variant
    against the control, and warnings (a sample-ratio mismatch)."""

    results: tuple[AbComparison, ...]
    warnings: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"results": [r.to_dict() for r in self.results], "warnings": list(self.warnings)}


def _shape(formula: str, kpi: str) -> tuple[str, str, float]:
    """``numerator / denominator [* scale]``: the two input names and the scale, or an error."""
    try:
        node: ast.expr = ast.parse(formula, mode="eval").body
    except SyntaxError:
        node = ast.Constant(0)
    scale = 1.0
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult):
        for inner, factor in ((node.left, node.right), (node.right, node.left)):
            if isinstance(factor, ast.Constant) and isinstance(factor.value, (int, float)):
                node, scale = inner, float(factor.value)
                break
    if (isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div)
            and isinstance(node.left, ast.Name) and isinstance(node.right, ast.Name)):
        return node.left.id, node.right.id, scale
    raise KpiforgeError(f"kpiforge ab: KPI '{kpi}' has formula '{formula}'; an A/B test needs "
                        "'a / b' (optionally times a constant) over two inputs")


def _value_sql(spec: InputSpec, kpi: str) -> str:
    """The per-row value of an input as SQL (a count of rows counts 1 per row)."""
    if spec.agg == "count" and spec.column == "*":
        return "1"
    if spec.agg == "sum" and spec.expression is not None:
        return f"({spec.expression})"
    if spec.agg == "sum" and spec.column is not None:
        return quote_identifier(spec.column)
    raise KpiforgeError(f"kpiforge ab: input '{spec.name}' of KPI '{kpi}' is a '{spec.agg}'; "
                        "an A/B test needs sums or row counts (agg: sum, or agg: count of '*')")


def _test_for(num: InputSpec, den: InputSpec) -> str:
    if den.agg == "count" and den.column == "*":
        return "mean"  # a proportion when every per-row numerator is 0 or 1 (checked on the sums)
    return "ratio"


def ab(project: Any, kpi: str, *, variant: str, control: str, period: str | None = None,
       start: Any = None, end: Any = None, grain: str | None = None, alpha: float = 0.05,
       data: Any = None, split: Mapping[str, float] | None = None) -> AbResult:
    """Compare every value of dimension ``variant`` with ``control`` for KPI ``kpi``.

    ``split`` gives the planned share of units per variant (relative weights) for the
    sample-ratio-mismatch check; by default an equal split."""
    engine = project.engine
    definition = engine.definitions.get(kpi)
    if definition is None:
        raise KpiforgeError(f"kpiforge ab: no KPI '{kpi}'")
    if variant not in project.dimensions():
        raise KpiforgeError(f"kpiforge ab: the project has no dimension '{variant}' "
                            f"(dimensions: {', '.join(project.dimensions()) or 'none'})")
    num_name, den_name, scale = _shape(definition.formula, kpi)
    where = project.input_sources()
    names = {where.get(num_name), where.get(den_name)}
    if None in names or len(names) != 1:
        raise KpiforgeError(f"kpiforge ab: inputs '{num_name}' and '{den_name}' of KPI '{kpi}' "
                            "must come from one source (the units are its rows)")
    source_name = names.pop()
    assert source_name is not None
    config = project.sources[source_name]
    num, den = config.inputs[num_name], config.inputs[den_name]
    test = _test_for(num, den)
    y, x = _value_sql(num, kpi), _value_sql(den, kpi)
    if test == "ratio" and (dict(num.filter), num.where) != (dict(den.filter), den.where):
        raise KpiforgeError(f"kpiforge ab: inputs '{num_name}' and '{den_name}' filter different "
                            "rows; the delta method needs both over the same units")
    # each extra statistic keeps the filter of the input whose rows it is about
    specs = {"y": replace(num, name="y"), "x": replace(den, name="x"),
             "yy": replace(num, name="yy", column=None, expression=f"{y} * {y}", agg="sum"),
             "units": InputSpec("units", "count", column="*")}
    if test == "ratio":
        specs["xx"] = replace(den, name="xx", column=None, expression=f"{x} * {x}", agg="sum")
        specs["xy"] = replace(den, name="xy", column=None, expression=f"{x} * {y}", agg="sum")
        specs["units"] = replace(den, name="units", column="*", expression=None, agg="count")
    sources = build_sources(project, [source_name], engine.plugins,
                            data_by_source(project, data, engine.plugins))
    grain, periods = select_periods(project, sources, grain, period, start, end, None,
                                    project.week_start_index)
    request = SourceRequest(grain, project.timezone, project.week_start_index,
                            day_ranges(periods), (variant,), specs)
    frame = call_source(project, source_name, "fetch", sources[source_name].fetch, request)
    totals = _by_variant(frame, variant, specs)
    return _compare(kpi, totals, control, test, scale, alpha, tuple(frame.warnings), split)


def _by_variant(frame: Any, variant: str, specs: Mapping[str, InputSpec]) -> dict[str, dict[str, float]]:
    labels = frame.dims[variant]
    totals: dict[str, dict[str, float]] = {}
    for value in sorted({v for v in labels if v is not None}):
        mask = labels == value
        totals[value] = {k: float(np.nansum(frame.inputs[k][mask])) for k in specs}
    return totals


def _compare(kpi: str, totals: dict[str, dict[str, float]], control: str, test: str,
             scale: float, alpha: float, warnings: tuple[str, ...],
             split: Mapping[str, float] | None = None) -> AbResult:
    if control not in totals:
        raise KpiforgeError(f"kpiforge ab: no data for control '{control}' (values: "
                            f"{', '.join(totals) or 'none'})")
    others = [v for v in totals if v != control]
    if not others:
        raise KpiforgeError(f"kpiforge ab: only the control '{control}' has data")
    notes = list(warnings)
    units = [totals[v]["units"] for v in totals]
    if any(n < 2 for n in units):
        raise SourceError("kpiforge ab: every variant needs at least 2 units")
    zero = [v for v, t in totals.items() if t["x"] == 0]
    if zero:
        raise SourceError(f"kpiforge ab: the denominator is 0 for variant '{zero[0]}'")
    weights = [1.0] * len(totals)
    if split is not None:
        missing = [v for v in totals if not split.get(v, 0) > 0]
        if missing:
            raise KpiforgeError(f"kpiforge ab: the split gives no positive share to '{missing[0]}'")
        weights = [float(split[v]) for v in totals]
    expected = [sum(units) * w / sum(weights) for w in weights]
    chi2 = sum((n - e) ** 2 / e for n, e in zip(units, expected))
    srm_p = chi2_sf(chi2, len(units) - 1)
    if srm_p < SRM_ALPHA:
        counts = ", ".join(f"{v}: {int(totals[v]['units'])}" for v in totals)
        notes.append(f"sample ratio mismatch: units per variant {counts} (chi-square p = "
                     f"{srm_p:.3g}, {'equal' if split is None else 'planned'} split expected); "
                     "the assignment may be broken")
    c = totals[control]
    binary = test == "mean" and all(abs(t["yy"] - t["y"]) <= 1e-9 * max(1.0, t["y"])
                                    for t in totals.values())
    estimates: list[Estimate] = []
    for v in others:
        t = totals[v]
        if binary:
            est = two_proportion(t["y"], t["x"], c["y"], c["x"], alpha)
        elif test == "mean":
            est = welch(t["y"], t["yy"], t["x"], c["y"], c["yy"], c["x"], alpha)
        else:
            est = delta_ratio((t["y"], t["yy"], t["x"], t["xx"], t["xy"], t["units"]),
                              (c["y"], c["yy"], c["x"], c["xx"], c["xy"], c["units"]), alpha)
        estimates.append(est)
    adjusted = holm([e.p_value for e in estimates]) if len(estimates) > 1 else [estimates[0].p_value]
    if len(estimates) > 1:
        notes.append(f"{len(estimates)} variants against the control: p-values Holm-adjusted")
    results = tuple(
        AbComparison(kpi, v, control, e.value * scale, e.control_value * scale, e.diff * scale,
                     e.ci_low * scale, e.ci_high * scale,
                     e.value / e.control_value - 1.0 if e.control_value else None,
                     p, e.test, p < alpha)
        for v, e, p in zip(others, estimates, adjusted))
    return AbResult(results, tuple(notes))
