"""Units: each formula's unit is inferred from its inputs and the KPIs it uses, and checked
against the declared one; mixing units in +, -, comparisons, coalesce... is a located error."""

import ast
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from fractions import Fraction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kpiforge import DefinitionError
from kpiforge._definitions import load_catalog
from kpiforge._formula_check import MAX_DEPTH, FunctionSpec
from kpiforge._formulas import compile_formula, default_functions
from kpiforge._unit_check import formula_unit
from kpiforge._units import NUMBER, RATIO, Unit, UnitError, infer_unit
from tests.test_formulas_properties import FUNCS, NAMES, _formulas_strategy

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "tests/fixtures/golden"
FUNCTIONS = default_functions()

UNITS = {  # input name -> unit as written in YAML
    "clicks": "count", "impressions": "count", "sessions": "count", "pageviews": "count",
    "cost": "currency", "revenue": "currency", "spend_usd": {"currency": "USD"},
    "duration": "seconds", "answer": "score", "margin": "ratio", "churn": "percent",
    "share": "percent", "customers": {"count": "customers"}, "lost": {"count": "customers"},
    "orders": {"count": "orders"}, "mystery": None,
}


def write_kpi(folder: Path, formula: str, unit, extra=()):
    """One KPI file using the inputs of ``formula`` from UNITS, plus ``extra`` KPIs."""
    used = {n.id for n in ast.walk(ast.parse(formula, mode="eval")) if isinstance(n, ast.Name)}
    names = [n for n in UNITS if n in used]
    inputs = {n: ({} if UNITS[n] is None else {"unit": UNITS[n]}) for n in names}
    kpi = {"id": "k", "name": "K", "formula": formula, "unit": unit,
           "direction": "higher_is_better"}
    if inputs:
        kpi["inputs"] = inputs
    (folder / "k.yaml").write_text(yaml.safe_dump({"kpis": [kpi, *extra]}, sort_keys=False))


def diagnostics(folder: Path, functions=FUNCTIONS):
    try:
        return list(load_catalog([folder], functions=functions).diagnostics)
    except DefinitionError as exc:
        return list(exc.diagnostics)


CHURN_KPI = {"id": "churn_rate", "name": "Churn", "formula": "lost / customers * 100",
             "inputs": {"lost": {"unit": {"count": "customers"}},
                        "customers": {"unit": {"count": "customers"}}},
             "unit": "percent", "direction": "lower_is_better"}


