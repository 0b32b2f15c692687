"""Property: any allowed formula gives the same value and reason on scalars and on arrays.

Random formulas over every construct the allow-list admits and every built-in function, on
inputs chosen to hit the edges (zero, negatives, missing, overflow-sized numbers). Each row is
evaluated on its own as scalars, and all rows at once as arrays (with both array trees: the
plain one and the in-place one used for big arrays); value and reason must be identical.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kpiforge import Reason, _formulas
from kpiforge._formulas import compile_formula, function_specs
from kpiforge._plugins import load_plugins

FUNCS = function_specs(load_plugins().functions)
NAMES = ("a", "b", "c")

NUMBERS = st.sampled_from(["0", "1", "2", "0.5", "3", "10", "100", "1e308", "1e-308", "1e200",
                           "7.25", "2147483647", "1e9", "15", "16", "-1"])
VALUES = st.one_of(
    st.sampled_from([0.0, -0.0, 1.0, -1.0, 2.0, 0.5, -2.5, 3.0, 1e308, -1e308, 1e-308, 1e200,
                     2.0 ** 53 + 2, 1e16 + 1, math.nan, 15.0, -15.0, 16.0, 0.125, 709.0, 710.0]),
    st.floats(min_value=-1e6, max_value=1e6, allow_nan=False),
    st.floats(allow_nan=False, allow_infinity=False),
)

BINOPS = ["+", "-", "*", "/", "//", "%", "**"]
COMPARE = ["<", "<=", ">", ">=", "==", "!="]


def _formulas_strategy(names: tuple[str, ...] = NAMES) -> st.SearchStrategy[str]:
    leaves = st.one_of(NUMBERS, st.sampled_from(names))

    def extend(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        two = st.tuples(inner, inner)
        three = st.tuples(inner, inner, inner)
        many = st.lists(inner, min_size=1, max_size=3)
        return st.one_of(
            st.builds(lambda p, op: f"({p[0]} {op} {p[1]})", two, st.sampled_from(BINOPS)),
            st.builds(lambda x: f"(-{x})", inner),
            st.builds(lambda x: f"(not {x})", inner),
            st.builds(lambda p, op: f"({p[0]} {op} {p[1]})", two, st.sampled_from(COMPARE)),
            st.builds(lambda p, o1, o2: f"({p[0]} {o1} {p[1]} {o2} {p[2]})", three,
                      st.sampled_from(COMPARE), st.sampled_from(COMPARE)),
            st.builds(lambda p, op: f"({p[0]} {op} {p[1]})", two, st.sampled_from(["and", "or"])),
            st.builds(lambda p: f"({p[0]} if {p[1]} else {p[2]})", three),
            st.builds(lambda xs, f: f"{f}({', '.join(xs)})", many,
                      st.sampled_from(["min", "max", "coalesce"])),
            st.builds(lambda x, f: f"{f}({x})", inner,
                      st.sampled_from(["abs", "sqrt", "log", "exp", "round"])),
            st.builds(lambda p: f"round({p[0]}, {p[1]})", two),
            st.builds(lambda p: f"log({p[0]}, {p[1]})", two),
            st.builds(lambda p: f"clip({p[0]}, {p[1]}, {p[2]})", three),
            st.builds(lambda p: f"where({p[0]}, {p[1]}, {p[2]})", three),
            st.builds(lambda p: f"safe_div({p[0]}, {p[1]})", two),
            st.builds(lambda p: f"safe_div({p[0]}, {p[1]}, {p[2]})", three),
        )

    return st.recursive(leaves, extend, max_leaves=10).filter(lambda t: len(t) < 1_000)


ROWS = st.lists(st.fixed_dictionaries({n: VALUES for n in NAMES}), min_size=1, max_size=6)


def _check(text: str, rows: list[dict[str, float]], inplace: bool,
           names: tuple[str, ...] = NAMES) -> None:
    formula = compile_formula(text, functions=FUNCS)
    arrays = {n: np.array([r[n] for r in rows], dtype=np.float64) for n in names}
    vector = formula.evaluate(arrays)
    assert vector.value.shape == (len(rows),)
    for i, row in enumerate(rows):
        one = formula.evaluate({n: (None if math.isnan(v) else v) for n, v in row.items()
                                if n in names})
        got, why = vector.value[i], vector.reason[i]
        context = (text, row, inplace, one, got, why)
        assert why == one.reason, context
        if one.reason is not None:  # the same structured reason too, not only the same text
            assert isinstance(why, Reason) and isinstance(one.reason, Reason), context
            assert (why.code, why.subject) == (one.reason.code, one.reason.subject), context
        if one.value is None:
            assert math.isnan(got), context
        else:
            assert type(one.value) is float and math.isfinite(one.value), context
            assert got == one.value, context


@settings(max_examples=800, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=_formulas_strategy(), rows=ROWS)
def test_scalar_and_array_evaluation_agree(text, rows):
    _check(text, rows, inplace=False)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=_formulas_strategy(), rows=ROWS)
def test_scalar_and_in_place_array_evaluation_agree(text, rows):
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_formulas, "_INPLACE_FROM", 0)  # the tree used from 65,536 slices on
        _check(text, rows, inplace=True)


# total(x) is an input of its own (kpiforge._totals): given per slice, or absent (then
# missing), both paths agree
TOTALS = ("total(a)", "total(b)")
TOTAL_ROWS = st.lists(st.fixed_dictionaries({n: VALUES for n in NAMES + TOTALS}),
                      min_size=1, max_size=6)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=_formulas_strategy(NAMES + TOTALS), rows=TOTAL_ROWS, given_totals=st.booleans())
def test_scalar_and_array_evaluation_agree_with_totals(text, rows, given_totals):
    _check(text, rows, inplace=False, names=NAMES + TOTALS if given_totals else NAMES)


# the examples of issue 8 item 20, as plain regression cases: one semantics for both paths
@pytest.mark.parametrize("text, inputs, value, reason", [
    ("min(clicks / visits, 5)", {"clicks": 3.0, "visits": 0.0}, None, "division by zero"),
    ("clip(1 / x, 0, 1)", {"x": 0.0}, None, "division by zero"),
    ("coalesce(sqrt(x), 1)", {"x": -4.0}, 1.0, None),
    ("(1 / x) ** -1", {"x": 0.0}, None, "division by zero"),
    ("1 / x > 0", {"x": 0.0}, None, "division by zero"),
    ("x > 5", {"x": None}, None, "missing input: x"),
    ("exp(-(1 / x))", {"x": 0.0}, None, "division by zero"),
    ("1 ** x", {"x": None}, None, "missing input: x"),
    ("where(x > 0, 1 / x, 0)", {"x": 0.0}, 0.0, None),
    ("1 / x if x else 0", {"x": 0.0}, 0.0, None),
    ("x != 0 and 1 / x > 1", {"x": 0.0}, 0.0, None),
    ("safe_div(1 / x, 2, 7)", {"x": 0.0}, 7.0, None),
    ("coalesce(a, 0) / b", {"a": None, "b": 0.0}, None, "division by zero"),
    ("coalesce(a, b)", {"a": None, "b": None}, None, "missing input: a"),
    ("(a if c else b) + 1", {"a": None, "b": 2.0, "c": 0.0}, 3.0, None),
    ("(a if c else b) + 1", {"a": None, "b": 2.0, "c": 1.0}, None, "missing input: a"),
    ("1 / x + y", {"x": 0.0, "y": None}, None, "missing input: y"),  # needed input first
])
def test_issue_examples_scalar_and_array(text, inputs, value, reason):
    formula = compile_formula(text, functions=FUNCS)
    assert (formula.evaluate(inputs).value, formula.evaluate(inputs).reason) == (value, reason)
    arrays = {k: np.array([np.nan if v is None else v] * 3) for k, v in inputs.items()}
    vector = formula.evaluate(arrays)
    assert list(vector.reason) == [reason] * 3
    if value is None:
        assert np.isnan(vector.value).all()
    else:
        assert list(vector.value) == [value] * 3
