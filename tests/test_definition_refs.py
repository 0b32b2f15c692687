"""`kpiforge:standard` and a team folder together, everywhere definitions are given; team KPIs
joining bundled objectives; one language being enough for a team KPI."""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from kpiforge import DefinitionError, Engine, ProjectError
from kpiforge._defpaths import bundled_definitions_dir, resolve_definition_path
from kpiforge._project import load_project

# The README's own example: a team KPI naming a bundled objective, in one language only.
TEAM_KPI = textwrap.dedent("""\
    id: team_leads
    name: Team leads
    labels: {en: Team leads}
    objectives: [lead_generation]
    formula: leads
    inputs: {leads: {}}
    unit: count
    direction: higher_is_better
    thresholds: {good: 10}
""")
TEAM_TEST = textwrap.dedent("""\
    tests:
      - name: ten leads are good
        inputs: {leads: 10}
        expect:
          team_leads: {value: 10, status: good}
""")


@pytest.fixture
def team(tmp_path: Path) -> Path:
    folder = tmp_path / "team"
    folder.mkdir()
    (folder / "team_leads.yaml").write_text(TEAM_KPI)
    (folder / "team_leads.test.yaml").write_text(TEAM_TEST)
    return tmp_path


def kpiforge(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "kpiforge", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=120)


BOTH = ("-d", "kpiforge:standard", "-d", "team/")


@pytest.mark.parametrize("args, check", [
    (("validate", "kpiforge:standard", "team/"), lambda out: "KPIs valid" in out),
    (("list", *BOTH, "--format", "json"),
     lambda out: {"team_leads", "ctr"} <= {k["id"] for k in json.loads(out)["kpis"]}),
    (("show", "team_leads", *BOTH, "--format", "json"),
     lambda out: json.loads(out)["objectives"] == ["lead_generation"]),
    (("eval", *BOTH, "--set", "leads=12", "--set", "clicks=30", "--set", "impressions=1000",
      "--kpi", "team_leads", "--kpi", "ctr", "--format", "json"),
     lambda out: {r["kpi"]: r["value"] for r in json.loads(out)["results"]} == {"team_leads": 12.0, "ctr": 3.0}),
    (("catalog", *BOTH, "--format", "json"),
     lambda out: "team_leads" in next(o["kpis"] for o in json.loads(out)["objectives"]
                                      if o["id"] == "lead_generation")),
    (("test", *BOTH),
     lambda out: "team_leads.test.yaml: ten leads are good" in out
     and "definitions/acquisition/ctr.test.yaml" in out and out.endswith(" passed, 0 failed\n")),
], ids=["validate", "list", "show", "eval", "catalog", "test"])
def test_every_command_takes_the_standard_catalog_and_a_team_folder(team, args, check):
    proc = kpiforge(*args, cwd=team)
    assert proc.returncode == 0, proc.stderr
    assert "error" not in proc.stderr and "Traceback" not in proc.stderr
    assert check(proc.stdout), proc.stdout[-2000:]


def test_engine_load_takes_the_standard_catalog_and_a_team_folder(team, monkeypatch):
    monkeypatch.chdir(team)
    engine = Engine.load("kpiforge:standard", "team/")
    assert {"team_leads", "ctr", "ltv_cac_ratio"} <= set(engine.definitions)
    assert engine["ctr"].path == "definitions/acquisition/ctr.yaml"  # not ../../site-packages/...
    assert engine.warnings == ()


@pytest.mark.parametrize("reference", ["kpiforge:standrd", "acme:kpis"])
def test_an_unknown_reference_is_an_error_listing_the_known_ones(team, reference):
    with pytest.raises(DefinitionError) as info:
        Engine.load(reference)
    (error,) = info.value.errors
    assert error.code == "unknown-reference"
    assert f"'{reference}'" in error.message and "installed packs: kpiforge:standard" in error.message
    proc = kpiforge("list", "-d", reference, "-d", "team/", cwd=team)
    assert proc.returncode == 1 and "error[unknown-reference]" in proc.stderr
    assert "installed packs: kpiforge:standard" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.parametrize("item", [r"C:\kpis", "C:kpis", "team/", "./a:b"])
