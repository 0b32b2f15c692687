"""``total(x)`` beyond tests/test_total.py: the allow-list's errors with their columns, the
total as an input of its own (given per slice, or missing), the command line (``eval --set
'total(x)=...'``, ``run --by``) and a distinct count whose total is not the sum of its slices."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from kpiforge import Engine
from kpiforge._formulas import compile_formula, default_functions
from kpiforge._project import load_project
from kpiforge.errors import DefinitionError, FormulaError

FUNCTIONS = default_functions()
ENGINE = Engine.load()


# --------------------------------------------------------------------------- the allow-list

NOT_A_NAME = "total() takes the name of an input"


@pytest.mark.parametrize(("text", "code", "column", "message"), [
    ("total(2)", "total", 7, NOT_A_NAME),
    ("sessions / total(100)", "total", 18, NOT_A_NAME),
    ("total(a, b)", "arity", 1, "exactly 1 argument (2 given)"),
    ("total()", "arity", 1, "exactly 1 argument (0 given)"),
    ("total(total(x))", "total", 7, "a total cannot be nested"),
    ("x / total(a + b)", "total", 11, NOT_A_NAME),
    ("x / total(min(a, b))", "total", 11, NOT_A_NAME),
    ("total(min)", "forbidden", 7, "must be called"),
    ("total(_x)", "forbidden", 7, "names starting with '_'"),
    ("  total(1)", "total", 9, NOT_A_NAME),  # the column counts the leading spaces
    ("total", "forbidden", 1, "must be called"),
    # columns count characters (not UTF-8 bytes) and run on across the lines of the formula
    ("été / total(2)", "total", 13, NOT_A_NAME),
    ("(a +\n total(2))", "total", 13, NOT_A_NAME),
])
def test_total_checker_errors_are_located(text, code, column, message):
    with pytest.raises(FormulaError) as info:
        compile_formula(text, functions=FUNCTIONS)
    assert info.value.code == code
    assert info.value.column == column
    assert message in info.value.message


@pytest.mark.parametrize(("text", "names"), [
    ("sessions / total(sessions) * 100", {"sessions", "total(sessions)"}),
    ("total(b) + total(a)", {"a", "b", "total(a)", "total(b)"}),
    ("x / total(y)", {"x", "y", "total(y)"}),
    ("x * 2", {"x"}),
])
def test_total_is_read_as_an_input_of_its_own(text, names):
    formula = compile_formula(text, functions=FUNCTIONS)
    assert formula.names == names
    assert "total" not in formula.functions  # no call is left to run


@pytest.mark.parametrize(("namespace", "value", "reason"), [
    ({"sessions": 530.0, "total(sessions)": 1000.0}, 53.0, None),
    ({"sessions": 530.0}, None, "missing input: total(sessions)"),  # the run fills it in
    ({"sessions": 530.0, "total(sessions)": None}, None, "missing input: total(sessions)"),
    ({"sessions": None}, None, "missing input: sessions"),
    ({"sessions": 0.0, "total(sessions)": 0.0}, None, "division by zero"),
    ({"sessions": 5.0, "total(sessions)": -0.0}, None, "division by zero"),
])
def test_scalar_and_array_evaluation_agree(namespace, value, reason):
    formula = compile_formula("sessions / total(sessions) * 100", functions=FUNCTIONS)
    one = formula.evaluate(namespace)
    arrays = formula.evaluate({k: np.array([v if v is not None else np.nan] * 3)
                               for k, v in namespace.items()})
    if value is None:
        assert one.value is None and reason is not None
        assert str(one.reason) == reason
        assert np.isnan(arrays.value).all()
        assert [str(r) for r in arrays.reason] == [str(one.reason)] * 3
    else:
        assert one.value == pytest.approx(value) and one.reason is None
        assert arrays.value.tolist() == pytest.approx([value] * 3)


def test_engine_takes_totals_as_named_inputs():
    result = ENGINE.evaluate({"sessions": [530, 470], "total(sessions)": [1000, 1000]},
                             kpis=["traffic_source_share"])["traffic_source_share"]
    assert result.value.tolist() == [53.0, 47.0]


def _catalog(tmp_path: Path, formula: str, unit: str = "percent") -> Path:
    folder = tmp_path / "defs"
    folder.mkdir(exist_ok=True)
    (folder / "k.yaml").write_text(textwrap.dedent(f"""
        id: k
        name: K
        formula: {formula}
        unit: {unit}
        direction: higher_is_better
        inputs:
          sessions: {{unit: count}}
          cost: {{unit: currency}}
        """))
    return folder


@pytest.mark.parametrize(("formula", "unit", "code", "message"), [
    ("sessions / total(sessions)", "percent", "unit-mismatch", "multiply by 100"),
    ("sessions + total(cost) * 0", "count", "unit-mismatch", "cannot add"),
    ("sessions / total(other) * 100 + cost * 0", "percent", "unknown-name",
     "total() takes one of the KPI's declared inputs (cost, sessions)"),
])
def test_catalog_checks_of_total(tmp_path, formula, unit, code, message):
    folder = _catalog(tmp_path, formula, unit)
    (folder / "other.yaml").write_text("id: other\nname: O\nformula: sessions\nunit: count\n"
                                       "direction: higher_is_better\ninputs: {sessions: {unit: count}}\n")
    with pytest.raises(DefinitionError) as info:
        Engine.load(folder)
    found = [d for d in info.value.errors if d.code == code]
    assert found and message in found[0].message, info.value
    assert found[0].line > 0


def test_total_keeps_its_arguments_unit(tmp_path):
    folder = _catalog(tmp_path, "sessions / total(sessions) * 100 + cost / total(cost) * 100")
    assert Engine.load(folder).warnings == ()


# --------------------------------------------------------------------------- a run by source

SESSIONS = [  # day, traffic source, visitor: v1 comes through two sources, v2 twice
    ("2026-10-01", "organic", "v1"), ("2026-10-02", "organic", "v2"), ("2026-10-03", "organic", "v2"),
    ("2026-10-04", "organic", "v3"), ("2026-10-05", "organic", "v4"), ("2026-10-06", "social", "v1"),
    ("2026-10-07", "social", "v5"), ("2026-10-08", "direct", "v6"), ("2026-10-09", "direct", "v1"),
    ("2026-10-10", "paid", "v7"), ("2026-09-03", "organic", "v1"), ("2026-09-04", "paid", "v8"),
    ("2026-09-05", "paid", "v9"), ("2026-09-06", "social", "v9"),
]

DEFINITIONS = """
- id: visitor_share
  name: Share of visitors
  formula: visitors / total(visitors) * 100
  unit: percent
  direction: higher_is_better
  inputs:
    visitors: {unit: count, additivity: non_additive}