@pytest.mark.parametrize("formula, unit, message", [
    # the acceptance cases
    ("clicks / impressions", "percent",
     "formula gives ratio (clicks / impressions); declared percent: multiply by 100"),
    ("cost + clicks", "currency",
     "cannot add currency EUR (cost) and count (clicks) in formula 'cost + clicks'"),
    ("clicks / impressions * 100", "ratio",
     "formula gives percent (clicks / impressions * 100); declared ratio: divide by 100"),
    ("pageviews / sessions", "count", "formula gives ratio (pageviews / sessions); declared count"),
    ("cost * 100", "currency", "formula gives currency EUR x 100 (cost * 100); declared currency EUR"),
    ("duration / sessions", "count", "formula gives seconds (duration / sessions); declared count"),
    ("cost - clicks * 2", "currency", "cannot subtract currency EUR (cost) and count (clicks * 2)"),
    # coalesce, min/max, clip, where, if/else, comparisons, and/or, safe_div's default
    ("coalesce(cost, clicks)", "currency",
     "cannot mix, in coalesce(), currency EUR (cost) and count (clicks)"),
    ("max(duration, sessions)", "seconds", "cannot mix, in max(), seconds (duration) and count (sessions)"),
    ("clip(churn, 0, margin)", "percent", "cannot mix, in clip(), percent (churn) and ratio (margin)"),
    ("where(clicks > 0, cost / clicks, clicks)", "currency",
     "cannot mix, in where(), currency EUR (cost / clicks) and count (clicks)"),
    ("cost if clicks > 0 else clicks", "currency",
     "cannot choose ('if ... else') between currency EUR (cost) and count (clicks)"),
    ("cost / clicks if cost > clicks else 0", "currency",
     "cannot compare currency EUR (cost) and count (clicks)"),
    ("clicks if 0 < margin < churn else 0", "count", "cannot compare ratio (margin) and percent (churn)"),
    ("safe_div(clicks, impressions, cost)", "ratio",
     "cannot mix, in safe_div(), ratio (safe_div(clicks, impressions, cost)) and currency EUR (cost)"),
    ("1 - churn", "ratio",  # a literal takes the other side's unit
     "formula gives percent (1 - churn); declared ratio: divide by 100"),
    ("margin + churn", "ratio", "cannot add ratio (margin) and percent (churn)"),
    ("answer + margin", "score", "cannot add score (answer) and ratio (margin)"),
    # counts that say what they count must count one thing to be added
    ("customers - orders", "count",
     "cannot subtract count of customers (customers) and count of orders (orders)"),
    # money in two currencies
    ("spend_usd / cost", "ratio",
     "cannot divide currency USD (spend_usd) by currency EUR (cost): money in two currencies"),
    ("spend_usd + cost", "currency", "cannot add currency USD (spend_usd) and currency EUR (cost)"),
    ("spend_usd * margin", "currency", "formula gives currency USD (spend_usd * margin); declared currency EUR"),
    ("cost ** margin", "currency", "cannot raise currency EUR (cost ** margin) to a power"),
])
def test_unit_contradictions_are_located_errors(tmp_path, formula, unit, message):
    write_kpi(tmp_path, formula, unit)
    found = [d for d in diagnostics(tmp_path) if d.code == "unit-mismatch"]
    assert len(found) == 1, found
    assert message in found[0].message
    assert found[0].is_error and found[0].field == "kpis[0].formula"
    assert found[0].line == 4  # kpis: / - id / name / formula


@pytest.mark.parametrize("formula, unit", [
    ("cost / clicks", "currency"),                       # CPC: currency per count
    ("clicks / impressions * 100", "percent"),           # CTR
    ("100 * clicks / impressions", "percent"),
    ("revenue * margin / (churn / 100)", "currency"),    # LTV
    ("revenue * margin / (churn_rate / 100)", "currency"),  # ... with churn a KPI
    ("revenue * margin / churn * 100", "currency"),
    ("duration / sessions", "seconds"),                  # average session duration
    ("pageviews / sessions", "ratio"),                   # pages per session
    ("lost / customers * 100", "percent"),
    ("(customers - lost) / customers * 100", "percent"),
    ("answer / clicks", "score"),                        # an average answer
    ("(clicks - impressions) / sessions * 100", "score"),  # NPS-like: a dimensionless score
    ("cost / clicks * clicks", "currency"),              # a count next to money cancels
    ("cost / impressions * 1000", "currency"),           # per thousand: a pure factor
    ("1 - churn / 100", "ratio"),
    ("100 - share", "percent"),
    ("0.01 * share", "ratio"),
    ("coalesce(cost, 0)", "currency"),
    ("min(cost, revenue) / max(revenue, cost)", "ratio"),
    ("safe_div(clicks, impressions, 0) * 100", "percent"),
    ("where(clicks > 0, cost / clicks, 0)", "currency"),
    ("cost / clicks if clicks > 0 and cost > 0 else 0", "currency"),
    ("sqrt(cost * revenue)", "currency"),
    ("(cost / clicks) ** 2 / revenue", "currency"),
    ("abs(round(cost - revenue, 2))", "currency"),
    ("log(clicks) / log(impressions)", "ratio"),
    ("clicks % 7", "count"),
    ("-cost", "currency"),
    ("not clicks", "ratio"),
    ("42", "currency"),                                  # a constant fits any unit
    ("mystery + clicks", "count"),                       # no unit declared: not checked
    ("mystery", "percent"),
    ("spend_usd / spend_usd", "ratio"),
])
def test_consistent_formulas_load_without_unit_diagnostics(tmp_path, formula, unit):
    write_kpi(tmp_path, formula, unit, extra=[CHURN_KPI])
    assert [str(d) for d in diagnostics(tmp_path) if d.code.startswith("unit")] == []


