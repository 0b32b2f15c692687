"""Formula compilation and evaluation: semantics, null reasons, and the asteval traps."""

from __future__ import annotations

import ast
import json
import math
import threading

import numpy as np
import pytest
from asteval import Interpreter

from kpiforge import _formulas
from kpiforge._formulas import (
    Evaluation,
    Formula,
    FunctionSpec,
    compile_formula,
    default_functions,
    function_specs,
)
from kpiforge._plugins import load_plugins
from kpiforge.errors import FormulaError, InputError

FUNCS = function_specs(load_plugins().functions)
NAN = float("nan")


def compile_(text: str, functions=None) -> Formula:
    return compile_formula(text, functions=FUNCS if functions is None else functions)


def scalar(text: str, **ns) -> Evaluation:
    return compile_(text).evaluate(ns)


# ------------------------------------------------------------------ operators and precedence

ARITHMETIC = [
    ("1 + 2", {}, 3.0),
    ("7 - 10", {}, -3.0),
    ("6 * 7", {}, 42.0),
    ("7 / 2", {}, 3.5),
    ("7 // 2", {}, 3.0),
    ("-7 // 2", {}, -4.0),
    ("7 % 3", {}, 1.0),
    ("-7 % 3", {}, 2.0),
    ("2 ** 10", {}, 1024.0),
    ("2 ** -1", {}, 0.5),
    ("-3", {}, -3.0),
    ("+3", {}, 3.0),
    ("--3", {}, 3.0),
    ("-x", {"x": 2.0}, -2.0),
    ("1 + 2 * 3", {}, 7.0),
    ("(1 + 2) * 3", {}, 9.0),
    ("2 * 3 ** 2", {}, 18.0),
    ("-2 ** 2", {}, -4.0),  # Python precedence: -(2 ** 2)
    ("2 ** 3 ** 2", {}, 512.0),  # right-associative
    ("10 - 4 - 3", {}, 3.0),  # left-associative
    ("100 / 10 / 5", {}, 2.0),
    ("1.5e3 + 0.5", {}, 1500.5),
    ("1_000 * 2", {}, 2000.0),
    ("clicks / impressions * 100", {"clicks": 5, "impressions": 200}, 2.5),
    ("(a - b) / c * 100", {"a": 120, "b": 100, "c": 100}, 20.0),
    ("revenue_per_customer * gross_margin / (churn / 100)",
     {"revenue_per_customer": 50.0, "gross_margin": 0.4, "churn": 5.0}, 400.0),
]

LOGIC = [
    ("1 < 2", {}, 1.0),
    ("2 < 1", {}, 0.0),
    ("1 <= 1", {}, 1.0),
    ("1 == 1.0", {}, 1.0),
    ("1 != 1", {}, 0.0),
    ("3 >= 4", {}, 0.0),
    ("1 < x < 3", {"x": 2}, 1.0),
    ("1 < x < 3", {"x": 3}, 0.0),
    ("1 < x < 3 < y", {"x": 2, "y": 2}, 0.0),
    ("x > 0 and y > 0", {"x": 1, "y": 1}, 1.0),
    ("x > 0 and y > 0", {"x": 1, "y": -1}, 0.0),
    ("x > 0 or y > 0", {"x": -1, "y": 1}, 1.0),
    ("x or y", {"x": 0, "y": 5}, 1.0),  # boolean, not Python's "returns an operand"
    ("x and y", {"x": 3, "y": 5}, 1.0),
    ("not x", {"x": 0}, 1.0),
    ("not x", {"x": 2}, 0.0),
    ("not x > 1 and y", {"x": 0, "y": 1}, 1.0),
    ("a if c else b", {"a": 1, "b": 2, "c": 1}, 1.0),
    ("a if c else b", {"a": 1, "b": 2, "c": 0}, 2.0),
    ("1 if x > 10 else 2 if x > 5 else 3", {"x": 7}, 2.0),
    ("(x > 0) * 100", {"x": 3}, 100.0),
    ("(x > 0) + (y > 0)", {"x": 3, "y": 3}, 2.0),
]


