"""The base of the SQL-backed sources: settings, column checks, one query, errors translated.

A subclass gives a :class:`~kpiforge.sources.Dialect`, a FROM item (:meth:`SqlSource.relation`)
and a session; :class:`SqlSource` does the rest, the same way for every engine.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Callable, Mapping, Sequence

from kpiforge.errors import SourceError, did_you_mean
from kpiforge.sources import (SourceFrame, SourceRequest, float_column, is_masked, require_setting,
                              source_inputs)

from ._checks import check_columns, is_text_type, translate
from ._dialects import Dialect, Params, quote_qualified
from ._glot import inline_parameters, named_dialect, sqlglot_name
from ._sql import build_aggregate_query, build_latest_query
from ._sqlcache import cached_query
from ._sqltree import column

__all__ = ["SqlSource", "dbapi_columns", "table_or_query"]


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
        warnings: tuple[str, ...] = ()
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
        """The aggregate query of ``request`` (``time_type``: the time column's type), rendered
        once and then read from the query cache (``_sqlcache``): a hit imports no sqlglot."""
        def render(params: Params, relation: str) -> tuple[str, dict[str, Any]]:
            raw = self.dialect.raw_time(column(self.time), time_type)
            sql, values, _ = build_aggregate_query(
                relation, self.time, request, self.dialect, span=span, params=params,
                time_sql=raw, missing_sql=self.dialect.time_missing(raw),
                time_kind=self.dialect.time_kind(time_type))
            return sql, values

        sql, values = cached_query(self, "aggregate", request, span, time_type, render)
        return sql, values, [spec.name for spec in request.inputs.values()]

    def aggregate_sql(self, request: SourceRequest, dialect: str | None = None
                      ) -> tuple[str, tuple[str, ...], list[str], str]:
        """The one aggregate query of ``request`` as SQL to print and run elsewhere, with its
        parameters written as literals: ``(sql, session statements it needs, input names in
        column order (__i0..), sqlglot dialect name)``. ``dialect``: render for that engine
        instead of this source's (the time column's type is still read from this source)."""
        target = named_dialect(dialect) if dialect else self.dialect
        if target.name != self.dialect.name and self.relation(Params(self.dialect.param_style)) \
                .startswith(("read_", "(WITH")):
            raise SourceError(f"source '{self.name}' reads files with DuckDB: its query can only "
                              f"be written for duckdb, not {dialect}")
        with self._session(self.dialect.setup(request.timezone)) as session:
            described = self._describe(session)
            span = self._span(request)
        own, self.dialect = self.dialect, target
        try:
            sql, values, names = self._build(request, span, self._time_type(described))
        finally:
            self.dialect = own
        return (inline_parameters(sql, values, target), tuple(target.setup(request.timezone)),
                names, sqlglot_name(target))

    def latest(self, request: SourceRequest) -> datetime | None:
        """Local time of the newest row (for "the latest period with data")."""
        span = self._span(request)
        bare = SourceRequest(request.grain, request.timezone, request.week_start)

        def build(described: Mapping[str, str]) -> tuple[str, Mapping[str, Any]]:
            time_type = self._time_type(described)

            def render(params: Params, relation: str) -> tuple[str, dict[str, Any]]:
                raw = self.dialect.raw_time(column(self.time), time_type)
                return build_latest_query(relation, self.time, request, self.dialect, span=span,
                                          params=params, time_sql=raw,
                                          time_kind=self.dialect.time_kind(time_type))

            return cached_query(self, "latest", request, span, time_type, render)

        columns = self._run(bare, build)
        import numpy as np  # here: registering the source plugins must not import numpy

        values = columns["__latest"]
        value = values[0] if len(values) else None
        if is_masked(values) and np.ma.getmaskarray(values)[0]:
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
    import numpy as np

    periods = columns["__p"]
    if is_masked(periods):
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



def dbapi_columns(cursor: Any) -> dict[str, list[Any]]:
    """A DB-API cursor's result as ``{column: list}`` (aggregated rows only, never raw data)."""
    rows = cursor.fetchall()
    names = [d[0] for d in cursor.description]
    columns: dict[str, list[Any]] = {name: [] for name in names}
    if rows:
        for name, values in zip(names, zip(*rows)):
            columns[name] = list(values)
    return columns
