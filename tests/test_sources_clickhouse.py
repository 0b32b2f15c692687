"""ClickHouse for real: the ClickHouse query runs on chdb (ClickHouse embedded in the process)
and gives DuckDB's inputs to 1e-9 relative.

Two checks. The golden query itself (``tests/fixtures/sql/clickhouse.sql``, made by the same
function as the file) runs on a ``shop.orders`` table and equals the DuckDB golden query on the
same rows. And a source built on :class:`~kpiforge.sources.SqlSource` with the ClickHouse
dialect answers every request of ``tests/test_sources_engines.py`` (every aggregation, a filter
with a list and NULL, a row condition, first and last, every grain, with and without a
dimension, all time and a range) on three kinds of time column, ClickHouse's own types: a
``Date32``, a ``DateTime64(6, 'Europe/Paris')`` of the local wall times and a
``DateTime64(6, 'UTC')`` of the instants; DuckDB reads the same rows as DATE, naive TIMESTAMP
and TIMESTAMPTZ. Parameters stay bound: ``:p0`` becomes ClickHouse's ``{p0:Type}``.
"""

from __future__ import annotations

import json
import re
from contextlib import contextmanager
from datetime import date, datetime, timezone
from typing import Any, Iterator, Mapping

import duckdb
import pytest

from kpiforge.plugins.sources._glot import GlotDialect, inline_parameters
from kpiforge.sources import DuckDBDialect, DuckDBSession, SourceRequest, SqlSource
from tests.test_sources_engines import CASES, INPUTS, RANGES, ROWS, _local, answer, assert_close
from tests.test_sql_goldens import DIALECTS, query

chdb_session = pytest.importorskip(
    "chdb.session", reason="chdb (embedded ClickHouse) is not installed: pip install -e '.[dev]'")

CLICKHOUSE_TYPES = {"date": "Date32", "local": "DateTime64(6, 'Europe/Paris')",
                    "utc": "DateTime64(6, 'UTC')"}
DUCKDB_TYPES = {"date": "DATE", "local": "TIMESTAMP", "utc": "TIMESTAMPTZ"}
_PLACEHOLDER = re.compile(r"(?<![\w:]):(p\d+)\b")


def _param_type(value: Any) -> str:
    if isinstance(value, bool):
        return "Bool"
    if isinstance(value, int):
        return "Int64"
    if isinstance(value, float):
        return "Float64"
    return "String"  # text, and dates and times as ISO text: the query CASTs them


def run_clickhouse(session: Any, sql: str, params: Mapping[str, Any]) -> dict[str, list[Any]]:
    """``sql`` with ``:p0`` placeholders run on chdb with the values bound, as columns."""
    values = {k: (v.isoformat(sep=" ") if isinstance(v, datetime) else v.isoformat()
                  if isinstance(v, date) else v) for k, v in params.items()}
    bound = _PLACEHOLDER.sub(lambda m: "{%s:%s}" % (m.group(1), _param_type(values[m.group(1)])), sql)
    result = json.loads(session.query(bound, "JSONCompact", params=values).bytes() or b"{}")
    names = [c["name"] for c in result.get("meta", [])]
    return {name: [row[i] for row in result["data"]] for i, name in enumerate(names)}


def _value(kind: str, ts: datetime) -> Any:
    if kind == "utc":
        return ts.replace(tzinfo=timezone.utc)
    return _local(ts).date() if kind == "date" else _local(ts)


def _literal(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, datetime):
        value = value.astimezone(timezone.utc).replace(tzinfo=None) if value.tzinfo else value
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"


@pytest.fixture(scope="module")
def clickhouse(tmp_path_factory):
    session = chdb_session.Session(str(tmp_path_factory.mktemp("chdb")))
    try:
        yield session
    finally:
        session.close()


def _load_both(clickhouse, con, table: str, kind: str, time: str = "ts", age: bool = False) -> None:
    """The same rows in ClickHouse (its own types) and in DuckDB (``age``: with an age column)."""
    clickhouse.query(f"DROP TABLE IF EXISTS {table}")
    clickhouse.query(f"CREATE TABLE {table} ({time} {CLICKHOUSE_TYPES[kind]}, channel Nullable(String), "
                     f"status Nullable(String), amount Nullable(Float64), customer String"
                     f"{', age Nullable(Int64)' if age else ''}) ENGINE = MergeTree ORDER BY tuple()")
    con.execute(f"CREATE OR REPLACE TABLE {table} ({time} {DUCKDB_TYPES[kind]}, channel VARCHAR, "
                f"status VARCHAR, amount DOUBLE, customer VARCHAR{', age BIGINT' if age else ''})")
    rows = [(_value(kind, ts), *rest, *((i % 50,) if age else ())) for i, (ts, *rest) in enumerate(ROWS)]
    # a UTC instant is written as UTC text: ClickHouse reads it in the column's zone
    text = ", ".join("(" + ", ".join(_literal(v) for v in row) + ")" for row in rows)
    clickhouse.query(f"INSERT INTO {table} VALUES {text}")
    con.executemany(f"INSERT INTO {table} VALUES ({', '.join('?' * len(rows[0]))})", rows)


@pytest.fixture(scope="module")
def tables(clickhouse):
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    clickhouse.query("CREATE DATABASE IF NOT EXISTS kpi")
    con.execute("CREATE SCHEMA IF NOT EXISTS kpi")
    for kind in CLICKHOUSE_TYPES:
        _load_both(clickhouse, con, f"kpi.orders_{kind}", kind)
    yield con
    con.close()


