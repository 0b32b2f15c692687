"""Annotations: `kpiforge annotate` stores notes on periods in the history database, and
`kpiforge history`, the report (JSON, HTML, Markdown, its SVG trend charts) and the dashboard
show them with the values of those periods; their text is untrusted wherever it is shown.

The history tests use tests/test_history.py's project (ads by channel, August to October
2026), the report and dashboard tests tests/report_project.py's (two years of months).
"""

from __future__ import annotations

import dataclasses
import json
import os
import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest

from kpiforge import Annotation, AnnotationError, Project, StateError, UnknownKpiError
from tests.report_project import write_report, write_report_project
from tests.test_history import PLUGINS, cli, run, write_project

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "tests" / "fixtures" / "golden"
HOSTILE = "GA4 <script>alert(1)</script> & \"tags\""
ESCAPED = "GA4 &lt;script&gt;alert(1)&lt;/script&gt; &amp; &#34;tags&#34;"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    path = write_project(tmp_path)
    run(path, "--grain", "month", "--last", "3", "--no-alerts")
    run(path, "--grain", "month", "--last", "3", "--no-alerts", "--by", "channel")
    return path


def annotate(project: Path, *args: str) -> tuple[int, str, str]:
    return cli("annotate", "--project", str(project), *args)


def listed(project: Path, *args: str) -> list[dict]:
    code, out, err = annotate(project, "--list", "--format", "json", *args)
    assert code == 0, err
    return json.loads(out)["annotations"]


def added(project: Path, *args: str) -> list[dict]:
    code, out, err = annotate(project, "--format", "json", *args)
    assert code == 0, err
    return json.loads(out)["annotations"]


# -- the command line --------------------------------------------------------------------------

def test_add_list_delete_round_trip(project: Path) -> None:
    code, out, err = annotate(project, "--kpi", "ctr", "--period", "2026-10-14", "--author",
                              "Léa", "Consent banner: iOS tracking lost")
    assert (code, out, err) == (0, "annotation 1: ctr 2026-10-14: Consent banner: iOS tracking "
                                   "lost\n", ""), err
    annotate(project, "--period", "2026-09", "Site-wide GA4 migration")
    assert [(a["id"], a["kpi"], a["period"]) for a in listed(project)] == [
        (2, "*", "2026-09"), (1, "ctr", "2026-10-14")]  # by first day
    assert [a["id"] for a in listed(project, "--kpi", "clicks")] == [2]  # every KPI's included
    code, out, _ = annotate(project, "--delete", "2")
    assert (code, out) == (0, "deleted 2: * 2026-09: Site-wide GA4 migration\n")
    assert [a["id"] for a in listed(project)] == [1]
    # an id is never given again: a report that quoted 2 keeps meaning the deleted note
    assert [a["id"] for a in added(project, "--period", "2026-08", "again")] == [3]
    code, out, _ = annotate(project, "--list")
    assert code == 0 and "Consent banner" in out and "every KPI" in out and "Léa" in out


def test_the_json_is_shaped_like_the_other_commands(project: Path) -> None:
    got = added(project, "--kpi", "ctr", "--kpi", "clicks", "--period", "2026-10",
                "--slice", "channel=display", "--author", "ops", "  Display\n tag   broken ")
    assert [a["kpi"] for a in got] == ["ctr", "clicks"] and got[0]["id"] != got[1]["id"]
    one = got[0]
    assert set(one) == {"id", "kpi", "period", "grain", "first_day", "last_day", "slice", "text",
                        "author", "created"}
    assert {k: one[k] for k in ("period", "grain", "first_day", "last_day", "slice", "text",
                                "author")} == {
        "period": "2026-10", "grain": "month", "first_day": "2026-10-01",
        "last_day": "2026-10-31", "slice": {"channel": "display"}, "text": "Display tag broken",
        "author": "ops"}
    assert one["created"].endswith("Z") and one["created"][:4].isdigit()
    assert listed(project, "--kpi", "ctr") == [one]


