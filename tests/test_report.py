"""`kpiforge report`: its numbers are `kpiforge run`'s, its HTML needs no network and draws
every chart as SVG, its words come in English and French, its Markdown embeds SVG files.

The project is tests/report_project.py's (small, so each report takes well under a second);
the browser check is tests/test_report_browser.py.
"""

import json
import math
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kpiforge._model import Direction, Thresholds
from kpiforge._report import threshold_bands
from kpiforge._report_render import UI
from kpiforge._status import classify
from tests.report_project import cli, report_json, write_report, write_report_project

pytest.importorskip("altair")
pytest.importorskip("vl_convert")


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    return write_report_project(tmp_path_factory.mktemp("report"))


@pytest.fixture(scope="module")
def report(project: Path) -> dict:
    return report_json(project, "--grain", "month", "--period", "2026-10", "--by", "channel")


def run_json(project: Path, *args: str) -> dict:
    code, out, err = cli("run", "--project", str(project), "--format", "json", "-q",
                         "--no-alerts", "--no-history", *args)
    assert code == 0, err
    return json.loads(out)


def test_the_periods_values_are_kpiforge_runs(project: Path, report: dict) -> None:
    ran = run_json(project, "--grain", "month", "--period", "2026-10", "--compare", "previous",
                   "--compare", "year")
    assert report["results"] == ran["results"]
    assert report["objectives"] == ran["objectives"] and report["objectives"]
    for record in ran["results"]:
        entry = report["kpis"][record["kpi"]]
        for field in ("value", "status", "previous", "change_pct", "previous_year", "change_pct_year"):
            assert entry[field] == record[field], (record["kpi"], field)


def test_the_trend_and_breakdown_are_kpiforge_runs(project: Path, report: dict) -> None:
    trend = run_json(project, "--grain", "month", "--from", "2025-10-01", "--to", "2026-10-31")
    assert report["periods"] == [f"2025-{m}" for m in ("10", "11", "12")] + [
        f"2026-{m:02d}" for m in range(1, 11)]
    for record in trend["results"]:
        point = {p["period"]: p for p in report["kpis"][record["kpi"]]["trend"]}[record["period"]]
        assert (point["value"], point["status"]) == (record["value"], record["status"])
    split = run_json(project, "--grain", "month", "--period", "2026-10", "--by", "channel")
    for record in split["results"]:
        rows = {b["slice"]["channel"]: b for b in report["kpis"][record["kpi"]]["breakdown"]}
        if rows:
            assert rows[record["slice"]["channel"]]["value"] == record["value"]


def test_what_could_not_be_computed_and_the_alerts_are_listed(project: Path, report: dict) -> None:
    assert [(n["kpi"], n["reason_code"]) for n in report["not_computed"]] == [
        ("cost_per_conversion", "division_by_zero")]
    # CPC is 80 EUR / 46 clicks = 1.74 EUR in October (warning above 1 EUR): a dry run finds
    # its alert and sends nothing
    assert report["kpis"]["cpc"]["value"] == pytest.approx(80 / 46)
    assert [(a["kpi"], a["status"], a["source"]) for a in report["alerts"]] == [
        ("cpc", "warning", "dry_run")]
    assert not (project.parent / "alerts.jsonl").exists()
    assert not (project.parent / "state").exists()
    assert [s["objective"] for s in report["sections"]] == ["reach_more", None]
    assert report["sections"][1]["kpis"] == ["clicks"]


def test_an_alert_notified_by_an_earlier_run_is_still_the_periods(tmp_path: Path) -> None:
    project = write_report_project(tmp_path)
    code, _, err = cli("run", "--project", str(project), "--period", "2026-10", "-q")
    assert code == 0 and (tmp_path / "alerts.jsonl").exists(), err
    sent = (tmp_path / "alerts.jsonl").read_text()
    data = report_json(project, "--grain", "month", "--period", "2026-10")
    assert [(a["kpi"], a["status"], a["source"]) for a in data["alerts"]] == [
        ("cpc", "warning", "state")]
    assert (tmp_path / "alerts.jsonl").read_text() == sent  # the report sent nothing more


