"""File sources (csv, parquet, json): DuckDB reads and aggregates; Python sees aggregates only."""

import json
import re
from datetime import date, datetime, timezone

import numpy as np
import pytest

from kpiforge import SourceError
from kpiforge._plugins import load_plugins
from kpiforge.sources import InputSpec, SourceRequest
from kpiforge.hookspecs import SourceContext

ROWS = [
    # date, channel, clicks, spend, user, status
    ("2026-09-30", "search", 1, 1.0, "u1", "paid"),
    ("2026-10-01", "search", 2, 2.0, "u1", "paid"),
    ("2026-10-02", "search", 3, 4.0, "u2", "refunded"),
    ("2026-10-02", "social", 4, 8.0, "u1", "paid"),
    ("2026-10-20", "social", 5, 16.0, "u3", None),
]
COLUMNS = ("date", "channel", "clicks", "spend", "user", "status")
OCTOBER = ((date(2026, 10, 1), date(2026, 11, 1)),)


@pytest.fixture(scope="module")
def source_types():
    return load_plugins().source_types


def write(tmp_path, fmt, rows=ROWS, columns=COLUMNS, name=None):
    path = tmp_path / (name or f"data.{fmt}")
    records = [dict(zip(columns, row)) for row in rows]
    if fmt == "csv":
        lines = [",".join(columns)] + [",".join("" if v is None else str(v) for v in row) for row in rows]
        path.write_text("\n".join(lines) + "\n")
    elif fmt == "json":
        path.write_text("\n".join(json.dumps(r) for r in records) + "\n")
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.Table.from_pylist(records), path)
    return path


def make(source_types, fmt, tmp_path, path, inputs, dims=("channel",), **extra):
    settings = {"type": fmt, "path": path, "time": "date", "dimensions": list(dims), "inputs": inputs, **extra}
    return source_types[fmt].obj("ads", settings, SourceContext(project_dir=tmp_path))


def request(source, grain="month", dims=("channel",), ranges=OCTOBER, tz="UTC", week_start=0):
    return SourceRequest(grain, tz, week_start, ranges, tuple(dims), source.inputs)


def rows_of(frame, dims=("channel",)):
    """{(period, *dims): {input: value}} with NaN as None, to compare whole frames at once."""
    out = {}
    for i, label in enumerate(frame.periods.tolist()):
        key = (label, *(frame.dims[d][i] for d in dims))
        out[key] = {k: (None if np.isnan(v[i]) else float(v[i])) for k, v in frame.inputs.items()}
    return out


@pytest.mark.parametrize("fmt", ["csv", "parquet", "json"])
def test_each_format_aggregates_by_month_and_channel(source_types, tmp_path, fmt):
    write(tmp_path, fmt)
    source = make(source_types, fmt, tmp_path, f"data.{fmt}",
                  {"clicks": {"agg": "sum"}, "cost": {"column": "spend", "agg": "sum"}})
    frame = source.fetch(request(source))
    assert rows_of(frame) == {
        ("2026-10", "search"): {"clicks": 5.0, "cost": 6.0},
        ("2026-10", "social"): {"clicks": 9.0, "cost": 24.0},
    }
    assert frame.inputs["clicks"].dtype == np.float64


AGGREGATIONS = [
    ({"agg": "sum", "column": "clicks"}, {"search": 5.0, "social": 9.0}),
    ({"agg": "count", "column": "status"}, {"search": 2.0, "social": 1.0}),  # NULLs not counted
    ({"agg": "count", "column": "*"}, {"search": 2.0, "social": 2.0}),
    ({"agg": "count_distinct", "column": "user"}, {"search": 2.0, "social": 2.0}),
    ({"agg": "min", "column": "spend"}, {"search": 2.0, "social": 8.0}),
    ({"agg": "max", "column": "spend"}, {"search": 4.0, "social": 16.0}),
    ({"agg": "avg", "column": "spend"}, {"search": 3.0, "social": 12.0}),
    ({"agg": "first", "column": "clicks"}, {"search": 2.0, "social": 4.0}),
    ({"agg": "last", "column": "clicks"}, {"search": 3.0, "social": 5.0}),
    ({"agg": "sum", "column": "clicks", "filter": {"status": "paid"}}, {"search": 2.0, "social": 4.0}),
    ({"agg": "sum", "column": "clicks", "filter": {"status": ["paid", "refunded"]}},
     {"search": 5.0, "social": 4.0}),
    ({"agg": "sum", "column": "clicks", "filter": {"status": None}}, {"search": 0.0, "social": 5.0}),
    ({"agg": "count", "column": "*", "filter": {"status": "refunded"}}, {"search": 1.0, "social": 0.0}),
    ({"agg": "max", "column": "clicks", "filter": {"status": "refunded"}}, {"search": 3.0, "social": None}),
    ({"agg": "sum", "expression": "CASE WHEN clicks >= 3 THEN 1 ELSE 0 END"}, {"search": 1.0, "social": 2.0}),
]


