"""``kpiforge diff``: every kind of change classified, verdicts, git sides, output formats."""

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from kpiforge import Engine
from kpiforge._diff import compare

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = Path(__file__).parent / "fixtures" / "golden"

BASE = {
    "id": "ctr", "name": "Click-through rate", "category": "ads", "owner": "marketing", "status": "certified",
    "version": 1, "tags": ["ads"], "labels": {"en": "CTR", "fr": "Taux de clics"},
    "description": "Clicks per impression.",
    "formula": "clicks / impressions * 100",
    "inputs": {"clicks": {"unit": "count", "description": "Clicks.", "range": [0, None]},
               "impressions": {"unit": "count"}},
    "unit": "percent", "direction": "higher_is_better",
    "thresholds": {"good": 3, "warning": 2, "critical": 1},
}


def kpiforge(*args, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", "kpiforge", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=120)


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(text)
    assert text == path.read_text(), f"output differs from {path} (UPDATE_GOLDEN=1 rewrites it)"


def write(folder: Path, *kpis: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for kpi in kpis:
        (folder / f"{kpi['id']}.yaml").write_text(yaml.safe_dump(kpi, sort_keys=False))
    return folder


def changed(**edits) -> dict:
    kpi = copy.deepcopy(BASE)
    for dotted, value in edits.items():
        *parents, last = dotted.split("__")
        node = kpi
        for part in parents:
            node = node[part]
        if value is None:
            del node[last]
        else:
            node[last] = value
    return kpi


def diff_of(tmp_path: Path, old: list[dict], new: list[dict]):
    a = Engine.load(write(tmp_path / "old", *old)).definitions
    b = Engine.load(write(tmp_path / "new", *new)).definitions
    return compare(a, b)


# (edit, field reported, its kind)
CASES = [
    ({"formula": "clicks / (impressions + clicks) * 100"}, "formula", "breaking"),
    ({"unit": "ratio", "formula": "clicks / impressions", "thresholds": {"good": 0.03}},
     "unit", "breaking"),
    ({"direction": "lower_is_better", "thresholds": {"good": 1, "warning": 2, "critical": 3}},
     "direction", "breaking"),
    ({"inputs__impressions__unit": "currency"}, "inputs.impressions.unit", "breaking"),
    ({"inputs__clicks__agg": "count"}, "inputs.clicks.agg", "breaking"),
    ({"fields": {"cost": {"unit": "currency"}}, "inputs__clicks__where": "cost > 0",
      "inputs__clicks__agg": "count"}, "inputs.clicks.where", "breaking"),
    ({"inputs__clicks__range": [0, 10 ** 9]}, "inputs.clicks.range", "behavioural"),
    ({"thresholds__good": 4}, "thresholds.good", "behavioural"),
    ({"thresholds__critical": None}, "thresholds.critical", "behavioural"),
    ({"status": "draft"}, "status", "behavioural"),
    ({"alerts": {"for": 2}}, "alerts", "behavioural"),
    ({"labels__fr": "CTR"}, "labels.fr", "cosmetic"),
    ({"description": "Clicks for each impression."}, "description", "cosmetic"),
    ({"inputs__clicks__description": "Ad clicks."}, "inputs.clicks.description", "cosmetic"),
    ({"owner": "ads"}, "owner", "cosmetic"),
    ({"tags": ["ads", "search"]}, "tags", "cosmetic"),
    ({"formula": "clicks/impressions*100"}, "formula", "cosmetic"),
    ({"thresholds__source": {"kind": "guide"}}, "thresholds.source", "cosmetic"),
]


@pytest.mark.parametrize("edit, field, kind", CASES, ids=[c[1] + "-" + c[2] for c in CASES])
def test_each_change_is_classified(tmp_path, edit, field, kind):
    (found,) = diff_of(tmp_path, [BASE], [changed(**edit)])
    assert found.state == "changed"
    by_field = {c.dotted: c.kind for c in found.changes}
    assert by_field.get(field) == kind, by_field
    assert found.diagnostic.severity == ("error" if kind == "breaking" else "note")


def test_inputs_added_or_removed_are_breaking(tmp_path):
    more = changed(formula="(clicks + views) / impressions * 100")
    more["inputs"]["views"] = {"unit": "count"}
    (found,) = diff_of(tmp_path, [BASE], [more])
    assert {c.dotted: c.kind for c in found.changes} == {
        "formula": "breaking", "inputs.views": "breaking"}
    (back,) = diff_of(tmp_path / "b", [more], [BASE])
    assert back.changes[-1].dotted == "inputs.views" and back.changes[-1].new is None


@pytest.mark.parametrize("old_version, new_version, severity, code", [
    (1, 1, "error", "breaking-unversioned"),
    (1, 2, "warning", "breaking"),
    (3, 2, "error", "version-decreased"),
])
def test_breaking_change_needs_a_version_increase(tmp_path, old_version, new_version, severity,
                                                  code):
    old = changed(version=old_version)
    new = changed(version=new_version, formula="clicks / (impressions + clicks) * 100")
    (found,) = diff_of(tmp_path, [old], [new])
    assert (found.diagnostic.severity, found.diagnostic.code) == (severity, code)


def test_nothing_changed_when_only_the_layout_of_the_file_differs(tmp_path):
    a = write(tmp_path / "a", BASE)
    b = tmp_path / "b"
    b.mkdir()
    # a list file instead of one KPI per file, keys in another order, flow style
    (b / "all.yaml").write_text(yaml.safe_dump({"kpis": [dict(reversed(list(BASE.items())))]},
                                               default_flow_style=True))
    assert compare(Engine.load(a).definitions, Engine.load(b).definitions) == []


@pytest.mark.parametrize("status, severity", [("certified", "error"), ("deprecated", "warning")])
def test_a_removed_kpi_must_have_been_deprecated_first(tmp_path, status, severity):
    other = changed(id="cpm", formula="impressions / clicks", unit="ratio", thresholds=None)
    old = changed(status=status)
    if status == "deprecated":
        old["replaced_by"] = "cpm"
    (found,) = diff_of(tmp_path, [old, other], [other])
    assert (found.state, found.kind, found.diagnostic.severity) == ("removed", "breaking", severity)


def test_a_rename_is_recognised_and_breaking(tmp_path):
    (found,) = diff_of(tmp_path, [BASE], [changed(id="click_through_rate")])
    assert (found.state, found.renamed_to, found.diagnostic.severity) == (
        "renamed", "click_through_rate", "error")
    assert "renamed to 'click_through_rate'" in found.diagnostic.message


def test_an_added_kpi_is_a_note(tmp_path):
    other = changed(id="cpm", formula="impressions / clicks", unit="ratio", thresholds=None)
    (found,) = diff_of(tmp_path, [BASE], [BASE, other])
    assert (found.state, found.kind, found.diagnostic.severity) == ("added", "added", "note")


def test_the_verdict_points_at_the_changed_line(tmp_path):
    write(tmp_path / "old", BASE)
    write(tmp_path / "new", changed(thresholds={"good": 3, "warning": 2, "critical": 0.5},
                                    formula="clicks / (impressions + clicks) * 100"))
    proc = kpiforge("diff", "old", "new", "--format", "json", cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    (kpi,) = json.loads(proc.stdout)["kpis"]
    lines = (tmp_path / "new" / "ctr.yaml").read_text().splitlines()
    assert lines[kpi["line"] - 1].startswith("formula:")
    assert kpi["path"] == os.path.join("new", "ctr.yaml")


def git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
                   cwd=cwd, check=True, capture_output=True)


@pytest.fixture
def repo(tmp_path):
    write(tmp_path / "kpis", BASE)
    git(tmp_path, "init", "-q")
    git(tmp_path, "add", "-A")
    git(tmp_path, "commit", "-qm", "ctr")
    return tmp_path


@pytest.mark.parametrize("version, code", [(1, 1), (2, 0)])
def test_git_revision_formula_change_fails_without_a_version_bump(repo, version, code):
    write(repo / "kpis", changed(formula="clicks / (impressions + clicks) * 100", version=version))
    git(repo, "commit", "-qam", "per one")
    proc = kpiforge("diff", "git:HEAD~1", ".", cwd=repo)
    assert proc.returncode == code, proc.stdout + proc.stderr
    assert "breaking" in proc.stdout and "formula" in proc.stdout
    # the old side's files are shown where they are in the repository, not in a temp folder
    assert "kpiforge-diff-" not in proc.stdout


def test_git_text_output_golden(repo):
    write(repo / "kpis", changed(formula="clicks / (impressions + clicks) * 100", owner="ads",
                                 thresholds={"good": 4}))
    proc = kpiforge("diff", "git:HEAD:kpis", "kpis", cwd=repo)
    assert proc.returncode == 1
    check_golden("diff_text.txt", proc.stdout)


@pytest.mark.parametrize("spec, message", [
    ("git:no-such-rev", "git:no-such-rev: unknown revision 'no-such-rev'"),
    ("git:HEAD:missing", "git:HEAD:missing: cannot read missing at HEAD"),
    ("git:", "expected git:REV or git:REV:PATH"),
    ("kpiforge:nope", "unknown definitions pack 'kpiforge:nope'"),
    ("nowhere", "nowhere: no such file or directory"),
])
def test_bad_sides_are_clear_errors(repo, spec, message):
    proc = kpiforge("diff", spec, "kpis", cwd=repo)
    assert proc.returncode == 1
    assert message in proc.stderr and "Traceback" not in proc.stderr


def test_git_outside_a_repository_is_a_clear_error(tmp_path):
    write(tmp_path / "kpis", BASE)
    proc = kpiforge("diff", "git:HEAD", "kpis", cwd=tmp_path)
    assert proc.returncode == 1 and "not inside a git repository" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_project_folder_stands_for_its_definitions(repo):
    (repo / "kpiforge.yaml").write_text("definitions: [kpis]\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "project")
    write(repo / "kpis", changed(owner="ads"))
    proc = kpiforge("diff", "git:HEAD", ".", "--format", "json", cwd=repo)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["summary"]["cosmetic"] == 1


@pytest.mark.parametrize("strict, code", [(False, 0), (True, 1)])
def test_strict_makes_a_versioned_breaking_change_fail(tmp_path, strict, code):
    write(tmp_path / "old", BASE)
    write(tmp_path / "new", changed(formula="clicks / (impressions + clicks) * 100", version=2))
    proc = kpiforge("diff", "old", "new", *(["--strict"] if strict else []), cwd=tmp_path)
    assert proc.returncode == code, proc.stdout + proc.stderr


def test_github_and_markdown_formats(tmp_path):
    write(tmp_path / "old", BASE)
    write(tmp_path / "new", changed(formula="clicks / (impressions + clicks) * 100", owner="ads, sales"))
    github = kpiforge("diff", "old", "new", "--format", "github", cwd=tmp_path)
    (line,) = github.stdout.splitlines()
    path = os.path.join("new", "ctr.yaml")
    assert line.startswith(f"::error file={path},line=")
    assert ",col=" in line and "::KPI 'ctr': breaking change (formula) without" in line
    md = kpiforge("diff", "old", "new", "--format", "md", cwd=tmp_path).stdout
    assert "| `ctr` | breaking | 1 → 1 |" in md
    assert "- **cosmetic** owner: marketing → ads, sales" in md


def test_the_bundled_catalog_has_no_change_against_itself():
    proc = kpiforge("diff", "kpiforge:standard", "definitions")
    assert (proc.returncode, proc.stdout.strip()) == (0, "no KPI changed"), proc.stderr