class _ChdbSession:
    def __init__(self, session: Any):
        self.session = session

    def query(self, sql: str, params: Mapping[str, Any]) -> dict[str, list[Any]]:
        return run_clickhouse(self.session, sql, params)

    def describe(self, relation: str, params: Mapping[str, Any]) -> dict[str, str]:
        described = run_clickhouse(self.session, f"DESCRIBE TABLE {relation.replace(chr(34), '')}", {})
        return dict(zip(described["name"], described["type"]))


class ClickHouseSource(SqlSource):
    """The ``sql`` source's machinery (checks, one query, missing times) on the ClickHouse
    dialect, through a chdb session."""

    dialect = GlotDialect("clickhouse")

    def __init__(self, name: str, settings: Mapping[str, Any], session: Any):
        super().__init__(name, settings)
        self.table_name = settings["table"]
        self.session = session

    def relation(self, params: Any) -> str:
        return '"kpi"."' + self.table_name + '"'

    @contextmanager
    def _session(self, setup: Any) -> Iterator[_ChdbSession]:
        for statement in setup:
            self.session.query(statement)
        yield _ChdbSession(self.session)


class _DuckDBTable(SqlSource):
    """The reference: the same machinery on DuckDB, over the same rows."""

    dialect = DuckDBDialect()

    def __init__(self, name: str, settings: Mapping[str, Any], con: Any):
        super().__init__(name, settings)
        self.table_name = settings["table"]
        self.con = con

    def relation(self, params: Any) -> str:
        return '"kpi"."' + self.table_name + '"'

    @contextmanager
    def _session(self, setup: Any) -> Iterator[Any]:
        for statement in setup:
            self.con.execute(statement)
        yield DuckDBSession(self.con)


SETTINGS = {"time": "ts", "dimensions": ["channel"], "inputs": {"orders": {"column": "*", "agg": "count"}}}


@pytest.mark.parametrize("kind", sorted(CLICKHOUSE_TYPES))
@pytest.mark.parametrize("ranges", RANGES, ids=["all-time", "mar-oct"])
def test_clickhouse_agrees_with_duckdb(kind, ranges, clickhouse, tables):
    settings = {**SETTINGS, "table": f"orders_{kind}"}
    reference = _DuckDBTable("shop", settings, tables)
    other = ClickHouseSource("shop", settings, clickhouse)
    for grain, week_start, dims in CASES:
        expected = answer(reference, grain, week_start, dims, ranges)
        assert expected  # rows are there: two empty answers would prove nothing
        assert_close(answer(other, grain, week_start, dims, ranges), expected)


def test_clickhouse_reads_its_types_as_it_should():
    """Date32 is a day; a DateTime64, with a zone or without one (the server's), is an
    instant and is converted to the project's zone, never read as wall time of some zone."""
    dialect = GlotDialect("clickhouse")
    assert dialect.time_kind("Nullable(Date32)") == "date"
    assert dialect.time_kind("DateTime64(6)") == dialect.time_kind("DateTime('UTC')") == "instant"
    request = SourceRequest("day", "Europe/Paris", 0, RANGES[1], (), INPUTS)
    sql, _, _ = ClickHouseSource("shop", {**SETTINGS, "table": "t"}, None)._build(
        request, None, "DateTime64(6)")
    assert sql.count("toTimeZone(") == 1 and "Europe/Paris" not in sql  # converted once, bound


@pytest.mark.parametrize("time_type", ["TIMESTAMP WITH TIME ZONE", "DATE"])
def test_the_golden_clickhouse_query_runs_and_agrees(time_type, clickhouse, tables):
    """The query of tests/fixtures/sql/clickhouse.sql, run on chdb, equals DuckDB's golden
    query on the same rows (a week grain from Sunday, Berlin time, first quarter of 2026)."""
    kind = "utc" if time_type != "DATE" else "date"
    clickhouse.query("CREATE DATABASE IF NOT EXISTS shop")
    tables.execute("CREATE SCHEMA IF NOT EXISTS shop")
    _load_both(clickhouse, tables, "shop.orders", kind, time="ordered_at", age=True)
    sql, params = query(GlotDialect("clickhouse"), time_type)
    got = run_clickhouse(clickhouse, sql, params)
    # what `kpiforge sql --dialect clickhouse` prints (the values written as literals) too
    assert run_clickhouse(clickhouse, inline_parameters(sql, params, GlotDialect("clickhouse")), {}) == got
    duck_sql, duck_params = query(DIALECTS["duckdb"][0], time_type)
    tables.execute("SET TimeZone = 'Europe/Berlin'")
    expected = tables.execute(duck_sql, duck_params).fetchall()
    tables.execute("SET TimeZone = 'UTC'")
    assert len(expected) > 20 and len(got["__p"]) == len(expected)
    names = list(got)
    for i, row in enumerate(expected):
        for name, value in zip(names, row):
            other = got[name][i]
            if name in ("__p", "__d0"):
                assert (str(other) if other is not None else None) == (
                    str(value) if value is not None else None), (i, name)
            elif value is None:
                assert other is None, (i, name, other)
            else:
                assert other == pytest.approx(value, rel=1e-9, abs=0), (i, name, other, value)
