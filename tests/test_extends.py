"""Controlled extension and no silent divergence: a KPI extends another one, changing only how
it is judged and described; two definitions of one id that are not an extension are refused
with what differs, field by field; an identical copy is pointed to ``extends``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from hypothesis import given, strategies as st

import kpiforge
from kpiforge import DefinitionError, Engine
from kpiforge._extends import COMPARED, differences

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "tests" / "fixtures" / "golden"

ADS_CTR = textwrap.dedent("""\
    id: ctr
    extends: {extends}
    owner: ads
    thresholds: {{good: 5, warning: 3, critical: 1}}
    labels: {{en: Click-through rate (display ads)}}
""")


def write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(text)
    return folder / name


def errors_of(*paths: str | Path) -> list[kpiforge.Diagnostic]:
    with pytest.raises(DefinitionError) as info:
        Engine.load(*paths)
    return list(info.value.errors)


def kpiforge_cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "kpiforge", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=120)


# -- an extension ------------------------------------------------------------------------------


@pytest.mark.parametrize("extends", ["ctr", "kpiforge:standard/ctr"])
def test_an_extension_of_the_standard_ctr_replaces_it_and_its_status_follows(tmp_path, extends):
    ads = write(tmp_path / "ads", "ctr.yaml", ADS_CTR.format(extends=extends))
    engine = Engine.load("kpiforge:standard", ads)
    standard = Engine.load()["ctr"]
    ctr = engine["ctr"]
    assert (ctr.formula, ctr.inputs, ctr.unit, ctr.direction, ctr.category) == (
        standard.formula, standard.inputs, standard.unit, standard.direction, standard.category)
    assert (ctr.thresholds.good, ctr.thresholds.warning, ctr.thresholds.critical) == (5, 3, 1)
    assert (ctr.owner, ctr.path) == ("ads", os.path.relpath(ads))
    # labels merge by language: the French label of the base stays
    assert ctr.labels == {**standard.labels, "en": "Click-through rate (display ads)"}
    # 4 % is good by the standard's 3 %, only ok by the ads team's 5 %
    inputs = {"clicks": 40, "impressions": 1000}
    assert Engine.load().evaluate(inputs, kpis=["ctr"])["ctr"].status.value == "good"
    assert engine.evaluate(inputs, kpis=["ctr"])["ctr"].status.value == "ok"
    extension = engine.catalog.extensions["ctr"]
    assert extension.to_dict() == {
        "base": "ctr", "base_path": "definitions/acquisition/ctr.yaml", "pack": "kpiforge:standard",
        "pack_version": kpiforge.__version__, "path": os.path.relpath(ads),
        "changed": ["owner", "thresholds", "labels"]}
    assert "ctr" not in Engine.load().catalog.extensions


def test_kpis_using_an_extended_kpi_use_the_extension(tmp_path):
    ads = write(tmp_path / "ads", "ctr.yaml", ADS_CTR.format(extends="ctr"))
    write(tmp_path / "ads", "double.yaml", "id: double_ctr\nname: Double\nformula: ctr * 2\n"
                                           "unit: percent\ndirection: higher_is_better\n")
    engine = Engine.load("kpiforge:standard", ads.parent)
    assert engine["double_ctr"].depends_on == ("ctr",)
    assert engine.evaluate({"clicks": 40, "impressions": 1000})["double_ctr"].value == 8.0


REFUSED = [
    ("formula: clicks / views * 100", "formula", 3, 1),
    ("inputs: {clicks: {unit: count}}", "inputs", 3, 1),
    ("unit: ratio", "unit", 3, 1),
    ("direction: lower_is_better", "direction", 3, 1),
    ("currency: USD", "currency", 3, 1),
    ("category: paid", "category", 3, 1),
    ("objectives: [sales]", "objectives", 3, 1),
    ("status: draft", "status", 3, 1),
    ("version: 2", "version", 3, 1),
    ("vanity: true", "vanity", 3, 1),
]


@pytest.mark.parametrize("line, field, at_line, at_column", REFUSED, ids=[r[1] for r in REFUSED])
def test_an_extension_cannot_change_how_the_kpi_is_computed(tmp_path, line, field, at_line, at_column):
    ads = write(tmp_path, "ctr.yaml", f"id: ctr\nextends: ctr\n{line}\nthresholds: {{good: 5}}\n")
    (error,) = errors_of("kpiforge:standard", ads)
    assert (error.code, error.line, error.column, error.field) == ("extension-field", at_line, at_column, field)
    assert error.message == f"{field} cannot change in an extension; define a new KPI id"


@pytest.mark.parametrize("text, code, field, message", [
    ("id: ctr\nextends: crt\nowner: ads\n", "unknown-name", "extends",
     "extends unknown KPI 'crt' (did you mean 'ctr'?)"),
    ("id: ctr\nextends: acme:ads/ctr\nowner: ads\n", "unknown-reference", "extends",
     "extends a KPI of pack 'acme:ads', which is not loaded; add it to the definitions"),
    ("id: ads_ctr\nextends: ctr\nowner: ads\n", "extension-id", "id",
     "an extension keeps the id of the KPI it extends ('ctr'); to add a KPI next to it, "
     "define a new KPI id without extends"),
])
def test_an_extension_that_cannot_apply_says_why(tmp_path, text, code, field, message):
    (error,) = errors_of("kpiforge:standard", write(tmp_path, "ext.yaml", text))
    assert (error.code, error.field, error.message) == (code, field, message)


def test_a_pack_qualified_base_needs_its_pack_loaded(tmp_path):
    (error,) = errors_of(write(tmp_path, "ctr.yaml", ADS_CTR.format(extends="kpiforge:standard/ctr")))
    assert (error.code, error.line, error.column) == ("unknown-reference", 2, 10)
    assert "pack 'kpiforge:standard', which is not loaded" in error.message


def test_a_pack_qualified_base_must_come_from_that_pack(tmp_path):
    team = tmp_path / "team"
    write(team, "leads.yaml", "id: leads_total\nname: Leads\nformula: leads\ninputs: {leads: {}}\nunit: count\n"
                              "direction: higher_is_better\n")
    write(team, "ext.yaml", "id: leads_total\nextends: kpiforge:standard/leads_total\nowner: x\n")
    (error,) = errors_of("kpiforge:standard", team)
    assert error.code == "extension-base"
    assert error.message == (f"extends 'leads_total' of pack 'kpiforge:standard', but the loaded "
                             f"'leads_total' is {os.path.relpath(team / 'leads.yaml')}:1")


def test_one_extension_per_kpi(tmp_path):
    write(tmp_path / "a", "ctr.yaml", ADS_CTR.format(extends="ctr"))
    write(tmp_path / "b", "ctr.yaml", ADS_CTR.format(extends="ctr"))
    (error,) = errors_of("kpiforge:standard", tmp_path / "a", tmp_path / "b")
    assert (error.code, error.path) == ("duplicate-id", os.path.relpath(tmp_path / "b" / "ctr.yaml"))
    assert error.message.startswith(f"KPI 'ctr' is already extended in {os.path.relpath(tmp_path / 'a' / 'ctr.yaml')}:1")


@pytest.mark.parametrize("text, problem", [
    ("id: ctr\nextends: Ctr\n", "does not match"),
    ("id: ctr\nextends: kpiforge:standard/\n", "does not match"),
    ("id: ctr\nname: CTR\nformula: clicks\nunit: count\n", "missing required field 'direction'"),
])
def test_the_schema_knows_extends_and_what_a_plain_kpi_needs(tmp_path, text, problem):
    errors = errors_of("kpiforge:standard", write(tmp_path, "ext.yaml", text))
    assert any(e.code == "schema" and problem in e.message for e in errors), errors


def test_an_extension_needs_neither_name_nor_formula_in_the_published_schema():
    import jsonschema

    schema = json.loads((ROOT / "schemas" / "kpi.schema.json").read_text())
    jsonschema.validate({"extends": "kpiforge:standard/ctr", "thresholds": {"good": 5}}, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"id": "ctr", "thresholds": {"good": 5}}, schema)


# -- duplicates --------------------------------------------------------------------------------


def test_duplicates_name_both_sides_and_what_differs_golden(tmp_path):
    import shutil

    import yaml

    folder = tmp_path / "duplicates"
    shutil.copytree(ROOT / "tests" / "fixtures" / "duplicates", folder)
    # copies of today's standard files, made here so that they never go stale
    shutil.copy(ROOT / "definitions" / "acquisition" / "cpc.yaml", folder / "cpc.yaml")
    ctr = yaml.safe_load((ROOT / "definitions" / "acquisition" / "ctr.yaml").read_text())
    retyped = {k: ctr[k] for k in ("id", "formula", "inputs", "unit", "direction", "thresholds")}
    (folder / "ctr.yaml").write_text(yaml.safe_dump({**retyped, "name": "CTR (our copy)", "owner": "ads"}))
    proc = kpiforge_cli("validate", "-d", "kpiforge:standard", "-d", "duplicates", cwd=tmp_path)
    assert proc.returncode == 1
    text = proc.stderr.replace(kpiforge.__version__, "<version>")  # the golden outlives releases
    path = GOLDEN / "validate_duplicates.txt"
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(text)
    assert text == path.read_text(), f"output differs from {path} (UPDATE_GOLDEN=1 rewrites it)"
    conflict, byte_copy, copy, total = text.splitlines()
    for word in ("'conversion_rate'", "owner sales", "owner marketing", "pack kpiforge:standard",
                 "definitions/conversion/conversion_rate.yaml:2", 'formula: "deals / leads * 100" here',
                 "inputs: deals, leads only here, conversions, site_visitors only there",
                 "thresholds.good: 20 here, 2.5 there", "`extends: conversion_rate`"):
        assert word in conflict, word
    assert "byte-for-byte copy of definitions/acquisition/cpc.yaml:2" in byte_copy
    assert "identical copy of the one in definitions/acquisition/ctr.yaml:2" in copy
    assert "`extends: ctr`" in copy and total == "3 errors, 0 warnings"


@pytest.mark.parametrize("change, expected", [
    ({}, []),
    ({"name": "Other", "owner": "sales", "tags": ["x"]}, []),  # words only: still the same KPI
    ({"formula": "a / c"}, ['formula: "a / c" here, "a / b" there']),
    ({"unit": {"currency": "EUR"}}, ['unit: {"currency": "EUR"} here, "ratio" there']),
    ({"thresholds": {"good": 2}}, ["thresholds.good: 2 here, 1 there"]),
    ({"target": 3}, ["target: 3 here, absent there"]),
    ({"inputs": {"a": {"unit": "count"}, "b": {"unit": "currency"}}},
     ['inputs.b.unit: "currency" here, "count" there']),
    ({"inputs": {"a": {"unit": "count", "description": "other words"}, "b": {"unit": "count"}}}, []),
])
def test_differences_are_field_by_field(change, expected):
    base = {"id": "k", "name": "K", "formula": "a / b", "unit": "ratio", "direction": "higher_is_better",
            "inputs": {"a": {"unit": "count"}, "b": {"unit": "count"}}, "thresholds": {"good": 1}}
    assert differences({**base, **change}, base) == expected


values = st.one_of(st.none(), st.integers(-3, 3), st.sampled_from(["a", "b"]))
kpis = st.dictionaries(st.sampled_from(COMPARED + ("name", "owner")),
                       st.one_of(values, st.dictionaries(st.sampled_from(["good", "x"]), values, max_size=2)),
                       max_size=5)


@given(kpis, kpis)
def test_differences_are_symmetric_and_empty_exactly_when_the_compared_fields_agree(a, b):
    forward, backward = differences(a, b), differences(b, a)
    assert len(forward) == len(backward)
    assert (forward == []) == all(a.get(k, "absent") == b.get(k, "absent") for k in COMPARED)


# -- show and test -------------------------------------------------------------------------------


def test_show_gives_the_provenance_as_text_and_json(tmp_path):
    write(tmp_path, "ctr.yaml", ADS_CTR.format(extends="kpiforge:standard/ctr"))
    proc = kpiforge_cli("show", "ctr", "-d", "kpiforge:standard", "-d", "ctr.yaml", "--format", "json",
                        cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["extends"] == {"base": "ctr", "base_path": "definitions/acquisition/ctr.yaml",
                               "pack": "kpiforge:standard", "pack_version": kpiforge.__version__,
                               "path": "ctr.yaml", "changed": ["owner", "thresholds", "labels"]}
    assert (data["thresholds"]["good"], data["owner"], data["path"]) == (5, "ads", "ctr.yaml")
    proc = kpiforge_cli("show", "ctr", "-d", "kpiforge:standard", "-d", "ctr.yaml", cwd=tmp_path)
    assert "pack: kpiforge:standard" in proc.stdout and "changed: owner, thresholds, labels" in proc.stdout
    plain = json.loads(kpiforge_cli("show", "ctr", "--format", "json", cwd=tmp_path).stdout)
    assert "extends" not in plain


def test_the_base_tests_still_check_values_and_the_extension_tests_its_thresholds(tmp_path):
    write(tmp_path / "ads", "ctr.yaml", ADS_CTR.format(extends="ctr"))
    write(tmp_path / "ads", "ctr.test.yaml", textwrap.dedent("""\
        tests:
          - name: 4 % is only ok for display ads
            inputs: {clicks: 40, impressions: 1000}
            expect:
              ctr: {value: 4.0, status: ok}
    """))
    proc = kpiforge_cli("test", "-d", "kpiforge:standard", "-d", "ads", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "PASS ads/ctr.test.yaml: 4 % is only ok for display ads" in proc.stdout
    assert "PASS definitions/acquisition/ctr.test.yaml" in proc.stdout
    # next to the base, its statuses are not checked any more, its values still are
    base_test = (ROOT / "definitions" / "acquisition" / "ctr.test.yaml").read_text()
    write(tmp_path / "base", "ctr.yaml", (ROOT / "definitions" / "acquisition" / "ctr.yaml").read_text())
    write(tmp_path / "base", "ctr.test.yaml", base_test.replace("ctr: {value: 3.0,", "ctr: {value: 3.5,", 1))
    proc = kpiforge_cli("test", "-d", "base", "-d", "ads", cwd=tmp_path)
    assert proc.returncode == 1
    failed = [line for line in proc.stdout.splitlines() if line.startswith("    ctr.")]
    assert failed == ["    ctr.value: expected 3.5, got 3.0"], proc.stdout


@pytest.mark.parametrize("fmt, lang, line", [
    ("md", "en", f"| Extends | ctr of kpiforge:standard {kpiforge.__version__}; changed here: owner, thresholds, labels |"),
    ("md", "fr", f"| Étend | ctr de kpiforge:standard {kpiforge.__version__} ; modifié ici : owner, thresholds, labels |"),
    ("html", "en", f"<dt>Extends</dt><dd>ctr of kpiforge:standard {kpiforge.__version__}; changed here: owner, thresholds, labels</dd>"),
])
def test_the_generated_catalog_shows_the_provenance(tmp_path, fmt, lang, line):
    from kpiforge._catalog import catalog_data, render

    ads = write(tmp_path, "ctr.yaml", ADS_CTR.format(extends="kpiforge:standard/ctr"))
    engine = Engine.load("kpiforge:standard", ads)
    assert line in render(engine, lang, fmt).splitlines()
    kpis = {k["id"]: k for k in catalog_data(engine)["kpis"]}
    assert kpis["ctr"]["extends"] == engine.catalog.extensions["ctr"].to_dict()
    assert kpis["cpc"]["extends"] is None and "Extends" not in render(Engine.load(), "en", fmt)


def test_two_departments_in_one_project(tmp_path):
    """The acceptance case: ads extend ctr in a `kpis:` list (no id needed), sales bring their
    own conversion_rate; the project is refused for the conflict only."""
    write(tmp_path / "ads", "kpis.yaml", textwrap.dedent("""\
        kpis:
          - extends: ctr
            thresholds: {good: 5, warning: 3, critical: 1}
          - id: ad_clicks
            name: Ad clicks
            formula: clicks
            inputs: {clicks: {unit: count}}
            unit: count
            direction: higher_is_better
    """))
    (tmp_path / "sales").mkdir()
    (tmp_path / "sales" / "conversion_rate.yaml").write_text(  # the sales team's own
        (ROOT / "tests" / "fixtures" / "duplicates" / "conversion_rate.yaml").read_text())
    project = tmp_path / "kpiforge.yaml"
    project.write_text("definitions: [kpiforge:standard, ads/]\n")
    engine = kpiforge.Project.load(project).engine
    assert engine["ctr"].thresholds.good == 5 and engine["ctr"].path == os.path.relpath(tmp_path / "ads" / "kpis.yaml")
    assert engine.catalog.extensions["ctr"].changed == ("thresholds",)
    project.write_text("definitions: [kpiforge:standard, ads/, sales/]\n")
    with pytest.raises(DefinitionError) as info:
        kpiforge.Project.load(project).engine
    (error,) = info.value.errors
    assert error.code == "duplicate-id" and "inputs: deals, leads only here" in error.message


@pytest.mark.parametrize("change", [
    {"formula": "a/b"},
    {"formula": "(a) / (b)"},
    {"thresholds": {"good": 1.0}},
    {"inputs": {"b": {"unit": "count"}, "a": {"unit": "count", "descriptions": {"en": "A."}}}},
])
def test_a_copy_written_differently_is_still_the_same_kpi(change):
    base = {"id": "k", "formula": "a / b", "unit": "ratio", "direction": "higher_is_better",
            "inputs": {"a": {"unit": "count"}, "b": {"unit": "count"}}, "thresholds": {"good": 1}}
    assert differences({**base, **change}, base) == []
