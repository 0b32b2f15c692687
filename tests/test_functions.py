"""The built-in formula functions (kpiforge.plugins.functions): scalars, arrays, NaN, registration."""

from __future__ import annotations

import math

import numpy as np
import pytest

from kpiforge._formulas import Evaluation, compile_formula, function_specs
from kpiforge._plugins import load_plugins
from kpiforge.plugins import functions as builtin

NAN = float("nan")
PLUGINS = load_plugins()
FUNCS = function_specs(PLUGINS.functions)

EXPECTED = {
    # name: (min_args, max_args)
    "min": (1, None),
    "max": (1, None),
    "abs": (1, 1),
    "round": (1, 2),
    "sqrt": (1, 1),
    "log": (1, 2),
    "exp": (1, 1),
    "clip": (3, 3),
    "safe_div": (2, 3),
    "where": (3, 3),
    "coalesce": (1, None),
}


def same(a, b) -> bool:
    """Equal, with NaN equal to NaN."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b


def test_plugin_registers_every_builtin():
    assert "kpiforge.plugins.functions" not in PLUGINS.failures
    for name, (lo, hi) in EXPECTED.items():
        reg = PLUGINS.functions[name]
        assert reg.plugin == "kpiforge.plugins.functions"
        assert (reg.min_args, reg.max_args) == (lo, hi), name
        assert reg.doc, f"{name} has no doc"
        assert callable(reg.obj)


# func, args, expected (scalar)
SCALAR_CASES = [
    (builtin.min_, (3.0, 1.0, 2.0), 1.0),
    (builtin.min_, (3.0,), 3.0),
    (builtin.min_, (3.0, NAN, 1.0), NAN),
    (builtin.min_, (NAN, 1.0), NAN),
    (builtin.max_, (3.0, 1.0, 2.0), 3.0),
    (builtin.max_, (1.0, NAN), NAN),
    (builtin.max_, (NAN, 1.0), NAN),
    (builtin.max_, (True, 0.5), 1.0),
    (builtin.abs_, (-2.5,), 2.5),
    (builtin.abs_, (NAN,), NAN),
    (builtin.abs_, (-3,), 3.0),
    (builtin.round_, (2.567, 2.0), 2.57),
    (builtin.round_, (2.5,), 2.0),  # half to even, like numpy
    (builtin.round_, (3.5,), 4.0),
    (builtin.round_, (1234.0, -2.0), 1200.0),
    (builtin.round_, (NAN, 1.0), NAN),
    (builtin.round_, (math.inf,), math.inf),
    (builtin.sqrt, (9.0,), 3.0),
    (builtin.sqrt, (NAN,), NAN),
    (builtin.log, (math.e,), 1.0),
    (builtin.log, (8.0, 2.0), 3.0),
    (builtin.log, (100.0, 10.0), 2.0),
    (builtin.exp, (0.0,), 1.0),
    (builtin.exp, (NAN,), NAN),
    (builtin.clip, (5.0, 0.0, 10.0), 5.0),
    (builtin.clip, (-5.0, 0.0, 10.0), 0.0),
    (builtin.clip, (50.0, 0.0, 10.0), 10.0),
    (builtin.clip, (NAN, 0.0, 10.0), NAN),
    (builtin.clip, (5.0, NAN, 10.0), NAN),
    (builtin.clip, (5.0, 8.0, 2.0), 2.0),  # hi wins, as numpy's does
    (builtin.safe_div, (1.0, 4.0, 0.0), 0.25),
    (builtin.safe_div, (1.0, 0.0, -1.0), -1.0),
    (builtin.safe_div, (1.0, 0.0), 0.0),
    (builtin.safe_div, (NAN, 2.0, 7.0), 7.0),
    (builtin.safe_div, (1e308, 1e-308, 7.0), 7.0),
    (builtin.where, (1.0, 2.0, 3.0), 2.0),
    (builtin.where, (0.0, 2.0, 3.0), 3.0),
    (builtin.where, (True, 2.0, 3.0), 2.0),
    (builtin.coalesce, (NAN, 2.0, 3.0), 2.0),
    (builtin.coalesce, (1.0, 2.0), 1.0),
    (builtin.coalesce, (NAN, NAN), NAN),
    (builtin.coalesce, (NAN, 0), 0.0),
]


@pytest.mark.parametrize("func, args, expected", SCALAR_CASES,
                         ids=[f"{f.__name__}{a}" for f, a, _ in SCALAR_CASES])
def test_scalars_return_plain_floats(func, args, expected):
    got = func(*args)
    assert type(got) is float, type(got)
    assert same(got, expected), got


@pytest.mark.parametrize("func, args, exc", [
    (builtin.sqrt, (-1.0,), ValueError),
    (builtin.log, (0.0,), ValueError),
    (builtin.log, (-1.0,), ValueError),
    (builtin.exp, (1000.0,), OverflowError),
])
def test_scalar_domain_problems_raise_pythons_exceptions(func, args, exc):
    # the formula engine turns these into "math domain error" / "result is not finite"
    with pytest.raises(exc):
        func(*args)


A = np.array([1.0, -4.0, NAN, 9.0])
B = np.array([2.0, -5.0, 1.0, NAN])

# func, args, expected (array)
ARRAY_CASES = [
    (builtin.min_, (A, B), [1.0, -5.0, NAN, NAN]),
    (builtin.min_, (A, 0.0), [0.0, -4.0, NAN, 0.0]),
    (builtin.min_, (A, B, 0.0), [0.0, -5.0, NAN, NAN]),
    (builtin.max_, (A, B), [2.0, -4.0, NAN, NAN]),
    (builtin.max_, (0.0, A), [1.0, 0.0, NAN, 9.0]),
    (builtin.abs_, (A,), [1.0, 4.0, NAN, 9.0]),
    (builtin.round_, (np.array([1.25, 2.5, -1.555, NAN]), 1.0), [1.2, 2.5, -1.6, NAN]),
    (builtin.round_, (np.array([0.5, 1.5, 2.5]),), [0.0, 2.0, 2.0]),
    (builtin.sqrt, (A,), [1.0, NAN, NAN, 3.0]),
    (builtin.log, (np.array([1.0, math.e, 0.0]),), [0.0, 1.0, -math.inf]),
    (builtin.log, (np.array([8.0, 4.0]), 2.0), [3.0, 2.0]),
    (builtin.log, (8.0, np.array([2.0, 8.0])), [3.0, 1.0]),
    (builtin.exp, (np.array([0.0, 1000.0]),), [1.0, math.inf]),
    (builtin.clip, (A, 0.0, 5.0), [1.0, 0.0, NAN, 5.0]),
    (builtin.clip, (A, B, 5.0), [2.0, -4.0, NAN, NAN]),
    (builtin.safe_div, (A, np.array([2.0, 0.0, 1.0, 3.0]), -1.0), [0.5, -1.0, -1.0, 3.0]),
    (builtin.safe_div, (1.0, np.array([0.0, 4.0])), [0.0, 0.25]),
    (builtin.where, (np.array([1.0, 0.0, 1.0, 0.0]), A, B), [1.0, -5.0, NAN, NAN]),
    (builtin.where, (A > 0, 1.0, 0.0), [1.0, 0.0, 0.0, 1.0]),
    (builtin.coalesce, (A, B), [1.0, -4.0, 1.0, 9.0]),
    (builtin.coalesce, (np.array([NAN, NAN]), np.array([NAN, 2.0]), 7.0), [7.0, 2.0]),
    (builtin.coalesce, (5.0, np.array([NAN, 2.0])), [5.0, 5.0]),
]


@pytest.mark.parametrize("func, args, expected", ARRAY_CASES,
                         ids=[f"{f.__name__}-{i}" for i, (f, _, _) in enumerate(ARRAY_CASES)])
def test_arrays(func, args, expected):
    with np.errstate(all="ignore"):
        got = func(*args)
    assert isinstance(got, np.ndarray)
    np.testing.assert_allclose(got, np.array(expected, dtype=float), equal_nan=True)


def test_coalesce_does_not_modify_its_inputs():
    a = np.array([NAN, 1.0])
    builtin.coalesce(a, 5.0)
    assert np.isnan(a[0])


def test_round_digits_may_vary_by_slice_and_bad_ones_are_nan():
    got = builtin.round_(np.array([1.2345, 1.2345, 1.2345, 1.2345]),
                         np.array([1.0, 2.0, 0.5, 16.0]))
    np.testing.assert_array_equal(got, [1.2, 1.23, NAN, NAN])


# through formulas: the engine's reasons for each function's bad cases
@pytest.mark.parametrize("text, ns, expected", [
    ("min(a, b, c)", {"a": 3, "b": 1, "c": 2}, Evaluation(1.0, None)),
    ("max(a, b)", {"a": 3, "b": None}, Evaluation(None, "missing input: b")),
    ("abs(a - b)", {"a": 1, "b": 4}, Evaluation(3.0, None)),
    ("round(a / b, 2)", {"a": 2, "b": 3}, Evaluation(0.67, None)),
    ("round(a)", {"a": 2.5}, Evaluation(2.0, None)),
    ("sqrt(a)", {"a": 16}, Evaluation(4.0, None)),
    ("sqrt(a)", {"a": -16}, Evaluation(None, "math domain error")),
    ("log(a)", {"a": 0}, Evaluation(None, "math domain error")),
    ("log(a, 10)", {"a": 100}, Evaluation(2.0, None)),
    ("log(a, 1)", {"a": 10}, Evaluation(None, "division by zero")),
    ("exp(a)", {"a": 1000}, Evaluation(None, "result is not finite")),
    ("exp(a)", {"a": 0}, Evaluation(1.0, None)),
    ("clip(a, 0, 100)", {"a": 150}, Evaluation(100.0, None)),
    ("safe_div(a, b, -1)", {"a": 1, "b": 0}, Evaluation(-1.0, None)),
    ("safe_div(a, b)", {"a": 1, "b": 0}, Evaluation(0.0, None)),
    ("where(a > 0, a, 0)", {"a": -3}, Evaluation(0.0, None)),
    ("coalesce(a, b, 0)", {"a": None, "b": None}, Evaluation(0.0, None)),
    ("coalesce(a, b)", {"a": None, "b": None}, Evaluation(None, "missing input: a")),
])
def test_through_formulas_scalar(text, ns, expected):
    assert compile_formula(text, functions=FUNCS).evaluate(ns) == expected


def test_through_formulas_array_reasons():
    formula = compile_formula("sqrt(a) + exp(b) + log(c)", functions=FUNCS)
    result = formula.evaluate({"a": np.array([4.0, -1.0, 4.0, 4.0]),
                               "b": np.array([0.0, 0.0, 1000.0, 0.0]),
                               "c": np.array([1.0, 1.0, 1.0, 0.0])})
    np.testing.assert_array_equal(result.value, [3.0, NAN, NAN, NAN])
    assert list(result.reason) == [None, "math domain error", "result is not finite",
                                   "math domain error"]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_builtin_works_in_scalar_and_array_mode_alike(name):
    lo, hi = EXPECTED[name]
    count = max(lo, min(hi or 3, 3))
    args = ", ".join(f"x{i}" for i in range(count))
    formula = compile_formula(f"{name}({args})", functions=FUNCS)
    rng = np.random.default_rng(7)
    data = {f"x{i}": rng.uniform(0.5, 3.0, 50) for i in range(count)}
    data["x0"][:5] = np.nan
    vector = formula.evaluate(data)
    for i in range(50):
        one = formula.evaluate({k: float(v[i]) for k, v in data.items()})
        got = vector.value[i]
        if one.value is None:
            assert np.isnan(got) and vector.reason[i] == one.reason, (i, one, got)
        else:
            assert got == pytest.approx(one.value), (i, one, got)
            assert vector.reason[i] is None
