"""Seasonal anomaly rules: a weekend dip or a December peak pages nobody, a real break does.

A real project (DuckDB source) with generated daily orders that dip every weekend: a fixed
threshold fires on every weekend day, the ``day_of_week`` rule on none of them and once on an
injected break; the expected ranges equal a numpy median/MAD computed by hand from the same
run's values, per slice, and a first run (no history, no state) already has them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from datetime import date, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kpiforge import DefinitionError, Engine, Project
from kpiforge._format import format_value
from kpiforge._baselines import Anomaly, anomaly_of, baseline_periods, expected_range
from kpiforge._periods import parse_period
from kpiforge.alerts import simulate
from kpiforge.alerts._lang import localise_number
from kpiforge.alerts._rules import rule_for

FIRST = date(2026, 8, 31)  # a Monday: ten whole weeks of data
DAYS = 70
BREAK = date(2026, 10, 28)  # a Wednesday of week 9: orders halved
EVALUATED = ("2026-10-05", "2026-11-08")  # weeks 6 to 10: the first five are baseline only
LEVEL = {"web": 1000.0, "app": 500.0}
WEEKEND = 0.4

KPIS = """\
currency: EUR
kpis:
  - {id: orders_fixed, name: Orders (fixed), formula: orders, unit: count, status: certified,
     direction: higher_is_better, inputs: {orders: {unit: count}},
     thresholds: {good: 1200, warning: 1000, critical: 800}}
  - {id: orders, name: Orders, formula: orders, unit: count, status: certified,
     direction: higher_is_better,
     inputs: {orders: {unit: count}},
     alerts: {anomaly: {season: day_of_week, window: 4}}}
"""

PROJECT = """\
definitions: [defs/]
timezone: UTC
state: state/alerts.db
sources:
  shop:
    type: duckdb
    path: shop.duckdb
    table: daily
    time: day
    dimensions: [channel]
    inputs:
      orders: {column: orders, agg: sum}
sinks:
  log: {type: file, path: alerts.jsonl}
