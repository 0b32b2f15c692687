"""The same rows on four engines, DuckDB, SQLite, PostgreSQL and MariaDB, give the same inputs.

One table per kind of time column: ``local`` (a naive local timestamp: DuckDB and PostgreSQL
``TIMESTAMP``, MariaDB ``DATETIME``, SQLite text) and ``utc`` (instants: ``TIMESTAMPTZ``,
MariaDB ``TIMESTAMP`` read in the session zone, SQLite text ending in ``Z``). Every request
asks for every aggregation, a ``filter`` with a list and NULL, a definition's row condition,
first and last, over every grain and with and without a dimension; DuckDB's answer is the
reference and every other engine must equal it to 1e-9 relative. PostgreSQL and MariaDB are
real servers on loopback (tests/conftest_postgres.py, tests/conftest_mariadb.py).
"""

from __future__ import annotations

import math
import sqlite3
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import duckdb
import pytest

from kpiforge._plugins import load_plugins
from kpiforge.hookspecs import SourceContext
from kpiforge.sources import Condition, InputSpec, SourceRequest
from tests.conftest_mariadb import mariadb_url  # noqa: F401 - the fixture
from tests.conftest_postgres import postgres_url  # noqa: F401 - the fixture

sa = pytest.importorskip("sqlalchemy")
pytestmark = pytest.mark.slow

PARIS = ZoneInfo("Europe/Paris")
COLUMNS = ["ts", "channel", "status", "amount", "customer"]


def make_rows() -> list[tuple[datetime, str | None, str | None, float | None, str]]:
    """Naive UTC instants, each distinct (first/last have no ties), across DST changes and
    month, quarter and year ends."""
    rows = []
    start = datetime(2025, 12, 20, 0, 17)
    for i in range(360):
        ts = start + timedelta(hours=i * 29 + (i * 7) % 11, minutes=(i * 13) % 60)
        channel = (("search", "social", "display", None)[i % 4])
        status = ("paid", "refunded", None, "paid", "open")[i % 5]
        amount = None if i % 17 == 0 else round(1.25 * ((i * 37) % 101) + 0.5, 2)
        rows.append((ts, channel, status, amount, f"c{(i * 11) % 47}"))
    return rows


ROWS = make_rows()
INPUTS = {
    "orders": InputSpec("orders", "count", column="*"),
    "amounts": InputSpec("amounts", "count", column="amount"),
    "revenue": InputSpec("revenue", "sum", column="amount", filter={"status": ("paid", None)}),
    "big": InputSpec("big", "count", column="*", where=Condition("amount > 60", (("amount", "amount"),))),
    "big_revenue": InputSpec("big_revenue", "sum", column="amount",
                             where=Condition("amount > 60", (("amount", "amount"),))),
    "customers": InputSpec("customers", "count_distinct", column="customer"),
    "smallest": InputSpec("smallest", "min", column="amount"),
    "largest": InputSpec("largest", "max", column="amount", filter={"status": "refunded"}),
    "mean": InputSpec("mean", "avg", column="amount"),
    "first_amount": InputSpec("first_amount", "first", column="amount"),
    "last_paid": InputSpec("last_paid", "last", column="amount", filter={"status": "paid"}),
}


def _local(ts: datetime) -> datetime:
    return ts.replace(tzinfo=timezone.utc).astimezone(PARIS).replace(tzinfo=None)


def _values(kind: str, text: bool = False) -> list[tuple]:
    out = []
    for ts, *rest in ROWS:
        value: object = _local(ts) if kind == "local" else ts.replace(tzinfo=timezone.utc)
        if text:
            value = (value.isoformat(sep=" ") if kind == "local"  # type: ignore[union-attr]
                     else ts.isoformat(sep=" ") + "Z")
        out.append((value, *rest))
    return out


@pytest.fixture(scope="module")
def duckdb_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("engines") / "shop.duckdb"
    con = duckdb.connect(str(path))
    con.execute("SET TimeZone = 'UTC'")
    for kind, sql_type in (("local", "TIMESTAMP"), ("utc", "TIMESTAMPTZ")):
        con.execute(f"CREATE TABLE orders_{kind} (ts {sql_type}, channel VARCHAR, status VARCHAR, "
                    "amount DOUBLE, customer VARCHAR)")
        con.executemany(f"INSERT INTO orders_{kind} VALUES (?, ?, ?, ?, ?)", _values(kind))
    con.close()
    return path


