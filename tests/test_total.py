"""``total(x)``: x over the whole breakdown (the period, without --by), for shares of a total."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kpiforge import DefinitionError, Engine, Project

RNG = np.random.default_rng(7)

SHARES = """
kpis:
  - id: visitor_share
    name: Share of distinct visitors
    formula: unique_visitors / total(unique_visitors) * 100
    unit: percent
    direction: higher_is_better
    inputs: {unique_visitors: {unit: count, additivity: non_additive}}
  - id: reach_share
    name: Share of reach
    formula: reach / total(reach) * 100
    unit: percent
    direction: higher_is_better
    inputs: {reach: {unit: count, additivity: non_additive}}
"""


@pytest.fixture
def project(tmp_path: Path):
    days = pd.date_range("2026-09-01", "2026-10-31", freq="D")
    n = 3000
    sessions = pd.DataFrame({
        "started": RNG.choice(days, n),
        "source": RNG.choice(["organic", "social", "direct", "paid"], n, p=[0.53, 0.17, 0.2, 0.1]),
        "visitor": RNG.integers(0, 400, n),  # people come back through other sources
    })
    sessions.assign(started=sessions["started"].dt.strftime("%Y-%m-%d")).to_csv(
        tmp_path / "sessions.csv", index=False)
    (tmp_path / "reach.csv").write_text("month,channel,reach\n2026-10-01,search,100\n"
                                        "2026-10-01,social,50\n")
    (tmp_path / "team").mkdir()
    (tmp_path / "team" / "shares.yaml").write_text(SHARES)
    (tmp_path / "kpiforge.yaml").write_text(textwrap.dedent("""
        definitions: [kpiforge:standard, team/]
        sources:
          web:
            type: csv
            path: sessions.csv
            time: started
            dimensions: [source]
            inputs:
              sessions: {agg: count, column: visitor}
              unique_visitors: {agg: count_distinct, column: visitor}
          ads:
            type: csv
            path: reach.csv
            time: month
            grain: month
            keys: [channel]
            dimensions: [channel]
            inputs:
              reach: {agg: sum}
    """))
    return Project.load(tmp_path / "kpiforge.yaml"), sessions


def _by_source(result, kpi):
    return {r.slice["source"]: r.value for r in result.records if r.kpi == kpi}


def test_traffic_source_shares_sum_to_100_and_match_pandas(project) -> None:
    project, sessions = project
    result = project.run(kpis=["traffic_source_share"], period="2026-10", by="source")
    october = sessions[sessions["started"].dt.strftime("%Y-%m") == "2026-10"]
    expected = october.groupby("source").size() / len(october) * 100
    got = _by_source(result, "traffic_source_share")
    assert got == pytest.approx(expected.to_dict())
    assert sum(got.values()) == pytest.approx(100.0)


def test_a_distinct_count_total_is_recomputed_not_summed(project) -> None:
    project, sessions = project
    result = project.run(kpis=["visitor_share"], period="2026-10", by="source")
    october = sessions[sessions["started"].dt.strftime("%Y-%m") == "2026-10"]
    expected = october.groupby("source")["visitor"].nunique() / october["visitor"].nunique() * 100
    got = _by_source(result, "visitor_share")
    assert got == pytest.approx(expected.to_dict())
    assert sum(got.values()) > 100.0  # the same people came through several sources


def test_without_a_breakdown_the_total_is_the_value(project) -> None:
    project, _ = project
    result = project.run(kpis=["traffic_source_share", "visitor_share"], last=2)
    assert {(r.kpi, r.period): r.value for r in result.records} == {
        (k, p): 100.0 for k in ("traffic_source_share", "visitor_share") for p in ("2026-09", "2026-10")}


def test_the_total_of_a_non_additive_input_obeys_additivity(project) -> None:
    project, _ = project
    result = project.run(kpis=["reach_share"], period="2026-10", by="channel")
    for record in result.records:
        assert record.value is None and record.reason_code == "not_additive"
        assert "reach cannot be summed across channel" in record.reason


@pytest.mark.parametrize(("formula", "message"), [
    ("sessions / total(2) * 100", "total() takes the name of an input"),
    ("sessions / total(sessions, sessions) * 100", "total() takes exactly 1 argument"),
    ("sessions / total(total(sessions)) * 100", "total() takes the name of an input"),
    ("sessions / total(ctr) * 100", "total() takes one of the KPI's declared inputs"),
    ("sessions / total(sessions)", "formula gives ratio"),
])
def test_total_is_checked_where_written(tmp_path: Path, formula, message) -> None:
    (tmp_path / "share.yaml").write_text(textwrap.dedent(f"""
        id: share
        name: Share
        formula: "{formula}"
        unit: percent
        direction: higher_is_better
        inputs: {{sessions: {{unit: count}}}}
    """))
    with pytest.raises(DefinitionError) as info:
        Engine.load("kpiforge:standard", tmp_path)
    assert message in str(info.value) and "share.yaml" in str(info.value)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.one_of(st.none(), st.floats(0, 1e6)),
                          st.one_of(st.none(), st.floats(0, 1e6))), min_size=1, max_size=12))
def test_scalar_and_array_evaluation_agree(pairs) -> None:
    engine = Engine.load()
    parts = [None if a is None else a for a, _ in pairs]
    totals = [None if b is None else b for _, b in pairs]
    arrays = engine.evaluate({"sessions": np.array([np.nan if v is None else v for v in parts]),
                              "total(sessions)": np.array([np.nan if v is None else v for v in totals])},
                             kpis=["traffic_source_share"])["traffic_source_share"]
    for i, (part, total) in enumerate(zip(parts, totals)):
        scalar = engine.evaluate({"sessions": part, "total(sessions)": total},
                                 kpis=["traffic_source_share"])["traffic_source_share"]
        value = arrays.value[i]
        assert (scalar.value is None and np.isnan(value)) or scalar.value == value
        assert str(scalar.reason) == str(arrays.reason[i]) if scalar.reason else arrays.reason[i] is None
