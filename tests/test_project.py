"""The project file: schema, positioned diagnostics, environment variables, semantic checks."""

import textwrap
from pathlib import Path

import pytest

from kpiforge import ProjectError, SourceError
from kpiforge._project import expand_env, load_project, project_from_dict
from kpiforge._schema import check_schema, load_schema

GOOD = """\
definitions: [defs/]
currency: EUR
timezone: Europe/Paris
week_start: sunday
sources:
  ads:
    type: csv
    path: data/ads_*.csv
    time: date
    dimensions: [channel, campaign]
    inputs:
      impressions: {agg: sum}
      clicks: {agg: sum}
      cost: {column: spend, agg: sum}
  shop:
    type: sql
    url: postgresql+psycopg://kpi:${KF_TEST_PASSWORD}@127.0.0.1:5432/shop
    table: orders
    time: ordered_at
    dimensions: [channel]
    inputs:
      revenue: {column: amount, agg: sum}
      orders: {column: order_id, agg: count_distinct}
      conversions: {column: order_id, agg: count_distinct, filter: {status: [paid, shipped]}}
      bounces: {expression: "CASE WHEN pages = 1 THEN 1 ELSE 0 END", agg: sum}
state: .kpiforge/state.db
alerting: {}
sinks: {}
routes: []
"""

ENV = {"KF_TEST_PASSWORD": "s3cr3t-value"}


def write(tmp_path: Path, text: str, name: str = "kpiforge.yaml") -> Path:
    (tmp_path / "defs").mkdir(exist_ok=True)
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def errors_of(path, environ=ENV):
    with pytest.raises(ProjectError) as info:
        load_project(path, environ=environ)
    return info.value.diagnostics


def test_project_schema_is_publishable():
    assert check_schema("project.schema.json") == []
    assert load_schema("project.schema.json")["$id"] == "https://kpiforge.dev/schemas/v1/project.schema.json"


def test_a_good_project_loads_with_everything_resolved(tmp_path):
    project = load_project(write(tmp_path, GOOD), environ=ENV)
    assert project.root == tmp_path.resolve()
    assert project.definitions == (tmp_path.resolve() / "defs/",)
    assert (project.currency, project.timezone, project.week_start, project.week_start_index) == (
        "EUR", "Europe/Paris", "sunday", 6)
    assert list(project.sources) == ["ads", "shop"]
    ads = project.sources["ads"]
    assert (ads.type, ads.time, ads.dimensions) == ("csv", "date", ("channel", "campaign"))
    assert ads.inputs["impressions"].column == "impressions"  # defaults to the input's name
    assert ads.inputs["cost"].column == "spend"
    shop = project.sources["shop"]
    assert shop.inputs["conversions"].filter == {"status": ("paid", "shipped")}
    assert shop.inputs["bounces"].expression.startswith("CASE") and shop.inputs["bounces"].column is None
    assert project.input_sources()["revenue"] == "shop"
    assert project.dimensions() == ["channel", "campaign"]
    # the keys of the alerting feature are accepted and kept (their schema is alerting's)
    assert project.state == ".kpiforge/state.db"
    assert (dict(project.alerting), dict(project.sinks), project.routes) == ({}, {}, ())


def test_secrets_are_expanded_only_for_the_source_and_never_kept(tmp_path):
    project = load_project(write(tmp_path, GOOD), environ=ENV)
    assert "s3cr3t-value" not in repr(project)
    assert project.sources["shop"].settings["url"].endswith("${KF_TEST_PASSWORD}@127.0.0.1:5432/shop")
    settings = project.source_settings("shop", environ=ENV)
    assert settings["url"] == "postgresql+psycopg://kpi:s3cr3t-value@127.0.0.1:5432/shop"
    with pytest.raises(SourceError, match="KF_TEST_PASSWORD is not set"):
        project.source_settings("shop", environ={})


def test_an_unset_variable_is_an_error_naming_it_at_its_line(tmp_path):
    (diagnostic,) = errors_of(write(tmp_path, GOOD), environ={})
    assert diagnostic.code == "env"
    assert "KF_TEST_PASSWORD" in diagnostic.message
    assert (diagnostic.line, diagnostic.field) == (17, "sources.shop.url")


@pytest.mark.parametrize("text, expected", [
    ("plain", "plain"),
    ("a${X}b${Y}", "a1b2"),
    ("$X stays, $$ stays", "$X stays, $$ stays"),
])
def test_expand_env(text, expected):
    assert expand_env(text, {"X": "1", "Y": "2"}) == expected


