"""The CDNOW example project against an independent pandas computation on the same CSV.

The expected values are computed here from the raw transactions with pandas, following the
definitions documented in ``examples/cdnow/kpiforge.yaml``: every line is a purchase (the 255
exact duplicate lines and the 80 zero-value purchases included), a customer is active in a
month if they purchased in it, churn(M) = active in M-1 and not in M over active in M-1, and
retention(M) = active in M-1 and still active in M over active in M-1.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from kpiforge._project import load_project

pd = pytest.importorskip("pandas")

ROOT = Path(__file__).resolve().parents[1]
PROJECT = ROOT / "examples" / "cdnow" / "kpiforge.yaml"
CSV = ROOT / "examples" / "cdnow" / "data" / "cdnow_transactions.csv"
MONTHS = ["1997-02", "1997-03", "1997-04", "1998-06"]
KPIS = ["revenue", "orders_count", "aov", "active_customers", "churn_rate", "retention_rate"]



def run(project: Path, **options) -> list[dict]:
    """``Project.run``: the engine of the project's own definitions, as `kpiforge run` does."""
    return load_project(project).run(**options).to_records()


@pytest.fixture(scope="module")
def transactions() -> "pd.DataFrame":
    frame = pd.read_csv(CSV)
    frame["month"] = pd.PeriodIndex(frame["date"].str[:7], freq="M")
    return frame


def expected_month(frame: "pd.DataFrame", label: str) -> dict[str, float | None]:
    month = pd.Period(label, freq="M")
    rows = frame[frame["month"] == month]
    active = set(rows["customer_id"])
    before = set(frame.loc[frame["month"] == month - 1, "customer_id"])
    revenue = float(rows["dollar_value"].sum())
    return {
        "revenue": revenue,
        "orders_count": float(len(rows)),
        "aov": revenue / len(rows),
        "active_customers": float(len(active)),
        "churn_rate": len(before - active) / len(before) * 100 if before else None,
        "retention_rate": len(before & active) / len(before) * 100 if before else None,
    }


def values(records: list[dict], period: str) -> dict[str, float | None]:
    out = {}
    for record in records:
        assert record["slice"] == {}, record
        if record["period"] == period:
            out[record["kpi"]] = record["value"]
    return out


def close(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-6)


@pytest.mark.parametrize("month", MONTHS)
def test_monthly_values_match_pandas(transactions, month: str) -> None:
    records = run(PROJECT, grain="month", period=month, kpis=KPIS)
    got = values(records, month)
    want = expected_month(transactions, month)
    assert set(got) >= set(KPIS), f"missing KPIs: {set(KPIS) - set(got)}"
    for kpi in KPIS:
        assert close(got[kpi], want[kpi]), f"{month} {kpi}: kpiforge {got[kpi]} != pandas {want[kpi]}"


def test_known_figures(transactions) -> None:
    """Pinned figures, so a change in the data file or in the definitions cannot go unnoticed."""
    assert len(transactions) == 69659 and transactions["transaction_id"].is_unique
    # kept on purpose (see the project file): repeated lines and zero-value purchases
    same = ["customer_id", "date", "number_of_cds", "dollar_value"]
    assert transactions.duplicated(same).sum() == 255
    assert (transactions["dollar_value"] == 0).sum() == 80
    feb = expected_month(transactions, "1997-02")
    assert feb["orders_count"] == 11272
    assert feb["active_customers"] == 9633
    assert round(feb["revenue"], 2) == 379590.03
    assert round(feb["churn_rate"], 4) == 85.2536  # 6,689 of January's 7,846 did not come back


def test_first_month_has_no_churn() -> None:
    # nobody was active in December 1996: churn and retention are undefined, not 0 or 100
    records = run(PROJECT, grain="month", period="1997-01",
                  kpis=["churn_rate", "retention_rate"])
    got = {r["kpi"]: r for r in records if r["period"] == "1997-01"}
    for kpi in ("churn_rate", "retention_rate"):
        assert got[kpi]["value"] is None
        assert got[kpi]["status"] == "unknown"
        assert got[kpi]["reason"]


def test_active_customers_are_not_summed_over_months(transactions) -> None:
    records = run(PROJECT, grain="quarter", period="1997-Q2", kpis=["active_customers"])
    got = values(records, "1997-Q2")["active_customers"]
    quarter = transactions[transactions["date"].between("1997-04-01", "1997-06-30")]
    distinct = quarter["customer_id"].nunique()
    summed = sum(quarter.groupby("month")["customer_id"].nunique())
    assert distinct < summed  # the check below would not catch a sum otherwise
    assert got == distinct


def test_compare_previous_month(transactions) -> None:
    records = run(PROJECT, grain="month", period="1997-03", kpis=["revenue"], compare="previous")
    record = next(r for r in records if r["kpi"] == "revenue" and r["period"] == "1997-03")
    march = expected_month(transactions, "1997-03")["revenue"]
    february = expected_month(transactions, "1997-02")["revenue"]
    assert close(record["previous"], february)
    assert close(record["change_pct"], (march - february) / february * 100)
