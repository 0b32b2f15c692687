"""The wheel works on its own: built with `pip wheel .`, installed in a fresh venv, run elsewhere.

The venv has no site packages and gets kpiforge only from the wheel file, whatever is
installed where the tests run (an editable checkout, or kpiforge installed from PyPI).
"""

import os
import re
import subprocess
import sys
import tomllib
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.slow


def _is_kpiforge(name: str) -> bool:
    return bool(re.match(r"(__editable__[._-]*)?kpiforge\b|kpiforge[-_.]", name, re.I)) or name.endswith(".pth")


def _dependencies_dir(target: Path) -> Path:
    """The running environment's installed packages, minus kpiforge, as one folder of links.

    No network needed: kpiforge's dependencies are already here. kpiforge itself (editable
    hooks, dist-info, a non-editable copy) and every .pth file are left out, so the test venv
    can only import the wheel's copy and pip sees no kpiforge already installed.
    """
    target.mkdir()
    for entry in sys.path:
        folder = Path(entry)
        if folder.name not in ("site-packages", "dist-packages") or not folder.is_dir():
            continue
        for item in folder.iterdir():
            if not _is_kpiforge(item.name) and not (target / item.name).exists():
                (target / item.name).symlink_to(item)
    return target


@pytest.fixture(scope="module")
def wheel_venv(tmp_path_factory):
    work = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps",
                    "-q", "-w", str(work / "dist"), str(ROOT)], check=True, timeout=600)
    (wheel,) = (work / "dist").glob("kpiforge-*.whl")
    env_dir = work / "venv"
    venv.create(env_dir, with_pip=False, system_site_packages=False)
    python = env_dir / "bin" / "python"
    site = Path(subprocess.check_output(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], text=True).strip())
    (site / "deps.pth").write_text(f"{_dependencies_dir(work / 'deps')}\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps",
                    "--force-reinstall", "-q", str(wheel)], check=True, timeout=600)
    return env_dir, work, wheel


def run(env_dir: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return subprocess.run(list(args), cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def test_wheel_imports_from_its_own_install(wheel_venv):
    env_dir, work, _ = wheel_venv
    code = ("import kpiforge, kpiforge.plugins, importlib.metadata as m; print(kpiforge.__file__); "
            "print(m.distribution('kpiforge').locate_file(''))")
    proc = run(env_dir, work, str(env_dir / "bin" / "python"), "-c", code)
    assert proc.returncode == 0, proc.stderr
    module, dist = proc.stdout.splitlines()
    assert module.startswith(str(env_dir)) and dist.startswith(str(env_dir)), proc.stdout


def test_wheel_validates_the_bundled_catalog_from_any_directory(wheel_venv):
    env_dir, work, _ = wheel_venv
    proc = run(env_dir, work, str(env_dir / "bin" / "kpiforge"), "validate")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "KPIs valid" in proc.stdout


def test_wheel_ships_schemas_and_definitions(wheel_venv):
    env_dir, work, _ = wheel_venv
    code = ("from importlib import resources as r; "
            "print(sorted(p.name for p in r.files('kpiforge.schemas').iterdir() if p.name.endswith('.json'))); "
            "print(sum(1 for p in r.files('kpiforge.definitions').rglob('*.yaml')))")
    proc = run(env_dir, work, str(env_dir / "bin" / "python"), "-c", code)
    assert proc.returncode == 0, proc.stderr
    assert "kpi.schema.json" in proc.stdout
    assert int(proc.stdout.splitlines()[1]) == len(list((ROOT / "definitions").rglob("*.yaml")))


def test_wheel_holds_every_yaml_file(wheel_venv):
    _, _, wheel = wheel_venv
    shipped = {n for n in zipfile.ZipFile(wheel).namelist() if n.endswith(".yaml")}
    expected = {f"kpiforge/definitions/{p.relative_to(ROOT / 'definitions').as_posix()}"
                for p in (ROOT / "definitions").rglob("*.yaml")}
    expected |= {f"kpiforge/templates/{p.name}" for p in (ROOT / "engine" / "templates").glob("*.yaml")}
    assert shipped == expected


def test_wheel_ships_the_catalog_templates(wheel_venv):
    """The HTML page and UI strings are package data: the installed catalog renders in French."""
    env_dir, work, wheel = wheel_venv
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {"kpiforge/templates/catalog.html.j2", "kpiforge/templates/catalog_strings.yaml",
            "kpiforge/templates/serve.html.j2", "kpiforge/templates/serve_strings.yaml"} <= names
    proc = run(env_dir, work, str(env_dir / "bin" / "kpiforge"), "catalog", "--lang", "fr",
               "--format", "html")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("<!DOCTYPE html>") and "Catalogue des KPI" in proc.stdout


def test_every_definitions_folder_is_a_listed_package():
    """An unlisted folder makes setuptools warn at every build (and may drop its files)."""
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    folders = {"kpiforge.definitions." + ".".join(p.relative_to(ROOT / "definitions").parts)
               for p in (ROOT / "definitions").rglob("*") if p.is_dir() and p.name != "__pycache__"}
    assert folders and folders <= listed


def test_the_build_is_quiet(tmp_path):
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": ""}  # else setuptools warns it cannot compile
    proc = subprocess.run([sys.executable, "-m", "build", "--wheel", "--outdir", str(tmp_path), str(ROOT)],
                          capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    warnings = [line for line in (proc.stdout + proc.stderr).splitlines() if "warning" in line.lower()]
    assert warnings == []


def test_wheel_ships_py_typed(wheel_venv):
    """PEP 561: without the marker, mypy in a user's project ignores kpiforge's annotations."""
    env_dir, work, wheel = wheel_venv
    assert "kpiforge/py.typed" in zipfile.ZipFile(wheel).namelist()
    code = "from importlib import resources as r; print(r.files('kpiforge').joinpath('py.typed').is_file())"
    proc = run(env_dir, work, str(env_dir / "bin" / "python"), "-c", code)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "True"