@pytest.mark.parametrize("text, ns, expected", ARITHMETIC + LOGIC)
def test_scalar_semantics(text, ns, expected):
    result = compile_(text).evaluate(ns)
    assert result == Evaluation(expected, None)
    assert type(result.value) is float


@pytest.mark.parametrize("text, ns, expected", ARITHMETIC + LOGIC)
def test_array_mode_matches_scalar_mode(text, ns, expected):
    formula = compile_(text)
    arrays = {k: np.array([v, v, v], dtype=float) for k, v in ns.items()}
    result = formula.evaluate(arrays, size=3)
    assert isinstance(result.value, np.ndarray) and result.value.dtype == np.float64
    np.testing.assert_array_equal(result.value, [expected] * 3)
    assert result.reason.dtype == object and list(result.reason) == [None] * 3


ELEMENTWISE = [
    # formula, inputs, expected per slice (NaN = null)
    ("a if c else b", {"a": [1, 2, 3], "b": [10, 20, 30], "c": [1, 0, 1]}, [1, 20, 3]),
    ("where(c, a, b)", {"a": [1, 2, 3], "b": [10, 20, 30], "c": [1, 0, 1]}, [1, 20, 3]),
    ("x > 0 and y > 0", {"x": [1, 1, -1], "y": [1, -1, 1]}, [1, 0, 0]),
    ("x > 0 or y > 0", {"x": [1, -1, -1], "y": [-1, 1, -1]}, [1, 1, 0]),
    ("not x", {"x": [0, 1, 2]}, [1, 0, 0]),
    ("1 < x < 3", {"x": [1, 2, 3]}, [0, 1, 0]),
    ("0 <= x <= y < 10", {"x": [0, 5, 5], "y": [1, 4, 10]}, [1, 0, 0]),
    ("x / y if y != 0 else 0", {"x": [1, 4, 9], "y": [0, 2, 3]}, [0, 2, 3]),
    ("y != 0 and x / y > 1", {"x": [1, 4, 1], "y": [0, 2, 3]}, [0, 1, 0]),
    ("min(x, y)", {"x": [1, 5, 3], "y": [2, 4, 3]}, [1, 4, 3]),
    ("x * 2", {"x": [1, 2, 3]}, [2, 4, 6]),
]


@pytest.mark.parametrize("text, ns, expected", ELEMENTWISE)
def test_elementwise_constructs(text, ns, expected):
    formula = compile_(text)
    arrays = {k: np.array(v, dtype=float) for k, v in ns.items()}
    result = formula.evaluate(arrays)
    np.testing.assert_array_equal(result.value, np.array(expected, dtype=float))
    for i, want in enumerate(expected):  # and each slice agrees with scalar mode
        one = formula.evaluate({k: float(v[i]) for k, v in arrays.items()})
        assert one.value == want


def test_lazy_branches_in_scalar_mode_do_not_fail():
    # the unused branch divides by zero: scalar mode must not evaluate it
    assert scalar("x / y if y != 0 else 0", x=1, y=0) == Evaluation(0.0, None)
    assert scalar("y != 0 and x / y > 1", x=1, y=0) == Evaluation(0.0, None)
    assert scalar("y == 0 or x / y > 1", x=1, y=0) == Evaluation(1.0, None)


# ------------------------------------------------------------------ names and constants

@pytest.mark.parametrize("text, names", [
    ("clicks / impressions * 100", {"clicks", "impressions"}),
    ("min(a, b) + max(a, c)", {"a", "b", "c"}),
    ("coalesce(x, 0)", {"x"}),
    ("1 + 2", set()),
    ("a if b > c else d", {"a", "b", "c", "d"}),
    ("x and not y", {"x", "y"}),
    ("round(ctr, 2)", {"ctr"}),
])
def test_names_are_the_free_variables_not_functions(text, names):
    formula = compile_(text)
    assert formula.names == frozenset(names)
    assert isinstance(formula.names, frozenset)
    assert formula.text == text