- id: visitors_total
  name: All visitors
  formula: total(visitors)
  unit: count
  direction: higher_is_better
  inputs:
    visitors: {unit: count, additivity: non_additive}
- id: reach_share
  name: Share of reach
  formula: reach / total(reach) * 100
  unit: percent
  direction: higher_is_better
  inputs:
    reach: {unit: count, additivity: non_additive}
"""


@pytest.fixture(scope="module")
def sessions_frame():
    pd = pytest.importorskip("pandas")
    return pd.DataFrame(SESSIONS, columns=["day", "source", "visitor_id"]).assign(
        session_id=lambda f: [f"s{i}" for i in range(len(f))])


@pytest.fixture(params=["csv", "parquet"])
def project(request, tmp_path: Path, sessions_frame):
    fmt = request.param
    if fmt == "csv":
        sessions_frame.to_csv(tmp_path / "sessions.csv", index=False)
    else:
        pytest.importorskip("pyarrow")
        sessions_frame.to_parquet(tmp_path / "sessions.parquet", index=False)
    (tmp_path / "reach.csv").write_text("month,channel,reach\n2026-10-01,search,1500\n"
                                        "2026-10-01,social,900\n")
    (tmp_path / "defs").mkdir()
    (tmp_path / "defs" / "shares.yaml").write_text("kpis:\n" + textwrap.indent(
        DEFINITIONS.strip(), "  ") + "\n")
    (tmp_path / "kpiforge.yaml").write_text(textwrap.dedent(f"""
        sources:
          web:
            type: {fmt}
            path: sessions.{fmt}
            time: day
            dimensions: [source]
            inputs:
              sessions: {{column: session_id, agg: count}}
              visitors: {{column: visitor_id, agg: count_distinct}}
          ad_reach:
            type: csv
            path: reach.csv
            time: month
            grain: month
            keys: [channel]
            dimensions: [channel]
            inputs:
              reach: {{agg: sum}}
        """))
    return tmp_path


def _by(result, kpi: str, dim: str = "source") -> dict:
    return {(r.period, r.slice.get(dim)): r for r in result.records if r.kpi == kpi}


def test_shares_by_source_sum_to_100_and_match_pandas(project, sessions_frame):
    result = load_project(project / "kpiforge.yaml").run(
        kpis=["traffic_source_share"], grain="month", start="2026-09-01", end="2026-10-31",
        by="source")
    got = {k: r.value for k, r in _by(result, "traffic_source_share").items()}
    frame = sessions_frame.assign(period=sessions_frame["day"].str[:7])
    counts = frame.groupby(["period", "source"]).size()
    expected = (counts / counts.groupby(level="period").transform("sum") * 100).to_dict()
    present = {k: v for k, v in got.items() if v is not None}
    assert present.keys() == expected.keys()
    for key, share in expected.items():
        assert present[key] == pytest.approx(share)
    for period in ("2026-09", "2026-10"):
        assert sum(v for (p, _), v in present.items() if p == period) == pytest.approx(100.0)
    # a source without sessions in a period has no share there, not 0
    assert got[("2026-09", "direct")] is None
    assert _by(result, "traffic_source_share")[("2026-09", "direct")].reason_code == "no_data"


def test_without_by_total_is_the_value_itself(project):
    share = load_project(project / "kpiforge.yaml").run(kpis=["traffic_source_share"],
                                                        grain="month", period="2026-10")
    assert [(r.value, r.reason) for r in share.records] == [(100.0, None)]


def _shares_project(project: Path) -> Path:
    text = (project / "kpiforge.yaml").read_text()
    (project / "kpiforge.yaml").write_text("definitions: [defs]\n" + text)
    return project / "kpiforge.yaml"


def test_a_distinct_counts_total_is_recomputed_by_the_source(project, sessions_frame):
    file = _shares_project(project)
    by_source = load_project(file).run(kpis=["visitor_share", "visitors_total"], grain="month",
                                       period="2026-10", by="source")
    october = sessions_frame[sessions_frame["day"].str.startswith("2026-10")]
    people = october["visitor_id"].nunique()  # 7: v1 came through three sources
    per_source = october.groupby("source")["visitor_id"].nunique()
    assert per_source.sum() > people  # the people overlap: a sum of slices would be wrong
    totals = {k: r.value for k, r in _by(by_source, "visitors_total").items()}
    assert totals == {("2026-10", s): float(people) for s in per_source.index}
    shares = {k[1]: r.value for k, r in _by(by_source, "visitor_share").items()}
    assert shares == pytest.approx((per_source / people * 100).to_dict())
    whole = load_project(file).run(kpis=["visitors_total"], grain="month", period="2026-10")
    assert [r.value for r in whole.records] == [float(people)]


def test_a_keyed_non_additive_total_is_null_with_the_reason(project):
    file = _shares_project(project)
    result = load_project(file).run(kpis=["reach_share"], grain="month", period="2026-10",
                                    by="channel")
    records = _by(result, "reach_share", "channel")
    assert set(records) == {("2026-10", "search"), ("2026-10", "social")}
    for record in records.values():
        assert record.value is None and record.reason_code == "not_additive"
        assert str(record.reason).startswith("reach cannot be summed across channel")


def _eval(*sets: str) -> subprocess.CompletedProcess:
    args = [a for s in sets for a in ("--set", s)]
    return subprocess.run([sys.executable, "-m", "kpiforge", "eval", "--kpi",
                           "traffic_source_share", *args, "--format", "json"],
                          capture_output=True, text=True, timeout=120)


def test_eval_takes_a_total_on_the_command_line():
    proc = _eval("sessions=530", "total(sessions)=1000")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["results"][0]["value"] == 53.0


@pytest.mark.parametrize(("sets", "message"), [
    (["sessions=530"], "missing 1 input: total(sessions)"),
    (["sessions=530", "total(sesions)=1000"],
     "no loaded KPI has an input named 'total(sesions)' (did you mean 'total(sessions)'?)"),
])
def test_eval_without_a_usable_total_says_why(sets, message):
    proc = _eval(*sets)
    assert proc.returncode != 0 and message in proc.stderr, proc.stderr


def test_a_run_by_source_from_the_command_line(project):
    proc = subprocess.run([sys.executable, "-m", "kpiforge", "run", "--project",
                           str(project / "kpiforge.yaml"), "--grain", "month", "--period",
                           "2026-10", "--by", "source", "--kpi", "traffic_source_share",
                           "--format", "json", "--no-alerts"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    values = {r["slice"]["source"]: r["value"] for r in json.loads(proc.stdout)["results"]}
    assert values == pytest.approx({"organic": 50.0, "social": 20.0, "direct": 20.0,
                                    "paid": 10.0})


def test_a_source_that_cannot_be_split_is_not_asked_for_a_total(project, monkeypatch):
    import kpiforge._run_totals as run_totals

    asked: list[tuple[str, ...]] = []
    fetch = run_totals.fetch_frames

    def recording(project, sources, plan, *args):
        asked.append(tuple(plan.sources))
        return fetch(project, sources, plan, *args)

    monkeypatch.setattr(run_totals, "fetch_frames", recording)
    file = _shares_project(project)
    # web has no channel: its KPIs are null as not splittable, and no total query is made
    result = load_project(file).run(kpis=["visitor_share"], grain="month", period="2026-10",
                                    by="channel")
    assert asked == [()]
    assert {r.reason_code for r in result.records} == {"not_splittable"}
    asked.clear()
    load_project(file).run(kpis=["visitor_share"], grain="month", period="2026-10", by="source")
    assert asked == [("web",)]


@pytest.mark.parametrize("arrays", [False, True])
def test_a_total_outside_its_inputs_range_is_null_with_the_reason(arrays):
    # total(x) is x over a coarser breakdown: x's range applies (a negative count of sessions)
    inputs = {"sessions": [5.0, 5.0], "total(sessions)": [-10.0, 10.0]}
    if not arrays:
        inputs = {k: v[0] for k, v in inputs.items()}
    result = ENGINE.evaluate(inputs, kpis=["traffic_source_share"])["traffic_source_share"]
    reasons = list(np.atleast_1d(np.asarray(result.reason, dtype=object)))
    assert reasons[0] is not None and reasons[0].code == "out_of_range"
    assert str(reasons[0]) == "total(sessions) = -10 is outside [0, none]: a negative count?"
    if arrays:
        assert reasons[1] is None and result.value[1] == 50.0


def test_a_plugin_cannot_register_total(tmp_path):
    from kpiforge._plugins import load_plugins
    from kpiforge.errors import PluginWarning
    from tests.test_plugins import write_plugin

    write_plugin(tmp_path, "summer", '''
        from kpiforge import hookimpl

        @hookimpl
        def kpiforge_register_functions(register):
            register("total", lambda x: x * 2, min_args=1, max_args=1)
            register("double", lambda x: x * 2, min_args=1, max_args=1)
    ''')
    with pytest.warns(PluginWarning, match="summer"):
        plugins = load_plugins(tmp_path)
    assert "total" not in plugins.functions and "double" in plugins.functions
    assert "function 'total' is kpiforge's own" in plugins.failures["summer"]