def test_latest_period_by_default_and_the_trend_length(project: Path) -> None:
    data = report_json(project, "--grain", "quarter", "--last", "3", "--no-alerts")
    assert data["period"] == "2026-Q4" and data["periods"] == ["2026-Q2", "2026-Q3", "2026-Q4"]
    assert data["previous_period"] == "2026-Q3" and data["year_period"] == "2025-Q4"


@pytest.mark.parametrize("args, message", [
    (("--grain", "week", "--period", "2026-10"), "2026-10 is a month, not a week"),
    (("--grain", "month", "--by", "chanel"), "no source has a dimension 'chanel' (did you mean 'channel'?)"),
    (("--grain", "year"), "Invalid value for '--grain'"),
])
def test_wrong_requests_are_errors(project: Path, args: tuple, message: str) -> None:
    code, _, err = cli("report", "--project", str(project), "--format", "json", *args)
    assert code in (1, 2) and message in err, err


class Page(HTMLParser):
    URL_ATTRIBUTES = {"src", "href", "srcset", "poster", "data", "action", "xlink:href", "background"}

    def __init__(self):
        super().__init__()
        self.urls, self.tags, self.figures_without_svg = [], [], 0
        self._figure: list[bool] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.urls.extend(v or "" for k, v in attrs if k in self.URL_ATTRIBUTES)
        if tag == "figure":
            self._figure.append(False)
        if tag == "svg" and self._figure:
            self._figure[-1] = True

    def handle_endtag(self, tag):
        if tag == "figure":
            self.figures_without_svg += not self._figure.pop()


@pytest.fixture(scope="module")
def pages(project: Path, tmp_path_factory) -> dict[str, str]:
    out = tmp_path_factory.mktemp("html")
    return {lang: write_report(project, out, "--grain", "month", "--period", "2026-10", "--by",
                               "channel", "--lang", lang).read_text(encoding="utf-8")
            for lang in ("en", "fr")}


@pytest.mark.parametrize("lang", ["en", "fr"])
def test_the_html_loads_nothing_and_every_chart_is_svg(pages: dict, report: dict, lang: str) -> None:
    html = pages[lang]
    page = Page()
    page.feed(html)
    assert page.urls and all(url.startswith("#") for url in page.urls), page.urls
    assert "http://" not in html and "https://" not in html
    assert not {"script", "link", "img", "iframe", "object", "embed"} & set(page.tags)
    # a trend per KPI shown, a breakdown per KPI that can be split by channel: all SVG
    shown = [k for s in report["sections"] for k in s["kpis"]]
    split = [k for k in shown if report["kpis"][k]["breakdown"]]
    assert page.tags.count("figure") == len(shown) + len(split) == page.tags.count("svg")
    assert page.figures_without_svg == 0
    assert html.count('data-chart="trend-') == len(shown) and html.count('data-chart="by-') == len(split)


def test_the_words_are_the_languages(pages: dict, report: dict) -> None:
    assert set(UI["en"]) == set(UI["fr"])
    for key in ("grains", "statuses", "objective_statuses"):
        assert set(UI["en"][key]) == set(UI["fr"][key]), key
    en, fr = pages["en"], pages["fr"]
    assert '<html lang="fr">' in fr and "<h1>Rapport mensuel : 2026-10</h1>" in fr
    assert "<h1>Monthly report: 2026-10</h1>" in en
    for words in ("Avancement des objectifs", "Toucher plus de monde", "Taux de clic",
                  "Valeurs qui n’ont pas pu être calculées", "Alertes de la période", "attention"):
        assert words in fr, words
    for words in ("Objectives&#39; progress", "Reach more people", "Click-through rate",
                  "Values that could not be computed", "Alerts of the period"):
        assert words in en, words
        assert words not in fr, words
    # numbers the French way: 2,2 % with a decimal comma
    ctr = report["kpis"]["ctr"]["value"]
    assert f"{ctr:.2f} %".replace(".", ",") in fr and f"{ctr:.2f} %" in en


