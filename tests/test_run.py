"""``Project.run`` / ``kpiforge run``: the correctness rules, each built so the wrong way differs.

The project (Europe/Paris) has three sources: ``ads`` (CSV, by channel and campaign), ``shop``
(DuckDB, by channel only, TIMESTAMPTZ times) and ``web`` (CSV, by channel, visitor ids).
"""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import duckdb
import pytest

from kpiforge import Engine, Project, ProjectError, RunError, RunResult, SourceError, UnknownKpiError
from kpiforge._run_records import _change_pct

DEFINITIONS = """\
currency: EUR
kpis:
  - {id: ctr, name: CTR, formula: clicks / impressions * 100, unit: percent, direction: higher_is_better,
     inputs: {clicks: {unit: count}, impressions: {unit: count}}, thresholds: {good: 3, warning: 2, critical: 1}}
  - {id: aov, name: AOV, formula: revenue / orders, unit: currency, direction: higher_is_better,
     inputs: {revenue: {unit: currency}, orders: {unit: count}}}
  - {id: roas, name: ROAS, formula: revenue / cost, unit: ratio, direction: higher_is_better,
     inputs: {revenue: {unit: currency}, cost: {unit: currency}}}
  - {id: visitors, name: Visitors, formula: visitors, unit: count, direction: higher_is_better,
     inputs: {visitors: {unit: count}}}
  - {id: conversion_rate, name: CR, formula: conversions / visitors * 100, unit: percent,
     direction: higher_is_better, inputs: {conversions: {unit: count}, visitors: {unit: count}}}
"""

PROJECT = """\
definitions: [defs/]
currency: EUR
timezone: Europe/Paris
sources:
  ads:
    type: csv
    path: data/ads_*.csv
    time: date
    dimensions: [channel, campaign]
    inputs:
      impressions: {agg: sum}
      clicks: {agg: sum}
      cost: {column: spend, agg: sum}
  shop:
    type: duckdb
    path: data/shop.duckdb
    table: orders
    time: ordered_at
    dimensions: [channel]
    inputs:
      revenue: {column: amount, agg: sum, filter: {status: paid}}
      orders: {column: order_id, agg: count_distinct, filter: {status: paid}}
  web:
    type: csv
    path: data/web.csv
    time: ts
    dimensions: [channel]
    inputs:
      visitors: {column: visitor, agg: count_distinct}
"""

ADS = """\
date,channel,campaign,impressions,clicks,spend
2025-10-10,search,a,2000,20,4.0
2026-08-10,search,a,100,0,1.0
2026-09-15,search,a,1000,10,5.0
2026-10-01,search,a,100,1,1.0
2026-10-02,search,b,900,90,9.0
2026-10-02,social,c,500,5,10.0
"""

ORDERS = [
    ("2025-10-15 10:00:00+00", "search", "o0", 50.0, "paid"),
    ("2026-09-20 10:00:00+00", "search", "o1", 40.0, "paid"),
    ("2026-10-05 10:00:00+00", "search", "o2", 60.0, "paid"),
    ("2026-10-05 11:00:00+00", "search", "o2", 0.0, "paid"),  # a second line of the same order
    ("2026-10-06 10:00:00+00", "search", "o3", 40.0, "paid"),
    ("2026-10-07 10:00:00+00", "search", "o9", 999.0, "refunded"),
    ("2026-10-31 23:30:00+00", "search", "o4", 100.0, "paid"),  # 1 November 00:30 in Paris
]

WEB = """\
ts,channel,visitor
2026-10-01 09:00:00,search,v1
2026-10-01 10:00:00,search,v2
2026-10-02 09:00:00,search,v1
2026-10-20 09:00:00,social,v1
2026-10-20 10:00:00,social,v3
"""


def build_project(root: Path, project_text: str = PROJECT) -> Path:
    (root / "defs").mkdir(parents=True, exist_ok=True)
    (root / "defs" / "kpis.yaml").write_text(DEFINITIONS)
    (root / "data").mkdir(exist_ok=True)
    (root / "data" / "ads_2026.csv").write_text(ADS)
    (root / "data" / "web.csv").write_text(WEB)
    database = root / "data" / "shop.duckdb"
    if not database.exists():
        con = duckdb.connect(str(database))
        con.execute("CREATE TABLE orders (ordered_at TIMESTAMPTZ, channel VARCHAR, order_id VARCHAR, "
                    "amount DOUBLE, status VARCHAR)")
        con.executemany("INSERT INTO orders VALUES (?, ?, ?, ?, ?)", ORDERS)
        con.close()
    path = root / "kpiforge.yaml"
    path.write_text(project_text)
    return path


