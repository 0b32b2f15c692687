"""The query cache: a warm run renders no SQL (no sqlglot), and a hit is exactly the miss.

A SQL source keeps the text and the bound parameters of its rendered query under a key of
everything they depend on (plugins/sources/_sqlcache.py, kpiforge.sources.QueryCache). These
tests check that a warm ``kpiforge run`` imports no sqlglot, that what runs on a hit is the very
SQL and parameters a miss runs (for DuckDB files and databases, SQLite, SQLAlchemy), that any
change of request, settings, time type or code is a miss, and that a broken, unwritable or
turned-off cache only means rendering again.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import textwrap
from contextlib import contextmanager
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import duckdb
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from kpiforge._plugins import load_plugins
from kpiforge.hookspecs import SourceContext
from kpiforge.plugins.sources import _sqlcache, _sqlsource
from kpiforge.sources import Condition, InputSpec, QueryCache, SourceRequest
from kpiforge import _query_cache

ROWS = [
    ("2026-06-30T22:30:00Z", "search", 7.0, "o0", "paid", 3),
    ("2026-10-05 10:00:00+02:00", "search", 30.0, "o3", "paid", 1),
    ("2026-10-06", "social", 20.0, "o4", "refunded", 0),
    ("2026-10-31 23:30:00", "social", 10.0, "o2", "paid", 2),
    ("2026-10-31T23:30:00Z", "search", 50.0, "o1", "paid", 5),
]
BIG = Condition("amount > limit", (("amount", "amount"),), (("limit", 15.0),))
INPUTS = {
    "revenue": {"column": "amount", "agg": "sum"},
    "orders": {"column": "order_id", "agg": "count_distinct"},
    "paid": {"column": "order_id", "agg": "count_distinct", "filter": {"status": "paid"}},
    "first_amount": {"column": "amount", "agg": "first"},
    "lines": {"column": "*", "agg": "count"},
}
SPECS = {
    "revenue": InputSpec("revenue", "sum", column="amount"),
    "paid": InputSpec("paid", "sum", column="amount", filter={"status": ("paid", None)}),
    "big": InputSpec("big", "count", column="*", where=BIG),
    "two": InputSpec("two", "count", column="*", filter={"items": 2}),
    "last": InputSpec("last", "last", column="amount"),
}
YEAR = ((date(2026, 1, 1), date(2027, 1, 1)),)
REQUESTS = {
    "month-paris": SourceRequest("month", "Europe/Paris", 0, YEAR, ("channel",), SPECS),
    "week-sunday-ny": SourceRequest("week", "America/New_York", 6, YEAR, ("channel",), SPECS),
    "day-all-time": SourceRequest("day", "UTC", 0, (), (), {"revenue": SPECS["revenue"]}),
    "quarter-two-ranges": SourceRequest(
        "quarter", "Asia/Kolkata", 0, ((date(2026, 1, 1), date(2026, 7, 1)),
                                       (date(2026, 10, 1), date(2026, 11, 1))),
        ("channel", "status"), SPECS),
    "year-filters": SourceRequest("year", "Europe/Berlin", 2, YEAR, (), {
        "one": InputSpec("one", "sum", column="amount", filter={"items": 1}),
        "one_float": InputSpec("one_float", "sum", column="amount", filter={"items": 1.0}),
        "nulls": InputSpec("nulls", "count", column="*", filter={"status": None}),
        "expr": InputSpec("expr", "sum", expression="amount * 2")}),
}


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    """Each test its own cache folder, on."""
    monkeypatch.setenv("KPIFORGE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("KPIFORGE_NO_CACHE", raising=False)
    return tmp_path / "cache" / "queries"


@pytest.fixture(scope="module")
def source_types():
    return load_plugins().source_types


def write_data(root: Path) -> None:
    con = duckdb.connect(str(root / "shop.duckdb"))
    con.execute("CREATE TABLE orders (ordered_at VARCHAR, channel VARCHAR, amount DOUBLE, "
                "order_id VARCHAR, status VARCHAR, items INT)")
    con.executemany("INSERT INTO orders VALUES (?, ?, ?, ?, ?, ?)", ROWS)
    con.execute(f"COPY (SELECT CAST(ordered_at AS TIMESTAMPTZ) AS ordered_at, * EXCLUDE (ordered_at) "
                f"FROM orders) TO '{root / 'orders.parquet'}' (FORMAT parquet)")
    con.close()
    lite = sqlite3.connect(root / "shop.sqlite")
    lite.execute("CREATE TABLE orders (ordered_at TEXT, channel TEXT, amount REAL, order_id TEXT, "
                 "status TEXT, items INTEGER)")
    lite.executemany("INSERT INTO orders VALUES (?, ?, ?, ?, ?, ?)", ROWS)
    lite.commit()
    lite.close()


def sources(root: Path, source_types) -> dict:
    common = {"time": "ordered_at", "dimensions": ["channel", "status"], "inputs": INPUTS}
    settings = {
        "parquet": ("parquet", {"path": "orders.parquet"}),
        "duckdb": ("duckdb", {"path": "shop.duckdb", "table": "orders"}),
        "duckdb-query": ("duckdb", {"path": "shop.duckdb", "query": "SELECT * FROM orders"}),
        "sqlite": ("sqlite", {"path": "shop.sqlite", "table": "orders"}),
        "sql+sqlite": ("sql", {"url": f"sqlite:///{root / 'shop.sqlite'}", "table": "orders"}),
    }
    context = SourceContext(project_dir=root)
    return {name: source_types[kind].obj("shop", {**common, **more}, context)
            for name, (kind, more) in settings.items()}


@pytest.fixture
def shop(tmp_path, source_types):
    write_data(tmp_path)
    return sources(tmp_path, source_types)


class Spy:
    """A session that records what it is asked to run."""

    def __init__(self, session, seen):
        self.session, self.seen = session, seen

    def __getattr__(self, name):
        return getattr(self.session, name)

    def query(self, sql, params):
        self.seen.append((sql, params))
        return self.session.query(sql, params)


def executed(source, request):
    """(the SQL and parameters the fetch ran, its frame as plain values)."""
    seen: list = []
    opened = type(source)._session

    @contextmanager
    def spied(setup):
        with opened(source, setup) as session:
            yield Spy(session, seen)

    source._session = spied
    try:
        frame = source.fetch(request)
    finally:
        del source._session
    ran = seen[-1]  # SQLite over all time asks for the span of its data first
    assert "GROUP BY" in ran[0]
    values = {k: [None if np.isnan(x) else x for x in v.tolist()] for k, v in frame.inputs.items()}
    return ran, (frame.periods.tolist(), {k: v.tolist() for k, v in frame.dims.items()}, values)


def typed(params):
    """Parameters with the type of every value (1, 1.0 and True are not the same parameter)."""
    def one(v):
        return [type(v).__name__, [one(x) for x in v]] if isinstance(v, (list, tuple)) else [type(v).__name__, v]
    return [(k, one(v)) for k, v in params.items()]


@pytest.fixture
def renders(monkeypatch):
    """How many times a query was rendered (a miss) rather than read from the cache."""
    count = {"aggregate": 0, "latest": 0}
    real_aggregate, real_latest = _sqlsource.build_aggregate_query, _sqlsource.build_latest_query

    def aggregate(*args, **kwargs):
        count["aggregate"] += 1
        return real_aggregate(*args, **kwargs)

    def latest(*args, **kwargs):
        count["latest"] += 1
        return real_latest(*args, **kwargs)

    monkeypatch.setattr(_sqlsource, "build_aggregate_query", aggregate)
    monkeypatch.setattr(_sqlsource, "build_latest_query", latest)
    return count


# ----------------------------------------------------------------------------- a warm run

PROJECT = """\
timezone: Europe/Paris
sources:
  ads:
    type: parquet
    path: ads.parquet
    time: day
    dimensions: [channel]
    inputs:
      impressions: {agg: sum}
      clicks: {agg: sum}
