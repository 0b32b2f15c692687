"""`kpiforge test`: declarative KPI tests pass, fail with expected vs actual, and survive bad files."""

import json
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from kpiforge import Engine
from kpiforge import _testing
from kpiforge._testing import run_tests
from kpiforge._yamlio import load_document

ROOT = Path(__file__).resolve().parent.parent
CATALOG = ROOT / "tests" / "fixtures" / "catalog"
SUMMARY = re.compile(r"^\d+ passed, \d+ failed$")


def kpiforge(*args, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", "kpiforge", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=120)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def engine():
    return Engine.load(CATALOG)


@pytest.fixture
def project(tmp_path):
    """A copy of the fixture catalog that a test can add (bad) test files to."""
    target = tmp_path / "kpis"
    shutil.copytree(CATALOG, target)
    return target


def run_one(engine, tmp_path, text, name="case.test.yaml"):
    return run_tests(engine, [write(tmp_path / name, text)])


# -- the command ---------------------------------------------------------------------------------
def test_a_passing_folder_prints_a_pass_line_per_case_and_the_summary_last():
    proc = kpiforge("test", "tests/fixtures/catalog")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[-1] == "5 passed, 0 failed"
    assert "PASS tests/fixtures/catalog/traffic/signup_rate.test.yaml: 30 signups on 1,000 visits is 3 %, good" in lines
    assert sum(line.startswith("PASS ") for line in lines) == 5


def test_the_bundled_catalog_tests_pass():
    proc = kpiforge("test")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert SUMMARY.match(lines[-1]) and lines[-1].endswith(" 0 failed")
    passed = int(lines[-1].split()[0])
    cases = sum(len(load_document(p).data.get("tests", [])) + len(load_document(p).data.get("alert_tests", []))
                for p in (ROOT / "definitions").rglob("*.test.yaml"))
    assert passed == cases > 0
    assert "PASS definitions/acquisition/ctr.test.yaml: " in proc.stdout


def test_a_failing_case_shows_expected_vs_actual_and_exits_1(tmp_path):
    tests = write(tmp_path / "wrong.test.yaml", """
        tests:
          - name: right
            inputs: {signups: 30, visits: 1000}
            expect:
              signup_rate: {value: 3.0, status: good}
          - name: wrong on purpose
            inputs: {signups: 30, visits: 1000}
            expect:
              signup_rate: {value: 4.0, status: ok, reason: division by zero}
        """)
    proc = kpiforge("test", str(tests), "--definitions", str(CATALOG))
    assert proc.returncode == 1
    lines = proc.stdout.splitlines()
    fail_at = next(i for i, line in enumerate(lines) if line.startswith("FAIL "))
    assert lines[fail_at].endswith("wrong.test.yaml: wrong on purpose")
    assert lines[fail_at + 1:fail_at + 4] == [
        "    signup_rate.value: expected 4.0, got 3.0",
        "    signup_rate.status: expected ok, got good",
        '    signup_rate.reason: expected "division by zero", got null',
    ]
    assert any(line.startswith("PASS ") and line.endswith(": right") for line in lines)
    assert lines[-1] == "1 passed, 1 failed"


def test_an_invalid_file_is_reported_with_positions_and_the_other_files_still_run(project):
    write(project / "traffic" / "bad.test.yaml", """
        tests:
          - name: a text where a number goes
            inputs: {signups: "thirty", visits: 1000}
            expect:
              signup_rate: {value: 3.0, statuss: good}
          - inputs: {visits: 1}
            expect: {}
        """)
    write(project / "traffic" / "broken.test.yaml", "tests:\n  - name: [unclosed\n")
    proc = kpiforge("test", str(project))
    assert proc.returncode == 1
    assert proc.stdout.splitlines()[-1] == "5 passed, 0 failed"  # every good case still ran
    errors = [line for line in proc.stderr.splitlines() if "error[" in line]
    assert any(re.search(r"bad\.test\.yaml:3:23: error\[schema\]: tests\[0\]\.inputs\.signups: ", e)
               for e in errors), errors
    assert any(re.search(r"bad\.test\.yaml:5:33: error\[schema\]: tests\[0\]\.expect\.signup_rate"
                         r"\.statuss: unknown field 'statuss' \(did you mean 'status'\?\)", e)
               for e in errors), errors
    assert any(re.search(r"bad\.test\.yaml:6:5: error\[schema\]: tests\[1\]: missing required field 'name'", e)
               for e in errors), errors
    assert any(re.search(r"bad\.test\.yaml:7:13: error\[schema\]: tests\[1\]\.expect: must not be empty", e)
               for e in errors), errors
    assert any(re.search(r"broken\.test\.yaml:\d+:\d+: error\[", e) for e in errors), errors
    assert "2 invalid test files" in proc.stderr


def test_an_unknown_kpi_in_expect_fails_the_case_with_its_position(tmp_path):
    tests = write(tmp_path / "typo.test.yaml", """
        tests:
          - name: typo in a KPI id
            inputs: {signups: 30, visits: 1000}
            expect:
              signup_rate: {value: 3.0}
              signup_rat: {value: 3.0}
        """)
    proc = kpiforge("test", str(tests), "-d", str(CATALOG))
    assert proc.returncode == 1
    assert re.search(r"typo\.test\.yaml:6:7: error\[unknown-kpi\]: tests\[0\]\.expect\.signup_rat: "
                     r"unknown KPI 'signup_rat' \(did you mean 'signup_rate'\?\)", proc.stdout), proc.stdout
    assert proc.stdout.splitlines()[-1] == "0 passed, 1 failed"


@pytest.mark.parametrize(("inputs", "passes", "message"), [
    # a typo: the case would pass while proving nothing about the input it meant
    ("{signups: 30, visit: 1000}", False,
     r"typo\.test\.yaml:3:27: error\[unknown-input\]: tests\[0\]\.inputs\.visit: input 'visit' "
     r"is not read by signup_rate \(did you mean 'visits'\?\); it reads signups, visits"),
    ("{signups: 30, visits: 1000}", True, None),
])
def test_an_input_no_expected_kpi_reads_fails_the_case(tmp_path, inputs, passes, message):
    tests = write(tmp_path / "typo.test.yaml", f"""
        tests:
          - name: an input of another KPI
            inputs: {inputs}
            expect:
              signup_rate: {{value: 3.0}}
        """)
    proc = kpiforge("test", str(tests), "-d", str(CATALOG))
    assert proc.returncode == (0 if passes else 1), proc.stdout
    if message:
        assert re.search(message, proc.stdout), proc.stdout


def test_json_format_for_machines(tmp_path):
    tests = write(tmp_path / "mixed.test.yaml", """
        tests:
          - name: right
            inputs: {signups: [30, 10], visits: [1000, 1000]}
            expect:
              signup_rate: {value: [3.0, 1.0], status: [good, warning]}
          - name: wrong slice
            inputs: {signups: [30, 10], visits: [1000, 1000]}
            expect:
              signup_rate: {value: [3.0, 2.0]}
        """)
    proc = kpiforge("test", str(tests), "-d", str(CATALOG), "--format", "json")
    assert proc.returncode == 1
    report = json.loads(proc.stdout)
    assert (report["ok"], report["passed"], report["failed"]) == (False, 1, 1)
    assert [c["passed"] for c in report["cases"]] == [True, False]
    assert report["cases"][1]["mismatches"] == [{
        "kpi": "signup_rate", "field": "value", "index": 1, "where": "signup_rate.value[1]",
        "expected": 2.0, "actual": 1.0, "note": ""}]
    assert report["cases"][1]["line"] == 6


def test_a_path_that_is_no_test_file_is_a_usage_error():
    proc = kpiforge("test", "tests/fixtures/catalog/traffic/visits.yaml")
    assert proc.returncode == 2
    assert "neither a folder nor a *.test.yaml file" in proc.stderr


def test_no_test_files_is_not_a_failure(tmp_path):
    shutil.copy(CATALOG / "traffic" / "visits.yaml", tmp_path / "visits.yaml")
    proc = kpiforge("test", str(tmp_path))
    assert proc.returncode == 0
    assert proc.stdout.splitlines() == ["0 passed, 0 failed"]
    assert "no test files" in proc.stderr


# -- comparisons -----------------------------------------------------------------------------------
def test_series_compare_slice_by_slice(engine, tmp_path):
    report = run_one(engine, tmp_path, """
        tests:
          - name: series
            inputs: {signups: [30, 0, 90], visits: [1000, 0, 1000]}
            expect:
              signup_rate:
                value: [3.0, null, 9.5]
                status: [good, unknown, good]
                reason: [null, division by zero, "x"]
        """)
    (case,) = report.cases
    assert [str(m) for m in case.mismatches] == [
        "signup_rate.value[2]: expected 9.5, got 9.0",
        'signup_rate.reason[2]: expected "x", got null',
    ]


def test_one_expectation_holds_for_every_slice(engine, tmp_path):
    report = run_one(engine, tmp_path, """
        tests:
          - name: all good
            inputs: {signups: [30, 50, 10], visits: [1000, 1000, 1000]}
            expect:
              signup_rate: {status: good, reason: null}
        """)
    assert [str(m) for m in report.cases[0].mismatches] == ["signup_rate.status[2]: expected good, got warning"]


def test_series_length_and_shape_mismatches_are_failures(engine, tmp_path):
    report = run_one(engine, tmp_path, """
        tests:
          - name: too few slices expected
            inputs: {signups: [30, 50, 10], visits: [1000, 1000, 1000]}
            expect:
              signup_rate: {value: [3.0, 5.0]}
          - name: a series expected from scalar inputs
            inputs: {signups: 30, visits: 1000}
            expect:
              signup_rate: {status: [good]}
          - name: inputs of unequal length
            inputs: {signups: [30, 50], visits: [1000, 1000, 1000]}
            expect:
              signup_rate: {status: good}
        """)
    first, second, third = report.cases
    assert "expected 2 slices, got 3" in str(first.mismatches[0])
    assert "not series" in str(second.mismatches[0])
    assert third.problems and third.problems[0].code == "input"
    assert "3 values but other inputs have 2" in third.problems[0].message
    assert report.failed == 3


@pytest.mark.parametrize("expect, passes", [
    ("{value: 3.0}", True),
    ("{value: 3.000000001}", True),           # within the default relative 1e-9
    ("{value: 3.00001}", False),
    ("{value: 2.9, tolerance: 0.1}", True),   # |3.0 - 2.9| is 0.1 plus rounding: still inside
    ("{value: 2.95, tolerance: 0.01}", False),
    ("{value: 3.5, tolerance: 0.5}", True),
    ("{value: null}", False),
])
def test_tolerance(engine, tmp_path, expect, passes):
    report = run_one(engine, tmp_path, f"""
        tests:
          - name: tolerance
            inputs: {{signups: 30, visits: 1000}}
            expect:
              signup_rate: {expect}
        """)
    assert report.cases[0].passed is passes, report.cases[0].mismatches


def test_a_tolerance_failure_names_the_tolerance(engine, tmp_path):
    report = run_one(engine, tmp_path, """
        tests:
          - name: tolerance
            inputs: {signups: 30, visits: 1000}
            expect:
              signup_rate: {value: 2.95, tolerance: 0.01}
        """)
    assert str(report.cases[0].mismatches[0]) == "signup_rate.value: expected 2.95, got 3.0 (tolerance 0.01)"


def test_null_must_be_null(engine, tmp_path):
    report = run_one(engine, tmp_path, """
        tests:
          - name: a value where null is expected
            inputs: {signups: 30, visits: 1000}
            expect:
              signup_rate: {value: null}
        """)
    assert str(report.cases[0].mismatches[0]) == "signup_rate.value: expected null, got 3.0"


def test_every_file_is_reported_even_when_one_is_invalid(engine, tmp_path):
    bad = write(tmp_path / "a_bad.test.yaml", "tests: 3\n")
    good = write(tmp_path / "b_good.test.yaml", """
        tests:
          - name: fine
            inputs: {visits: 10}
            expect:
              visits: {value: 10}
        """)
    report = run_tests(engine, [bad, good])
    assert report.passed == 1 and report.failed == 0 and not report.ok
    assert [d.line for d in report.diagnostics] == [1]
    assert report.invalid_files == (report.files[0],)


# -- alert cases -------------------------------------------------------------------------------------
ALERT_CASES = """
    alert_tests:
      - name: a critical rate fires
        kpi: signup_rate
        steps:
          - {period: "2026-01", value: 3.5}
          - {period: "2026-02", value: 0.5}
        expect:
          - period: "2026-01"
            alerts: []
          - step: 2
            alerts: [{state: firing, severity: critical}]
    """


def test_alert_tests_are_left_open_by_the_schema_and_run_through_the_alert_runner(engine, tmp_path):
    seen = []

    def runner(engine_, case):
        seen.append(case["name"])
        return [_testing.Mismatch("signup_rate", "alerts", [], ["firing"], 1)]

    report = run_tests(engine, [write(tmp_path / "alerts.test.yaml", ALERT_CASES)], alert_runner=runner)
    assert seen == ["a critical rate fires"]
    (case,) = report.cases
    assert case.kind == "alert" and not case.passed and not report.diagnostics


def test_a_crashing_alert_runner_fails_its_case_only(engine, tmp_path):
    def runner(engine_, case):
        raise RuntimeError("boom")

    file = write(tmp_path / "alerts.test.yaml", """
        tests:
          - name: still runs
            inputs: {visits: 10}
            expect:
              visits: {value: 10}
        alert_tests:
          - {name: crashes, kpi: visits, steps: [{value: 1}], expect: []}
        """)
    report = run_tests(engine, [file], alert_runner=runner)
    assert [c.passed for c in report.cases] == [True, False]
    assert report.cases[1].problems[0].message == "alert runner failed: RuntimeError: boom"


def test_without_kpiforge_alerts_alert_cases_are_errors(engine, tmp_path, monkeypatch):
    monkeypatch.setattr(_testing, "default_alert_runner", lambda: None)
    report = run_tests(engine, [write(tmp_path / "alerts.test.yaml", ALERT_CASES)])
    (case,) = report.cases
    assert not case.passed and case.problems[0].message == "alert tests need kpiforge.alerts"
    assert case.problems[0].line == 2


def test_alert_cases_through_the_default_runner(engine, tmp_path):
    if _testing.default_alert_runner() is None:
        pytest.skip("kpiforge.alerts.simulate is not available")
    report = run_tests(engine, [write(tmp_path / "alerts.test.yaml", ALERT_CASES + """
      - name: expects an alert that never comes
        kpi: signup_rate
        steps:
          - {value: 3.5}
        expect:
          - step: 1
            alerts: [{state: firing}]
      - name: unknown KPI
        kpi: signup_rat
        steps: [{value: 1}]
        expect: []
    """)])
    fires, never, unknown = report.cases
    assert fires.passed, fires.mismatches
    assert str(never.mismatches[0]).startswith("signup_rate.alerts at step 1: expected [{\"state\": \"firing\"}], got []")
    assert "did you mean 'signup_rate'" in unknown.problems[0].message
