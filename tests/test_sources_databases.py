"""Database sources: duckdb, sqlite and sql (SQLAlchemy; PostgreSQL when a server is available).

The same rows go into every engine and every engine must give the same aggregates: periods in
the project time zone (aware timestamps converted, naive ones taken as local, DST included),
week starts, filters, count_distinct, first/last.
"""

import sqlite3
from datetime import date
from urllib.parse import urlsplit

import duckdb
import numpy as np
import pytest

from kpiforge import SourceError
from kpiforge._plugins import load_plugins
from kpiforge.sources import SourceRequest
from kpiforge.hookspecs import SourceContext

ROWS = [
    # ordered_at (text: aware, naive or a bare date), channel, amount, order_id, status
    ("2026-06-30T22:30:00Z", "search", 7.0, "o0", "paid"),      # Paris: 1 July 00:30 (CEST)
    ("2026-10-05 10:00:00+02:00", "search", 30.0, "o3", "paid"),
    ("2026-10-05 12:00:00", "search", 30.0, "o3", "paid"),        # a second line of order o3
    ("2026-10-06", "social", 20.0, "o4", "refunded"),
    ("2026-10-31 23:30:00", "social", 10.0, "o2", "paid"),        # naive: local time, October
    ("2026-10-31T23:30:00Z", "search", 50.0, "o1", "paid"),      # Paris: 1 November 00:30 (CET)
]
INPUTS = {
    "revenue": {"column": "amount", "agg": "sum"},
    "orders": {"column": "order_id", "agg": "count_distinct"},
    "paid": {"column": "order_id", "agg": "count_distinct", "filter": {"status": "paid"}},
    "first_amount": {"column": "amount", "agg": "first"},
    "last_amount": {"column": "amount", "agg": "last"},
    "lines": {"column": "*", "agg": "count"},
}
YEAR_2026 = ((date(2026, 1, 1), date(2027, 1, 1)),)


@pytest.fixture(scope="module")
def source_types():
    return load_plugins().source_types


def make_duckdb(path):
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE orders (ordered_at VARCHAR, channel VARCHAR, amount DOUBLE, "
                "order_id VARCHAR, status VARCHAR)")
    con.executemany("INSERT INTO orders VALUES (?, ?, ?, ?, ?)", ROWS)
    con.close()


def make_sqlite(path):
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE orders (ordered_at TEXT, channel TEXT, amount REAL, order_id TEXT, status TEXT)")
    con.executemany("INSERT INTO orders VALUES (?, ?, ?, ?, ?)", ROWS)
    con.commit()
    con.close()


@pytest.fixture
def databases(tmp_path, source_types):
    """One source per engine, all over the same rows."""
    make_duckdb(tmp_path / "shop.duckdb")
    make_sqlite(tmp_path / "shop.sqlite")
    common = {"time": "ordered_at", "dimensions": ["channel"], "inputs": INPUTS}
    return {
        "duckdb": source_types["duckdb"].obj("shop", {**common, "path": "shop.duckdb", "table": "orders"}, SourceContext(project_dir=tmp_path)),
        "sqlite": source_types["sqlite"].obj("shop", {**common, "path": "shop.sqlite", "table": "orders"}, SourceContext(project_dir=tmp_path)),
        "sql+sqlite": source_types["sql"].obj(
            "shop", {**common, "url": f"sqlite:///{tmp_path / 'shop.sqlite'}", "table": "orders"}, SourceContext(project_dir=tmp_path)),
        "duckdb-query": source_types["duckdb"].obj(
            "shop", {**common, "path": "shop.duckdb",
                     "query": "SELECT * FROM orders WHERE amount > 0"}, SourceContext(project_dir=tmp_path)),
        "sqlite-query": source_types["sqlite"].obj(
            "shop", {**common, "path": "shop.sqlite", "query": "SELECT * FROM orders;"}, SourceContext(project_dir=tmp_path)),
    }


def table(frame, dims=("channel",)):
    out = {}
    for i, label in enumerate(frame.periods.tolist()):
        key = (label, *(frame.dims[d][i] for d in dims))
        out[key] = {k: (None if np.isnan(v[i]) else float(v[i])) for k, v in frame.inputs.items()}
    return out


