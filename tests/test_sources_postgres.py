"""The `sql` source against a real PostgreSQL server, cross-checked with a DuckDB `csv` source.

The same events are loaded into a PostgreSQL table (``timestamptz``) and written to a CSV file
(ISO timestamps with ``Z``). Two projects, identical but for the source, must give the same
monthly CTR and distinct-visitor counts, and both must equal the values computed by hand here.
The rows include time-zone boundary cases: 2026-10-31T23:30:00Z is 00:30 on November 1st in
Europe/Paris, and 2026-09-30T22:30:00Z is 00:30 on October 1st.
"""

from __future__ import annotations

import csv
import math
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from kpiforge._project import load_project

sa = pytest.importorskip("sqlalchemy")
pytest.importorskip("psycopg")

pytestmark = pytest.mark.slow



def run(project: Path, **options) -> list[dict]:
    return load_project(project).run(**options).to_records()

UTC = timezone.utc
INPUTS = """\
    dimensions: [channel]
    inputs:
      impressions: {column: id, agg: count, filter: {event_type: impression}}
      clicks: {column: id, agg: count, filter: {event_type: click}}
      unique_visitors: {column: user_id, agg: count_distinct}
"""


def make_events() -> list[dict]:
    """Deterministic events; the counts per local month are derived independently below."""
    events = []
    start = datetime(2026, 10, 1, 6, 0, tzinfo=UTC)
    for i in range(400):
        channel = ("search", "social", "display")[i % 3]
        kind = "click" if i % (4 + i % 3) == 0 else "impression"
        ts = start + timedelta(hours=i * 3 + (i % 5))  # October into mid-November
        events.append({"id": i + 1, "ts": ts, "channel": channel, "event_type": kind,
                       "user_id": f"u{(i * 7) % 53}"})
    boundary = [
        # UTC late on Oct 31: November 1st in Paris (CET, UTC+1 after the DST change on Oct 25)
        (datetime(2026, 10, 31, 23, 30, tzinfo=UTC), "search", "click", "u-boundary-nov"),
        # UTC late on Sep 30: October 1st in Paris (CEST, UTC+2)
        (datetime(2026, 9, 30, 22, 30, tzinfo=UTC), "search", "click", "u-boundary-oct"),
        # the DST change itself: 00:59Z and 01:00Z on Oct 25 are 02:59 CEST and 02:00 CET
        (datetime(2026, 10, 25, 0, 59, tzinfo=UTC), "social", "impression", "u-dst-1"),
        (datetime(2026, 10, 25, 1, 0, tzinfo=UTC), "social", "impression", "u-dst-2"),
    ]
    for n, (ts, channel, kind, user) in enumerate(boundary, start=len(events) + 1):
        events.append({"id": n, "ts": ts, "channel": channel, "event_type": kind, "user_id": user})
    return events


def expected(events: list[dict]) -> dict[tuple[str, str], dict[str, float]]:
    """(month, channel) -> inputs and KPIs, months taken in Europe/Paris with zoneinfo."""
    from zoneinfo import ZoneInfo

    paris = ZoneInfo("Europe/Paris")
    out: dict[tuple[str, str], dict] = {}
    for e in events:
        month = e["ts"].astimezone(paris).strftime("%Y-%m")
        cell = out.setdefault((month, e["channel"]), {"impressions": 0, "clicks": 0, "users": set()})
        cell[e["event_type"] + "s"] += 1
        cell["users"].add(e["user_id"])
    return {key: {"ctr": c["clicks"] / c["impressions"] * 100 if c["impressions"] else None,
                  "unique_visitors": float(len(c["users"]))}
            for key, c in out.items()}


@pytest.fixture(scope="module")
def events() -> list[dict]:
    return make_events()


@pytest.fixture(scope="module")
def pg_table(postgres_url: str, events: list[dict]) -> str:
    engine = sa.create_engine(postgres_url)
    try:
        with engine.begin() as connection:
            connection.execute(sa.text("DROP TABLE IF EXISTS ad_events"))
            connection.execute(sa.text(
                "CREATE TABLE ad_events (id integer PRIMARY KEY, ts timestamptz NOT NULL, "
                "channel text NOT NULL, event_type text NOT NULL, user_id text NOT NULL)"))
            connection.execute(sa.text(
                "INSERT INTO ad_events VALUES (:id, :ts, :channel, :event_type, :user_id)"), events)
    finally:
        engine.dispose()
    return "ad_events"