@pytest.mark.parametrize("text", ["7 // 2", "2 ** 3", "10 % 4", "1 + 1", "3", "-3", "1000000"])
def test_constants_are_floats_at_compile_time(text):
    from kpiforge._formula_run import prepare

    formula = compile_(text)  # lowered on the first evaluation, or by prepare
    consts = [n for n in ast.walk(prepare(formula)._scalar_node) if isinstance(n, ast.Constant)]
    assert consts and all(type(c.value) is float for c in consts)
    assert type(formula.evaluate({}).value) is float


def test_huge_integer_constant_is_rejected():
    with pytest.raises(FormulaError) as info:
        compile_("1" + "0" * 400)
    assert "too large" in info.value.message


# ------------------------------------------------------------------ result types

def test_scalar_results_are_plain_floats_and_json_serialisable():
    for ns in ({"x": 2}, {"x": np.float64(2)}, {"x": np.int64(2)}, {"x": True}, {"x": 2.0}):
        result = scalar("x * 3 > 1", **ns)
        assert type(result.value) is float
        json.dumps({"value": result.value, "reason": result.reason})
    bad = scalar("x / 0", x=1)
    assert json.dumps({"value": bad.value, "reason": bad.reason}) == \
        '{"value": null, "reason": "division by zero"}'


def test_numpy_float64_from_a_function_becomes_float():
    funcs = dict(FUNCS)
    funcs["np_twice"] = FunctionSpec("np_twice", lambda x: np.float64(x) * 2, 1, 1)
    result = compile_formula("np_twice(x)", functions=funcs).evaluate({"x": 2.0})
    assert type(result.value) is float and result.value == 4.0


def test_array_mode_types():
    result = compile_("x * 2").evaluate({"x": np.array([1, 2, 3])})  # int array converted
    assert result.value.dtype == np.float64
    assert result.reason.dtype == object
    result = compile_("x > 1").evaluate({"x": np.array([1.0, 2.0])})
    assert result.value.dtype == np.float64
    np.testing.assert_array_equal(result.value, [0.0, 1.0])


def test_scalars_broadcast_in_array_mode():
    result = compile_("clicks / budget").evaluate({"clicks": np.array([10.0, 20.0]),
                                                   "budget": 10})
    np.testing.assert_array_equal(result.value, [1.0, 2.0])
    result = compile_("budget * 2").evaluate({"budget": 5.0}, size=3)
    np.testing.assert_array_equal(result.value, [10.0, 10.0, 10.0])
    result = compile_("1 / budget").evaluate({"budget": 0.0}, size=2)
    assert np.isnan(result.value).all()
    assert list(result.reason) == ["division by zero"] * 2
    # an array elsewhere in the namespace selects array mode as well
    result = compile_("budget * 2").evaluate({"budget": 5.0, "other": np.zeros(4)})
    np.testing.assert_array_equal(result.value, [10.0] * 4)


def test_constant_formula_in_array_mode():
    result = compile_("42").evaluate({}, size=3)
    np.testing.assert_array_equal(result.value, [42.0] * 3)


def test_unequal_lengths_are_a_programming_error():
    with pytest.raises(InputError):
        compile_("a + b").evaluate({"a": np.zeros(3), "b": np.zeros(4)})
    with pytest.raises(InputError):
        compile_("a + 1").evaluate({"a": np.zeros(3)}, size=4)
    with pytest.raises(InputError):
        compile_("a + 1").evaluate({"a": "12"})
    with pytest.raises(InputError):
        compile_("a + 1").evaluate({"a": np.array(["1", "2"])})
    with pytest.raises(InputError):
        compile_("a + 1").evaluate({"a": np.zeros((2, 2))})


def test_inputs_are_not_modified_or_aliased():
    x = np.array([1.0, np.nan, np.inf])
    before = x.copy()
    result = compile_("x").evaluate({"x": x})
    np.testing.assert_array_equal(x, before)
    assert result.value is not x
    assert list(result.reason) == [None, "missing input: x", "result is not finite"]


def test_object_arrays_with_none_are_missing():
    result = compile_("x + 1").evaluate({"x": np.array([1, None, 3], dtype=object)})
    np.testing.assert_array_equal(result.value, [2.0, np.nan, 4.0])
    assert list(result.reason) == [None, "missing input: x", None]


