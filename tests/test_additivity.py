"""Additivity: the catalog's distinct counts and snapshots, a source's native grain and row
keys, and the run refusing to sum a non-additive input across a key or to another grain."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from kpiforge import Engine
from kpiforge._project import load_project

ROOT = Path(__file__).resolve().parents[1]

CATALOG = [
    # (kpi, input, additivity, time_agg)
    ("reach", "reach", "non_additive", None),
    ("frequency", "reach", "non_additive", None),
    ("frequency", "impressions", "additive", None),
    ("unique_visitors", "unique_visitors", "non_additive", None),
    ("social_followers", "followers", "semi_additive", "last"),
    ("churn_rate", "customers_start", "semi_additive", "first"),
    ("churn_rate", "customers_lost", "additive", None),
    ("retention_rate", "customers_start", "semi_additive", "first"),
    ("retention_rate", "customers_end", "semi_additive", "last"),
]


@pytest.fixture(scope="module")
def catalog():
    return Engine.load()


@pytest.mark.parametrize(("kpi", "name", "additivity", "time_agg"), CATALOG)
def test_catalog_declares_additivity(catalog, kpi: str, name: str, additivity: str,
                                     time_agg: str | None) -> None:
    spec = catalog[kpi].inputs[name]
    assert spec.additivity == additivity
    assert spec.time_agg == time_agg


def test_demo_ad_reach_declares_grain_and_keys() -> None:
    project = load_project(ROOT / "examples" / "demo" / "kpiforge.yaml")
    ad_reach = project.sources["ad_reach"]
    assert ad_reach.grain == "month"
    assert ad_reach.keys == ("channel",)
    # a source without the keys declares neither
    web = project.sources["web"]
    assert web.grain is None
    assert web.keys == ()


REACH_ROWS = [  # month, channel, people reached (distinct per channel and month)
    ("2026-09-01", "search", 1200), ("2026-09-01", "social", 800),
    ("2026-10-01", "search", 1500), ("2026-10-01", "social", 900),
]
VISITS = [  # raw rows: a visitor may come twice, through two channels
    ("2026-10-03", "search", "v1"), ("2026-10-04", "social", "v1"),
    ("2026-10-05", "search", "v2"), ("2026-09-20", "social", "v3"),
]


@pytest.fixture
def reach_project(tmp_path: Path):
    (tmp_path / "reach.csv").write_text("month,channel,reach\n" + "".join(
        f"{m},{c},{r}\n" for m, c, r in REACH_ROWS))
    (tmp_path / "visits.csv").write_text("day,channel,visitor_id\n" + "".join(
        f"{d},{c},{v}\n" for d, c, v in VISITS))
    (tmp_path / "kpiforge.yaml").write_text(textwrap.dedent("""
        sources:
          ad_reach:
            type: csv
            path: reach.csv
            time: month
            grain: month
            keys: [channel]
            dimensions: [channel]
            inputs:
              reach: {agg: sum}
          web:
            type: csv
            path: visits.csv
            time: day
            dimensions: [channel]
            inputs:
              unique_visitors: {column: visitor_id, agg: count_distinct}
    """))
    return load_project(tmp_path / "kpiforge.yaml")


def _values(result, kpi: str) -> dict:
    return {(r.period, r.slice.get("channel")): (r.value, r.reason_code, r.reason)
            for r in result.records if r.kpi == kpi}


@pytest.mark.parametrize(("grain", "period", "by", "expected"), [
    # per channel at the native grain: the rows as they are
    ("month", "2026-10", "channel", {("2026-10", "search"): 1500, ("2026-10", "social"): 900}),
    # summed across channel: someone reached on both channels would count twice
    ("month", "2026-10", None, {("2026-10", None): "reach cannot be summed across channel"}),
    # two months into a quarter: someone reached in both months would count twice
    ("quarter", "2026-Q4", "channel",
     {("2026-Q4", "search"): "reach is a distinct count per month",
      ("2026-Q4", "social"): "reach is a distinct count per month"}),
])
def test_reach_is_never_summed(reach_project, grain, period, by, expected) -> None:
    got = _values(reach_project.run(kpis=["reach"], grain=grain, period=period, by=by), "reach")
    assert set(got) == set(expected)
    for key, want in expected.items():
        value, code, reason = got[key]
        if isinstance(want, str):
            assert value is None and code == "not_additive" and reason.startswith(want)
        else:
            assert value == want and code is None


def test_a_distinct_count_from_raw_rows_is_recomputed_at_any_grain(reach_project) -> None:
    # no grain, no keys: count_distinct runs over the raw rows, so v1 counts once in total
    total = _values(reach_project.run(kpis=["unique_visitors"], grain="month", period="2026-10"),
                    "unique_visitors")
    assert total == {("2026-10", None): (2.0, None, None)}
    quarter = _values(reach_project.run(kpis=["unique_visitors"], grain="quarter",
                                        period="2026-Q3"), "unique_visitors")
    assert quarter == {("2026-Q3", None): (1.0, None, None)}


@pytest.fixture
def snapshot_project(tmp_path: Path):
    # customers at the start of each month, per segment: summed across segments, never over time
    (tmp_path / "crm.csv").write_text("month,segment,start,lost\n"
                                      "2026-07-01,b2b,100,5\n2026-07-01,b2c,900,90\n"
                                      "2026-08-01,b2b,110,11\n2026-08-01,b2c,880,88\n"
                                      "2026-09-01,b2b,120,6\n2026-09-01,b2c,870,87\n")

    def load(grain: str | None, agg: str):
        declared = f"grain: {grain}\n    " if grain else ""
        (tmp_path / "kpiforge.yaml").write_text(
            "sources:\n  crm:\n    type: csv\n    path: crm.csv\n    time: month\n    "
            f"{declared}dimensions: [segment]\n    inputs:\n"
            f"      customers_start: {{column: start, agg: {agg}}}\n"
            "      customers_lost: {column: lost, agg: sum}\n")
        return load_project(tmp_path / "kpiforge.yaml")
    return load


@pytest.mark.parametrize(("grain", "agg", "run_grain", "period", "expected"), [
    # one snapshot per month, summed across segments: the churn of the whole base
    ("month", "sum", "month", "2026-08", pytest.approx(99 / 990 * 100)),
    # a quarter would add up three monthly snapshots
    ("month", "sum", "quarter", "2026-Q3", "customers_start is a snapshot (first of each period)"),
    # nothing says the rows are one per month: refused at every grain
    (None, "sum", "month", "2026-08", "with no declared grain"),
])
def test_snapshots_are_never_summed_over_time(snapshot_project, grain, agg, run_grain, period,
                                              expected) -> None:
    result = snapshot_project(grain, agg).run(kpis=["churn_rate"], grain=run_grain, period=period)
    (record,) = [r for r in result.records if r.kpi == "churn_rate"]
    if isinstance(expected, str):
        assert record.value is None and record.reason_code == "not_additive"
        assert expected in record.reason and "use agg: first" in record.reason
    else:
        assert record.value == expected
