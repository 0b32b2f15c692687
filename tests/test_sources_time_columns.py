"""DATE, naive TIMESTAMP and TIMESTAMPTZ time columns give the same numbers (issue 11).

The same events are stored with three kinds of time column: the UTC instant (TIMESTAMPTZ),
the Paris wall time (naive TIMESTAMP) and the Paris day (DATE). A DATE or naive column is
already local time and is bucketed and filtered as it is; only the TIMESTAMPTZ column is
converted. Per day, week (Monday and Sunday starts) and month in Europe/Paris, every kind and
every engine (Parquet, CSV and a DuckDB database through DuckDB; PostgreSQL) must give the
numbers computed here with zoneinfo, including rows just either side of local midnight, of a
week start and of both DST changes of 2026.
"""

from __future__ import annotations

import re
from collections import defaultdict
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from kpiforge._plugins import load_plugins
from kpiforge.hookspecs import SourceContext
from kpiforge.sources import (
    DuckDBDialect,
    InputSpec,
    PostgresDialect,
    SourceRequest,
    SqliteDialect,
    build_aggregate_query,
    period_labels,
)

PARIS = ZoneInfo("Europe/Paris")
UTC = timezone.utc
KINDS = {"tz": "TIMESTAMPTZ", "naive": "TIMESTAMP", "date": "DATE"}
RANGE = ((date(2026, 3, 2), date(2026, 11, 30)),)  # Mondays and Sundays inside, both DST changes
GRAINS = [("day", 0), ("week", 0), ("week", 6), ("month", 0)]


def make_events() -> list[tuple[datetime, str, int]]:
    """(UTC instant, user, n): edge rows first, then a spread over the range and beyond it."""
    edges = [
        datetime(2026, 3, 1, 22, 59, 59),   # 1 Mar 23:59:59 CET: a Sunday, outside the range
        datetime(2026, 3, 1, 23, 0, 0),     # 2 Mar 00:00 CET: the range's first second
        datetime(2026, 3, 29, 0, 59, 59),   # 29 Mar 01:59:59 CET, just before the change
        datetime(2026, 3, 29, 1, 0, 0),     # 29 Mar 03:00 CEST, just after it
        datetime(2026, 3, 29, 21, 59, 59),  # Sunday 29 Mar 23:59:59 CEST
        datetime(2026, 3, 29, 22, 0, 0),    # Monday 30 Mar 00:00 CEST
        datetime(2026, 9, 30, 21, 59, 59),  # 30 Sep 23:59:59 CEST
        datetime(2026, 9, 30, 22, 0, 0),    # 1 Oct 00:00 CEST
        datetime(2026, 10, 24, 21, 59, 59),  # Saturday 24 Oct 23:59:59 CEST
        datetime(2026, 10, 24, 22, 0, 0),   # Sunday 25 Oct 00:00 CEST (a Sunday week starts)
        datetime(2026, 10, 25, 0, 30, 0),   # 25 Oct 02:30 CEST, the first of two 02:30s
        datetime(2026, 10, 25, 1, 30, 0),   # 25 Oct 02:30 CET, the second
        datetime(2026, 10, 25, 22, 59, 59),  # Sunday 25 Oct 23:59:59 CET
        datetime(2026, 10, 25, 23, 0, 0),   # Monday 26 Oct 00:00 CET
        datetime(2026, 10, 31, 22, 59, 59),  # 31 Oct 23:59:59 CET
        datetime(2026, 10, 31, 23, 0, 0),   # 1 Nov 00:00 CET
        datetime(2026, 11, 29, 22, 59, 59),  # 29 Nov 23:59:59: the range's last second
        datetime(2026, 11, 29, 23, 0, 0),   # 30 Nov 00:00: outside the range
    ]
    events = [(t.replace(tzinfo=UTC), f"u{i % 7}", 1 << (i % 20)) for i, t in enumerate(edges)]
    start = datetime(2026, 2, 20, 5, 17, tzinfo=UTC)
    for i in range(300):
        events.append((start + timedelta(hours=23 * i + (i * 37) % 60), f"u{(i * 5) % 11}", i % 9 + 1))
    return events


EVENTS = make_events()


