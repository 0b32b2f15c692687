"""SMART objective targets: load-time checks, progress and on-track status, `kpiforge run`
(table and JSON) and the catalog."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

import kpiforge
from kpiforge import (DefinitionError, Direction, Engine, ObjectiveProgress, ObjectiveStatus,
                      ObjectiveTarget)
from kpiforge._objectives_check import parse_target_date
from kpiforge._objectives_progress import measure_progress

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "tests" / "fixtures" / "smart_targets"
GOLDEN = ROOT / "tests" / "fixtures" / "golden" / "validate_smart_targets.txt"
EXAMPLE = ROOT / "examples" / "smart"

H, L, T = Direction.HIGHER_IS_BETTER, Direction.LOWER_IS_BETTER, Direction.TARGET
YEAR = dict(start="2026-01-01", deadline="2026-12-31")
JUNE = date(2026, 6, 30)  # 181 of 365 days elapsed at the end of the day
HALF = 181 / 365


def kpiforge_cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    # wide enough that a table row stays on one line
    return subprocess.run([sys.executable, "-m", "kpiforge", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, "COLUMNS": "160"})


# ----------------------------------------------------------------------------- progress

CASES = [
    ("half way at half time", ObjectiveTarget("leads", 200, baseline=100, **YEAR), H, 150, JUNE,
     "on_track", 0.5, HALF, 50),
    ("ahead of time", ObjectiveTarget("leads", 200, baseline=100, **YEAR), H, 180, JUNE,
     "on_track", 0.8, HALF, 20),
    ("behind time", ObjectiveTarget("leads", 200, baseline=100, **YEAR), H, 120, JUNE,
     "behind", 0.2, HALF, 80),
    ("moved away from the target", ObjectiveTarget("leads", 200, baseline=100, **YEAR), H, 80, JUNE,
     "behind", -0.2, HALF, 120),
    ("achieved early, raw progress kept", ObjectiveTarget("leads", 200, baseline=100, **YEAR), H,
     250, JUNE, "achieved", 1.5, HALF, 0),
    ("exactly on target", ObjectiveTarget("leads", 200, baseline=100, **YEAR), H, 200, JUNE,
     "achieved", 1.0, HALF, 0),
    ("lower is better, on track", ObjectiveTarget("cpl", 20, baseline=30, **YEAR), L, 24, JUNE,
     "on_track", 0.6, HALF, 4),
    ("lower is better, behind", ObjectiveTarget("cpl", 20, baseline=30, **YEAR), L, 28, JUNE,
     "behind", pytest.approx(0.2), HALF, 8),
    ("lower is better, achieved", ObjectiveTarget("cpl", 20, baseline=30, **YEAR), L, 19, JUNE,
     "achieved", 1.1, HALF, 0),
    ("deadline day, not met", ObjectiveTarget("leads", 200, baseline=100, **YEAR), H, 190,
     date(2026, 12, 31), "overdue", pytest.approx(0.9), 1.0, 10),
    ("deadline passed, not met", ObjectiveTarget("cpl", 20, baseline=30, **YEAR), L, 25,
     date(2027, 3, 31), "overdue", 0.5, 1.0, 5),
    ("deadline passed, met", ObjectiveTarget("cpl", 20, baseline=30, **YEAR), L, 20,
     date(2027, 3, 31), "achieved", 1.0, 1.0, 0),
    ("before the start, nothing expected", ObjectiveTarget("leads", 200, baseline=100, **YEAR), H,
     100, date(2025, 12, 1), "on_track", 0.0, 0.0, 100),
    ("no baseline, higher is better: from zero", ObjectiveTarget("leads", 200, **YEAR), H, 120,
     JUNE, "on_track", 0.6, HALF, 80),
    ("no baseline, lower is better: unknown", ObjectiveTarget("cpl", 20, **YEAR), L, 25, JUNE,
     "unknown", None, HALF, 5, ("baseline",)),
    ("no baseline, lower is better, but reached", ObjectiveTarget("cpl", 20, **YEAR), L, 18, JUNE,
     "achieved", None, HALF, 0),
    ("target KPI moved down towards its ideal", ObjectiveTarget("rhythm", 3, baseline=5, **YEAR), T,
     4, JUNE, "on_track", 0.5, HALF, 1),
    ("target KPI without baseline", ObjectiveTarget("rhythm", 3, **YEAR), T, 4, JUNE,
     "unknown", None, HALF, 1, ("baseline",)),
    ("no deadline", ObjectiveTarget("leads", 200, baseline=100, start="2026-01-01"), H, 150, JUNE,
     "unknown", 0.5, None, 50, ("deadline",)),
    ("no start", ObjectiveTarget("leads", 200, baseline=100, deadline="2026-12-31"), H, 150, JUNE,
     "unknown", 0.5, None, 50, ("start",)),
    ("no start, deadline passed", ObjectiveTarget("leads", 200, baseline=100, deadline="2026-03-31"),
     H, 150, JUNE, "overdue", 0.5, None, 50),
    ("no value", ObjectiveTarget("leads", 200, baseline=100, **YEAR), H, None, JUNE,
     "unknown", None, None, None, ("value",)),
    ("NaN is no value", ObjectiveTarget("leads", 200, baseline=100, **YEAR), H, float("nan"), JUNE,
     "unknown", None, None, None, ("value",)),
]


# the last column, what is missing, is left out where nothing is
@pytest.mark.parametrize("case, target, direction, value, as_of, status, progress, expected, "
                         "remaining, missing", [c if len(c) == 10 else (*c, ()) for c in CASES])
def test_progress_and_status(case, target, direction, value, as_of, status, progress, expected,
                             remaining, missing):
    got = measure_progress(target, direction, value, as_of, objective="o", period="2026-06")
    assert got.status == ObjectiveStatus(status), (case, got.note)
    assert got.progress == (pytest.approx(progress) if isinstance(progress, float) else progress), case
    assert got.expected == (pytest.approx(expected) if expected is not None else None), case
    assert got.remaining == (pytest.approx(remaining) if remaining is not None else None), case
    assert got.missing == missing, case
    assert got.note, case
    if got.progress is not None:
        assert 0.0 <= got.shown <= 1.0 and (got.shown == got.progress) == (0 <= got.progress <= 1)


@pytest.mark.parametrize("target, value, note", [
    (ObjectiveTarget("leads", 200, baseline=100, **YEAR), 120,
     "20 % of the way with 50 % of the time elapsed"),
    (ObjectiveTarget("leads", 200, baseline=100, **YEAR), None, "no value for 2026-06: no data"),
    (ObjectiveTarget("cpl", 20, **YEAR), 25,
     "no baseline: progress towards 20 cannot be measured"),
    (ObjectiveTarget("leads", 200, baseline=100, start="2026-01-01"), 150,
     "50 % of the way; no deadline: whether that is on track cannot be told"),
])
def test_notes_say_what_is_missing(target, value, note):
    direction = L if target.kpi == "cpl" else H
    got = measure_progress(target, direction, value, JUNE, period="2026-06", reason="no data")
    assert got.note == note


def test_the_objective_owner_is_used_when_the_target_names_none():
    target = ObjectiveTarget("leads", 200, baseline=100, **YEAR)
    assert measure_progress(target, H, 150, JUNE, owner="growth team").owner == "growth team"
    named = ObjectiveTarget("leads", 200, baseline=100, owner="Ana", **YEAR)
    assert measure_progress(named, H, 150, JUNE, owner="growth team").owner == "Ana"


def test_progress_to_dict_is_plain_json():
    got = measure_progress(ObjectiveTarget("leads", 200, baseline=100, **YEAR), H, 250, JUNE,
                           objective="o", period="2026-06")
    data = json.loads(json.dumps(got.to_dict()))
    assert data["status"] == "achieved" and data["progress"] == 1.5 and data["progress_shown"] == 1.0
    assert set(data) >= {"objective", "kpi", "target", "value", "progress", "status", "deadline",
                         "owner", "baseline", "start", "missing", "note"}
    assert isinstance(got, ObjectiveProgress)


# ----------------------------------------------------------------------------- load-time checks

def test_target_diagnostics_are_located_golden():
    proc = kpiforge_cli("validate", "tests/fixtures/smart_targets")
    assert proc.returncode == 1
    if os.environ.get("UPDATE_GOLDEN"):
        GOLDEN.write_text(proc.stderr)
    assert proc.stderr == GOLDEN.read_text(), f"output differs from {GOLDEN}"


def test_target_diagnostics_codes_and_severities():
    with pytest.raises(DefinitionError) as info:
        Engine.load(FIXTURE)
    found = {(d.code, d.severity, d.line) for d in info.value.diagnostics}
    assert ("unknown-name", "error", 5) in found
    assert ("target-not-member", "error", 9) in found
    assert ("deadline-before-start", "error", 13) in found
    assert ("target-direction", "warning", 17) in found  # lower is better, aimed above
    assert ("target-direction", "warning", 21) in found  # higher is better, aimed below
    assert ("target-no-deadline", "warning", 30) in found
    assert ("target-at-baseline", "warning", 34) in found
    # `calmer` moves a `direction: target` KPI down towards its ideal: nothing to say
    assert not any(d.line in (25, 26) for d in info.value.diagnostics)


def test_a_day_that_is_not_in_the_calendar_is_a_located_error(tmp_path):
    (tmp_path / "leads.yaml").write_text((FIXTURE / "kpis.yaml").read_text())
    (tmp_path / "objectives.yaml").write_text(
        "objectives:\n  - id: o\n    labels: {en: O}\n    kpis: [leads]\n"
        "    target: {kpi: leads, value: 2, start: 2026-01-01, deadline: 2026-02-30}\n")
    with pytest.raises(DefinitionError) as info:
        Engine.load(tmp_path)
    [error] = info.value.errors
    assert error.line == 5 and error.field.endswith("target.deadline") and "2026-02-30" in error.message
    assert parse_target_date("2026-02-30") is None and parse_target_date("2026-02-28") == date(2026, 2, 28)


def test_a_kpi_naming_the_objective_may_be_its_target(tmp_path):
    # membership counts the KPIs that name the objective, not only the objective's own list
    (tmp_path / "leads.yaml").write_text(
        "id: leads\nname: Leads\nlabels: {en: Leads}\nobjectives: [o]\nformula: leads\n"
        "inputs: {leads: {unit: count}}\nunit: count\ndirection: higher_is_better\n")
    (tmp_path / "other.yaml").write_text(
        "id: other\nname: Other\nlabels: {en: Other}\nformula: x\n"
        "inputs: {x: {unit: count}}\nunit: count\ndirection: higher_is_better\n")
    (tmp_path / "objectives.yaml").write_text(
        "objectives:\n  - id: o\n    labels: {en: O}\n    kpis: [other]\n    owner: growth\n"
        "    target: {kpi: leads, value: 2, baseline: 1, start: 2026-01-01, deadline: 2026-12-31}\n")
    engine = Engine.load(tmp_path)
    # the size advice counts the file's own list (one KPI): nothing else to say
    assert [w.code for w in engine.warnings] == ["too-few-kpis"]
    assert engine.objectives["o"].target.owner == "growth"


# ----------------------------------------------------------------------------- runs

KPIS = FIXTURE / "kpis.yaml"
OBJECTIVES = """objectives:
  - id: more_leads
    labels: {en: More leads, fr: Plus de leads}
    kpis: [leads]
    owner: growth team
    target: {kpi: leads, value: 200, baseline: 100, start: 2026-01-01, deadline: 2026-12-31}
  - id: cheaper_leads
    labels: {en: Cheaper leads}
    kpis: [cpl]
    target: {kpi: cpl, value: 20, baseline: 30, start: 2026-01-01, deadline: 2026-03-31, owner: Ana}
  - id: posting
    labels: {en: Steady posting}
    kpis: [rhythm]
    target: {kpi: rhythm, value: 3, baseline: 5, start: 2026-01-01, deadline: 2026-12-31}
