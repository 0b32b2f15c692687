"""The engines whose pieces are written per engine: MySQL / MariaDB, BigQuery, Snowflake,
Redshift, Trino / Athena, Spark / Databricks, ClickHouse, SQL Server (tsql) and Oracle.

The query is the same tree for every engine (``_sql``); what differs between these ones is
small and written here as templates in the target's own syntax, read once by sqlglot into
expressions, the request's nodes put in their place: the ISO day of the week, a date minus N
days, the start of a month / quarter / year, an instant as local wall time. Parsing the
template in the target's syntax means it is exactly what that engine documents; sqlglot then
renders the whole tree for the engine (types: ``VARCHAR`` -> ``CHAR`` / ``STRING`` /
``NVARCHAR``, quoting, aliases, ``%`` -> ``MOD``). Some of sqlglot's generic translations are
wrong for a target (``(array_agg(x ORDER BY t) FILTER (...))[1]`` for MySQL, ``DATE_SUB`` for
SQL Server): first and last are window functions (``FIRST_VALUE ... OVER``) on every one of
these engines, and periods come from the templates, not from sqlglot's ``DATE_TRUNC`` mapping.

Time columns. A DATE and a naive timestamp are local wall time: bucketed and filtered as they
are, with plain bounds (pushable). A column with a time zone is converted once per row kept
(the ``_LOCAL`` template) and filtered, unconverted, against the instants at which the local
days start. A column of unknown type (a ``query:``) is read as a naive local timestamp. MySQL
and MariaDB have no zone-aware type: ``TIMESTAMP`` values are rendered in the session
``time_zone``, which :meth:`GlotDialect.setup` sets to the project's zone (the server needs its
time-zone tables: ``mysql_tzinfo_to_sql``); so both types are local. ClickHouse's ``DateTime``
and ``DateTime64`` are instants whatever their display zone (see ``_clickhouse_kind``).
"""

from __future__ import annotations

import re
from datetime import date, datetime, timezone
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from kpiforge.errors import SourceError
from kpiforge.sources import SourceRequest, zone

from ._dialects import Dialect, DuckDBDialect, Params, PostgresDialect
from ._sqltree import and_, bind, cast, paren

if TYPE_CHECKING:  # sqlglot is imported when a query is built, not when the plugins load
    from sqlglot import exp

__all__ = ["GLOT_TARGETS", "GlotDialect", "inline_parameters", "named_dialect", "sqlglot_name"]

# sqlglot dialect name per kpiforge dialect name (also the names `--dialect` accepts)
GLOT_TARGETS: dict[str, str] = {
    "athena": "athena", "bigquery": "bigquery", "clickhouse": "clickhouse",
    "databricks": "databricks", "mariadb": "mysql", "mysql": "mysql", "oracle": "oracle",
    "redshift": "redshift", "snowflake": "snowflake", "spark": "spark", "trino": "trino",
    "tsql": "tsql",
}