"""


def test_a_warm_run_imports_no_sqlglot_and_gives_the_same_records(tmp_path):
    duckdb.sql(f"COPY (SELECT DATE '2026-09-20' + CAST(i % 40 AS INT) AS day, "
               f"['search', 'social'][1 + i % 2] AS channel, 100 + i % 7 AS impressions, "
               f"i % 5 AS clicks FROM range(400) t(i)) TO '{tmp_path / 'ads.parquet'}' (FORMAT parquet)")
    (tmp_path / "kpiforge.yaml").write_text(PROJECT)
    env = {**os.environ, "KPIFORGE_CACHE_DIR": str(tmp_path / "cache")}
    env.pop("KPIFORGE_NO_CACHE", None)
    command = [sys.executable, "-X", "importtime", "-m", "kpiforge", "run", "--grain", "week",
               "--from", "2026-09-21", "--to", "2026-10-25", "--by", "channel", "--kpi", "ctr",
               "--format", "json", "--no-alerts"]
    runs = [subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True,
                           timeout=120) for _ in range(3)]
    for run in runs:
        assert run.returncode == 0, run.stderr[-2000:]
    imported = [{line.split("|")[-1].strip() for line in run.stderr.splitlines()
                 if line.startswith("import time:")} for run in runs]
    assert {"sqlglot", "sqlglot.generator"} <= imported[0]  # the cold run renders the query
    for warm in imported[1:]:
        assert "kpiforge.plugins.sources._sqlsource" in warm  # the check sees the run's imports
        assert not {m for m in warm if m == "sqlglot" or m.startswith("sqlglot.")}
    records = [json.loads(run.stdout)["results"] for run in runs]
    assert len(records[0]) == 2 * 5 and all(r["value"] is not None for r in records[0])
    assert records[1] == records[0] and records[2] == records[0]
    assert len(list((tmp_path / "cache" / "queries").iterdir())) == 1


# ----------------------------------------------------------------------------- hit == miss

@pytest.mark.parametrize("request_name", sorted(REQUESTS))
@pytest.mark.parametrize("engine", ["parquet", "duckdb", "duckdb-query", "sqlite", "sql+sqlite"])
def test_a_hit_runs_the_very_sql_and_parameters_of_a_miss(shop, engine, request_name, renders,
                                                          monkeypatch, own_cache):
    source, request = shop[engine], REQUESTS[request_name]
    monkeypatch.setenv("KPIFORGE_NO_CACHE", "1")
    uncached = executed(source, request)
    assert renders["aggregate"] == 1 and not own_cache.exists()
    monkeypatch.delenv("KPIFORGE_NO_CACHE")
    miss = executed(source, request)
    assert renders["aggregate"] == 2 and len(list(own_cache.iterdir())) == 1
    hit = executed(source, request)
    assert renders["aggregate"] == 2  # not rendered: read from the cache
    for other in (miss, hit):
        (sql, params), frame = other
        assert sql == uncached[0][0]
        assert typed(params) == typed(uncached[0][1]) and repr(params) == repr(uncached[0][1])
        assert frame == uncached[1]


@pytest.mark.parametrize("engine", ["parquet", "duckdb", "sqlite"])
def test_latest_is_cached_too(shop, engine, renders):
    source = shop[engine]
    request = SourceRequest("day", "Europe/Paris")
    first, second = source.latest(request), source.latest(request)
    assert first == second and first is not None
    assert renders["latest"] == 1
    assert source.latest(SourceRequest("day", "UTC")) != first and renders["latest"] == 2


def test_aggregate_sql_is_the_same_with_a_warm_cache(shop, monkeypatch):
    request = REQUESTS["month-paris"]
    monkeypatch.setenv("KPIFORGE_NO_CACHE", "1")
    cold = {name: shop[name].aggregate_sql(request) for name in ("duckdb", "sqlite")}
    cold["duckdb as postgres"] = shop["duckdb"].aggregate_sql(request, "postgres")
    monkeypatch.delenv("KPIFORGE_NO_CACHE")
    for _ in range(2):
        assert {name: shop[name].aggregate_sql(request) for name in ("duckdb", "sqlite")} \
            == {k: v for k, v in cold.items() if k in ("duckdb", "sqlite")}
        assert shop["duckdb"].aggregate_sql(request, "postgres") == cold["duckdb as postgres"]


# ----------------------------------------------------------------------------- what is a miss

def variants(base: SourceRequest) -> dict[str, SourceRequest]:
    specs = dict(base.inputs)

    def with_input(name: str, spec: InputSpec) -> SourceRequest:
        return SourceRequest(base.grain, base.timezone, base.week_start, base.ranges, base.dims,
                             {**specs, name: spec})

    paid = specs["paid"]
    return {
        "grain": SourceRequest("week", base.timezone, base.week_start, base.ranges, base.dims, specs),
        "timezone": SourceRequest(base.grain, "Europe/London", base.week_start, base.ranges,
                                  base.dims, specs),
        "ranges": SourceRequest(base.grain, base.timezone, base.week_start,
                                ((date(2026, 1, 1), date(2026, 12, 31)),), base.dims, specs),
        "dims": SourceRequest(base.grain, base.timezone, base.week_start, base.ranges, (), specs),
        "input order": SourceRequest(base.grain, base.timezone, base.week_start, base.ranges,
                                     base.dims, dict(reversed(specs.items()))),
        "aggregation": with_input("revenue", InputSpec("revenue", "max", column="amount")),
        "column": with_input("revenue", InputSpec("revenue", "sum", column="items")),
        "expression": with_input("revenue", InputSpec("revenue", "sum", expression="amount + 1")),
        "filter value": with_input("paid", InputSpec("paid", "sum", column="amount",
                                                     filter={"status": ("paid",)})),
        "filter 2 vs 2.0": with_input("two", InputSpec("two", "count", column="*",
                                                      filter={"items": 2.0})),
        "filter a list vs one": with_input("two", InputSpec("two", "count", column="*",
                                                           filter={"items": (2,)})),
        "condition parameter": with_input("big", InputSpec("big", "count", column="*", where=Condition(
            BIG.text, BIG.columns, (("limit", 16.0),)))),
        "condition text": with_input("big", InputSpec("big", "count", column="*", where=Condition(
            "amount >= limit", BIG.columns, BIG.values))),
        "condition column": with_input("big", InputSpec("big", "count", column="*", where=Condition(
            BIG.text, (("amount", "items"),), BIG.values))),
        "input name": SourceRequest(base.grain, base.timezone, base.week_start, base.ranges,
                                    base.dims, {**{k: v for k, v in specs.items() if k != "paid"},
                                                "paid2": InputSpec("paid2", paid.agg, paid.column,
                                                                   filter=paid.filter)}),
    }


@pytest.mark.parametrize("engine", ["parquet", "sqlite"])
def test_any_change_of_the_request_is_a_miss(shop, engine, renders):
    source, base = shop[engine], REQUESTS["month-paris"]
    executed(source, base)
    executed(source, base)
    assert renders["aggregate"] == 1
    expected = 1
    for name, changed in variants(base).items():
        ran, _ = executed(source, changed)
        expected += 1
        assert renders["aggregate"] == expected, name
        if name != "input name":  # the same SQL under other column names: still its own key
            again = executed(source, base)[0]
            assert (ran[0], typed(ran[1])) != (again[0], typed(again[1])), name
        assert renders["aggregate"] == expected, name  # and the base is still a hit


def test_a_changed_setting_or_time_type_is_a_miss(tmp_path, source_types, renders):
    write_data(tmp_path)
    context = SourceContext(project_dir=tmp_path)
    base = {"path": "orders.parquet", "time": "ordered_at", "dimensions": ["channel"], "inputs": INPUTS}
    request = SourceRequest("month", "Europe/Paris", 0, YEAR, ("channel",), SPECS)

    def run(**changes):
        source = source_types["parquet"].obj("shop", {**base, **changes}, context)
        return executed(source, request)

    run()
    run()
    assert renders["aggregate"] == 1
    duckdb.sql(f"COPY (SELECT * FROM '{tmp_path / 'orders.parquet'}') TO "
               f"'{tmp_path / 'copy.parquet'}' (FORMAT parquet)")
    changes = [{"path": "copy.parquet"}, {"path": ["orders.parquet", "copy.parquet"]},
               {"options": {"binary_as_string": True}}, {"query": "SELECT * FROM source"}]
    for n, change in enumerate(changes, start=2):
        run(**change)
        assert renders["aggregate"] == n, change
    # the same path now holds a DATE column: the described type changes, so does the query
    duckdb.sql(f"COPY (SELECT CAST(ordered_at AS DATE) AS ordered_at, * EXCLUDE (ordered_at) FROM "
               f"'{tmp_path / 'copy.parquet'}') TO '{tmp_path / 'orders.parquet'}' (FORMAT parquet)")
    (sql, _), _ = run()
    assert renders["aggregate"] == len(changes) + 2
    assert "timezone" not in sql  # a DATE is local time already: no conversion


def test_code_of_a_third_party_dialect_and_sqlglot_are_in_the_key(tmp_path, monkeypatch):
    (tmp_path / "my_dialect.py").write_text(
        "from kpiforge.sources import DuckDBDialect\n\nclass MyDialect(DuckDBDialect):\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    from my_dialect import MyDialect

    before = _sqlcache._code((MyDialect,))
    assert [str(tmp_path / "my_dialect.py")] in [entry[:1] for entry in before]
    assert any(entry[0].endswith(os.path.join("sources", "_sql.py")) for entry in before)
    os.utime(tmp_path / "my_dialect.py", ns=(1, 1))
    _sqlcache._code.cache_clear()
    assert _sqlcache._code((MyDialect,)) != before
    import sqlglot  # the test may import it; the key found its version without

    package, distributions, version = _sqlcache._sqlglot()
    assert package == os.path.dirname(sqlglot.__file__)
    assert f"sqlglot-{sqlglot.__version__}.dist-info" in distributions
    assert version is None or sqlglot.__version__ in version


# ----------------------------------------------------------------------------- never an error

@pytest.mark.parametrize("damage", [
    b"", b"kpiforge query cache 1\n", b"not ours\nat all\n{}\n", b"\xff\xfe\x00garbage",
    "wrong key", "cut short", "params a list", "unknown tag", "sql a number", "deep nesting",
])
def test_a_corrupt_cache_file_is_a_miss(shop, renders, own_cache, damage):
    source, request = shop["parquet"], REQUESTS["month-paris"]
    expected = executed(source, request)
    (path,) = own_cache.iterdir()
    text = path.read_text()
    header, key, body = text.split("\n", 2)
    broken = {
        "wrong key": f"{header}\n{'0' * 64}\n{body}",
        "cut short": text[: len(text) // 2],
        "params a list": f"{header}\n{key}\n" + body.replace('["params",["m"', '["params",["l"', 1),
        "unknown tag": f"{header}\n{key}\n" + body.replace('["l",', '["x",'),
        "sql a number": f"{header}\n{key}\n" + json.dumps(["m", [["sql", 1], ["params", ["m", []]]]]),
        "deep nesting": f"{header}\n{key}\n" + "[" * 100000 + "]" * 100000,
    }.get(damage) if isinstance(damage, str) else None
    path.write_bytes(broken.encode() if broken is not None else damage)
    assert executed(source, request) == expected
    assert renders["aggregate"] == 2
    assert path.read_text() == text  # written again, whole
    assert executed(source, request) == expected and renders["aggregate"] == 2


@pytest.mark.parametrize("setup", ["a file", "read-only", "off"])
def test_an_unusable_or_turned_off_cache_only_means_rendering_again(shop, renders, tmp_path,
                                                                    monkeypatch, setup):
    if setup == "a file":
        (tmp_path / "blocker").write_text("")
        monkeypatch.setenv("KPIFORGE_CACHE_DIR", str(tmp_path / "blocker"))
    elif setup == "read-only":
        if os.geteuid() == 0:
            pytest.skip("root writes a read-only folder")
        (tmp_path / "ro").mkdir(mode=0o500)
        monkeypatch.setenv("KPIFORGE_CACHE_DIR", str(tmp_path / "ro"))
    else:
        monkeypatch.setenv("KPIFORGE_NO_CACHE", "1")
    source, request = shop["sqlite"], REQUESTS["week-sunday-ny"]
    first, second = executed(source, request), executed(source, request)
    assert first == second and renders["aggregate"] == 2
    assert not (tmp_path / "cache").exists()


def test_the_debug_path_shows_the_query_that_would_run_cold_and_warm(tmp_path):
    duckdb.sql(f"COPY (SELECT DATE '2026-10-01' AS day, 'search' AS channel, 100 AS impressions, "
               f"5 AS clicks) TO '{tmp_path / 'ads.parquet'}' (FORMAT parquet)")
    (tmp_path / "kpiforge.yaml").write_text(PROJECT.replace("clicks: {agg: sum}",
                                                            "clicks: {column: clics, agg: sum}"))
    env = {**os.environ, "KPIFORGE_CACHE_DIR": str(tmp_path / "cache")}
    for _ in range(2):
        run = subprocess.run([sys.executable, "-m", "kpiforge", "--debug", "run", "--period",
                              "2026-10", "--no-alerts"], cwd=tmp_path, env=env,
                             capture_output=True, text=True, timeout=120)
        assert run.returncode == 1
        assert "column 'clics' is not in ads.parquet (did you mean 'clicks'?)" in run.stderr
        assert "the query that would run:" in run.stderr and "read_parquet($p0" in run.stderr
        assert "Traceback" not in run.stderr


# ----------------------------------------------------------------------------- the store

def test_the_store_keeps_the_most_recently_used_queries(tmp_path, monkeypatch):
    monkeypatch.setattr(_query_cache, "MAX_ENTRIES", 3)
    cache = QueryCache(tmp_path / "q")
    keys = [cache.key("query", n) for n in range(5)]
    for n, key in enumerate(keys):
        cache.put(key, f"SELECT {n}", {"p0": n})
        os.utime(tmp_path / "q" / key, ns=(10**9 * n, 10**9 * n))
    assert sorted(p.name for p in (tmp_path / "q").iterdir()) == sorted(keys[2:])
    assert cache.get(keys[2]) == ("SELECT 2", {"p0": 2})  # used: now the newest
    cache.put(keys[0], "SELECT 0", {})
    assert cache.get(keys[3]) is None and cache.get(keys[2]) is not None


def test_the_store_refuses_what_it_cannot_give_back_exactly(tmp_path, monkeypatch):
    cache = QueryCache(tmp_path / "q")
    aware = datetime(2026, 1, 1, tzinfo=timezone(timedelta(hours=2)))
    for part in (aware, Decimal("1.5"), {1: "a"}, object(), np.float64(1.0), True.__class__):
        assert cache.key("query", part) is None
    for value in (aware, Decimal("1.5"), np.int64(3), {"a": object()}, ("a", 1j)):
        key = cache.key("query", repr(value))
        cache.put(key, "SELECT 1", {"p0": value})
        assert cache.get(key) is None
    monkeypatch.setattr(_query_cache, "MAX_BYTES", 200)
    key = cache.key("long")
    cache.put(key, "SELECT " + "1, " * 100 + "1", {})
    assert cache.get(key) is None
    assert QueryCache(None).key("x") is None and not QueryCache(None).enabled
    assert QueryCache(None).get("0" * 64) is None


def test_the_key_depends_on_every_part_and_its_type():
    cache = QueryCache(Path("unused"))
    parts = [1, 1.0, True, "1", (1,), [1], date(2026, 1, 1), datetime(2026, 1, 1), None,
             {"a": 1}, float("nan"), datetime(2026, 1, 1, fold=1)]
    keys = [cache.key(p) for p in parts]
    assert len(set(keys)) == len(parts) and all(len(k) == 64 for k in keys)
    assert cache.key("a", "b") != cache.key("ab") != cache.key(["a", "b"])


VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text()
    | st.dates() | st.datetimes(),
    lambda inner: st.lists(inner, max_size=4) | st.lists(inner, max_size=4).map(tuple)
    | st.dictionaries(st.text(max_size=5), inner, max_size=4),
    max_leaves=12)


@given(st.dictionaries(st.text(max_size=5), VALUES, max_size=5), st.text())
def test_a_stored_query_comes_back_as_it_went_in(params, sql):
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        cache = QueryCache(Path(folder))
        key = cache.key(sql, repr(params))
        cache.put(key, sql, params)
        found = cache.get(key)
    assert found is not None
    assert found[0] == sql and repr(found[1]) == repr(params)
    assert typed_deep(found[1]) == typed_deep(params)


def typed_deep(value):
    if isinstance(value, dict):
        return ["dict", [(k, typed_deep(v)) for k, v in value.items()]]
    if isinstance(value, (list, tuple)):
        return [type(value).__name__, [typed_deep(v) for v in value]]
    return [type(value).__name__, repr(value)]


def test_the_query_cache_is_documented_next_to_the_verdict_cache():
    text = (Path(__file__).parent.parent / "docs" / "cli.md").read_text()
    assert "## The query cache" in text and "KPIFORGE_NO_CACHE" in text[text.index("## The query cache"):]
    assert textwrap.dedent(QueryCache.__doc__ or "").strip()
