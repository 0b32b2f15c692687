"""benchmarks/bench_sources.py --quick runs and prints its targets (never judged on timings)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "bench_sources.py"

pytest.importorskip("pandas")
pytest.importorskip("pyarrow")


def test_quick_run_checks_results_and_prints_every_target(tmp_path):
    done = subprocess.run([sys.executable, str(SCRIPT), "--quick", "--data", str(tmp_path)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    assert "agrees with the hand-written DuckDB query" in out and "give the same numbers" in out
    targets = [line for line in out.splitlines() if line.startswith("target ")]
    assert all(re.search(r": measured \d+\.\d\dx -> (met|missed)$", line) for line in targets), targets
    for kind in ("DATE", "naive TIMESTAMP", "TIMESTAMPTZ"):
        assert sum(line.startswith("target engine.run") and f", {kind} time column, " in line
                   for line in targets) == 2, (kind, targets)
    assert len(targets) == 7, targets


def test_the_hand_written_query_computes_the_local_day_once():
    sys.path.insert(0, str(SCRIPT.parent))
    try:
        import bench_sources
    finally:
        sys.path.remove(str(SCRIPT.parent))
    for kind in bench_sources.KINDS:
        sql = bench_sources.hand_sql(kind)
        aggregate = sql[sql.index("agg AS"):]
        assert "timezone(" not in aggregate and "CAST(ts" not in aggregate, kind
    assert "timezone(" not in bench_sources.hand_sql("date") + bench_sources.hand_sql("naive")
