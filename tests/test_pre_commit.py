"""The hooks of .pre-commit-hooks.yaml, run by pre-commit itself on a temporary repository.

A consumer's `.pre-commit-config.yaml` names this repository; here the same hooks are given
as a local configuration (`repo: local`, `language: system`, the entry on this venv's
kpiforge) so that pre-commit runs them without installing kpiforge again from the network.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
KPIFORGE = Path(sys.executable).with_name("kpiforge")

GOOD = """\
kpis:
  - id: signups
    name: Sign-ups
    status: certified
    formula: n
    inputs: {n: {unit: count}}
    unit: count
    direction: higher_is_better
"""
GOOD_TESTS = {"tests": [{"name": "ten sign-ups", "inputs": {"n": 10},
                         "expect": {"signups": {"value": 10.0}}}]}


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, timeout=60)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    if shutil.which("git") is None or not KPIFORGE.exists():
        pytest.skip("git and the venv's kpiforge are needed")
    repo = tmp_path / "repo"
    (repo / "kpis").mkdir(parents=True)
    (repo / "kpis" / "signups.yaml").write_text(GOOD)
    (repo / "kpis" / "signups.test.yaml").write_text(yaml.safe_dump(GOOD_TESTS))
    hooks = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    local = []
    for hook in hooks:
        program, *rest = hook["entry"].split()
        assert program == "kpiforge"
        local.append({**hook, "language": "system", "entry": " ".join([str(KPIFORGE), *rest]),
                      "args": ["kpis"]})
    (repo / ".pre-commit-config.yaml").write_text(
        yaml.safe_dump({"repos": [{"repo": "local", "hooks": local}]}, sort_keys=False))
    _git(repo, "init", "-q")
    _git(repo, "add", "-A")
    return repo


def _pre_commit(repo: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PRE_COMMIT_HOME": str(repo.parent / "cache"),
           "GIT_CONFIG_GLOBAL": os.devnull, "SKIP": ""}
    return subprocess.run([sys.executable, "-m", "pre_commit", "run", "--all-files"], cwd=repo,
                          capture_output=True, text=True, timeout=300, env=env)


def test_both_hooks_pass_on_good_definitions(repo: Path) -> None:
    proc = _pre_commit(repo)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "kpiforge validate" in proc.stdout and "kpiforge test" in proc.stdout
    assert proc.stdout.count("Passed") == 2


@pytest.mark.parametrize(("change", "failing", "message"), [
    # an input declared but unused is a warning: --strict makes it fail the commit
    (lambda r: (r / "kpis" / "signups.yaml").write_text(
        GOOD.replace("{n: {unit: count}}", "{n: {unit: count}, m: {unit: count}}")),
     "kpiforge validate", "unused-input"),
    # a test case that no longer holds
    (lambda r: (r / "kpis" / "signups.test.yaml").write_text(
        yaml.safe_dump({"tests": [{"name": "wrong", "inputs": {"n": 10},
                                   "expect": {"signups": {"value": 11.0}}}]})),
     "kpiforge test", "FAIL"),
])
def test_a_hook_fails_the_commit(repo: Path, change, failing, message) -> None:
    change(repo)
    _git(repo, "add", "-A")
    proc = _pre_commit(repo)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    failed = [line for line in proc.stdout.splitlines() if line.endswith("Failed")]
    assert len(failed) == 1 and failed[0].startswith(failing), proc.stdout
    assert message in proc.stdout
