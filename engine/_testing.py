"""Declarative KPI tests: ``*.test.yaml`` files of inputs and expected results, run against an engine.

A test file holds ``tests:`` (evaluate inputs, compare value/status/reason per KPI and slice)
and optionally ``alert_tests:`` (alert series, promtool ``alert_rule_test`` style), which are
handed to an *alert runner* so the alerting code owns their semantics. Everything here is pure:
files in, a :class:`TestReport` out; printing is the CLI's job.

Every file is loaded and validated on its own, so one invalid file is reported with its
positions and never keeps the other files from running. Comparisons:

* ``value``: ``null`` must be null; a number matches with a relative tolerance of 1e-9 (absolute
  floor 1e-12), or within ``tolerance`` (absolute) when given; a list checks slice by slice.
* ``status``/``reason``: exact; a list checks slice by slice, a single expectation on series
  inputs applies to every slice.
* fields that are not written are not checked.

Alert cases (default runner, built on :func:`kpiforge.alerts.simulate`)::

    alert_tests:
      - name: CTR under 1 % for two periods fires
        kpi: ctr
        alerting: {...}              # optional, as in the project's `alerting:` section
        steps:                       # one evaluation each, in order
          - {period: 2026-01, value: 3.2}
          - {period: 2026-02, value: 0.8}
        expect:                      # only the steps listed are checked (promtool's eval_time)
          - step: 2                  # 1-based, or `period: 2026-02`
            alerts:                  # exactly these notifications, compared on the keys given
              - {state: firing, severity: critical}

A module can take over alert cases by defining ``run_alert_test(engine, case) -> list[Mismatch]``
in :mod:`kpiforge.alerts`; it is preferred over the default runner when present.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Literal, Mapping, Sequence

from ._schema import validate
from ._test_compare import ABS_TOL, REL_TOL, Mismatch, compare
from ._aliases import input_aliases
from ._yamlio import Document, KeyPath, field_name, load_document
from .errors import CaseError, DefinitionError, Diagnostic, KpiforgeError, did_you_mean

__all__ = [
    "AlertRunner",
    "CaseError",
    "CaseResult",
    "Mismatch",
    "TestFile",
    "TestReport",
    "default_alert_runner",
    "find_test_files",
    "load_test_file",
    "run_tests",
]

SCHEMA = "test.schema.json"
TEST_SUFFIXES = (".test.yaml", ".test.yml")
NO_ALERTS = "alert tests need kpiforge.alerts"


@dataclass(frozen=True)
class CaseResult:
    """The outcome of one case. ``problems`` are why it could not run (fully), with positions."""

    file: str
    line: int
    name: str
    kind: str  # "kpi" or "alert"
    mismatches: tuple[Mismatch, ...] = ()
    problems: tuple[Diagnostic, ...] = ()

    @property
    def passed(self) -> bool:
        return not self.mismatches and not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.file, "line": self.line, "name": self.name, "kind": self.kind,
                "passed": self.passed, "mismatches": [m.to_dict() for m in self.mismatches],
                "problems": [d.to_dict() for d in self.problems]}


@dataclass(frozen=True)
class TestReport:
    """Every case run, in file order, and the diagnostics of the files that could not be used."""

    __test__ = False  # not a pytest class, whatever its name

    cases: tuple[CaseResult, ...] = ()
    diagnostics: tuple[Diagnostic, ...] = ()
    files: tuple[str, ...] = ()

    @property
    def passed(self) -> int:
        return sum(c.passed for c in self.cases)

    @property
    def failed(self) -> int:
        return len(self.cases) - self.passed

    @property
    def invalid_files(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(d.path for d in self.diagnostics if d.is_error))

    @property
    def ok(self) -> bool:
        return self.failed == 0 and not self.invalid_files

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "passed": self.passed, "failed": self.failed,
                "files": list(self.files), "invalid_files": list(self.invalid_files),
                "diagnostics": [d.to_dict() for d in self.diagnostics],
                "cases": [c.to_dict() for c in self.cases]}


@dataclass(frozen=True)
class TestFile:
    __test__ = False

    document: Document

    @property
    def path(self) -> str:
        return self.document.path

    @property
    def tests(self) -> list[dict[str, Any]]:
        return self.document.data.get("tests") or []

    @property
    def alert_tests(self) -> list[dict[str, Any]]:
        return self.document.data.get("alert_tests") or []


AlertRunner = Callable[[Any, Mapping[str, Any]], Sequence[Mismatch]]


# -- loading -----------------------------------------------------------------------------------
def is_test_file(path: str | os.PathLike[str]) -> bool:
    return os.fspath(path).endswith(TEST_SUFFIXES)


def find_test_files(paths: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """Test files given directly or found under folders, sorted per folder, without repeats."""
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found.extend(sorted(p for p in path.rglob("*") if p.is_file() and is_test_file(p)))
        elif path.exists() and is_test_file(path):  # a FIFO or device is refused when loaded
            found.append(path)
    return list(dict.fromkeys(p.resolve() for p in found))


def load_test_file(path: str | os.PathLike[str], display: str | None = None
                   ) -> tuple[TestFile | None, list[Diagnostic]]:
    """A validated test file, or None with every problem found in it."""
    try:
        document = load_document(path, display_path=display)
    except DefinitionError as exc:
        return None, list(exc.diagnostics)
    problems = validate(document, SCHEMA)
    if problems:
        return None, problems
    return TestFile(document), []


# -- running -----------------------------------------------------------------------------------
def run_tests(engine: Any, files: Iterable[str | os.PathLike[str]], *,
              display: Callable[[Path], str] | None = None,
              alert_runner: AlertRunner | None = None) -> TestReport:
    """Load and run every test file against ``engine`` (a :class:`kpiforge.Engine`)."""
    display = display or _relative
    cases: list[CaseResult] = []
    diagnostics: list[Diagnostic] = []
    shown: list[str] = []
    runner: AlertRunner | Literal[False] | None = alert_runner  # False: looked for, none available
    for file in files:
        path = Path(file)
        test_file, problems = load_test_file(path, display(path))
        shown.append(display(path))
        diagnostics.extend(problems)
        if test_file is None:
            continue
        for i, case in enumerate(test_file.tests):
            cases.append(run_case(engine, test_file.document, ("tests", i), case))
        if test_file.alert_tests and runner is None:
            runner = default_alert_runner() or False
        for i, case in enumerate(test_file.alert_tests):
            cases.append(run_alert_case(engine, test_file.document, ("alert_tests", i), case,
                                        runner or None))
    return TestReport(tuple(cases), tuple(sorted(diagnostics)), tuple(shown))


def run_case(engine: Any, doc: Document, where: KeyPath, case: Mapping[str, Any]) -> CaseResult:
    line = doc.position(where)[0]
    problems: list[Diagnostic] = []
    known: list[str] = []
    for kpi in case["expect"]:
        if kpi in engine.definitions:
            known.append(kpi)
        else:
            problems.append(_at_key(doc, where + ("expect", kpi), "unknown-kpi",
                                    f"unknown KPI '{kpi}'{did_you_mean(kpi, engine.definitions)}"))
    mismatches: list[Mismatch] = []
    if known:
        problems.extend(_unread_inputs(engine, doc, where, case["inputs"], known))
    if known and not problems:
        try:
            results = engine.evaluate(case["inputs"], kpis=known)
        except KpiforgeError as exc:
            problems.append(_at(doc, where + ("inputs",), "input", str(exc)))
        except Exception as exc:  # noqa: BLE001 - one broken case must not stop the run
            problems.append(_at(doc, where, "crash", f"evaluation failed: {type(exc).__name__}: {exc}"))
        else:
            for kpi in known:
                mismatches.extend(compare(kpi, _expected(engine, doc, kpi, case["expect"][kpi]),
                                          results[kpi]))
    return CaseResult(doc.path, line, case["name"], "kpi", tuple(mismatches), tuple(problems))


def _unread_inputs(engine: Any, doc: Document, where: KeyPath, inputs: Mapping[str, Any],
                   kpis: list[str]) -> list[Diagnostic]:
    """An input no expected KPI reads (a typo, or a case testing something else) is an
    error: the case would pass while proving nothing about it. Former names are accepted."""
    readable = set().union(*(engine.required_inputs(k) for k in kpis))
    former = {old for old, new in input_aliases(engine.definitions.values()).items()
              if readable & set(new)}
    return [_at_key(doc, where + ("inputs", name), "unknown-input",
                    f"input '{name}' is not read by {', '.join(kpis)}"
                    f"{did_you_mean(name, sorted(readable))}; it reads "
                    f"{', '.join(sorted(readable)) or 'no input'}")
            for name in inputs if name not in readable and name not in former]


def _expected(engine: Any, doc: Document, kpi: str, expected: Mapping[str, Any]) -> Mapping[str, Any]:
    """What a case may still expect of ``kpi``: a test next to an extended KPI's base judged it
    by the base's thresholds, which the extension replaced; its values still hold."""
    catalog = getattr(engine, "catalog", None)
    extension = catalog.extensions.get(kpi) if catalog is not None else None
    if (extension is None or Path(doc.path).parent != Path(extension.base_path).parent
            or not {"thresholds", "target", "tolerance"} & set(extension.changed)):
        return expected
    return {key: value for key, value in expected.items() if key != "status"}


