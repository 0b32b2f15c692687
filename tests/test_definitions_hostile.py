"""Hostile definition sets and input files: each is a short, located diagnostic, quickly.

Regression tests for issue 8: 100,000 broken entries once printed 48 MB in half a minute, a
100 kB formula was echoed whole, a 400-digit threshold ended in an OverflowError, a symlink led
out of the definitions folder and echoed what it pointed at, and a FIFO blocked forever.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from kpiforge import DefinitionError, Engine
from kpiforge.errors import MAX_DIAGNOSTICS_PER_FILE, Diagnostic, limit_per_file

ROOT = Path(__file__).resolve().parent.parent
KPI = textwrap.dedent("""\
    id: k
    name: K
    formula: a
    inputs: {a: {}}
    unit: count
    direction: higher_is_better
""")
HUGE = "1" + "0" * 399  # 400 digits: an int, far beyond float range


def kpiforge(*args: str, cwd: Path = ROOT, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    # The timeout is what keeps a FIFO regression from hanging the suite.
    return subprocess.run([sys.executable, "-m", "kpiforge", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def load_errors(*paths: Path) -> tuple[Diagnostic, ...]:
    with pytest.raises(DefinitionError) as info:
        Engine.load(*paths)
    return info.value.diagnostics


# -- 22: floods of diagnostics -------------------------------------------------------------------


@pytest.mark.parametrize("entry, per_entry", [("  -\n", 1), ("  - {}\n", 5)], ids=["null", "empty-mapping"])
def test_100k_empty_entries_give_a_capped_report_quickly(tmp_path, entry, per_entry):
    (tmp_path / "flood.yaml").write_text("kpis:\n" + entry * 100_000)
    started = time.perf_counter()
    diagnostics = load_errors(tmp_path)
    assert time.perf_counter() - started < 5  # was 29 s
    assert len(diagnostics) == MAX_DIAGNOSTICS_PER_FILE + 1
    *shown, note = diagnostics
    assert all(d.is_error and d.path.endswith("flood.yaml") and d.line > 1 for d in shown)
    checked = MAX_DIAGNOSTICS_PER_FILE // per_entry
    assert str(note).endswith(f"flood.yaml: note: stopped after {MAX_DIAGNOSTICS_PER_FILE} diagnostics: "
                              f"{100_000 - checked:,} more KPIs of this file not checked")


def test_100k_empty_entries_print_a_few_dozen_lines(tmp_path):
    (tmp_path / "flood.yaml").write_text("kpis:\n" + "  -\n" * 100_000)
    proc = kpiforge("validate", str(tmp_path), timeout=120)
    assert proc.returncode == 1
    lines = proc.stderr.splitlines()
    assert len(lines) == MAX_DIAGNOSTICS_PER_FILE + 2, lines[-3:]
    assert "note: stopped after 50 diagnostics: 99,950 more KPIs of this file not checked" in lines[-2]
    assert lines[-1] == "50 errors, 0 warnings"


def test_many_valid_kpis_with_semantic_errors_are_capped_with_a_count(tmp_path):
    (tmp_path / "many.yaml").write_text("kpis:\n" + "".join(
        f"  - {{id: k{i}, name: K, formula: nope, unit: count, direction: higher_is_better}}\n"
        for i in range(3000)))
    started = time.perf_counter()
    diagnostics = load_errors(tmp_path)
    assert time.perf_counter() - started < 15  # was quadratic: a hint per KPI against every id
    assert [d.code for d in diagnostics[:-1]] == ["unknown-name"] * MAX_DIAGNOSTICS_PER_FILE
    assert str(diagnostics[-1]).endswith("many.yaml: note: 2,950 more diagnostics in this file not shown")


def test_the_cap_keeps_errors_before_warnings_and_is_idempotent():
    warnings = [Diagnostic("a.yaml", i, 1, "unused-input", "w", "warning") for i in range(1, 80)]
    error = Diagnostic("a.yaml", 99, 1, "unknown-name", "e")
    other = Diagnostic("b.yaml", 1, 1, "schema", "x")
    capped = limit_per_file([*warnings, error, other], limit=10)
    assert capped[:10] == (*warnings[:9], error)  # line order, but the error is never cut
    assert str(capped[10]) == "a.yaml: note: 70 more diagnostics in this file not shown"
    assert capped[11:] == (other,)
    assert limit_per_file(capped, limit=10) == capped
    assert DefinitionError(DefinitionError(capped).diagnostics).diagnostics == capped


def test_a_100kb_formula_is_not_echoed_whole(tmp_path):
    (tmp_path / "long.yaml").write_text(KPI.replace("formula: a", "formula: " + "a + " * 25_000 + "a"))
    diagnostics = load_errors(tmp_path)
    assert diagnostics and all(len(str(d)) < 400 for d in diagnostics), [len(str(d)) for d in diagnostics]
    echoed = [d for d in diagnostics if "in formula 'a + a" in d.message]
    assert echoed and all("…'" in d.message for d in echoed)


@pytest.mark.parametrize("line", [
    "? " + "x" * 100_000 + "\n: 1",         # an unknown field named by a 100 kB key
    "target: 1e" + "9" * 100_000,          # a non-finite number written with 100 kB of digits
    "inputs: {a: {unit: " + "u" * 100_000 + "}}",  # an enum value
    "? " + "y" * 100_000 + "\n: !!foo bar",  # a refused tag under such a key
])
def test_long_source_text_is_cut_in_every_message(tmp_path, line):
    (tmp_path / "long.yaml").write_text(KPI.replace("inputs: {a: {}}\n", "") + line + "\n")
    diagnostics = load_errors(tmp_path)
    assert all(len(str(d)) < 400 for d in diagnostics), [str(d)[:300] for d in diagnostics]


# -- 7: integers beyond float range --------------------------------------------------------------


@pytest.mark.parametrize("fragment, field, column", [
    (f"thresholds: {{good: {HUGE}}}", "thresholds.good", 20),
    (f"thresholds: {{critical: -{HUGE}}}", "thresholds.critical", 24),
    (f"direction: target\ntarget: {HUGE}\ntolerance: 1", "target", 9),
    (f"direction: target\ntarget: 1\ntolerance: {HUGE}", "tolerance", 12),
])
def test_a_400_digit_number_in_a_definition_is_a_located_error(tmp_path, fragment, field, column):
    text = KPI + fragment + "\n"
    if "direction: target" in fragment:
        text = text.replace("direction: higher_is_better\n", "")
    (tmp_path / "k.yaml").write_text(text)
    errors = [d for d in load_errors(tmp_path) if d.is_error]
    assert [(d.code, d.field) for d in errors] == [("number-too-large", field)]
    line = text.splitlines().index(next(l for l in text.splitlines() if HUGE in l)) + 1
    assert (errors[0].line, errors[0].column) == (line, column)
    assert "400 digits is too large" in errors[0].message and HUGE not in errors[0].message


@pytest.mark.parametrize("name, text", [
    ("in.json", json.dumps({"clicks": int(HUGE), "impressions": 10})),
    ("in.yaml", f"clicks: 1\nimpressions: -{HUGE}\n"),
])
def test_a_400_digit_input_value_is_a_located_error(tmp_path, name, text):
    (tmp_path / name).write_text(text)
    proc = kpiforge("eval", "-d", "tests/fixtures/valid", "--inputs", str(tmp_path / name))
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and "OverflowError" not in proc.stderr
    assert "error[number-too-large]" in proc.stderr
    assert f"{name}:1:" in proc.stderr or f"{name}:2:" in proc.stderr


# -- 23: symlinks out of the folder, FIFOs, devices ----------------------------------------------


@pytest.fixture
def outside(tmp_path: Path) -> tuple[Path, Path]:
    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "private.yaml").write_text("id: hunter2\nname: the password is hunter2\n")
    team = tmp_path / "team"
    team.mkdir()
    (team / "k.yaml").write_text(KPI)
    return team, secret


def test_a_symlink_leading_out_of_the_folder_is_refused_and_nothing_of_it_echoed(outside):
    team, secret = outside
    (team / "leak.yaml").symlink_to(secret / "private.yaml")
    (team / "more").symlink_to(secret, target_is_directory=True)
    diagnostics = load_errors(team)
    assert sorted((Path(d.path).name, d.code, d.line) for d in diagnostics) == [
        ("leak.yaml", "symlink-outside", 0), ("more", "symlink-outside", 0)]
    text = "\n".join(map(str, diagnostics))
    assert "hunter2" not in text and "private" not in text and "secret" not in text
    proc = kpiforge("validate", str(team))
    assert proc.returncode == 1 and "hunter2" not in proc.stdout + proc.stderr
    assert "error[symlink-outside]" in proc.stderr and "Traceback" not in proc.stderr


def test_a_symlink_inside_the_folder_is_followed_once(outside):
    team, _ = outside
    (team / "sub").mkdir()
    (team / "sub" / "alias.yaml").symlink_to(team / "k.yaml")
    (team / "again").symlink_to(team / "sub", target_is_directory=True)
    engine = Engine.load(team)
    assert list(engine.definitions) == ["k"]


needs_fifo = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this system")


@needs_fifo
@pytest.mark.parametrize("args", [
    ("validate", "{fifo}.yaml"),
    ("validate", "{dir}"),
    ("list", "-d", "{fifo}.yaml"),
    ("run", "--project", "{fifo}.yaml"),
    ("eval", "-d", "tests/fixtures/valid", "--inputs", "{fifo}.yaml"),
    ("test", "-d", "tests/fixtures/valid", "{fifo}.test.yaml"),
], ids=["validate-file", "validate-folder", "definitions", "project", "inputs", "test-file"])
def test_a_fifo_is_refused_at_once(tmp_path, args):
    folder = tmp_path / "defs"
    folder.mkdir()
    for suffix in (".yaml", ".test.yaml"):
        os.mkfifo(folder / f"pipe{suffix}")
    fifo = str(folder / "pipe")
    args = tuple(a.format(fifo=fifo, dir=folder) for a in args)
    proc = kpiforge(*args, timeout=30)  # blocked forever before the fix
    assert proc.returncode in (1, 2), proc.stderr
    assert "not-a-file" in proc.stderr and "FIFO" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="no /dev/zero")
def test_a_device_is_refused_without_being_read():
    (diagnostic,) = load_errors(Path("/dev/zero"))
    assert diagnostic.path.endswith("dev/zero")
    assert str(diagnostic).endswith(":0:0: error[not-a-file]: cannot read: a character device, not a regular file")