@pytest.mark.parametrize("spec, expected", AGGREGATIONS,
                         ids=[json.dumps(s, sort_keys=True) for s, _ in AGGREGATIONS])
def test_every_aggregation(source_types, tmp_path, spec, expected):
    write(tmp_path, "csv")
    source = make(source_types, "csv", tmp_path, "data.csv", {"x": spec})
    got = rows_of(source.fetch(request(source)))
    assert {k[1]: v["x"] for k, v in got.items()} == expected


def test_globs_read_every_matching_file_whatever_their_column_order(source_types, tmp_path):
    (tmp_path / "data").mkdir()
    write(tmp_path, "csv", ROWS[:2], name="data/ads_1.csv")
    reordered = tuple(reversed(COLUMNS))
    write(tmp_path, "csv", [tuple(reversed(r)) for r in ROWS[2:]], reordered, name="data/ads_2.csv")
    write(tmp_path, "csv", [("2026-10-03", "search", 100, 0, "u9", "paid")], name="data/other.csv")
    source = make(source_types, "csv", tmp_path, "data/ads_*.csv", {"clicks": {"agg": "sum"}})
    assert {k[1]: v["clicks"] for k, v in rows_of(source.fetch(request(source))).items()} == {
        "search": 5.0, "social": 9.0}


def test_no_matching_file_is_an_error_naming_the_pattern(source_types, tmp_path):
    source = make(source_types, "csv", tmp_path, "data/nothing_*.csv", {"clicks": {"agg": "sum"}})
    with pytest.raises(SourceError, match=r"source 'ads': no file matches 'data/nothing_\*.csv'"):
        source.fetch(request(source))


def test_reader_options_are_passed_to_duckdb(source_types, tmp_path):
    (tmp_path / "semi.csv").write_text("date;channel;clicks\n2026-10-01;search;7\n")
    source = make(source_types, "csv", tmp_path, "semi.csv", {"clicks": {"agg": "sum"}},
                  options={"delim": ";"})
    assert rows_of(source.fetch(request(source))) == {("2026-10", "search"): {"clicks": 7.0}}


def test_odd_names_are_quoted_and_filter_values_are_bound(source_types, tmp_path):
    columns = ("date", 'ad "group"', "spend eur", "owner")
    rows = [("2026-10-01", "a", 1.5, "O'Brien"), ("2026-10-01", "a", 2.5, "x"), ("2026-10-01", "b", 4.0, "x")]
    write(tmp_path, "csv", rows, columns)
    inputs = {
        "cost": {"column": "spend eur", "agg": "sum"},
        "obrien": {"column": "spend eur", "agg": "sum", "filter": {"owner": "O'Brien"}},
        # an injection attempt is just a value that matches no row
        "inject": {"column": "spend eur", "agg": "count", "filter": {"owner": "x' OR '1'='1"}},
    }
    source = make(source_types, "csv", tmp_path, "data.csv", inputs, dims=('ad "group"',))
    got = rows_of(source.fetch(request(source, dims=('ad "group"',))), dims=('ad "group"',))
    assert got == {
        ("2026-10", "a"): {"cost": 4.0, "obrien": 1.5, "inject": 0.0},
        ("2026-10", "b"): {"cost": 4.0, "obrien": 0.0, "inject": 0.0},
    }