@pytest.fixture(scope="module")
def project_file(tmp_path_factory):
    return build_project(tmp_path_factory.mktemp("project"))


@pytest.fixture(scope="module")
def project(project_file):
    return Project.load(project_file)


@pytest.fixture(scope="module")
def in_memory(project_file):
    """A project from a dict, with the test definitions (``visitors`` is not in the catalog)."""
    def build(data):
        return Project.from_dict({"definitions": [str(project_file.parent / "defs")], **data})
    return build


def values(result, kpi, key="value"):
    """{(period, *slice values): value} of one KPI."""
    return {(r["period"], *r["slice"].values()): r[key] for r in result.to_records() if r["kpi"] == kpi}


# ----------------------------------------------------------------------------- correctness rules

def test_a_ratio_is_computed_from_the_period_totals_not_averaged_from_days(project):
    daily = project.run(grain="day", period="2026-10", kpis=["ctr"])
    assert {k: v for k, v in values(daily, "ctr").items() if v is not None} == {
        ("2026-10-01",): 1.0, ("2026-10-02",): pytest.approx(95 / 1400 * 100)}
    monthly = project.run(period="2026-10", kpis=["ctr"])
    # (1 + 90 + 5) / (100 + 900 + 500): the mean of the daily CTRs would be about 3.89
    assert values(monthly, "ctr") == {("2026-10",): pytest.approx(6.4)}


def test_count_distinct_is_recounted_at_each_grain_never_summed(project):
    days = values(project.run(grain="day", period="2026-10", kpis=["visitors"]), "visitors")
    assert sum(v for v in days.values() if v is not None) == 5  # v1 counted on three days
    month = project.run(period="2026-10", kpis=["visitors"])
    assert values(month, "visitors") == {("2026-10",): 3.0}
    by_channel = project.run(period="2026-10", by=["channel"], kpis=["visitors"])
    assert values(by_channel, "visitors") == {("2026-10", "search"): 2.0, ("2026-10", "social"): 2.0}
    assert values(project.run(period="2026", kpis=["visitors"]), "visitors") == {("2026",): 3.0}


def test_a_period_without_data_is_null_with_reason_no_data_for_every_kpi(project):
    result = project.run(start="2026-07-01", end="2026-10-31")
    july = [r for r in result.to_records() if r["period"] == "2026-07"]
    assert {r["kpi"] for r in july} == {"ctr", "aov", "roas", "visitors"}  # conversions: nobody
    for r in july:
        assert (r["value"], r["status"], r["reason"]) == (None, "unknown", "no data"), r
    # August has ad rows with 0 clicks: a real 0 %, not "no data"
    assert values(result, "ctr")[("2026-08",)] == 0.0


@pytest.mark.parametrize("by", [["channel"], ["channel", "campaign"], "campaign"])
def test_a_period_without_any_row_split_by_a_dimension_is_no_data_for_every_kpi(project, by):
    result = project.run(period="2026-07", by=by)
    assert {r.kpi for r in result} == {"ctr", "aov", "roas", "visitors"}
    for r in result.to_records():
        assert r["value"] is None and r["status"] == "unknown", r
        assert r["reason"] == "no data" or r["reason"].endswith("cannot be split by campaign"), r
        assert set(r["slice"].values()) == {None}
    assert values(result, "ctr", "reason") == {("2026-07", *[None] * len(result.by)): "no data"}


def test_a_slice_a_source_has_no_rows_for_is_no_data_and_a_partial_kpi_names_the_input(project):
    result = project.run(period="2026-10", by="channel", kpis=["ctr", "aov", "roas"])
    assert values(result, "ctr") == {("2026-10", "search"): pytest.approx(9.1),
                                     ("2026-10", "social"): pytest.approx(1.0)}
    assert values(result, "aov") == {("2026-10", "search"): 50.0, ("2026-10", "social"): None}
    assert values(result, "aov", "reason")[("2026-10", "social")] == "no data"
    assert values(result, "roas", "reason")[("2026-10", "social")] == "missing input: revenue"
    assert values(result, "roas")[("2026-10", "search")] == pytest.approx(100 / 10)