def fetch(source, grain="month", tz="Europe/Paris", week_start=0, dims=("channel",), ranges=YEAR_2026):
    return table(source.fetch(SourceRequest(grain, tz, week_start, ranges, dims, source.inputs)), dims)


PARIS_MONTHS = {
    ("2026-07", "search"): {"revenue": 7.0, "orders": 1.0, "paid": 1.0, "first_amount": 7.0, "last_amount": 7.0, "lines": 1.0},
    ("2026-10", "search"): {"revenue": 60.0, "orders": 1.0, "paid": 1.0, "first_amount": 30.0, "last_amount": 30.0, "lines": 2.0},
    ("2026-10", "social"): {"revenue": 30.0, "orders": 2.0, "paid": 1.0, "first_amount": 20.0, "last_amount": 10.0, "lines": 2.0},
    ("2026-11", "search"): {"revenue": 50.0, "orders": 1.0, "paid": 1.0, "first_amount": 50.0, "last_amount": 50.0, "lines": 1.0},
}
UTC_MONTHS = {
    ("2026-06", "search"): {"revenue": 7.0, "orders": 1.0, "paid": 1.0, "first_amount": 7.0, "last_amount": 7.0, "lines": 1.0},
    ("2026-10", "search"): {"revenue": 110.0, "orders": 2.0, "paid": 2.0, "first_amount": 30.0, "last_amount": 50.0, "lines": 3.0},
    ("2026-10", "social"): {"revenue": 30.0, "orders": 2.0, "paid": 1.0, "first_amount": 20.0, "last_amount": 10.0, "lines": 2.0},
}
ENGINES = ["duckdb", "sqlite", "sql+sqlite", "duckdb-query", "sqlite-query"]


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("tz, expected", [("Europe/Paris", PARIS_MONTHS), ("UTC", UTC_MONTHS)])
def test_months_follow_the_project_time_zone(databases, engine, tz, expected):
    assert fetch(databases[engine], tz=tz) == expected


@pytest.mark.parametrize("engine", ENGINES[1:])
@pytest.mark.parametrize("grain, tz, week_start", [
    ("day", "Europe/Paris", 0), ("day", "America/New_York", 0), ("week", "Europe/Paris", 0),
    ("week", "UTC", 6), ("week", "Asia/Kolkata", 2), ("quarter", "Europe/Paris", 0),
    ("year", "Pacific/Kiritimati", 0),
])
def test_every_engine_agrees_with_duckdb(databases, engine, grain, tz, week_start):
    expected = fetch(databases["duckdb"], grain, tz, week_start)
    assert expected  # a parity test over nothing would prove nothing
    assert fetch(databases[engine], grain, tz, week_start) == expected


NARROW = [
    # (ranges, grain, expected {period: revenue}) in Europe/Paris; each range starts or ends at
    # a local midnight that a row is within an hour of, on the other side than in UTC
    (((date(2026, 7, 1), date(2026, 7, 2)),), "day", {"2026-07-01": 7.0}),
    (((date(2026, 6, 30), date(2026, 7, 1)),), "day", {}),
    (((date(2026, 10, 1), date(2026, 11, 1)),), "month", {"2026-10": 90.0}),
    (((date(2026, 10, 31), date(2026, 11, 2)),), "day", {"2026-10-31": 10.0, "2026-11-01": 50.0}),
    (((date(2026, 11, 1), date(2026, 11, 2)),), "day", {"2026-11-01": 50.0}),
    # two ranges at once (a comparison with the year before): each keeps its own rows
    (((date(2026, 7, 1), date(2026, 7, 2)), (date(2026, 11, 1), date(2026, 11, 2))), "day",
     {"2026-07-01": 7.0, "2026-11-01": 50.0}),
]


def revenue_by_period(source, grain, ranges, tz="Europe/Paris"):
    frame = source.fetch(SourceRequest(grain, tz, 0, ranges, (), {"revenue": source.inputs["revenue"]}))
    return {p: float(v) for p, v in zip(frame.periods.tolist(), frame.inputs["revenue"].tolist())}


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("ranges, grain, expected", NARROW)
def test_time_ranges_end_at_local_midnights_whatever_the_value_type(databases, engine, ranges, grain,
                                                                    expected):
    # aware text, naive text and bare dates side by side, filtered before any conversion
    assert revenue_by_period(databases[engine], grain, ranges) == expected


