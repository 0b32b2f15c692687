"""The day roll-up of the aggregate query (``plugins/sources/_sql_rollup.py``, issue 11).

A request for weeks, months, quarters or years whose inputs are all sums, counts, minima or
maxima is grouped by local day first, then by period over the days. It must give the numbers of
the one-level query on every engine: checked here with hypothesis on DuckDB (DATE, naive
TIMESTAMP and TIMESTAMPTZ columns) and SQLite (date and naive text), with NULL times (counted
and left out), NULL values, filters, row conditions and every week start. The golden SQL of the
rolled-up query per dialect is checked by ``tests/test_sql_goldens.py``.
"""

from __future__ import annotations

import math
import sqlite3
from datetime import date, datetime, timedelta

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kpiforge.plugins.sources._glot import GLOT_TARGETS, GlotDialect
from kpiforge.plugins.sources._sql_rollup import rolls_up_days
from kpiforge.plugins.sources._sql import _Plan
from kpiforge.sources import (
    Condition,
    Dialect,
    DuckDBDialect,
    InputSpec,
    PostgresDialect,
    SourceRequest,
    SqliteDialect,
    build_aggregate_query,
)

FIRST = date(2025, 11, 3)
BIG = Condition("qty >= 3", (("qty", "qty"),))
INPUTS = {
    "revenue": InputSpec("revenue", "sum", column="amount"),
    "paid": InputSpec("paid", "sum", column="amount", filter={"status": ("paid", None)}),
    "orders": InputSpec("orders", "count", column="*"),
    "priced": InputSpec("priced", "count", column="amount"),
    "big": InputSpec("big", "count", column="*", where=BIG),
    "cheapest": InputSpec("cheapest", "min", column="amount"),
    "most": InputSpec("most", "max", column="qty"),
    "units": InputSpec("units", "sum", column="qty", filter={"status": "paid"}),
}
RANGE = ((FIRST + timedelta(days=20), FIRST + timedelta(days=300)),)


def request(grain: str, week_start: int = 0, inputs: dict | None = None,
            dims: tuple[str, ...] = ("channel",)) -> SourceRequest:
    return SourceRequest(grain, "Europe/Paris", week_start, RANGE, dims, inputs or INPUTS)


def without_rollup(dialect: Dialect) -> Dialect:
    plain = type(dialect)(*([dialect.target] if isinstance(dialect, GlotDialect) else []))
    plain.day_rollup = False
    return plain


def sql_of(dialect: Dialect, req: SourceRequest, type_name: str) -> tuple[str, dict]:
    sql, values, _ = build_aggregate_query('"events"', "ts", req, dialect, missing_sql='"ts" IS NULL',
                                           time_kind=dialect.time_kind(type_name))
    return sql, values


@pytest.mark.parametrize("grain, inputs, rolled", [
    ("week", INPUTS, True), ("month", INPUTS, True), ("quarter", INPUTS, True),
    ("year", INPUTS, True),
    ("day", INPUTS, False),  # nothing to gain: the day is the period
    ("week", {**INPUTS, "n": InputSpec("n", "count_distinct", column="user")}, False),
    ("week", {**INPUTS, "n": InputSpec("n", "avg", column="amount")}, False),
    ("week", {**INPUTS, "n": InputSpec("n", "first", column="amount")}, False),
    ("week", {**INPUTS, "n": InputSpec("n", "last", column="amount")}, False),
])
def test_which_requests_are_rolled_up(grain, inputs, rolled):
    req = request(grain, inputs=inputs)
    assert rolls_up_days(DuckDBDialect(), req, _Plan.of(list(req.inputs.values()))) is rolled
    sql, _ = sql_of(DuckDBDialect(), req, "DATE")
    assert sql.count("GROUP BY") == (2 if rolled else 1)


def test_a_dialect_of_its_own_is_not_rolled_up_unless_it_says_so():
    """``period_start`` of a third-party dialect may not take a date: the default is off."""
    assert Dialect.day_rollup is False
    for dialect in (DuckDBDialect(), PostgresDialect(), SqliteDialect(),
                    *(GlotDialect(name) for name in GLOT_TARGETS)):
        assert dialect.day_rollup is True


