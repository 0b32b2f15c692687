"""The demo project: a deterministic generator, and `kpiforge run` over what it generates.

The data is generated into a temporary folder next to a copy of the project file (paths in the
project are relative to it), never into the repository.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pd = pytest.importorskip("pandas")
pytest.importorskip("pyarrow")

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "examples" / "demo"
GENERATOR = DEMO / "generate.py"
MAIN_KPIS = ["ctr", "cpc", "cpl", "conversion_rate", "lead_conversion_rate", "aov", "bounce_rate",
             "pages_per_session", "avg_session_duration", "organic_traffic_share", "sessions",
             "impressions", "marketing_originated_revenue_share", "traffic_source_share"]
TOTAL_KPIS = ["nps", "csat", "churn_rate", "retention_rate", "cpa", "ltv", "ltv_cac_ratio",
              "brand_mentions", "social_followers", "avg_keyword_position", "frequency", "reach"]


def generate(out: Path, seed: int = 42) -> None:
    subprocess.run([sys.executable, str(GENERATOR), "--out", str(out), "--seed", str(seed)],
                   check=True, capture_output=True, timeout=120)


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    """A copy of the demo project with freshly generated data."""
    root = tmp_path_factory.mktemp("demo")
    shutil.copy(DEMO / "kpiforge.yaml", root / "kpiforge.yaml")
    generate(root / "data")
    return root


def test_generator_is_deterministic(demo: Path, tmp_path: Path) -> None:
    generate(tmp_path / "again")
    first = sorted(p.name for p in (demo / "data").iterdir())
    second = sorted(p.name for p in (tmp_path / "again").iterdir())
    assert first == second
    assert any(n.endswith(".csv") for n in first) and any(n.endswith(".parquet") for n in first)
    for name in first:
        assert (demo / "data" / name).read_bytes() == (tmp_path / "again" / name).read_bytes(), name


def test_another_seed_gives_other_data(demo: Path, tmp_path: Path) -> None:
    generate(tmp_path / "other", seed=7)
    assert ((demo / "data" / "ads_2026.csv").read_bytes()
            != (tmp_path / "other" / "ads_2026.csv").read_bytes())


def test_generated_data_is_small_and_covers_13_months(demo: Path) -> None:
    size = sum(p.stat().st_size for p in (demo / "data").iterdir())
    assert size < 20 * 2**20
    sessions = pd.read_parquet(demo / "data" / "sessions.parquet", columns=["started_at"])
    local = sessions["started_at"].dt.tz_convert("Europe/Paris")
    months = set(local.dt.strftime("%Y-%m"))
    assert len(months) >= 13
    assert max(months) == "2026-10" and local.max() < pd.Timestamp("2026-11-01", tz="Europe/Paris")
    ads = pd.concat(pd.read_csv(p) for p in sorted((demo / "data").glob("ads_*.csv")))
    assert len(set(ads["date"].str[:7])) >= 13
    assert ads["date"].max() == "2026-10-31"


def kpiforge_run(project: Path, *options: str) -> list[dict]:
    """`kpiforge run ... --format json` in a subprocess, as a user would call it."""
    kpiforge = shutil.which("kpiforge", path=str(Path(sys.executable).parent)) or "kpiforge"
    command = [kpiforge, "run", "--project", str(project), *options, "--format", "json", "--no-alerts"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300,
                            env={**os.environ, "NO_COLOR": "1"})
    assert result.returncode == 0, result.stderr
    records = json.loads(result.stdout)["results"]
    assert records, "no records"
    return records


@pytest.fixture(scope="module")
def october(demo: Path) -> list[dict]:
    """October 2026 by channel, compared with September."""
    return kpiforge_run(demo / "kpiforge.yaml", "--grain", "month", "--period", "2026-10",
                        "--by", "channel", "--compare", "previous")


@pytest.fixture(scope="module")
def october_total(demo: Path) -> list[dict]:
    return kpiforge_run(demo / "kpiforge.yaml", "--grain", "month", "--period", "2026-10",
                        "--compare", "previous")


def by_channel(records: list[dict], kpi: str) -> dict[str, dict]:
    return {r["slice"]["channel"]: r for r in records
            if r["kpi"] == kpi and r["period"] == "2026-10" and "channel" in r["slice"]}


def test_main_kpis_have_values_per_channel(october: list[dict]) -> None:
    for kpi in MAIN_KPIS:
        rows = by_channel(october, kpi)
        assert {"search", "social", "display", "email"} <= set(rows), (kpi, sorted(rows))
        for channel in ("search", "email"):
            record = rows[channel]
            assert isinstance(record["value"], float) and math.isfinite(record["value"]), record
            assert record["status"] in ("good", "ok", "warning", "critical"), record
            assert record["previous"] is not None, record


def test_kpis_without_channel_say_why(october: list[dict]) -> None:
    # their sources have no channel dimension: null per channel, with the reason
    for kpi in TOTAL_KPIS:
        rows = [r for r in october if r["kpi"] == kpi]
        if kpi in ("frequency", "reach"):  # reach is reported per channel
            continue
        assert rows, f"{kpi} missing from the run"
        for r in rows:
            assert r["value"] is None and r["status"] == "unknown"
            assert "cannot be split by channel" in r["reason"], r


# monthly reach per channel is a distinct count: summed across channels it would count a
# person reached on two channels twice, so the total is null with a reason, never a number
NOT_SUMMABLE = {"reach", "frequency"}


def test_every_catalog_kpi_has_a_total(october_total: list[dict]) -> None:
    got = {r["kpi"]: r for r in october_total}
    assert len(got) == 37, sorted(got)
    for kpi, record in got.items():
        assert record["slice"] == {} and record["period"] == "2026-10"
        if kpi in NOT_SUMMABLE:
            assert record["value"] is None and record["reason_code"] == "not_additive", record
            assert "reach cannot be summed across channel" in record["reason"]
            continue
        assert record["value"] is not None and math.isfinite(record["value"]), record
        assert record["previous"] is not None, record


def test_reach_is_computed_per_channel(demo: Path, october: list[dict]) -> None:
    rows = by_channel(october, "reach")
    monthly = pd.read_csv(demo / "data" / "ad_reach_monthly.csv")
    expected = monthly[monthly["month"].astype(str).str.startswith("2026-10")]
    assert len(expected)
    # channels without ads (direct, referral) have no reach: null, not zero
    assert {c for c, r in rows.items() if r["value"] is not None} == set(expected["channel"])
    for _, row in expected.iterrows():
        assert rows[row["channel"]]["value"] == row["reach"]


def test_statuses_are_a_mix(october: list[dict]) -> None:
    statuses = {r["status"] for r in october if r["period"] == "2026-10"}
    assert {"good", "warning", "critical"} <= statuses


def test_ctr_per_channel_matches_pandas(demo: Path, october: list[dict]) -> None:
    ads = pd.concat(pd.read_csv(p) for p in sorted((demo / "data").glob("ads_*.csv")))
    oct_ = ads[ads["date"].str.startswith("2026-10")].groupby("channel")[["clicks", "impressions"]].sum()
    sep = ads[ads["date"].str.startswith("2026-09")].groupby("channel")[["clicks", "impressions"]].sum()
    rows = by_channel(october, "ctr")
    assert set(rows) >= set(oct_.index)
    for channel, sums in oct_.iterrows():
        expected = sums["clicks"] / sums["impressions"] * 100
        previous = sep.loc[channel, "clicks"] / sep.loc[channel, "impressions"] * 100
        assert math.isclose(rows[channel]["value"], expected, rel_tol=1e-9), channel
        assert math.isclose(rows[channel]["previous"], previous, rel_tol=1e-9), channel
        assert math.isclose(rows[channel]["change_pct"], (expected - previous) / previous * 100,
                            rel_tol=1e-6), channel
    # the October incident: paid-social CTR clearly down month over month
    assert rows["social"]["change_pct"] < -30


def test_conversion_rate_per_channel_matches_pandas(demo: Path, october: list[dict]) -> None:
    """Distinct visitors per local (Paris) month, and paid orders: time zones and distinct counts."""
    sessions = pd.read_parquet(demo / "data" / "sessions.parquet",
                               columns=["started_at", "channel", "visitor_id"])
    orders = pd.read_parquet(demo / "data" / "orders.parquet")
    s_month = sessions["started_at"].dt.tz_convert("Europe/Paris").dt.strftime("%Y-%m")
    o_month = orders["ordered_at"].dt.tz_convert("Europe/Paris").dt.strftime("%Y-%m")
    visitors = sessions[s_month == "2026-10"].groupby("channel")["visitor_id"].nunique()
    paid = orders[(o_month == "2026-10") & (orders["status"] == "paid")]
    conversions = paid.groupby("channel")["order_id"].nunique()
    rows = by_channel(october, "conversion_rate")
    for channel in visitors.index:
        expected = conversions.get(channel, 0) / visitors[channel] * 100
        assert math.isclose(rows[channel]["value"], expected, rel_tol=1e-9), channel
    aov = by_channel(october, "aov")
    revenue = paid.groupby("channel")["amount"].sum()
    for channel in conversions.index:
        assert math.isclose(aov[channel]["value"], revenue[channel] / conversions[channel],
                            rel_tol=1e-9), channel


def test_nps_matches_pandas(demo: Path, october_total: list[dict]) -> None:
    surveys = pd.read_csv(demo / "data" / "survey_responses.csv")
    nps = surveys[(surveys["survey"] == "nps") & surveys["responded_on"].str.startswith("2026-10")]
    expected = ((nps["score"] >= 9).sum() - (nps["score"] <= 6).sum()) / len(nps) * 100
    got = next(r for r in october_total if r["kpi"] == "nps")
    assert math.isclose(got["value"], expected, rel_tol=1e-9)


def test_stocks_take_the_last_value(demo: Path, october_total: list[dict]) -> None:
    social = pd.read_csv(demo / "data" / "social_daily.csv")
    got = next(r for r in october_total if r["kpi"] == "social_followers")
    assert got["value"] == social.loc[social["date"] == "2026-10-31", "followers"].item()
    base = pd.read_csv(demo / "data" / "customer_base_monthly.csv").set_index("month")
    october = base.loc["2026-10-01"]
    churn = next(r for r in october_total if r["kpi"] == "churn_rate")
    assert math.isclose(churn["value"], october["customers_lost"] / october["customers_start"] * 100)


def test_demo_command_shows_alerts_once(demo: Path) -> None:
    """What `make demo` runs: the first run prints the alerts, the second sends nothing new."""
    project = demo / "alerting.yaml"  # its own state, whatever the other tests ran
    project.write_text((demo / "kpiforge.yaml").read_text().replace(
        "state: .kpiforge/state.db", "state: .kpiforge/alerting-test.db"))
    command = [sys.executable, "-m", "kpiforge", "run", "--project", str(project),
               "--grain", "month", "--by", "channel", "--compare", "previous"]
    first = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr
    assert "KPIs for 2026-10 by channel" in first.stdout
    assert "CRITICAL ctr: Click-through rate (CTR) is critical" in first.stderr  # console sink
    sent = int(re.search(r"; (\d+) deliver(?:y|ies) sent", first.stderr).group(1))
    assert sent > 0
    second = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert second.returncode == 0, second.stderr
    assert "CRITICAL" not in second.stderr
    assert "alerts: 0 notifications; no deliveries" in second.stderr


def test_traffic_source_shares_add_up_to_100(demo: Path, october: list[dict],
                                             october_total: list[dict]) -> None:
    # total(sessions) is fetched again without the split: the shares of a month add up to 100
    by_source = kpiforge_run(demo / "kpiforge.yaml", "--grain", "month", "--period", "2026-10",
                             "--by", "source", "--kpi", "traffic_source_share")
    sessions = pd.read_parquet(demo / "data" / "sessions.parquet", columns=["started_at", "source"])
    local = sessions["started_at"].dt.tz_convert("Europe/Paris").dt.strftime("%Y-%m")
    counts = sessions[local == "2026-10"]["source"].value_counts()
    expected = (counts / counts.sum() * 100).to_dict()
    got = {r["slice"]["source"]: r["value"] for r in by_source}
    assert got == pytest.approx(expected)
    channels = by_channel(october, "traffic_source_share")
    assert sum(r["value"] for r in channels.values()) == pytest.approx(100.0)
    assert all(r["previous"] is not None for r in channels.values())
    total = [r for r in october_total if r["kpi"] == "traffic_source_share"]
    assert [r["value"] for r in total] == [100.0]
