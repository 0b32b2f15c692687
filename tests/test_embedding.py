"""Embedding kpiforge: ``Project.load(...).run(...)``, its typed result and ``Project.dispatch``.

The project is a team's: its own KPI file next to the bundled catalog, a CSV by channel, a file
sink. Every check compares with ``kpiforge run`` where the CLI says the same thing.
"""

import dataclasses
import inspect
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import kpiforge
from kpiforge import AlertConfigError, DispatchSummary, MissingExtraError, Project, Record, RunResult, Status
from kpiforge._plugins import load_plugins
from tests.alert_servers import hook_server  # noqa: F401  (a fixture)

TEAM_KPIS = """\
kpis:
  - id: signup_rate
    name: Sign-up rate
    formula: signups / visits * 100
    inputs: {signups: {unit: count}, visits: {unit: count}}
    unit: percent
    status: certified  # a draft would not alert
    direction: higher_is_better
    thresholds: {good: 8, warning: 5, critical: 2}
  - id: cost_per_signup
    name: Cost per sign-up
    formula: spend / signups
    inputs: {spend: {unit: currency}, signups: {unit: count}}
    unit: currency
    status: certified
    direction: lower_is_better
"""

PROJECT = """\
definitions: [kpiforge:standard, team/]
currency: USD
fx: {EUR: 1.08}
timezone: Europe/Paris
state: .kpiforge/state.db
sources:
  web:
    type: csv
    path: web.csv
    time: day
    dimensions: [channel]
    inputs:
      visits: {agg: sum}
      signups: {agg: sum}
      spend: {agg: sum}
sinks:
  log: {type: file, path: alerts.jsonl}
"""

ROWS = """\
day,channel,visits,signups,spend
2026-10-01,search,1000,100,250.0
2026-10-02,search,1000,60,250.0
2026-10-01,social,1000,10,100.0
2026-10-02,social,1000,0,100.0
"""


def write_project(root: Path, project: str = PROJECT) -> Path:
    (root / "team").mkdir(exist_ok=True)
    (root / "team" / "kpis.yaml").write_text(TEAM_KPIS)
    (root / "web.csv").write_text(ROWS)
    (root / "kpiforge.yaml").write_text(project)
    return root / "kpiforge.yaml"