# ------------------------------------------------------------------ null reasons

SCALAR_REASONS = [
    ("a + b", {"a": None, "b": 1}, "missing input: a"),
    ("a + b", {"a": NAN, "b": 1}, "missing input: a"),
    ("a + b", {"b": 1}, "missing input: a"),  # absent from the namespace
    ("z + a", {"z": None, "a": None}, "missing input: a"),  # first in sorted order
    ("a / b", {"a": None, "b": 0}, "missing input: a"),  # missing wins over the division
    ("a / b", {"a": 1, "b": 0}, "division by zero"),
    ("a // b", {"a": 1, "b": 0}, "division by zero"),
    ("a % b", {"a": 1, "b": 0}, "division by zero"),
    ("0 ** -1", {}, "division by zero"),
    ("x * 1e308 * 10", {"x": 1}, "result is not finite"),
    ("10 ** 400", {}, "result is not finite"),
    ("10 ** 10 ** 10", {}, "result is not finite"),
    ("x - x", {"x": float("inf")}, "result is not finite"),
    ("(-8) ** 0.5", {}, "math domain error"),
    ("sqrt(x)", {"x": -1}, "math domain error"),
    ("log(x)", {"x": -1}, "math domain error"),
    ("log(x)", {"x": 0}, "math domain error"),
    ("exp(x)", {"x": 1000}, "result is not finite"),
]


@pytest.mark.parametrize("text, ns, reason", SCALAR_REASONS)
def test_scalar_null_reasons(text, ns, reason):
    assert compile_(text).evaluate(ns) == Evaluation(None, reason)


@pytest.mark.parametrize("text, ns", [
    ("coalesce(a, 0) + b", {"a": None, "b": 1}),
    ("coalesce(a, b, 7)", {"a": NAN}),
    ("safe_div(a, b, 0)", {"a": 1, "b": 0}),
])
def test_finite_results_carry_no_reason_even_with_missing_inputs(text, ns):
    result = compile_(text).evaluate(ns)
    assert result.value is not None and result.reason is None


def test_coalesce_rescues_missing_inputs():
    assert scalar("coalesce(a, b) * 2", a=None, b=4) == Evaluation(8.0, None)
    assert scalar("coalesce(a, b) * 2", a=1, b=4) == Evaluation(2.0, None)
    assert scalar("coalesce(a, b) * 2", a=None, b=None) == Evaluation(None, "missing input: a")
    result = compile_("coalesce(a, b)").evaluate({"a": np.array([1.0, np.nan, np.nan]),
                                                  "b": np.array([9.0, 2.0, np.nan])})
    np.testing.assert_array_equal(result.value, [1.0, 2.0, np.nan])
    assert list(result.reason) == [None, None, "missing input: a"]


def test_division_by_zero_per_slice():
    formula = compile_("clicks / impressions * 100")
    result = formula.evaluate({"clicks": np.array([1.0, 2.0, 3.0]),
                               "impressions": np.array([10.0, 0.0, 30.0])})
    np.testing.assert_array_equal(result.value, [10.0, np.nan, 10.0])
    assert list(result.reason) == [None, "division by zero", None]


def test_per_slice_reasons_mixed():
    formula = compile_("sqrt(a) / b + c")
    result = formula.evaluate({
        "a": np.array([4.0, -1.0, 4.0, np.nan, 4.0, 1e308]),
        "b": np.array([2.0, 1.0, 0.0, 1.0, 1.0, 1e-308]),
        "c": np.array([0.0, 0.0, 0.0, 0.0, np.nan, 0.0]),
    })
    np.testing.assert_array_equal(result.value, [1.0] + [np.nan] * 5)
    assert list(result.reason) == [None, "math domain error", "division by zero",
                                   "missing input: a", "missing input: c",
                                   "result is not finite"]


