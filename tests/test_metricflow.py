"""MetricFlow interop: import of a hand-written MetricFlow project (golden), export of kpiforge
projects (golden), and round trips whose KPIs give the same values as the originals."""

import math
import os
import shutil
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kpiforge import Engine
from kpiforge._metricflow_common import parse_filter, render_filter
from kpiforge._metricflow_expr import Untranslatable, formula_from_sql
from kpiforge._metricflow_import import import_metricflow, read_metricflow
from kpiforge._plugins import load_plugins
from kpiforge.cli import build_cli

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).parent / "fixtures" / "metricflow"
DEMO = ROOT / "examples" / "demo" / "kpiforge.yaml"
SMALL = FIXTURES / "small" / "kpiforge.yaml"


def kpiforge(*args: str):
    return CliRunner().invoke(build_cli(load_plugins()), list(args), catch_exceptions=False)


def files(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): p.read_text() for p in sorted(folder.rglob("*"))
            if p.is_file()}


def check_golden(out: Path, golden: Path, origin: str) -> None:
    """Every file written equals its golden copy (the origin path shown in the headers aside)."""
    written = {k: v.replace(origin, "<origin>") for k, v in files(out).items()}
    if os.environ.get("UPDATE_GOLDEN"):
        shutil.rmtree(golden, ignore_errors=True)
        for name, text in written.items():
            (golden / name).parent.mkdir(parents=True, exist_ok=True)
            (golden / name).write_text(text)
    assert written == files(golden), f"output differs from {golden} (UPDATE_GOLDEN=1 rewrites it)"


# -- import of the hand-written MetricFlow project --------------------------------------------

@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    out = tmp_path_factory.mktemp("shop")
    result = kpiforge("import", "metricflow", str(FIXTURES / "shop"), "-o", str(out))
    assert result.exit_code == 0, result.output
    return out, result.output


def test_import_writes_the_golden_project_and_prints_its_report(shop):
    out, output = shop
    check_golden(out, FIXTURES / "shop_expected", str(FIXTURES / "shop"))
    assert output == (out / "IMPORT_REPORT.md").read_text()


def test_imported_definitions_and_project_validate(shop, monkeypatch):
    out, _ = shop
    assert kpiforge("validate", str(out / "definitions")).exit_code == 0
    monkeypatch.setenv("WAREHOUSE_URL", "duckdb:///:memory:")
    result = kpiforge("validate", "--project", str(out / "kpiforge.yaml"))
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("kpi, formula", [
    ("revenue", "revenue"),  # a filtered simple metric: an input of its own, named after it
    ("orders", "order_count"),
    ("settled_orders", "settled_orders"),
    ("aov", "revenue / orders_paid"),  # the denominator's own filter: another input
    ("food_order_share", "food_orders / order_count"),
    ("roas", "revenue / spend"),  # derived, through an alias
    ("aov_pct_of_target", "aov / 50 * 100"),  # a ratio metric used by its KPI id
    ("remaining_budget", "budget_left"),
    ("clicks", "clicks"),  # a measure's create_metric: true
])
def test_imported_formulas(shop, kpi, formula):
    data = yaml.safe_load((shop[0] / "definitions" / f"{kpi}.yaml").read_text())
    assert data["formula"] == formula


@pytest.mark.parametrize("source, name, binding", [
    ("orders", "revenue", {"column": "amount", "agg": "sum", "filter": {"order_status": "paid"}}),
    ("orders", "settled_orders", {"column": "*", "agg": "count",
                                  "filter": {"order_status": ["paid", "shipped"]}}),
    ("orders", "food_orders", {"expression": "CASE WHEN is_food_order THEN 1 ELSE 0 END",
                               "agg": "sum"}),
    ("orders", "customers_with_orders", {"column": "customer_id", "agg": "count_distinct"}),
    ("orders_by_delivered_at", "deliveries", {"column": "*", "agg": "count"}),
    ("marketing", "budget_left", {"column": "remaining_budget", "agg": "last"}),
])
def test_imported_source_inputs(shop, source, name, binding):
    project = yaml.safe_load((shop[0] / "kpiforge.yaml").read_text())
    assert project["sources"][source]["inputs"][name] == binding
    assert project["sources"][source]["url"] == "${WAREHOUSE_URL}"