def local_day(instant: datetime) -> date:
    return instant.astimezone(PARIS).date()


def period(day: date, grain: str, week_start: int) -> str:
    if grain == "day":
        return day.isoformat()
    if grain == "month":
        return day.strftime("%Y-%m")
    start = day - timedelta(days=(day.weekday() - week_start) % 7)  # week_start: 0 Monday
    return str(period_labels([start], "week", week_start)[0])  # the start is ours, the label theirs


def expected(grain: str, week_start: int) -> dict[str, dict[str, float]]:
    sums: dict[str, float] = defaultdict(float)
    users: dict[str, set[str]] = defaultdict(set)
    (first, last), = RANGE
    for instant, user, n in EVENTS:
        day = local_day(instant)
        if first <= day < last:
            key = period(day, grain, week_start)
            sums[key] += n
            users[key].add(user)
    return {k: {"n": sums[k], "users": float(len(users[k]))} for k in sums}


def stored(instant: datetime, kind: str):
    if kind == "tz":
        return instant
    local = instant.astimezone(PARIS).replace(tzinfo=None)
    return local if kind == "naive" else local.date()


def text(instant: datetime, kind: str) -> str:
    if kind == "tz":
        return instant.strftime("%Y-%m-%dT%H:%M:%SZ")
    value = stored(instant, kind)
    return value.strftime("%Y-%m-%d %H:%M:%S") if kind == "naive" else value.isoformat()


INPUTS = {"n": {"agg": "sum"}, "users": {"column": "user_id", "agg": "count_distinct"}}


def periods_of(frame) -> dict[str, dict[str, float]]:
    out = {}
    for i, label in enumerate(frame.periods.tolist()):
        out[label] = {k: (None if np.isnan(v[i]) else float(v[i])) for k, v in frame.inputs.items()}
    return out


def fetch(source, grain: str, week_start: int):
    return periods_of(source.fetch(SourceRequest(grain, "Europe/Paris", week_start, RANGE, (),
                                                 source.inputs)))


@pytest.fixture(scope="module")
def source_types():
    return load_plugins().source_types


def write_parquet(path, kind: str) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    types = {"tz": pa.timestamp("us", tz="UTC"), "naive": pa.timestamp("us"), "date": pa.date32()}
    pq.write_table(pa.table({"ts": pa.array([stored(t, kind) for t, _, _ in EVENTS], types[kind]),
                             "user_id": [u for _, u, _ in EVENTS], "n": [n for _, _, n in EVENTS]}),
                   path)


def write_csv(path, kind: str) -> None:
    lines = ["ts,user_id,n"] + [f"{text(t, kind)},{u},{n}" for t, u, n in EVENTS]
    path.write_text("\n".join(lines) + "\n")


def write_duckdb(path, kind: str) -> None:
    import duckdb

    con = duckdb.connect(str(path))
    con.execute("SET TimeZone = 'UTC'")
    con.execute(f"CREATE TABLE events (ts {KINDS[kind]}, user_id VARCHAR, n INTEGER)")
    con.executemany("INSERT INTO events VALUES (?, ?, ?)", [(stored(t, kind), u, n) for t, u, n in EVENTS])
    con.close()


@pytest.fixture(scope="module")
def duckdb_sources(source_types, tmp_path_factory):
    root = tmp_path_factory.mktemp("time-columns")
    context = SourceContext(project_dir=root)
    sources = {}
    for kind in KINDS:
        write_parquet(root / f"{kind}.parquet", kind)
        write_csv(root / f"{kind}.csv", kind)
        write_duckdb(root / f"{kind}.duckdb", kind)
        common = {"time": "ts", "inputs": INPUTS}
        sources[("parquet", kind)] = source_types["parquet"].obj(
            kind, {**common, "path": f"{kind}.parquet"}, context)
        sources[("csv", kind)] = source_types["csv"].obj(kind, {**common, "path": f"{kind}.csv"}, context)
        sources[("duckdb", kind)] = source_types["duckdb"].obj(
            kind, {**common, "path": f"{kind}.duckdb", "table": "events"}, context)
    return sources