def test_a_source_that_cannot_be_split_gives_null_with_a_reason_never_the_total(project):
    result = project.run(period="2026-10", by=["channel", "campaign"], kpis=["ctr", "aov", "roas"])
    assert values(result, "ctr") == {("2026-10", "search", "a"): 1.0, ("2026-10", "search", "b"): 10.0,
                                     ("2026-10", "social", "c"): 1.0}
    for kpi in ("aov", "roas"):
        rows = [r for r in result.to_records() if r["kpi"] == kpi]
        assert len(rows) == 3
        for r in rows:
            assert r["value"] is None and r["status"] == "unknown"
            assert r["reason"] == "source 'shop' cannot be split by campaign"


def test_nothing_splittable_still_explains_itself(project):
    (row,) = project.run(period="2026-10", by="campaign", kpis=["aov"]).to_records()
    assert row["slice"] == {"campaign": None} and row["reason"] == "source 'shop' cannot be split by campaign"


def test_time_zone_boundaries_follow_the_project_time_zone(project, tmp_path):
    paris = project.run(grain="day", start="2026-10-31", end="2026-11-01", kpis=["aov"])
    assert values(paris, "aov") == {("2026-10-31",): None, ("2026-11-01",): 100.0}
    # the same data in a UTC project: the 23:30Z order is in October
    utc_file = build_project(tmp_path, PROJECT.replace("Europe/Paris", "UTC"))
    utc = Project.load(utc_file).run(period="2026-10", kpis=["aov"])
    assert values(utc, "aov") == {("2026-10",): pytest.approx((60 + 40 + 100) / 3)}
    assert values(project.run(period="2026-10", kpis=["aov"]), "aov") == {("2026-10",): 50.0}


def test_naive_times_are_local_and_aware_ones_are_converted(in_memory):
    rows = [{"ts": "2026-10-31 23:30:00", "n": 1.0}, {"ts": "2026-10-31T23:30:00Z", "n": 10.0}]
    project = in_memory({"timezone": "Europe/Paris", "sources": {"events": {
        "type": "records", "time": "ts", "data": rows, "inputs": {"visitors": {"column": "n", "agg": "sum"}}}}})
    result = project.run(grain="day", start="2026-10-31", end="2026-11-01", kpis=["visitors"])
    assert values(result, "visitors") == {("2026-10-31",): 1.0, ("2026-11-01",): 10.0}


# ----------------------------------------------------------------------------- periods, compare

def test_the_default_period_is_the_latest_with_data(project):
    result = project.run(kpis=["aov"])
    assert result.periods == ("2026-11",) and values(result, "aov") == {("2026-11",): 100.0}
    last3 = project.run(last=3, kpis=["ctr", "aov"])
    assert last3.periods == ("2026-09", "2026-10", "2026-11")
    assert values(last3, "ctr", "reason")[("2026-11",)] == "no data"


def test_weeks_are_iso_weeks_unless_the_project_says_otherwise(project, tmp_path):
    iso = project.run(grain="week", period="2026-10", kpis=["visitors"])
    assert iso.periods == ("2026-W40", "2026-W41", "2026-W42", "2026-W43", "2026-W44")
    assert values(iso, "visitors")[("2026-W40",)] == 2.0
    sunday = build_project(tmp_path, PROJECT.replace("timezone:", "week_start: sunday\ntimezone:"))
    weeks = Project.load(sunday).run(grain="week", period="2026-10", kpis=["visitors"])
    # 1 Oct 2026 is a Thursday: the Sunday week holding it starts on 27 September
    assert weeks.periods[0] == "2026-W39" and values(weeks, "visitors")[("2026-W39",)] == 2.0


