"""The wheel works on its own: built with `pip wheel .`, installed in a fresh venv, run elsewhere."""

import os
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def wheel_venv(tmp_path_factory):
    work = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps",
                    "-q", "-w", str(work / "dist"), str(ROOT)], check=True, timeout=600)
    (wheel,) = (work / "dist").glob("kpiforge-*.whl")
    env_dir = work / "venv"
    venv.create(env_dir, with_pip=False)
    python = env_dir / "bin" / "python"
    site = Path(subprocess.check_output(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], text=True).strip())
    # Dependencies come from the test environment (no network needed); kpiforge itself only
    # from the wheel, since a path listed in a .pth file does not run that folder's .pth hooks,
    # so the editable install of this checkout stays invisible.
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps",
                    "-q", str(wheel)], check=True, timeout=600)
    return env_dir, work


def run(env_dir: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return subprocess.run(list(args), cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def test_wheel_imports_from_its_own_install(wheel_venv):
    env_dir, work = wheel_venv
    proc = run(env_dir, work, str(env_dir / "bin" / "python"), "-c",
               "import kpiforge, kpiforge.plugins; print(kpiforge.__file__)")
    assert proc.returncode == 0, proc.stderr
    assert str(env_dir) in proc.stdout and str(ROOT) not in proc.stdout


def test_wheel_validates_the_bundled_catalog_from_any_directory(wheel_venv):
    env_dir, work = wheel_venv
    proc = run(env_dir, work, str(env_dir / "bin" / "kpiforge"), "validate")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "KPIs valid" in proc.stdout


def test_wheel_ships_schemas_and_definitions(wheel_venv):
    env_dir, work = wheel_venv
    code = ("from importlib import resources as r; "
            "print(sorted(p.name for p in r.files('kpiforge.schemas').iterdir() if p.name.endswith('.json'))); "
            "print(sum(1 for p in r.files('kpiforge.definitions').rglob('*.yaml')))")
    proc = run(env_dir, work, str(env_dir / "bin" / "python"), "-c", code)
    assert proc.returncode == 0, proc.stderr
    assert "kpi.schema.json" in proc.stdout
    assert int(proc.stdout.splitlines()[1]) >= 32