def test_the_mismatch_points_at_the_operand_that_breaks_the_rule(tmp_path):
    write_kpi(tmp_path, "cost + cost + clicks", "currency")
    (found,) = [d for d in diagnostics(tmp_path) if d.code == "unit-mismatch"]
    text = (tmp_path / "k.yaml").read_text().splitlines()[found.line - 1]
    assert text[found.column - 1:].startswith("clicks")


def test_a_kpi_used_in_a_formula_contributes_its_declared_unit(tmp_path):
    write_kpi(tmp_path, "churn_rate + margin", "ratio", extra=[CHURN_KPI])
    (found,) = [d for d in diagnostics(tmp_path) if d.code == "unit-mismatch"]
    assert "cannot add percent (churn_rate) and ratio (margin)" in found.message


def test_the_kpi_currency_is_the_currency_of_its_money_inputs(tmp_path):
    write_kpi(tmp_path, "spend_usd * margin", {"currency": "USD"})
    assert [d for d in diagnostics(tmp_path) if d.code.startswith("unit")] == []
    write_kpi(tmp_path, "spend_usd / revenue", "ratio")  # revenue in the KPI's currency: EUR
    assert [d.code for d in diagnostics(tmp_path)] == ["unit-mismatch"]


def test_a_project_currency_is_the_currency_of_plain_money(tmp_path):
    write_kpi(tmp_path, "cost / clicks", "currency")
    catalog = load_catalog([tmp_path], functions=FUNCTIONS, default_currency="JPY")
    assert catalog.diagnostics == ()
    unit = formula_unit(catalog.definitions["k"], catalog.formulas["k"], catalog.definitions,
                        FUNCTIONS, "JPY")
    assert str(unit) == "currency JPY"


def test_a_plugin_function_has_an_unknown_unit_and_skips_checks(tmp_path):
    functions = {**FUNCTIONS, "triple": FunctionSpec("triple", lambda x: 3 * x, 1, 1)}
    write_kpi(tmp_path, "triple(cost) + clicks", "percent")
    assert [d for d in diagnostics(tmp_path, functions) if d.code.startswith("unit")] == []
    # ... but its arguments are still checked
    write_kpi(tmp_path, "triple(cost + clicks)", "percent")
    assert [d.code for d in diagnostics(tmp_path, functions)] == ["unit-mismatch"]
    # and a plugin registering a built-in's name does not get the built-in's rule
    functions["min"] = FunctionSpec("min", lambda *a: min(a), 1, None)
    write_kpi(tmp_path, "min(cost, clicks)", "percent")
    assert [d for d in diagnostics(tmp_path, functions) if d.code.startswith("unit")] == []


def test_a_unit_no_declaration_names_is_not_checked_against_the_declaration(tmp_path):
    write_kpi(tmp_path, "clicks / cost", "ratio")  # clicks per euro: 1 per currency EUR
    assert diagnostics(tmp_path) == []
    catalog = load_catalog([tmp_path], functions=FUNCTIONS)
    unit = formula_unit(catalog.definitions["k"], catalog.formulas["k"], catalog.definitions,
                        FUNCTIONS, "EUR")
    assert str(unit) == "1 per currency EUR"
    write_kpi(tmp_path, "clicks / cost + clicks", "ratio")  # ... but mixing is still an error
    assert [d.code for d in diagnostics(tmp_path)] == ["unit-mismatch"]


@pytest.mark.parametrize("unit, text", [
    (RATIO, "ratio"), (Unit(scale=100.0), "percent"), (Unit(scale=0.01), "ratio x 0.01"),
    (NUMBER, "a number"),
])
def test_unit_names(unit, text):
    assert str(unit) == text