def test_compare_with_the_previous_period_and_a_year_earlier(project):
    result = project.run(period="2026-10", kpis=["ctr", "aov", "visitors"], compare=["previous", "year"])
    by_kpi = {r["kpi"]: r for r in result.to_records()}
    ctr, aov, visitors = by_kpi["ctr"], by_kpi["aov"], by_kpi["visitors"]
    assert (ctr["previous"], ctr["change_pct"]) == (1.0, pytest.approx(540.0))
    assert (ctr["previous_year"], ctr["change_pct_year"]) == (1.0, pytest.approx(540.0))
    assert (aov["previous"], aov["change_pct"]) == (40.0, pytest.approx(25.0))
    assert (aov["previous_year"], aov["change_pct_year"]) == (50.0, 0.0)
    assert (visitors["previous"], visitors["change_pct"]) == (None, None)
    only_year = project.run(period="2026-10", kpis=["aov"], compare="year")
    assert (only_year.records[0].previous, "previous_year" in only_year.to_records()[0]) == (50.0, False)


def test_a_previous_value_of_zero_gives_no_change_pct(project):
    (row,) = project.run(period="2026-09", kpis=["ctr"], compare=["previous"]).to_records()
    assert (row["value"], row["previous"], row["change_pct"]) == (1.0, 0.0, None)


@pytest.mark.parametrize("value, previous, expected", [
    (110.0, 100.0, 10.0), (90.0, -100.0, 190.0), (None, 1.0, None), (1.0, None, None), (1.0, 0.0, None),
])
def test_change_pct(value, previous, expected):
    import numpy as np

    def column(x):
        return np.array([np.nan if x is None else x])

    assert _change_pct(column(value), column(previous)) == [expected]


# ----------------------------------------------------------------------------- evaluation shape

def test_one_evaluation_per_run_and_one_query_per_source(project, monkeypatch):
    from kpiforge.sources import DuckDBSession
    from kpiforge.plugins.sources import databases, files

    calls = {"evaluate": 0, "files": 0, "duckdb": 0}
    real_evaluate = Engine.evaluate
    real_query = DuckDBSession.query

    def evaluate(self, inputs, kpis=None):
        calls["evaluate"] += 1
        return real_evaluate(self, inputs, kpis)

    def query(self, sql, params):
        calls["duckdb" if self.connection_is_file else "files"] += 1
        return real_query(self, sql, params)

    real_init = DuckDBSession.__init__

    def init(self, connection):
        real_init(self, connection)
        self.connection_is_file = connection.execute("SELECT current_database()").fetchone()[0] != "memory"

    monkeypatch.setattr(Engine, "evaluate", evaluate)
    monkeypatch.setattr(DuckDBSession, "query", query)
    monkeypatch.setattr(DuckDBSession, "__init__", init)
    project.run(grain="day", start="2026-09-01", end="2026-10-31", by=["channel"],
               compare=["previous", "year"])
    assert calls == {"evaluate": 1, "files": 2, "duckdb": 1}  # ads + web, shop


def test_period_labels_are_computed_per_period_not_per_record(project, monkeypatch):
    from kpiforge._periods import Period

    calls = {"n": 0}
    real = Period.label

    def counting(self):
        calls["n"] += 1
        return real.fget(self)

    monkeypatch.setattr(Period, "label", property(counting))
    counts = {}
    for by in ((), ("channel", "campaign")):
        calls["n"] = 0
        result = project.run(grain="day", period="2026-10", by=by, kpis=["ctr"],
                            compare="previous")
        counts[by] = (calls["n"], len(result))
    (plain, records), (split, split_records) = counts.values()
    assert split_records == 3 * records  # three slices: three times the records...
    assert split == plain  # ...and not one more label


def test_records_are_ordered_by_kpi_then_period_then_slice(project):
    result = project.run(last=2, by="channel", kpis=["visitors", "ctr"])
    keys = [(r.kpi, r.period, r.slice["channel"]) for r in result]
    # the latest data of web and ads (shop is not needed here) is in October
    assert keys == [
        ("visitors", "2026-09", "search"), ("visitors", "2026-09", "social"),
        ("visitors", "2026-10", "search"), ("visitors", "2026-10", "social"),
        ("ctr", "2026-09", "search"), ("ctr", "2026-09", "social"),
        ("ctr", "2026-10", "search"), ("ctr", "2026-10", "social"),
    ]
    assert list(result.to_records()[0]) == ["kpi", "period", "slice", "value", "unit", "currency",
                                            "status", "reason", "reason_code", "previous",
                                            "change_pct"]


