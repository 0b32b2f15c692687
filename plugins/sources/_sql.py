"""The ONE aggregate query of a request, for any :class:`~kpiforge.sources.Dialect`.

Aggregation is pushed down: a SQL source runs one ``GROUP BY`` query per request and Python
only ever sees the aggregated columns. Names are quoted identifiers and values bound parameters;
``expression:`` (an input) and ``query:`` (a source) are SQL written by the project owner and
are inserted as written: they are as trusted as the project file itself, which is why the
project file never holds secrets (``${VAR}`` expands environment variables in settings instead).

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
from typing import Any, Mapping, Sequence

from kpiforge.sources import Condition, InputSpec, SourceRequest, day_start

from ._dialects import Dialect, Params, quote_identifier

__all__ = ["build_aggregate_query", "build_latest_query", "relation_rows_sql"]


def _filter_sql(filters: Mapping[str, Any], params: Params) -> str:
    parts = []
    for column, value in filters.items():
        col = quote_identifier(column)
        if isinstance(value, tuple):
            present = [v for v in value if v is not None]
            alternatives = []
            if present:
                alternatives.append(f"{col} IN ({', '.join(params.add(v) for v in present)})")
            if len(present) != len(value):
                alternatives.append(f"{col} IS NULL")
            parts.append("(" + " OR ".join(alternatives) + ")")
        elif value is None:
            parts.append(f"{col} IS NULL")
        else:
            parts.append(f"{col} = {params.add(value)}")
    return " AND ".join(parts) if parts else "1 = 1"


def _flag_sql(filters: Mapping[str, Any], condition: Condition | None, dialect: Dialect,
              params: Params) -> str:
    """A project's ``filter`` and a definition's row condition, both true."""
    parts = [_filter_sql(filters, params)] if filters else []
    if condition is not None:
        parts.append(condition.sql(params.add, quote_identifier, dialect.float_type))
    return " AND ".join(parts)


def _value_sql(spec: InputSpec) -> str:
    if spec.expression is not None:
        return f"({spec.expression})"  # trusted project-owner SQL, see the module docstring
    if spec.column == "*":
        return "1"
    return quote_identifier(spec.column or spec.name)


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

    values: list[str] = field(default_factory=list)  # __v<i>: value SQL per row
    # __c<i>: filter and row condition per row
    flags: list[tuple[Mapping[str, Any], Condition | None]] = field(default_factory=list)
    aggregates: list[tuple[str, int, int | None, bool]] = field(default_factory=list)
    columns: list[int] = field(default_factory=list)  # per input: index into aggregates

    @classmethod
    def of(cls, specs: Sequence[InputSpec]) -> "_Plan":
        plan = cls()
        values: dict[str, int] = {}
        flags: dict[Any, int] = {}
        aggregates: dict[tuple[str, int, int | None, bool], int] = {}
        for spec in specs:
            value_sql = _value_sql(spec)
            v = values.setdefault(value_sql, len(values))
            if v == len(plan.values):
                plan.values.append(value_sql)
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


def _time_filter(column: str, request: SourceRequest, dialect: Dialect,
                 params: Params, time_kind: str = "") -> tuple[str | None, bool]:
    """The WHERE on the raw time value ``column`` (SQL) for ``request.ranges`` (None: all time)
    and whether it is exact (see :func:`day_start`)."""
    if not request.ranges:
        return None, True
    typed = [dialect.typed_range(column, time_kind, start, end, params)
             for start, end in request.ranges] if time_kind else []
    plain = [r for r in typed if r is not None]
    if typed and len(plain) == len(typed):  # local bounds on local times: exact
        return "(" + " OR ".join(plain) + ")", True
    exact = True
    ranges = []
    for start, end in request.ranges:
        low, low_exact = day_start(start, request.timezone)
        high, high_exact = day_start(end, request.timezone)
        exact = exact and low_exact and high_exact
        ranges.append(dialect.raw_range(column, start, end, low, high, params))
    return "(" + " OR ".join(ranges) + ")", exact


def _flag_column(condition: str, dialect: Dialect) -> str:
    """A row's filter flag: the condition itself where the engine has booleans it can carry
    in a column (a CASE to 1/0 and a comparison with 1 per aggregate cost DuckDB about 10 % of
    a whole query over ten million rows), else 1 or 0."""
    return f"({condition})" if dialect.boolean_flags else f"CASE WHEN {condition} THEN 1 ELSE 0 END"


def relation_rows_sql(relation: str, time_column: str, request: SourceRequest, dialect: Dialect,
                      params: Params, span: tuple[datetime, datetime] | None,
                      dims: Sequence[str] = (), plan: _Plan | None = None,
                      where: str | None = None, time_sql: str | None = None,
                      time_kind: str = "") -> str:
    """Layer 1: local time, dimensions as text, input values and filter flags, per row kept
    by ``where`` (a condition on the raw columns). ``time_sql`` is the raw time value (default:
    the quoted ``time_column``), ``time_kind`` its :meth:`Dialect.time_kind` ("": unknown)."""
    raw_time = time_sql or quote_identifier(time_column)
    local = dialect.typed_local_time(raw_time, time_kind, request, params) if time_kind else None
    if local is None:
        local = dialect.local_time(raw_time, request, params, span)
    columns = [f"{local} AS __t"]
    for i, dim in enumerate(dims):
        columns.append(f"CAST({quote_identifier(dim)} AS {dialect.text_type}) AS __d{i}")
    if plan is not None:
        columns.extend(f"{value} AS __v{i}" for i, value in enumerate(plan.values))
        columns.extend(f"{_flag_column(_flag_sql(filters, condition, dialect, params), dialect)} "
                       f"AS __c{i}" for i, (filters, condition) in enumerate(plan.flags))
    sql = f"SELECT {', '.join(columns)} FROM {relation} AS __src"
    return f"{sql} WHERE {where}" if where else sql


def build_aggregate_query(relation: str, time_column: str, request: SourceRequest,
                          dialect: Dialect, *, span: tuple[datetime, datetime] | None = None,
                          params: Params | None = None, time_sql: str | None = None,
                          missing_sql: str | None = None, time_kind: str = ""
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
    """
    params = params or Params(dialect.param_style)
    specs = list(request.inputs.values())
    dims = list(request.dims)
    plan = _Plan.of(specs)
    raw_time = time_sql or quote_identifier(time_column)
    raw_where, exact = _time_filter(raw_time, request, dialect, params, time_kind)
    kept = raw_where
    if missing_sql is not None and raw_where is not None:
        kept = f"({raw_where} OR {missing_sql})"
    rows = relation_rows_sql(relation, time_column, request, dialect, params, span, dims, plan,
                             kept, time_sql, time_kind)

    where = []
    if (raw_where is None or not exact) and missing_sql is None:
        where.append("__t IS NOT NULL")
    if raw_where is not None and not exact:
        ranges = []
        for start, end in request.ranges:
            low = dialect.time_bound("__t", ">=", datetime.combine(start, time()), params)
            high = dialect.time_bound("__t", "<", datetime.combine(end, time()), params)
            ranges.append(f"({low} AND {high})")
        keep_missing = "__t IS NULL OR " if missing_sql is not None else ""
        where.append("(" + keep_missing + " OR ".join(ranges) + ")")
    dim_cols = [f"__d{i}" for i in range(len(dims))]
    periods = (f"SELECT {dialect.period_start('__t', request.grain, request.week_start)} AS __p, "
               f"__rows.* FROM ({rows}) AS __rows")
    if where:
        periods += f" WHERE {' AND '.join(where)}"

    windows = []
    aggregates = []
    for k, (agg, v, f, star) in enumerate(plan.aggregates):
        value = f"__v{v}"
        condition = ("1 = 1" if f is None else f"__c{f}" if dialect.boolean_flags
                     else f"__c{f} = 1")
        if agg in ("first", "last") and dialect.window_first_last:
            usable = f"({condition} AND {value} IS NOT NULL)"
            order = "ASC" if agg == "first" else "DESC"
            partition = ", ".join(["__p", *dim_cols, f"CASE WHEN {usable} THEN 1 ELSE 0 END"])
            windows.append(f"FIRST_VALUE({value}) OVER (PARTITION BY {partition} ORDER BY __t {order} "
                           f"ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING) AS __w{k}")
            expr = f"MAX(CASE WHEN {usable} THEN __w{k} END)"
        elif agg in ("first", "last"):
            expr = dialect.first_last(value, "__t", condition, agg)
        else:
            expr = _aggregate(agg, star, value, condition if f is not None else None)
        aggregates.append(f"CAST({expr} AS {dialect.float_type}) AS __a{k}")
    source = f"({periods}) AS __periods"
    if windows:
        source = f"(SELECT __periods.*, {', '.join(windows)} FROM {source}) AS __windows"
    group = ", ".join(["__p", *dim_cols])
    counted = [f"CAST(COUNT(*) AS {dialect.float_type}) AS __n"] if missing_sql is not None else []
    grouped = (f"SELECT {', '.join(['__p', *dim_cols, *aggregates, *counted])} FROM {source} "
               f"GROUP BY {group}")
    # each input is a copy of its shared aggregate, under the column name fetch() expects
    outputs = [f"__a{k} AS __i{i}" for i, k in enumerate(plan.columns)]
    if counted:
        outputs.append("__n")
    sql = f"SELECT {', '.join(['__p', *dim_cols, *outputs])} FROM ({grouped}) AS __grouped ORDER BY {group}"
    return sql, params.values, [s.name for s in specs]


