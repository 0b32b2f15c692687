"""What ``status`` means: certified rests on certified, deprecated names its replacement and
warns where used, drafts do not alert unless the project opts in; threshold provenance."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from kpiforge import DefinitionError, Engine, Project
from kpiforge.alerts import dispatch
from tests.alert_servers import record

ROOT = Path(__file__).resolve().parent.parent


def kpi(kpi_id: str, formula: str = "x", status: str = "certified", **extra) -> dict:
    inputs = {} if formula != "x" else {"x": {"unit": "count"}}
    return {"id": kpi_id, "name": kpi_id, "formula": formula, "inputs": inputs, "unit": "count",
            "direction": "higher_is_better", "status": status, **extra}


def load(tmp_path: Path, *kpis: dict):
    path = tmp_path / "kpis.yaml"
    path.write_text(yaml.safe_dump({"kpis": list(kpis)}, sort_keys=False))
    return Engine.load(path)


def problems(tmp_path: Path, *kpis: dict) -> list[tuple[str, str, str]]:
    try:
        engine = load(tmp_path, *kpis)
    except DefinitionError as exc:
        found = exc.diagnostics
    else:
        found = engine.warnings
    return [(d.severity, d.code, d.message) for d in found]


# (KPIs, expected (severity, code, part of the message)); None: nothing to say
CASES = {
    "certified uses draft": (
        [kpi("base", status="draft"), kpi("top", "base * 2")],
        ("error", "certified-uses-uncertified",
         "certified KPI 'top' uses 'base', which is draft: certify 'base' first")),
    "certified uses deprecated": (
        [kpi("new"), kpi("base", status="deprecated", replaced_by="new"), kpi("top", "base * 2")],
        ("error", "certified-uses-uncertified", "uses 'base', which is deprecated")),
    "certified uses certified": ([kpi("base"), kpi("top", "base * 2")], None),
    "draft uses draft": ([kpi("base", status="draft"), kpi("top", "base * 2", "draft")], None),
    "deprecated without replaced_by": (
        [kpi("old", status="deprecated")],
        ("error", "deprecated-without-replacement", "deprecated KPI 'old' needs replaced_by")),
    "replaced_by unknown": (
        [kpi("new_one"), kpi("old", status="deprecated", replaced_by="new_on")],
        ("error", "unknown-name", "replaced_by names unknown KPI 'new_on' (did you mean 'new_one'?)")),
    "replaced_by itself": (
        [kpi("old", status="deprecated", replaced_by="old")],
        ("error", "replaced-by-itself", "cannot be replaced by itself")),
    "replaced_by without deprecation": (
        [kpi("new"), kpi("old", replaced_by="new")],
        ("warning", "replaced-by-not-deprecated", "replaced_by only applies with status: deprecated")),
    "draft uses deprecated": (
        [kpi("new"), kpi("old", status="deprecated", replaced_by="new"),
         kpi("top", "old * 2", "draft")],
        ("warning", "uses-deprecated", "KPI 'top' uses deprecated KPI 'old': use 'new' instead")),
    "deprecated uses deprecated": (
        [kpi("new"), kpi("old", status="deprecated", replaced_by="new"),
         kpi("older", "old * 2", "deprecated", replaced_by="new")], None),
}


@pytest.mark.parametrize("name", list(CASES))
def test_lifecycle_rules(tmp_path, name):
    kpis, expected = CASES[name]
    found = [p for p in problems(tmp_path, *kpis) if p[1] != "unused-input"]
    if expected is None:
        assert found == []
    else:
        severity, code, message = expected
        assert [(s, c) for s, c, _ in found] == [(severity, code)], found
        assert message in found[0][2]


def test_the_error_points_at_the_formula_that_uses_the_draft(tmp_path):
    (tmp_path / "kpis.yaml").write_text(
        "kpis:\n"
        "  - {id: base, name: b, formula: x, inputs: {x: {unit: count}}, unit: count,\n"
        "     direction: higher_is_better, status: draft}\n"
        "  - id: top\n"
        "    name: t\n"
        "    status: certified\n"
        "    formula: base * 2\n"
        "    unit: count\n"
        "    direction: higher_is_better\n")
    proc = subprocess.run([sys.executable, "-m", "kpiforge", "validate", "kpis.yaml"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert "kpis.yaml:7:14: error[certified-uses-uncertified]: formula:" in proc.stderr


def test_a_run_computing_a_deprecated_kpi_warns_with_the_replacement(tmp_path):
    kpis = [kpi("visits_total", "visits"),
            kpi("visits_sum", "visits", "deprecated", replaced_by="visits_total")]
    for item in kpis:
        item["inputs"] = {"visits": {"unit": "count"}}
    (tmp_path / "team").mkdir()
    (tmp_path / "team" / "kpis.yaml").write_text(yaml.safe_dump({"kpis": kpis}))
    project = Project.from_dict({"definitions": ["team"], "sources": {"events": {
        "type": "records", "time": "day", "inputs": {"visits": {"agg": "sum"}}}}}, root=tmp_path)
    rows = [{"day": "2026-10-01", "visits": 10}]
    result = project.run(period="2026-10", kpis=["visits_sum"], data=rows)
    assert "KPI 'visits_sum' is deprecated: use 'visits_total' instead" in result.warnings
    quiet = project.run(period="2026-10", kpis=["visits_total"], data=rows)
    assert not any("deprecated" in w for w in quiet.warnings)


@pytest.mark.parametrize("status, drafts, alerted", [
    ("draft", None, False),
    ("draft", False, False),
    ("draft", True, True),
    ("certified", None, True),
    ("deprecated", None, True),
])
def test_drafts_do_not_alert_unless_the_project_opts_in(tmp_path, status, drafts, alerted):
    extra = {"replaced_by": "other"} if status == "deprecated" else {}
    engine = load(tmp_path, kpi("errors", status=status, thresholds={"warning": 5, "critical": 1},
                                **extra), kpi("other"))
    alerting = {} if drafts is None else {"drafts": drafts}
    report = dispatch(engine, [record("errors", "2026-10", 0.0, "critical", unit="count")],
                      project_dir=tmp_path, alerting=alerting, state_path=":memory:",
                      dry_run=True)
    assert bool(report.notifications) is alerted


def test_alerting_drafts_is_in_the_project_schema(tmp_path):
    (tmp_path / "kpiforge.yaml").write_text("alerting: {drafts: maybe}\n")
    proc = subprocess.run([sys.executable, "-m", "kpiforge", "validate", "--project",
                           "kpiforge.yaml"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 1 and "alerting.drafts" in proc.stderr


# -- threshold provenance ---------------------------------------------------------------------

SOURCE_CASES = [
    ({"kind": "guide", "text": "3 % is good"}, [{"kind": "guide", "text": "3 % is good"}]),
    ([{"kind": "guide", "levels": ["good"]}, {"kind": "contract", "levels": ["warning", "critical"],
                                              "url": "https://example.com/sla"}],
     [{"kind": "guide", "levels": ["good"]},
      {"kind": "contract", "levels": ["warning", "critical"], "url": "https://example.com/sla"}]),
]


@pytest.mark.parametrize("written, shown", SOURCE_CASES)
def test_a_threshold_source_is_kept_and_shown(tmp_path, written, shown):
    thresholds = {"good": 3, "warning": 2, "critical": 1, "source": written}
    engine = load(tmp_path, kpi("ctr", thresholds=thresholds))
    assert engine["ctr"].to_dict()["thresholds"]["source"] == shown
    proc = subprocess.run([sys.executable, "-m", "kpiforge", "show", "ctr", "-d", "kpis.yaml",
                           "--format", "json"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120)
    assert json.loads(proc.stdout)["thresholds"]["source"] == shown


@pytest.mark.parametrize("source, message", [
    ({"kind": "hearsay"}, "kind"),
    ({"kind": "guide", "url": "javascript:alert(1)"}, "url"),
    ({"kind": "guide", "levels": ["great"]}, "levels"),
    ({"text": "no kind"}, "kind"),
])
def test_a_bad_threshold_source_is_a_schema_error(tmp_path, source, message):
    with pytest.raises(DefinitionError) as exc:
        load(tmp_path, kpi("ctr", thresholds={"good": 3, "source": source}))
    assert any(d.code == "schema" and "thresholds.source" in (d.field + d.message)
               for d in exc.value.diagnostics), exc.value.diagnostics
    assert message in str(exc.value.diagnostics)


def test_every_bundled_threshold_says_where_it_comes_from():
    engine = Engine.load()
    with_levels = [d for d in engine.definitions.values() if d.thresholds.to_dict()]
    assert with_levels
    assert {d.id: d.thresholds.unsourced() for d in with_levels
            if d.thresholds.unsourced()} == {}
    kinds = {s.kind for d in with_levels for s in d.thresholds.sources}
    assert {"guide", "practitioner"} <= kinds


def test_the_catalog_shows_threshold_sources_in_every_format():
    from kpiforge._catalog import render

    engine = Engine.load()
    md = render(engine, "en", "md")
    assert "| Threshold source | the guide's figure (good): The guide: a 3 % CTR" in md
    html = render(engine, "fr", "html")
    assert "Origine des seuils" in html and "choix de praticien" in html
    data = json.loads(render(engine, "en", "json"))
    ctr = next(k for k in data["kpis"] if k["id"] == "ctr")
    assert [s["kind"] for s in ctr["threshold_sources"]] == ["guide", "benchmark"]