@pytest.mark.parametrize("period, grain, label, first, last", [
    ("2026-10-14", None, "2026-10-14", "2026-10-14", "2026-10-14"),
    ("2026-10-14", "week", "2026-W42", "2026-10-12", "2026-10-18"),
    ("2026-10-14", "month", "2026-10", "2026-10-01", "2026-10-31"),
    ("2026-W40", "month", "2026-09", "2026-09-01", "2026-09-30"),  # the month of its Monday
    ("2026-10", "quarter", "2026-Q4", "2026-10-01", "2026-12-31"),
    ("2026-Q4", None, "2026-Q4", "2026-10-01", "2026-12-31"),
    ("2026", None, "2026", "2026-01-01", "2026-12-31"),
])
def test_periods_are_read_as_run_reads_them(project: Path, period, grain, label, first,
                                            last) -> None:
    args = ("--period", period, *(("--grain", grain) if grain else ()), "note")
    (got,) = added(project, *args)
    assert (got["period"], got["first_day"], got["last_day"]) == (label, first, last)


def test_text_length_bounds(project: Path) -> None:
    assert added(project, "--period", "2026-10", "x" * 500)[0]["text"] == "x" * 500
    assert added(project, "--period", "2026-10", "é")[0]["text"] == "é"
    code, _, err = annotate(project, "--period", "2026-10", "x" * 501)
    assert code == 1 and err == "error: TEXT: 501 characters; at most 500\n"


# (arguments, exit code, exact stderr); HISTORY stands for the history file's path
ERRORS = [
    (("--kpi", "ctx", "--period", "2026-10", "x"), 1,
     "error: --kpi: unknown KPI 'ctx' (did you mean 'ctr'?)\n"),
    (("--kpi", "*", "--kpi", "ctr", "--period", "2026-10", "x"), 1,
     "error: --kpi: '*' means every KPI: give it alone\n"),
    (("--period", "2026-13", "x"), 1,
     "error: --period: '2026-13' is not a valid month: month must be in 1..12\n"),
    (("--period", "2026-W54", "x"), 1, "error: --period: '2026-W54': 2026 has 53 weeks\n"),
    (("--period", "October", "x"), 1,
     "error: --period: 'October' is not a period; use 2026-10-14 (day), 2026-W43 (week), "
     "2026-10 (month), 2026-Q4 (quarter) or 2026 (year)\n"),
    (("--period", "2026-10", "--grain", "day", "x"), 1,
     "error: --grain: 2026-10 is a month, longer than a day: give a day as the period, or no "
     "grain\n"),
    (("--period", "2026-10", "--slice", "chanel=search", "x"), 1,
     "error: --slice: no source has a dimension 'chanel' (did you mean 'channel'?)\n"),
    (("--period", "2026-10", ""), 1,
     "error: TEXT: empty; say what happened, in 1 to 500 characters\n"),
    (("--period", "2026-10", " \n\t "), 1,
     "error: TEXT: empty; say what happened, in 1 to 500 characters\n"),
    (("--period", "2026-10", "tag\x1b[31m broken"), 1,
     "error: TEXT: holds the control character U+001B; write plain text\n"),
    (("--period", "2026-10", "abc\u202edcba"), 1,
     "error: TEXT: holds the control character U+202E; write plain text\n"),
    (("--delete", "99"), 1, "error: --delete: no annotation 99 in HISTORY\n"),
    (("x",), 2,
     "error: give --period PERIOD and the TEXT to add an annotation (or --list, --delete ID)\n"),
    (("--period", "2026-10"), 2,
     "error: give --period PERIOD and the TEXT to add an annotation (or --list, --delete ID)\n"),
    (("--list", "--period", "2026-10"), 2, "error: --list does not take --period\n"),
    (("--delete", "1", "--kpi", "ctr"), 2, "error: --delete does not take --kpi\n"),
    (("--list", "--delete", "1"), 2, "error: give --list or --delete ID, not both\n"),
    (("--list", "--kpi", "ctx"), 1, "error: --kpi: unknown KPI 'ctx' (did you mean 'ctr'?)\n"),
]


@pytest.mark.parametrize("args, code, message", ERRORS, ids=[" ".join(a) for a, _, _ in ERRORS])
def test_errors_name_the_option_and_exit_like_other_commands(project: Path, args, code,
                                                             message) -> None:
    got_code, out, err = annotate(project, *args)
    history = str(project.parent / "state" / "history.db")
    assert (got_code, out, err) == (code, "", message.replace("HISTORY", history))
    assert listed(project) == []  # nothing half-written


