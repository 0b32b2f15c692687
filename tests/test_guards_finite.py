"""The non-finite check of the array trees (``_guards.all_finite``) against ``np.isfinite``.

It replaced a BLAS dot product with a sum (issue 11): it must never call an array with a NaN
or an infinity finite, and may call a finite array non-finite only when its sum overflows
(the caller then looks slice by slice, so the answer stays exact).
"""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from kpiforge._formulas import compile_formula, default_functions
from kpiforge._guards import all_finite

ELEMENTS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([np.nan, np.inf, -np.inf, 1.7e308, -1.7e308, 0.0, -0.0, 1.0]),
)


@given(st.lists(ELEMENTS, min_size=0, max_size=50))
def test_all_finite_is_isfinite_all_unless_the_sum_overflows(items):
    x = np.array(items, dtype=np.float64)
    exact = bool(np.isfinite(x).all())
    with np.errstate(all="ignore"):
        got = all_finite(x)
        overflows = exact and not np.isfinite(np.add.reduce(x))
    if not exact:
        assert got is False
    else:
        assert got is (not overflows)


def test_overflowing_sum_of_finite_slices_gives_their_values():
    # 1e308 + 1e308 overflows the check's sum: the values are still finite and kept
    formula = compile_formula("a * 1", functions=default_functions())
    ev = formula.evaluate({"a": np.array([1e308, 1e308, 2.0])})
    assert ev.value.tolist() == [1e308, 1e308, 2.0]
    assert ev.reason.tolist() == [None, None, None]


def test_an_infinity_among_finite_slices_is_found():
    formula = compile_formula("a / b", functions=default_functions())
    ev = formula.evaluate({"a": np.array([1.0, 1.0, 3.0]), "b": np.array([2.0, 0.0, 1.0])})
    assert ev.value[0] == 0.5 and ev.value[2] == 3.0 and np.isnan(ev.value[1])
    assert [None if r is None else r.code for r in ev.reason] == [None, "division_by_zero", None]
