"""The data-source contract: what a source plugin receives, returns and may reuse.

A source type is registered with ``kpiforge_register_source_types`` (see
:mod:`kpiforge.hookspecs`); its factory returns a :class:`Source`. The run hands that source a
:class:`SourceRequest` (time ranges, grain, time zone, week start, dimensions, the
:class:`InputSpec` of each input) and expects a :class:`SourceFrame` back: one row per
(period, slice) with one float column per input. Aggregation is the source's job, pushed down
to wherever the data lives; Python only ever sees aggregated columns, as numpy arrays.

Helpers for every source: :func:`period_labels`, :func:`text_column` and
:func:`float_column` turn raw result columns into frame columns (``SourceFrame.from_columns``
does all three); :func:`source_inputs` and :func:`require_setting` read settings with the
usual messages; :func:`day_start`, :func:`utc_offset_changes` and :func:`zone` answer the
time-zone questions a source filtering on instants must ask.

A row condition of a measure (``where: "score >= 9"`` in a definition) reaches a source as a
:class:`Condition` on :attr:`InputSpec.where`: render it with :meth:`Condition.sql` (bound
parameters, quoted columns) or evaluate it on numpy columns with :meth:`Condition.evaluate`.

A SQL-backed source reuses the query building of the built-in sources: :class:`SqlSource` (a
base class: give it a dialect, a FROM item and a session), the dialects (:class:`Dialect`,
:class:`DuckDBDialect`, :class:`PostgresDialect`, :class:`SqliteDialect`), :class:`Params`,
:func:`build_aggregate_query`, :func:`build_latest_query`, :func:`quote_identifier`,
:func:`quote_qualified`, :func:`table_or_query`, :func:`dbapi_columns`, and DuckDB's locked-down
:func:`duckdb_session` and :func:`check_select`. They live with the built-in source plugins
(``kpiforge.plugins.sources``) and are imported on first use, so importing this module costs
neither duckdb nor the SQL builders. :class:`QueryCache` remembers a rendered query between runs
(``SqlSource`` uses it, so that a warm run renders nothing and imports no sqlglot).
"""

from __future__ import annotations

import functools
import importlib
import math
import sys
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from types import MappingProxyType
from typing import (TYPE_CHECKING, Any, Iterable, Mapping, Protocol, Sequence, TypeGuard,
                    runtime_checkable)

from ._conditions import Condition
from ._periods import GRAINS, period_of, utc_offset_changes, zone
from ._query_cache import QueryCache
from .errors import SourceError

if TYPE_CHECKING:  # what the lazy names below are, for type checkers
    import numpy as np  # imported where a column is converted
    from .plugins.sources._checks import check_columns, is_text_type, translate
    from .plugins.sources._dialects import (
        Dialect,
        DuckDBDialect,
        Params,
        PostgresDialect,
        quote_identifier,
        quote_qualified,
    )
    from .plugins.sources._sqlite import SqliteDialect
    from .plugins.sources._duckdb import DuckDBSession, check_select, duckdb_session
    from .plugins.sources._sql import build_aggregate_query, build_latest_query, relation_rows_sql
    from .plugins.sources._sqlsource import SqlSource, dbapi_columns, table_or_query

__all__ = [
    "AGGREGATIONS",
    "Condition",
    "Dialect",
    "DuckDBDialect",
    "DuckDBSession",
    "InputSpec",
    "Params",
    "PostgresDialect",
    "QueryCache",
    "Source",
    "SourceFrame",
    "SourceRequest",
    "SqlSource",
    "SqliteDialect",
    "build_aggregate_query",
    "build_latest_query",
    "check_columns",
    "check_select",
    "day_start",
    "dbapi_columns",
    "duckdb_session",
    "float_column",
    "is_masked",
    "is_text_type",
    "period_labels",
    "quote_identifier",
    "quote_qualified",
    "relation_rows_sql",
    "require_setting",
    "source_inputs",
    "table_or_query",
    "text_column",
    "translate",
    "utc_offset_changes",
    "zone",
]

