"""A formula compiled to SQL (``kpiforge sql``) and the same formula evaluated by kpiforge agree
on every value, null included: random formulas over random inputs, the SQL run on DuckDB."""

from __future__ import annotations

import math

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlglot import exp

from kpiforge._formula_check import check_formula
from kpiforge._formulas import compile_formula, function_specs
from kpiforge._kpi_sql import _BUILTIN_PLUGIN, _Compiler
from kpiforge._plugins import load_plugins
from kpiforge.errors import RunError

PLUGINS = load_plugins()
SPECS = function_specs(PLUGINS.functions)
BUILTIN = frozenset(n for n, r in PLUGINS.functions.items() if r.plugin == _BUILTIN_PLUGIN)
NAMES = ("a", "b", "c")
CON = duckdb.connect()

leaves = st.one_of(st.sampled_from(NAMES), st.sampled_from(["0", "1", "2", "0.5", "3"]))


def _grow(children):
    pair = st.tuples(children, children)
    return st.one_of(
        st.builds(lambda p, op: f"({p[0]} {op} {p[1]})", pair, st.sampled_from(["+", "-", "*", "/", "//"])),
        st.builds(lambda p, op: f"({p[0]} {op} {p[1]})", pair, st.sampled_from(["<", ">=", "==", "!="])),
        st.builds(lambda p, op: f"({p[0]} {op} {p[1]})", pair, st.sampled_from(["and", "or"])),
        st.builds(lambda t: f"({t[0]} if {t[1]} else {t[2]})", st.tuples(children, children, children)),
        st.builds(lambda t, f: f"{f}({t[0]}, {t[1]})", pair,
                  st.sampled_from(["min", "max", "coalesce", "safe_div"])),
        st.builds(lambda t: f"where({t[0]}, {t[1]}, {t[2]})", st.tuples(children, children, children)),
        st.builds(lambda x, f: f"{f}({x})", children, st.sampled_from(["abs", "sqrt", "log", "exp"])),
        st.builds(lambda x: f"(not {x})", children),
        st.builds(lambda x: f"(-{x})", children),
        st.builds(lambda x: f"({x} ** 2)", children),
    )


formulas = st.recursive(leaves, _grow, max_leaves=8)
values = st.sampled_from([-2.0, -1.0, 0.0, 0.5, 1.0, 3.0, None])


def run_value(text: str, inputs: dict) -> float | None:
    formula = compile_formula(text, functions=SPECS)
    if any(v is None for v in inputs.values()):  # a run leaves a missing input out
        inputs = {k: v for k, v in inputs.items() if v is not None}
    return formula.evaluate(inputs).value


def sql_value(text: str, inputs: dict) -> float | None:
    tree, _, _ = check_formula(text, SPECS)
    expression = _Compiler("k", {n: exp.column(n) for n in NAMES}, BUILTIN).number(tree)
    row = ", ".join(f"CAST(? AS DOUBLE) AS {n}" for n in NAMES)
    sql = f"SELECT CAST({expression.sql(dialect='duckdb')} AS DOUBLE) FROM (SELECT {row})"
    value = CON.execute(sql, [inputs[n] for n in NAMES]).fetchone()[0]
    return None if value is None or not math.isfinite(value) else value


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(formulas, values, values, values)
def test_sql_and_the_engine_agree(text, a, b, c):
    inputs = {"a": a, "b": b, "c": c}
    try:
        expected = run_value(text, inputs)
    except Exception:  # a formula the engine itself refuses (units, arity): nothing to compare
        return
    try:
        got = sql_value(text, inputs)
    except RunError:
        pytest.fail(f"{text}: refused")
    if expected is None:
        assert got is None, (text, inputs, got)
    else:
        assert got == pytest.approx(expected, rel=1e-9, abs=1e-12), (text, inputs, got, expected)


@pytest.mark.parametrize("text, why", [
    ("a % b", "'a % b'"), ("a ** b", "a power other than"), ("round(a, 1)", "round()"),
])
def test_what_has_no_faithful_sql_is_refused(text, why):
    tree, _, _ = check_formula(text, SPECS)
    with pytest.raises(RunError, match=f"KPI 'k': .*{why.replace('(', '.').replace(')', '.')}"):
        _Compiler("k", {n: exp.column(n) for n in NAMES}, BUILTIN).number(tree)
