"""``kpiforge import metricflow``: dbt MetricFlow semantic models and metrics as kpiforge
definitions (one per metric) and a project's sources (one per semantic model and time dimension).

MetricFlow itself is not needed: its YAML is read as data. Simple metrics become an input, ratio
metrics ``a / b``, derived metrics their expression; a metric's filters become the source
input's ``filter`` (hence an input of its own per distinct filter). What has no kpiforge form
(cumulative and conversion metrics, offsets, joins, medians and percentiles, filters other than
equalities) is returned as a :class:`Note`, so the command lists it rather than dropping it.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from ._metricflow_common import AGG_FROM_MF, META_KEY, Note, is_identifier, parse_filter
from ._metricflow_expr import Untranslatable, formula_from_sql
from ._yamlio import load_document
from .errors import ArgumentError

__all__ = ["Imported", "import_metricflow", "read_metricflow"]

_REF = re.compile(r"""^\s*ref\(\s*['"]([^'"]+)['"]\s*\)\s*\Z""")
_ID = re.compile(r"^[a-z][a-z0-9_]{0,63}\Z")
# definition keys that only kpiforge has, read back from a metric's meta
_META_KEYS = ("labels", "descriptions", "category", "objectives", "owner", "status", "version",
              "tags", "vanity", "unit", "currency", "direction", "target", "tolerance",
              "thresholds", "alerts")
_INPUT_META_KEYS = ("description", "descriptions", "unit", "range", "additivity", "time_agg",
                    "aliases")


@dataclass(frozen=True)
class Imported:
    """Definitions by id, sources by name (project-file form) and what was not carried over."""

    definitions: dict[str, dict[str, Any]]
    sources: dict[str, dict[str, Any]]
    notes: tuple[Note, ...]


@dataclass(frozen=True)
class _Measure:
    name: str
    source: str
    binding: Mapping[str, Any]  # column / expression / agg, as a source input
    dimensions: Mapping[str, str]  # dimension name -> column
    description: str | None


class _Unsupported(Exception):
    """Why one metric cannot be imported."""


def read_metricflow(directory: str | Path) -> tuple[list[dict[str, Any]], ...]:
    """Every semantic model, metric and saved query in the YAML files under ``directory``."""
    root = Path(directory)
    if not root.is_dir():
        raise ArgumentError(f"{directory}: not a folder of MetricFlow YAML files")
    models: list[dict[str, Any]] = []
    metrics: list[dict[str, Any]] = []
    queries: list[dict[str, Any]] = []
    files = sorted(p for p in root.rglob("*") if p.suffix in (".yml", ".yaml") and p.is_file())
    for path in files:
        data = load_document(path).data
        if not isinstance(data, dict):
            continue
        models += [m for m in data.get("semantic_models") or [] if isinstance(m, dict)]
        metrics += [m for m in data.get("metrics") or [] if isinstance(m, dict)]
        queries += [q for q in data.get("saved_queries") or [] if isinstance(q, dict)]
    return models, metrics, queries


def _column(dimension: Mapping[str, Any], notes: list[Note], what: str, time: bool = False) -> str:
    expr = dimension.get("expr")
    if expr is None or expr == dimension["name"]:
        return str(dimension["name"])
    if is_identifier(expr):
        if not time:  # a time dimension's name is not kpiforge's concern, only its column
            notes.append(Note(what, f"is column {expr}: kpiforge names it {expr}"))
        return str(expr)
    notes.append(Note(what, f"its expression {expr!r} is not a column: read as column "
                            f"{dimension['name']!r}"))
    return str(dimension["name"])


def _binding(measure: Mapping[str, Any], time: str) -> dict[str, Any]:
    agg = measure.get("agg")
    if agg not in AGG_FROM_MF:
        raise _Unsupported(f"agg {agg!r} has no kpiforge aggregation")
    expr = measure.get("expr")
    text = str(expr).strip() if expr is not None else None
    binding: dict[str, Any] = {}
    if agg == "sum_boolean":
        binding["expression"] = f"CASE WHEN {text or measure['name']} THEN 1 ELSE 0 END"
    elif agg == "count" and text in ("1", "*"):
        binding["column"] = "*"
    elif text is not None and text != measure["name"]:
        binding["column" if is_identifier(text) else "expression"] = text
    binding["agg"] = AGG_FROM_MF[agg]
    nad = measure.get("non_additive_dimension")
    if nad is not None:
        name = nad.get("name") if isinstance(nad, dict) else nad
        if name != time or agg != "sum" or (isinstance(nad, dict) and nad.get("window_groupings")):
            raise _Unsupported("non_additive_dimension other than a sum over the time dimension")
        binding["agg"] = "last" if isinstance(nad, dict) and nad.get("window_choice") == "max" \
            else "first"
    return binding


def _models(models: list[dict[str, Any]], notes: list[Note]
            ) -> tuple[dict[str, _Measure], dict[str, dict[str, Any]]]:
    measures: dict[str, _Measure] = {}
    sources: dict[str, dict[str, Any]] = {}
    for model in models:
        name = str(model.get("name"))
        what = f"semantic model {name}"
        match = _REF.match(str(model.get("model", "")))
        table = match.group(1) if match else str(model.get("model") or name)
        if match is None:
            notes.append(Note(what, f"model {model.get('model')!r} is not ref('x'): table {table}"))
        entities = [str(e.get("name")) for e in model.get("entities") or [] if isinstance(e, dict)]
        if entities:
            notes.append(Note(what, "entities and the joins they allow are not carried over: "
                                    + ", ".join(entities)))
        dims = [d for d in model.get("dimensions") or [] if isinstance(d, dict) and "name" in d]
        times = {str(d["name"]): _column(d, notes, f"{what}, dimension {d['name']}", time=True)
                 for d in dims if d.get("type") == "time"}
        grains = {str(d["name"]): (d.get("type_params") or {}).get("time_granularity")
                  for d in dims if d.get("type") == "time"}
        categorical = {str(d["name"]): _column(d, notes, f"{what}, dimension {d['name']}")
                       for d in dims if d.get("type") != "time"}
        default = (model.get("defaults") or {}).get("agg_time_dimension")
        if default is None and len(times) == 1:
            default = next(iter(times))
        for measure in model.get("measures") or []:
            mname = str(measure.get("name"))
            time = measure.get("agg_time_dimension") or default
            if time not in times:
                notes.append(Note(f"measure {mname}", f"no time dimension (agg_time_dimension "
                                                      f"{time!r} is not one of {what})"))
                continue
            try:
                binding = _binding(measure, time)
            except _Unsupported as exc:
                notes.append(Note(f"measure {mname}", str(exc)))
                continue
            source_name = name if time == default else f"{name}_by_{time}"
            source = sources.setdefault(source_name, {
                "type": "sql", "url": "${WAREHOUSE_URL}", "table": table, "time": times[time]})
            if categorical:
                source["dimensions"] = list(dict.fromkeys(categorical.values()))
            if grains.get(time) in ("week", "month", "quarter", "year"):
                source["grain"] = grains[time]  # rows at that grain: a snapshot's native grain
            source.setdefault("inputs", {})  # filled once every metric has named its inputs
            measures[mname] = _Measure(mname, source_name, binding, categorical,
                                       measure.get("description"))
        if not model.get("measures"):
            notes.append(Note(what, "no measures: no source"))
    return measures, sources


@dataclass
class _Builder:
    """Resolves metrics to formulas; inputs are keyed by (measure, filter) and named last."""

    measures: dict[str, _Measure]
    metrics: dict[str, dict[str, Any]]
    keys: dict[tuple[str, tuple[tuple[str, str], ...]], tuple[str, dict[str, Any]]] = \
        field(default_factory=dict)
    kpis: set[str] = field(default_factory=set)

    def token(self, measure: _Measure, filters: dict[str, Any], preferred: str) -> str:
        key = (measure.name, tuple(sorted((c, repr(v)) for c, v in filters.items())))
        if key not in self.keys:
            self.keys[key] = (preferred if filters else measure.name, filters)
        return f"__in{list(self.keys).index(key)}__"

    def resolve(self, name: str, raw: dict[str, Any], seen: tuple[str, ...]) -> str:
        metric = self.metrics.get(name)
        if metric is None:
            raise _Unsupported(f"uses metric {name!r}, which is not defined")
        if name in seen:
            raise _Unsupported(f"metric {name} depends on itself")
        seen += (name,)
        kind = metric.get("type")
        params = metric.get("type_params") or {}
        if kind in ("ratio", "derived") and not raw and len(seen) > 1 and name in self.kpis:
            return name  # a KPI of its own: used by id, as kpiforge formulas may
        extra = bool(raw)
        raw = _merge(raw, metric.get("filter"))
        if kind == "simple":
            ref = params.get("measure")
            if ref is None:
                raise _Unsupported("a simple metric without type_params.measure (the spec of "
                                   "dbt 1.12, agg on the metric) is not read")
            ref_name = ref.get("name") if isinstance(ref, dict) else ref
            if isinstance(ref, dict):
                raw = _merge(raw, ref.get("filter"))
                for key in ("fill_nulls_with", "join_to_timespine"):
                    if key in ref:
                        raise _Unsupported(f"{key} has no kpiforge form")
            measure = self.measures.get(str(ref_name))
            if measure is None:
                raise _Unsupported(f"measure {ref_name!r} is not imported")
            filters = _columns(raw, measure)
            slug = re.sub(r"[^a-z0-9]+", "_", "_".join(str(v) for v in filters.values()).lower())
            return self.token(measure, filters, f"{name}_{slug}".strip("_")[:64] if extra else name)
        if kind == "ratio":
            num, den = (self._operand(params.get(k), raw, seen)
                        for k in ("numerator", "denominator"))
            return f"({num}) / ({den})"
        if kind == "derived":
            return self._derived(params, raw, seen)
        raise _Unsupported(f"{kind} metrics have no kpiforge form")

    def _operand(self, ref: Any, raw: dict[str, Any], seen: tuple[str, ...]) -> str:
        if isinstance(ref, dict):
            return self.resolve(str(ref.get("name")), _merge(raw, ref.get("filter")), seen)
        return self.resolve(str(ref), raw, seen)

    def _derived(self, params: Mapping[str, Any], raw: dict[str, Any], seen: tuple[str, ...]
                 ) -> str:
        names: dict[str, str] = {}
        for ref in params.get("metrics") or []:
            ref = ref if isinstance(ref, dict) else {"name": ref}
            for key in ("offset_window", "offset_to_grain"):
                if key in ref:
                    raise _Unsupported(f"{key} (a value from another period) has no kpiforge form")
            alias = str(ref.get("alias") or ref.get("name"))
            names[alias] = self.resolve(str(ref.get("name")), _merge(raw, ref.get("filter")), seen)
        return _formula(str(params.get("expr", "")), names)


def _merge(raw: dict[str, Any], filters: Any) -> dict[str, Any]:
    if filters is None:
        return raw
    parsed = parse_filter(filters)
    if isinstance(parsed, str):
        raise _Unsupported(f"filter: {parsed}")
    merged = dict(raw)
    for ref, value in parsed.items():
        if ref in merged and merged[ref] != value:
            raise _Unsupported(f"{ref} is filtered on two different values")
        merged[ref] = value
    return merged


def _columns(raw: dict[str, Any], measure: _Measure) -> dict[str, Any]:
    filters = {}
    for ref, value in raw.items():
        dim = ref.rpartition("__")[2]
        if dim not in measure.dimensions:
            raise _Unsupported(f"filter on {ref}, which is not a dimension of measure "
                               f"{measure.name}'s semantic model (a join)")
        filters[measure.dimensions[dim]] = value
    return filters


def _formula(expr: str, names: Mapping[str, str]) -> str:
    try:
        return formula_from_sql(expr, names)
    except Untranslatable as exc:
        raise _Unsupported(str(exc)) from None


def _simplify(formula: str) -> str:
    """Drops the parentheses substitution added where precedence does not need them."""
    return ast.unparse(ast.parse(formula, mode="eval"))


def _definition(name: str, metric: Mapping[str, Any], formula: str, inputs: dict[str, Any],
                guessed: list[str]) -> dict[str, Any]:
    meta = metric.get("meta") or (metric.get("config") or {}).get("meta") or {}
    found = meta.get(META_KEY) if isinstance(meta, dict) else None
    kept: dict[str, Any] = found if isinstance(found, dict) else {}
    label = metric.get("label") or name.replace("_", " ").capitalize()
    definition: dict[str, Any] = {"id": name, "name": str(label)}
    if metric.get("description"):
        definition["description"] = " ".join(str(metric["description"]).split())
    definition["formula"] = formula
    for input_name, declared in (kept.get("inputs") or {}).items():
        if input_name in inputs and isinstance(declared, dict):
            inputs[input_name] = {k: declared[k] for k in _INPUT_META_KEYS if k in declared} \
                or inputs[input_name]
    definition["inputs"] = inputs
    definition.update({k: kept[k] for k in _META_KEYS if k in kept})
    if "unit" not in definition or "direction" not in definition:
        tree = ast.parse(formula, mode="eval").body
        percent = isinstance(tree, ast.BinOp) and isinstance(tree.op, ast.Mult) and any(
            isinstance(n, ast.Constant) and n.value == 100 for n in (tree.left, tree.right))
        definition.setdefault("unit", "count" if metric.get("type") == "simple"
                              else "percent" if percent else "ratio")
        definition.setdefault("direction", "higher_is_better")
        guessed.append(name)
    order = ("id", "name", "labels", "description", "descriptions")
    return {**{k: definition[k] for k in order if k in definition}, **definition}


def import_metricflow(models: list[dict[str, Any]], metrics: list[dict[str, Any]],
                      saved_queries: list[dict[str, Any]] | None = None) -> Imported:
    """kpiforge definitions and sources for MetricFlow ``models`` and ``metrics``."""
    notes: list[Note] = [Note(f"saved query {q.get('name')}", "saved queries have no kpiforge "
                              "form (a run's --kpi, --by and --grain say the same)")
                         for q in saved_queries or []]
    measures, sources = _models(models, notes)
    by_name = {str(m.get("name")): m for m in metrics}
    for model in models:  # create_metric: true is a simple metric of the measure's name
        for measure in model.get("measures") or []:
            name = str(measure.get("name"))
            if measure.get("create_metric") and name not in by_name:
                by_name[name] = {"name": name, "type": "simple", "label": measure.get("label"),
                                 "description": measure.get("description"),
                                 "type_params": {"measure": name}}
    builder = _Builder(measures, by_name)

    def helper(m: Mapping[str, Any]) -> bool:  # an input of kpiforge's export, not a KPI
        meta = m.get("meta") or (m.get("config") or {}).get("meta") or {}
        return bool(isinstance(meta.get(META_KEY), dict) and meta[META_KEY].get("input"))

    candidates = [n for n, m in by_name.items() if not helper(m)]
    for name in candidates:
        if not _ID.match(name):
            notes.append(Note(f"metric {name}", "not a kpiforge id (lowercase a-z, 0-9, _)"))
    candidates = [n for n in candidates if _ID.match(n)]
    failed: dict[str, str] = {}
    for name in candidates:  # first all inlined: which metrics can be KPIs at all
        try:
            builder.resolve(name, {}, ())
        except _Unsupported as exc:
            failed[name] = str(exc)
    notes += [Note(f"metric {name}", reason) for name, reason in failed.items()]
    builder.keys.clear()
    builder.kpis = {n for n in candidates if n not in failed}
    formulas = {name: builder.resolve(name, {}, ()) for name in candidates if name not in failed}
    # inputs are named once every formula is known: unfiltered measures keep their name, a
    # filtered one takes its simple metric's name, or the first free variant of it
    names: dict[int, str] = {}
    taken: set[str] = set()
    order = sorted(range(len(builder.keys)), key=lambda i: bool(list(builder.keys.values())[i][1]))
    for index in order:
        (measure_name, _), (preferred, filters) = list(builder.keys.items())[index]
        candidate, n = preferred, 1
        while candidate in taken:
            n += 1
            candidate = f"{preferred}_{n}"
        taken.add(candidate)
        names[index] = candidate
        measure = measures[measure_name]
        binding = dict(measure.binding)
        if filters:
            binding["filter"] = filters
        sources[measure.source]["inputs"][candidate] = binding
    used = {k[0] for k in builder.keys}
    for measure in measures.values():  # measures no metric uses are still the source's inputs
        if measure.name in used:
            continue
        if measure.name in taken:
            notes.append(Note(f"measure {measure.name}", "used by no metric, and its name is a "
                                                         "filtered input's: not imported"))
        else:
            sources[measure.source]["inputs"][measure.name] = dict(measure.binding)
    definitions: dict[str, dict[str, Any]] = {}
    guessed: list[str] = []
    for name, formula in formulas.items():
        inputs: dict[str, Any] = {}
        for index, input_name in names.items():
            token = f"__in{index}__"
            if token in formula:
                formula = formula.replace(token, input_name)
                source_key = list(builder.keys)[index][0]
                description = measures[source_key].description
                inputs[input_name] = {"description": " ".join(description.split())} \
                    if description else {}
        definitions[name] = _definition(name, by_name[name], _simplify(formula), inputs, guessed)
    if guessed:
        notes.append(Note("unit and direction", "MetricFlow has neither: set to count (simple "
                          "metrics), percent (a formula times 100) or ratio, and "
                          "higher_is_better, for " + ", ".join(guessed) + "; check them"))
    return Imported(definitions, {k: v for k, v in sources.items() if v["inputs"]}, tuple(notes))