@pytest.fixture(scope="module")
def sqlite_file(duckdb_file):
    path = duckdb_file.parent / "shop.sqlite"
    con = sqlite3.connect(path)
    for kind in ("local", "utc"):
        con.execute(f"CREATE TABLE orders_{kind} (ts TEXT, channel TEXT, status TEXT, amount REAL, "
                    "customer TEXT)")
        con.executemany(f"INSERT INTO orders_{kind} VALUES (?, ?, ?, ?, ?)", _values(kind, text=True))
    con.commit()
    con.close()
    return path


def _load(url: str, types: dict[str, str], setup: str) -> str:
    engine = sa.create_engine(url)
    with engine.begin() as con:
        con.execute(sa.text(setup))
        for kind, sql_type in types.items():
            con.execute(sa.text(f"DROP TABLE IF EXISTS orders_{kind}"))
            con.execute(sa.text(f"CREATE TABLE orders_{kind} (ts {sql_type} NULL, channel VARCHAR(20), "
                                "status VARCHAR(20), amount DOUBLE PRECISION, customer VARCHAR(20))"))
            rows = [dict(zip(COLUMNS, r)) for r in _values(kind)]
            if kind == "utc" and "mysql" in url:  # TIMESTAMP takes values in the session zone (UTC)
                rows = [{**r, "ts": r["ts"].replace(tzinfo=None)} for r in rows]
            con.execute(sa.text("INSERT INTO orders_" + kind + " VALUES (:ts, :channel, :status, "
                                ":amount, :customer)"), rows)
    engine.dispose()
    return url


@pytest.fixture(scope="module")
def servers(request):
    """The URLs of the two servers, each loaded with both tables; absent ones are skipped."""
    out = {}
    for fixture, types, setup in (
            ("postgres_url", {"local": "TIMESTAMP", "utc": "TIMESTAMPTZ"}, "SET TimeZone = 'UTC'"),
            ("mariadb_url", {"local": "DATETIME", "utc": "TIMESTAMP"}, "SET time_zone = '+00:00'")):
        try:
            out[fixture] = _load(request.getfixturevalue(fixture), types, setup)
        except pytest.skip.Exception as exc:
            out[fixture] = exc
    return out


def sources(engine: str, kind: str, duckdb_file, sqlite_file, servers, query: bool = False):
    types = load_plugins().source_types
    common = {"time": "ts", "dimensions": ["channel"], "inputs": {"orders": {"column": "*", "agg": "count"}}}
    relation = ({"query": f"SELECT * FROM orders_{kind} WHERE 1 = 1"} if query
                else {"table": f"orders_{kind}"})
    if engine in ("duckdb", "sqlite"):
        path = duckdb_file if engine == "duckdb" else sqlite_file
        settings = {**common, "path": path.name, **relation}
        return types[engine].obj("shop", settings, SourceContext(project_dir=path.parent))
    url = servers[f"{engine}_url"]
    if isinstance(url, BaseException):
        pytest.skip(str(url))
    return types["sql"].obj("shop", {**common, "url": url, **relation}, SourceContext(project_dir=duckdb_file.parent))


def answer(source, grain: str, week_start: int, dims: tuple[str, ...], ranges) -> dict:
    frame = source.fetch(SourceRequest(grain, "Europe/Paris", week_start, ranges, dims, INPUTS))
    out = {}
    for i, label in enumerate(frame.periods.tolist()):
        key = (str(label), *(str(frame.dims[d][i]) for d in dims))
        out[key] = {k: float(v[i]) for k, v in frame.inputs.items()}
    return out


def assert_close(got: dict, expected: dict) -> None:
    assert got.keys() == expected.keys()
    for key, values in expected.items():
        for name, value in values.items():
            other = got[key][name]
            if math.isnan(value):
                assert math.isnan(other), (key, name, other)
            else:
                assert other == pytest.approx(value, rel=1e-9, abs=0), (key, name, other, value)


CASES = [("day", 0, ()), ("week", 0, ("channel",)), ("week", 6, ()), ("month", 0, ("channel",)),
         ("quarter", 0, ("channel",)), ("year", 0, ())]
RANGES = [(), ((date(2026, 3, 1), date(2026, 11, 1)),)]


@pytest.mark.parametrize("engine", ["sqlite", "postgres", "mariadb"])
@pytest.mark.parametrize("kind", ["local", "utc"])
@pytest.mark.parametrize("ranges", RANGES, ids=["all-time", "mar-oct"])
def test_every_engine_agrees_with_duckdb(engine, kind, ranges, duckdb_file, sqlite_file, servers):
    reference = sources("duckdb", kind, duckdb_file, sqlite_file, servers)
    other = sources(engine, kind, duckdb_file, sqlite_file, servers)
    for grain, week_start, dims in CASES:
        expected = answer(reference, grain, week_start, dims, ranges)
        assert expected  # the rows are there: comparing two empty answers would prove nothing
        assert_close(answer(other, grain, week_start, dims, ranges), expected)


