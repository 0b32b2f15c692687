"""The KPI itself in SQL: one query that returns KPI values, for ``kpiforge sql``.

The inputs come from the source's own aggregate query (``aggregate_sql``, the same one a run
executes, its parameters written as literals), and the KPIs are computed around it: each
formula's checked tree (:func:`check_formula`, the allow-list) is compiled to a sqlglot
expression, with every division ``CAST(a AS DOUBLE) / NULLIF(b, 0)`` (division by zero gives
NULL, as a run's null), KPIs that use other KPIs inlined, and the whole rendered by sqlglot for
the source's dialect. What has no faithful SQL form is refused with a message, never guessed:
``total(x)`` (a second query without the dimensions), ``for:`` bindings, inputs from several
sources, and functions without a SQL counterpart here.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

from sqlglot import exp

from ._formula_check import check_formula
from ._run_periods import day_ranges, select_periods
from ._run_plan import check_period_options, plan_run, split_dimensions
from ._run_sources import build_sources, call_source
from ._formulas import function_specs
from ._totals import TOTAL, is_total
from .errors import RunError
from .sources import SourceRequest

__all__ = ["KpiQuery", "kpi_query"]

_RAW = "__kf_inputs__"
_BUILTIN_PLUGIN = "kpiforge.plugins.functions"


@dataclass(frozen=True)
class KpiQuery:
    """The query (``sql``), the session statements it needs first, and its dialect."""

    sql: str
    setup: tuple[str, ...]
    dialect: str

    @property
    def text(self) -> str:
        """What ``kpiforge sql`` prints: the session statements, then the query."""
        return "".join(f"{s};\n" for s in self.setup) + self.sql + ";\n"


def kpi_query(engine: Any, project: Any, kpis: Sequence[str], *, grain: str | None = None,
              period: str | None = None, by: Sequence[str] | str | None = (),
              dialect: str | None = None) -> KpiQuery:
    """One query returning ``kpis`` (and the KPIs they use) per period (``period``: its start
    date) and per ``by`` dimension: over ``period`` if given, else over all the data."""
    dims = split_dimensions(by)
    check_period_options(grain, period, None, None, None)
    if not kpis:
        raise RunError("name the KPIs to write as SQL (--kpi ID)")
    plan = plan_run(engine, project, list(kpis), dims)
    totals = sorted({k for keys in plan.required.values() for k in keys if is_total(k)})
    if totals:
        raise RunError(f"{', '.join(totals)}: total(x) is not written as SQL (it needs a second "
                       "query without the dimensions); use kpiforge run")
    if plan.overrides:
        raise RunError(f"{', '.join(sorted(plan.overrides))}: inputs bound with for: are not "
                       "written as SQL; use kpiforge run")
    missing = sorted({k for keys in plan.required.values() for k in keys} - set(plan.provided))
    if missing:
        raise RunError(f"no source provides {', '.join(missing)}")
    if len(plan.sources) != 1:
        raise RunError("one query reads one source: the inputs of these KPIs come from "
                       f"{', '.join(plan.sources)}; ask for KPIs of one source")
    (name, source_plan), = plan.sources.items()
    if source_plan.missing_dims:
        raise RunError(f"source '{name}' cannot be split by {', '.join(source_plan.missing_dims)}")
    sources = build_sources(project, [name], engine.plugins, {})
    source = sources[name]
    if not hasattr(source, "aggregate_sql"):
        raise RunError(f"source '{name}' ({project.sources[name].type}) does not write its query "
                       "as SQL: kpiforge sql needs a SQL source (duckdb, sqlite, sql, parquet, csv)")
    ranges: tuple[Any, ...] = ()
    if period is not None:
        grain, current = select_periods(project, sources, grain, period, None, None, None,
                                        project.week_start_index)
        ranges = day_ranges(current)
    grain = grain or "month"
    config = project.sources[name]
    request = SourceRequest(grain, project.timezone, project.week_start_index, ranges, dims,
                            {i: config.inputs[i] for i in source_plan.inputs})
    inner, setup, names, target = call_source(project, name, "writing its query",
                                              source.aggregate_sql, request, dialect)
    columns = {input_name: exp.column(f"__i{i}", quoted=True) for i, input_name in enumerate(names)}
    compiled: dict[str, exp.Expression] = {}
    functions = {**function_specs(engine.plugins.functions), "total": TOTAL}
    # a plugin may register its own min(): only the built-in functions have a SQL form here
    builtin = frozenset(n for n, r in engine.plugins.functions.items()
                        if getattr(r, "plugin", "") == _BUILTIN_PLUGIN)
    for kpi in engine.plan(plan.wanted):
        definition = engine.definitions[kpi]
        tree, _, _ = check_formula(definition.formula, functions)
        scope: dict[str, exp.Expression] = {**columns, **compiled}
        compiled[kpi] = _Compiler(kpi, scope, builtin).number(tree)
    selects = [exp.alias_(exp.column("__p", quoted=True), "period", quoted=True)]
    selects += [exp.alias_(exp.column(f"__d{i}", quoted=True), dim, quoted=True)
                for i, dim in enumerate(dims)]
    selects += [exp.alias_(compiled[k], k, quoted=True) for k in plan.wanted]
    order = [exp.column("__p", quoted=True), *(exp.column(f"__d{i}", quoted=True) for i in range(len(dims)))]
    query = (exp.select(*selects).from_(exp.alias_(exp.to_table(_RAW, quoted=True), "__inputs", table=True))
             # the group of rows without a time (counted for run's warning) is no period
             .where(exp.Not(this=exp.Is(this=exp.column("__p", quoted=True), expression=exp.null())))
             .order_by(*order))
    text = query.sql(dialect=target, identify=True)
    token = exp.to_table(_RAW, quoted=True).sql(dialect=target, identify=True)
    return KpiQuery(text.replace(token, f"({inner})", 1), setup, target)


_FUNCTIONS: dict[str, Callable[[list[exp.Expression]], exp.Expression]] = {
    "abs": lambda a: exp.Abs(this=a[0]),
    # where a run gets a math error (null), SQL would fail or give NaN / infinity: NULL instead
    "sqrt": lambda a: _when(exp.GTE(this=a[0], expression=exp.Literal.number(0)), exp.Sqrt(this=a[0])),
    "exp": lambda a: _when(exp.LTE(this=a[0], expression=exp.Literal.number(709)), exp.Exp(this=a[0])),
    "log": lambda a: _when(exp.GT(this=a[0], expression=exp.Literal.number(0)), exp.Ln(this=a[0]))
    if len(a) == 1 else _when(exp.and_(exp.GT(this=a[0], expression=exp.Literal.number(0)),
                                       exp.GT(this=a[1], expression=exp.Literal.number(0))),
                              _divide(exp.Ln(this=a[0]), exp.Ln(this=a[1]))),
    # no round(): SQL rounds ties away from zero and a run to even, and PostgreSQL has no
    # ROUND(double, n); it is refused rather than off by one unit in the last place now and then
    "coalesce": lambda a: exp.Coalesce(this=a[0], expressions=a[1:]),
    "min": lambda a: _null_if_any(a, exp.Least(this=a[0], expressions=a[1:])),
    "max": lambda a: _null_if_any(a, exp.Greatest(this=a[0], expressions=a[1:])),
    "clip": lambda a: _null_if_any(a, exp.Least(this=exp.Greatest(this=a[0], expressions=[a[1]]),
                                                expressions=[a[2]])),
    "safe_div": lambda a: exp.Coalesce(this=_divide(a[0], a[1]),
                                       expressions=[a[2] if len(a) > 2 else exp.Literal.number(0)]),
}
_BINARY: dict[type, Callable[[exp.Expression, exp.Expression], exp.Expression]] = {
    ast.Add: lambda a, b: exp.Add(this=a, expression=b),
    ast.Sub: lambda a, b: exp.Sub(this=a, expression=b),
    ast.Mult: lambda a, b: exp.Mul(this=a, expression=b),
    ast.Div: lambda a, b: _divide(a, b),
    ast.FloorDiv: lambda a, b: exp.Floor(this=_divide(a, b)),
    ast.Pow: lambda a, b: exp.Pow(this=a, expression=b),  # integer exponents only, see number()
}
_COMPARE: dict[type, type[exp.Expression]] = {
    ast.Eq: exp.EQ, ast.NotEq: exp.NEQ, ast.Lt: exp.LT, ast.LtE: exp.LTE, ast.Gt: exp.GT,
    ast.GtE: exp.GTE,
}


def _divide(a: exp.Expression, b: exp.Expression) -> exp.Expression:
    # float division (no integer division on any engine), and by zero: NULL, as a run's null
    return exp.Div(this=exp.cast(a, exp.DataType.build("double")),
                   expression=exp.Nullif(this=b, expression=exp.Literal.number(0)))


def _atom(node: exp.Expression) -> exp.Expression:
    """``node`` in parentheses unless it is one already (a column, a number, a call)."""
    return node if isinstance(node, (exp.Column, exp.Literal, exp.Paren, exp.Func)) else exp.paren(node)


def _when(condition: exp.Expression | exp.Condition, value: exp.Expression) -> exp.Expression:
    return exp.Case(ifs=[exp.If(this=condition, true=value)])


def _if(condition: exp.Expression, then: exp.Expression, otherwise: exp.Expression) -> exp.Expression:
    """``then if condition else otherwise``, NULL when the condition is: a run's ``a if c else
    b`` is null when ``c`` is (SQL's CASE would take ``otherwise``)."""
    return exp.Case(ifs=[exp.If(this=exp.Is(this=exp.paren(condition.copy()), expression=exp.null()),
                                true=exp.null()),
                         exp.If(this=condition, true=then)], default=otherwise)


def _null_if_any(args: list[exp.Expression], value: exp.Expression) -> exp.Expression:
    # PostgreSQL's LEAST/GREATEST skip NULLs; a run's min/max is null if any argument is
    missing = exp.or_(*[exp.Is(this=a.copy(), expression=exp.null()) for a in args])
    return exp.Case(ifs=[exp.If(this=missing, true=exp.null())], default=value)


def _short_circuit(parts: list[exp.Expression], op: ast.boolop) -> exp.Expression:
    """``a and b`` / ``a or b`` as a run evaluates them, left to right: a null ``a`` makes the
    result null even where SQL's three-valued ``NULL OR TRUE`` would be TRUE."""
    result = parts[-1]
    for part in reversed(parts[:-1]):
        decided = exp.Not(this=exp.paren(part.copy())) if isinstance(op, ast.And) else part.copy()
        result = exp.Case(ifs=[exp.If(this=exp.Is(this=exp.paren(part.copy()), expression=exp.null()),
                                      true=exp.null()),
                               exp.If(this=decided, true=exp.false() if isinstance(op, ast.And) else exp.true())],
                          default=result)
    return exp.paren(result)


class _Compiler:
    """A checked formula tree as a sqlglot expression (numbers, or conditions where SQL needs
    a boolean)."""

    def __init__(self, kpi: str, scope: Mapping[str, exp.Expression], builtin: frozenset[str]):
        self.kpi = kpi
        self.scope = scope
        self.builtin = builtin

    def refuse(self, what: str) -> RunError:
        return RunError(f"KPI '{self.kpi}': {what} is not written as SQL; use kpiforge run")

    def number(self, node: ast.expr) -> exp.Expression:
        if isinstance(node, (ast.Compare, ast.BoolOp)) or (
                isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not)):
            return _if(self.condition(node), exp.Literal.number(1), exp.Literal.number(0))
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) \
                and not isinstance(node.value, bool):
            return exp.Literal.number(repr(node.value))
        if isinstance(node, ast.Name):
            if node.id not in self.scope:
                raise self.refuse(f"the name '{node.id}'")
            return _atom(self.scope[node.id].copy())
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Pow) and not (
                isinstance(node.right, ast.Constant) and isinstance(node.right.value, int)
                and 0 <= node.right.value <= 64):
            raise self.refuse("a power other than a whole constant from 0 to 64")
        if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
            return exp.paren(_BINARY[type(node.op)](_atom(self.number(node.left)),
                                                    _atom(self.number(node.right))))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            value = self.number(node.operand)
            return exp.paren(exp.Neg(this=_atom(value))) if isinstance(node.op, ast.USub) else value
        if isinstance(node, ast.IfExp):
            return _if(self.condition(node.test), self.number(node.body), self.number(node.orelse))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            name = node.func.id
            if name != "total" and name not in self.builtin:
                raise self.refuse(f"the plugin function {name}()")
            if name == "where" and len(node.args) == 3:
                return _if(self.condition(node.args[0]), self.number(node.args[1]),
                           self.number(node.args[2]))
            if name == "total":
                raise self.refuse("total(x)")
            if name not in _FUNCTIONS:
                raise self.refuse(f"the function {name}()")
            return _FUNCTIONS[name]([self.number(a) for a in node.args])
        raise self.refuse(f"'{ast.unparse(node)}'")

    def condition(self, node: ast.expr) -> exp.Expression:
        if isinstance(node, ast.Compare):
            parts = []
            left = node.left
            for op, right in zip(node.ops, node.comparators):
                parts.append(_COMPARE[type(op)](this=self.number(left), expression=self.number(right)))
                left = right
            return _short_circuit(parts, ast.And())
        if isinstance(node, ast.BoolOp):
            return _short_circuit([self.condition(v) for v in node.values], node.op)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            return exp.Not(this=self.condition(node.operand))
        return exp.NEQ(this=self.number(node), expression=exp.Literal.number(0))