def test_default_kpis_are_those_the_sources_can_feed(project):
    result = project.run(period="2026-10")
    # conversion_rate needs conversions, which no source provides
    assert set(result.kpis) == {"aov", "ctr", "roas", "visitors"}
    asked = project.run(period="2026-10", kpis=["conversion_rate"])
    assert asked.records[0].reason == "no source provides input 'conversions'"
    assert asked.records[0].reason_code == "no_source"


# ----------------------------------------------------------------------------- API shapes

def test_the_project_may_be_a_file_its_folder_or_a_dict(project, project_file):
    expected = project.run(period="2026-10", kpis=["ctr"]).records
    assert Project.load(str(project_file)).run(period="2026-10", kpis=["ctr"]).records == expected
    assert Project.load(project_file.parent).run(period="2026-10", kpis=["ctr"]).records == expected
    import yaml

    data = yaml.safe_load(PROJECT)
    data["sources"]["ads"]["path"] = str(project_file.parent / "data/ads_*.csv")
    data["definitions"] = [str(project_file.parent / "defs")]
    from_dict = Project.from_dict(data).run(period="2026-10", kpis=["ctr"])
    assert isinstance(from_dict, RunResult) and from_dict.records == expected
    copy = from_dict.to_records()
    copy[0]["slice"]["x"] = 1
    assert from_dict.records[0].slice == {}


@pytest.mark.parametrize("kind", ["pandas", "polars", "pyarrow", "records"])
def test_in_memory_tables(in_memory, kind):
    rows = [
        {"day": "2026-10-01", "channel": "search", "clicks": 1, "impressions": 100},
        {"day": "2026-10-02", "channel": "search", "clicks": 90, "impressions": 900},
        {"day": "2026-10-02", "channel": "social", "clicks": 5, "impressions": 500},
    ]
    if kind == "pandas":
        import pandas as pd

        table = pd.DataFrame(rows).assign(day=lambda f: pd.to_datetime(f["day"]))
    elif kind == "polars":
        import polars as pl

        table = pl.DataFrame(rows)
    elif kind == "pyarrow":
        import pyarrow as pa

        table = pa.Table.from_pylist(rows)
    else:
        table = rows
    project = in_memory({"timezone": "Europe/Paris", "sources": {"ads": {
        "type": "records" if kind == "records" else "dataframe", "time": "day", "dimensions": ["channel"],
        "inputs": {"clicks": {"agg": "sum"}, "impressions": {"agg": "sum"}}}}})
    result = project.run(period="2026-10", kpis=["ctr"], data={"ads": table})
    assert values(result, "ctr") == {("2026-10",): pytest.approx(6.4)}
    assert values(project.run(period="2026-10", kpis=["ctr"], data=table, by="channel"), "ctr") == {
        ("2026-10", "search"): pytest.approx(9.1), ("2026-10", "social"): pytest.approx(1.0)}


def test_a_pandas_frame_with_aware_timestamps_is_converted(in_memory):
    import pandas as pd

    frame = pd.DataFrame({"ts": pd.to_datetime(["2026-10-31T23:30:00Z"], utc=True), "n": [1.0]})
    project = in_memory({"timezone": "Europe/Paris", "sources": {"events": {
        "type": "dataframe", "time": "ts", "data": frame, "inputs": {"visitors": {"column": "n", "agg": "sum"}}}}})
    assert project.run(kpis=["visitors"]).periods == ("2026-11",)


@pytest.mark.parametrize("kwargs, error, message", [
    ({"by": ["chanel"]}, RunError, "unknown dimension 'chanel' \\(did you mean 'channel'\\?\\)"),
    ({"kpis": ["ctrr"]}, UnknownKpiError, "did you mean 'ctr'"),
    ({"grain": "month", "period": "2026-W43"}, RunError, "shorter than the grain"),
    ({"period": "2026-10", "last": 2}, RunError, "choose one of"),
    ({"period": "October"}, RunError, "is not a period"),
    ({"start": "2026-10-31", "end": "2026-10-01"}, RunError, "before the start"),
    ({"compare": ["yesterday"]}, RunError, "unknown comparison"),
    ({"grain": "fortnight"}, RunError, "unknown grain"),
    ({"last": 0}, RunError, "last must be"),
])
def test_bad_requests_are_clear_errors(project, kwargs, error, message):
    with pytest.raises(error, match=message):
        project.run(**kwargs)


