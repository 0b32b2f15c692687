"""The data-source contract and the SQL builder every built-in source shares.

A source turns a :class:`SourceRequest` (time ranges, grain, time zone, week start, dimensions,
inputs) into a :class:`SourceFrame`: one row per (period, slice) with one float column per
input. Aggregation is pushed down: a SQL source runs ONE ``GROUP BY`` query per request and
Python only ever sees the aggregated columns, as numpy arrays.

SQL safety. Column, dimension, time and table names are always quoted identifiers; filter
values, time bounds and file paths are bound parameters. ``expression:`` (an input) and
``query:`` (a source) are SQL written by the project owner and are inserted as written: they
are as trusted as the project file itself, which is why the project file never holds secrets
(``${VAR}`` expands environment variables in settings instead).

Time zones. Every dialect turns the time column into a naive *local* timestamp of the project
time zone: a naive value is taken as already local, an aware one (``...Z``, ``+02:00``,
``TIMESTAMPTZ``) is converted. DuckDB and PostgreSQL do this with the session time zone plus
``AT TIME ZONE``; SQLite has no time-zone database, so the conversion is a ``CASE`` over the
UTC-offset changes of the zone in the queried span, computed in Python from ``zoneinfo``.

The time range is NOT filtered on that local time: converting every row before filtering is
most of the cost of a query over a large file, and it hides the filter from the reader (no
Parquet row-group skipping, no index). The raw column is compared, as an instant, with the
instants at which the range's local days start: ``CAST(ts AS TIMESTAMPTZ) >= CAST(CAST($p AS
TIMESTAMP) AS TIMESTAMPTZ)`` with ``$p`` a local midnight, read in the session zone like any
naive value (DuckDB, PostgreSQL); SQLite compares epoch numbers, UTC text and naive text each
with its own bound, from :func:`day_start`. Only the rows kept are converted, for their period.
This is exact whenever the local date never goes backwards across a bound, i.e. for every zone
except a few 19th-century ones: there :func:`day_start` says so and the local filter is added
back.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from types import MappingProxyType
from typing import Any, Callable, Iterable, Mapping, Protocol, Sequence, runtime_checkable

import numpy as np

from ._periods import GRAINS, period_of, utc_offset_changes, zone
from .errors import SourceError

__all__ = [
    "AGGREGATIONS",
    "Dialect",
    "DuckDBDialect",
    "InputSpec",
    "PostgresDialect",
    "Source",
    "SourceFrame",
    "SourceRequest",
    "SqlSource",
    "SqliteDialect",
    "build_aggregate_query",
    "day_start",
    "quote_identifier",
]

AGGREGATIONS: tuple[str, ...] = ("sum", "count", "count_distinct", "min", "max", "avg", "first", "last")
_EMPTY: Mapping[str, Any] = MappingProxyType({})


# --------------------------------------------------------------------------- request / frame

@dataclass(frozen=True, slots=True)
class InputSpec:
    """How a source computes one input: a column or a SQL expression, an aggregation, a filter.

    ``column="*"`` with ``agg="count"`` counts rows. ``filter`` maps a column to a value or a
    list of values (``None`` matches NULL); only matching rows enter the aggregate.
    """

    name: str
    agg: str
    column: str | None = None
    expression: str | None = None
    filter: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)

    def __post_init__(self) -> None:
        if self.agg not in AGGREGATIONS:
            raise SourceError(f"input '{self.name}': unknown aggregation {self.agg!r}; "
                              f"use one of {', '.join(AGGREGATIONS)}")
        if self.column is not None and self.expression is not None:
            raise SourceError(f"input '{self.name}': set 'column' or 'expression', not both")
        if self.column == "*" and self.agg != "count":
            raise SourceError(f"input '{self.name}': column '*' only works with agg: count")

    @classmethod
    def from_settings(cls, name: str, settings: Mapping[str, Any]) -> "InputSpec":
        expression = settings.get("expression")
        column = settings.get("column")
        if column is None and expression is None:
            column = name  # the documented default: the column named like the input
        raw_filter = settings.get("filter") or {}
        if not isinstance(raw_filter, Mapping):
            raise SourceError(f"input '{name}': 'filter' must be a mapping of column to value(s)")
        filters = {}
        for key, value in raw_filter.items():
            if isinstance(value, (list, tuple)):
                if not value:
                    raise SourceError(f"input '{name}': filter on '{key}' lists no value")
                value = tuple(value)
            filters[str(key)] = value
        return cls(name, str(settings.get("agg", "")), column, expression,
                   MappingProxyType(filters))


@dataclass(frozen=True, slots=True)
class SourceRequest:
    """What the run asks a source for.

    ``ranges`` are ``[start, end)`` pairs of local days (end exclusive); an empty tuple means
    all time. ``week_start`` is 0 (Monday, ISO) to 6 (Sunday). ``dims`` are the dimensions to
    group by, in order; ``inputs`` the inputs to aggregate, by name.
    """

    grain: str
    timezone: str = "UTC"
    week_start: int = 0
    ranges: tuple[tuple[date, date], ...] = ()
    dims: tuple[str, ...] = ()
    inputs: Mapping[str, InputSpec] = field(default_factory=lambda: _EMPTY)

    def __post_init__(self) -> None:
        if self.grain not in GRAINS:
            raise SourceError(f"unknown grain {self.grain!r}")
        for start, end in self.ranges:
            if end <= start:
                raise SourceError(f"empty time range {start} .. {end}")

    @property
    def start(self) -> date | None:
        return min(r[0] for r in self.ranges) if self.ranges else None

    @property
    def end(self) -> date | None:
        return max(r[1] for r in self.ranges) if self.ranges else None


@dataclass(frozen=True)
class SourceFrame:
    """Aggregated data: ``periods`` holds period labels, one entry per row; ``dims`` one text
    array per requested dimension (None for NULL); ``inputs`` one float64 array per input
    (NaN for NULL). Every array has the same length."""

    periods: np.ndarray
    dims: Mapping[str, np.ndarray] = field(default_factory=dict)
    inputs: Mapping[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.periods)
        for kind, table in (("dimension", self.dims), ("input", self.inputs)):
            for name, values in table.items():
                if len(values) != n:
                    raise SourceError(f"{kind} '{name}' has {len(values)} rows but there are {n} periods")

    def __len__(self) -> int:
        return len(self.periods)

    @classmethod
    def from_columns(cls, periods: Iterable[Any], dims: Mapping[str, Iterable[Any]],
                     inputs: Mapping[str, Iterable[Any]], *, grain: str,
                     week_start: int = 0) -> "SourceFrame":
        """Build a frame from raw query columns: period starts (dates, datetimes, datetime64,
        ISO text), dimension values of any type, numbers with None/NULL."""
        return cls(
            period_labels(periods, grain, week_start),
            {name: text_column(values) for name, values in dims.items()},
            {name: float_column(values) for name, values in inputs.items()},
        )


def _as_date(value: Any) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, np.datetime64):
        return value.astype("datetime64[D]").item()
    if isinstance(value, str):
        return date.fromisoformat(value[:10])
    raise SourceError(f"cannot read a period start from {value!r}")


def period_labels(values: Iterable[Any], grain: str, week_start: int = 0) -> np.ndarray:
    """Labels of the periods that start on (or hold) each value; few distinct values, so the
    label of each distinct value is computed once."""
    if np.ma.isMaskedArray(values) and np.ma.getmaskarray(values).any():
        raise SourceError("a period start is NULL")
    array = np.asarray(values if isinstance(values, np.ndarray) else list(values))
    if array.size == 0:
        return np.empty(0, dtype=object)
    if np.issubdtype(array.dtype, np.datetime64):
        array = array.astype("datetime64[D]")
    uniques, inverse = np.unique(array, return_inverse=True)
    labels = np.array([period_of(_as_date(u), grain, week_start).label for u in uniques.tolist()],
                      dtype=object)
    return labels[inverse.reshape(-1)]


def text_column(values: Iterable[Any]) -> np.ndarray:
    if np.ma.isMaskedArray(values):
        mask = np.ma.getmaskarray(values)
        data = np.asarray(np.ma.getdata(values), dtype=object)
        items = [None if m else v for v, m in zip(data.tolist(), mask.tolist())]
    else:
        items = values.tolist() if isinstance(values, np.ndarray) else list(values)
    out = np.empty(len(items), dtype=object)
    out[:] = [_text(v) for v in items]
    return out


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    return value if isinstance(value, str) else str(value)


def float_column(values: Iterable[Any]) -> np.ndarray:
    if np.ma.isMaskedArray(values):
        return np.ma.filled(values.astype(np.float64), np.nan)
    if isinstance(values, np.ndarray) and values.dtype != object:
        return values.astype(np.float64)
    items = values.tolist() if isinstance(values, np.ndarray) else list(values)
    return np.array([np.nan if v is None else float(v) for v in items], dtype=np.float64)


@runtime_checkable
class Source(Protocol):
    """What a source-type factory returns. ``latest(request)`` (optional) gives the local time
    of the newest row, so the run can default to the latest period with data."""

    def fetch(self, request: SourceRequest) -> SourceFrame: ...


# --------------------------------------------------------------------------- SQL dialects

def quote_identifier(name: str) -> str:
    """A double-quoted SQL identifier (DuckDB, PostgreSQL, SQLite, ANSI)."""
    if not isinstance(name, str) or not name or "\x00" in name:
        raise SourceError(f"invalid identifier {name!r}")
    return '"' + name.replace('"', '""') + '"'


def quote_qualified(name: str) -> str:
    """``schema.table`` -> ``"schema"."table"``: each dotted part quoted on its own."""
    return ".".join(quote_identifier(part) for part in name.split("."))


class Params:
    """Collects bound parameters and hands out their placeholders."""

    def __init__(self, style: str):
        self.style = style  # "dollar" ($p0, DuckDB) or "colon" (:p0, sqlite3 and SQLAlchemy)
        self.values: dict[str, Any] = {}

    def add(self, value: Any) -> str:
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

    def local_time(self, column: str, request: SourceRequest, params: Params,
                   span: tuple[datetime, datetime] | None) -> str:
        raise NotImplementedError

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


class DuckDBDialect(Dialect):
    name = "duckdb"
    param_style = "dollar"
    float_type = "DOUBLE"

    def local_time(self, column: str, request: SourceRequest, params: Params,
                   span: tuple[datetime, datetime] | None) -> str:
        # CAST to TIMESTAMPTZ reads naive values in the session zone (set by setup()), and
        # timezone() then renders the instant as local wall time: naive stays, aware converts.
        return f"timezone({params.add(request.timezone)}, CAST({column} AS TIMESTAMPTZ))"

    def first_last(self, value: str, t: str, condition: str, which: str) -> str:
        func = "arg_min" if which == "first" else "arg_max"
        return f"{func}({value}, {t}) FILTER (WHERE {condition} AND {value} IS NOT NULL)"

    def setup(self, timezone: str) -> list[str]:
        return [f"SET TimeZone = {_string_literal(timezone)}"]


class PostgresDialect(Dialect):
    name = "postgresql"

    def local_time(self, column: str, request: SourceRequest, params: Params,
                   span: tuple[datetime, datetime] | None) -> str:
        # Same idea as DuckDB: the session TimeZone (set_config in setup) reads naive values as
        # local; AT TIME ZONE turns the instant back into local wall time.
        return f"(CAST({column} AS TIMESTAMPTZ) AT TIME ZONE {params.add(request.timezone)})"

    def first_last(self, value: str, t: str, condition: str, which: str) -> str:
        order = "ASC" if which == "first" else "DESC"
        return (f"(array_agg({value} ORDER BY {t} {order}) "
                f"FILTER (WHERE {condition} AND {value} IS NOT NULL))[1]")

    def setup(self, timezone: str) -> list[str]:
        return [f"SELECT set_config('TimeZone', {_string_literal(timezone)}, false)"]


def _aware_text(c: str) -> str:
    return f"({c} LIKE '%Z' OR (substr({c}, -6, 1) IN ('+', '-') AND substr({c}, -3, 1) = ':'))"


class SqliteDialect(Dialect):
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


@functools.lru_cache(maxsize=1024)
def day_start(day: date, tz: str) -> tuple[datetime, bool]:
    """The instant (aware, UTC) at which the local day ``day`` starts in ``tz``, and whether
    comparing instants with it is exactly comparing local dates with ``day``.

    Midnight may not exist (clocks jump from 00:00 to 01:00: the day starts at the jump) or
    exist twice (clocks go back from 00:00 to 23:00: the day starts at the second one); either
    way the day starts at the first instant that reads ``day`` or later and stays there. That
    only fails if the local date goes backwards across ``day`` (Alaska in 1867): then ``exact``
    is False and the caller must filter on local time as well.
    """
    info = zone(tz)
    midnight = datetime.combine(day, time())

    def local(instant: datetime) -> datetime:
        return instant.astimezone(info).replace(tzinfo=None)

    candidates = sorted({midnight.replace(tzinfo=info, fold=fold).astimezone(timezone.utc)
                         for fold in (0, 1)})
    start = next((c for c in candidates if local(c) >= midnight), candidates[-1])
    tick = timedelta(microseconds=1)
    exact = local(start) >= midnight and local(start - tick) < midnight
    # local time only rises between offset changes, so checking both sides of every change
    # near the bound proves the whole line; offsets never move by more than a day
    naive = start.replace(tzinfo=None)
    _, changes = utc_offset_changes(tz, naive - timedelta(days=3), naive + timedelta(days=3))
    for change, _offset in changes:
        at = change.replace(tzinfo=timezone.utc)
        if at <= start:
            exact = exact and local(at - tick) < midnight
        else:
            exact = exact and local(at) >= midnight
    return start, exact


# --------------------------------------------------------------------------- the query builder

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


@dataclass
class _Plan:
    """The distinct work of a request. Inputs that read the same value with the same
    aggregation and filter (``clicks`` and ``visitors`` both counting click rows) share one
    aggregate; values and filter flags are each computed once per row however many inputs use
    them."""

    values: list[str] = field(default_factory=list)  # __v<i>: value SQL per row
    flags: list[Mapping[str, Any]] = field(default_factory=list)  # __c<i>: filter per row
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
            if spec.filter:
                key = tuple(sorted((k, _typed(x)) for k, x in spec.filter.items()))
                f = flags.setdefault(key, len(flags))
                if f == len(plan.flags):
                    plan.flags.append(spec.filter)
            agg = (spec.agg, v, f, spec.column == "*")
            a = aggregates.setdefault(agg, len(aggregates))
            if a == len(plan.aggregates):
                plan.aggregates.append(agg)
            plan.columns.append(a)
        return plan


def _time_filter(time_column: str, request: SourceRequest, dialect: Dialect,
                 params: Params) -> tuple[str | None, bool]:
    """The WHERE on the raw time column for ``request.ranges`` (None: all time) and whether it
    is exact (see :func:`day_start`)."""
    if not request.ranges:
        return None, True
    column = quote_identifier(time_column)
    exact = True
    ranges = []
    for start, end in request.ranges:
        low, low_exact = day_start(start, request.timezone)
        high, high_exact = day_start(end, request.timezone)
        exact = exact and low_exact and high_exact
        ranges.append(dialect.raw_range(column, start, end, low, high, params))
    return "(" + " OR ".join(ranges) + ")", exact


def relation_rows_sql(relation: str, time_column: str, request: SourceRequest, dialect: Dialect,
                      params: Params, span: tuple[datetime, datetime] | None,
                      dims: Sequence[str] = (), plan: _Plan | None = None,
                      where: str | None = None) -> str:
    """Layer 1: local time, dimensions as text, input values and filter flags, per row kept
    by ``where`` (a condition on the raw columns)."""
    columns = [f"{dialect.local_time(quote_identifier(time_column), request, params, span)} AS __t"]
    for i, dim in enumerate(dims):
        columns.append(f"CAST({quote_identifier(dim)} AS {dialect.text_type}) AS __d{i}")
    if plan is not None:
        columns.extend(f"{value} AS __v{i}" for i, value in enumerate(plan.values))
        columns.extend(f"CASE WHEN {_filter_sql(filters, params)} THEN 1 ELSE 0 END AS __c{i}"
                       for i, filters in enumerate(plan.flags))
    sql = f"SELECT {', '.join(columns)} FROM {relation} AS __src"
    return f"{sql} WHERE {where}" if where else sql


def build_aggregate_query(relation: str, time_column: str, request: SourceRequest,
                          dialect: Dialect, *, span: tuple[datetime, datetime] | None = None,
                          params: Params | None = None) -> tuple[str, dict[str, Any], list[str]]:
    """The ONE aggregate query of a request: ``(sql, params, input names in column order)``.

    Result columns: ``__p`` (period start), ``__d0..`` (dimensions as text), ``__i0..``
    (inputs as floats). ``relation`` is a FROM item (quoted table, ``(query)``, table function);
    pass the ``params`` it bound its own parameters into, if any. The time range is applied to
    the relation's rows (a ``query:``'s result, not what the query reads).
    """
    params = params or Params(dialect.param_style)
    specs = list(request.inputs.values())
    dims = list(request.dims)
    plan = _Plan.of(specs)
    raw_where, exact = _time_filter(time_column, request, dialect, params)
    rows = relation_rows_sql(relation, time_column, request, dialect, params, span, dims, plan,
                             raw_where)

    where = []
    if raw_where is None or not exact:
        where.append("__t IS NOT NULL")
    if raw_where is not None and not exact:
        ranges = []
        for start, end in request.ranges:
            low = dialect.time_bound("__t", ">=", datetime.combine(start, time()), params)
            high = dialect.time_bound("__t", "<", datetime.combine(end, time()), params)
            ranges.append(f"({low} AND {high})")
        where.append("(" + " OR ".join(ranges) + ")")
    dim_cols = [f"__d{i}" for i in range(len(dims))]
    periods = (f"SELECT {dialect.period_start('__t', request.grain, request.week_start)} AS __p, "
               f"__rows.* FROM ({rows}) AS __rows")
    if where:
        periods += f" WHERE {' AND '.join(where)}"

    windows = []
    aggregates = []
    for k, (agg, v, f, star) in enumerate(plan.aggregates):
        value = f"__v{v}"
        condition = f"__c{f} = 1" if f is not None else "1 = 1"
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
    grouped = f"SELECT {', '.join(['__p', *dim_cols, *aggregates])} FROM {source} GROUP BY {group}"
    # each input is a copy of its shared aggregate, under the column name fetch() expects
    outputs = [f"__a{k} AS __i{i}" for i, k in enumerate(plan.columns)]
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
                       params: Params | None = None) -> tuple[str, dict[str, Any]]:
    params = params or Params(dialect.param_style)
    rows = relation_rows_sql(relation, time_column, request, dialect, params, span)
    return f"SELECT MAX(__t) AS __latest FROM ({rows}) AS __rows", params.values


# --------------------------------------------------------------------------- a SQL source base

def source_inputs(name: str, settings: Mapping[str, Any]) -> dict[str, InputSpec]:
    raw = settings.get("inputs") or {}
    if not isinstance(raw, Mapping):
        raise SourceError(f"source '{name}': 'inputs' must be a mapping")
    specs = {}
    for input_name, spec in raw.items():
        if isinstance(spec, InputSpec):
            specs[input_name] = spec
            continue
        if not isinstance(spec, Mapping):
            raise SourceError(f"source '{name}': input '{input_name}' must be a mapping")
        try:
            specs[input_name] = InputSpec.from_settings(input_name, spec)
        except SourceError as exc:
            raise SourceError(f"source '{name}': {exc}") from None
    return specs


def require_setting(name: str, settings: Mapping[str, Any], key: str) -> Any:
    value = settings.get(key)
    if value in (None, ""):
        raise SourceError(f"source '{name}': setting '{key}' is required")
    return value


def table_or_query(name: str, settings: Mapping[str, Any]) -> str:
    """The FROM item for a ``table:`` (quoted, ``schema.table`` allowed) or a ``query:``."""
    table, query = settings.get("table"), settings.get("query")
    if (table is None) == (query is None):
        raise SourceError(f"source '{name}': set either 'table' or 'query' (exactly one)")
    if table is not None:
        if not isinstance(table, str):
            raise SourceError(f"source '{name}': 'table' must be text")
        return quote_qualified(table)
    if not isinstance(query, str) or not query.strip():
        raise SourceError(f"source '{name}': 'query' must be a SQL SELECT")
    return f"({query.strip().rstrip(';')})"  # trusted project-owner SQL


class SqlSource:
    """Base of the SQL-backed sources: subclasses give a dialect, a FROM item and ``_query``.

    ``_query(sql, params, setup)`` returns ``{column: sequence}``; everything else (building
    the one aggregate query, turning columns into a :class:`SourceFrame`, translating errors)
    is shared.
    """

    dialect: Dialect = Dialect()
    kind = "sql"

    def __init__(self, name: str, settings: Mapping[str, Any]):
        self.name = name
        self.time = require_setting(name, settings, "time")
        if not isinstance(self.time, str):
            raise SourceError(f"source '{name}': 'time' must be a column name")
        self.dimensions = tuple(settings.get("dimensions") or ())
        self.inputs = source_inputs(name, settings)

    # -- to implement ------------------------------------------------------------------------
    def relation(self, params: Params) -> str:
        raise NotImplementedError

    def _query(self, sql: str, params: Mapping[str, Any], setup: Sequence[str]) -> dict[str, Any]:
        raise NotImplementedError

    def _span(self, request: SourceRequest) -> tuple[datetime, datetime] | None:
        """Naive bounds of the queried time span; only dialects without tz data need it."""
        return None

    # -- shared ------------------------------------------------------------------------------
    def _fail(self, exc: BaseException, doing: str) -> SourceError:
        message = " ".join(str(exc).split()) or type(exc).__name__
        return SourceError(f"source '{self.name}': {doing}: {_shorten(self._redact(message), 500)}")

    def _redact(self, message: str) -> str:
        return message

    def fetch(self, request: SourceRequest) -> SourceFrame:
        unknown = [d for d in request.dims if d not in self.dimensions]
        if unknown:
            raise SourceError(f"source '{self.name}' cannot be split by {', '.join(unknown)}")
        span = self._span(request)
        sql, params, names = self._build(request, span)
        try:
            columns = self._query(sql, params, self.dialect.setup(request.timezone))
        except SourceError:
            raise
        except Exception as exc:  # the engine's own exceptions, translated at the boundary
            raise self._fail(exc, "query failed") from exc
        return SourceFrame.from_columns(
            columns["__p"],
            {dim: columns[f"__d{i}"] for i, dim in enumerate(request.dims)},
            {name: columns[f"__i{i}"] for i, name in enumerate(names)},
            grain=request.grain, week_start=request.week_start)

    def _build(self, request: SourceRequest, span: tuple[datetime, datetime] | None
               ) -> tuple[str, dict[str, Any], list[str]]:
        # the relation may bind parameters (file paths), so it goes first into one Params
        params = Params(self.dialect.param_style)
        relation = self.relation(params)
        return build_aggregate_query(relation, self.time, request, self.dialect, span=span,
                                     params=params)

    def latest(self, request: SourceRequest) -> datetime | None:
        """Local time of the newest row (for "the latest period with data")."""
        span = self._span(request)
        params = Params(self.dialect.param_style)
        relation = self.relation(params)
        sql, values = build_latest_query(relation, self.time, request, self.dialect, span=span,
                                         params=params)
        try:
            columns = self._query(sql, values, self.dialect.setup(request.timezone))
        except SourceError:
            raise
        except Exception as exc:
            raise self._fail(exc, "query failed") from exc
        values = columns["__latest"]
        value = values[0] if len(values) else None
        if np.ma.isMaskedArray(values) and np.ma.getmaskarray(values)[0]:
            return None
        if value is None:
            return None
        if isinstance(value, np.datetime64):
            if np.isnat(value):
                return None
            value = value.astype("datetime64[us]").item()
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        if isinstance(value, date) and not isinstance(value, datetime):
            value = datetime.combine(value, datetime.min.time())
        return value


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


Factory = Callable[[str, Mapping[str, Any], Any], Source]


def duckdb_columns(connection: Any, sql: str, params: Mapping[str, Any],
                   setup: Sequence[str]) -> dict[str, Any]:
    """Run ``setup`` then ``sql`` on a DuckDB connection; the result as numpy columns."""
    for statement in setup:
        connection.execute(statement)
    return connection.execute(sql, dict(params)).fetchnumpy()


def dbapi_columns(cursor: Any) -> dict[str, list[Any]]:
    """A DB-API cursor's result as ``{column: list}`` (aggregated rows only, never raw data)."""
    rows = cursor.fetchall()
    names = [d[0] for d in cursor.description]
    columns: dict[str, list[Any]] = {name: [] for name in names}
    if rows:
        for name, values in zip(names, zip(*rows)):
            columns[name] = list(values)
    return columns
