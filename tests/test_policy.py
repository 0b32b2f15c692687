"""A project's ``policy:`` checked by ``validate --project``; objective sizes; ``--strict``;
``--format github`` and ``--format sarif`` (validated against the SARIF 2.1.0 schema)."""

import hashlib
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
SARIF_SCHEMA = Path(__file__).parent / "fixtures" / "sarif" / "sarif-schema-2.1.0.json"
SARIF_SCHEMA_SHA256 = "c3b4bb2d6093897483348925aaa73af03b3e3f4bd4ca38cef26dcb4212a2682e"


def kpiforge(*args, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", "kpiforge", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=120)


def team_kpi(kpi_id="signups", **extra) -> dict:
    data = {"id": kpi_id, "name": "Sign-ups", "owner": "growth", "status": "certified",
            "labels": {"en": "Sign-ups", "fr": "Inscriptions"},
            "description": "New accounts.", "descriptions": {"en": "New accounts.",
                                                              "fr": "Nouveaux comptes."},
            "formula": "n", "inputs": {"n": {"unit": "count"}}, "unit": "count",
            "direction": "higher_is_better",
            "thresholds": {"good": 10, "source": {"kind": "contract", "text": "the SLA"}}}
    data.update(extra)
    return {k: v for k, v in data.items() if v is not None}


def project(tmp_path: Path, policy: dict, *kpis: dict, tests: int = 1) -> Path:
    team = tmp_path / "team"
    team.mkdir(exist_ok=True)
    (team / "kpis.yaml").write_text(yaml.safe_dump({"kpis": list(kpis)}, allow_unicode=True))
    cases = [{"name": f"case {i}", "inputs": {"n": 12},
              "expect": {k["id"]: {"value": 12}}} for k in kpis for i in range(tests)]
    if cases:
        (team / "kpis.test.yaml").write_text(yaml.safe_dump({"tests": cases}))
    (tmp_path / "kpiforge.yaml").write_text(yaml.safe_dump({"definitions": ["team"],
                                                            "policy": policy}))
    return tmp_path


STRICT_POLICY = {"required": ["owner", "labels", "descriptions"], "languages": ["en", "fr"],
                 "min_tests": 1, "statuses": ["certified"], "threshold_sources": True}

# (policy, the KPI as changed, test cases per KPI, expected diagnostic codes)
CASES = {
    "all satisfied": (STRICT_POLICY, {}, 1, []),
    "no owner": ({"required": ["owner"]}, {"owner": None}, 1, ["policy-owner"]),
    "no French label": ({"required": ["labels"], "languages": ["en", "fr"]},
                        {"labels": {"en": "Sign-ups"}}, 1, ["policy-labels"]),
    "no description": ({"required": ["descriptions"]},
                       {"description": None, "descriptions": None}, 1, ["policy-descriptions"]),
    "too few tests": ({"min_tests": 2}, {}, 1, ["policy-tests"]),
    "no tests": ({"min_tests": 1}, {}, 0, ["policy-tests"]),
    "draft not allowed": ({"statuses": ["certified"]}, {"status": "draft"}, 1, ["policy-status"]),
    "threshold without source": ({"threshold_sources": True},
                                 {"thresholds": {"good": 10, "warning": 5}}, 1,
                                 ["policy-threshold-source"]),
    "source for one level only": ({"threshold_sources": True},
                                  {"thresholds": {"good": 10, "warning": 5, "source": {
                                      "kind": "practitioner", "levels": ["good"]}}}, 1,
                                  ["policy-threshold-source"]),
    "rules not asked are not checked": ({}, {"owner": None, "status": "draft"}, 0, []),
}


@pytest.mark.parametrize("name", list(CASES))
def test_policy_rules(tmp_path, name):
    policy, change, tests, codes = CASES[name]
    root = project(tmp_path, policy, team_kpi(**change), tests=tests)
    proc = kpiforge("validate", "--project", "kpiforge.yaml", "--format", "json", cwd=root)
    found = [d["code"] for d in json.loads(proc.stdout)["diagnostics"]
             if d["code"].startswith("policy-")]
    assert found == codes, proc.stdout
    assert proc.returncode == (1 if codes else 0)


def test_a_policy_error_is_located_at_the_kpi(tmp_path):
    root = project(tmp_path, {"required": ["owner"]}, team_kpi(owner=None))
    proc = kpiforge("validate", "--project", "kpiforge.yaml", cwd=root)
    assert proc.returncode == 1
    assert ("team/kpis.yaml:2:3: error[policy-owner]: owner: KPI 'signups': no owner; "
            "the policy requires one") in proc.stderr


def test_the_bundled_catalog_meets_the_strictest_policy(tmp_path):
    (tmp_path / "kpiforge.yaml").write_text(yaml.safe_dump(
        {"definitions": ["kpiforge:standard"], "policy": {
            **STRICT_POLICY, "objective_size": {"min": 5, "max": 9},
            "vanity_in_objectives": "error"}}))
    proc = kpiforge("validate", "--project", "kpiforge.yaml", "--strict", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().endswith("KPIs valid, 0 warnings"), proc.stdout


def test_an_unknown_policy_rule_is_a_schema_error(tmp_path):
    root = project(tmp_path, {"min_test": 1}, team_kpi())
    proc = kpiforge("validate", "--project", "kpiforge.yaml", cwd=root)
    assert proc.returncode == 1 and "policy" in proc.stderr and "min_test" in proc.stderr


OBJECTIVE_KPIS = ["a", "b", "c", "d", "e", "f", "g", "h"]


@pytest.mark.parametrize("size, code", [(4, "too-few-kpis"), (5, None), (7, None),
                                        (8, "too-many-kpis")])
def test_objective_sizes_warn_in_a_plain_validate(tmp_path, size, code):
    kpis = [team_kpi(k, vanity=k == "a") for k in OBJECTIVE_KPIS[:size]]
    (tmp_path / "kpis.yaml").write_text(yaml.safe_dump({"kpis": kpis}))
    (tmp_path / "objectives.yaml").write_text(yaml.safe_dump({"objectives": [
        {"id": "grow", "labels": {"en": "Grow"}, "kpis": OBJECTIVE_KPIS[:size]}]}))
    proc = kpiforge("validate", str(tmp_path), "--format", "json")
    codes = [d["code"] for d in json.loads(proc.stdout)["diagnostics"]]
    assert codes == ([code] if code else []) and proc.returncode == 0
    strict = kpiforge("validate", str(tmp_path), "--strict")
    assert strict.returncode == (1 if code else 0)


@pytest.mark.parametrize("setting, severity", [(None, "warning"), ("error", "error"),
                                               ("allow", None)])
def test_vanity_kpis_in_an_objective_are_flagged(tmp_path, setting, severity):
    kpis = [team_kpi(k, vanity=k == "a") for k in OBJECTIVE_KPIS[:5]]
    policy = {} if setting is None else {"vanity_in_objectives": setting}
    root = project(tmp_path, {"min_tests": 0, **policy}, *kpis)
    (root / "team" / "objectives.yaml").write_text(yaml.safe_dump({"objectives": [
        {"id": "grow", "labels": {"en": "Grow"}, "kpis": OBJECTIVE_KPIS[:5]}]}))
    proc = kpiforge("validate", "--project", "kpiforge.yaml", "--format", "json", cwd=root)
    found = [(d["severity"], d["message"]) for d in json.loads(proc.stdout)["diagnostics"]
             if d["code"] == "policy-vanity-in-objective"]
    if severity is None:
        assert found == []
    else:
        assert found == [(severity, "objective 'grow' is served by vanity KPI 'a': it shows "
                                    "activity, not business impact")]


# -- CI formats --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def sarif_validator():
    raw = SARIF_SCHEMA.read_bytes()
    assert hashlib.sha256(raw).hexdigest() == SARIF_SCHEMA_SHA256  # the file as vendored
    schema = json.loads(raw)
    jsonschema.Draft4Validator.check_schema(schema)
    return jsonschema.Draft4Validator(schema)


def failing_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "kpis"
    folder.mkdir()
    (folder / "kpis.yaml").write_text(textwrap.dedent("""\
        kpis:
          - id: signups
            name: Sign-ups
            formula: n + m
            inputs: {n: {unit: count}, m: {unit: count}, unused: {unit: count}}
            unit: count
            direction: higher_is_better
        """))
    (folder / "kpis.test.yaml").write_text(yaml.safe_dump({"tests": [
        {"name": "wrong on purpose", "inputs": {"n": 1, "m": 1}, "expect": {"signups": {"value": 3}}}]}))
    return folder


@pytest.mark.parametrize("command", ["validate", "test", "diff"])
def test_sarif_output_is_valid_sarif_2_1_0(tmp_path, sarif_validator, command):
    folder = failing_folder(tmp_path)
    if command == "diff":
        old = tmp_path / "old"
        old.mkdir()
        (old / "kpis.yaml").write_text((folder / "kpis.yaml").read_text().replace("n + m", "n"))
        args = ["diff", "old", "kpis"]
    else:
        args = [command, "kpis"]
    proc = kpiforge(*args, "--format", "sarif", cwd=tmp_path)
    log = json.loads(proc.stdout)
    errors = sorted(sarif_validator.iter_errors(log), key=str)
    assert not errors, [e.message for e in errors]
    (run,) = log["runs"]
    assert run["results"], log
    result = run["results"][0]
    assert result["level"] in ("error", "warning", "note")
    region = result["locations"][0]["physicalLocation"]["region"]
    assert region["startLine"] >= 1
    expected = {"validate": ("unused-input", 0), "test": ("test-failed", 1),
                "diff": ("breaking-unversioned", 1)}[command]
    assert (result["ruleId"], proc.returncode) == expected


def test_github_annotations_for_validate_and_test(tmp_path):
    failing_folder(tmp_path)
    validate = kpiforge("validate", "kpis", "--format", "github", cwd=tmp_path)
    (line,) = validate.stdout.splitlines()
    assert line.startswith("::warning file=kpis/kpis.yaml,line=5,col=")
    assert line.endswith("::kpis[0].inputs.unused: input 'unused' is declared but not used by "
                         "the formula")
    test = kpiforge("test", "kpis", "--format", "github", cwd=tmp_path)
    assert test.returncode == 1
    assert any(line.startswith("::error file=kpis/kpis.test.yaml,line=") and "wrong on purpose" in line
               for line in test.stdout.splitlines())


def test_github_annotation_messages_cannot_inject_a_command():
    from kpiforge._annotations import github_lines
    from kpiforge.errors import Diagnostic

    (line,) = github_lines([Diagnostic("a,b:c.yaml", 2, 3, "x", "one\n::error::two", "error")])
    assert line == "::error file=a%2Cb%3Ac.yaml,line=2,col=3,title=kpiforge x::one%0A::error::two"


@pytest.mark.parametrize("strict, code", [(False, 0), (True, 1)])
def test_test_with_no_cases_fails_only_under_strict(tmp_path, strict, code):
    folder = tmp_path / "kpis"
    folder.mkdir()
    (folder / "kpis.yaml").write_text(yaml.safe_dump({"kpis": [team_kpi()]}))
    proc = kpiforge("test", "kpis", *(["--strict"] if strict else []), cwd=tmp_path)
    assert proc.returncode == code, proc.stdout + proc.stderr
    assert "no test files" in proc.stderr


def test_sarif_uris_are_encoded_and_a_whole_file_finding_has_no_region(sarif_validator):
    from kpiforge._annotations import sarif_log
    from kpiforge.errors import Diagnostic

    log = sarif_log([Diagnostic("my kpis/a#b.yaml", 3, 0, "x", "m", "warning"),
                     Diagnostic("kpis", 0, 0, "not-found", "no such file", "error")],
                    command="validate")
    assert not list(sarif_validator.iter_errors(log))
    first, second = log["runs"][0]["results"]
    assert first["locations"][0]["physicalLocation"] == {
        "artifactLocation": {"uri": "my%20kpis/a%23b.yaml"},
        "region": {"startLine": 3, "startColumn": 1}}
    assert "region" not in second["locations"][0]["physicalLocation"]
    assert [r["id"] for r in log["runs"][0]["tool"]["driver"]["rules"]] == ["not-found", "x"]
    assert (first["ruleIndex"], second["ruleIndex"]) == (1, 0)


def test_the_pre_commit_hooks_run_real_commands(tmp_path):
    # running pre-commit itself needs the pre-commit package (not a dependency yet): here, each
    # hook's entry is run as pre-commit would run it, on a folder with a failing definition
    hooks = {h["id"]: h for h in yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())}
    assert set(hooks) == {"kpiforge-validate", "kpiforge-test"}
    failing_folder(tmp_path)
    for hook_id, code in (("kpiforge-validate", 1), ("kpiforge-test", 1)):
        hook = hooks[hook_id]
        assert hook["language"] == "python" and hook["pass_filenames"] is False
        program, *args = hook["entry"].split()
        assert program == "kpiforge"
        proc = kpiforge(*args, "kpis", cwd=tmp_path)
        assert proc.returncode == code, (hook_id, proc.stdout, proc.stderr)
