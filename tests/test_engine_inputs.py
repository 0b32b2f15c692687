"""Engine.evaluate's input checking (the deep-chain case is in test_formulas_hostile.py)."""

from __future__ import annotations

import datetime

import numpy as np
import pytest

from kpiforge import Engine, InputError


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    path = tmp_path_factory.mktemp("defs") / "kpis.yaml"
    path.write_text(
        "kpis:\n"
        "  - {id: doubled, name: Doubled, formula: x * 2, inputs: {x: {unit: count}},"
        " unit: count, direction: higher_is_better}\n")
    return Engine.load(path)


@pytest.mark.parametrize("value, fragment", [
    (10 ** 400, "input 'x' is too large for a number: an integer of about 401 digits"),
    (-(10 ** 5000), "input 'x' is too large for a number: an integer of about 5001 digits"),
    ([1, 10 ** 400], "input 'x' is too large for a number"),
    (1 + 2j, "input 'x' is not a number (complex)"),
    (np.array([1 + 2j, 3]), "input 'x' is not numeric: its values are complex numbers"),
    (np.array(["2026-01-01"], dtype="datetime64[D]"),
     "input 'x' is not numeric: its values are dates (datetime64)"),
    (np.array([5], dtype="timedelta64[s]"),
     "input 'x' is not numeric: its values are durations (timedelta64)"),
    (np.datetime64("2026-01-01"), "input 'x' is not a number"),
    (datetime.date(2026, 1, 1), "input 'x' is not a number (date)"),
    (np.array(["1", "2"], dtype=object), "input 'x' is text, not a number: '1' (at index 0)"),
    (np.array([1.0, 1j], dtype=object), "input 'x' is not a number (complex): 1j (at index 1)"),
    (["1", "2"], "got text '1'"),
    (np.array(["1"]), "got text '1'"),
    ("12", "input 'x': expected a number, got text '12'"),
], ids=lambda v: repr(v)[:30] if not isinstance(v, int) else f"int{v.bit_length()}bits")
def test_inputs_that_are_not_finite_numbers_are_input_errors(engine, value, fragment):
    with pytest.raises(InputError) as info:
        engine.evaluate({"x": value}, kpis=["doubled"])
    assert fragment in str(info.value)


@pytest.mark.parametrize("value, expected", [
    (10 ** 300, 2e300),
    (np.int64(4), 8.0),
    (True, 2.0),
    (np.array(3.0), 6.0),
])
def test_numbers_of_every_numeric_kind_are_accepted(engine, value, expected):
    assert engine.evaluate({"x": value}, kpis=["doubled"])["doubled"].value == expected


@pytest.mark.parametrize("value, reasons", [
    (float("inf"), "input is not finite: x"),
    (float("-inf"), "input is not finite: x"),
    ([1.0, float("-inf"), None], [None, "input is not finite: x", "missing input: x"]),
    (np.array([np.inf, 2.0]), ["input is not finite: x", None]),
])
def test_infinite_inputs_are_data_null_with_a_reason(engine, value, reasons):
    result = engine.evaluate({"x": value}, kpis=["doubled"])["doubled"]
    if isinstance(reasons, str):
        assert (result.value, result.reason) == (None, reasons)
    else:
        assert list(result.reason) == reasons
        assert [v if v == v else None for v in result.value] == \
            [None if r else 2 * float(value[i]) for i, r in enumerate(reasons)]


def test_an_infinite_input_is_named_through_dependencies(tmp_path):
    path = tmp_path / "kpis.yaml"
    path.write_text(
        "kpis:\n"
        "  - {id: a, name: A, formula: x * 2, inputs: {x: {unit: count}}, unit: count,"
        " direction: higher_is_better}\n"
        "  - {id: b, name: B, formula: a + 1, unit: count, direction: higher_is_better}\n")
    engine = Engine.load(path)
    assert engine.evaluate({"x": float("inf")})["b"].reason == \
        "depends on a: input is not finite: x"


@pytest.mark.parametrize("array", [
    np.array([1, 2], dtype=np.int32), np.array([1, 2], dtype=np.uint8),
    np.array([True, False]), np.array([1.0, 2.0], dtype=np.float32),
    np.array([1, None], dtype=object),
])
def test_numeric_arrays_are_accepted(engine, array):
    value = engine.evaluate({"x": array}, kpis=["doubled"])["doubled"].value
    assert value[0] == 2.0