def test_sqlite_filters_the_raw_column_without_the_offset_case(databases):
    source = databases["sqlite"]
    request = SourceRequest("month", "Europe/Paris", 0, YEAR_2026, (), source.inputs)
    sql, _, _ = source._build(request, source._span(request))
    sql = sql.lower()
    rows = sql[sql.index('from "orders" as "__src"'):]
    where = rows[rows.index(" where ") + 7:].split(') as "__rows"')[0]
    assert 'datetime("ordered_at") >= ' in where
    # the conversion to local time (datetime(utc, offset modifier)) is for the period only
    assert "datetime(datetime(" not in where and "'unixepoch'" not in where
    assert "datetime(datetime(" in sql


def test_the_event_at_2330_utc_on_31_october_is_in_november_in_paris(databases):
    for name in ("duckdb", "sqlite"):
        days = fetch(databases[name], grain="day", dims=())
        assert days[("2026-11-01",)]["revenue"] == 50.0
        assert days[("2026-10-31",)]["revenue"] == 10.0  # the naive 23:30 stays on the 31st


def test_latest_is_local_time(databases):
    assert str(databases["duckdb"].latest(SourceRequest("day", "Europe/Paris"))) == "2026-11-01 00:30:00"
    assert str(databases["sqlite"].latest(SourceRequest("day", "Europe/Paris"))) == "2026-11-01 00:30:00"
    assert str(databases["sqlite"].latest(SourceRequest("day", "UTC"))) == "2026-10-31 23:30:00"


def test_native_timestamp_types_in_duckdb(tmp_path, source_types):
    con = duckdb.connect(str(tmp_path / "typed.duckdb"))
    con.execute("SET TimeZone = 'UTC'")
    con.execute("CREATE TABLE t (aware TIMESTAMPTZ, naive TIMESTAMP, day DATE, n INTEGER)")
    con.execute("INSERT INTO t VALUES ('2026-10-31 23:30:00+00', '2026-10-31 23:30:00', '2026-10-31', 1)")
    con.close()
    months = {}
    for column in ("aware", "naive", "day"):
        source = source_types["duckdb"].obj("t", {"path": "typed.duckdb", "table": "t", "time": column,
                                                  "inputs": {"n": {"agg": "sum"}}}, SourceContext(project_dir=tmp_path))
        months[column] = list(fetch(source, dims=()))
    assert months == {"aware": [("2026-11",)], "naive": [("2026-10",)], "day": [("2026-10",)]}


def test_epoch_numbers_in_sqlite_are_utc_instants(tmp_path, source_types):
    con = sqlite3.connect(tmp_path / "e.sqlite")
    con.execute("CREATE TABLE e (ts INTEGER, n INTEGER)")
    con.execute("INSERT INTO e VALUES (1793489400, 1)")  # 2026-10-31T23:30:00Z
    con.commit()
    con.close()
    source = source_types["sqlite"].obj("e", {"path": "e.sqlite", "table": "e", "time": "ts",
                                              "inputs": {"n": {"agg": "sum"}}}, SourceContext(project_dir=tmp_path))
    assert list(fetch(source, dims=())) == [("2026-11",)]
    november = ((date(2026, 11, 1), date(2026, 12, 1)),)
    assert list(fetch(source, dims=(), ranges=november)) == [("2026-11",)]
    assert list(fetch(source, dims=(), ranges=OCTOBER_ONLY)) == []


OCTOBER_ONLY = ((date(2026, 10, 1), date(2026, 11, 1)),)


def test_missing_database_files_are_errors_and_are_not_created(tmp_path, source_types):
    for kind in ("duckdb", "sqlite"):
        source = source_types[kind].obj("shop", {"path": f"none.{kind}", "table": "orders", "time": "t",
                                                 "inputs": {"x": {"agg": "sum"}}}, SourceContext(project_dir=tmp_path))
        with pytest.raises(SourceError, match=f"source 'shop': database file .*none.{kind} does not exist"):
            source.fetch(SourceRequest("month", "UTC", 0, YEAR_2026, (), source.inputs))
        assert not (tmp_path / f"none.{kind}").exists()


