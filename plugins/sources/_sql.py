"""The ONE aggregate query of a request, for any :class:`~kpiforge.sources.Dialect`.

Aggregation is pushed down: a SQL source runs one ``GROUP BY`` query per request and Python
only ever sees the aggregated columns. Names are quoted identifiers and values bound parameters;
``expression:`` (an input) and ``query:`` (a source) are SQL written by the project owner and
are inserted as written: they are as trusted as the project file itself, which is why the
project file never holds secrets (``${VAR}`` expands environment variables in settings instead).

The query is ONE sqlglot expression tree, the same for every engine: the layers below are
assembled here, the pieces that differ between engines come from the :class:`Dialect` (local
time, period starts, first / last, range bounds), and the dialect renders the tree with
sqlglot's generator for its engine. Layers: the rows kept by the range (local time ``__t``,
dimensions as text, input values ``__v``, filter flags ``__c``), then their period ``__p``
(computed once per row, in its own subquery, so that a ``COUNT(DISTINCT)`` reads a column, not
an expression), then one ``GROUP BY`` period and dimensions, then the inputs under the names
``fetch()`` expects. A request for periods longer than a day whose aggregates add up (sums,
counts, minima, maxima) is grouped by local day first and by period over the days instead
(:mod:`._sql_rollup`), where the dialect allows it (``Dialect.day_rollup``).

The time range is NOT filtered on local time: converting every row before filtering is most of
the cost of a query over a large file, and it hides the filter from the reader (no Parquet
row-group skipping, no index). The raw column is compared, as an instant, with the instants at
which the range's local days start: ``CAST(ts AS TIMESTAMPTZ) >= CAST(CAST($p AS TIMESTAMP) AS
TIMESTAMPTZ)`` with ``$p`` a local midnight, read in the session zone like any naive value
(DuckDB, PostgreSQL); SQLite compares epoch numbers, UTC text and naive text each with its own
bound, from :func:`~kpiforge.sources.day_start`. Only the rows kept are converted, for their
period. This is exact whenever the local date never goes backwards across a bound, i.e. for
every zone except a few 19th-century ones: there ``day_start`` says so and the local filter is
added back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, time
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from kpiforge.sources import Condition, InputSpec, SourceRequest, day_start

from ._dialects import Dialect, Params
from ._sql_rollup import aggregate, day_rollup_tree, flag_condition, output_query, rolls_up_days
from ._sqltree import (
    alias,
    and_,
    bind,
    cast,
    column,
    condition_tree,
    count,
    from_item,
    is_null,
    or_,
    paren,
    select_from,
    star,
    verbatim,
    when,
)

if TYPE_CHECKING:
    from sqlglot import exp

__all__ = ["build_aggregate_query", "build_latest_query", "empty_select_sql", "relation_rows_sql"]


def _filter_tree(filters: Mapping[str, Any], params: Params) -> list[exp.Expr]:
    from sqlglot import exp

    parts: list[exp.Expr] = []
    for name, value in filters.items():
        col = column(name)
        if isinstance(value, tuple):
            present = [v for v in value if v is not None]
            alternatives: list[exp.Expr] = []
            if present:
                alternatives.append(exp.In(this=col, expressions=[bind(params, v) for v in present]))
            if len(present) != len(value):
                alternatives.append(is_null(col.copy()))
            parts.append(paren(or_(*alternatives)))
        elif value is None:
            parts.append(is_null(col))
        else:
            parts.append(exp.EQ(this=col, expression=bind(params, value)))
    return parts


def _flag_tree(filters: Mapping[str, Any], condition: Condition | None, params: Params) -> exp.Expr:
    """A project's ``filter`` and a definition's row condition, both true."""
    parts = _filter_tree(filters, params)
    if condition is not None:
        parts.append(condition_tree(condition, params))
    return and_(*parts)


def _value_key(spec: InputSpec) -> tuple[str, str]:
    if spec.expression is not None:
        return ("sql", f"({spec.expression})")  # trusted project-owner SQL, see the docstring
    if spec.column == "*":
        return ("one", "1")
    return ("column", spec.column or spec.name)


def _value_tree(key: tuple[str, str]) -> exp.Expr:
    from sqlglot import exp

    kind, text = key
    if kind == "sql":
        return verbatim(text)
    return exp.Literal.number(1) if kind == "one" else column(text)


def _typed(value: Any) -> Any:
    """A hashable key that keeps 1, 1.0 and True apart: SQL may not treat them alike."""
    if isinstance(value, tuple):
        return tuple(_typed(v) for v in value)
    return (type(value).__name__, value)


@dataclass(frozen=True)
class _Plan:
    """The distinct work of a request. Inputs that read the same value with the same
    aggregation and filter (``clicks`` and ``visitors`` both counting click rows) share one
    aggregate; values and filter flags are each computed once per row however many inputs use
    them."""

    values: list[tuple[str, str]] = field(default_factory=list)  # __v<i>: what each row reads
    # __c<i>: filter and row condition per row
    flags: list[tuple[Mapping[str, Any], Condition | None]] = field(default_factory=list)
    aggregates: list[tuple[str, int, int | None, bool]] = field(default_factory=list)
    columns: list[int] = field(default_factory=list)  # per input: index into aggregates

    @classmethod
    def of(cls, specs: Sequence[InputSpec]) -> "_Plan":
        plan = cls()
        values: dict[tuple[str, str], int] = {}
        flags: dict[Any, int] = {}
        aggregates: dict[tuple[str, int, int | None, bool], int] = {}
        for spec in specs:
            value_key = _value_key(spec)
            v = values.setdefault(value_key, len(values))
            if v == len(plan.values):
                plan.values.append(value_key)
            f = None
            if spec.filter or spec.where is not None:
                key = (tuple(sorted((k, _typed(x)) for k, x in spec.filter.items())), spec.where)
                f = flags.setdefault(key, len(flags))
                if f == len(plan.flags):
                    plan.flags.append((spec.filter, spec.where))
            agg = (spec.agg, v, f, spec.column == "*")
            a = aggregates.setdefault(agg, len(aggregates))
            if a == len(plan.aggregates):
                plan.aggregates.append(agg)
            plan.columns.append(a)
        return plan


def _node(sql: str | exp.Expr, dialect: Dialect) -> exp.Expr:
    """A piece of SQL given as text by a caller of the public functions, read in the dialect."""
    if not isinstance(sql, str):
        return sql
    import sqlglot

    return sqlglot.parse_one(sql, read=dialect.glot)


def _time_filter(raw: exp.Expr, request: SourceRequest, dialect: Dialect,
                 params: Params, time_kind: str = "") -> tuple[exp.Expr | None, bool]:
    """The WHERE on the raw time value for ``request.ranges`` (None: all time) and whether it
    is exact (see :func:`day_start`)."""
    if not request.ranges:
        return None, True
    typed = [dialect.typed_range(raw.copy(), time_kind, start, end, params)
             for start, end in request.ranges] if time_kind else []
    plain = [r for r in typed if r is not None]
    if typed and len(plain) == len(typed):  # local bounds on local times: exact
        return paren(or_(*plain)), True
    exact = True
    ranges = []
    for start, end in request.ranges:
        low, low_exact = day_start(start, request.timezone)
        high, high_exact = day_start(end, request.timezone)
        exact = exact and low_exact and high_exact
        ranges.append(dialect.raw_range(raw.copy(), start, end, low, high, params))
    return paren(or_(*ranges)), exact


def _rows(relation: str | exp.Expr, time_column: str, request: SourceRequest,
          dialect: Dialect, params: Params, span: tuple[datetime, datetime] | None,
          dims: Sequence[str] = (), plan: _Plan | None = None,
          where: exp.Expr | None = None, time_sql: str | exp.Expr | None = None,
          time_kind: str = "") -> exp.Select:
    """Layer 1: local time, dimensions as text, input values and filter flags, per row kept
    by ``where`` (a condition on the raw columns)."""
    from sqlglot import exp

    raw = _node(time_sql, dialect) if time_sql is not None else column(time_column)
    local = dialect.typed_local_time(raw.copy(), time_kind, request, params) if time_kind else None
    if local is None:
        local = dialect.local_time(raw.copy(), request, params, span)
    selects = [alias(local, "__t")]
    for i, dim in enumerate(dims):
        selects.append(alias(cast(column(dim), dialect.text_type), f"__d{i}"))
    if plan is not None:
        selects.extend(alias(_value_tree(key), f"__v{i}")
                       for i, key in enumerate(plan.values))
        for i, (filters, condition) in enumerate(plan.flags):
            flag = _flag_tree(filters, condition, params)
            # Where the engine carries booleans in a column, the flag is the condition itself:
            # a CASE to 1/0 and a comparison with 1 per aggregate cost DuckDB about 10 % of a
            # whole query over ten million rows. NULL still counts as false in FILTER and CASE.
            if not dialect.boolean_flags:
                flag = when((flag, exp.Literal.number(1)), otherwise=exp.Literal.number(0))
            selects.append(alias(flag, f"__c{i}"))
    query = select_from(selects, from_item(relation, "__src"))
    return query.where(where, copy=False) if where is not None else query


def relation_rows_sql(relation: str, time_column: str, request: SourceRequest, dialect: Dialect,
                      params: Params, span: tuple[datetime, datetime] | None,
                      dims: Sequence[str] = (), plan: _Plan | None = None,
                      where: str | None = None, time_sql: str | None = None,
                      time_kind: str = "") -> str:
    """Layer 1 as SQL: local time ``__t``, dimensions as text, input values and filter flags,
    per row kept by ``where`` (a condition on the raw columns, in the dialect's SQL).
    ``time_sql`` is the raw time value (default: the quoted ``time_column``), ``time_kind`` its
    :meth:`Dialect.time_kind` ("": unknown)."""
    kept = _node(where, dialect) if where is not None else None
    return dialect.render(_rows(relation, time_column, request, dialect, params, span, dims, plan,
                                kept, time_sql, time_kind))

def build_aggregate_query(relation: str, time_column: str, request: SourceRequest,
                          dialect: Dialect, *, span: tuple[datetime, datetime] | None = None,
                          params: Params | None = None, time_sql: str | exp.Expr | None = None,
                          missing_sql: str | exp.Expr | None = None, time_kind: str = ""
                          ) -> tuple[str, dict[str, Any], list[str]]:
    """The ONE aggregate query of a request: ``(sql, params, input names in column order)``.

    Result columns: ``__p`` (period start), ``__d0..`` (dimensions as text), ``__i0..``
    (inputs as floats). ``relation`` is a FROM item (quoted table, ``(query)``, table function);
    pass the ``params`` it bound its own parameters into, if any. The time range is applied to
    the relation's rows (a ``query:``'s result, not what the query reads). ``time_sql`` is the
    raw time value (default: the quoted column); ``time_kind`` is what the column holds
    (:meth:`Dialect.time_kind` of its type; "" when not known): a DATE or naive TIMESTAMP is
    bucketed and filtered as the local time it is, without a time-zone conversion.

    With ``missing_sql`` (a condition on a raw row: its time is NULL or unreadable), those rows
    are kept by the same scan and end in groups whose ``__p`` is NULL, with their row count in
    the extra column ``__n``: the caller counts and drops them, without a second query.
    ``time_sql`` and ``missing_sql`` are sqlglot expressions, or SQL text of the dialect.
    """
    tree, params, names = _aggregate_tree(relation, time_column, request, dialect, span, params,
                                          time_sql, missing_sql, time_kind)
    return dialect.render(tree), params.values, names


def _aggregate_tree(relation: str, time_column: str, request: SourceRequest, dialect: Dialect,
                    span: tuple[datetime, datetime] | None, params: Params | None,
                    time_sql: str | exp.Expr | None, missing_sql: str | exp.Expr | None,
                    time_kind: str) -> tuple[exp.Select, Params, list[str]]:
    from sqlglot import exp

    params = params or Params(dialect.param_style)
    specs = list(request.inputs.values())
    dims = list(request.dims)
    plan = _Plan.of(specs)
    raw = _node(time_sql, dialect) if time_sql is not None else column(time_column)
    missing = _node(missing_sql, dialect) if missing_sql is not None else None
    raw_where, exact = _time_filter(raw, request, dialect, params, time_kind)
    kept = raw_where
    if missing is not None and raw_where is not None:
        kept = paren(or_(raw_where, missing))
    rows = _rows(relation, time_column, request, dialect, params, span, dims, plan, kept, raw,
                 time_kind)

    t = column("__t")
    where: list[exp.Expr] = []
    if (raw_where is None or not exact) and missing is None:
        where.append(is_null(t.copy(), negate=True))
    if raw_where is not None and not exact:
        ranges: list[exp.Expr] = []
        if missing is not None:
            ranges.append(is_null(t.copy()))
        for start, end in request.ranges:
            low = dialect.time_bound(t.copy(), ">=", datetime.combine(start, time()), params)
            high = dialect.time_bound(t.copy(), "<", datetime.combine(end, time()), params)
            ranges.append(paren(and_(low, high)))
        where.append(paren(or_(*ranges)))
    dim_cols = [column(f"__d{i}") for i in range(len(dims))]
    if rolls_up_days(dialect, request, plan):
        return day_rollup_tree(rows, where, t, dim_cols, plan, dialect, request,
                               missing is not None), params, [s.name for s in specs]
    period = dialect.period_start(t.copy(), request.grain, request.week_start)
    periods = select_from([alias(period, "__p"), star("__rows")], rows, "__rows")
    if where:
        periods = periods.where(and_(*where), copy=False)

    windows: list[exp.Expr] = []
    aggregates: list[exp.Expr] = []
    for k, (agg, v, f, rows_counted) in enumerate(plan.aggregates):
        value = column(f"__v{v}")
        condition = flag_condition(f, dialect)
        if agg in ("first", "last") and dialect.window_first_last:
            usable = paren(and_(condition, is_null(value.copy(), negate=True)))
            one_or_zero = when((usable, exp.Literal.number(1)), otherwise=exp.Literal.number(0))
            window = exp.Window(
                this=exp.FirstValue(this=value.copy()),
                partition_by=[column("__p"), *(d.copy() for d in dim_cols), one_or_zero],
                order=exp.Order(expressions=[dialect.ordered(t.copy(), agg == "last")]),
                spec=exp.WindowSpec(kind="ROWS", start="UNBOUNDED", start_side="PRECEDING",
                                    end="UNBOUNDED", end_side="FOLLOWING"))
            windows.append(alias(window, f"__w{k}"))
            expr: exp.Expr = exp.Max(this=when((usable.copy(), column(f"__w{k}"))))
        elif agg in ("first", "last"):
            expr = dialect.first_last(value, t.copy(), condition, agg)
        else:
            expr = aggregate(agg, rows_counted, value, condition if f is not None else None)
        aggregates.append(alias(cast(expr, dialect.float_type), f"__a{k}"))
    source, name = periods, "__periods"
    if windows:
        source, name = select_from([star("__periods"), *windows], periods, "__periods"), "__windows"
    group = [column("__p"), *dim_cols]
    counted = [alias(cast(count(), dialect.float_type), "__n")] if missing is not None else []
    grouped = (select_from([*(c.copy() for c in group), *aggregates, *counted], source, name)
               .group_by(*(c.copy() for c in group), copy=False))
    return (output_query(grouped, group, plan, bool(counted), dialect), params,
            [s.name for s in specs])


def build_latest_query(relation: str, time_column: str, request: SourceRequest, dialect: Dialect,
                       *, span: tuple[datetime, datetime] | None = None,
                       params: Params | None = None, time_sql: str | exp.Expr | None = None,
                       time_kind: str = "") -> tuple[str, dict[str, Any]]:
    """The query of the newest local time of the relation's rows, as ``__latest``: ``(sql,
    params)``; arguments as for :func:`build_aggregate_query`."""
    from sqlglot import exp

    params = params or Params(dialect.param_style)
    rows = _rows(relation, time_column, request, dialect, params, span, time_sql=time_sql,
                 time_kind=time_kind)
    query = select_from([alias(exp.Max(this=column("__t")), "__latest")], rows, "__rows")
    return dialect.render(query), params.values


def empty_select_sql(relation: str, dialect: Dialect) -> str:
    """``SELECT * FROM relation LIMIT 0`` in the dialect (``TOP 0`` in SQL Server, ``FETCH
    FIRST 0 ROWS`` in Oracle): the relation's columns, without reading a row."""
    from sqlglot import exp

    query = select_from([exp.Star()], from_item(relation, "__src")).limit(0, copy=False)
    return dialect.render(query)