def test_one_group_by_query_per_request_and_only_aggregates_come_back(source_types, tmp_path, monkeypatch):
    rows = [(f"2026-10-{1 + i % 28:02d}", ("search", "social")[i // 28 % 2], 1, 1.0, f"u{i % 7}", "paid")
            for i in range(5000)]
    write(tmp_path, "csv", rows)
    from kpiforge.sources import DuckDBSession

    seen = []
    real = DuckDBSession.query

    def spy(self, sql, params):
        seen.append(sql)
        result = real(self, sql, params)
        seen.append(len(next(iter(result.values()))))
        return result

    monkeypatch.setattr(DuckDBSession, "query", spy)
    source = make(source_types, "csv", tmp_path, "data.csv",
                  {"clicks": {"agg": "sum"}, "users": {"column": "user", "agg": "count_distinct"}})
    frame = source.fetch(request(source, grain="day"))
    sql, returned = seen
    assert sql.count("GROUP BY") == 1
    assert returned == len(frame) == 28 * 2  # one row per day and channel, not 5000
    assert frame.inputs["clicks"].sum() == 5000


def test_time_range_and_week_grain(source_types, tmp_path):
    write(tmp_path, "csv")
    source = make(source_types, "csv", tmp_path, "data.csv", {"clicks": {"agg": "sum"}}, dims=())
    frame = source.fetch(request(source, grain="week", dims=(), ranges=((date(2026, 9, 28), date(2026, 10, 5)),)))
    assert rows_of(frame, ()) == {("2026-W40",): {"clicks": 10.0}}  # 30 Sep .. 2 Oct, one ISO week
    assert source.latest(request(source)).date() == date(2026, 10, 20)


def test_bad_settings_raise_source_errors(source_types, tmp_path):
    with pytest.raises(SourceError, match="'path' is required"):
        source_types["csv"].obj("ads", {"time": "date", "inputs": {}}, SourceContext(project_dir=tmp_path))
    with pytest.raises(SourceError, match="invalid reader option"):
        make(source_types, "csv", tmp_path, "x.csv", {}, options={"delim; DROP": ","})
    with pytest.raises(SourceError, match="unknown aggregation"):
        make(source_types, "csv", tmp_path, "x.csv", {"x": {"agg": "median"}})
    with pytest.raises(SourceError, match="cannot be split by campaign"):
        source = make(source_types, "csv", tmp_path, "x.csv", {"x": {"agg": "sum"}})
        source.fetch(request(source, dims=("campaign",)))
    assert InputSpec("x", "count", column="*").column == "*"


def test_a_broken_file_is_a_source_error_not_a_duckdb_exception(source_types, tmp_path):
    (tmp_path / "data.parquet").write_text("this is not parquet")
    source = make(source_types, "parquet", tmp_path, "data.parquet", {"clicks": {"agg": "sum"}})
    with pytest.raises(SourceError, match=r"source 'ads': .*data.parquet is not a Parquet file$") as info:
        source.fetch(request(source))
    assert info.value.__cause__ is not None and "magic bytes" in info.value.debug


# ----------------------------------------------------------------------------- query:

def test_a_query_reads_the_files_as_the_view_source(source_types, tmp_path):
    write(tmp_path, "csv")
    query = ("SELECT date, upper(channel) AS channel, clicks * 10 AS clicks FROM source "
             "WHERE status IS DISTINCT FROM 'refunded'")
    source = make(source_types, "csv", tmp_path, "data.csv", {"clicks": {"agg": "sum"}}, query=query)
    assert rows_of(source.fetch(request(source))) == {
        ("2026-10", "SEARCH"): {"clicks": 20.0},  # the refunded 3 clicks are gone
        ("2026-10", "SOCIAL"): {"clicks": 90.0},
    }


@pytest.mark.parametrize("fmt", ["csv", "parquet", "json"])
def test_the_time_filter_applies_to_the_query_result_not_to_the_rows_it_reads(source_types, tmp_path, fmt):
    write(tmp_path, fmt)
    # One row per month with the month before's clicks: October needs September's row, which
    # is outside the requested range. Filtering the files before the query would give NULL.
    query = """
        WITH monthly AS (
          SELECT CAST(date_trunc('month', CAST(date AS DATE)) AS DATE) AS month, sum(clicks) AS clicks
          FROM source GROUP BY 1
        )
        -- a comment, and one at the very end: the query is closed on a line of its own
        SELECT month, clicks, lag(clicks) OVER (ORDER BY month) AS previous_clicks FROM monthly -- end
    """
    source = make(source_types, fmt, tmp_path, f"data.{fmt}",
                  {"clicks": {"agg": "sum"}, "previous_clicks": {"agg": "sum"}},
                  dims=(), query=query)
    source.time = "month"
    assert rows_of(source.fetch(request(source, dims=())), ()) == {
        ("2026-10",): {"clicks": 14.0, "previous_clicks": 1.0}}
    # and rows the query moves into the range count, wherever they were in the files
    shifted = make(source_types, fmt, tmp_path, f"data.{fmt}", {"clicks": {"agg": "sum"}}, dims=(),
                   query="SELECT CAST(date AS DATE) + 1 AS day, clicks FROM source;")
    shifted.time = "day"
    october = rows_of(shifted.fetch(request(shifted, grain="day", dims=())), ())
    assert october[("2026-10-01",)] == {"clicks": 1.0}  # the row of 30 September
    assert ("2026-10-21",) in october and ("2026-10-20",) not in october


def test_a_query_over_several_files_and_latest(source_types, tmp_path):
    (tmp_path / "data").mkdir()
    write(tmp_path, "csv", ROWS[:2], name="data/ads_1.csv")
    write(tmp_path, "csv", ROWS[2:], name="data/ads_2.csv")
    source = make(source_types, "csv", tmp_path, ["data/ads_1.csv", "data/ads_2.csv"],
                  {"rows": {"column": "*", "agg": "count"}}, dims=(),
                  query="SELECT date, count(*) OVER () AS total FROM source")
    assert rows_of(source.fetch(request(source, dims=())), ()) == {("2026-10",): {"rows": 4.0}}
    assert source.latest(request(source)).date() == date(2026, 10, 20)


def test_query_settings_are_checked(source_types, tmp_path):
    with pytest.raises(SourceError, match="has no 'table'"):
        make(source_types, "csv", tmp_path, "x.csv", {}, table="orders")
    with pytest.raises(SourceError, match="'query' must be a SQL SELECT"):
        make(source_types, "csv", tmp_path, "x.csv", {}, query="  ")
    write(tmp_path, "csv")
    broken = make(source_types, "csv", tmp_path, "data.csv", {"clicks": {"agg": "sum"}},
                  query="SELECT * FROM nowhere")
    with pytest.raises(SourceError, match="source 'ads': the query over data.csv: .*nowhere"):
        broken.fetch(request(broken))


def test_the_project_schema_takes_query_on_file_sources_but_not_table(tmp_path):
    from kpiforge import ProjectError
    from kpiforge._project import load_project

    write(tmp_path, "csv")
    base = ("sources:\n  ads:\n    type: csv\n    path: data.csv\n    time: date\n"
            "    inputs: {clicks: {agg: sum}}\n")
    (tmp_path / "kpiforge.yaml").write_text(base + "    query: SELECT * FROM source\n")
    assert load_project(tmp_path / "kpiforge.yaml").sources["ads"].type == "csv"
    (tmp_path / "kpiforge.yaml").write_text(base + "    table: orders\n")
    with pytest.raises(ProjectError, match="sources.ads.table"):
        load_project(tmp_path / "kpiforge.yaml")
    (tmp_path / "kpiforge.yaml").write_text(base.replace("    path: data.csv\n", "")
                                            + "    query: SELECT * FROM source\n")
    with pytest.raises(ProjectError, match="missing required field 'path'"):
        load_project(tmp_path / "kpiforge.yaml")


# ----------------------------------------------------------------------------- time pushdown

EVENTS = [
    # ts (aware, UTC), clicks; Europe/Paris is UTC+2 until 25 October 01:00 UTC, then UTC+1
    ("2026-09-30T21:30:00Z", 1),   # 30 Sep 23:30 in Paris: September
    ("2026-09-30T22:30:00Z", 2),   # 1 Oct 00:30 in Paris: October, although 30 Sep in UTC
    ("2026-10-24T22:30:00Z", 4),   # 25 Oct 00:30 CEST: the 25th, although the 24th in UTC
    ("2026-10-25T22:30:00Z", 8),   # 25 Oct 23:30 CET: the 25th (a 25-hour day)
    ("2026-10-25T23:30:00Z", 16),  # 26 Oct 00:30 CET: the 26th, although the 25th in UTC
    ("2026-10-31T23:30:00Z", 32),  # 1 Nov 00:30 in Paris: November, although October in UTC
]


@pytest.fixture
def events(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    ts = pa.array([datetime.fromisoformat(t.replace("Z", "+00:00")) for t, _ in EVENTS],
                  pa.timestamp("us", tz="UTC"))
    pq.write_table(pa.table({"ts": ts, "clicks": [c for _, c in EVENTS]}), tmp_path / "events.parquet")
    return tmp_path / "events.parquet"


def test_the_time_range_is_filtered_on_the_raw_column_before_any_conversion(source_types, tmp_path, events):
    source = source_types["parquet"].obj("ev", {"path": "events.parquet", "time": "ts",
                                                "inputs": {"clicks": {"agg": "sum"}}}, SourceContext(project_dir=tmp_path))
    req = SourceRequest("month", "Europe/Paris", 0, OCTOBER, (), source.inputs)
    sql, params, _ = source._build(req, None)
    # the innermost SELECT, over the file, keeps rows by comparing the raw column with instants
    scan = sql[sql.index("read_parquet("):]
    where = scan[scan.index(" WHERE ") + 7:]
    assert where.startswith('(((CAST("ts" AS TIMESTAMPTZ) >= ')
    assert "TIMEZONE(" not in where.split(')) AS "__rows"')[0]
    assert '"__t" >=' not in sql and '"__t" <' not in sql  # no second, converted filter
    # DuckDB folds the bounds into the instants at which October starts and ends in Paris and
    # takes the filter into the Parquet scan itself (row-group statistics, no conversion)
    import duckdb

    con = duckdb.connect()
    for statement in source.dialect.setup("Europe/Paris"):
        con.execute(statement)
    plan = "\n".join(row[1] for row in con.execute("EXPLAIN " + sql, params).fetchall())
    scan = plan[plan.index("READ_PARQUET"):].split("╰")[0]
    assert re.search(r"ts >= '2026-09-30 22:00:00\+00'", scan), plan
    assert re.search(r"ts < '2026-10-31 23:00:00\+00'", scan), plan


@pytest.mark.parametrize("tz, grain, ranges, expected", [
    ("Europe/Paris", "month", OCTOBER, {("2026-10",): {"clicks": 2 + 4 + 8 + 16}}),
    ("Europe/Paris", "day", ((date(2026, 10, 25), date(2026, 10, 26)),), {("2026-10-25",): {"clicks": 12}}),
    ("Europe/Paris", "day", ((date(2026, 10, 1), date(2026, 10, 2)),), {("2026-10-01",): {"clicks": 2}}),
    ("UTC", "month", OCTOBER, {("2026-10",): {"clicks": 4 + 8 + 16 + 32}}),
    ("America/New_York", "month", OCTOBER, {("2026-10",): {"clicks": 4 + 8 + 16 + 32}}),
    ("Asia/Tokyo", "day", ((date(2026, 10, 1), date(2026, 10, 2)),), {("2026-10-01",): {"clicks": 3}}),
])
def test_raw_time_bounds_are_local_midnights_of_the_project_time_zone(source_types, tmp_path, events,
                                                                     tz, grain, ranges, expected):
    # Bounds taken as UTC midnights would keep 30 Sep 22:30Z out of October in Paris and put
    # 31 Oct 23:30Z in it: each case here has a row that such bounds would misplace.
    source = source_types["parquet"].obj("ev", {"path": "events.parquet", "time": "ts",
                                                "inputs": {"clicks": {"agg": "sum"}}}, SourceContext(project_dir=tmp_path))
    frame = source.fetch(SourceRequest(grain, tz, 0, ranges, (), source.inputs))
    assert rows_of(frame, ()) == expected


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_naive_times_and_dates_are_filtered_as_local_times(source_types, tmp_path, fmt):
    rows = [("2026-09-30 23:30:00", 1), ("2026-10-01 00:00:00", 2), ("2026-10-31 23:59:59", 4),
            ("2026-11-01 00:00:00", 8)]
    write(tmp_path, fmt, rows, ("ts", "n"))
    for tz in ("Europe/Paris", "Pacific/Kiritimati", "America/Los_Angeles"):
        source = source_types[fmt].obj("n", {"path": f"data.{fmt}", "time": "ts",
                                             "inputs": {"n": {"agg": "sum"}}}, SourceContext(project_dir=tmp_path))
        assert rows_of(source.fetch(SourceRequest("month", tz, 0, OCTOBER, (), source.inputs)), ()) == {
            ("2026-10",): {"n": 6.0}}, tz
    days = [("2026-09-30", 1), ("2026-10-01", 2), ("2026-10-31", 4), ("2026-11-01", 8)]
    write(tmp_path, "csv", days, ("day", "n"), name="days.csv")
    source = source_types["csv"].obj("d", {"path": "days.csv", "time": "day",
                                           "inputs": {"n": {"agg": "sum"}}}, SourceContext(project_dir=tmp_path))
    assert rows_of(source.fetch(SourceRequest("month", "Pacific/Kiritimati", 0, OCTOBER, (),
                                              source.inputs)), ()) == {("2026-10",): {"n": 6.0}}


def test_a_day_whose_midnight_is_skipped_or_repeated(source_types, tmp_path):
    # Sao Paulo (settled history): on 4 Nov 2018 00:00 became 01:00 (03:00Z); on 17 Feb 2019
    # 00:00 went back to 23:00 of the 16th (02:00Z), so the 17th began at 03:00Z.
    rows = [("2018-11-04T02:30:00Z", 1),   # 3 Nov 23:30
            ("2018-11-04T03:30:00Z", 2),   # 4 Nov 01:30
            ("2019-02-17T01:30:00Z", 4),   # 16 Feb 23:30 (-02)
            ("2019-02-17T02:30:00Z", 8),   # 16 Feb 23:30 again (-03)
            ("2019-02-17T03:30:00Z", 16)]  # 17 Feb 00:30
    write(tmp_path, "csv", rows, ("ts", "n"))
    source = source_types["csv"].obj("sp", {"path": "data.csv", "time": "ts",
                                            "inputs": {"n": {"agg": "sum"}}}, SourceContext(project_dir=tmp_path))

    def days(first, last):
        return rows_of(source.fetch(SourceRequest("day", "America/Sao_Paulo", 0, ((first, last),), (),
                                                  source.inputs)), ())

    assert days(date(2018, 11, 4), date(2018, 11, 5)) == {("2018-11-04",): {"n": 2.0}}
    assert days(date(2018, 11, 3), date(2018, 11, 4)) == {("2018-11-03",): {"n": 1.0}}
    assert days(date(2019, 2, 17), date(2019, 2, 18)) == {("2019-02-17",): {"n": 16.0}}
    assert days(date(2019, 2, 16), date(2019, 2, 17)) == {("2019-02-16",): {"n": 12.0}}


def test_day_start_is_exact_except_where_the_local_date_goes_back():
    from kpiforge.sources import day_start

    assert day_start(date(2026, 10, 1), "Europe/Paris") == (datetime(2026, 9, 30, 22, tzinfo=timezone.utc), True)
    assert day_start(date(2019, 2, 17), "America/Sao_Paulo") == (datetime(2019, 2, 17, 3, tzinfo=timezone.utc), True)
    assert day_start(date(2018, 11, 4), "America/Sao_Paulo") == (datetime(2018, 11, 4, 3, tzinfo=timezone.utc), True)
    # Alaska became American in 1867: its clocks went from 19 October back to 18 October, so
    # "on or after the 19th" is not one stretch of time and the local filter is kept as well
    assert day_start(date(1867, 10, 19), "America/Sitka")[1] is False
    assert day_start(date(1867, 10, 20), "America/Sitka")[1] is True
    from kpiforge.sources import DuckDBDialect, build_aggregate_query

    old = SourceRequest("day", "America/Sitka", 0, ((date(1867, 10, 19), date(1867, 10, 20)),), (),
                        {"n": InputSpec("n", "sum")})
    sql, _, _ = build_aggregate_query('"t"', "ts", old, DuckDBDialect())
    assert 'CAST("ts" AS TIMESTAMPTZ) >= ' in sql and '"__t" >= ' in sql


def test_identical_inputs_are_computed_once(source_types, tmp_path):
    write(tmp_path, "csv")
    inputs = {"clicks": {"agg": "sum"}, "visits": {"column": "clicks", "agg": "sum"},
              "paid": {"column": "user", "agg": "count_distinct", "filter": {"status": "paid"}},
              "orders": {"column": "user", "agg": "count_distinct", "filter": {"status": ["paid"]}},
              "buyers": {"column": "user", "agg": "count_distinct", "filter": {"status": "paid"}},
              "refunds": {"column": "user", "agg": "count_distinct", "filter": {"status": "refunded"}}}
    source = make(source_types, "csv", tmp_path, "data.csv", inputs)
    req = request(source)
    sql, _, names = source._build(req, None)
    assert sql.count("SUM(") == 1 and sql.count('"clicks" AS') == 1
    # paid and buyers share one count; a list of one value is another filter (IN), still right
    assert sql.count("COUNT(DISTINCT") == 3
    got = rows_of(source.fetch(req))
    assert got[("2026-10", "search")] == {"clicks": 5.0, "visits": 5.0, "paid": 1.0, "orders": 1.0,
                                         "buyers": 1.0, "refunds": 1.0}
    assert got[("2026-10", "social")] == {"clicks": 9.0, "visits": 9.0, "paid": 1.0, "orders": 1.0,
                                         "buyers": 1.0, "refunds": 0.0}
