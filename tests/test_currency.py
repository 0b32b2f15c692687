"""Money thresholds carry their currency: a project in another currency converts them with its
``fx`` rates, or is refused naming each KPI; an EUR project is unchanged."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from kpiforge import Engine, Project, ProjectError

ROOT = Path(__file__).resolve().parent.parent

# one month of ads: 500 of the project's currency for 200 clicks, a CPC of 2.5
ROWS = [{"ts": "2026-10-05", "cost": 500.0, "clicks": 200.0}]
# the same campaign in yen: 81,250 JPY for 200 clicks, a CPC of 406.25 JPY (2.5 EUR at 162.5)
YEN_ROWS = [{"ts": "2026-10-05", "cost": 81250.0, "clicks": 200.0}]


def project(currency=None, fx=None, rows=ROWS):
    data = {"sources": {"ads": {"type": "records", "time": "ts", "data": rows, "inputs": {
        "cost": {"column": "cost", "agg": "sum"}, "clicks": {"column": "clicks", "agg": "sum"}}}}}
    if currency:
        data["currency"] = currency
    if fx:
        data["fx"] = fx
    return Project.from_dict(data)


def cpc(p):
    (record,) = p.run(period="2026-10", kpis=["cpc"]).to_records()
    return record


def test_bundled_money_thresholds_are_in_eur():
    engine = Engine.load()
    money = {k: d.thresholds.currency for k, d in engine.definitions.items()
             if d.unit == "currency" and d.thresholds.to_dict()}
    assert money and set(money.values()) == {"EUR"}, money


@pytest.mark.parametrize("currency, fx, rows, value, status, unit_currency, good", [
    # the acceptance case: 2.5 EUR * 162.5 = 406.25 JPY is exactly "good"
    ("JPY", {"EUR": 162.5}, YEN_ROWS, 406.25, "good", "JPY", 406.25),
    # 2.5 JPY is not 2.5 EUR: far below the converted threshold, good for the right reason
    ("JPY", {"EUR": 162.5}, ROWS, 2.5, "good", "JPY", 406.25),
    # a yen CPC of 1,000 is above 6 EUR (975 JPY): critical, not "good" as relabelling said
    ("JPY", {"EUR": 162.5}, [{"ts": "2026-10-05", "cost": 200000.0, "clicks": 200.0}],
     1000.0, "critical", "JPY", 406.25),
    # an EUR project: unchanged, fx ignored for EUR thresholds
    (None, None, ROWS, 2.5, "good", "EUR", 2.5),
    ("EUR", {"USD": 0.9}, ROWS, 2.5, "good", "EUR", 2.5),
])
def test_cpc_is_classified_in_the_project_currency(currency, fx, rows, value, status,
                                                     unit_currency, good):
    p = project(currency, fx, rows)
    record = cpc(p)
    assert (record["value"], record["status"], record["currency"]) == (value, status, unit_currency)
    assert p.engine["cpc"].thresholds.good == pytest.approx(good)
    assert p.engine["cpc"].currency == unit_currency


def test_converted_definitions_keep_the_original_currency_visible():
    engine = project("JPY", {"EUR": 162.5}).engine
    data = engine["cpc"].to_dict()
    assert data["converted"] == {"from": "EUR", "rate": 162.5}
    levels = {k: v for k, v in data["thresholds"].items() if k != "source"}
    assert levels == {"good": 406.25, "warning": 650.0, "critical": 975.0}
    # where the figures come from survives the conversion (the text names the written currency)
    assert data["thresholds"]["source"] == Engine.load()["cpc"].to_dict()["thresholds"]["source"]
    assert data["currency"] == "JPY"
    assert "converted" not in Engine.load()["cpc"].to_dict()


def test_without_a_rate_loading_names_each_money_kpi_and_both_currencies():
    with pytest.raises(ProjectError) as caught:
        project("JPY")
    messages = [d.message for d in caught.value.diagnostics]
    named = {m.split("'")[1] for m in messages}
    assert named == {"aov", "cpa", "cpc", "cpl", "ltv"}, messages
    assert all("in EUR but the project currency is JPY" in m and "fx: {EUR: <rate>}" in m
               for m in messages), messages


def test_a_rate_for_another_currency_does_not_help():
    with pytest.raises(ProjectError, match="cpc"):
        project("JPY", {"USD": 150.0})


def kpiforge(*args, cwd):
    return subprocess.run([sys.executable, "-m", "kpiforge", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("extra, code, expected", [
    ("", 1, "KPI 'cpc' has thresholds in EUR but the project currency is JPY: give the rate, "
            "fx: {EUR: <rate>} (1 EUR = <rate> JPY), or override the KPI's thresholds in JPY"),
    ("fx: {EUR: 162.5}\n", 0, None),
])
def test_validate_project_reports_a_missing_rate(tmp_path, extra, code, expected):
    (tmp_path / "kpiforge.yaml").write_text(
        "currency: JPY\n" + extra + "sources:\n  ads:\n    type: csv\n    path: ads.csv\n"
        "    time: ts\n    inputs:\n      cost: {column: cost, agg: sum}\n")
    (tmp_path / "ads.csv").write_text("ts,cost\n2026-10-05,1\n")
    done = kpiforge("validate", "--project", "kpiforge.yaml", cwd=tmp_path)
    assert done.returncode == code, done.stderr + done.stdout
    if expected:
        assert f"kpiforge.yaml:1:11: error[currency]: currency: {expected}" in done.stdout + done.stderr
        assert sum("[currency]" in line for line in (done.stdout + done.stderr).splitlines()) == 5


def test_show_says_what_was_converted(tmp_path):
    (tmp_path / "kpiforge.yaml").write_text("currency: JPY\nfx: {EUR: 162.5}\n")
    done = kpiforge("show", "cpc", "--project", "kpiforge.yaml", "--format", "json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert (data["converted"], data["thresholds"]["good"]) == ({"from": "EUR", "rate": 162.5}, 406.25)


TARGET_KPI = """\
kpis:
  - id: basket
    name: Basket
    formula: revenue / orders
    inputs: {revenue: {unit: currency}, orders: {unit: count}}
    unit: currency
    direction: target
    target: 40
    tolerance: 4
    thresholds: {good: 2, warning: 8, currency: EUR}
  - id: basket_local
    name: Basket in the KPI's own currency
    formula: revenue / orders
    inputs: {revenue: {unit: currency}, orders: {unit: count}}
    unit: currency
    direction: higher_is_better
    thresholds: {good: 5000}
"""


@pytest.mark.parametrize("kpi, attribute, expected", [
    ("basket", "target", 40 * 162.5),
    ("basket", "tolerance", 4 * 162.5),
    ("basket", "currency", "JPY"),
    # no currency in the mapping: the KPI's own currency, the project's: not converted
    ("basket_local", "currency", "JPY"),
])
def test_target_and_tolerance_are_converted(tmp_path, kpi, attribute, expected):
    (tmp_path / "kpis.yaml").write_text(TARGET_KPI)
    engine = Project.from_dict({"definitions": [str(tmp_path / "kpis.yaml")], "currency": "JPY",
                                "fx": {"EUR": 162.5}}).engine
    wanted = pytest.approx(expected) if isinstance(expected, float) else expected
    assert getattr(engine[kpi], attribute) == wanted
    assert engine["basket_local"].thresholds.good == 5000
    assert engine["basket"].thresholds.to_dict() == {"good": 2 * 162.5, "warning": 8 * 162.5}
