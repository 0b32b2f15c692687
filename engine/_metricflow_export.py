"""``kpiforge export metricflow``: a project's sources and KPI definitions as dbt MetricFlow
semantic models and metrics (the YAML spec of dbt 1.6-1.11, read by MetricFlow's validator).

Each sql / duckdb / sqlite / csv / parquet source is a semantic model (its inputs the measures,
its dimensions and time column the dimensions, its name the primary entity). Every input a KPI
reads is a simple metric of the same name (its ``filter`` the metric's), marked in ``meta`` as a
kpiforge input so that an import does not turn it into a KPI. A KPI is a simple metric when its
formula is one input, a ratio for ``a / b``, a derived metric otherwise (its expression the
formula, with the SQL names of the functions). What MetricFlow has no place for (unit,
direction, thresholds, target, alerts, ...) goes into the metric's ``config.meta.kpiforge``, as
written in the definition. What cannot be exported is returned as a :class:`Note`.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from ._formula_check import FunctionSpec, check_formula
from ._metricflow_common import AGG_TO_MF, META_KEY, Note, is_identifier, render_filter
from ._metricflow_expr import Untranslatable, formula_to_sql
from ._yamlio import load_document
from ._totals import TOTAL
from .errors import FormulaError, KpiforgeError

__all__ = ["EXPORTED_TYPES", "Exported", "export_metricflow"]

EXPORTED_TYPES = ("sql", "duckdb", "sqlite", "csv", "parquet")
_GRAINS = ("nanosecond", "microsecond", "millisecond", "second", "minute", "hour", "day",
           "week", "month", "quarter", "year")
_KEPT = ("labels", "descriptions", "category", "objectives", "owner", "status", "version", "tags",
         "vanity", "unit", "currency", "direction", "target", "tolerance", "thresholds", "alerts",
         "inputs")


@dataclass(frozen=True)
class Exported:
    """MetricFlow semantic models and metrics (YAML-ready data) and what was not exported."""

    semantic_models: tuple[dict[str, Any], ...]
    metrics: tuple[dict[str, Any], ...]
    notes: tuple[Note, ...]


class _Skip(Exception):
    """Why one KPI cannot be exported."""


def _table(name: str, settings: Mapping[str, Any]) -> str:
    if settings.get("table"):
        return str(settings["table"])
    path = settings.get("path")
    if isinstance(path, str):  # a file or glob: its stem without the glob's wildcards
        stem = re.sub(r"[^A-Za-z0-9_]+", "_", Path(path).name.split(".")[0]).strip("_")
        return stem or name
    return name


def _literal(value: Any) -> str:
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, (int, float)):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


def _quote(column: str) -> str:
    return column if is_identifier(column) else '"' + column.replace('"', '""') + '"'


def _measure(name: str, spec: Any, time: str) -> dict[str, Any]:
    measure: dict[str, Any] = {"name": name}
    expr = spec.expression if spec.expression is not None else (spec.column or name)
    if spec.where is not None:  # a definition's row condition: only its rows enter, as in SQL
        kept = "1" if expr == "*" else expr
        expr = f"CASE WHEN {spec.where.sql(_literal, _quote)} THEN {kept} END"
    if spec.agg in ("first", "last"):  # a snapshot: summed over dimensions, one time point
        measure.update(agg="sum", expr=expr, non_additive_dimension={
            "name": time, "window_choice": "min" if spec.agg == "first" else "max"})
    elif expr == "*":
        measure.update(agg="count", expr="1")
    else:
        measure.update(agg=AGG_TO_MF[spec.agg], expr=expr)
    return measure


def _models(project: Any, notes: list[Note]
            ) -> tuple[list[dict[str, Any]], dict[str, tuple[str, Any]]]:
    models: list[dict[str, Any]] = []
    provided: dict[str, tuple[str, Any]] = {}  # input -> (semantic model, its InputSpec)
    for name, source in project.sources.items():
        what = f"source {name}"
        if source.type not in EXPORTED_TYPES:
            notes.append(Note(what, f"type {source.type} has no table a dbt model could be"))
            continue
        if source.settings.get("keys"):
            notes.append(Note(what, "keys (inputs not summable across "
                              + ", ".join(source.settings["keys"]) + ") have no MetricFlow form"))
        if source.settings.get("query"):
            notes.append(Note(what, "a query, not a table: exported as ref('" + name + "')"))
        measures, filtered = [], []
        # MetricFlow reserves the granularity names (a column called month): another name
        time = f"{name}_{source.time}" if source.time.lower() in _GRAINS else source.time
        raw_inputs = source.settings.get("inputs") or {}
        for input_name, spec in source.inputs.items():
            if "@" in input_name or (raw_inputs.get(input_name) or {}).get("for"):
                notes.append(Note(f"input {input_name.split('@')[0]} of {what}",
                                  "a binding for some KPIs only (for:) has no MetricFlow form"))
                continue
            if spec.where is not None and spec.agg in ("first", "last"):
                notes.append(Note(f"input {input_name} of {what}", "a snapshot (first, last) "
                                  "with a where condition has no MetricFlow form"))
                continue
            if any(v is None or (isinstance(v, (list, tuple)) and None in v)
                   for v in spec.filter.values()):
                notes.append(Note(f"input {input_name} of {what}", "a filter on NULL"))
                continue
            measures.append(_measure(input_name, spec, time))
            filtered += [c for c in spec.filter if c not in source.dimensions]
            provided[input_name] = (name, spec)
        for input_name in source.unbound:
            notes.append(Note(f"input {input_name} of {what}", "its measure is defined in a "
                              "definition (fields, where): not exported"))
        if not measures:
            continue
        dimensions: list[dict[str, Any]] = [{
            "name": time, **({"expr": source.time} if time != source.time else {}), "type": "time",
            "type_params": {"time_granularity": source.settings.get("grain") or "day"}}]
        # a filter's columns must be dimensions for a metric filter to name them
        dimensions += [{"name": d, "type": "categorical"}
                       for d in dict.fromkeys((*source.dimensions, *filtered))]
        model: dict[str, Any] = {"name": name}
        if source.settings.get("description"):
            model["description"] = str(source.settings["description"])
        model.update({"model": f"ref('{_table(name, source.settings)}')",
                      "defaults": {"agg_time_dimension": time},
                      "primary_entity": name, "dimensions": dimensions, "measures": measures})
        models.append(model)
    return models, provided


def _raw_definition(definition: Any) -> dict[str, Any]:
    """The definition as written in its file, for ``meta``."""
    if not definition.path:
        return {}
    try:
        data = load_document(definition.path).data
    except KpiforgeError:
        return {}
    kpis = data.get("kpis") or [] if isinstance(data, dict) and "kpis" in data else [data]
    return next((k for k in kpis if isinstance(k, dict) and k.get("id") == definition.id), {})


@dataclass
class _Metrics:
    project: Any
    provided: dict[str, tuple[str, Any]]
    functions: Mapping[str, FunctionSpec]
    notes: list[Note]

    def __post_init__(self) -> None:
        self.out: dict[str, dict[str, Any]] = {}
        self.kpis: dict[str, str | None] = {}  # id -> metric name, None when not exported
        self.inputs: dict[str, str] = {}  # input -> its simple metric

    def input_metric(self, name: str) -> str:
        if name in self.inputs:
            return self.inputs[name]
        if name not in self.provided:
            raise _Skip(f"input {name} is not read from an exported source")
        model, spec = self.provided[name]
        metric = name
        definitions = self.project.engine.definitions
        if metric in definitions and definitions[metric].formula.strip() != name:
            metric = f"{name}_input"  # the name is a KPI's that means something else
        self.inputs[name] = metric
        if metric not in self.out:
            self.out[metric] = self._simple(metric, name, model, spec, {"input": True})
        return metric

    def _simple(self, metric: str, measure: str, model: str, spec: Any,
                meta: dict[str, Any]) -> dict[str, Any]:
        data: dict[str, Any] = {"name": metric, "type": "simple",
                                "type_params": {"measure": measure}}
        if spec.filter:
            data["filter"] = render_filter(model, spec.filter)
        data["config"] = {"meta": {META_KEY: meta}}
        return data

    def kpi(self, kpi_id: str, seen: tuple[str, ...] = ()) -> str:
        if kpi_id in self.kpis:
            found = self.kpis[kpi_id]
            if found is None:
                raise _Skip(f"uses KPI {kpi_id}, which is not exported")
            return found
        if kpi_id in seen:
            raise _Skip(f"KPI {kpi_id} depends on itself")
        definition = self.project.engine.definitions[kpi_id]
        try:
            self.kpis[kpi_id] = self._export(definition, seen + (kpi_id,))
        except _Skip as exc:
            self.kpis[kpi_id] = None
            self.notes.append(Note(f"KPI {kpi_id}", str(exc)))
            raise _Skip(f"uses KPI {kpi_id}, which is not exported") from None
        return kpi_id

    def _export(self, definition: Any, seen: tuple[str, ...]) -> str:
        try:
            tree, names, called = check_formula(definition.formula, {**self.functions,
                                                                     "total": TOTAL})
        except FormulaError as exc:
            raise _Skip(f"formula: {exc}") from None
        if "total" in called:
            raise _Skip("total() (a share of the whole breakdown) has no MetricFlow form")
        if set(definition.parameters) & names:  # those of its where conditions are inlined
            raise _Skip("a formula's parameters have no MetricFlow form")
        definitions = self.project.engine.definitions
        single = tree.id if isinstance(tree, ast.Name) else None
        simple = single is not None and (single in definition.inputs or single not in definitions)
        if simple and single not in self.provided:
            raise _Skip(f"input {single} is not read from an exported source")
        refs = {} if simple else {
            n: (self.kpi(n, seen) if n in definitions and n not in definition.inputs
                else self.input_metric(n)) for n in sorted(names)}
        raw = _raw_definition(definition)
        meta = {k: raw[k] for k in _KEPT if k in raw}
        data: dict[str, Any] = {"name": definition.id, "label": definition.name}
        if definition.description:
            data["description"] = definition.description
        if simple and isinstance(tree, ast.Name):
            model, spec = self.provided[tree.id]
            body = self._simple(definition.id, tree.id, model, spec, meta)
            data.update({k: v for k, v in body.items() if k != "name"})
        elif (isinstance(tree, ast.BinOp) and isinstance(tree.op, ast.Div)
              and isinstance(tree.left, ast.Name) and isinstance(tree.right, ast.Name)):
            data.update(type="ratio", type_params={"numerator": {"name": refs[tree.left.id]},
                                                   "denominator": {"name": refs[tree.right.id]}})
        else:
            try:
                expr = formula_to_sql(tree)
            except Untranslatable as exc:
                raise _Skip(str(exc)) from None
            data.update(type="derived", type_params={"expr": expr, "metrics": [
                {"name": m} if m == n else {"name": m, "alias": n} for n, m in refs.items()]})
        data["config"] = {"meta": {META_KEY: meta}}
        if definition.id in self.out:  # an input's simple metric of the same meaning
            self.out[definition.id].update(data)
        else:
            self.out[definition.id] = data
        return definition.id


def export_metricflow(project: Any, functions: Mapping[str, FunctionSpec]) -> Exported:
    """MetricFlow YAML data for a loaded :class:`kpiforge.Project`'s sources and KPIs."""
    notes: list[Note] = []
    project.engine  # noqa: B018 - loads the definitions and binds their measures to the sources
    models, provided = _models(project, notes)
    metrics = _Metrics(project, provided, functions, notes)
    for kpi_id in sorted(project.engine.definitions):
        try:
            metrics.kpi(kpi_id)
        except _Skip:
            pass  # noted where it happened
    ordered = sorted(metrics.out.values(), key=lambda m: (
        META_KEY in m["config"]["meta"] and bool(m["config"]["meta"][META_KEY].get("input")),
        m["name"]))
    return Exported(tuple(models), tuple(ordered), tuple(notes))
