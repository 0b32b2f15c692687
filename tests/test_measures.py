"""Inputs defined once, in the definition: fields, measures (agg, field, where), parameters.

The bundled NPS and CSAT classify answers themselves; a project binds fields to its columns and
lists the inputs. Numbers are checked against an independent pandas computation over the same
raw rows; conditions are checked to agree between SQL (DuckDB) and numpy, NULLs included.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kpiforge import DefinitionError, Engine, Project, ProjectError
from kpiforge.sources import Condition, Params, quote_identifier
from kpiforge._conditions import compile_condition

RNG = np.random.default_rng(20261202)


def _answers(n: int = 600) -> pd.DataFrame:
    days = pd.date_range("2026-08-01", "2026-10-31", freq="D")
    return pd.DataFrame({
        "answered_on": RNG.choice(days, n),
        "country": RNG.choice(["FR", "BE", "CH"], n),
        "likelihood": RNG.integers(0, 11, n).astype(float),
        "mark10": RNG.integers(1, 11, n),
    })


def _project(tmp_path: Path, frame: pd.DataFrame, source: str, extra: str = "") -> Path:
    frame.assign(answered_on=frame["answered_on"].dt.strftime("%Y-%m-%d")).to_csv(
        tmp_path / "answers.csv", index=False)
    (tmp_path / "kpiforge.yaml").write_text(textwrap.dedent(extra) + textwrap.dedent(f"""
        sources:
          survey:
            type: csv
            path: answers.csv
            time: answered_on
            dimensions: [country]
    """) + textwrap.indent(textwrap.dedent(source), "    "))
    return tmp_path / "kpiforge.yaml"


NPS_SOURCE = """
fields: {score: likelihood}
inputs:
  promoters: {}
  detractors: {}
  nps_responses: {}