"""
ROWS = "day,channel,leads,spend\n2026-06-03,search,100,2000\n2026-06-20,social,50,1500\n"


@pytest.fixture
def project_dir(tmp_path: Path) -> Path:
    (tmp_path / "definitions").mkdir()
    (tmp_path / "definitions" / "kpis.yaml").write_text(KPIS.read_text())
    (tmp_path / "definitions" / "objectives.yaml").write_text(OBJECTIVES)
    (tmp_path / "rows.csv").write_text(ROWS)
    (tmp_path / "kpiforge.yaml").write_text(
        "definitions: [definitions]\ncurrency: EUR\nsources:\n  rows:\n    type: csv\n"
        "    path: rows.csv\n    time: day\n    dimensions: [channel]\n"
        "    inputs: {leads: {agg: sum}, spend: {agg: sum}}\n")
    return tmp_path


def test_run_result_measures_each_target_on_the_latest_period(project_dir):
    project = kpiforge.Project.load(project_dir / "kpiforge.yaml")
    result = project.run(period="2026-06")
    got = {p.objective: p for p in result.objective_progress}
    # rhythm has no source: its KPI is not computed, so its objective is not measured
    assert set(got) == {"more_leads", "cheaper_leads"}
    leads = got["more_leads"]
    assert (leads.kpi, leads.period, leads.value, leads.status) == ("leads", "2026-06", 150, "on_track")
    assert leads.progress == 0.5 and leads.expected == pytest.approx(HALF)
    assert leads.owner == "growth team"
    cpl = got["cheaper_leads"]  # 3500 / 150 = 23.3 EUR at the end of June, deadline March
    assert cpl.status == ObjectiveStatus.OVERDUE and cpl.owner == "Ana"
    assert result.to_dict()["objectives"] == [p.to_dict() for p in result.objective_progress]
    assert not project.run(period="2026-06", by=["channel"]).objective_progress
    only = project.run(period="2026-06", kpis=["leads"]).objective_progress
    assert [p.objective for p in only] == ["more_leads"]


def test_cli_run_json_has_objectives_and_keeps_its_keys(project_dir):
    proc = kpiforge_cli("run", "--project", "kpiforge.yaml", "--period", "2026-06",
                        "--format", "json", cwd=project_dir)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert list(data) == ["results", "warnings", "objectives"]
    [leads] = [o for o in data["objectives"] if o["objective"] == "more_leads"]
    assert leads["kpi"] == "leads" and leads["target"] == 200 and leads["value"] == 150
    assert leads["progress"] == 0.5 and leads["status"] == "on_track"
    assert leads["deadline"] == "2026-12-31" and leads["owner"] == "growth team"


def test_cli_run_table_shows_progress_and_by_says_why_not(project_dir):
    proc = kpiforge_cli("run", "--project", "kpiforge.yaml", "--period", "2026-06",
                        "--format", "text", cwd=project_dir)
    assert proc.returncode == 0, proc.stderr
    assert "Objectives for 2026-06" in proc.stdout
    row = next(line for line in proc.stdout.splitlines() if "More leads" in line)
    assert "50 %" in row and "on track" in row and "2026-12-31" in row
    assert "growth team" in proc.stdout and "overdue" in proc.stdout
    split = kpiforge_cli("run", "--project", "kpiforge.yaml", "--period", "2026-06", "--by",
                         "channel", "--format", "text", cwd=project_dir)
    assert "Objectives for" not in split.stdout
    assert "progress is shown only for a run without --by" in split.stdout


# ----------------------------------------------------------------------------- catalog

@pytest.mark.parametrize("lang, target_text, owner_text", [
    ("en", "**Target: Cost per lead 20 EUR, from 30 EUR on 2026-01-01, by 2026-03-31**",
     "Owner: Ana"),
    ("fr", "**Cible : Coût par lead 20 EUR, en partant de 30 EUR le 2026-01-01, d’ici le 2026-03-31**",
     "Responsable : Ana"),
])
def test_catalog_shows_target_deadline_and_owner(project_dir, lang, target_text, owner_text):
    from kpiforge._catalog import catalog_data, render

    engine = Engine.load(project_dir / "definitions")
    markdown = render(engine, lang, "md")
    assert target_text in markdown
    assert owner_text in markdown
    data = catalog_data(engine, lang)
    cheaper = next(o for o in data["objectives"] if o["id"] == "cheaper_leads")
    assert cheaper["target"]["deadline"] == "2026-03-31" and cheaper["target"]["owner"] == "Ana"
    html = render(engine, lang, "html")
    assert "2026-03-31" in html and "Ana" in html


def test_the_demo_objectives_example_loads_on_the_standard_catalog():
    engine = Engine.load("kpiforge:standard", EXAMPLE)
    targets = {o.id: o.target for o in engine.objectives.values() if o.target is not None}
    assert set(targets) == {"cheaper_customers_2026", "convert_more_2026", "keep_customers_2026"}
    assert not [w for w in engine.warnings if "objectives.yaml" in w.path and "smart" in w.path]
    # the bundled catalog imposes no company's targets
    assert all(o.target is None for o in Engine.load().objectives.values())


def test_an_owner_from_yaml_is_escaped_in_the_html_catalog(tmp_path):
    from kpiforge._catalog import render

    (tmp_path / "kpis.yaml").write_text(KPIS.read_text())
    (tmp_path / "objectives.yaml").write_text(
        "objectives:\n  - id: o\n    labels: {en: O}\n    kpis: [leads]\n"
        "    owner: \"<script>x</script>\"\n"
        "    target: {kpi: leads, value: 2, baseline: 1, start: 2026-01-01, deadline: 2026-12-31}\n")
    html = render(Engine.load(tmp_path), "en", "html")
    assert "Owner: &lt;script&gt;x&lt;/script&gt;" in html and "<script>" not in html
