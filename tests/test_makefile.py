"""`make demo` installs the runtime and the demo's needs only; `make test` the dev extras."""

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="needs make")


def planned(target: str, tmp_path: Path) -> str:
    """The commands `make TARGET` would run on a machine without a venv (nothing is run)."""
    proc = subprocess.run(["make", "-n", target, f"VENV={tmp_path / 'venv'}"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_demo_installs_the_runtime_and_the_demo_extra_only(tmp_path):
    commands = planned("demo", tmp_path)
    assert "-e '.[demo,report]'" in commands and "[dev]" not in commands
    assert ".kpiforge-runtime" in commands and ".kpiforge-dev" not in commands


def test_test_installs_the_dev_extras(tmp_path):
    commands = planned("test", tmp_path)
    assert "-e '.[dev]'" in commands and ".kpiforge-dev" in commands


def test_the_demo_extra_covers_what_the_demo_generator_imports():
    import tomllib

    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    names = {r.split(">")[0].split("[")[0] for r in extras["demo"]}
    source = (ROOT / "examples/demo/generate.py").read_text()
    assert {"pandas", "pyarrow"} <= names
    assert "import pandas" in source and "import pyarrow" in source


def test_demo_says_what_it_is_and_what_its_alert_lines_mean(tmp_path):
    commands = planned("demo", tmp_path)
    assert "invented marketing data" in commands
    assert "matched no route" in commands and "sends nothing new" in commands
    assert "kpiforge alerts list --project examples/demo/kpiforge.yaml" in commands
    assert ("kpiforge report --project examples/demo/kpiforge.yaml --grain month --by channel "
            "-o examples/demo/reports") in commands
    readme = (ROOT / "examples/demo/README.md").read_text()
    assert "matched no route" in readme and "a second run sends nothing" in readme


def test_test_type_checks_before_pytest(tmp_path):
    commands = planned("test", tmp_path).splitlines()
    typecheck = next(i for i, c in enumerate(commands) if ".ci/typecheck" in c)
    pytest_run = next(i for i, c in enumerate(commands) if "-m pytest" in c)
    assert typecheck < pytest_run


def test_the_typecheck_config_has_no_blanket_ignore():
    """`ignore_errors` for the whole package would hide every error; mypy's settings stay checked."""
    import tomllib

    mypy = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mypy"]
    assert mypy["python_version"] == "3.11" and mypy["warn_unused_ignores"] is True
    assert "ignore_errors" not in mypy and "ignore_missing_imports" not in mypy
    for override in mypy.get("overrides", []):
        modules = override["module"] if isinstance(override["module"], list) else [override["module"]]
        if override.get("ignore_errors"):
            assert not {"kpiforge", "kpiforge.*", "kpiforge.plugins", "kpiforge.plugins.*"} & set(modules)


def test_bench_runs_the_startup_benchmark(tmp_path):
    assert "benchmarks/bench_startup.py" in planned("bench", tmp_path)