def _aggregate(agg: str, star: bool, value: str, condition: str | None) -> str:
    picked = f"CASE WHEN {condition} THEN {value} END" if condition else value
    if agg == "count" and star:
        return f"COUNT(CASE WHEN {condition} THEN 1 END)" if condition else "COUNT(*)"
    if agg == "count":
        return f"COUNT({picked})"
    if agg == "count_distinct":
        return f"COUNT(DISTINCT {picked})"
    if agg == "sum":
        # rows exist for this period/slice but none matches the filter: zero, not unknown
        return f"COALESCE(SUM({picked}), 0)" if condition else f"SUM({picked})"
    return f"{agg.upper()}({picked})"


def build_latest_query(relation: str, time_column: str, request: SourceRequest, dialect: Dialect,
                       *, span: tuple[datetime, datetime] | None = None,
                       params: Params | None = None, time_sql: str | None = None,
                       time_kind: str = "") -> tuple[str, dict[str, Any]]:
    """The query of the newest local time of the relation's rows, as ``__latest``: ``(sql,
    params)``; arguments as for :func:`build_aggregate_query`."""
    params = params or Params(dialect.param_style)
    rows = relation_rows_sql(relation, time_column, request, dialect, params, span,
                             time_sql=time_sql, time_kind=time_kind)
    return f"SELECT MAX(__t) AS __latest FROM ({rows}) AS __rows", params.values
