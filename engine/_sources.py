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
from ._source_checks import is_text_type
from .errors import SourceError, did_you_mean

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
    "dbapi_columns",
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
    # data problems that did not stop the fetch ("3 rows of data/ads.csv have no date ...")
    warnings: tuple[str, ...] = ()

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
                     week_start: int = 0, warnings: Sequence[str] = ()) -> "SourceFrame":
        """Build a frame from raw query columns: period starts (dates, datetimes, datetime64,
        ISO text), dimension values of any type, numbers with None/NULL."""
        return cls(
            period_labels(periods, grain, week_start),
            {name: text_column(values) for name, values in dims.items()},
            {name: float_column(values) for name, values in inputs.items()},
            tuple(warnings),
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

    case_sensitive_names = False  # how the engine resolves quoted identifiers

    def raw_time(self, column: str, type_name: str) -> str:
        """The raw time value of the quoted ``column`` of type ``type_name`` ("" if unknown)."""
        return column

    def time_missing(self, raw: str) -> str:
        """A row condition: the time ``raw`` gives no instant (the row fits no period)."""
        return f"{raw} IS NULL"


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

    def raw_time(self, column: str, type_name: str) -> str:
        # Text times (a CSV column with one unreadable value is typed VARCHAR) are read with
        # TRY_CAST, so an unreadable value becomes a row left out and counted, not a failed run.
        # Typed columns keep the bare column, which the Parquet reader can filter on.
        return f"TRY_CAST({column} AS TIMESTAMPTZ)" if is_text_type(type_name) else column


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

    case_sensitive_names = True


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


def _time_filter(column: str, request: SourceRequest, dialect: Dialect,
                 params: Params) -> tuple[str | None, bool]:
    """The WHERE on the raw time value ``column`` (SQL) for ``request.ranges`` (None: all time)
    and whether it is exact (see :func:`day_start`)."""
    if not request.ranges:
        return None, True
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
                      where: str | None = None, time_sql: str | None = None) -> str:
    """Layer 1: local time, dimensions as text, input values and filter flags, per row kept
    by ``where`` (a condition on the raw columns). ``time_sql`` is the raw time value (default:
    the quoted ``time_column``)."""
    raw_time = time_sql or quote_identifier(time_column)
    columns = [f"{dialect.local_time(raw_time, request, params, span)} AS __t"]
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
                          params: Params | None = None, time_sql: str | None = None,
                          missing_sql: str | None = None) -> tuple[str, dict[str, Any], list[str]]:
    """The ONE aggregate query of a request: ``(sql, params, input names in column order)``.

    Result columns: ``__p`` (period start), ``__d0..`` (dimensions as text), ``__i0..``
    (inputs as floats). ``relation`` is a FROM item (quoted table, ``(query)``, table function);
    pass the ``params`` it bound its own parameters into, if any. The time range is applied to
    the relation's rows (a ``query:``'s result, not what the query reads). ``time_sql`` is the
    raw time value (default: the quoted column).

    With ``missing_sql`` (a condition on a raw row: its time is NULL or unreadable), those rows
    are kept by the same scan and end in groups whose ``__p`` is NULL, with their row count in
    the extra column ``__n``: the caller counts and drops them, without a second query.
    """
    params = params or Params(dialect.param_style)
    specs = list(request.inputs.values())
    dims = list(request.dims)
    plan = _Plan.of(specs)
    raw_time = time_sql or quote_identifier(time_column)
    raw_where, exact = _time_filter(raw_time, request, dialect, params)
    kept = raw_where
    if missing_sql is not None and raw_where is not None:
        kept = f"({raw_where} OR {missing_sql})"
    rows = relation_rows_sql(relation, time_column, request, dialect, params, span, dims, plan,
                             kept, time_sql)

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
                       params: Params | None = None, time_sql: str | None = None
                       ) -> tuple[str, dict[str, Any]]:
    params = params or Params(dialect.param_style)
    rows = relation_rows_sql(relation, time_column, request, dialect, params, span,
                             time_sql=time_sql)
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
    """Base of the SQL-backed sources: subclasses give a dialect, a FROM item and ``_session``.

    ``_session(setup)`` is a context manager yielding an object with ``query(sql, params)``
    (``{column: sequence}``) and ``describe(relation, params)`` (``{column: type}``; ``""``
    where the engine has no types), optionally ``text_example(relation, params, column)`` and
    ``tables()``. Everything else is shared: the columns the request names are checked against
    the described relation before the one aggregate query runs, that query counts the rows whose
    time is missing in the same scan, and engine errors are translated at the boundary.
    """

    dialect: Dialect = Dialect()
    kind = "sql"
    decimal_hint = ""  # the reader option that reads decimal commas, where there is one

    def __init__(self, name: str, settings: Mapping[str, Any]):
        self.name = name
        self.time = require_setting(name, settings, "time")
        if not isinstance(self.time, str):
            raise SourceError(f"source '{name}': 'time' must be a column name")
        self.dimensions = tuple(settings.get("dimensions") or ())
        self.inputs = source_inputs(name, settings)
        self._described: dict[str, str] | None = None

    # -- to implement ------------------------------------------------------------------------
    def relation(self, params: Params) -> str:
        raise NotImplementedError

    def _session(self, setup: Sequence[str]) -> Any:
        raise NotImplementedError

    @property
    def where(self) -> str:
        """What messages call the data read (``data/ads.csv``, ``table 'orders' of shop.db``)."""
        return f"source '{self.name}'"

    def _span(self, request: SourceRequest) -> tuple[datetime, datetime] | None:
        """Naive bounds of the queried time span; only dialects without tz data need it."""
        return None

    # -- shared ------------------------------------------------------------------------------
    def _query(self, sql: str, params: Mapping[str, Any], setup: Sequence[str]) -> dict[str, Any]:
        """One statement in a session of its own."""
        with self._session(setup) as session:
            return session.query(sql, params)

    def _fail(self, exc: BaseException, doing: str, sql: str | None = None,
              params: Mapping[str, Any] | None = None) -> SourceError:
        from ._source_checks import translate

        original = self._redact(f"{type(exc).__name__}: {exc}")
        debug = original if sql is None else f"{self._redact(sql)}\nparameters: {params!r}\n{original}"
        error = translate(exc, name=self.name, where=self.where, doing=doing,
                          decimal_hint=self.decimal_hint, debug=debug)
        return SourceError(_shorten(self._redact(str(error)), 800), field=error.field,
                           debug=error.debug)

    def _redact(self, message: str) -> str:
        return message

    def _describe(self, session: Any) -> dict[str, str]:
        if self._described is None:
            self._check_table(session)
            params = Params(self.dialect.param_style)
            relation = self.relation(params)
            self._described = dict(session.describe(relation, params.values))
        return self._described

    table_name: str | None = None  # a table: setting, checked against the database's tables
    database: str = ""  # what messages call the database

    def _check_table(self, session: Any) -> None:
        listing = getattr(session, "tables", None)
        table = self.table_name
        if table is None or listing is None:
            return
        tables = listing()
        plain = {t.lower() for t in tables}
        if table not in tables and (self.dialect.case_sensitive_names or table.lower() not in plain):
            shown = ", ".join(tables[:20]) or "none"
            raise SourceError(f"source '{self.name}': table '{table}' is not in {self.database}"
                              f"{did_you_mean(table, tables)}; its tables: {shown}", field=("table",))

    def _check(self, session: Any, request: SourceRequest, described: Mapping[str, str]) -> None:
        from ._source_checks import check_columns

        def example(column: str) -> str | None:
            sample = getattr(session, "text_example", None)
            if sample is None:
                return None
            params = Params(self.dialect.param_style)
            try:
                return sample(self.relation(params), params.values, column)
            except Exception:  # only decorates a message that is raised anyway
                return None

        check_columns(self.name, self.where, described, request, self.time,
                      case_sensitive=self.dialect.case_sensitive_names, text_example=example,
                      decimal_hint=self.decimal_hint)

    def _time_type(self, described: Mapping[str, str]) -> str:
        wanted = self.time if self.dialect.case_sensitive_names else self.time.lower()
        for column, type_name in described.items():
            if (column if self.dialect.case_sensitive_names else column.lower()) == wanted:
                return type_name
        return ""

    def _run(self, request: SourceRequest, build: Callable[[Mapping[str, str]], tuple[str, Mapping[str, Any]]],
             ) -> dict[str, Any]:
        """Describe and check, then run the query ``build(described)`` makes, in one session."""
        setup = self.dialect.setup(request.timezone)
        doing, sql, params = "opening", None, None
        try:
            with self._session(setup) as session:
                doing = "reading the columns"
                described = self._describe(session)
                try:
                    self._check(session, request, described)
                except SourceError as exc:
                    if exc.debug is None:  # --debug: what was found, and what would have run
                        would_run, values = build(described)
                        exc.debug = (f"columns: {described}\nthe query that would run:\n"
                                     f"{self._redact(would_run)}\nparameters: {values!r}")
                    raise
                doing = "the query"
                sql, params = build(described)
                return session.query(sql, params)
        except SourceError:
            raise
        except Exception as exc:  # the engine's own exceptions, translated at the boundary
            raise self._fail(exc, doing, sql, params) from exc

    def fetch(self, request: SourceRequest) -> SourceFrame:
        unknown = [d for d in request.dims if d not in self.dimensions]
        if unknown:
            raise SourceError(f"source '{self.name}' cannot be split by {', '.join(unknown)}")
        span = self._span(request)
        names: list[str] = []
        time_kind: list[str] = []

        def build(described: Mapping[str, str]) -> tuple[str, Mapping[str, Any]]:
            time_type = self._time_type(described)
            time_kind.append(time_type)
            sql, values, input_names = self._build(request, span, time_type)
            names.extend(input_names)
            return sql, values

        columns = self._run(request, build)
        columns, left_out = _drop_missing_times(columns)
        warnings = ()
        if left_out:
            typed = time_kind and time_kind[0] and not is_text_type(time_kind[0])
            what = f"no {self.time}" if typed else f"an empty or unreadable {self.time}"
            rows = f"{left_out} row{'s' if left_out != 1 else ''}"
            verb = ("has", "was") if left_out == 1 else ("have", "were")
            warnings = (f"source '{self.name}': {rows} of {self.where} {verb[0]} {what} and "
                        f"{verb[1]} left out",)
        return SourceFrame.from_columns(
            columns["__p"],
            {dim: columns[f"__d{i}"] for i, dim in enumerate(request.dims)},
            {name: columns[f"__i{i}"] for i, name in enumerate(names)},
            grain=request.grain, week_start=request.week_start, warnings=warnings)

    def _build(self, request: SourceRequest, span: tuple[datetime, datetime] | None,
               time_type: str = "") -> tuple[str, dict[str, Any], list[str]]:
        """The aggregate query of ``request`` (``time_type``: the time column's type)."""
        params = Params(self.dialect.param_style)  # the relation binds first (file paths)
        relation = self.relation(params)
        raw = self.dialect.raw_time(quote_identifier(self.time), time_type)
        return build_aggregate_query(relation, self.time, request, self.dialect, span=span,
                                     params=params, time_sql=raw,
                                     missing_sql=self.dialect.time_missing(raw))

    def latest(self, request: SourceRequest) -> datetime | None:
        """Local time of the newest row (for "the latest period with data")."""
        span = self._span(request)
        bare = SourceRequest(request.grain, request.timezone, request.week_start)

        def build(described: Mapping[str, str]) -> tuple[str, Mapping[str, Any]]:
            params = Params(self.dialect.param_style)
            relation = self.relation(params)
            raw = self.dialect.raw_time(quote_identifier(self.time), self._time_type(described))
            return build_latest_query(relation, self.time, request, self.dialect, span=span,
                                      params=params, time_sql=raw)

        columns = self._run(bare, build)
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