def test_the_whole_bundled_catalog_type_checks_with_no_unknowns():
    catalog = load_catalog(functions=FUNCTIONS)
    assert [d for d in catalog.diagnostics if d.code.startswith("unit")] == []
    for kpi, definition in catalog.definitions.items():
        assert all(spec.unit for spec in definition.inputs.values()), kpi
        inferred = formula_unit(definition, catalog.formulas[kpi], catalog.definitions,
                                FUNCTIONS, "EUR")
        assert inferred is not None and not inferred.number, kpi
        declared = str(definition.unit)
        name = str(inferred)
        assert name == declared or name == f"{declared} EUR" or (
            declared == "score" and not inferred.dims), (kpi, name, declared)


def test_inference_handles_the_deepest_formula_the_allow_list_admits():
    depth = next(d for d in range(MAX_DEPTH, 0, -1) if _compiles("-" * d + "cost"))
    formula = compile_formula("-" * depth + "cost", functions=FUNCTIONS)
    unit = infer_unit(formula.checked_tree, formula.text, {"cost": RATIO}, FUNCTIONS)
    assert unit == RATIO


def test_a_10000_deep_formula_is_refused_before_units_are_inferred(tmp_path):
    write_kpi(tmp_path, "cost", "currency")
    text = (tmp_path / "k.yaml").read_text().replace("formula: cost", "formula: " + "-" * 3000 + "cost")
    (tmp_path / "k.yaml").write_text(text)
    assert [d.code for d in diagnostics(tmp_path)] == ["too-complex"]


def _compiles(text: str) -> bool:
    try:
        compile_formula(text, functions=FUNCTIONS)
    except Exception:
        return False
    return True


def test_units_golden():
    proc = subprocess.run([sys.executable, "-m", "kpiforge", "validate", "tests/fixtures/units"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    path = GOLDEN / "validate_units.txt"
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(proc.stderr)
    assert proc.stderr == path.read_text(), f"output differs from {path} (UPDATE_GOLDEN=1 rewrites it)"


UNIT_POOL = [None, RATIO, NUMBER, Unit(scale=100.0), Unit(scale=0.01),
             Unit((("count", Fraction(1)),)), Unit((("count", Fraction(1)),), of="clicks"),
             Unit((("currency:EUR", Fraction(1)),)), Unit((("currency:USD", Fraction(1)),)),
             Unit((("seconds", Fraction(1)),)), Unit((("score", Fraction(1)),))]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=_formulas_strategy(), picks=st.lists(st.sampled_from(UNIT_POOL), min_size=3,
                                                  max_size=3))
def test_inference_gives_a_unit_or_a_located_unit_error_on_any_formula(text, picks):
    formula = compile_formula(text, functions=FUNCS)
    env = dict(zip(NAMES, picks))
    try:
        unit = infer_unit(formula.checked_tree, formula.text, env, FUNCS)
    except UnitError as exc:
        assert exc.message.startswith(("cannot ", "an exponent")) and len(exc.message) < 500
        assert getattr(exc.node, "col_offset", None) is not None
    else:
        assert unit is None or isinstance(unit, Unit)
        if unit is not None:
            assert math.isfinite(unit.scale) and unit.scale != 0
            str(unit)


@pytest.mark.parametrize("formula", [
    # balanced, to stay within the allow-list's depth: the scale under- and overflows
    "a * " + " * ".join(["(" + " * ".join(["0.01"] * 10) + ")"] * 17),
    "a * " + " * ".join(["(" + " * ".join(["100"] * 10) + ")"] * 17),
    "a / " + " / ".join(["(" + " * ".join(["100"] * 10) + ")"] * 17),
    "a ** 1e308", "a ** -1e308", "(a * 0.01) ** 400",
])
def test_extreme_scales_and_powers_give_an_unknown_unit(formula):
    tree = compile_formula(formula, functions=FUNCS).checked_tree
    assert infer_unit(tree, formula, {"a": Unit((("seconds", Fraction(1)),))}, FUNCS) is None
