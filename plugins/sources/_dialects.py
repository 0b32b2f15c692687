"""SQL dialects of the built-in sources: bound parameters, local time, period starts, types.

A dialect gives the engine-specific pieces of the ONE query tree that ``_sql`` assembles
(sqlglot expressions, see ``_sqltree``) and renders the tree for its engine (:meth:`Dialect.render`,
sqlglot's generator for that engine). Column, dimension, time and table names are always quoted
identifiers; filter values, time bounds and file paths are bound parameters (:class:`Params`).

Time zones. Every dialect turns the time column into a naive *local* timestamp of the project
time zone: a naive value is taken as already local, an aware one (``...Z``, ``+02:00``,
``TIMESTAMPTZ``) is converted. DuckDB and PostgreSQL do this with the session time zone plus
``timezone()`` / ``AT TIME ZONE``; SQLite has no time-zone database, so the conversion is a
``CASE`` over the UTC-offset changes of the zone in the queried span (``_sqlite``).

The time range is filtered on the raw column, not on that local time (see ``_sql``): each
dialect's :meth:`Dialect.raw_range` compares the column, as an instant, with the instants at
which the range's local days start.

Typed columns. Where the engine reports the column's type (:meth:`Dialect.time_kind`), a DATE
or a naive TIMESTAMP is already local wall time: it is bucketed as it is and filtered with plain
date / timestamp bounds (:meth:`Dialect.typed_local_time`, :meth:`Dialect.typed_range`), which
the reader can push into the scan, and no row is converted. Only a column with a time zone is
converted, once per row kept. A column of unknown type (text, SQLite, a ``query:`` through
SQLAlchemy) keeps the general conversion above, which reads every kind of value.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time
from typing import TYPE_CHECKING, Any

from kpiforge.errors import SourceError
from kpiforge.sources import SourceRequest, zone

from ._checks import is_text_type
from ._sqltree import and_, bind, call, cast, compare, is_null, paren

if TYPE_CHECKING:
    from sqlglot import exp

__all__ = [
    "Dialect",
    "DuckDBDialect",
    "Params",
    "PostgresDialect",
    "quote_identifier",
    "quote_qualified",
]


def quote_identifier(name: str) -> str:
    """A double-quoted SQL identifier (DuckDB, PostgreSQL, SQLite, ANSI)."""
    if not isinstance(name, str) or not name or "\x00" in name:
        raise SourceError(f"invalid identifier {name!r}")
    return '"' + name.replace('"', '""') + '"'


def quote_qualified(name: str) -> str:
    """``schema.table`` -> ``"schema"."table"``: each dotted part quoted on its own."""
    return ".".join(quote_identifier(part) for part in name.split("."))


# DuckDB's TIMESTAMP / TIMESTAMP_S / _MS / _NS, PostgreSQL's "timestamp(3) without time zone",
# SQLAlchemy's DATETIME: naive, hence local. Anything with a zone is an instant.
_NAIVE = re.compile(r"^(TIMESTAMP(_S|_MS|_NS)?|DATETIME)(\(\d+\))?( WITHOUT TIME ZONE)?$")
_AWARE = re.compile(r"^(TIMESTAMPTZ|TIMESTAMP(\(\d+\))? WITH TIME ZONE)$")
# where each engine puts NULLs when an ORDER BY says nothing (sqlglot's NULL_ORDERING)
_NULLS_FIRST_BY_DEFAULT = {"nulls_are_small": lambda desc: not desc,
                           "nulls_are_large": lambda desc: desc, "nulls_are_last": lambda desc: False}


class Params:
    """Collects bound parameters and hands out their placeholders."""

    def __init__(self, style: str):
        self.style = style  # "dollar" ($p0, DuckDB) or "colon" (:p0, sqlite3 and SQLAlchemy)
        self.values: dict[str, Any] = {}

    def add(self, value: Any) -> str:
        """Bind ``value``; its placeholder, to write into the SQL."""
        key = f"p{len(self.values)}"
        self.values[key] = value
        return f"${key}" if self.style == "dollar" else f":{key}"


class Dialect:
    """SQL differences between engines: local time, period starts, first/last, types. Every
    hook takes and returns sqlglot expressions; :attr:`glot` is the sqlglot dialect that
    renders the tree."""

    name = "ansi"
    glot = "postgres"
    param_style = "colon"
    text_type = "VARCHAR"  # sqlglot type names, rendered in the engine's own spelling
    float_type = "DOUBLE"
    window_first_last = False  # True: first/last via a window function (no arg_min in SQL)
    case_sensitive_names = False  # how the engine resolves quoted identifiers
    # True: a row's filter flag is a boolean column (NULL counts as false), read as it is;
    # False: 1/0, compared with 1 (engines with no boolean values: SQL Server, Oracle)
    boolean_flags = False
    # True: a request for periods longer than a day may be grouped by local day first, then by
    # period: period_start() must then accept its own "day" result (a date) as its time
    day_rollup = False
    # True: SUM(x ORDER BY y) is valid (the day roll-up then adds the days in day order)
    ordered_aggregates = False

    def local_time(self, column: exp.Expr, request: SourceRequest, params: Params,
                   span: tuple[datetime, datetime] | None) -> exp.Expr:
        raise NotImplementedError

    def time_kind(self, type_name: str) -> str:
        """What a time column of type ``type_name`` holds: ``"date"``, ``"local"`` (a naive
        timestamp: local wall time), ``"instant"`` (with a time zone) or ``""`` (not known: text,
        no type; the general :meth:`local_time` and :meth:`raw_range` read it)."""
        name = " ".join(type_name.upper().split())
        if name == "DATE":
            return "date"
        if _NAIVE.match(name):
            return "local"
        if _AWARE.match(name):
            return "instant"
        return ""

    def typed_local_time(self, column: exp.Expr, kind: str, request: SourceRequest,
                         params: Params) -> exp.Expr | None:
        """The local time of a column of :meth:`time_kind` ``kind``; None: use :meth:`local_time`."""
        if kind == "local":
            return column  # already local wall time: nothing to convert
        if kind == "date":
            return cast(column, "timestamp")
        return None

    def typed_range(self, column: exp.Expr, kind: str, start: date, end: date,
                    params: Params) -> exp.Expr | None:
        """The range filter on a column of :meth:`time_kind` ``kind``, from local day ``start`` to
        ``end``; None: use :meth:`raw_range`. A local column compared with local bounds is
        exact in every zone (no instant is involved), and the bare column with constant bounds
        is what Parquet statistics and indexes can use."""
        if kind == "date":
            low, high = (cast(bind(params, d), "date") for d in (start, end))
        elif kind == "local":
            low, high = (cast(bind(params, datetime.combine(d, time())), "timestamp")
                         for d in (start, end))
        else:
            return None
        return _between(column, low, high)

    def period_start(self, t: exp.Expr, grain: str, week_start: int) -> exp.Expr:
        from sqlglot import exp

        day = cast(t, "date")
        if grain == "day":
            return day
        if grain == "week":
            isodow = cast(exp.Extract(this=exp.var("ISODOW"), expression=t.copy()), "int")
            back = exp.Mod(this=paren(exp.Add(this=isodow, expression=exp.Literal.number(6 - week_start))),
                           expression=exp.Literal.number(7))
            return paren(exp.Sub(this=day, expression=cast(back, "int")))
        return cast(call("date_trunc", grain, t), "date")

    def time_bound(self, t: exp.Expr, op: str, value: datetime, params: Params) -> exp.Expr:
        return compare(t, op, cast(bind(params, value), "timestamp"))

    def raw_range(self, column: exp.Expr, start: date, end: date, low: datetime,
                  high: datetime, params: Params) -> exp.Expr:
        """The raw ``column`` from the start of local day ``start`` to the start of ``end``
        (``low`` and ``high``: those starts as aware UTC instants, computed with zoneinfo).
        Must not convert the column to local time."""
        # The session zone (setup()) reads naive values and DATEs as local, so one comparison of
        # instants covers every type; on a TIMESTAMPTZ column the CAST is a no-op, which keeps
        # the filter usable by Parquet statistics and indexes. The bounds are local midnights
        # read the same way, by the database: its zone data then decides both the bounds and
        # the periods, even where it disagrees with Python's. It is constant-folded.
        low_sql, high_sql = (cast(cast(bind(params, datetime.combine(d, time())), "timestamp"),
                                  "timestamptz") for d in (start, end))
        return _between(cast(column, "timestamptz"), low_sql, high_sql)

    def first_last(self, value: exp.Expr, t: exp.Expr, condition: exp.Expr,
                   which: str) -> exp.Expr:
        raise NotImplementedError

    def setup(self, timezone: str) -> list[str]:
        """Statements to run on the connection before the query."""
        return []

    def raw_time(self, column: exp.Expr, type_name: str) -> exp.Expr:
        """The raw time value of the ``column`` of type ``type_name`` ("" if unknown)."""
        return column

    def time_missing(self, raw: exp.Expr) -> exp.Expr:
        """A row condition: the time ``raw`` gives no instant (the row fits no period)."""
        return is_null(raw.copy())

    def ordered(self, node: exp.Expr, desc: bool | None = None) -> exp.Ordered:
        """``node ASC|DESC`` with the engine's own NULL placement, so nothing more is written
        (the order of a NULL key never matters here, and MySQL or SQL Server cannot say it);
        ``desc`` None: no direction written (ascending)."""
        import sqlglot
        from sqlglot import exp

        default = _NULLS_FIRST_BY_DEFAULT.get(sqlglot.Dialect.get_or_raise(self.glot).NULL_ORDERING,
                                              lambda d: not d)
        return exp.Ordered(this=node, desc=desc, nulls_first=default(bool(desc)))

    def render(self, tree: exp.Expr) -> str:
        """The query tree as this engine's SQL, every identifier quoted (Oracle and Snowflake
        would otherwise fold ``__p`` to upper case)."""
        return tree.sql(dialect=self.glot, identify=True)


def _between(column: exp.Expr, low: exp.Expr, high: exp.Expr) -> exp.Expr:
    """``(column >= low AND column < high)``: a half-open range on the bare column."""
    return paren(and_(compare(column, ">=", low), compare(column.copy(), "<", high)))


class DuckDBDialect(Dialect):
    """DuckDB: ``$p`` parameters, the session ``TimeZone``, ``arg_min``/``arg_max`` for first/last."""

    name = "duckdb"
    glot = "duckdb"
    param_style = "dollar"
    boolean_flags = True
    day_rollup = True
    ordered_aggregates = True

    def local_time(self, column: exp.Expr, request: SourceRequest, params: Params,
                   span: tuple[datetime, datetime] | None) -> exp.Expr:
        # CAST to TIMESTAMPTZ reads naive values in the session zone (set by setup()), and
        # timezone() then renders the instant as local wall time: naive stays, aware converts.
        return call("timezone", bind(params, request.timezone), cast(column, "timestamptz"))

    def typed_local_time(self, column: exp.Expr, kind: str, request: SourceRequest,
                         params: Params) -> exp.Expr | None:
        if kind == "date":  # every period_start() expression reads a DATE as it is
            return column
        if kind == "instant":  # converted once per row kept, the only conversion there is
            return call("timezone", bind(params, request.timezone), column)
        return super().typed_local_time(column, kind, request, params)

    def first_last(self, value: exp.Expr, t: exp.Expr, condition: exp.Expr,
                   which: str) -> exp.Expr:
        from sqlglot import exp

        usable = and_(condition, is_null(value.copy(), negate=True))
        func = "arg_min" if which == "first" else "arg_max"
        return exp.Filter(this=call(func, value, t), expression=exp.Where(this=usable))

    def setup(self, timezone: str) -> list[str]:
        return [f"SET TimeZone = {_string_literal(timezone)}"]

    def raw_time(self, column: exp.Expr, type_name: str) -> exp.Expr:
        # Text times (a CSV column with one unreadable value is typed VARCHAR) are read with
        # TRY_CAST, so an unreadable value becomes a row left out and counted, not a failed run.
        # Typed columns keep the bare column, which the Parquet reader can filter on.
        from sqlglot import exp

        if is_text_type(type_name):
            return exp.TryCast(this=column, to=exp.DataType.build("timestamptz"))
        return column


class PostgresDialect(Dialect):
    """PostgreSQL: the session ``TimeZone`` and ``AT TIME ZONE``, case-sensitive quoted names."""

    day_rollup = True
    ordered_aggregates = True
    name = "postgresql"
    glot = "postgres"
    case_sensitive_names = True

    def local_time(self, column: exp.Expr, request: SourceRequest, params: Params,
                   span: tuple[datetime, datetime] | None) -> exp.Expr:
        # Same idea as DuckDB: the session TimeZone (set_config in setup) reads naive values as
        # local; AT TIME ZONE turns the instant back into local wall time.
        return self._at_zone(cast(column, "timestamptz"), request, params)

    def typed_local_time(self, column: exp.Expr, kind: str, request: SourceRequest,
                         params: Params) -> exp.Expr | None:
        if kind == "instant":
            return self._at_zone(column, request, params)
        return super().typed_local_time(column, kind, request, params)

    @staticmethod
    def _at_zone(value: exp.Expr, request: SourceRequest, params: Params) -> exp.Expr:
        from sqlglot import exp

        return paren(exp.AtTimeZone(this=value, zone=bind(params, request.timezone)))

    def first_last(self, value: exp.Expr, t: exp.Expr, condition: exp.Expr,
                   which: str) -> exp.Expr:
        # (array_agg(v ORDER BY t) FILTER (WHERE ...))[1]: PostgreSQL has no arg_min
        from sqlglot import exp

        usable = and_(condition, is_null(value.copy(), negate=True))
        ordered = exp.Order(this=value, expressions=[self.ordered(t, which == "last")])
        picked = exp.Filter(this=exp.ArrayAgg(this=ordered), expression=exp.Where(this=usable))
        return exp.Bracket(this=paren(picked), expressions=[exp.Literal.number(1)], offset=1)

    def setup(self, timezone: str) -> list[str]:
        return [f"SELECT set_config('TimeZone', {_string_literal(timezone)}, false)"]


def _string_literal(text: str) -> str:
    # Only used where the engine cannot bind a parameter (SET); the zone name was validated.
    zone(text)
    return "'" + text.replace("'", "''") + "'"

