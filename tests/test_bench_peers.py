"""benchmarks/bench_peers.py: its arguments, its data and its comparison with the floor.

No timing is asserted, and no peer is installed: the run below uses only the floor and the
kpiforge API, from this interpreter, on the 1e4 data set.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_peers", ROOT / "benchmarks" / "bench_peers.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_peers"] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop("bench_peers", None)


def test_arguments(bench):
    args = bench.parse_args(["--quick", "--only", "kpiforge-api"])
    assert args.sizes == [10_000]
    assert args.only == ["floor", "kpiforge-api"]  # the floor is always measured
    assert bench.parse_args(["--sizes", "1e4,1e6"]).sizes == [10_000, 1_000_000]
    assert bench.parse_args([]).sizes == [10_000, 1_000_000, 10_000_000]
    assert bench.parse_args(["--only", "kpiforge"]).only == ["floor", "kpiforge-cli", "kpiforge-api"]
    with pytest.raises(SystemExit):
        bench.parse_args(["--only", "pandas"])


def test_no_install_reports_a_peer_without_a_cached_venv_and_creates_nothing(bench, tmp_path):
    args = bench.parse_args(["--only", "kpiforge-api,kpi-engine", "--no-install",
                             "--venvs", str(tmp_path / "venvs")])
    pythons, problems = bench.interpreters(args.only, args)
    assert "kpi-engine" not in pythons and "--no-install" in problems["kpi-engine"]
    assert "kpiforge-api" not in problems
    assert not (tmp_path / "venvs").exists()


def test_the_data_is_deterministic_and_has_zero_denominators(bench, tmp_path):
    import duckdb

    first = bench.generate(10_000, tmp_path / "a")
    second = bench.generate(10_000, tmp_path / "b")
    assert first.read_bytes() == second.read_bytes()
    rows = duckdb.connect().execute(bench.FLOOR_SQL, {"path": str(first), "first": "2026-06-29",
                                                      "last": "2026-09-26"}).fetchall()
    assert len(rows) == 13 * 5  # 13 ISO weeks (the last one of 6 days), 5 channels
    by_channel = {(r[1], str(r[0])[:10]): r[2:] for r in rows}
    # email: no traffic in its first two weeks, never any cost; video never converts
    assert by_channel[("email", "2026-06-29")] == (None, None, None, None, None)
    assert by_channel[("email", "2026-08-03")][4] is None  # ROAS = revenue / 0
    assert by_channel[("video", "2026-08-03")][3] is None  # CPA = cost / 0
    assert all(v is not None for v in by_channel[("search", "2026-08-03")])


def test_compare_reports_zero_for_null_and_rounding(bench):
    floor = {("ctr", "2026-06-29", "email"): None, ("cpc", "2026-06-29", "search"): 0.123456789,
             ("roas", "2026-06-29", "search"): 3.0}
    assert bench.compare(floor, dict(floor)) is None
    assert bench.compare(floor, {**floor, ("roas", "2026-06-29", "search"): 3.0 * (1 + 1e-12)}) is None
    rounded = {("ctr", "2026-06-29", "email"): 0.0, ("cpc", "2026-06-29", "search"): 0.1235,
               ("roas", "2026-06-29", "search"): 3.0}
    finding = bench.compare(floor, rounded)
    assert "0.0 for 1 undefined values" in finding
    assert "1 values differ" in finding
    missing = bench.compare(floor, {("cpc", "2026-06-29", "search"): None})
    assert "2 of 3 values missing" in missing and "null for 1 defined values" in missing


def test_kpiforge_answers_parse_to_the_same_keys(bench):
    text = '{"results": [{"kpi": "ctr", "period": "2026-W27", "slice": {"channel": "email"}, "value": null}]}'
    assert bench.parse_kpiforge_json(text) == {("ctr", "2026-06-29", "email"): None}
    assert bench.parse_rows('[["ctr", "2026-W27", "email", 1.5]]') == {("ctr", "2026-06-29", "email"): 1.5}


def test_quick_run_of_the_floor_and_the_api(bench, tmp_path, capsys):
    # the data of the real benchmark, cached in benchmarks/_data/; venvs in tmp (none is made)
    assert bench.main(["--quick", "--only", "kpiforge-api", "--repeats", "0",
                       "--venvs", str(tmp_path / "venvs")]) == 0
    out = capsys.readouterr().out
    assert "1e4 kpiforge-api: same numbers" in out
    assert "info kpiforge-api / floor" in out and "target kpiforge-cli / floor" in out
    assert "not measured" in out  # --repeats 0: the answers are checked, nothing is timed
    assert not (tmp_path / "venvs").exists()


def test_an_answer_after_other_output_is_read_and_the_rest_reported(bench):
    # DuckDB's progress bar on stdout before the answer, as a long query in a script prints it
    text = '\n  9% ▕███▍   ▏ (~21 seconds remaining)   \n[["ctr", "2026-W27", "email", null]]'
    assert bench.parse_rows(text) == {("ctr", "2026-06-29", "email"): None}
    assert "9%" in bench.stray_output(text)
    assert bench.stray_output('[["ctr", "2026-W27", "email", null]]') is None