def test_error_output_golden(project: Path) -> None:
    history = str(project.parent / "state" / "history.db")
    lines = []
    for args, _, _ in ERRORS + [(("--period", "2026-10", "--slice", "channel", "x"), 2, "")]:
        code, _, err = annotate(project, *args)
        lines.append(f"$ kpiforge annotate {' '.join(map(repr, args))}\nexit {code}\n"
                     + err.replace(history, "<history.db>"))
    text = "\n".join(lines)
    path = GOLDEN / "annotate_errors.txt"
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(text, encoding="utf-8")
    assert text == path.read_text(encoding="utf-8"), f"differs from {path} (UPDATE_GOLDEN=1)"
    assert "Traceback" not in text


def test_a_memory_state_cannot_keep_annotations(tmp_path: Path) -> None:
    path = write_project(tmp_path)
    path.write_text(path.read_text().replace("state: state/alerts.db", "state: ':memory:'"))
    code, _, err = annotate(path, "--period", "2026-10", "x")
    assert code == 1 and "':memory:'" in err and "give state: a file" in err


# -- kpiforge history --------------------------------------------------------------------------

def test_history_shows_the_annotations_of_its_periods(project: Path) -> None:
    day, = added(project, "--kpi", "ctr", "--period", "2026-09-14", "tag fixed")
    year, = added(project, "--period", "2026", "attribution model")
    other, = added(project, "--kpi", "clicks", "--period", "2026-10", "not about ctr")
    display, = added(project, "--kpi", "ctr", "--period", "2026-10", "--slice",
                     "channel=display", "display only")
    code, out, err = cli("history", "ctr", "--project", str(project), "--format", "json")
    assert code == 0, err
    data = json.loads(out)
    # a day's note is on its month; a year's on each month; another KPI's and a slice's not
    assert {r["period"]: r["annotations"] for r in data["results"]} == {
        "2026-08": [year["id"]], "2026-09": [year["id"], day["id"]], "2026-10": [year["id"]]}
    assert data["annotations"] == [year, day]  # those named, by first day
    code, out, _ = cli("history", "ctr", "--project", str(project), "--by", "channel",
                       "--format", "json")
    by = {(r["period"], r["slice"]["channel"]): r["annotations"]
          for r in json.loads(out)["results"]}
    assert by[("2026-10", "display")] == [year["id"], display["id"]]
    assert by[("2026-10", "search")] == [year["id"]]
    assert other["id"] not in {i for ids in by.values() for i in ids}
    code, out, _ = cli("history", "ctr", "--project", str(project))
    assert "annotations" in out and f"#{day['id']} tag fixed" in out
    code, out, _ = cli("history", "ctr", "--project", str(project), "--format", "csv")
    rows = out.splitlines()
    assert rows[0].endswith(",annotations")
    assert rows[2].startswith("ctr,month,2026-09,") and rows[2].endswith(",attribution model | tag fixed")


def test_history_without_annotations_has_no_column(project: Path) -> None:
    code, out, _ = cli("history", "ctr", "--project", str(project))
    assert code == 0 and "annotations" not in out


# -- an older history file ---------------------------------------------------------------------

def make_version_1(path: Path) -> None:
    """A history file as kpiforge wrote it before annotations (schema version 1)."""
    from kpiforge._history import _SCHEMA, APPLICATION_ID

    with sqlite3.connect(path) as conn:
        conn.executescript(_SCHEMA)
        conn.execute("INSERT INTO history VALUES ('ctr', 'month', '2026-10', '', '{}', 2.5, "
                     "'percent', NULL, 'ok', NULL, NULL, 1, 'abc', '2026-11-01T00:00:00Z')")
        conn.execute(f"PRAGMA application_id={APPLICATION_ID}")
        conn.execute("PRAGMA user_version=1")
    conn.close()


def version_and_tables(path: Path) -> tuple[int, set[str]]:
    with sqlite3.connect(path) as conn:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    conn.close()
    return version, tables - {"sqlite_sequence"}