@pytest.mark.parametrize("what, reason", [
    ("metric cumulative_revenue", "cumulative metrics have no kpiforge form"),
    ("metric revenue_growth", "offset_window"),
    ("metric big_orders", "not a simple equality"),
    ("metric customer_orders_by_segment", "(a join)"),
    ("metric margin_pct", "function nullif"),
    ("measure order_value_p50", "agg 'median'"),
    ("metric median_order_value", "not imported"),
    ("semantic model orders", "entities and the joins"),
    ("saved query weekly_revenue", "saved queries have no kpiforge form"),
])
def test_what_is_not_carried_over_is_reported(shop, what, reason):
    report = (shop[0] / "IMPORT_REPORT.md").read_text()
    line = next((x for x in report.splitlines() if x.startswith(f"- **{what}**")), "")
    assert reason in line, report
    if what.startswith("metric "):  # no definition for it
        assert not (shop[0] / "definitions" / f"{what.split()[-1]}.yaml").exists()


def test_import_of_a_missing_folder_is_an_error_without_traceback(tmp_path):
    result = kpiforge("import", "metricflow", str(tmp_path / "nope"), "-o", str(tmp_path / "o"))
    assert result.exit_code == 1
    assert "not a folder of MetricFlow YAML files" in result.output
    assert "Traceback" not in result.output


# -- export -------------------------------------------------------------------------------------

def test_export_of_the_small_project_is_golden(tmp_path):
    result = kpiforge("export", "metricflow", "--project", str(SMALL), "-o", str(tmp_path))
    assert result.exit_code == 0, result.output
    check_golden(tmp_path, FIXTURES / "small_expected", str(SMALL))


@pytest.mark.parametrize("what, reason", [
    ("KPI revenue_share", "total()"),
    ("KPI capped_aov", "function where()"),
    ("KPI revenue_vs_target", "input target_revenue is not read from an exported source"),
    ("source manual", "type records"),
    ("source stock", "keys"),
])
def test_what_is_not_exported_is_reported(tmp_path, what, reason):
    kpiforge("export", "metricflow", "--project", str(SMALL), "-o", str(tmp_path))
    report = (tmp_path / "EXPORT_REPORT.md").read_text()
    line = next((x for x in report.splitlines() if x.startswith(f"- **{what}**")), "")
    assert reason in line, report


def test_exported_metrics_keep_what_metricflow_has_no_place_for_in_meta(tmp_path):
    kpiforge("export", "metricflow", "--project", str(SMALL), "-o", str(tmp_path))
    written = yaml.safe_load((tmp_path / "metrics.yml").read_text())
    metrics = {m["name"]: m for m in written["metrics"]}
    meta = metrics["revenue"]["config"]["meta"]["kpiforge"]
    assert meta["thresholds"] == {"good": 1000, "warning": 500}
    assert meta["alerts"] == {"on": ["warning", "critical"], "for": 2}
    assert metrics["aov"]["type"] == "ratio"
    assert metrics["big_order_share"]["type_params"]["expr"] == "big_orders / orders * 100"
    assert metrics["orders"]["config"]["meta"]["kpiforge"] == {"input": True}


# -- round trips: export, import back, same values ----------------------------------------------

def round_trip(project: Path, tmp_path: Path) -> tuple[Engine, Engine, list[str]]:
    exported, imported = tmp_path / "mf", tmp_path / "kpiforge"
    assert kpiforge("export", "metricflow", "--project", str(project), "-o", str(exported)
                    ).exit_code == 0
    assert kpiforge("import", "metricflow", str(exported), "-o", str(imported)).exit_code == 0
    assert "Nothing: everything was carried over." in (imported / "IMPORT_REPORT.md").read_text()
    kpis = [m["name"] for m in yaml.safe_load((exported / "metrics.yml").read_text())["metrics"]
            if not m["config"]["meta"]["kpiforge"].get("input")]
    original = Engine.load(*[project.parent / p for p in yaml.safe_load(project.read_text())
                             .get("definitions", [])])
    return original, Engine.load(imported / "definitions"), kpis


@pytest.mark.parametrize("project, exported", [(DEMO, 36), (SMALL, 7)])
def test_round_trip_keeps_every_exported_kpi(tmp_path_factory, project, exported):
    tmp_path = tmp_path_factory.mktemp("rt")
    original, imported, kpis = round_trip(project, tmp_path)
    assert len(kpis) == exported
    assert set(imported.definitions) == set(kpis)
    for kpi in kpis:
        a, b = original.definitions[kpi], imported.definitions[kpi]
        assert (str(a.unit), str(a.direction), a.thresholds, a.target) == \
            (str(b.unit), str(b.direction), b.thresholds, b.target), kpi