"""


def _by(result, kpi: str) -> dict:
    return {(r.period, r.slice.get("country")): r.value for r in result.records if r.kpi == kpi}


def test_nps_from_raw_rows_equals_pandas(tmp_path: Path) -> None:
    frame = _answers()
    frame.loc[frame.sample(40, random_state=1).index, "likelihood"] = np.nan  # unanswered
    project = Project.load(_project(tmp_path, frame, NPS_SOURCE))
    result = project.run(kpis=["nps"], grain="month", start="2026-08-01", end="2026-10-31",
                         by="country")
    frame["period"] = frame["answered_on"].dt.strftime("%Y-%m")
    expected = {}
    for (period, country), rows in frame.groupby(["period", "country"]):
        answered = rows["likelihood"].dropna()
        promoters, detractors = (answered >= 9).sum(), (answered <= 6).sum()
        expected[(period, country)] = (promoters - detractors) / len(answered) * 100
    got = _by(result, "nps")
    assert set(got) == set(expected)
    for key, value in expected.items():
        assert got[key] == pytest.approx(value), key


@pytest.mark.parametrize(("scale", "column", "top_two"), [(5, "mark5", (4, 5)), (10, "mark10", (9, 10))])
def test_csat_scale_is_a_parameter_of_the_definition(tmp_path: Path, scale, column, top_two) -> None:
    frame = _answers()
    frame["mark5"] = RNG.integers(1, 6, len(frame))
    source = f"""
    fields: {{mark: {column}}}
    inputs:
      satisfied_responses: {{}}
      csat_responses: {{}}
    """
    extra = "" if scale == 5 else f"parameters: {{csat: {{scale: {scale}}}}}\n"
    project = Project.load(_project(tmp_path, frame, source, extra))
    result = project.run(kpis=["csat"], grain="quarter", period="2026-Q3")
    rows = frame[(frame["answered_on"] >= "2026-07-01") & (frame["answered_on"] < "2026-10-01")]
    expected = rows[column].isin(top_two).mean() * 100
    assert _by(result, "csat")[("2026-Q3", None)] == pytest.approx(expected)


def test_the_definition_classifies_even_when_the_project_restates_the_same_agg(tmp_path: Path) -> None:
    source = """
    fields: {score: likelihood}
    inputs:
      promoters: {agg: count}
      detractors: {}
      nps_responses: {agg: count, column: likelihood}
    """
    frame = _answers()
    got = Project.load(_project(tmp_path, frame, source)).run(kpis=["nps"], period="2026-09")
    sept = frame[frame["answered_on"].dt.strftime("%Y-%m") == "2026-09"]["likelihood"]
    expected = ((sept >= 9).sum() - (sept <= 6).sum()) / len(sept) * 100
    assert _by(got, "nps")[("2026-09", None)] == pytest.approx(expected)


def test_pre_aggregated_counts_may_be_summed(tmp_path: Path) -> None:
    (tmp_path / "daily.csv").write_text("day,promoters,detractors,answers\n"
                                        "2026-09-01,5,2,10\n2026-09-02,3,3,10\n")
    (tmp_path / "kpiforge.yaml").write_text(textwrap.dedent("""
        sources:
          daily:
            type: csv
            path: daily.csv
            time: day
            inputs:
              promoters: {agg: sum}
              detractors: {agg: sum}
              nps_responses: {agg: sum, column: answers}
    """))
    result = Project.load(tmp_path / "kpiforge.yaml").run(kpis=["nps"], period="2026-09")
    assert _by(result, "nps")[("2026-09", None)] == pytest.approx((8 - 5) / 20 * 100)


def _error(tmp_path: Path, source: str, extra: str = "") -> str:
    project = Project.load(_project(tmp_path, _answers(20), source, extra))
    with pytest.raises(ProjectError) as info:
        project.engine  # noqa: B018 - binding happens when the engine loads
    return str(info.value)


@pytest.mark.parametrize(("source", "extra", "expected"), [
    # another aggregation than the definition's: two numbers under one name
    ("inputs: {promoters: {agg: count_distinct, column: likelihood}}", "",
     ["kpiforge.yaml:8:", "sources.survey.inputs.promoters.agg", "nps.yaml",
      "count where score >= 9", "restates it as count_distinct"]),
    # the classification restated in SQL: the definition's condition would be bypassed
    ('inputs: {promoters: {agg: sum, expression: "CASE WHEN likelihood >= 8 THEN 1 ELSE 0 END"}}', "",
     ["sources.survey.inputs.promoters.agg", "nps.yaml", "sum of its own expression"]),
    # listed without agg, but no definition defines a measure of that name
    ("inputs: {clicks: {}}", "", ["sources.survey.inputs.clicks", "gives no agg"]),
    # a field binding that no measure of this source reads
    ("fields: {scroe: likelihood}\ninputs: {promoters: {}}", "",
     ["sources.survey.fields.scroe", "did you mean 'score'"]),
    # parameters: an unknown KPI, an unknown parameter, a value the definition does not allow
    ("inputs: {satisfied_responses: {}}", "parameters: {nps: {scale: 10}}\n",
     ["parameters.nps", "KPIs with parameters: csat"]),
    ("inputs: {satisfied_responses: {}}", "parameters: {csat: {scales: 10}}\n",
     ["parameters.csat.scales", "did you mean 'scale'"]),
    ("inputs: {satisfied_responses: {}}", "parameters: {csat: {scale: 7}}\n",
     ["parameters.csat.scale", "must be one of 5, 10, not 7"]),
])
def test_binding_problems_are_located(tmp_path: Path, source, extra, expected) -> None:
    message = _error(tmp_path, source, extra)
    for part in expected:
        assert part in message, (part, message)


KPI = """
id: answer_share
name: Share of answers
formula: kept / answers * 100
unit: percent
direction: higher_is_better
fields:
  score: {{description: An answer, unit: score, range: [0, 10]}}
parameters:
  cut: {{default: 7, allowed: [7, 8]}}
inputs:
  kept: {{description: Answers kept, unit: count, agg: count, {kept}}}
  answers: {{description: Every answer, unit: count, agg: count}}
