"""Every other SQL dialect, through sqlglot: MySQL / MariaDB, BigQuery, Snowflake, Redshift,
Trino / Athena, Spark / Databricks, ClickHouse, SQL Server (tsql) and Oracle.

How. ``_sql`` writes the request's ONE aggregate query as text in a *canonical* form: ANSI /
PostgreSQL syntax (quoted identifiers, ``CAST``, ``CASE``, window functions, ``:p0``
placeholders), with the few engine-specific pieces written as marker functions
(``KF_PERIOD_WEEK(t, 0)``, ``KF_PERIOD_MONTH(t)``, ``KF_LOCAL(t, :p1)``). :meth:`GlotDialect.render`
parses it with sqlglot into an expression tree and transforms the tree for the target: each
marker becomes the target's own expression (parsed from a template in the target's syntax, so
it is exactly what that engine documents), placeholders stay ``:name`` (SQLAlchemy's ``text()``
binds them for every driver), ``NULLS FIRST/LAST`` orderings are set to the target's default
(the order of a NULL key never matters here, and MySQL or SQL Server cannot say it), and every
identifier is quoted (Oracle and Snowflake would otherwise fold ``__p`` to upper case). sqlglot
then renders the tree: types (``VARCHAR`` -> ``CHAR`` / ``STRING`` / ``NVARCHAR``), quoting,
aliases, ``%`` -> ``MOD``.

Why parse a canonical form rather than build the tree with ``sqlglot.exp`` builders: the query
is already assembled in one place for DuckDB, PostgreSQL and SQLite (``_sql`` and
``_dialects``), whose SQL is kept byte for byte (its behaviour and its speed are tested and
benchmarked; DuckDB's is the hot path, and a parse would add nothing to it). The canonical
text is that same builder's output, so every dialect gets the same plan (shared aggregates,
filter flags, the missing-time count in the same scan) and only the pieces that really differ
are written per engine. Some of sqlglot's generic transpilations are wrong for a target
(``(array_agg(x ORDER BY t) FILTER (...))[1]`` for MySQL, ``DATE_SUB`` for SQL Server): first
and last are window functions (``FIRST_VALUE ... OVER``) on every one of these engines, and
periods come from the per-engine templates below, not from sqlglot's ``DATE_TRUNC`` mapping.

Time columns. A DATE and a naive timestamp are local wall time: bucketed and filtered as they
are, with plain bounds (pushable). A column with a time zone is converted once per row kept
(``KF_LOCAL``) and filtered on that local time. A column of unknown type (a ``query:``) is read
as a naive local timestamp. MySQL and MariaDB have no zone-aware type: ``TIMESTAMP`` values are
rendered in the session ``time_zone``, which :meth:`GlotDialect.setup` sets to the project's
zone (the server needs its time-zone tables: ``mysql_tzinfo_to_sql``); so both types are local.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timezone
from typing import TYPE_CHECKING, Any, Callable

from kpiforge.errors import SourceError
from kpiforge.sources import SourceRequest, zone

from ._dialects import Dialect, Params

if TYPE_CHECKING:  # sqlglot takes 0.2 s to import: only a query for these engines imports it
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
_NULL_ORDERING_DEFAULT: dict[str, Callable[[bool], bool]] = {
    "nulls_are_small": lambda desc: not desc,
    "nulls_are_large": lambda desc: desc,
    "nulls_are_last": lambda desc: False,
}
_RAW = "__kf_raw_"


class GlotDialect(Dialect):
    """A dialect rendered by sqlglot from the canonical query (see the module docstring)."""

    param_style = "colon"
    window_first_last = True
    case_sensitive_names = False

    def __init__(self, name: str = "mysql"):
        if name not in GLOT_TARGETS:
            raise SourceError(f"unknown SQL dialect {name!r}")
        self.name = name
        self.target = GLOT_TARGETS[name]
        self.case_sensitive_names = self.target in ("oracle", "snowflake", "trino", "athena")
        # a bare VARCHAR is VARCHAR(30) in SQL Server and invalid in Oracle
        self.text_type = "VARCHAR(4000)" if self.target in ("tsql", "oracle") else "VARCHAR"

    # -- canonical pieces (markers, replaced by render()) ------------------------------------
    def local_time(self, column: str, request: SourceRequest, params: Params,
                   span: tuple[datetime, datetime] | None) -> str:  # pragma: no cover
        raise NotImplementedError("time_kind() always gives a kind")

    def time_kind(self, type_name: str) -> str:
        # a column of unknown type (a query:, text) is read as a naive local timestamp
        return super().time_kind(type_name) or "unknown"

    def typed_local_time(self, column: str, kind: str, request: SourceRequest,
                         params: Params) -> str | None:
        if kind == "instant":  # converted once per row kept, the only conversion there is
            return f"KF_LOCAL({column}, {params.add(request.timezone)})"
        if kind == "unknown":
            return f"CAST({column} AS TIMESTAMP)"
        return column

    def typed_range(self, column: str, kind: str, start: date, end: date,
                    params: Params) -> str | None:
        if kind == "instant":
            return None  # raw_range(): the raw instants against the instants of the bounds
        if kind == "unknown":
            return super().typed_range(f"CAST({column} AS TIMESTAMP)", "local", start, end, params)
        return super().typed_range(column, kind, start, end, params)

    def raw_range(self, column: str, start: date, end: date, low: datetime, high: datetime,
                  params: Params) -> str:
        # Only a column with a time zone gets here: compared, unconverted (pushable), with the
        # UTC instants at which the local days start (exactness: see day_start()).
        low_sql, high_sql = (f"CAST({params.add(v.astimezone(timezone.utc).isoformat(sep=' '))} "
                             f"AS TIMESTAMPTZ)" for v in (low, high))
        return f"({column} >= {low_sql} AND {column} < {high_sql})"

    def period_start(self, t: str, grain: str, week_start: int) -> str:
        if grain == "week":
            return f"KF_PERIOD_WEEK({t}, {int(week_start)})"
        return f"KF_PERIOD_{grain.upper()}({t})"

    def setup(self, timezone: str) -> list[str]:
        if self.target in ("mysql", "spark", "databricks"):
            zone(timezone)  # validated: it is written into the statement, not bound
            # TIMESTAMP is an instant rendered in the session zone: this one reads it as local
            if self.target == "mysql":
                return [f"SET time_zone = '{timezone}'"]
            return [f"SET TIME ZONE '{timezone}'"]
        return []

    # -- rendering ---------------------------------------------------------------------------
    def render(self, sql: str, raw: tuple[str, ...] = ()) -> str:
        """The canonical ``sql`` as this dialect's SQL. ``raw``: trusted project-owner SQL in
        it (a ``query:``, an ``expression:``), written in the target's own syntax: kept out of
        the parse and put back as written."""
        import sqlglot

        for i, text in enumerate(raw):
            sql = sql.replace(text, f'"{_RAW}{i}"')
        tree = sqlglot.parse_one(sql, read="postgres")
        tree = tree.transform(self._transform)
        out = tree.sql(dialect=self.target, identify=True)
        quote = sqlglot.Dialect.get_or_raise(self.target).IDENTIFIER_START
        end = sqlglot.Dialect.get_or_raise(self.target).IDENTIFIER_END
        for i, text in enumerate(raw):
            out = out.replace(f"{quote}{_RAW}{i}{end}", text)
        return out

    def _template(self, table: dict[str, str], **nodes: exp.Expression) -> exp.Expression:
        import sqlglot
        from sqlglot import exp

        tree = sqlglot.parse_one(table[self.target], read=self.target)

        def put(node: exp.Expression) -> exp.Expression:
            if isinstance(node, exp.Column) and not node.table and node.name in nodes:
                return nodes[node.name].copy()
            return node

        return tree.transform(put)

    def _date(self, t: exp.Expression) -> exp.Expression:
        from sqlglot import exp

        if self.target in _DATE:
            return self._template(_DATE, T=t)
        return exp.cast(t.copy(), exp.DataType.build("date"))

    def _period(self, grain: str, t: exp.Expression, week_start: int) -> exp.Expression:
        from sqlglot import exp

        if grain == "day":
            return self._date(t)
        if grain == "week":
            dow = self._template(_ISODOW, T=t)
            # days back to the week's first day: (ISO day + 6 - week_start) mod 7, as in _dialects
            shifted = exp.paren(exp.Add(this=exp.paren(dow), expression=exp.Literal.number(6 - week_start)))
            back = exp.paren(exp.Mod(this=shifted, expression=exp.Literal.number(7)))
            return self._template(_MINUS_DAYS, D=self._date(t), N=back)
        if self.target in _TRUNC:
            return self._template({self.target: _TRUNC[self.target][grain]}, T=t)
        day = exp.cast(t.copy(), exp.DataType.build("date"))
        return exp.cast(exp.DateTrunc(unit=exp.var(grain.upper()), this=day), exp.DataType.build("date"))

    def _transform(self, node: exp.Expression) -> exp.Expression:
        import sqlglot
        from sqlglot import exp

        if isinstance(node, exp.Placeholder) and node.name:
            return exp.var(f":{node.name}")
        if isinstance(node, exp.Ordered):
            ordering = sqlglot.Dialect.get_or_raise(self.target).NULL_ORDERING
            desc = bool(node.args.get("desc"))
            node.set("nulls_first", _NULL_ORDERING_DEFAULT.get(ordering, lambda d: not d)(desc))
            return node
        if isinstance(node, exp.Anonymous) and str(node.this).upper().startswith("KF_"):
            # the template's own nodes (the marker's arguments inside it) are transformed too
            return self._marker(node).transform(self._transform)
        return node

    def _marker(self, node: exp.Anonymous) -> exp.Expression:
        name = str(node.this).upper()
        args = node.expressions
        if name == "KF_LOCAL":
            return self._template(_LOCAL, T=args[0], Z=args[1])
        if name == "KF_PERIOD_WEEK":
            return self._period("week", args[0], int(args[1].name))
        return self._period(name.removeprefix("KF_PERIOD_").lower(), args[0], 0)


def named_dialect(name: str) -> Dialect:
    """The dialect called ``name`` (``duckdb``, ``postgres``, ``mysql``, ``bigquery``, ...)."""
    from ._dialects import DuckDBDialect, PostgresDialect, SqliteDialect

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
    if isinstance(dialect, GlotDialect):
        return dialect.target
    return {"postgresql": "postgres"}.get(dialect.name, dialect.name)


def inline_parameters(sql: str, values: dict[str, Any], dialect: Dialect) -> str:
    """``sql`` with each bound parameter (``$p0`` / ``:p0``) written as a literal: a query to
    print and run as it is. The values are the request's (filters, bounds, the zone name),
    rendered by sqlglot as escaped literals."""
    target = sqlglot_name(dialect)

    def literal(match: re.Match[str]) -> str:
        return _literal(values[match.group(1)]).sql(dialect=target)

    return re.sub(r"(?<![\w:$])[:$](p\d+)\b", literal, sql)


def _literal(value: Any) -> exp.Expression:
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