@pytest.fixture(scope="module")
def engines(tmp_path_factory):
    return {str(p): round_trip(p, tmp_path_factory.mktemp("values")) for p in (DEMO, SMALL)}


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
@pytest.mark.parametrize("project", [DEMO, SMALL])
def test_round_tripped_kpis_give_the_same_values(engines, project, data):
    original, imported, kpis = engines[str(project)]
    names = sorted({n for k in kpis for n in imported.definitions[k].inputs})
    inputs = {n: data.draw(st.floats(0.5, 1e6), label=n) for n in names}
    want, got = original.evaluate(inputs, kpis=kpis), imported.evaluate(inputs, kpis=kpis)
    for kpi in kpis:
        x, y = want[kpi].value, got[kpi].value
        assert (x is None and y is None) or math.isclose(x, y, rel_tol=1e-12), kpi


# -- the pieces ---------------------------------------------------------------------------------

values = st.one_of(st.text(min_size=1, max_size=8), st.integers(-1000, 1000), st.booleans())


@given(st.dictionaries(st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True).filter(
    lambda s: "__" not in s), st.one_of(values, st.lists(values, min_size=2, max_size=3)),
    min_size=1, max_size=3))
def test_filters_render_and_parse_back(filters):
    parsed = parse_filter(render_filter("model", filters))
    assert parsed == {f"model__{k}": v for k, v in filters.items()}


@pytest.mark.parametrize("filters", [  # found by the test above: an AND inside a value
    {"a": " AND "}, {"a": "x' and 'y", "b": [" AND ", 3]}, {"a": "''", "b": " and ''"}])
def test_an_and_inside_a_quoted_value_does_not_split_the_filter(filters):
    assert parse_filter(render_filter("model", filters)) == {f"model__{k}": v for k, v in filters.items()}


@pytest.mark.parametrize("text", [
    "{{ Dimension('a__b') }} > 3",
    "{{ Dimension('a__b') }} = 'x' OR {{ Dimension('a__c') }} = 'y'",
    "{{ TimeDimension('metric_time', 'day') }} >= '2024-01-01'",
    "{{ Dimension('a__b') }} = 'x' AND {{ Dimension('a__b') }} = 'y'",
    ["{{ Dimension('a__b') }} = 'x'", "{{ Entity('customer') }} = 3"],
])
def test_filters_that_are_not_simple_equalities_are_refused(text):
    assert isinstance(parse_filter(text), str)


@pytest.mark.parametrize("expr, formula", [
    ("a / b * 100", "(x) / (y) * 100"),
    ("LEAST(a, b) - GREATEST(a, 1)", "min((x), (y)) - max((x), 1)"),
    ("POWER(a, 2)", "(x) ** 2"),
    ("-ROUND(a, 1)", "-round((x), 1)"),
])
def test_derived_expressions_become_formulas(expr, formula):
    assert formula_from_sql(expr, {"a": "x", "b": "y"}) == formula


@pytest.mark.parametrize("expr", ["a > b", "CASE WHEN a THEN b END", "NULLIF(a, 0)", "c + a",
                                  "a % b", "'text'"])
def test_derived_expressions_without_a_formula_are_refused(expr):
    with pytest.raises(Untranslatable):
        formula_from_sql(expr, {"a": "x", "b": "y"})


def test_read_metricflow_reads_every_yaml_file_of_the_folder():
    models, metrics, queries = read_metricflow(FIXTURES / "shop")
    assert [m["name"] for m in models] == ["orders", "marketing"]
    assert [q["name"] for q in queries] == ["weekly_revenue"]
    imported = import_metricflow(models, metrics, queries)
    assert "cumulative_revenue" not in imported.definitions
    assert any(n.what == "metric cumulative_revenue" for n in imported.notes)


# -- the imported project runs --------------------------------------------------------------------

SHOP_ROWS = """
create table fct_orders(ordered_at date, delivered_at date, channel text, order_status text,
                        amount real, customer_id int, is_food_order boolean);
insert into fct_orders values ('2026-01-05', '2026-01-07', 'web', 'paid', 10.0, 1, 1),
    ('2026-01-06', '2026-01-20', 'web', 'shipped', 20.0, 2, 0),
    ('2026-01-09', '2026-02-01', 'shop', 'refunded', 30.0, 1, 1);
create table stg_ad_spend(date date, channel text, cost real, remaining_budget real, clicks int);
insert into stg_ad_spend values ('2026-01-01', 'web', 5.0, 100.0, 7),
    ('2026-01-31', 'web', 5.0, 90.0, 3);
"""