def test_database_errors_are_translated_at_the_boundary(databases, tmp_path, source_types):
    for kind, path in (("duckdb", "shop.duckdb"), ("sqlite", "shop.sqlite")):
        source = source_types[kind].obj("shop", {"path": path, "table": "nope", "time": "ordered_at",
                                                 "inputs": {"x": {"agg": "sum"}}}, SourceContext(project_dir=tmp_path))
        with pytest.raises(SourceError, match=f"source 'shop': table 'nope' is not in {path}; "
                                              "its tables: orders$"):
            source.fetch(SourceRequest("month", "UTC", 0, YEAR_2026, (), source.inputs))


@pytest.mark.parametrize("settings, message", [
    ({"table": "orders", "query": "SELECT 1"}, "either 'table' or 'query'"),
    ({}, "either 'table' or 'query'"),
    ({"table": "orders", "url": "informix://u@h/db"},
     r"the informix dialect is not supported \(supported: awsathena, bigquery, clickhouse, "
     r"databricks, duckdb, hive, mariadb, mssql, mysql, oracle, postgresql, redshift, snowflake, "
     r"sqlite, trino\)"),
    ({"table": "orders", "url": "not a url"}, "not a valid SQLAlchemy URL"),
])
def test_bad_database_settings(source_types, tmp_path, settings, message):
    kind = "sql" if "url" in settings else "sqlite"
    base = {"time": "t", "inputs": {"x": {"agg": "sum"}}, **({} if kind == "sql" else {"path": "x.db"})}
    with pytest.raises(SourceError, match=message):
        source_types[kind].obj("shop", {**base, **settings}, SourceContext(project_dir=tmp_path))


def test_sql_source_without_sqlalchemy_names_the_extra(source_types, tmp_path, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_sqlalchemy(name, *args, **kwargs):
        if name == "sqlalchemy" or name.startswith("sqlalchemy."):
            raise ImportError("No module named 'sqlalchemy'", name="sqlalchemy")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_sqlalchemy)
    with pytest.raises(SourceError, match=r"pip install 'kpiforge\[sql\]'"):
        source_types["sql"].obj("shop", {"url": "sqlite://", "table": "t", "time": "t",
                                         "inputs": {"x": {"agg": "sum"}}}, SourceContext(project_dir=tmp_path))


# ----------------------------------------------------------------------------- PostgreSQL

@pytest.fixture(scope="module")
def pg_orders(postgres_url):
    import sqlalchemy as sa

    engine = sa.create_engine(postgres_url)
    with engine.begin() as con:
        con.execute(sa.text("DROP TABLE IF EXISTS orders"))
        con.execute(sa.text("CREATE TABLE orders (ordered_at TEXT, channel TEXT, amount NUMERIC, "
                            "order_id TEXT, status TEXT, aware TIMESTAMPTZ, naive TIMESTAMP)"))
        for row in ROWS:
            con.execute(sa.text("INSERT INTO orders VALUES (:t, :c, :a, :o, :s, NULL, NULL)"),
                        dict(zip("tcaos", row)))
        con.execute(sa.text("INSERT INTO orders (amount, aware, naive) VALUES "
                            "(1, '2026-10-31 23:30:00+00', '2026-10-31 23:30:00')"))
    engine.dispose()
    return postgres_url


@pytest.mark.slow
@pytest.mark.parametrize("grain, tz, week_start", [
    ("month", "Europe/Paris", 0), ("month", "UTC", 0), ("day", "Europe/Paris", 0), ("week", "UTC", 6),
])
def test_postgresql_agrees_with_duckdb(pg_orders, databases, source_types, tmp_path, grain, tz, week_start):
    source = source_types["sql"].obj("shop", {"url": pg_orders, "table": "orders", "time": "ordered_at",
                                              "dimensions": ["channel"], "inputs": INPUTS}, SourceContext(project_dir=tmp_path))
    expected = fetch(databases["duckdb"], grain, tz, week_start)
    got = fetch(source, grain, tz, week_start)
    # the extra row without ordered_at has no time: it must not appear anywhere
    assert got == expected


