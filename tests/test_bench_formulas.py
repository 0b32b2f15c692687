"""The formula benchmark runs and prints every target with a verdict (timings are not tested)."""

import re
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "bench_formulas.py"


def test_quick_run_prints_every_target():
    done = subprocess.run([sys.executable, str(SCRIPT), "--quick", "--slices", "20000"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    targets = re.findall(r"^target (.+): measured (\d+\.\d\d)x -> (met|missed)$",
                         done.stdout, re.M)
    names = [t[0] for t in targets]
    assert len(targets) == 3, done.stdout
    assert names[0].startswith("Engine.evaluate at 20,000 slices <= 1.5x numpy")
    assert names[1].startswith("Engine.evaluate at 1,000 slices <= 3.0x numpy")
    assert "reused asteval interpreter >= 5x faster" in names[2]


def test_busy_run_prints_the_catalog_targets_again_with_the_other_core_busy():
    done = subprocess.run([sys.executable, str(SCRIPT), "--quick", "--slices", "20000", "--busy"],
                          capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    names = re.findall(r"^target (.+): measured \d+\.\d\dx -> (?:met|missed)$", done.stdout, re.M)
    assert len(names) == 5, done.stdout
    assert names[2].startswith("Engine.evaluate at 20,000 slices (other core busy) <= 1.5x numpy")
    assert names[3].startswith("Engine.evaluate at 1,000 slices (other core busy) <= 3.0x numpy")