def _drop_missing_times(columns: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """Rows of groups without a period (their time was missing) removed, and how many rows
    of data they held (``__n``)."""
    periods = columns["__p"]
    if np.ma.isMaskedArray(periods):
        missing = np.ma.getmaskarray(periods)
    else:
        missing = np.array([v is None for v in periods], dtype=bool)
    if not missing.any():
        return columns, 0
    counts = columns.get("__n")
    left_out = int(round(float(np.nansum(np.asarray(float_column(counts))[missing])))) if counts is not None else 0
    keep = ~missing
    kept: dict[str, Any] = {}
    for name, values in columns.items():
        if isinstance(values, np.ndarray):
            kept[name] = values[keep]
        else:
            kept[name] = [v for v, k in zip(values, keep.tolist()) if k]
    return kept, left_out


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


Factory = Callable[[str, Mapping[str, Any], Any], Source]


def dbapi_columns(cursor: Any) -> dict[str, list[Any]]:
    """A DB-API cursor's result as ``{column: list}`` (aggregated rows only, never raw data)."""
    rows = cursor.fetchall()
    names = [d[0] for d in cursor.description]
    columns: dict[str, list[Any]] = {name: [] for name in names}
    if rows:
        for name, values in zip(names, zip(*rows)):
            columns[name] = list(values)
    return columns