def test_an_unknown_data_key_is_named_with_the_expected_sources(in_memory):
    project = in_memory({"sources": {"events": {"type": "dataframe", "time": "ts", "inputs": {"visitors": {"agg": "sum"}}}}})
    rows = [{"ts": "2026-10-01", "visitors": 1}]
    with pytest.raises(RunError, match=r"data: no source is named 'evnts' \(did you mean 'events'\?\); "
                                       r"the project's sources that take in-memory data: 'events'"):
        project.run(period="2026-10", data={"evnts": rows})
    assert values(project.run(period="2026-10", data={"events": rows}), "visitors") == {("2026-10",): 1.0}


def test_a_dataframe_source_without_data_says_how_to_give_it(in_memory):
    project = in_memory({"sources": {"events": {"type": "dataframe", "time": "ts", "inputs": {"visitors": {"agg": "sum"}}}}})
    with pytest.raises(SourceError, match=r"pass it to project.run\(\.\.\., data=\{'events': table\}\)"):
        project.run(period="2026-10")


def test_project_errors_surface_from_load(tmp_path):
    (tmp_path / "kpiforge.yaml").write_text("sources: {ads: {type: csv, time: t}}\n")
    with pytest.raises(ProjectError, match="missing required field"):
        Project.load(tmp_path / "kpiforge.yaml")


# ----------------------------------------------------------------------------- the CLI

def kpiforge(*args, cwd):
    return subprocess.run([sys.executable, "-m", "kpiforge", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=120)


def test_cli_json_matches_the_api_and_reads_the_project_in_the_working_directory(project, project_file):
    proc = kpiforge("run", "--period", "2026-10", "--by", "channel", "--kpi", "aov", "--kpi", "ctr",
                    "--compare", "previous", "--format", "json", cwd=project_file.parent)
    assert proc.returncode == 0, proc.stderr
    api = project.run(period="2026-10", by=["channel"], kpis=["aov", "ctr"], compare=["previous"])
    assert json.loads(proc.stdout) == {"results": api.to_records(), "warnings": [], "objectives": []}


def test_cli_csv_and_table(project_file):
    proc = kpiforge("run", "--project", str(project_file), "--period", "2026-10", "--by", "channel",
                    "--kpi", "aov", "--kpi", "ctr", "--format", "csv", cwd=project_file.parent.parent)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[:3] == [
        "kpi,period,channel,value,unit,status,reason,reason_code",
        "aov,2026-10,search,50.0,currency,ok,,",
        "aov,2026-10,social,,currency,unknown,no data,no_data",
    ]
    assert [line.split(",")[:3] for line in lines[3:]] == [["ctr", "2026-10", "search"], ["ctr", "2026-10", "social"]]
    table = kpiforge("run", "--project", str(project_file), "--last", "2", "--kpi", "aov",
                     "--compare", "previous", cwd=project_file.parent.parent)
    assert table.returncode == 0, table.stderr
    assert "50.00 EUR" in table.stdout and "100.00 EUR" in table.stdout and "+100.0 %" in table.stdout


def test_cli_reports_project_errors_with_positions(tmp_path):
    (tmp_path / "kpiforge.yaml").write_text(textwrap.dedent("""\
        timezone: Europe/Paris
        sources:
          ads: {type: cvs, path: a.csv, time: t, inputs: {clicks: {agg: sum}}}
        """))
    proc = kpiforge("run", cwd=tmp_path)
    assert proc.returncode == 1
    assert "kpiforge.yaml:3:" in proc.stderr and "did you mean 'csv'" in proc.stderr
    assert "Traceback" not in proc.stderr
    missing = kpiforge("run", "--project", "nope.yaml", cwd=tmp_path)
    assert missing.returncode == 1 and "cannot read file" in missing.stderr
    both = kpiforge("run", "--period", "2026-10", "--last", "2", cwd=tmp_path)
    assert both.returncode == 2