def test_a_windows_drive_or_a_relative_path_is_no_reference(item):
    assert resolve_definition_path(item, Path("/p")) == Path("/p") / item


def test_the_project_resolves_references_the_same_way(team):
    (team / "data.csv").write_text("date,leads\n2026-01-03,12\n")
    project = team / "kpiforge.yaml"
    project.write_text(textwrap.dedent("""\
        definitions: [kpiforge:standard, team/]
        sources:
          crm: {type: csv, path: data.csv, time: date, inputs: {leads: {agg: sum}}}
    """))
    loaded = load_project(project)
    assert loaded.definitions == (bundled_definitions_dir(), team / "team")
    assert {"team_leads", "ctr"} <= set(loaded.engine.definitions)
    project.write_text(project.read_text().replace("[kpiforge:standard,", "[kpiforge:standard, kpiforge:nope,"))
    with pytest.raises(ProjectError) as info:
        load_project(project)
    (error,) = info.value.errors
    assert (error.code, error.line, error.field) == ("unknown-reference", 1, "definitions[1]")
    assert "installed packs: kpiforge:standard" in error.message


# -- objectives --------------------------------------------------------------------------------


def test_a_team_kpi_joins_a_bundled_objective_from_its_own_side(team):
    engine = Engine.load("kpiforge:standard", team / "team")
    objective = engine.objectives["lead_generation"]
    assert objective.kpis[-1] == "team_leads" and "ctr" in objective.kpis
    assert engine["team_leads"].objectives == ("lead_generation",)
    assert all(not d.path.startswith("definitions/") for d in engine.warnings)
    # alone, with no objectives file, the same KPI is valid too
    assert "team_leads" in Engine.load(team / "team").definitions


def test_a_team_objective_gathers_bundled_kpis_from_its_own_side(team):
    (team / "team" / "objectives.yaml").write_text(textwrap.dedent("""\
        objectives:
          - id: team_growth
            labels: {en: Team growth}
            kpis: [ctr, team_leads]
    """))
    engine = Engine.load("kpiforge:standard", team / "team")
    assert engine.objectives["team_growth"].kpis == ("ctr", "team_leads")
    assert engine["ctr"].objectives[-1] == "team_growth"


def test_an_unknown_objective_is_located_at_its_item(team):
    kpi = team / "team" / "team_leads.yaml"
    kpi.write_text(TEAM_KPI.replace("[lead_generation]", "[lead_generation, lead_generaton]"))
    with pytest.raises(DefinitionError) as info:
        Engine.load("kpiforge:standard", kpi)
    (error,) = info.value.errors
    assert error.code == "unknown-objective" and error.path.endswith("team_leads.yaml")
    assert (error.line, error.column, error.field) == (4, 31, "objectives[1]")
    assert "did you mean 'lead_generation'" in error.message


# -- languages ---------------------------------------------------------------------------------


@pytest.mark.parametrize("labels, ok", [
    ("{en: Team leads}", True),
    ("{fr: Leads de l'équipe}", True),
    ("{de-CH: Team-Leads}", True),
    ("{}", False),
])
def test_a_team_kpi_needs_one_language(team, labels, ok):
    kpi = team / "team" / "team_leads.yaml"
    kpi.write_text(TEAM_KPI.replace("{en: Team leads}", labels)
                   + "descriptions: " + labels.replace("Team", "Leads").replace("leads", "of the team") + "\n")
    if ok:
        assert Engine.load(kpi)["team_leads"].label("en")
        return
    with pytest.raises(DefinitionError) as info:
        Engine.load(kpi)
    assert {(d.field, d.message) for d in info.value.errors} == {
        ("labels", "must not be empty"), ("descriptions", "must not be empty")}


def test_the_bundled_catalog_keeps_english_and_french_everywhere():
    engine = Engine.load()
    for definition in engine.definitions.values():
        assert set(definition.labels) == {"en", "fr"}, definition.id
        assert set(definition.descriptions) == {"en", "fr"}, definition.id
    for objective in engine.objectives.values():
        assert set(objective.labels) == {"en", "fr"}, objective.id
        assert set(objective.descriptions) == {"en", "fr"}, objective.id