def test_array_mode_is_vectorised_and_explains_only_bad_slices():
    calls: list[object] = []

    def spy(x):
        calls.append(type(x))
        return x

    funcs = dict(FUNCS)
    funcs["spy"] = FunctionSpec("spy", spy, 1, 1)
    formula = compile_formula("spy(a) / b", functions=funcs)
    n = 10_000
    b = np.ones(n)
    b[[3, 7]] = 0.0
    result = formula.evaluate({"a": np.ones(n), "b": b})
    # one vectorised call, then one vectorised explanation of the bad slices only
    assert calls == [np.ndarray, np.ndarray]
    assert result.reason[3] == result.reason[7] == "division by zero"
    assert int(np.isnan(result.value).sum()) == 2


def test_non_vectorisable_function_falls_back_per_slice():
    funcs = dict(FUNCS)
    funcs["py_only"] = FunctionSpec("py_only", lambda x: math.floor(x), 1, 1)
    result = compile_formula("py_only(x) / y", functions=funcs).evaluate(
        {"x": np.array([1.5, 2.5]), "y": np.array([1.0, 0.0])})
    np.testing.assert_array_equal(result.value, [1.0, np.nan])
    assert list(result.reason) == [None, "division by zero"]


def test_plugin_function_errors_become_reasons():
    def boom(x):
        raise RuntimeError("nope")

    funcs = dict(FUNCS)
    funcs["boom"] = FunctionSpec("boom", boom, 1, 1)
    result = compile_formula("boom(x)", functions=funcs).evaluate({"x": 1.0})
    assert result.value is None and "RuntimeError" in result.reason


# ------------------------------------------------------------------ the asteval traps

def test_trap_reused_interpreter_keeps_previous_symbols():
    # the trap, in bare asteval: a missing input silently takes the previous value
    bare = Interpreter(minimal=True)
    node = bare.parse("a + 1")
    bare.symtable["a"] = 41.0
    assert bare.run(node) == 42.0
    bare.symtable.update({})  # the next evaluation "has no a"
    assert bare.run(node) == 42.0
    # ours: every evaluation starts from a fresh table
    formula = compile_("a + 1")
    assert formula.evaluate({"a": 41}) == Evaluation(42.0, None)
    assert formula.evaluate({}) == Evaluation(None, "missing input: a")
    assert compile_("b + 1").evaluate({}) == Evaluation(None, "missing input: b")


def test_trap_interpreter_keeps_assignments_even_in_minimal_mode():
    bare = Interpreter(minimal=True)
    bare.eval("secret = 1")
    assert bare.symtable["secret"] == 1
    # ours: assignments never compile, and nothing survives an evaluation
    with pytest.raises(FormulaError):
        compile_("secret = 1")
    compile_("x + 1").evaluate({"x": 1.0})
    assert _formulas._interpreter().symtable == {}


def test_trap_run_returns_none_after_an_error():
    bare = Interpreter(minimal=True)
    good = bare.parse("1 + 1")
    bare.eval("1 / 0", show_errors=False)
    assert bare.run(good) is None  # stuck until someone clears interp.error
    # ours keeps working after failures, on the same thread's interpreter
    for _ in range(3):
        assert scalar("a / b", a=1, b=0) == Evaluation(None, "division by zero")
        assert scalar("a / b", a=1, b=2) == Evaluation(0.5, None)
        assert scalar("sqrt(a)", a=-1) == Evaluation(None, "math domain error")
        assert scalar("sqrt(a)", a=4) == Evaluation(2.0, None)


def test_trap_eval_node_raise_errors_hides_the_real_error():
    bare = Interpreter(minimal=True)
    node = bare.parse("1 / 0")
    with pytest.raises(AttributeError):
        bare.eval(node, raise_errors=True)
    # ours reports what actually happened
    assert scalar("1 / x", x=0).reason == "division by zero"