# -- the numbers: rolled up == one level, on real engines ----------------------------------------
ROW = st.tuples(
    st.one_of(st.none(), st.integers(0, 330 * 24 - 1)),  # hours after FIRST, or no time
    st.sampled_from(["search", "social", None]),
    st.one_of(st.none(), st.floats(-1e6, 1e6, allow_nan=False, width=32)),
    st.integers(-5, 50),
    st.sampled_from(["paid", "open", None]),
)
CASE = st.tuples(st.lists(ROW, max_size=60), st.sampled_from(["week", "month", "quarter", "year"]),
                 st.integers(0, 6), st.booleans())


def rows_of(events: list, type_name: str) -> list[tuple]:
    out = []
    for hours, channel, amount, qty, status in events:
        t = None if hours is None else datetime.combine(FIRST, datetime.min.time()) + timedelta(hours=hours)
        if t is not None and type_name == "DATE":
            t = t.date()
        out.append((t, channel, amount, qty, status))
    return out


def same(left: list[tuple], right: list[tuple]) -> None:
    assert len(left) == len(right)
    for a, b in zip(left, right):
        assert a[:2] == b[:2]
        for x, y in zip(a[2:], b[2:]):
            if x is None or y is None or (isinstance(x, float) and math.isnan(x)):
                assert x == y or (x is None and y is None) or (math.isnan(x) and math.isnan(y))
            else:
                assert math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-6), (a, b)


def run_duckdb(dialect: Dialect, req: SourceRequest, type_name: str, rows: list[tuple]) -> list[tuple]:
    con = duckdb.connect()
    try:
        for statement in dialect.setup(req.timezone):
            con.execute(statement)
        con.execute(f"CREATE TABLE events (ts {type_name}, channel TEXT, amount DOUBLE, qty BIGINT, "
                     "status TEXT)")
        if rows:
            con.executemany("INSERT INTO events VALUES (?, ?, ?, ?, ?)", rows)
        sql, values = sql_of(dialect, req, type_name)
        return con.execute(sql, values).fetchall()
    finally:
        con.close()


def run_sqlite(dialect: Dialect, req: SourceRequest, type_name: str, rows: list[tuple]) -> list[tuple]:
    con = sqlite3.connect(":memory:")
    try:
        con.execute(f"CREATE TABLE events (ts {type_name}, channel TEXT, amount REAL, qty INTEGER, "
                    "status TEXT)")
        text = [(None if t is None else str(t), *rest) for t, *rest in rows]  # "2026-01-05[ 07:00:00]"
        con.executemany("INSERT INTO events VALUES (?, ?, ?, ?, ?)", text)
        sql, values = sql_of(dialect, req, type_name)
        return con.execute(sql, values).fetchall()
    finally:
        con.close()


@pytest.mark.parametrize("engine, dialect, type_name", [
    ("duckdb", DuckDBDialect(), "DATE"), ("duckdb", DuckDBDialect(), "TIMESTAMP"),
    ("duckdb", DuckDBDialect(), "TIMESTAMPTZ"),
    ("sqlite", SqliteDialect(), "DATE"), ("sqlite", SqliteDialect(), "TIMESTAMP"),
])
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=CASE)
def test_rolled_up_numbers_are_the_one_level_numbers(engine, dialect, type_name, case):
    events, grain, week_start, split = case
    req = request(grain, week_start, dims=("channel",) if split else ())
    run = run_duckdb if engine == "duckdb" else run_sqlite
    rows = rows_of(events, type_name)
    rolled, plain = run(dialect, req, type_name, rows), run(without_rollup(dialect), req, type_name, rows)
    same(rolled, plain)
    low, high = RANGE[0]
    kept = [t for t, *_ in rows if t is None or low <= (t.date() if isinstance(t, datetime) else t) < high]
    assert bool(rolled) == bool(kept)  # groups were compared, not two empty answers