# The ISO day of the week (1 = Monday .. 7 = Sunday) of T, in the target's own syntax.
_ISODOW = {
    "mysql": "WEEKDAY(T) + 1",
    "bigquery": "MOD(EXTRACT(DAYOFWEEK FROM T) + 5, 7) + 1",
    "snowflake": "DAYOFWEEKISO(T)",
    "redshift": "MOD(CAST(DATE_PART(dow, T) AS INT) + 6, 7) + 1",
    "trino": "DAY_OF_WEEK(T)",
    "athena": "DAY_OF_WEEK(T)",
    "spark": "MOD(DAYOFWEEK(T) + 5, 7) + 1",
    "databricks": "MOD(DAYOFWEEK(T) + 5, 7) + 1",
    "clickhouse": "toDayOfWeek(T)",
    "tsql": "(DATEPART(weekday, T) + @@DATEFIRST + 5) % 7 + 1",
    "oracle": "MOD(TRUNC(T) - TRUNC(T, 'IW'), 7) + 1",
}
# D minus N days (D a date), and the local date of T.
_MINUS_DAYS = {
    "mysql": "DATE_SUB(D, INTERVAL N DAY)", "bigquery": "DATE_SUB(D, INTERVAL N DAY)",
    "snowflake": "DATEADD(DAY, -N, D)", "redshift": "CAST(DATEADD(day, -N, D) AS DATE)",
    "trino": "DATE_ADD('day', -N, D)", "athena": "DATE_ADD('day', -N, D)",
    "spark": "DATE_SUB(D, N)", "databricks": "DATE_SUB(D, N)",
    "clickhouse": "subtractDays(D, N)", "tsql": "CAST(DATEADD(DAY, -N, D) AS DATE)",
    "oracle": "D - N",
}
_DATE = {"mysql": "DATE(T)", "clickhouse": "toDate(T)", "oracle": "TRUNC(T)"}
# month / quarter / year starts, where the generic CAST(DATE_TRUNC(unit, date) AS DATE) is wrong
_TRUNC = {
    "mysql": {"month": "CAST(DATE_FORMAT(T, '%Y-%m-01') AS DATE)",
              "quarter": "MAKEDATE(YEAR(T), 1) + INTERVAL (QUARTER(T) - 1) QUARTER",
              "year": "MAKEDATE(YEAR(T), 1)"},
    "bigquery": {g: f"DATE_TRUNC(CAST(T AS DATE), {g.upper()})" for g in ("month", "quarter", "year")},
    "spark": {g: f"TRUNC(CAST(T AS DATE), '{g.upper()}')" for g in ("month", "quarter", "year")},
    "clickhouse": {"month": "toStartOfMonth(T)", "quarter": "toStartOfQuarter(T)",
                   "year": "toStartOfYear(T)"},
    "tsql": {g: f"CAST(DATETRUNC({g}, T) AS DATE)" for g in ("month", "quarter", "year")},
    "oracle": {"month": "TRUNC(T, 'MM')", "quarter": "TRUNC(T, 'Q')", "year": "TRUNC(T, 'YYYY')"},
}
_TRUNC["databricks"] = _TRUNC["spark"]
# naive local wall time of T, a value with a time zone, in zone Z (a bound parameter)
_LOCAL = {
    "mysql": "T",  # the session time_zone already renders TIMESTAMP as local (setup())
    "bigquery": "DATETIME(T, Z)",
    "snowflake": "CAST(CONVERT_TIMEZONE(Z, T) AS TIMESTAMP_NTZ)",
    "redshift": "CONVERT_TIMEZONE(Z, T)",
    "trino": "CAST(AT_TIMEZONE(T, Z) AS TIMESTAMP)", "athena": "CAST(AT_TIMEZONE(T, Z) AS TIMESTAMP)",
    "spark": "T", "databricks": "T",  # like MySQL: the session zone (setup())
    "clickhouse": "toTimeZone(T, Z)",
    "tsql": "CAST(T AT TIME ZONE Z AS DATETIME2)",
    "oracle": "CAST(T AT TIME ZONE Z AS TIMESTAMP)",
}


class GlotDialect(Dialect):
    """A dialect whose engine-specific pieces come from the templates above, in the target's
    own syntax (see the module docstring)."""

    param_style = "colon"
    window_first_last = True
    day_rollup = True
    case_sensitive_names = False

    def __init__(self, name: str = "mysql"):
        if name not in GLOT_TARGETS:
            raise SourceError(f"unknown SQL dialect {name!r}")
        self.name = name
        self.target = self.glot = GLOT_TARGETS[name]
        self.case_sensitive_names = self.target in ("oracle", "snowflake", "trino", "athena")
        # a bare VARCHAR is VARCHAR(30) in SQL Server and invalid in Oracle
        self.text_type = "VARCHAR(4000)" if self.target in ("tsql", "oracle") else "VARCHAR"

    def local_time(self, column: exp.Expr, request: SourceRequest, params: Params,
                   span: tuple[datetime, datetime] | None) -> exp.Expr:  # pragma: no cover
        raise NotImplementedError("time_kind() always gives a kind")

    def time_kind(self, type_name: str) -> str:
        if self.target == "clickhouse":
            kind = _clickhouse_kind(type_name)
            if kind:
                return kind
        # a column of unknown type (a query:, text) is read as a naive local timestamp
        return super().time_kind(type_name) or "unknown"

    def typed_local_time(self, column: exp.Expr, kind: str, request: SourceRequest,
                         params: Params) -> exp.Expr | None:
        if kind == "instant":  # converted once per row kept, the only conversion there is
            return self._template(_LOCAL, T=column, Z=bind(params, request.timezone))
        if kind == "unknown":
            return cast(column, "timestamp")
        return column

    def typed_range(self, column: exp.Expr, kind: str, start: date, end: date,
                    params: Params) -> exp.Expr | None:
        if kind == "instant":
            return None  # raw_range(): the raw instants against the instants of the bounds
        if kind == "unknown":
            return super().typed_range(cast(column, "timestamp"), "local", start, end, params)
        return super().typed_range(column, kind, start, end, params)

    def raw_range(self, column: exp.Expr, start: date, end: date, low: datetime,
                  high: datetime, params: Params) -> exp.Expr:
        # Only a column with a time zone gets here: compared, unconverted (pushable), with the
        # UTC instants at which the local days start (exactness: see day_start()).
        from sqlglot import exp

        low_sql, high_sql = (cast(bind(params, v.astimezone(timezone.utc).isoformat(sep=" ")),
                                  "timestamptz") for v in (low, high))
        return paren(and_(exp.GTE(this=column, expression=low_sql),
                                  exp.LT(this=column.copy(), expression=high_sql)))

    def period_start(self, t: exp.Expr, grain: str, week_start: int) -> exp.Expr:
        from sqlglot import exp

        if grain == "day":
            return self._date(t)
        if grain == "week":
            dow = self._template(_ISODOW, T=t)
            # days back to the week's first day: (ISO day + 6 - week_start) mod 7, as in _dialects
            shifted = paren(exp.Add(this=paren(dow), expression=exp.Literal.number(6 - week_start)))
            back = paren(exp.Mod(this=shifted, expression=exp.Literal.number(7)))
            return self._template(_MINUS_DAYS, D=self._date(t), N=back)
        if self.target in _TRUNC:
            return self._template({self.target: _TRUNC[self.target][grain]}, T=t)
        day = cast(t.copy(), "date")
        return cast(exp.DateTrunc(unit=exp.var(grain.upper()), this=day), "date")

    def setup(self, timezone: str) -> list[str]:
        if self.target in ("mysql", "spark", "databricks"):
            zone(timezone)  # validated: it is written into the statement, not bound
            # TIMESTAMP is an instant rendered in the session zone: this one reads it as local
            if self.target == "mysql":
                return [f"SET time_zone = '{timezone}'"]
            return [f"SET TIME ZONE '{timezone}'"]
        return []

    def _template(self, table: dict[str, str], **nodes: exp.Expr) -> exp.Expr:
        from sqlglot import exp

        def put(node: exp.Expr) -> exp.Expr:
            if isinstance(node, exp.Column) and not node.table and node.name in nodes:
                return nodes[node.name].copy()
            return node

        return _parsed(self.target, table[self.target]).transform(put)

    def _date(self, t: exp.Expr) -> exp.Expr:
        if self.target in _DATE:
            return self._template(_DATE, T=t)
        return cast(t.copy(), "date")