def test_an_older_history_file_still_opens_and_is_migrated_by_a_writer(tmp_path: Path) -> None:
    project = write_project(tmp_path)
    path = tmp_path / "state" / "history.db"
    path.parent.mkdir()
    make_version_1(path)
    before = path.read_bytes()
    # readers see no annotation and change nothing
    assert [r["value"] for r in json.loads(cli("history", "ctr", "--project", str(project),
                                               "--format", "json")[1])["results"]] == [2.5]
    assert listed(project) == []
    assert path.read_bytes() == before and version_and_tables(path) == (1, {"history"})
    # the first write adds the table and keeps the values
    (note,) = added(project, "--kpi", "ctr", "--period", "2026-10", "migrated")
    assert version_and_tables(path) == (2, {"history", "annotations"})
    records = Project.load(project, plugins=PLUGINS).history("ctr").records
    assert [(r.value, r.annotations) for r in records] == [(2.5, (note["id"],))]


def test_a_run_migrates_an_older_file_too(tmp_path: Path) -> None:
    project = write_project(tmp_path)
    path = tmp_path / "state" / "history.db"
    path.parent.mkdir()
    make_version_1(path)
    run(project, "--grain", "month", "--last", "1", "--no-alerts")
    assert version_and_tables(path) == (2, {"history", "annotations"})


def test_a_newer_history_file_is_refused(tmp_path: Path) -> None:
    project = write_project(tmp_path)
    path = tmp_path / "state" / "history.db"
    path.parent.mkdir()
    make_version_1(path)
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA user_version=99")
    conn.close()
    code, _, err = annotate(project, "--period", "2026-10", "x")
    assert code == 1 and "history written by a newer kpiforge" in err


# -- Python ------------------------------------------------------------------------------------

def test_the_project_api(project: Path) -> None:
    loaded = Project.load(project, plugins=PLUGINS)
    made = loaded.annotate("Campaign", period="2026-10", kpis=["ctr", "clicks"], author="me",
                           slice={"channel": "search"}, now=1_790_000_000)
    assert all(isinstance(a, Annotation) for a in made) and len(made) == 2
    assert made[0].created == "2026-09-21T14:13:20Z" and dict(made[0].slice) == {"channel": "search"}
    with pytest.raises(dataclasses.FrozenInstanceError):
        made[0].text = "changed"  # type: ignore[misc]
    everyone, = loaded.annotate("Site-wide", period="2026-08-03")
    assert everyone.kpi == "*" and everyone.applies_to("anything")
    assert loaded.annotations("ctr") == (everyone, made[0])
    assert loaded.annotations(period="2026-08") == (everyone,)
    assert loaded.annotations("ctr", period="2026-Q3") == (everyone,)
    assert loaded.annotations(period="2026-W41") == made  # Oct 5-11 is in October
    assert made[0].applies_to("ctr", {"channel": "search"})
    assert not made[0].applies_to("ctr", {}) and not made[0].applies_to("ctr", {"channel": None})
    assert loaded.delete_annotation(made[1].id) == made[1]
    assert loaded.annotations("clicks") == (everyone,)
    with pytest.raises(AnnotationError) as info:
        loaded.annotate("x", period="2026-13")
    assert info.value.field == "period"
    with pytest.raises(UnknownKpiError, match="did you mean 'ctr'"):
        loaded.annotate("x", period="2026-10", kpis="ctx")
    with pytest.raises(AnnotationError, match="author: 101 characters; at most 100"):
        loaded.annotate("x", period="2026-10", author="a" * 101)


def test_a_damaged_history_file_is_a_state_error(project: Path) -> None:
    path = project.parent / "state" / "history.db"
    path.write_bytes(b"SQLite format 3\x00" + b"\x00" * 200)
    with pytest.raises(StateError):
        Project.load(project, plugins=PLUGINS).annotate("x", period="2026-10")