def test_every_error_is_reported_at_once_with_positions_and_suggestions(tmp_path):
    path = write(tmp_path, """\
        timezone: Europe/Pariss
        week_start: mon
        sourcs: {}
        sources:
          ads:
            type: csvv
            path: data/ads.csv
            time: date
            dimensions: [channel]
            inputs:
              clicks: {agg: summ}
              cost: {colum: spend, agg: sum}
              spend: {column: spend, expression: "spend * 2", agg: sum}
          shop:
            type: duckdb
            time: ordered_at
            inputs:
              clicks: {agg: count}
        """)
    found: dict[tuple[int, str], str] = {}
    for d in errors_of(path):
        found[(d.line, d.field)] = found.get((d.line, d.field), "") + d.message + "\n"
    assert "unknown time zone 'Europe/Pariss'" in found[(1, "timezone")]
    assert "'mon' is not one of" in found[(2, "week_start")]
    assert "did you mean 'sources'" in found[(3, "sourcs")]
    assert "did you mean 'csv'" in found[(6, "sources.ads.type")]
    assert "'summ' is not one of" in found[(11, "sources.ads.inputs.clicks.agg")]
    assert "did you mean 'column'" in found[(12, "sources.ads.inputs.cost.colum")]
    assert "not both" in found[(13, "sources.ads.inputs.spend")]
    assert "missing required field 'path'" in found[(15, "sources.shop")]
    assert "needs 'table' or 'query'" in found[(15, "sources.shop")]
    duplicate = found[(18, "sources.shop.inputs.clicks")]
    assert "source 'ads'" in duplicate and "source 'shop'" in duplicate
    assert len(found) == 9  # and nothing else


def test_an_input_provided_by_two_sources_names_both(tmp_path):
    path = write(tmp_path, """\
        sources:
          one: {type: csv, path: a.csv, time: t, inputs: {clicks: {agg: sum}}}
          two: {type: csv, path: b.csv, time: t, inputs: {clicks: {agg: sum}}}
        """)
    (diagnostic,) = errors_of(path)
    assert diagnostic.message == "input 'clicks' is provided by both source 'one' and source 'two'"
    assert diagnostic.line == 3


def test_table_and_query_together_is_an_error(tmp_path):
    path = write(tmp_path, """\
        sources:
          shop: {type: sqlite, path: s.db, table: t, query: SELECT 1, time: t, inputs: {x: {agg: sum}}}
        """)
    (diagnostic,) = errors_of(path)
    assert "not both" in diagnostic.message and diagnostic.field == "sources.shop"


def test_filter_values_must_be_scalars_or_lists_of_scalars(tmp_path):
    path = write(tmp_path, """\
        sources:
          shop:
            type: csv
            path: s.csv
            time: t
            inputs:
              x: {agg: sum, filter: {status: {nested: map}}}
        """)
    (diagnostic,) = errors_of(path)
    assert diagnostic.field == "sources.shop.inputs.x.filter.status" and diagnostic.line == 7


def test_missing_definitions_folder_is_reported(tmp_path):
    path = write(tmp_path, """\
        definitions: [nowhere/]
        sources:
          ads: {type: csv, path: a.csv, time: t, inputs: {clicks: {agg: sum}}}
        """)
    (diagnostic,) = errors_of(path)
    assert "'nowhere/' does not exist" in diagnostic.message and diagnostic.field == "definitions[0]"


def test_yaml_problems_come_back_as_project_errors(tmp_path):
    path = write(tmp_path, "sources: [unclosed\n")
    assert errors_of(path)[0].code == "yaml-syntax"
    with pytest.raises(ProjectError, match="cannot read file"):
        load_project(tmp_path / "absent.yaml")


def test_a_dict_project_is_checked_the_same_way(tmp_path):
    project = project_from_dict({
        "timezone": "UTC",
        "sources": {"events": {"type": "records", "time": "ts", "data": [{"ts": "2026-01-01", "n": 1}],
                               "inputs": {"n": {"agg": "sum"}}}},
    }, root=tmp_path)
    assert project.root == tmp_path.resolve() and project.sources["events"].type == "records"
    with pytest.raises(ProjectError) as info:
        project_from_dict({"sources": {"x": {"type": "csv", "time": "t", "inputs": {"n": {"agg": "total"}}}}})
    messages = [d.message for d in info.value.diagnostics]
    assert any("missing required field 'path'" in m for m in messages)
    assert any("'total' is not one of" in m for m in messages)


def test_a_dataframe_under_data_is_kept_aside_from_validation():
    frame = object()  # anything that is not JSON: it must not reach the schema
    project = project_from_dict({"sources": {"events": {
        "type": "dataframe", "time": "ts", "data": frame, "inputs": {"n": {"agg": "sum"}}}}})
    assert project.inline_data["events"] is frame