def test_the_reference_is_right_by_hand(duckdb_file, sqlite_file, servers):
    """DuckDB's own answer, checked once against Python, so the agreement means something."""
    got = answer(sources("duckdb", "utc", duckdb_file, sqlite_file, servers), "month", 0, (), ())
    months: dict[str, list] = {}
    for ts, channel, status, amount, customer in ROWS:
        months.setdefault(_local(ts).strftime("%Y-%m"), []).append((_local(ts), status, amount, customer))
    assert len(got) == len(months)
    for month, rows in months.items():
        values = got[(month,)]
        assert values["orders"] == len(rows)
        assert values["customers"] == len({r[3] for r in rows})
        paid = [r[2] for r in rows if r[1] in ("paid", None) and r[2] is not None]
        assert values["revenue"] == pytest.approx(sum(paid), rel=1e-12)
        known = sorted((r for r in rows if r[2] is not None), key=lambda r: r[0])
        assert values["first_amount"] == known[0][2]
        assert values["big"] == sum(1 for r in known if r[2] > 60)


@pytest.mark.parametrize("kind", ["local", "utc"])
def test_a_query_on_mariadb_agrees_too(kind, duckdb_file, sqlite_file, servers):
    """A ``query:`` is the owner's SQL, kept as written; its time column has no known type."""
    reference = sources("duckdb", kind, duckdb_file, sqlite_file, servers)
    other = sources("mariadb", kind, duckdb_file, sqlite_file, servers, query=True)
    for grain, week_start, dims in CASES[:3]:
        assert_close(answer(other, grain, week_start, dims, RANGES[1]),
                     answer(reference, grain, week_start, dims, RANGES[1]))


def test_missing_times_are_counted_on_mariadb(servers, duckdb_file, sqlite_file):
    url = servers["mariadb_url"]
    if isinstance(url, BaseException):
        pytest.skip(str(url))
    engine = sa.create_engine(url)
    with engine.begin() as con:
        con.execute(sa.text("CREATE TABLE IF NOT EXISTS gaps (ts DATETIME NULL, amount DOUBLE)"))
        con.execute(sa.text("DELETE FROM gaps"))
        con.execute(sa.text("INSERT INTO gaps VALUES ('2026-05-01 10:00:00', 2), (NULL, 3), (NULL, 4)"))
    engine.dispose()
    types = load_plugins().source_types
    source = types["sql"].obj("gaps", {"time": "ts", "url": url, "table": "gaps",
                                       "inputs": {"total": {"column": "amount", "agg": "sum"}}},
                              SourceContext(project_dir=duckdb_file.parent))
    frame = source.fetch(SourceRequest("month", "Europe/Paris", 0, (), (), source.inputs))
    assert frame.periods.tolist() == ["2026-05"]
    assert frame.inputs["total"].tolist() == [2.0]
    assert frame.warnings == ("source 'gaps': 2 rows of table 'gaps' of the mysql database kpi have "
                              "no ts and were left out",)


def test_a_zone_the_server_does_not_know_is_a_clear_error(servers, duckdb_file):
    url = servers["mariadb_url"]
    if isinstance(url, BaseException):
        pytest.skip(str(url))
    from kpiforge.errors import SourceError

    source = load_plugins().source_types["sql"].obj(
        "shop", {"time": "ts", "url": url, "table": "orders_local",
                 "inputs": {"n": {"column": "*", "agg": "count"}}},
        SourceContext(project_dir=duckdb_file.parent))
    with pytest.raises(SourceError, match=r"does not know the time zone 'Asia/Kolkata': load the "
                                          r"server's time-zone tables \(mysql_tzinfo_to_sql"):
        source.fetch(SourceRequest("month", "Asia/Kolkata", 0, (), (), source.inputs))


@pytest.mark.parametrize("engine", ["sqlite", "postgres", "mariadb"])
@pytest.mark.parametrize("kind", ["local", "utc"])
def test_the_latest_local_time_agrees(engine, kind, duckdb_file, sqlite_file, servers):
    request = SourceRequest("day", "Europe/Paris", 0)
    expected = sources("duckdb", kind, duckdb_file, sqlite_file, servers).latest(request)
    assert expected == max(_local(r[0]) for r in ROWS)
    assert sources(engine, kind, duckdb_file, sqlite_file, servers).latest(request) == expected
