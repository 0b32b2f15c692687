"""Reasons are structured: a stable code (and subject) beside the text, on every path.

Tools match on ``reason.code`` / ``Record.reason_code``; the engine itself follows a reason
through dependencies by its code and subject, never by parsing the text back.
"""

from __future__ import annotations

import json
import math
import pickle
from pathlib import Path

import numpy as np
import pytest

from kpiforge import REASON_CODES, Engine, Reason

FIXTURES = Path(__file__).parent / "fixtures"
DOCS = Path(__file__).resolve().parent.parent / "docs" / "embedding.md"


@pytest.fixture(scope="module")
def engine():
    return Engine.load(FIXTURES / "valid")


@pytest.mark.parametrize("inputs, kpi, code, subject, text", [
    ({"clicks": 5, "impressions": 0}, "ctr", "division_by_zero", None, "division by zero"),
    ({"clicks": 5}, "ctr", "missing_input", "impressions", "missing input: impressions"),
    ({"clicks": 5, "impressions": math.inf}, "ctr", "input_not_finite", "impressions",
     "input is not finite: impressions"),
    ({"cost": 10, "clicks": 0}, "clicks_per_euro", "depends_on", "cpc",
     "depends on cpc: division by zero"),
    ({"cost": 10}, "doubled", "depends_on", "cpc", "depends on cpc: missing input: clicks"),
])
def test_every_path_gives_the_code_subject_and_text(engine, inputs, kpi, code, subject, text):
    scalar = engine.evaluate(inputs, kpis=[kpi])[kpi].reason
    arrays = {k: np.full(4, np.nan if v is None else float(v)) for k, v in inputs.items()}
    vector = engine.evaluate(arrays, kpis=[kpi])[kpi].reason
    for reason in (scalar, *vector.tolist()):
        assert isinstance(reason, Reason)
        assert (reason.code, reason.subject, str(reason)) == (code, subject, text)


def test_a_dependency_reason_keeps_its_root_cause(engine):
    reason = engine.evaluate({"cost": 10, "clicks": 0}, kpis=["doubled"])["doubled"].reason
    assert reason.code == "depends_on" and reason.subject == "cpc"
    assert isinstance(reason.cause, Reason) and reason.cause.code == "division_by_zero"


@pytest.mark.parametrize("formula, inputs, code", [
    ("sqrt(x)", {"x": -1.0}, "math_domain"),
    ("round(x, 99)", {"x": 1.0}, "invalid_argument"),
    ("exp(x)", {"x": 1000.0}, "not_finite"),
])
def test_function_failures_have_their_codes(formula, inputs, code):
    from kpiforge._formulas import compile_formula, function_specs
    from kpiforge._plugins import load_plugins

    compiled = compile_formula(formula, functions=function_specs(load_plugins().functions))
    scalar = compiled.evaluate(inputs).reason
    vector = compiled.evaluate({k: np.full(3, v) for k, v in inputs.items()}).reason
    assert [r.code for r in (scalar, *vector.tolist())] == [code] * 4


def test_a_reason_reads_as_plain_text_everywhere():
    reason = Reason("missing_input", "missing input: x", "x")
    assert reason == "missing input: x" and json.dumps(reason) == '"missing input: x"'
    copy = pickle.loads(pickle.dumps(reason))
    assert (copy.code, copy.subject, str(copy)) == ("missing_input", "x", "missing input: x")


def test_an_unknown_code_is_refused():
    with pytest.raises(ValueError, match="unknown reason code"):
        Reason("oops", "text")


def test_results_and_records_carry_the_code(engine):
    (row,) = engine.evaluate({"clicks": 1, "impressions": 0}, kpis=["ctr"])["ctr"].records()
    assert (row["reason"], row["reason_code"]) == ("division by zero", "division_by_zero")
    assert type(row["reason"]) is str  # plain text: YAML and JSON writers take it as is


def test_the_embedding_guide_lists_every_code():
    text = DOCS.read_text(encoding="utf-8")
    listed = {line.split("`")[1] for line in text.splitlines() if line.startswith("| `")}
    assert set(REASON_CODES) <= listed, set(REASON_CODES) - listed