"""


@pytest.mark.parametrize(("kept", "expected"), [
    ('where: "score >= cut"', None),
    ('where: "score >= nine"', "'nine', which is not a field or parameter"),
    ('where: "abs(score) >= 9"', "unknown function 'abs'"),
    ('where: "score ** 2 >= 81"', "+ - * / only"),
    ('where: "score.__class__ >= 9"', "attribute access is not allowed"),
    ("where: \"score == 'high'\"", "strings are not allowed"),
    ('where: "' + "(" * 5000 + "score" + ")" * 5000 + ' >= 9"', "at most 1000 characters"),
    ('where: "' + "(" * 400 + "score" + ")" * 400 + ' >= 9"', "too complex"),
    ('field: answer', "'answer' is not one of the definition's fields"),
    ('where: "score >= 9", field: score, unit: percent', None),  # a unit problem, below
])
def test_definition_measures_are_checked_where_written(tmp_path: Path, kept, expected) -> None:
    if "unit: percent" in kept:
        kept = kept.replace(", unit: percent", "")
        text = KPI.format(kept=kept).replace("kept: {description: Answers kept, unit: count",
                                             "kept: {description: Answers kept, unit: percent")
        expected = "a count is a count, not percent"
    else:
        text = KPI.format(kept=kept)
    (tmp_path / "answer_share.yaml").write_text(text)
    if expected is None:
        Engine.load(tmp_path)
        return
    with pytest.raises(DefinitionError) as info:
        Engine.load(tmp_path)
    message = str(info.value)
    assert expected in message and "answer_share.yaml" in message and "inputs.kept" in message


def test_one_input_name_is_one_measure_across_the_catalog(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(KPI.format(kept='where: "score >= 9"'))
    (tmp_path / "b.yaml").write_text(KPI.format(kept='where: "score >= 8"')
                                     .replace("id: answer_share", "id: answer_share_b"))
    with pytest.raises(DefinitionError) as info:
        Engine.load(tmp_path)
    message = str(info.value)
    assert "measure-conflict" in message and "a.yaml" in message and "b.yaml" in message


# --------------------------------------------------------------------------- SQL and numpy agree

CONDITIONS = [
    "score >= 9", "score <= 6", "not (score <= 6)", "3 < score <= 6", "score >= 9 or other < 2",
    "score >= 5 and not other >= 5", "score / other > 1", "(score if other > 5 else other) >= 4",
    "-score + 2 * other > 3", "score - cut >= 0",
]


def _duckdb_kept(condition: Condition, frame: pd.DataFrame) -> np.ndarray:
    params = Params("dollar")
    sql = condition.sql(params.add, quote_identifier, "DOUBLE")
    con = duckdb.connect()
    con.register("t", frame)
    rows = con.execute(f"SELECT CASE WHEN {sql} THEN 1 ELSE 0 END AS k FROM t",
                       params.values).fetchnumpy()["k"]
    return np.asarray(rows, dtype=bool)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.one_of(st.none(), st.integers(-3, 12)),
                          st.one_of(st.none(), st.integers(-3, 12))), min_size=1, max_size=30),
       st.sampled_from(CONDITIONS))
def test_sql_and_numpy_keep_the_same_rows(rows, text) -> None:
    frame = pd.DataFrame({"s": [np.nan if a is None else float(a) for a, _ in rows],
                          "o": [np.nan if b is None else float(b) for _, b in rows]})
    condition = compile_condition(text, {"score": "s", "other": "o"}, {"cut": 7.0})
    in_numpy = condition.evaluate({"s": frame["s"].to_numpy(), "o": frame["o"].to_numpy()})
    assert in_numpy.tolist() == _duckdb_kept(condition, frame).tolist()


def test_conditions_bind_numbers_as_parameters() -> None:
    condition = compile_condition("score >= cut - 1", {"score": "answer; DROP TABLE x"}, {"cut": 9})
    params = Params("dollar")
    sql = condition.sql(params.add, quote_identifier)
    assert sql == '("answer; DROP TABLE x" >= ($p0 - $p1))' and list(params.values.values()) == [9.0, 1]


# --------------------------------------------------------------------------- one name, one meaning

def test_former_input_names_still_run_with_a_warning(tmp_path: Path) -> None:
    # a project written before visitors became landing-page and site visitors
    (tmp_path / "web.csv").write_text("day,visitor,lead,bought,amount,marketing\n"
                                      "2026-09-01,a,1,0,0,0\n2026-09-01,b,0,1,80,20\n"
                                      "2026-09-02,c,0,0,0,0\n2026-09-02,a,0,1,20,20\n")
    (tmp_path / "kpiforge.yaml").write_text(textwrap.dedent("""
        sources:
          web:
            type: csv
            path: web.csv
            time: day
            inputs:
              visitors: {column: visitor, agg: count_distinct}
              leads: {column: lead, agg: sum}
              conversions: {column: bought, agg: sum}
              total_revenue: {column: amount, agg: sum}
              marketing_revenue: {column: marketing, agg: sum}
    """))
    result = Project.load(tmp_path / "kpiforge.yaml").run(
        period="2026-09", kpis=["lead_conversion_rate", "conversion_rate",
                                "marketing_originated_revenue_share"])
    got = {r.kpi: r.value for r in result.records}
    assert got == {"lead_conversion_rate": pytest.approx(100 / 3),
                   "conversion_rate": pytest.approx(200 / 3),
                   "marketing_originated_revenue_share": pytest.approx(40.0)}
    assert any("'visitors' is a former name, now landing_page_visitors and site_visitors" in w
               for w in result.warnings), result.warnings
    assert any("'total_revenue' is a former name, now revenue" in w for w in result.warnings)


def test_former_input_names_work_in_evaluate_with_a_deprecation_warning() -> None:
    engine = Engine.load()
    with pytest.warns(DeprecationWarning, match="give it as landing_page_visitors and site_visitors"):
        results = engine.evaluate({"leads": 50, "conversions": 25, "visitors": 1000})
    assert results["lead_conversion_rate"].value == pytest.approx(5.0)
    assert results["conversion_rate"].value == pytest.approx(2.5)
    # a value under the new name wins over the former name
    with pytest.warns(DeprecationWarning):
        both = engine.evaluate({"conversions": 25, "visitors": 1000, "site_visitors": 500},
                               kpis=["conversion_rate"])
    assert both["conversion_rate"].value == pytest.approx(5.0)


def test_an_input_may_be_bound_for_one_kpi_only(tmp_path: Path) -> None:
    (tmp_path / "ads.csv").write_text("day,clicks,impressions,cost\n2026-09-01,100,1000,250\n")
    # the ad server counts clicks on the ad; the CTR of this team counts landing clicks
    (tmp_path / "landing.csv").write_text("day,clicks\n2026-09-01,80\n")
    (tmp_path / "kpiforge.yaml").write_text(textwrap.dedent("""
        sources:
          ads:
            type: csv
            path: ads.csv
            time: day
            inputs:
              clicks: {agg: sum}
              impressions: {agg: sum}
              cost: {agg: sum}
          landing:
            type: csv
            path: landing.csv
            time: day
            inputs:
              clicks: {agg: sum, for: [ctr]}
    """))
    result = Project.load(tmp_path / "kpiforge.yaml").run(period="2026-09", kpis=["ctr", "cpc"])
    got = {r.kpi: r.value for r in result.records}
    assert got == {"ctr": pytest.approx(8.0), "cpc": pytest.approx(2.5)}
    # chosen by default too: ctr is computable from the general and its own bindings
    assert {r.kpi for r in Project.load(tmp_path / "kpiforge.yaml").run(period="2026-09").records} \
        >= {"ctr", "cpc"}


@pytest.mark.parametrize(("landing", "expected"), [
    ("clicks: {agg: sum, for: [cpm]}", "no loaded KPI 'cpm' reads input 'clicks'"),
    ("clicks: {agg: sum, for: [cpc]}\n      impressions: {agg: sum, for: [ctr]}", None),
])
def test_for_names_kpis_that_read_the_input(tmp_path: Path, landing, expected) -> None:
    (tmp_path / "a.csv").write_text("day,clicks,impressions\n2026-09-01,1,10\n")
    (tmp_path / "kpiforge.yaml").write_text(textwrap.dedent("""
        sources:
          ads: {type: csv, path: a.csv, time: day, inputs: {clicks: {agg: sum}}}
          landing:
            type: csv
            path: a.csv
            time: day
            inputs:
              LANDING
    """).replace("LANDING", landing))
    project = Project.load(tmp_path / "kpiforge.yaml")
    if expected is None:
        assert {r.kpi: r.value for r in project.run(period="2026-09", kpis=["ctr"]).records} == \
            {"ctr": pytest.approx(10.0)}
        return
    with pytest.raises(ProjectError, match=expected):
        project.engine  # noqa: B018


def test_two_bindings_of_one_input_for_one_kpi_are_refused(tmp_path: Path) -> None:
    (tmp_path / "kpiforge.yaml").write_text(textwrap.dedent("""
        sources:
          a: {type: csv, path: a.csv, time: day, inputs: {clicks: {agg: sum, for: [ctr]}}}
          b: {type: csv, path: a.csv, time: day, inputs: {clicks: {agg: sum, for: [ctr, cpc]}}}
    """))
    with pytest.raises(ProjectError, match="input 'clicks' for ctr is provided by both source 'a' and source 'b'"):
        Project.load(tmp_path / "kpiforge.yaml")