@pytest.mark.parametrize("grain, week_start", GRAINS)
@pytest.mark.parametrize("engine", ["parquet", "csv", "duckdb"])
@pytest.mark.parametrize("kind", list(KINDS))
def test_every_kind_of_time_column_gives_the_local_periods(duckdb_sources, engine, kind, grain,
                                                           week_start):
    assert fetch(duckdb_sources[(engine, kind)], grain, week_start) == expected(grain, week_start)


def test_the_files_are_typed_as_meant(duckdb_sources):
    # else the test above would not test what it says: CSV sniffing decides the type
    for (engine, kind), source in duckdb_sources.items():
        with source._session(source.dialect.setup("Europe/Paris")) as session:
            described = source._describe(session)
        assert source.dialect.time_kind(described["ts"]) == {"tz": "instant", "naive": "local",
                                                             "date": "date"}[kind], (engine, kind)


def test_latest_is_the_local_time_of_every_kind(duckdb_sources):
    last = max(t for t, _, _ in EVENTS).astimezone(PARIS).replace(tzinfo=None)
    request = SourceRequest("day", "Europe/Paris")
    got = {kind: duckdb_sources[("parquet", kind)].latest(request) for kind in KINDS}
    assert got == {"tz": last, "naive": last, "date": datetime.combine(last.date(), datetime.min.time())}


# ---------------------------------------------------------------------- the SQL itself

CONVERSION = re.compile(r"timezone\(|TIMESTAMPTZ|AT TIME ZONE", re.IGNORECASE)


def query_text(dialect, type_name: str, grain: str = "week") -> str:
    request = SourceRequest(grain, "Europe/Paris", 0, RANGE, (),
                            {"n": InputSpec("n", "sum"), "users": InputSpec("user_id", "count_distinct")})
    sql, _, _ = build_aggregate_query('"events"', "ts", request, dialect, missing_sql='"ts" IS NULL',
                                      time_kind=dialect.time_kind(type_name))
    return sql


@pytest.mark.parametrize("dialect", [DuckDBDialect(), PostgresDialect()], ids=["duckdb", "postgresql"])
@pytest.mark.parametrize("type_name", ["DATE", "TIMESTAMP", "TIMESTAMP_NS", "timestamp without time zone",
                                       "TIMESTAMP(3) WITHOUT TIME ZONE"])
@pytest.mark.parametrize("grain", ["day", "week", "month"])
def test_a_local_column_is_never_converted(dialect, type_name, grain):
    sql = query_text(dialect, type_name, grain)
    assert not CONVERSION.search(sql), sql
    # the range is a plain comparison of the bare column with constant bounds
    assert re.search(r'\("ts" >= CAST\(\S+ AS (DATE|TIMESTAMP)\) AND "ts" < CAST\(\S+ AS (DATE|TIMESTAMP)\)\)',
                     sql), sql


@pytest.mark.parametrize("dialect", [DuckDBDialect(), PostgresDialect()], ids=["duckdb", "postgresql"])
@pytest.mark.parametrize("type_name", ["TIMESTAMP WITH TIME ZONE", "TIMESTAMPTZ", "timestamp with time zone"])
def test_an_aware_column_is_converted_once(dialect, type_name):
    sql = query_text(dialect, type_name)
    assert len(re.findall(r"timezone\(|AT TIME ZONE", sql, re.IGNORECASE)) == 1, sql


@pytest.mark.parametrize("type_name", ["", "VARCHAR", "INTEGER"])
def test_an_unknown_type_keeps_the_general_conversion(type_name):
    assert DuckDBDialect().time_kind(type_name) == ""
    assert "timezone(" in query_text(DuckDBDialect(), type_name).lower()


def test_sqlite_reads_every_column_alike():
    # SQLite's declared types do not bind its values: a DATE column may hold epoch numbers
    assert SqliteDialect().time_kind("DATE") == "" == SqliteDialect().time_kind("TIMESTAMP")