# ClickHouse's own type names: Date / Date32 are days; DateTime and DateTime64 always hold an
# instant (seconds since the epoch), with or without a display zone, so they are converted
# explicitly (toTimeZone, which only changes how the instant is read) rather than trusting a
# server or session zone that an HTTP connection may not keep between queries.
_CLICKHOUSE_WRAPPED = re.compile(r"^(?:Nullable|LowCardinality)\((.*)\)$")
_CLICKHOUSE_DATETIME = re.compile(r"^DateTime(?:64)?(?:\(.*\))?$", re.IGNORECASE)


def _clickhouse_kind(type_name: str) -> str:
    name = type_name.strip()
    while (wrapped := _CLICKHOUSE_WRAPPED.match(name)) is not None:
        name = wrapped.group(1).strip()
    if name.lower() in ("date", "date32"):
        return "date"
    return "instant" if _CLICKHOUSE_DATETIME.match(name) else ""


@lru_cache(maxsize=256)
def _parsed(target: str, template: str) -> exp.Expr:
    """A template read in the target's own syntax, once (``transform`` copies it for each use)."""
    import sqlglot

    return sqlglot.parse_one(template, read=target)


def named_dialect(name: str) -> Dialect:
    """The dialect called ``name`` (``duckdb``, ``postgres``, ``mysql``, ``bigquery``, ...)."""
    from ._sqlite import SqliteDialect

    classic: dict[str, type[Dialect]] = {"duckdb": DuckDBDialect, "sqlite": SqliteDialect,
                                         "postgres": PostgresDialect, "postgresql": PostgresDialect}
    if name in classic:
        return classic[name]()
    if name in GLOT_TARGETS:
        return GlotDialect(name)
    known = sorted({*classic, *GLOT_TARGETS} - {"postgresql"})
    raise SourceError(f"unknown SQL dialect {name!r}; use one of {', '.join(known)}")


def sqlglot_name(dialect: Dialect) -> str:
    """The sqlglot dialect that reads and writes ``dialect``'s SQL."""
    return dialect.glot


def inline_parameters(sql: str, values: dict[str, Any], dialect: Dialect) -> str:
    """``sql`` with each bound parameter (``$p0`` / ``:p0``) written as a literal: a query to
    print and run as it is. The values are the request's (filters, bounds, the zone name),
    rendered by sqlglot as escaped literals."""
    target = sqlglot_name(dialect)

    def literal(match: re.Match[str]) -> str:
        return _literal(values[match.group(1)]).sql(dialect=target)

    return re.sub(r"(?<![\w:$])[:$](p\d+)\b", literal, sql)


def _literal(value: Any) -> exp.Expr:
    from sqlglot import exp

    """A bound value as a SQL literal (for a query printed to be run as it is)."""
    if value is None:
        return exp.null()
    if isinstance(value, bool):
        return exp.true() if value else exp.false()
    if isinstance(value, (int, float)):
        return exp.Literal.number(repr(value))
    if isinstance(value, (list, tuple)):
        return exp.Array(expressions=[_literal(v) for v in value])
    if isinstance(value, datetime):
        return exp.cast(exp.Literal.string(value.isoformat(sep=" ")), exp.DataType.build("timestamp"))
    if isinstance(value, date):
        return exp.cast(exp.Literal.string(value.isoformat()), exp.DataType.build("date"))
    return exp.Literal.string(str(value))