def test_markdown_embeds_its_charts_as_svg_files(project: Path, report: dict, tmp_path: Path) -> None:
    path = write_report(project, tmp_path, "--grain", "month", "--period", "2026-10", "--format",
                        "md", "--by", "channel")
    text = path.read_text(encoding="utf-8")
    images = [line.split("](", 1)[1].rstrip(")") for line in text.splitlines() if line.startswith("![")]
    shown = [k for s in report["sections"] for k in s["kpis"]]
    assert len(images) == len(shown) + sum(bool(report["kpis"][k]["breakdown"]) for k in shown)
    for name in images:
        svg = (tmp_path / name).read_text(encoding="utf-8")
        assert svg.startswith("<svg") and "</svg>" in svg, name
    assert "# Monthly report: 2026-10" in text and "division by zero" in text


def test_a_missing_extra_names_the_install_line(project: Path, monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "altair", None)  # import altair now raises ImportError
    code, _, err = cli("report", "--project", str(project), "--grain", "month", "-o", str(tmp_path))
    assert code == 1 and "pip install 'kpiforge[report]'" in err
    assert list(tmp_path.iterdir()) == []
    # the JSON has no chart: it needs no extra
    assert report_json(project, "--grain", "month", "--no-alerts")["period"] == "2026-10"


BOUND = st.floats(-1e3, 1e3, allow_nan=False)


@given(direction=st.sampled_from(list(Direction)), good=st.none() | BOUND,
       warning=st.none() | BOUND, critical=st.none() | BOUND, target=BOUND,
       low=BOUND, span=st.floats(1e-3, 1e3), where=st.floats(0.001, 0.999))
def test_bands_say_the_status_the_engine_gives(direction, good, warning, critical, target, low,
                                               span, where) -> None:
    """Any point of any band is classified by the engine as the band's status."""
    if direction is Direction.TARGET:  # distances from the target: not negative
        good, warning, critical = (None if b is None else abs(b) for b in (good, warning, critical))
    thresholds = {k: v for k, v in (("good", good), ("warning", warning), ("critical", critical))
                  if v is not None}
    entry = {"thresholds": thresholds, "direction": str(direction), "target": target,
             "tolerance": None}
    high = low + span
    bands = threshold_bands(entry, low, high)
    assert bands[0]["y0"] == low and bands[-1]["y1"] == high
    assert all(a["y1"] == b["y0"] and a["status"] != b["status"] for a, b in zip(bands, bands[1:]))
    for band in bands:
        x = band["y0"] + (band["y1"] - band["y0"]) * where
        if band["y0"] < x < band["y1"] and all(not math.isclose(x, t, rel_tol=1e-6, abs_tol=1e-9)
                                                  for t in _edges(entry)):
            assert str(classify(x, direction, Thresholds(**thresholds), target)) == band["status"]


def _edges(entry: dict) -> list[float]:
    bounds = list(entry["thresholds"].values())
    if entry["direction"] == "target":
        return [entry["target"] + s * b for b in bounds + [0.0] for s in (-1, 1)]
    return bounds


def test_text_from_the_data_is_text_in_the_page(tmp_path: Path) -> None:
    """A channel named like markup is shown, in the table and in the chart, never run."""
    project = write_report_project(tmp_path)
    hostile = "<img src=x onerror=alert(1)>"
    ads = tmp_path / "ads.csv"
    ads.write_text(ads.read_text().replace(",display,", f",{hostile},"))
    page_file = write_report(project, tmp_path / "out", "--grain", "month", "--by", "channel",
                             "--no-alerts")
    html = page_file.read_text(encoding="utf-8")
    page = Page()
    page.feed(html)
    assert "img" not in page.tags and "onerror" not in " ".join(page.urls)
    assert html.count("&lt;img src=x onerror=alert(1)&gt;") >= 4  # 3 tables and a chart at least