def test_the_query_that_runs_on_a_date_parquet_file(duckdb_sources, monkeypatch):
    source = duckdb_sources[("parquet", "date")]
    seen: list[str] = []
    opened = source._session

    class Spy:
        def __init__(self, session):
            self.session = session

        def __getattr__(self, name):
            return getattr(self.session, name)

        def query(self, sql, params):
            seen.append(sql)
            return self.session.query(sql, params)

    from contextlib import contextmanager

    @contextmanager
    def spied(setup):
        with opened(setup) as session:
            yield Spy(session)

    monkeypatch.setattr(source, "_session", spied)
    fetch(source, "week", 0)
    assert len(seen) == 1 and not CONVERSION.search(seen[0]), seen


@pytest.mark.parametrize("kind, bounds", [
    ("date", "((ts >= '2026-03-02'::DATE) AND (ts < '2026-11-30'::DATE))"),
    ("naive", "((ts >= '2026-03-02 00:00:00'::TIMESTAMP) AND (ts < '2026-11-30 00:00:00'::TIMESTAMP))"),
    ("tz", "((ts >= '2026-03-01 23:00:00+00'::TIMESTAMP WITH TIME ZONE) AND "
           "(ts < '2026-11-29 23:00:00+00'::TIMESTAMP WITH TIME ZONE))")])
def test_the_range_is_pushed_into_the_parquet_scan(duckdb_sources, kind, bounds):
    """DuckDB's plan of the query that runs: the range filter is in the Parquet reader itself
    (row groups skipped on their statistics), as plain bounds of the bare column; only a
    TIMESTAMPTZ column is converted to local time (for the rows kept)."""
    import json

    import duckdb

    source = duckdb_sources[("parquet", kind)]
    with source._session(()) as session:
        described = source._describe(session)
    request = SourceRequest("week", "Europe/Paris", 0, RANGE, (), source.inputs)
    sql, params, _ = source._build(request, None, described["ts"])
    con = duckdb.connect()
    for statement in source.dialect.setup("Europe/Paris"):
        con.execute(statement)
    plan = json.loads(con.execute("EXPLAIN (FORMAT json) " + sql, params).fetchall()[0][1])

    def scans(node):
        for child in node if isinstance(node, list) else node.get("children", []):
            yield from scans(child)
        if isinstance(node, dict) and node.get("name") == "READ_PARQUET":
            yield node["extra_info"]

    assert [scan.get("Filters") for scan in scans(plan)] == [bounds], plan
    assert ("timezone(" in sql.lower()) == (kind == "tz"), sql


# ---------------------------------------------------------------------- PostgreSQL

@pytest.fixture(scope="module")
def pg_sources(postgres_url, source_types, tmp_path_factory):
    sa = pytest.importorskip("sqlalchemy")
    engine = sa.create_engine(postgres_url)
    try:
        with engine.begin() as con:
            con.execute(sa.text("SET TimeZone = 'UTC'"))
            for kind, type_name in KINDS.items():
                con.execute(sa.text(f"DROP TABLE IF EXISTS time_{kind}"))
                con.execute(sa.text(f"CREATE TABLE time_{kind} (ts {type_name}, user_id TEXT, n INTEGER)"))
                con.execute(sa.text(f"INSERT INTO time_{kind} VALUES (:ts, :u, :n)"),
                            [{"ts": stored(t, kind), "u": u, "n": n} for t, u, n in EVENTS])
    finally:
        engine.dispose()
    context = SourceContext(project_dir=tmp_path_factory.mktemp("pg-time-columns"))
    return {kind: source_types["sql"].obj(kind, {"url": postgres_url, "table": f"time_{kind}",
                                                 "time": "ts", "inputs": INPUTS}, context)
            for kind in KINDS}


@pytest.mark.slow
@pytest.mark.parametrize("grain, week_start", GRAINS)
@pytest.mark.parametrize("kind", list(KINDS))
def test_postgresql_gives_the_local_periods_of_every_kind(pg_sources, kind, grain, week_start):
    assert fetch(pg_sources[kind], grain, week_start) == expected(grain, week_start)


@pytest.mark.slow
def test_postgresql_column_types_are_known(pg_sources):
    kinds = {}
    for kind, source in pg_sources.items():
        with source._session(source.dialect.setup("Europe/Paris")) as session:
            kinds[kind] = source.dialect.time_kind(source._describe(session)["ts"])
    assert kinds == {"tz": "instant", "naive": "local", "date": "date"}