@pytest.fixture(scope="module")
def projects(tmp_path_factory, postgres_url: str, pg_table: str, events: list[dict]) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("pg-vs-csv")
    with open(root / "events.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["id", "ts", "channel", "event_type", "user_id"])
        writer.writeheader()
        for e in events:
            writer.writerow({**e, "ts": e["ts"].strftime("%Y-%m-%dT%H:%M:%SZ")})
    url = sa.engine.make_url(postgres_url)
    # the password comes from the environment, as the project-file format recommends
    pg_url = f"postgresql+psycopg://{url.username}:${{PG_PASSWORD}}@{url.host}:{url.port}/{url.database}"
    common = "currency: EUR\ntimezone: Europe/Paris\nsources:\n  events:\n"
    (root / "pg.yaml").write_text(
        common + f"    type: sql\n    url: {pg_url}\n    table: {pg_table}\n    time: ts\n" + INPUTS)
    (root / "csv.yaml").write_text(
        common + "    type: csv\n    path: events.csv\n    time: ts\n" + INPUTS)
    return {"pg": root / "pg.yaml", "csv": root / "csv.yaml"}


@pytest.fixture()
def pg_password(monkeypatch, postgres_url: str) -> None:
    monkeypatch.setenv("PG_PASSWORD", sa.engine.make_url(postgres_url).password)


def table(records: list[dict]) -> dict[tuple[str, str, str], float | None]:
    return {(r["kpi"], r["period"], r["slice"]["channel"]): r["value"] for r in records}


@pytest.mark.parametrize("month", ["2026-10", "2026-11"])
def test_postgres_matches_csv_and_hand_count(projects, events, pg_password, month: str) -> None:
    kpis = ["ctr", "unique_visitors"]
    pg = table(run(projects["pg"], grain="month", period=month, by=["channel"], kpis=kpis))
    duck = table(run(projects["csv"], grain="month", period=month, by=["channel"], kpis=kpis))
    want = {(kpi, m, ch): v[kpi] for (m, ch), v in expected(events).items() if m == month
            for kpi in kpis}
    assert want, "the test data has no row in this month"
    assert set(pg) == set(duck) == set(want)
    for key, value in want.items():
        for name, got in (("postgres", pg[key]), ("duckdb csv", duck[key])):
            if value is None:
                assert got is None, (name, key, got)
            else:
                assert got is not None and math.isclose(got, value, rel_tol=1e-12), (name, key, got, value)


def test_boundary_rows_land_in_the_local_month(projects, events, pg_password) -> None:
    want = expected(events)
    # November's search visitors include the 23:30Z-on-Oct-31 click, October's the Sep-30 one
    records = run(projects["pg"], grain="month", period="2026-11", by=["channel"],
                  kpis=["unique_visitors"])
    november = table(records)[("unique_visitors", "2026-11", "search")]
    assert november == want[("2026-11", "search")]["unique_visitors"]
    users_nov = {e["user_id"] for e in events if e["channel"] == "search"
                 and e["ts"] >= datetime(2026, 10, 31, 23, tzinfo=UTC)}
    assert "u-boundary-nov" in users_nov and november == len(users_nov)


def test_distinct_count_over_a_quarter_is_not_a_sum(projects, events, pg_password) -> None:
    records = run(projects["pg"], grain="quarter", period="2026-Q4", by=["channel"],
                  kpis=["unique_visitors"])
    got = table(records)
    for channel in ("search", "social", "display"):
        users = {e["user_id"] for e in events if e["channel"] == channel
                 and e["ts"] >= datetime(2026, 9, 30, 22, tzinfo=UTC)}
        assert got[("unique_visitors", "2026-Q4", channel)] == len(users)


def test_the_time_range_is_an_index_condition_on_the_raw_column(postgres_url, pg_table, pg_password) -> None:
    """The range is compared with the raw timestamptz column, so PostgreSQL can use an index on
    it; the conversion to local time is only computed for the rows kept (for their period)."""
    from datetime import date

    from kpiforge.sources import SourceRequest
    from kpiforge.plugins.sources.databases import SqlAlchemySource

    source = SqlAlchemySource("events", {"url": postgres_url, "table": pg_table, "time": "ts",
                                         "inputs": {"clicks": {"column": "id", "agg": "count"}}}, Path("."))
    request = SourceRequest("month", "Europe/Paris", 0, ((date(2026, 10, 1), date(2026, 11, 1)),), (),
                            source.inputs)
    sql, params, _ = source._build(request, None)
    engine = sa.create_engine(postgres_url)
    try:
        with engine.begin() as connection:
            connection.execute(sa.text(f"CREATE INDEX IF NOT EXISTS {pg_table}_ts ON {pg_table} (ts)"))
            for statement in source.dialect.setup("Europe/Paris"):
                connection.execute(sa.text(statement))
            connection.execute(sa.text("SET LOCAL enable_seqscan = off"))
            plan = "\n".join(row[0] for row in connection.execute(sa.text("EXPLAIN " + sql), params))
            got = connection.execute(sa.text(sql), params).fetchall()
    finally:
        engine.dispose()
    assert "Index Cond: ((ts >= " in plan, plan
    paris_october = [e for e in make_events() if datetime(2026, 9, 30, 22, tzinfo=UTC) <= e["ts"]
                     < datetime(2026, 10, 31, 23, tzinfo=UTC)]
    assert [(str(p), float(n)) for p, n, _rows in got] == [("2026-10-01", float(len(paris_october)))]
