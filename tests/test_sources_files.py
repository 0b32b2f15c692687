"""File sources (csv, parquet, json): DuckDB reads and aggregates; Python sees aggregates only."""

import json
from datetime import date

import numpy as np
import pytest

from kpiforge import SourceError
from kpiforge._plugins import load_plugins
from kpiforge._sources import InputSpec, SourceRequest

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
    return source_types[fmt].obj("ads", settings, tmp_path)


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
    import kpiforge.plugins.sources.files as files

    seen = []
    real = files.duckdb_columns

    def spy(connection, sql, params, setup):
        seen.append(sql)
        result = real(connection, sql, params, setup)
        seen.append(len(next(iter(result.values()))))
        return result

    monkeypatch.setattr(files, "duckdb_columns", spy)
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
        source_types["csv"].obj("ads", {"time": "date", "inputs": {}}, tmp_path)
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
    with pytest.raises(SourceError, match="source 'ads': query failed") as info:
        source.fetch(request(source))
    assert info.value.__cause__ is not None