# The SQL toolkit of the built-in sources, by the plugins module that defines it. Imported on
# first access (PEP 562) so that the core stays free of SQL and of duckdb until a source needs them.
_SQL_NAMES: Mapping[str, str] = MappingProxyType({
    **dict.fromkeys(("Dialect", "DuckDBDialect", "Params", "PostgresDialect", "quote_identifier",
                     "quote_qualified"), "_dialects"),
    "SqliteDialect": "_sqlite",
    **dict.fromkeys(("build_aggregate_query", "build_latest_query", "relation_rows_sql"), "_sql"),
    **dict.fromkeys(("SqlSource", "dbapi_columns", "table_or_query"), "_sqlsource"),
    **dict.fromkeys(("DuckDBSession", "check_select", "duckdb_session"), "_duckdb"),
    **dict.fromkeys(("check_columns", "is_text_type", "translate"), "_checks"),
})

AGGREGATIONS: tuple[str, ...] = ("sum", "count", "count_distinct", "min", "max", "avg", "first", "last")
_EMPTY: Mapping[str, Any] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class InputSpec:
    """How a source computes one input: a column or a SQL expression, an aggregation, a filter.

    ``column="*"`` with ``agg="count"`` counts rows. ``filter`` maps a column to a value or a
    list of values (``None`` matches NULL); only matching rows enter the aggregate. ``where``
    is a definition's row condition (a :class:`Condition`, its fields already bound to
    columns): only rows where it is true enter the aggregate, as with ``filter``.
    """

    name: str
    agg: str
    column: str | None = None
    expression: str | None = None
    filter: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)
    where: Condition | None = None

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
        """The spec of input ``name`` as a project writes it (``agg``, ``column`` or
        ``expression``, ``filter``); the column defaults to the input's name."""
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
        """The first day of the earliest range (None: all time)."""
        return min(r[0] for r in self.ranges) if self.ranges else None

    @property
    def end(self) -> date | None:
        """The day after the latest range (None: all time)."""
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
    numpy = sys.modules.get("numpy")  # a numpy value exists only once numpy is imported
    if numpy is not None and isinstance(value, numpy.datetime64):
        return value.astype("datetime64[D]").item()
    if isinstance(value, str):
        return date.fromisoformat(value[:10])
    raise SourceError(f"cannot read a period start from {value!r}")


def is_masked(values: Any) -> TypeGuard[np.ma.MaskedArray[Any, Any]]:
    """Whether ``values`` is a numpy masked array (what DuckDB's ``fetchnumpy`` gives for a
    column with NULLs), without importing ``numpy.ma``: that costs 12 ms, and no array can be
    masked before something imported it."""
    ma = sys.modules.get("numpy.ma")
    return ma is not None and isinstance(values, ma.MaskedArray)


def period_labels(values: Iterable[Any], grain: str, week_start: int = 0) -> np.ndarray:
    """Labels of the periods that start on (or hold) each value; few distinct values, so the
    label of each distinct value is computed once."""
    import numpy as np  # here: registering the source plugins must not import numpy

    if is_masked(values) and np.ma.getmaskarray(values).any():
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
    """A dimension column: an object array of text, ``None`` for NULL, NaN or a masked value."""
    import numpy as np

    if is_masked(values):
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
    """An input column: float64, NaN for NULL (``None`` or a masked value)."""
    import numpy as np

    if is_masked(values):
        return np.ma.filled(values.astype(np.float64), np.nan)
    if isinstance(values, np.ndarray) and values.dtype != object:
        return values.astype(np.float64)
    items = values.tolist() if isinstance(values, np.ndarray) else list(values)
    return np.array([np.nan if v is None else float(v) for v in items], dtype=np.float64)


@runtime_checkable
class Source(Protocol):
    """What a source-type factory returns. ``latest(request)`` (optional) gives the local time
    of the newest row, so the run can default to the latest period with data."""

    def fetch(self, request: SourceRequest) -> SourceFrame:
        """The aggregated data of ``request``; a :class:`~kpiforge.SourceError` for bad data."""
        ...


# --------------------------------------------------------------------------- reading settings

def source_inputs(name: str, settings: Mapping[str, Any]) -> dict[str, InputSpec]:
    """The ``inputs:`` of source ``name`` as :class:`InputSpec` by input name, each problem a
    :class:`~kpiforge.SourceError` naming the source."""
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
    """Setting ``key`` of source ``name``; a :class:`~kpiforge.SourceError` if unset or empty."""
    value = settings.get(key)
    if value in (None, ""):
        raise SourceError(f"source '{name}': setting '{key}' is required")
    return value


# --------------------------------------------------------------------------- time zones

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


# --------------------------------------------------------------------------- the lazy SQL names

def __getattr__(name: str) -> Any:
    module = _SQL_NAMES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"kpiforge.plugins.sources.{module}"), name)
    globals()[name] = value  # the next access is a plain module attribute
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