@pytest.fixture
def team(tmp_path, monkeypatch):
    write_project(tmp_path)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def kpiforge_cli(*args, cwd):
    return subprocess.run([sys.executable, "-m", "kpiforge", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=120)


# ----------------------------------------------------------------------------- acceptance

def test_project_load_runs_the_teams_own_kpis_like_the_cli_and_to_pandas_works(team):
    result = Project.load("kpiforge.yaml").run(period="2026-10", by="channel",
                                               kpis=["signup_rate", "cost_per_signup"])
    assert isinstance(result, RunResult)
    rates = {r.slice["channel"]: r.value for r in result if r.kpi == "signup_rate"}
    assert rates == {"search": pytest.approx(8.0), "social": pytest.approx(0.5)}
    costs = {r.slice["channel"]: (r.value, r.currency) for r in result if r.kpi == "cost_per_signup"}
    assert costs == {"search": (pytest.approx(500 / 160), "USD"), "social": (pytest.approx(20.0), "USD")}

    cli = kpiforge_cli("run", "--period", "2026-10", "--by", "channel", "--kpi", "signup_rate",
                       "--kpi", "cost_per_signup", "--format", "json", "--no-alerts", cwd=team)
    assert cli.returncode == 0, cli.stderr
    assert json.loads(cli.stdout) == {"results": result.to_records(), "warnings": [], "objectives": []}

    frame = result.to_pandas()
    assert list(frame.columns) == ["kpi", "period", "channel", "value", "unit", "currency", "status",
                                   "reason", "reason_code", "previous", "change_pct"]
    search = frame[(frame.kpi == "signup_rate") & (frame.channel == "search")]
    assert search.value.tolist() == [pytest.approx(8.0)] and search.status.tolist() == ["good"]


def test_without_kpis_the_run_computes_every_kpi_the_sources_feed_the_teams_included(team):
    assert set(Project.load(team).run(period="2026-10").kpis) == {"signup_rate", "cost_per_signup"}


def test_project_engine_has_the_projects_definitions_and_is_loaded_once(team):
    project = Project.load("kpiforge.yaml")
    assert project.engine is project.engine
    assert {"signup_rate", "cost_per_signup", "ctr"} <= set(project.engine.definitions)
    assert project.engine["cost_per_signup"].currency == "USD"


def test_run_has_a_typed_signature_named_like_the_cli_options():
    parameters = inspect.signature(Project.run).parameters
    assert list(parameters) == ["self", "grain", "period", "start", "end", "last", "by", "kpis",
                                "compare", "data", "progress"]
    hints = inspect.get_annotations(Project.run)
    assert all(p.kind is p.KEYWORD_ONLY for n, p in parameters.items() if n != "self")
    assert set(hints) == set(parameters) - {"self"} | {"return"}


def test_plugins_are_loaded_once_and_handed_down(team):
    plugins = load_plugins()
    project = Project.load("kpiforge.yaml", plugins=plugins)
    assert project.plugins is plugins and project.engine.plugins is plugins
    own = Project.load("kpiforge.yaml")
    assert own.engine.plugins is own.plugins and own.plugins is not plugins


def test_from_dict_takes_definitions_relative_to_root_and_in_memory_tables(team):
    rows = [{"day": "2026-10-01", "channel": "search", "visits": 10, "signups": 1}]
    project = Project.from_dict({"definitions": ["team"], "sources": {"events": {
        "type": "records", "time": "day", "inputs": {"visits": {"agg": "sum"}, "signups": {"agg": "sum"}}}}},
        root=team)
    (record,) = project.run(period="2026-10", kpis=["signup_rate"], data=rows)
    assert (record.kpi, record.value, record.status) == ("signup_rate", 10.0, Status.GOOD)


# ----------------------------------------------------------------------------- the result

def test_records_are_frozen_dataclasses_with_a_read_only_slice(team):
    result = Project.load(team).run(period="2026-10", by="channel", kpis=["signup_rate"],
                                    compare=["previous", "year"])
    record = result.records[0]
    assert isinstance(record, Record) and dataclasses.is_dataclass(record)
    with pytest.raises(dataclasses.FrozenInstanceError):
        record.value = 1.0
    with pytest.raises(TypeError):
        record.slice["channel"] = "x"
    assert record.status is Status.GOOD and record.to_dict(year=True)["status"] == "good"
    assert list(result.to_records()[0])[-4:] == ["previous", "change_pct", "previous_year", "change_pct_year"]
    assert result.warnings == ()


@pytest.mark.parametrize("method", ["to_pandas", "to_polars", "to_arrow"])
def test_tables_have_a_column_per_dimension_and_numeric_values(team, method):
    result = Project.load(team).run(period="2026-10", by="channel", kpis=["signup_rate", "cost_per_signup"],
                                    compare="previous")
    table = getattr(result, method)()
    if method == "to_pandas":
        rows = table.to_dict("records")
        dtype = str(table["previous"].dtype)
    elif method == "to_polars":
        rows = table.to_dicts()
        dtype = str(table.schema["previous"])
    else:
        rows = table.to_pylist()
        dtype = str(table.schema.field("previous").type)
    assert dtype.lower().startswith(("float64", "double"))  # all null, still a number column
    expected = [{**{k: v for k, v in r.items() if k != "slice"}, **r["slice"]} for r in result.to_records()]
    assert [{k: (None if v != v else v) for k, v in row.items()} for row in rows] == expected
    assert list(rows[0]) == result.columns()


def test_a_dimension_named_like_a_record_field_keeps_both_columns(tmp_path):
    rows = [{"day": "2026-10-01", "status": "new", "visits": 10, "signups": 1}]
    write_project(tmp_path)
    project = Project.from_dict({"definitions": ["team"], "sources": {"events": {
        "type": "records", "time": "day", "dimensions": ["status"],
        "inputs": {"visits": {"agg": "sum"}, "signups": {"agg": "sum"}}}}}, root=tmp_path)
    frame = project.run(period="2026-10", by="status", kpis=["signup_rate"], data=rows).to_pandas()
    assert frame[["slice.status", "status"]].values.tolist() == [["new", "good"]]


@pytest.mark.parametrize("method, module, extra", [
    ("to_pandas", "pandas", "dataframe"), ("to_polars", "polars", "polars"), ("to_arrow", "pyarrow", "dataframe"),
])
def test_a_missing_table_library_names_the_extra(team, monkeypatch, method, module, extra):
    result = Project.load(team).run(period="2026-10", kpis=["signup_rate"])
    monkeypatch.setitem(sys.modules, module, None)  # import now raises ImportError
    with pytest.raises(MissingExtraError, match=rf"needs {module}.*pip install 'kpiforge\[{extra}\]'"):
        getattr(result, method)()


# ----------------------------------------------------------------------------- alerting

def test_dispatch_alerts_from_python_and_returns_a_typed_summary(team):
    project = Project.load("kpiforge.yaml")
    result = project.run(period="2026-10", by="channel", kpis=["signup_rate"])
    dry = project.dispatch(result, dry_run=True)
    assert isinstance(dry, DispatchSummary) and dry.dry_run
    assert [n.alert.slice["channel"] for n in dry.notifications] == ["social"]
    assert not (team / "alerts.jsonl").exists() and not (team / ".kpiforge" / "state.db").exists()

    summary = project.dispatch(result)
    assert (summary.created, summary.sent, summary.failed, summary.pending) == (1, 1, 0, 0)
    assert dict(summary.sent_by_sink) == {"log": 1}
    assert summary.text() == "alerts: 1 notification; 1 delivery sent"
    (line,) = (team / "alerts.jsonl").read_text().splitlines()
    assert json.loads(line)["data"]["kpi"] == "signup_rate"
    with pytest.raises(dataclasses.FrozenInstanceError):
        summary.sent = 2

    again = project.dispatch(result)
    assert (again.created, again.sent) == (0, 0)
    assert again.text() == "alerts: 0 notifications; no deliveries"


def test_failed_deliveries_are_counted_and_wait_in_the_outbox(tmp_path, monkeypatch, hook_server):
    hook_server.answer("/hook", "500", default="500")
    write_project(tmp_path, PROJECT.replace(
        "log: {type: file, path: alerts.jsonl}",
        f"ops: {{type: webhook, url: '{hook_server.url}/hook', retry: {{max_attempts: 1}}}}"))
    monkeypatch.chdir(tmp_path)
    project = Project.load("kpiforge.yaml")
    summary = project.dispatch(project.run(period="2026-10", by="channel", kpis=["signup_rate"]))
    assert (summary.created, summary.sent, summary.failed, summary.pending) == (1, 0, 1, 1)
    assert dict(summary.failed_by_sink) == {"ops": 1} and summary.errors["ops"]
    assert summary.text() == "alerts: 1 notification; 0 deliveries sent, 1 failed, 1 pending retry"


def test_the_cli_summary_line_is_the_dispatch_summary(team):
    proc = kpiforge_cli("run", "--period", "2026-10", "--by", "channel", "--kpi", "signup_rate", cwd=team)
    assert proc.returncode == 0, proc.stderr
    assert "alerts: 1 notification; 1 delivery sent" in proc.stderr


def test_an_unusable_alert_setting_is_an_alert_config_error_at_its_line(team):
    (team / "kpiforge.yaml").write_text(PROJECT.replace("state: .kpiforge/state.db", 'state: ":memory:"'))
    project = Project.load("kpiforge.yaml")
    result = project.run(period="2026-10", by="channel", kpis=["signup_rate"])
    with pytest.raises(AlertConfigError) as caught:
        project.dispatch(result)
    assert (caught.value.path, caught.value.line, caught.value.field) == ("kpiforge.yaml", 5, "state")
    assert str(caught.value).startswith("kpiforge.yaml:5:8: state: ':memory:' cannot hold alert state")
    assert isinstance(caught.value, kpiforge.KpiforgeError)


def test_dispatch_refuses_routes_naming_what_no_kpi_has(team):
    (team / "kpiforge.yaml").write_text(PROJECT + textwrap.dedent("""\
        routes:
          - match: {kpi: signup_rat}
            sinks: [log]
        """))
    project = Project.load("kpiforge.yaml")
    result = project.run(period="2026-10", kpis=["signup_rate"])
    with pytest.raises(kpiforge.ProjectError, match="did you mean 'signup_rate'"):
        project.dispatch(result)
    assert not (team / "alerts.jsonl").exists()