# -- the report --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def reported(tmp_path_factory) -> dict:
    """A report project with annotations: in the period, earlier in the trend, before it,
    about one slice; and its report in JSON, HTML, Markdown."""
    pytest.importorskip("altair")
    pytest.importorskip("vl_convert")
    root = tmp_path_factory.mktemp("annotated")
    path = write_report_project(root)
    project = Project.load(path, plugins=PLUGINS)
    notes = {
        "day": project.annotate(HOSTILE, period="2026-10-14", kpis="ctr")[0],
        "spring": project.annotate("Spring campaign | *bold* [link](x)", period="2026-04")[0],
        "slice": project.annotate("Display tag broken", period="2026-10", kpis="ctr",
                                  slice={"channel": "display"})[0],
        "old": project.annotate("Before the trend", period="2024-03", kpis="ctr")[0],
        "cpc": project.annotate("CPC bidding change", period="2026-09-02", kpis="cpc")[0],
    }
    code, out, err = cli("report", "--project", str(path), "--grain", "month", "--period",
                         "2026-10", "--format", "json", "--no-alerts")
    assert code == 0, err
    html = {lang: write_report(path, root / "html", "--grain", "month", "--period", "2026-10",
                               "--lang", lang, "--no-alerts").read_text(encoding="utf-8")
            for lang in ("en", "fr")}
    md_path = write_report(path, root / "md", "--grain", "month", "--period", "2026-10",
                           "--format", "md", "--no-alerts")
    return {"json": json.loads(out), "html": html, "md": md_path.read_text(encoding="utf-8"),
            "md_dir": md_path.parent, "notes": notes}


def test_the_report_json_carries_the_annotations(reported: dict) -> None:
    data, notes = reported["json"], reported["notes"]
    got = [(a["id"], a["number"], a["in_period"], a["at"]) for a in data["annotations"]]
    assert got == [(notes["spring"].id, 1, False, "2026-04"), (notes["cpc"].id, 2, False, "2026-09"),
                   (notes["slice"].id, 3, True, "2026-10"), (notes["day"].id, 4, True, "2026-10")]
    assert data["annotations"][3]["text"] == HOSTILE  # data, not markup: as written
    assert data["kpis"]["ctr"]["annotations"] == [1, 3, 4]
    assert data["kpis"]["cpc"]["annotations"] == [1, 2]
    assert data["kpis"]["clicks"]["annotations"] == [1]
    assert data["annotations_unknown"] is None


def test_the_html_lists_them_escaped_in_both_languages(reported: dict) -> None:
    from tests.test_report import Page

    en, fr = reported["html"]["en"], reported["html"]["fr"]
    for html in (en, fr):
        page = Page()
        page.feed(html)
        assert "script" not in page.tags
        assert all(url.startswith("#") for url in page.urls)
        assert ESCAPED in html and HOSTILE not in html and "<script>" not in html
        assert '<li id="annotation-4">' in html and 'href="#annotation-4"' in html
    assert "<h2>Context</h2>" in en and "<h3>In this period</h3>" in en
    assert "<h3>Earlier in the trend</h3>" in en and "every KPI" in en
    assert "<h2>Contexte</h2>" in fr and "<h3>Sur cette période</h3>" in fr
    assert "<h3>Plus tôt dans la tendance</h3>" in fr and "tous les KPI" in fr
    assert "Contexte :" in fr and "Context:" in en
    assert "Before the trend" not in en  # outside the trend window


def _chart(html: str, chart: str) -> str:
    start = html.index(f'data-chart="{chart}"')
    return html[start:html.index("</svg>", start)]


def test_the_trend_charts_draw_their_annotations(reported: dict) -> None:
    html = reported["html"]["en"]
    ctr, cpc, clicks = (_chart(html, f"trend-{k}") for k in ("ctr", "cpc", "clicks"))
    rule = 'class="mark-rule role-mark annotation_marks"'
    assert rule in ctr and rule in cpc and rule in clicks
    # ctr: the spring campaign (1) and two notes of October on one rule (3 is a slice's: not
    # drawn on the totals); every KPI's spring campaign on each chart
    assert ctr.count("<line aria-label=") == 2 and ">4</text>" in ctr and ">1</text>" in ctr
    assert ">3</text>" not in ctr and ">2</text>" not in ctr
    assert ">2</text>" in cpc and clicks.count("<line aria-label=") == 1
    # the words go to screen readers, escaped by Vega
    assert "GA4 &lt;script&gt;alert(1)&lt;/script&gt; &amp;" in ctr