@pytest.mark.slow
def test_postgresql_native_types_and_secret_from_the_environment(pg_orders, tmp_path, monkeypatch):
    parts = urlsplit(pg_orders)
    password = parts.password
    monkeypatch.setenv("KF_TEST_PG_PASSWORD", password)
    url = pg_orders.replace(f":{password}@", ":${KF_TEST_PG_PASSWORD}@")
    assert password not in url
    from kpiforge._project import project_from_dict

    project = project_from_dict({"timezone": "Europe/Paris", "sources": {
        "aware": {"type": "sql", "url": url, "table": "orders", "time": "aware",
                  "inputs": {"a": {"column": "amount", "agg": "sum"}}},
        "naive": {"type": "sql", "url": url, "table": "orders", "time": "naive",
                  "inputs": {"b": {"column": "amount", "agg": "sum"}}},
    }}, root=tmp_path)
    plugins = load_plugins()
    months = {}
    for name in ("aware", "naive"):
        source = plugins.source_types["sql"].obj(name, project.source_settings(name), SourceContext(project_dir=tmp_path))
        months[name] = list(fetch(source, dims=()))
    assert months == {"aware": [("2026-11",)], "naive": [("2026-10",)]}

    monkeypatch.setenv("KF_TEST_PG_PASSWORD", password + "-wrong")
    source = plugins.source_types["sql"].obj("aware", project.source_settings("aware"), SourceContext(project_dir=tmp_path))
    with pytest.raises(SourceError, match="source 'aware': cannot open table 'orders' of the postgresql "
                                          "database kpi: .*password authentication failed") as info:
        fetch(source, dims=())
    assert password + "-wrong" not in str(info.value) and password + "-wrong" not in info.value.debug


@pytest.mark.slow
@pytest.mark.parametrize("ranges, grain, expected", NARROW)
def test_postgresql_time_ranges_end_at_local_midnights(pg_orders, source_types, tmp_path, ranges,
                                                       grain, expected):
    source = source_types["sql"].obj("shop", {"url": pg_orders, "table": "orders", "time": "ordered_at",
                                              "inputs": INPUTS}, SourceContext(project_dir=tmp_path))
    assert revenue_by_period(source, grain, ranges) == expected
    for column in ("aware", "naive"):  # native timestamptz / timestamp, 31 Oct 23:30 (UTC / local)
        typed = source_types["sql"].obj("shop", {"url": pg_orders, "table": "orders", "time": column,
                                                 "inputs": {"revenue": {"column": "amount", "agg": "sum"}}},
                                        SourceContext(project_dir=tmp_path))
        nov_1 = ((date(2026, 11, 1), date(2026, 11, 2)),)
        assert revenue_by_period(typed, "day", nov_1) == ({"2026-11-01": 1.0} if column == "aware" else {})


@pytest.mark.slow
@pytest.mark.parametrize("settings, message", [
    ({"table": "orders", "inputs": {"x": {"column": "amont", "agg": "sum"}}},
     "source 'shop': input 'x': column 'amont' is not in table 'orders' of the postgresql database kpi "
     "(did you mean 'amount'?); its columns: ordered_at, channel, amount, order_id, status, aware, naive"),
    ({"table": "orders", "inputs": {"x": {"column": "Amount", "agg": "sum"}}},  # quoted: case matters
     "source 'shop': input 'x': column 'Amount' is not in table 'orders' of the postgresql database kpi "
     "(did you mean 'amount'?)"),
    ({"table": "orders", "inputs": {"x": {"column": "status", "agg": "sum"}}},
     "source 'shop': input 'x' takes the sum of column 'status' of table 'orders' of the postgresql "
     "database kpi, which holds text, not numbers"),
    ({"table": "ordres", "inputs": {"x": {"column": "amount", "agg": "sum"}}},
     "source 'shop': table 'ordres' is not in the postgresql database kpi (did you mean 'orders'?)"),
    ({"query": "SELECT aware, amount FROM orders", "inputs": {"x": {"column": "amuont", "agg": "sum"}}},
     "source 'shop': input 'x': column 'amuont' is not in the query on the postgresql database kpi "
     "(did you mean 'amount'?); its columns: aware, amount"),
])
def test_postgresql_column_errors_are_checked_before_the_query(pg_orders, source_types, tmp_path, settings,
                                                               message):
    source = source_types["sql"].obj("shop", {"url": pg_orders, "time": "aware", **settings}, SourceContext(project_dir=tmp_path))
    with pytest.raises(SourceError) as info:
        source.fetch(SourceRequest("month", "UTC", 0, YEAR_2026, (), source.inputs))
    assert str(info.value).startswith(message), str(info.value)
    assert "psycopg" not in str(info.value) and "SELECT" not in str(info.value)