def run_alert_case(engine: Any, doc: Document, where: KeyPath, case: Mapping[str, Any],
                   runner: AlertRunner | None) -> CaseResult:
    line = doc.position(where)[0]
    given = case.get("name")
    name = given if isinstance(given, str) else f"alert test {where[-1]}"
    if runner is None:
        return CaseResult(doc.path, line, name, "alert", (), (_at(doc, where, "alert-tests", NO_ALERTS),))
    try:
        mismatches = tuple(runner(engine, case))
    except CaseError as exc:
        return CaseResult(doc.path, line, name, "alert", (), (_at(doc, where + exc.path, "alert-test", str(exc)),))
    except KpiforgeError as exc:
        return CaseResult(doc.path, line, name, "alert", (), (_at(doc, where, "alert-test", str(exc)),))
    except Exception as exc:  # noqa: BLE001 - a plugged-in runner's bug fails its case, not the run
        problem = _at(doc, where, "crash", f"alert runner failed: {type(exc).__name__}: {exc}")
        return CaseResult(doc.path, line, name, "alert", (), (problem,))
    return CaseResult(doc.path, line, name, "alert", mismatches, ())


def _relative(path: Path) -> str:
    try:
        return os.path.relpath(path)
    except ValueError:  # another drive on Windows
        return str(path)