def test_markdown_lists_them_escaped_and_its_svg_files_have_the_rules(reported: dict) -> None:
    md = reported["md"]
    assert "## Context" in md and "### In this period" in md
    assert "GA4 \\<script\\>alert(1)\\</script\\> \\& \"tags\"" in md
    assert "Spring campaign \\| \\*bold\\* \\[link\\](x)" in md
    assert "&lt;" not in md  # escaped once, for Markdown
    assert "Context: 1, 3, 4" in md
    svg = next(reported["md_dir"].glob("*-trend-ctr.svg")).read_text(encoding="utf-8")
    assert "annotation_marks" in svg


def test_a_report_without_annotations_says_so(tmp_path: Path) -> None:
    pytest.importorskip("altair")
    path = write_report_project(tmp_path)
    code, out, _ = cli("report", "--project", str(path), "--grain", "month", "--format", "json",
                       "--no-alerts")
    data = json.loads(out)
    assert code == 0 and data["annotations"] == [] and data["kpis"]["ctr"]["annotations"] == []
    html = write_report(path, tmp_path / "out", "--grain", "month", "--no-alerts").read_text()
    assert "No annotation about these periods" in html and "annotation_marks" not in html
    assert not (tmp_path / "state").exists()  # reading made no history file


# -- the dashboard -----------------------------------------------------------------------------

def test_the_dashboard_shows_them_and_its_api_has_them(tmp_path: Path) -> None:
    pytest.importorskip("starlette")
    pytest.importorskip("uvicorn")
    from tests.serve_server import get, running

    project = Project.load(write_report_project(tmp_path), plugins=PLUGINS)
    project.record_history(project.run(grain="month", last=3))
    day, = project.annotate(HOSTILE, period="2026-10-14", kpis="ctr")
    everyone, = project.annotate("Site-wide", period="2026-09")
    with running(project) as base:
        api = get(base, "/api/kpis/ctr/annotations").json()
        assert api == {"kpi": "ctr", "annotations": [everyone.to_dict(), day.to_dict()]}
        assert get(base, "/api/kpis/ctr/annotations", period="2026-09").json()["annotations"] == [
            everyone.to_dict()]
        bad = get(base, "/api/kpis/ctr/annotations", period="2026-13")
        assert bad.status_code == 400 and "period: '2026-13'" in bad.json()["error"]
        assert get(base, "/api/kpis/ctx/annotations").status_code == 404
        history = get(base, "/api/history/ctr", grain="month").json()
        assert history["annotations"] == [everyone.to_dict(), day.to_dict()]
        assert {r["period"]: r["annotations"] for r in history["records"]}["2026-10"] == [day.id]
        page = get(base, "/kpi/ctr", grain="month", lang="fr").text
        assert ESCAPED in page and HOSTILE not in page and "<h2>Contexte</h2>" in page
        assert page.count('class="annotation"') == 2
        if "data-chart" in page:  # the report extra draws the chart
            assert "annotation_marks" in page
        assert "Aucune annotation" in get(base, "/kpi/clicks", grain="quarter", last="1",
                                          lang="fr").text


@pytest.mark.parametrize("period, periods, at, overlaps_last", [
    ("2026-10-14", ["2026-W41", "2026-W42", "2026-W43"], "2026-W42", False),
    ("2026-10", ["2026-W39", "2026-W40", "2026-W41"], "2026-W40", True),  # W40 holds Oct 1
    ("2026", ["2026-09", "2026-10"], None, True),  # began before the chart: listed, not drawn
    ("2026-Q4", ["2026-09", "2026-10"], "2026-10", True),
    ("2026-08", ["2026-09", "2026-10"], None, False),
    ("2026-W44", ["2026-10", "2026-11"], "2026-10", True),  # Oct 26 - Nov 1
])
def test_where_a_chart_draws_an_annotation(period, periods, at, overlaps_last) -> None:
    from kpiforge._annotations_store import annotation_period, place_annotations, span

    chosen = annotation_period(period, None, 0)
    note = Annotation(1, "*", chosen.grain, chosen.label, chosen.start,
                      chosen.end - timedelta(days=1), {}, "x", "", "")
    assert place_annotations([note], periods) == {1: at}
    assert note.overlaps(*span(periods[-1])) is overlaps_last