@pytest.fixture(scope="module")
def shop_run(shop, tmp_path_factory):
    import csv
    import io
    import sqlite3

    database = tmp_path_factory.mktemp("warehouse") / "wh.sqlite"
    with sqlite3.connect(database) as connection:
        connection.executescript(SHOP_ROWS)
    os.environ["WAREHOUSE_URL"] = f"sqlite:///{database}"
    try:
        result = kpiforge("run", "--project", str(shop[0] / "kpiforge.yaml"), "--grain", "month",
                          "--period", "2026-01", "--format", "csv", "--no-alerts")
    finally:
        del os.environ["WAREHOUSE_URL"]
    assert result.exit_code == 0, result.output
    return {r["kpi"]: float(r["value"]) for r in csv.DictReader(io.StringIO(result.stdout))}


@pytest.mark.parametrize("kpi, value", [
    ("revenue", 10.0),  # status = 'paid' only
    ("orders", 3.0),
    ("settled_orders", 2.0),  # paid or shipped
    ("aov", 10.0),  # paid revenue over paid orders
    ("food_order_share", 2 / 3),  # sum_boolean
    ("marketing_spend", 10.0),
    ("remaining_budget", 90.0),  # non_additive_dimension, window_choice max: the last day
    ("roas", 1.0),
    ("aov_pct_of_target", 20.0),
    ("deliveries", 2.0),  # by delivered_at: one delivery falls in February
    ("clicks", 10.0),
])
def test_imported_project_runs_on_sqlite(shop_run, kpi, value):
    assert shop_run[kpi] == pytest.approx(value, rel=1e-12)


# -- MetricFlow's own validator, where dbt-semantic-interfaces is installed (test-only) ----------

def semantic_manifest_issues(folder: Path) -> list[str]:
    """What MetricFlow's semantic-manifest validator says of the dbt YAML in ``folder``, after
    the conversion dbt itself does (one document per model and metric, ref() resolved)."""
    import re

    parsing = pytest.importorskip("dbt_semantic_interfaces.parsing.dir_to_model")
    from dbt_semantic_interfaces.parsing.objects import YamlConfigFile
    from dbt_semantic_interfaces.validations.semantic_manifest_validator import (
        SemanticManifestValidator)

    docs: list[dict] = []
    for path in sorted(folder.rglob("*.yml")):
        data = yaml.safe_load(path.read_text())
        for model in data.get("semantic_models", []):
            table = re.match(r"ref\('(.+)'\)", model["model"]).group(1)
            docs.append({"semantic_model": {
                **{k: v for k, v in model.items() if k != "model"},
                "node_relation": {"alias": table, "schema_name": "analytics"}}})
        for metric in data.get("metrics", []):
            params = metric.get("type_params", {})
            for key in ("numerator", "denominator"):  # dbt accepts a name, the manifest a dict
                if isinstance(params.get(key), str):
                    params[key] = {"name": params[key]}
            docs.append({"metric": metric})
    docs.append({"project_configuration": {"time_spine_table_configurations": [
        {"location": "analytics.metricflow_time_spine", "column_name": "date_day",
         "grain": "day"}]}})
    built = parsing.parse_yaml_files_to_validation_ready_semantic_manifest(
        [YamlConfigFile(filepath="manifest.yml", contents=yaml.safe_dump_all(docs))],
        raise_issues_as_exceptions=False)
    results = SemanticManifestValidator().validate_semantic_manifest(built.semantic_manifest)
    return [i.as_readable_str() for i in (*built.issues.errors, *results.errors)]


@pytest.mark.parametrize("project", [DEMO, SMALL])
def test_exported_models_pass_metricflows_validator(tmp_path, project):
    kpiforge("export", "metricflow", "--project", str(project), "-o", str(tmp_path))
    assert semantic_manifest_issues(tmp_path) == []


def test_the_hand_written_fixture_passes_metricflows_validator():
    assert semantic_manifest_issues(FIXTURES / "shop") == []