def test_trap_minimal_symtable_has_open_and_file_readers_ours_does_not():
    bare = Interpreter(minimal=True)
    for dangerous in ("open", "print", "loadtxt", "fromfile", "genfromtxt"):
        assert dangerous in bare.symtable
    seen: list[set[str]] = []

    def peek(x):
        seen.append(set(_formulas._interpreter().symtable))
        return x

    funcs = dict(FUNCS)
    funcs["peek"] = FunctionSpec("peek", peek, 1, 1)
    compile_formula("peek(a) + max(b, 1)", functions=funcs).evaluate({"a": 1.0, "b": 2.0,
                                                                      "c": 3.0})
    # besides the formula's own functions and inputs, only internal guards ("_" names,
    # which no formula can call)
    assert [{n for n in names if not n.startswith("_")} for names in seen] == \
        [{"peek", "max", "a", "b"}]
    assert all(n in _formulas._SCALAR_INTERNALS for n in seen[0] if n.startswith("_"))
    compile_formula("peek(a) + max(b, 1)", functions=funcs).evaluate(
        {"a": np.ones(2), "b": np.ones(2)})
    assert {n for n in seen[1] if not n.startswith("_")} == {"peek", "max", "a", "b"}
    assert all(n in _formulas._ARRAY_INTERNALS for n in seen[1] if n.startswith("_"))


def test_trap_code_text_and_errors_do_not_grow():
    interp = _formulas._interpreter()
    good, bad = compile_("a * 2 + b"), compile_("a / b")
    for i in range(10_000):
        good.evaluate({"a": float(i), "b": 1.0})
        bad.evaluate({"a": 1.0, "b": 0.0})
    assert interp.code_text == []
    assert interp.error == []
    assert interp.symtable == {}


def test_thread_safety_eight_threads_different_inputs():
    formula = compile_("(a - b) / c * 100 if c != 0 else -1")
    vector = compile_("a * b + c")
    errors: list[str] = []
    barrier = threading.Barrier(8)

    def worker(k: int) -> None:
        barrier.wait()
        for i in range(2_000):
            a, b, c = float(k * 1000 + i), float(k), float(i % 7)
            want = (a - b) / c * 100 if c != 0 else -1.0
            got = formula.evaluate({"a": a, "b": b, "c": c})
            if got != Evaluation(want, None):
                errors.append(f"thread {k} step {i}: {got} != {want}")
            if i % 50 == 0:
                arr = np.arange(100, dtype=float) + k
                res = vector.evaluate({"a": arr, "b": float(k), "c": arr})
                if not np.array_equal(res.value, arr * k + arr):
                    errors.append(f"thread {k} step {i}: array mismatch")

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_asteval_refuses_what_the_allow_list_would_refuse():
    # defence in depth: a tree that skipped our checker still cannot touch attributes
    node = ast.parse("x.__class__", mode="eval").body
    formula = Formula("x.__class__", {"x"}, (), node, node, node, {})
    result = formula.evaluate({"x": 1.0})
    assert result.value is None and "NotImplementedError" in result.reason


# ------------------------------------------------------------------ API details

def test_formula_is_immutable_and_not_picklable():
    formula = compile_("a + 1")
    with pytest.raises(AttributeError):
        formula.text = "b"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        formula.names = frozenset()  # type: ignore[misc]
    import pickle
    with pytest.raises(TypeError):
        pickle.dumps(formula)


def test_function_spec_and_evaluation_are_frozen():
    spec = FunctionSpec("f", abs, 1, 1, "doc")
    with pytest.raises(AttributeError):
        spec.name = "g"  # type: ignore[misc]
    ev = Evaluation(1.0, None)
    with pytest.raises(AttributeError):
        ev.value = 2.0  # type: ignore[misc]


def test_all_good_reason_array_is_read_only():
    result = compile_("a + 1").evaluate({"a": np.zeros(5)})
    assert not result.reason.flags.writeable


def test_default_functions_matches_plugins():
    assert set(default_functions()) >= set(FUNCS)


def test_large_arrays_use_the_in_place_tree_and_agree():
    formula = compile_("(a - b) / c * 100 + -a ** 2")
    rng = np.random.default_rng(0)
    n = _formulas._INPLACE_FROM + 5
    data = {k: rng.uniform(1, 10, n) for k in "abc"}
    before = {k: v.copy() for k, v in data.items()}
    got = formula.evaluate(data).value
    want = (data["a"] - data["b"]) / data["c"] * 100 + -data["a"] ** 2
    np.testing.assert_allclose(got, want)
    for k in data:  # in-place arithmetic must never write into an input
        np.testing.assert_array_equal(data[k], before[k])
