"""SQL dialects of the built-in sources: quoting, bound parameters, local time, period starts.

Column, dimension, time and table names are always quoted identifiers; filter values, time
bounds and file paths are bound parameters (:class:`Params`).

Time zones. Every dialect turns the time column into a naive *local* timestamp of the project
time zone: a naive value is taken as already local, an aware one (``...Z``, ``+02:00``,
``TIMESTAMPTZ``) is converted. DuckDB and PostgreSQL do this with the session time zone plus
``AT TIME ZONE``; SQLite has no time-zone database, so the conversion is a ``CASE`` over the
UTC-offset changes of the zone in the queried span, computed in Python from ``zoneinfo``.

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
from datetime import date, datetime, time, timedelta, timezone
from typing import Any

from kpiforge.errors import SourceError
from kpiforge.sources import SourceRequest, utc_offset_changes, zone

from ._checks import is_text_type

__all__ = [
    "Dialect",
    "DuckDBDialect",
    "Params",
    "PostgresDialect",
    "SqliteDialect",
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
    """SQL differences between engines: local time, period starts, first/last, types."""

    name = "ansi"
    param_style = "colon"
    text_type = "VARCHAR"
    float_type = "DOUBLE PRECISION"
    window_first_last = False  # True: first/last via a window function (no arg_min in SQL)
    # True: a row's filter flag is a boolean column (NULL counts as false), read as it is;
    # False: 1/0, compared with 1 (engines with no boolean values: SQL Server, Oracle)
    boolean_flags = False

    def local_time(self, column: str, request: SourceRequest, params: Params,
                   span: tuple[datetime, datetime] | None) -> str:
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

    def typed_local_time(self, column: str, kind: str, request: SourceRequest,
                         params: Params) -> str | None:
        """The local time of a column of :meth:`time_kind` ``kind``; None: use :meth:`local_time`."""
        if kind == "local":
            return column  # already local wall time: nothing to convert
        if kind == "date":
            return f"CAST({column} AS TIMESTAMP)"
        return None

    def typed_range(self, column: str, kind: str, start: date, end: date,
                    params: Params) -> str | None:
        """The range filter on a column of :meth:`time_kind` ``kind``, from local day ``start`` to
        ``end``; None: use :meth:`raw_range`. A local column compared with local bounds is
        exact in every zone (no instant is involved), and the bare column with constant bounds
        is what Parquet statistics and indexes can use."""
        if kind == "date":
            low, high = (f"CAST({params.add(d)} AS DATE)" for d in (start, end))
        elif kind == "local":
            low, high = (f"CAST({params.add(datetime.combine(d, time()))} AS TIMESTAMP)"
                         for d in (start, end))
        else:
            return None
        return f"({column} >= {low} AND {column} < {high})"

    def period_start(self, t: str, grain: str, week_start: int) -> str:
        if grain == "day":
            return f"CAST({t} AS DATE)"
        if grain == "week":
            return (f"(CAST({t} AS DATE) - CAST((CAST(EXTRACT(ISODOW FROM {t}) AS INTEGER) + "
                    f"{6 - week_start}) % 7 AS INTEGER))")
        return f"CAST(date_trunc('{grain}', {t}) AS DATE)"

    def time_bound(self, t: str, op: str, value: datetime, params: Params) -> str:
        return f"{t} {op} CAST({params.add(value)} AS TIMESTAMP)"

    def raw_range(self, column: str, start: date, end: date, low: datetime, high: datetime,
                  params: Params) -> str:
        """The raw ``column`` from the start of local day ``start`` to the start of ``end``
        (``low`` and ``high``: those starts as aware UTC instants, computed with zoneinfo).
        Must not convert the column to local time."""
        # The session zone (setup()) reads naive values and DATEs as local, so one comparison of
        # instants covers every type; on a TIMESTAMPTZ column the CAST is a no-op, which keeps
        # the filter usable by Parquet statistics and indexes. The bounds are local midnights
        # read the same way, by the database: its zone data then decides both the bounds and
        # the periods, even where it disagrees with Python's. It is constant-folded.
        value = f"CAST({column} AS TIMESTAMPTZ)"
        low_sql, high_sql = (f"CAST(CAST({params.add(datetime.combine(d, time()))} AS TIMESTAMP) "
                             f"AS TIMESTAMPTZ)" for d in (start, end))
        return f"({value} >= {low_sql} AND {value} < {high_sql})"

    def first_last(self, value: str, t: str, condition: str, which: str) -> str:
        raise NotImplementedError

    def setup(self, timezone: str) -> list[str]:
        """Statements to run on the connection before the query."""
        return []

    case_sensitive_names = False  # how the engine resolves quoted identifiers

    def raw_time(self, column: str, type_name: str) -> str:
        """The raw time value of the quoted ``column`` of type ``type_name`` ("" if unknown)."""
        return column

    def time_missing(self, raw: str) -> str:
        """A row condition: the time ``raw`` gives no instant (the row fits no period)."""
        return f"{raw} IS NULL"

    def render(self, sql: str, raw: tuple[str, ...] = ()) -> str:
        """The query built by ``_sql`` as this engine's SQL. DuckDB's, PostgreSQL's and SQLite's
        is the built text itself; the other engines' is rendered by sqlglot (``_glot``).
        ``raw``: project-owner SQL inside it, to keep as written."""
        return sql


class DuckDBDialect(Dialect):
    """DuckDB: ``$p`` parameters, the session ``TimeZone``, ``arg_min``/``arg_max`` for first/last."""

    name = "duckdb"
    param_style = "dollar"
    float_type = "DOUBLE"
    boolean_flags = True

    def local_time(self, column: str, request: SourceRequest, params: Params,
                   span: tuple[datetime, datetime] | None) -> str:
        # CAST to TIMESTAMPTZ reads naive values in the session zone (set by setup()), and
        # timezone() then renders the instant as local wall time: naive stays, aware converts.
        return f"timezone({params.add(request.timezone)}, CAST({column} AS TIMESTAMPTZ))"

    def typed_local_time(self, column: str, kind: str, request: SourceRequest,
                         params: Params) -> str | None:
        if kind == "date":  # every period_start() expression reads a DATE as it is
            return column
        if kind == "instant":  # converted once per row kept, the only conversion there is
            return f"timezone({params.add(request.timezone)}, {column})"
        return super().typed_local_time(column, kind, request, params)

    def first_last(self, value: str, t: str, condition: str, which: str) -> str:
        func = "arg_min" if which == "first" else "arg_max"
        return f"{func}({value}, {t}) FILTER (WHERE {condition} AND {value} IS NOT NULL)"

    def setup(self, timezone: str) -> list[str]:
        return [f"SET TimeZone = {_string_literal(timezone)}"]

    def raw_time(self, column: str, type_name: str) -> str:
        # Text times (a CSV column with one unreadable value is typed VARCHAR) are read with
        # TRY_CAST, so an unreadable value becomes a row left out and counted, not a failed run.
        # Typed columns keep the bare column, which the Parquet reader can filter on.
        return f"TRY_CAST({column} AS TIMESTAMPTZ)" if is_text_type(type_name) else column


class PostgresDialect(Dialect):
    """PostgreSQL: the session ``TimeZone`` and ``AT TIME ZONE``, case-sensitive quoted names."""

    name = "postgresql"

    def local_time(self, column: str, request: SourceRequest, params: Params,
                   span: tuple[datetime, datetime] | None) -> str:
        # Same idea as DuckDB: the session TimeZone (set_config in setup) reads naive values as
        # local; AT TIME ZONE turns the instant back into local wall time.
        return f"(CAST({column} AS TIMESTAMPTZ) AT TIME ZONE {params.add(request.timezone)})"

    def typed_local_time(self, column: str, kind: str, request: SourceRequest,
                         params: Params) -> str | None:
        if kind == "instant":
            return f"({column} AT TIME ZONE {params.add(request.timezone)})"
        return super().typed_local_time(column, kind, request, params)

    def first_last(self, value: str, t: str, condition: str, which: str) -> str:
        order = "ASC" if which == "first" else "DESC"
        return (f"(array_agg({value} ORDER BY {t} {order}) "
                f"FILTER (WHERE {condition} AND {value} IS NOT NULL))[1]")

    def setup(self, timezone: str) -> list[str]:
        return [f"SELECT set_config('TimeZone', {_string_literal(timezone)}, false)"]

    case_sensitive_names = True


def _aware_text(c: str) -> str:
    return f"({c} LIKE '%Z' OR (substr({c}, -6, 1) IN ('+', '-') AND substr({c}, -3, 1) = ':'))"


class SqliteDialect(Dialect):
    """SQLite: no time-zone data (an offset ``CASE`` over the queried span), text datetimes,
    epoch numbers, window functions for first/last."""

    name = "sqlite"
    text_type = "TEXT"
    float_type = "REAL"
    window_first_last = True

    def local_time(self, column: str, request: SourceRequest, params: Params,
                   span: tuple[datetime, datetime] | None) -> str:
        c = column
        utc_text = f"datetime({c})"
        utc_number = f"datetime({c}, 'unixepoch')"
        return (f"(CASE WHEN typeof({c}) IN ('integer', 'real') THEN "
                f"{self._to_local(utc_number, request.timezone, span, params)} "
                f"WHEN typeof({c}) = 'text' AND {_aware_text(c)} THEN "
                f"{self._to_local(utc_text, request.timezone, span, params)} "
                f"ELSE datetime({c}) END)")

    def raw_range(self, column: str, start: date, end: date, low: datetime, high: datetime,
                  params: Params) -> str:
        # The same three kinds of value as local_time(), each compared without the offset CASE:
        # epoch numbers with epoch bounds, aware text (datetime() gives UTC) with UTC bounds,
        # naive text, already local, with the local midnights.
        c = column

        def text(value: datetime) -> str:
            return params.add(value.strftime("%Y-%m-%d %H:%M:%S"))

        utc_low, utc_high = (v.astimezone(timezone.utc) for v in (low, high))
        local_low, local_high = (datetime.combine(d, time()) for d in (start, end))
        return (f"(CASE WHEN typeof({c}) IN ('integer', 'real') THEN "
                f"{c} >= {params.add(int(low.timestamp()))} AND {c} < {params.add(int(high.timestamp()))} "
                f"WHEN typeof({c}) = 'text' AND {_aware_text(c)} THEN "
                f"datetime({c}) >= {text(utc_low)} AND datetime({c}) < {text(utc_high)} "
                f"ELSE datetime({c}) >= {text(local_low)} AND datetime({c}) < {text(local_high)} END)")

    def time_kind(self, type_name: str) -> str:
        # A declared type does not bind SQLite's values (a DATE column may hold epoch numbers or
        # aware text): every column is read by the general CASE.
        return ""

    def time_missing(self, raw: str) -> str:
        # numbers are epoch seconds, always readable; text datetime() cannot read gives NULL
        return f"(typeof({raw}) NOT IN ('integer', 'real') AND datetime({raw}) IS NULL)"

    @staticmethod
    def _to_local(utc: str, tz: str, span: tuple[datetime, datetime] | None, params: Params) -> str:
        if span is None:  # no rows at all: any constant offset gives the same (empty) answer
            span = (datetime(2000, 1, 1), datetime(2000, 1, 2))
        first, last = span
        initial, changes = utc_offset_changes(tz, first - timedelta(days=2), last + timedelta(days=2))
        if not changes:
            return f"datetime({utc}, {params.add(_modifier(initial))})"
        branches = []
        current = initial
        for instant, offset in changes:
            branches.append(f"WHEN {utc} < {params.add(instant.strftime('%Y-%m-%d %H:%M:%S'))} "
                            f"THEN {params.add(_modifier(current))}")
            current = offset
        return f"datetime({utc}, CASE {' '.join(branches)} ELSE {params.add(_modifier(current))} END)"

    def period_start(self, t: str, grain: str, week_start: int) -> str:
        if grain == "day":
            return f"date({t})"
        if grain == "week":
            # strftime('%w'): 0 = Sunday .. 6 = Saturday
            return (f"date({t}, '-' || ((CAST(strftime('%w', {t}) AS INTEGER) + {13 - week_start}) % 7)"
                    f" || ' days')")
        if grain == "month":
            return f"strftime('%Y-%m-01', {t})"
        if grain == "quarter":
            return (f"printf('%s-%02d-01', strftime('%Y', {t}), "
                    f"((CAST(strftime('%m', {t}) AS INTEGER) - 1) / 3) * 3 + 1)")
        return f"strftime('%Y-01-01', {t})"

    def time_bound(self, t: str, op: str, value: datetime, params: Params) -> str:
        # datetime() renders 'YYYY-MM-DD HH:MM:SS', so text comparison is chronological
        return f"{t} {op} {params.add(value.strftime('%Y-%m-%d %H:%M:%S'))}"

    def first_last(self, value: str, t: str, condition: str, which: str) -> str:  # pragma: no cover
        raise NotImplementedError("SQLite uses window functions for first/last")


def _modifier(offset: timedelta) -> str:
    seconds = int(offset.total_seconds())
    return f"{'+' if seconds >= 0 else '-'}{abs(seconds)} seconds"


def _string_literal(text: str) -> str:
    # Only used where the engine cannot bind a parameter (SET); the zone name was validated.
    zone(text)
    return "'" + text.replace("'", "''") + "'"