def test_a_second_import_replaces_the_first_and_keeps_files_written_by_hand(tmp_path):
    source = tmp_path / "mf"
    shutil.copytree(FIXTURES / "shop", source)
    out = tmp_path / "out"
    assert kpiforge("import", "metricflow", str(source), "-o", str(out)).exit_code == 0
    (out / "definitions" / "mine.yaml").write_text("# written by hand\n")
    metrics = source / "models" / "metrics.yml"
    metrics.write_text(metrics.read_text().replace("name: roas", "name: return_on_ad_spend"))
    assert kpiforge("import", "metricflow", str(source), "-o", str(out)).exit_code == 0
    written = {p.name for p in (out / "definitions").iterdir()}
    assert "roas.yaml" not in written
    assert {"return_on_ad_spend.yaml", "mine.yaml"} <= written


@pytest.mark.parametrize("args, message", [
    (["export", "metricflow", "--project", "nope.yaml", "-o", "x"], "nope.yaml"),
    (["import", "metricflow", "README.md", "-o", "x"], "README.md"),
])
def test_usage_errors_name_what_is_wrong(tmp_path, args, message):
    result = kpiforge(*args)
    assert result.exit_code != 0
    assert message in result.output
    assert "Traceback" not in result.output


def test_a_folder_with_broken_yaml_is_reported_with_its_location(tmp_path):
    (tmp_path / "bad.yml").write_text("metrics:\n  - name: x\n    type: [simple\n")
    result = kpiforge("import", "metricflow", str(tmp_path), "-o", str(tmp_path / "out"))
    assert result.exit_code == 1
    assert "bad.yml:" in result.output and "Traceback" not in result.output


# formulas of inputs a, b, c: arithmetic and the functions both sides have
leaves = st.one_of(st.sampled_from(["a", "b", "c"]), st.integers(1, 99).map(str))
formulas = st.recursive(leaves, lambda inner: st.one_of(
    st.tuples(inner, st.sampled_from(["+", "-", "*", "/"]), inner).map(
        lambda t: f"({t[0]} {t[1]} {t[2]})"),
    inner.map(lambda x: f"-{x}"),
    inner.map(lambda x: f"abs({x})"),
    st.tuples(inner, inner).map(lambda t: f"min({t[0]}, {t[1]})"),
    st.tuples(inner, inner).map(lambda t: f"max({t[0]}, {t[1]})"),
    inner.map(lambda x: f"round({x}, 2)"),
    inner.map(lambda x: f"{x} ** 2"),
), max_leaves=8)


@settings(max_examples=200, deadline=None)
@given(formula=formulas, a=st.floats(0.1, 1e3), b=st.floats(0.1, 1e3), c=st.floats(0.1, 1e3))
def test_formula_to_sql_and_back_computes_the_same(formula, a, b, c):
    import ast

    from kpiforge._metricflow_expr import formula_to_sql

    sql = formula_to_sql(ast.parse(formula, mode="eval").body)
    back = formula_from_sql(sql, {"a": "a", "b": "b", "c": "c"})
    env = {"a": a, "b": b, "c": c, "min": min, "max": max, "abs": abs, "round": round}
    try:
        want = eval(formula, {"__builtins__": {}}, env)  # noqa: S307 - generated arithmetic
    except (ZeroDivisionError, OverflowError):
        return
    got = eval(back, {"__builtins__": {}}, env)  # noqa: S307
    assert got == pytest.approx(want, rel=1e-9, abs=1e-9) or (math.isnan(want) and math.isnan(got))


@pytest.mark.parametrize("measure, agg, expr", [
    ("promoters", "count", "CASE WHEN (score >= 9) THEN 1 END"),  # a definition's where
    ("satisfied_responses", "count", "CASE WHEN (score >= (5.0 - 1)) THEN 1 END"),  # parameter
    ("nps_responses", "count", "score"),  # a definition's field, bound by the source
    ("customers_start", "sum", "customers_start"),  # first: a non_additive_dimension
    ("sessions", "count", "session_id"),
])
def test_demo_measures(tmp_path_factory, measure, agg, expr):
    out = tmp_path_factory.getbasetemp() / "demo_export"
    if not out.exists():
        assert kpiforge("export", "metricflow", "--project", str(DEMO), "-o", str(out)
                        ).exit_code == 0
    models = yaml.safe_load((out / "semantic_models.yml").read_text())["semantic_models"]
    found = {m["name"]: m for model in models for m in model["measures"]}[measure]
    assert (found["agg"], found["expr"]) == (agg, expr)