def _at(doc: Document, path: KeyPath, code: str, message: str) -> Diagnostic:
    line, column = doc.position(path)
    return Diagnostic(doc.path, line, column, code, message, "error", field_name(path))


def _at_key(doc: Document, path: KeyPath, code: str, message: str) -> Diagnostic:
    line, column = doc.key_position(path)
    return Diagnostic(doc.path, line, column, code, message, "error", field_name(path))


# -- alert cases -------------------------------------------------------------------------------
def default_alert_runner() -> AlertRunner | None:
    """``kpiforge.alerts.run_alert_test``, else a runner over ``kpiforge.alerts.simulate``, else None."""
    try:
        from . import alerts
    except ImportError:
        return None
    custom = getattr(alerts, "run_alert_test", None)
    if callable(custom):
        return custom
    simulate = getattr(alerts, "simulate", None)
    if not callable(simulate):
        return None

    def run(engine: Any, case: Mapping[str, Any]) -> list[Mismatch]:
        return _simulate_case(engine, case, simulate)

    return run


_ALERT_CASE_FIELDS = {"name", "description", "kpi", "alerting", "lang", "steps", "expect"}


def _simulate_case(engine: Any, case: Mapping[str, Any], simulate: Callable[..., Any]) -> list[Mismatch]:
    for key in case:
        if key not in _ALERT_CASE_FIELDS:
            raise CaseError(f"unknown field '{key}'{did_you_mean(key, sorted(_ALERT_CASE_FIELDS))}", (key,))
    kpi = case.get("kpi")
    if not isinstance(kpi, str):
        raise CaseError("missing required field 'kpi' (the KPI whose alerts are tested)")
    if kpi not in engine.definitions:
        raise CaseError(f"unknown KPI '{kpi}'{did_you_mean(kpi, engine.definitions)}", ("kpi",))
    steps = case.get("steps")
    if not isinstance(steps, list) or not steps or not all(isinstance(s, dict) for s in steps):
        raise CaseError("'steps' must be a non-empty list of mappings", ("steps",))
    expect = case.get("expect")
    if not isinstance(expect, list) or not all(isinstance(e, dict) for e in expect):
        raise CaseError("'expect' must be a list of {step or period, alerts}", ("expect",))
    alerting = case.get("alerting")
    if alerting is not None and not isinstance(alerting, dict):
        raise CaseError("'alerting' must be a mapping", ("alerting",))
    periods = [str(s["period"]) if s.get("period") is not None else None for s in steps]
    try:
        produced = simulate(engine.definitions[kpi], steps, alerting, lang=case.get("lang", "en"))
    except (KeyError, TypeError, ValueError) as exc:
        raise CaseError(f"cannot simulate the steps: {exc}", ("steps",)) from exc
    out: list[Mismatch] = []
    for j, item in enumerate(expect):
        index = _step_index(item, periods, j)
        wanted = item.get("alerts")
        if not isinstance(wanted, list) or not all(isinstance(a, dict) for a in wanted):
            raise CaseError("'alerts' must be a list of mappings ([] for none)", ("expect", j, "alerts"))
        got = produced[index]
        label = f"{kpi}.alerts at step {index + 1}" + (f" (period {periods[index]})" if periods[index] else "")
        if len(got) != len(wanted) or not all(
                all(_alert_value_matches(a.get(k), v) for k, v in w.items()) for w, a in zip(wanted, got)):
            shown = [{k: a.get(k) for k in (sorted(set().union(*wanted)) if wanted else
                                            ("state", "severity", "status"))} for a in got]
            out.append(Mismatch(kpi, "alerts", wanted, shown, index, label=label))
    return out


def _step_index(item: Mapping[str, Any], periods: list[str | None], j: int) -> int:
    if "step" in item:
        step = item["step"]
        if not isinstance(step, int) or isinstance(step, bool) or not 1 <= step <= len(periods):
            raise CaseError(f"'step' must be a step number from 1 to {len(periods)}", ("expect", j, "step"))
        return step - 1
    if "period" in item:
        period = str(item["period"])
        if period not in periods:
            raise CaseError(f"no step has period '{period}'", ("expect", j, "period"))
        return periods.index(period)
    raise CaseError("each expectation needs 'step' (1-based) or 'period'", ("expect", j))


def _alert_value_matches(actual: Any, expected: Any) -> bool:
    if isinstance(expected, (int, float)) and not isinstance(expected, bool) and isinstance(actual, (int, float)):
        return math.isclose(float(actual), float(expected), rel_tol=REL_TOL, abs_tol=ABS_TOL)
    if isinstance(expected, str) and not isinstance(actual, str) and actual is not None:
        return str(actual) == expected
    return actual == expected