"""


def daily_rows(noise: float = 0.01) -> list[tuple[date, str, float]]:
    rng = np.random.default_rng(13)
    rows = []
    for i in range(DAYS):
        day = FIRST + timedelta(days=i)
        for channel, level in LEVEL.items():
            value = level * (WEEKEND if day.weekday() >= 5 else 1.0)
            value *= 1 + rng.uniform(-noise, noise)
            if day == BREAK:
                value *= 0.5
            rows.append((day, channel, round(value, 2)))
    return rows


def write_project(root: Path, kpis: str = KPIS, rows=None, project: str = PROJECT) -> Path:
    (root / "defs").mkdir(parents=True, exist_ok=True)
    (root / "defs" / "kpis.yaml").write_text(kpis)
    con = duckdb.connect(str(root / "shop.duckdb"))
    con.execute("CREATE OR REPLACE TABLE daily (day DATE, channel VARCHAR, orders DOUBLE)")
    con.executemany("INSERT INTO daily VALUES (?, ?, ?)", rows if rows is not None else daily_rows())
    con.close()
    (root / "kpiforge.yaml").write_text(project)
    return root / "kpiforge.yaml"


@pytest.fixture(scope="module")
def project_file(tmp_path_factory):
    return write_project(tmp_path_factory.mktemp("anomaly"))


@pytest.fixture(scope="module")
def noisy(tmp_path_factory):
    """Noise of +/-4%: most ranges come from the MAD, not from the 1% floor."""
    return Project.load(write_project(tmp_path_factory.mktemp("noisy"), rows=daily_rows(0.04)))


@pytest.fixture(scope="module")
def project(project_file):
    return Project.load(project_file)


@pytest.fixture(scope="module")
def result(project):
    return project.run(grain="day", start=EVALUATED[0], end=EVALUATED[1])


def active_periods(project, result, kpi):
    rule = rule_for(project.engine.definitions[kpi])
    return [r["period"] for r in result.to_records()
            if r["kpi"] == kpi and rule.evaluate(r).active]


def weekend_days():
    first, last = (date.fromisoformat(d) for d in EVALUATED)
    return [(first + timedelta(days=i)).isoformat() for i in range((last - first).days + 1)
            if (first + timedelta(days=i)).weekday() >= 5]


def test_a_fixed_threshold_fires_on_every_weekend_the_seasonal_rule_only_on_the_break(project, result):
    weekends = weekend_days()
    assert len(weekends) == 10
    assert active_periods(project, result, "orders_fixed") == sorted([*weekends, BREAK.isoformat()])
    assert active_periods(project, result, "orders") == [BREAK.isoformat()]


def test_dispatch_tells_the_break_once_as_an_anomaly_in_english_and_french(project, result):
    summary = project.dispatch(result, dry_run=True)
    fired = [n.alert for n in summary.notifications if n.alert.kpi == "orders"]
    assert [(a.period, a.kind, a.severity, a.causes) for a in fired] == [
        (BREAK.isoformat(), "firing", "warning", ("anomaly",)),
        ("2026-10-29", "resolved", "warning", ())]  # back in range the next day
    # the fixed threshold pages on each weekend (and the break): a firing per episode
    fixed = [n.alert.period for n in summary.notifications
             if n.alert.kpi == "orders_fixed" and n.alert.kind == "firing"]
    assert fixed == ["2026-10-10", "2026-10-17", "2026-10-24", "2026-10-28", "2026-10-31",
                     "2026-11-07"]
    record = next(r for r in result.to_records()
                  if r["kpi"] == "orders" and r["period"] == BREAK.isoformat())
    alert = fired[0]
    assert (alert.expected, alert.expected_low, alert.expected_high) == (
        record["expected"], record["expected_low"], record["expected_high"])
    assert alert.value < alert.expected_low
    low, high = (format_value(record[k], "count") for k in ("expected_low", "expected_high"))
    assert alert.message == (f"Orders is anomalous: {alert.value_text} for 2026-10-28, outside "
                             f"the expected range {low} – {high}.")
    french = project.dispatch(result, dry_run=True, lang="fr")
    message = next(n.alert.message for n in french.notifications if n.alert.kpi == "orders"
                   and n.alert.kind == "firing")
    assert message.startswith("Orders : valeur anormale, ")
    french_range = localise_number(f"{low} – {high}", "fr")
    assert "," in french_range and f"hors de la plage attendue {french_range}." in message
    assert alert.payload()["data"]["causes"] == ["anomaly"]


def hand_range(values, k=3.0):
    x = np.asarray(values, dtype=float)
    median = np.median(x)
    mad = np.median(np.abs(x - median))
    spread = max(1.4826 * mad, 0.01 * abs(median))
    return median, median - k * spread, median + k * spread


@pytest.mark.parametrize("by, from_mad", [((), 14), (("channel",), 48)])
def test_the_expected_range_is_the_median_and_mad_of_the_same_weekday(noisy, by, from_mad):
    project = noisy
    everything = project.run(grain="day", start=FIRST, end=EVALUATED[1], kpis=["orders"], by=by)
    value = {(r["period"], tuple(r["slice"].values())): r["value"] for r in everything.to_records()}
    evaluated = project.run(grain="day", start=EVALUATED[0], end=EVALUATED[1], kpis=["orders"], by=by)
    checked = used_mad = 0
    for r in evaluated.to_records():
        day = date.fromisoformat(r["period"])
        earlier = [value[((day - timedelta(weeks=k)).isoformat(), tuple(r["slice"].values()))]
                   for k in range(1, 5)]
        assert (r["expected"], r["expected_low"], r["expected_high"]) == pytest.approx(
            hand_range(earlier), rel=1e-12), r
        assert r["expected_reason"] is None
        checked += 1
        mad_spread = 1.4826 * np.median(np.abs(np.asarray(earlier) - np.median(earlier)))
        used_mad += mad_spread > 0.01 * abs(r["expected"])
    assert checked == 35 * (len(LEVEL) if by else 1)
    assert used_mad == from_mad  # the MAD is what is tested here, not only the floor


def test_a_first_run_with_no_history_and_no_state_already_has_the_baseline(tmp_path):
    root = write_project(tmp_path)
    assert not (tmp_path / "state").exists() and not (tmp_path / ".kpiforge").exists()
    done = subprocess.run([sys.executable, "-m", "kpiforge", "run", "--grain", "day", "--period",
                           "2026-11-04", "--kpi", "orders", "--format", "json", "--no-alerts"],
                          cwd=root.parent, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    (record,) = json.loads(done.stdout)["results"]
    rows = {(d.isoformat(), c): v for d, c, v in daily_rows()}
    earlier = [sum(rows[((date(2026, 11, 4) - timedelta(weeks=k)).isoformat(), c)] for c in LEVEL)
               for k in range(1, 5)]
    assert (record["expected"], record["expected_low"], record["expected_high"]) == pytest.approx(
        hand_range(earlier))


def test_too_few_baseline_values_do_not_fire_and_say_why(project):
    # 2026-09-09: only one earlier Wednesday has data (2026-09-02); window 4 needs 3
    (record,) = project.run(grain="day", period="2026-09-09", kpis=["orders"]).to_records()
    assert record["expected"] is None and record["expected_low"] is None
    assert record["expected_reason"] == "baseline has 1 of 4 earlier values (needs 3)"
    assert not rule_for(project.engine.definitions["orders"]).evaluate(record).active


def test_at_a_grain_the_season_does_not_fit_the_rule_does_not_apply(project):
    result = project.run(grain="month", period="2026-10", kpis=["orders"])
    (record,) = result.to_records()
    assert record["expected"] is None
    assert record["expected_reason"] == "the anomaly rule applies at day grain, not month"
    assert result.baselines == ("orders",)


@pytest.mark.parametrize("values, expected", [
    ([100, 102, 98, 101], (100.5, 100.5 - 3 * 1.4826 * 1.0, 100.5 + 3 * 1.4826 * 1.0)),
    # a constant history: the spread floor (1% of the median) keeps equality quiet, a break not
    ([100, 100, 100, 100], (100.0, 97.0, 103.0)),
    ([0, 0, 0], (0.0, 0.0, 0.0)),
    ([100, None, 104, float("nan"), 96], (100.0, 100 - 3 * 1.4826 * 4, 100 + 3 * 1.4826 * 4)),
    ([100, 1000, 101, 99, 100], (100.0, 100 - 3 * 1.4826, 100 + 3 * 1.4826)),  # one outlier
])
def test_expected_range_table(values, expected):
    band = expected_range(values, 3.0, len(values))
    assert (band.expected, band.low, band.high) == pytest.approx(expected)
    assert band.reason is None


@pytest.mark.parametrize("values, window, reason", [
    ([100, None], 4, "baseline has 1 of 4 earlier values (needs 3)"),
    ([], 1, "baseline has 0 of 1 earlier values (needs 1)"),
    ([None, None, 5], 2, "baseline has 1 of 2 earlier values (needs 2)"),
])
def test_too_few_values_give_no_range(values, window, reason):
    band = expected_range(values, 3.0, window)
    assert (band.expected, band.low, band.high, band.reason) == (None, None, None, reason)


@pytest.mark.parametrize("period, season, window, earlier", [
    ("2026-10-28", "day_of_week", 3, ["2026-10-21", "2026-10-14", "2026-10-07"]),
    ("2026-W53", "week_of_year", 2, ["2025-W52", "2024-W52"]),  # 2025 has no week 53
    ("2026-W10", "week_of_year", 2, ["2025-W10", "2024-W10"]),
    ("2026-12", "month_of_year", 3, ["2025-12", "2024-12", "2023-12"]),
    ("2026-Q4", "none", 2, ["2026-Q3", "2026-Q2"]),
    ("2026-10-28", "none", 2, ["2026-10-27", "2026-10-26"]),
])
def test_baseline_periods(period, season, window, earlier):
    p = parse_period(period)
    assert [q.label for q in baseline_periods([p], season, window)[p]] == earlier


@pytest.mark.parametrize("direction, value, active", [
    ("both", 80, True), ("both", 120, True), ("both", 100, False),
    ("below", 80, True), ("below", 120, False), ("above", 80, False), ("above", 120, True),
])
def test_direction(direction, value, active, tmp_path):
    kpis = KPIS.replace("window: 4}", f"window: 4, direction: {direction}}}")
    engine = Engine.load(write_project(tmp_path, kpis).parent / "defs")
    record = {"value": value, "expected_low": 90.0, "expected_high": 110.0, "status": "unknown"}
    assert rule_for(engine.definitions["orders"]).evaluate(record).active is active
    # a null range never fires, whatever the value
    assert not rule_for(engine.definitions["orders"]).evaluate({**record, "expected_low": None}).active


def test_simulate_takes_the_expected_range_and_defaults(tmp_path):
    kpis = KPIS.replace("alerts: {anomaly: {season: day_of_week, window: 4}}", "alerts: {anomaly: {}}")
    engine = Engine.load(write_project(tmp_path, kpis).parent / "defs")
    assert anomaly_of(engine.definitions["orders"]) == Anomaly(None, 4, 3.0, None, "both")
    steps = [{"period": "2026-10-27", "value": 100, "expected_low": 90, "expected_high": 110},
             {"period": "2026-10-28", "value": 50, "expected_low": 90, "expected_high": 110}]
    out = simulate(engine.definitions["orders"], steps)
    assert out[0] == [] and [(a["state"], a["severity"]) for a in out[1]] == [("firing", "warning")]
    assert out[1][0]["message"] == "Orders is anomalous: 50 for 2026-10-28, outside the expected range 90 – 110."


# each error at its line and column, with its code and field: exactly what `kpiforge validate` prints
BAD = [
    ("{season: day_of_week, grain: month}",
     "9:33: error[anomaly-season]: kpis[1].alerts.anomaly.season: season day_of_week needs day "
     "grain, not month; at month grain use month_of_year or none"),
    ("{season: month_of_year, grain: week}",
     "9:33: error[anomaly-season]: kpis[1].alerts.anomaly.season: season month_of_year needs "
     "month grain, not week; at week grain use week_of_year or none"),
    ("{season: week_of_year, grain: quarter}",
     "9:33: error[anomaly-season]: kpis[1].alerts.anomaly.season: season week_of_year needs week "
     "grain, not quarter; at quarter grain use none"),
    ("{window: 53}", "9:33: error[schema]: kpis[1].alerts.anomaly.window: must be at most 52, got 53"),
    ("{window: 0}", "9:33: error[schema]: kpis[1].alerts.anomaly.window: must be at least 1, got 0"),
    ("{sensitivity: 0}",
     "9:38: error[schema]: kpis[1].alerts.anomaly.sensitivity: must be greater than 0, got 0"),
    ("{season: hour_of_day}",
     "9:33: error[schema]: kpis[1].alerts.anomaly.season: 'hour_of_day' is not one of "
     "'day_of_week', 'week_of_year', 'month_of_year', 'none'"),
]


@pytest.mark.parametrize("block, located", BAD)
def test_nonsense_rules_are_located_errors(block, located, tmp_path):
    kpis = KPIS.replace("{anomaly: {season: day_of_week, window: 4}}", f"{{anomaly: {block}}}")
    write_project(tmp_path, kpis)
    with pytest.raises(DefinitionError) as caught:
        Engine.load(tmp_path / "defs")
    (line,) = str(caught.value).splitlines()
    assert line.endswith("defs/kpis.yaml:" + located), line


@pytest.mark.parametrize("block", ["{season: none, grain: month}", "{grain: week}",
                                   "{season: day_of_week, grain: day}", "{season: none}"])
def test_sensible_rules_load(block, tmp_path):
    kpis = KPIS.replace("{anomaly: {season: day_of_week, window: 4}}", f"{{anomaly: {block}}}")
    engine = Engine.load(write_project(tmp_path, kpis).parent / "defs")
    assert anomaly_of(engine.definitions["orders"]) is not None


def peak_rows(grain: str) -> list[tuple[date, str, float]]:
    """Four years of one row per week or month: flat, with a year-end peak, and a break in 2026."""
    rows = []
    day = date(2023, 1, 4)
    while day < date(2027, 1, 1):
        december = day.month == 12 if grain == "month" else day.isocalendar()[1] >= 51
        value = 300.0 if december else 100.0 + (day.toordinal() % 3)
        if (grain, day.year, day.month) in (("month", 2026, 6),) or (
                grain == "week" and day.isocalendar()[:2] == (2026, 24)):
            value = 40.0
        rows.append((day, "web", value))
        day = day + (timedelta(weeks=1) if grain == "week" else timedelta(days=31))
        if grain == "month":
            day = day.replace(day=4)
    return rows


@pytest.mark.parametrize("grain, season, start, peaks, broken", [
    ("month", "month_of_year", "2026-01-01", ["2026-12"], "2026-06"),
    ("week", "week_of_year", "2026-01-05", ["2026-W51", "2026-W52", "2026-W53"], "2026-W24"),
])
def test_yearly_seasons_at_their_grain(grain, season, start, peaks, broken, tmp_path):
    """A year-end peak: a fixed ceiling pages on it (and misses the break); the seasonal rule
    compares it with earlier year ends and fires only on the break."""
    kpis = KPIS.replace("{anomaly: {season: day_of_week, window: 4}}",
                        f"{{anomaly: {{season: {season}, window: 3}}}}").replace(
                            "direction: higher_is_better, inputs: {orders: {unit: count}},\n     thresholds: {good: 1200, warning: 1000, critical: 800}",
                            "direction: lower_is_better, inputs: {orders: {unit: count}},\n     thresholds: {good: 150, warning: 200, critical: 250}")
    project = Project.load(write_project(tmp_path, kpis, peak_rows(grain)))
    result = project.run(grain=grain, start=start, end="2026-12-31")
    assert active_periods(project, result, "orders") == [broken]
    assert active_periods(project, result, "orders_fixed") == peaks
    for peak in peaks:
        record = next(r for r in result.to_records() if r["kpi"] == "orders" and r["period"] == peak)
        assert record["expected"] == pytest.approx(300.0)
        assert record["expected_low"] < record["value"] < record["expected_high"]


def test_the_report_carries_and_draws_the_expected_band(tmp_path):
    pytest.importorskip("altair")
    pytest.importorskip("vl_convert")
    from kpiforge._report import build_report, chart_domain
    from kpiforge._report_charts import trend_svg

    kpis = KPIS.replace("{anomaly: {season: day_of_week, window: 4}}",
                        "{anomaly: {season: month_of_year, window: 3}}")
    project = Project.load(write_project(tmp_path, kpis, peak_rows("month")))
    report = build_report(project, grain="month", period="2026-12", alerts=False)
    entry = report["kpis"]["orders"]
    (record,) = [r for r in project.run(grain="month", period="2026-12", kpis=["orders"]).to_records()]
    assert {k: entry[k] for k in ("expected", "expected_low", "expected_high")} == {
        k: record[k] for k in ("expected", "expected_low", "expected_high")}
    banded = [p for p in entry["trend"] if p["expected_low"] is not None]
    # 2025-12 has two earlier Decembers of data, fewer than the three it needs: no band there
    assert [p["period"] for p in entry["trend"] if p not in banded] == ["2025-12"]
    assert len(banded) == 12
    low, high = chart_domain(entry)
    assert low <= min(p["expected_low"] for p in banded) and high >= max(p["expected_high"] for p in banded)
    assert "expected" not in report["kpis"]["orders_fixed"]  # no rule, no band
    svg = trend_svg(entry, "t1", {})
    plain = trend_svg(report["kpis"]["orders_fixed"], "t2", {})
    assert svg.count('fill="#5c6bc0"') == 1 and 'fill="#5c6bc0"' not in plain
    done = subprocess.run([sys.executable, "-m", "kpiforge", "report", "--grain", "month",
                           "--period", "2026-12", "--no-alerts", "-o", str(tmp_path / "out")],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    (page,) = (tmp_path / "out").glob("*.html")
    html = page.read_text("utf-8")
    assert html.count('fill="#5c6bc0"') == 1
    shown = f"{format_value(entry['expected_low'], 'count')} – {format_value(entry['expected_high'], 'count')}"
    assert f'<span class="expected">expected {shown}</span>' in html
    assert html.count("; shaded: the expected range</figcaption>") == 1


DOC = Path(__file__).resolve().parents[1] / "docs" / "anomalies.md"


def doc_blocks(start: str) -> list[str]:
    import re

    return re.findall(rf"^```(?:yaml|text)\n({start}.*?)^```$", DOC.read_text("utf-8"), re.S | re.M)


def test_the_documented_rule_runs_as_the_doc_says(tmp_path):
    (definition,) = doc_blocks("kpis:")
    project = Project.load(write_project(tmp_path, definition))
    result = project.run(grain="day", start=EVALUATED[0], end=EVALUATED[1])
    assert active_periods(project, result, "daily_orders") == [BREAK.isoformat()]
    text = DOC.read_text("utf-8")
    for lang in ("en", "fr"):
        (alert,) = [n.alert for n in project.dispatch(result, dry_run=True, lang=lang).notifications
                    if n.alert.kind == "firing"]
        assert f"`{alert.message}`" in text
    # the located error shown is the one kpiforge prints for that combination
    (shown,) = doc_blocks("kpis.yaml:")
    (tmp_path / "defs" / "kpis.yaml").write_text(
        definition.replace("{season: day_of_week,", "{season: day_of_week, grain: month,"))
    with pytest.raises(DefinitionError) as caught:
        Engine.load(tmp_path / "defs")
    assert str(caught.value).endswith("defs/" + shown.strip())
    # and the declarative alert test passes as written
    import yaml

    (case,) = yaml.safe_load(doc_blocks("alerts:")[0])["alerts"]
    produced = simulate(project.engine.definitions["daily_orders"], case["steps"])
    for expectation in case["expect"]:
        got = produced[expectation["step"] - 1]
        assert [{k: a[k] for k in e} for a, e in zip(got, expectation["alerts"])] == expectation["alerts"]
        assert len(got) == len(expectation["alerts"])


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 6), st.integers(1, 3), st.sampled_from([0.5, 1.0, 3.0]),
       st.lists(st.one_of(st.none(), st.floats(-1e6, 1e6, allow_nan=False)), min_size=60, max_size=60))
def test_the_run_path_and_the_one_list_rule_agree(window, n_slices, k, pool):
    """The vectorised ranges of a run equal :func:`expected_range` on each list of values."""
    from kpiforge._run_baselines import BaselinePlan, expected_values

    current = [parse_period("2026-10-28"), parse_period("2026-10-29")]
    rule = Anomaly("none", window, k)
    earlier = baseline_periods(current, "none", window)
    plan = BaselinePlan(rule, "none", earlier, None, frozenset(p for ps in earlier.values() for p in ps))
    periods = sorted({*current, *plan.periods})
    index = {p.label: i for i, p in enumerate(periods)}
    column = np.array([np.nan if v is None else v for v in pool[:len(periods) * n_slices]])
    got = expected_values({"x": plan}, {"x": column}, current, index, n_slices)["x"]
    for i, period in enumerate(current):
        for s in range(n_slices):
            earlier = [column[index[p.label] * n_slices + s] for p in plan.earlier[period]]
            want = expected_range([None if np.isnan(v) else v for v in earlier], k, window)
            have = got[i * n_slices + s]
            assert (have.count, have.reason) == (want.count, want.reason)
            if want.reason is None:
                assert (have.expected, have.low, have.high) == pytest.approx(
                    (want.expected, want.low, want.high), rel=1e-9, abs=1e-9)
            else:
                assert (have.expected, have.low, have.high) == (None, None, None)


@pytest.mark.parametrize("fmt, shown", [
    ("csv", "orders,2026-10-28,747.42,count,ok,,,1451.13455,1540.8954500000002,1496.015,"),
    ("table", "│ orders         │ 747.42 │ ok       │     1,451.13 │      1,540.90 │        │"),
])
def test_the_command_line_shows_the_expected_range(fmt, shown, project_file):
    done = subprocess.run([sys.executable, "-m", "kpiforge", "run", "--grain", "day", "--period",
                           "2026-10-28", "--format", fmt, "--no-alerts"],
                          cwd=project_file.parent, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "COLUMNS": "120"})
    assert done.returncode == 0, done.stderr
    assert shown in done.stdout.splitlines(), done.stdout


@pytest.mark.parametrize("grain, season", [("day", "day_of_week"), ("month", "month_of_year"),
                                           ("week", "none"), ("quarter", "none"), ("day", "none")])
@given(st.integers(0, 2000), st.integers(1, 40), st.integers(1, 52))
@settings(max_examples=30, deadline=None)
def test_the_timeline_gives_the_periods_stepped_back_one_by_one(grain, season, offset, count, window):
    from kpiforge._baselines import _earlier
    from kpiforge._periods import period_of

    first = period_of(date(2020, 1, 1) + timedelta(days=offset), grain)
    current = [first.shift(i) for i in range(count)]
    assert baseline_periods(current, season, window) == {
        p: tuple(_earlier(p, season, k) for k in range(1, window + 1)) for p in current}


def test_the_baseline_comes_with_the_same_single_query_per_source(project, monkeypatch):
    from kpiforge.sources import DuckDBSession

    calls = []
    real = DuckDBSession.query

    def query(self, sql, params):
        calls.append(sql)
        return real(self, sql, params)

    monkeypatch.setattr(DuckDBSession, "query", query)
    result = project.run(grain="day", start=EVALUATED[0], end=EVALUATED[1], by=["channel"])
    assert len([r for r in result.to_records() if r["expected"] is not None]) == 35 * 2
    assert len(calls) == 1, calls  # the 35 days and their 4 x 35 earlier weekdays, in one query


@pytest.mark.parametrize("raw, message", [
    ({"window": "4"}, "x: alerts.anomaly.window must be a whole number from 1 to 52, got '4'"),
    ({"window": 100}, "x: alerts.anomaly.window must be a whole number from 1 to 52, got 100"),
    ({"sensitivity": True}, "x: alerts.anomaly.sensitivity must be a number above 0, at most 100, got True"),
    ({"season": "weekly"}, "x: alerts.anomaly.season must be one of day_of_week, week_of_year, "
                           "month_of_year, none, got 'weekly'"),
    ({"direction": "down"}, "x: alerts.anomaly.direction must be one of both, below, above, got 'down'"),
])
def test_a_rule_built_by_hand_with_wrong_values_is_refused(raw, message):
    from types import SimpleNamespace

    from kpiforge import AlertConfigError

    with pytest.raises(AlertConfigError) as caught:
        anomaly_of(SimpleNamespace(id="x", alerts={"anomaly": raw}))
    assert str(caught.value) == message


def test_kpis_with_the_same_rule_share_one_set_of_periods():
    """Definitions are untrusted: 500 KPIs with a 52-week window cost one set of 52 x 365
    periods, not 500."""
    from types import SimpleNamespace

    from kpiforge._periods import periods_between
    from kpiforge._run_baselines import all_baseline_periods, plan_baselines

    definitions = {f"k{i}": SimpleNamespace(id=f"k{i}", alerts={"anomaly": {"window": 52}})
                   for i in range(500)}
    definitions["m"] = SimpleNamespace(id="m", alerts={"anomaly": {"window": 2}})
    current = periods_between(date(2026, 1, 1), date(2026, 12, 31), "day")
    plans = plan_baselines(definitions, definitions, "day", current)
    assert len({id(p.earlier) for p in plans.values()}) == 2
    periods = all_baseline_periods(plans)
    # 364 days before the first day up to 7 days before the last: 722 days, each once
    assert (min(periods).label, max(periods).label, len(periods)) == ("2025-01-02", "2026-12-24", 722)


@pytest.mark.parametrize("compare", [["previous"], ["year"], ["previous", "year"]])
def test_the_expected_range_is_the_same_with_comparisons_asked(project, result, compare):
    """Records are built column by column; comparisons sit between the status and the expected
    range, so asking for them must not move or cut the range (every period keeps its record)."""
    compared = project.run(grain="day", start=EVALUATED[0], end=EVALUATED[1], compare=compare)
    keys = ("kpi", "period", "value", "expected", "expected_low", "expected_high", "expected_reason")
    plain = [{k: r[k] for k in keys} for r in result.to_records() if r["kpi"] == "orders"]
    assert len(plain) == 35
    assert [{k: r[k] for k in keys} for r in compared.to_records() if r["kpi"] == "orders"] == plain


def test_the_dashboard_draws_the_expected_band_on_the_kpi_page(project):
    """``kpiforge serve`` draws the report's trend chart: with the run's expected range."""
    pytest.importorskip("starlette")
    pytest.importorskip("altair")
    pytest.importorskip("vl_convert")
    import httpx

    from tests.serve_server import running

    with running(project) as base:
        page = httpx.get(f"{base}/kpi/orders", params={"grain": "day"}, timeout=60).text
        plain = httpx.get(f"{base}/kpi/orders_fixed", params={"grain": "day"}, timeout=60).text
    assert page.count('fill="#5c6bc0"') == 1
    assert 'fill="#5c6bc0"' not in plain
