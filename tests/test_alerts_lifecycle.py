"""The alert lifecycle through ``dispatch``: rules, state in SQLite, routing, silences, restarts."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from kpiforge import Engine, ProjectError
from kpiforge.alerts import dispatch
from kpiforge.alerts._routing import parse_routes, route_alert
from kpiforge.alerts._state import Store
from tests.alert_servers import record, recording_plugins, write_kpis

T0 = datetime(2026, 11, 2, 8, 0, tzinfo=timezone.utc)
ROOT = Path(__file__).resolve().parents[1]


class Project:
    def __init__(self, root: Path):
        self.root = root
        self.plugins, self.recorder = recording_plugins()
        self.engine = Engine.load(write_kpis(root), plugins=self.plugins)
        self.sinks = {"ops": {"type": "recorder"}, "mail": {"type": "recorder"}}
        self.routes = None
        self.alerting = {"repeat_interval": "1d"}

    def run(self, *records, now=T0, **kwargs):
        options = dict(project_dir=self.root, alerting=self.alerting, sinks=self.sinks,
                       routes=self.routes, state_path=None, plugins=self.plugins, now=now)
        options.update(kwargs)
        return dispatch(self.engine, list(records), **options)

    def store(self) -> Store:
        return Store(self.root / ".kpiforge" / "state.db")

    def alert_rows(self):
        with self.store() as store:
            return {(r["kpi"], json.dumps(r["slice"], sort_keys=True)): r
                    for r in store.alerts(include_inactive=True)}

    def sent(self, sink="ops"):
        return [(a.kpi, a.state, a.severity, a.kind, a.period) for a in self.recorder.of(sink)]


@pytest.fixture
def project(tmp_path):
    return Project(tmp_path)


def test_for_two_goes_pending_then_fires_once(project):
    report = project.run(record("cpc", "2026-09", 4.0, "warning"))
    assert report.created == 0 and project.sent() == []
    [row] = project.alert_rows().values()
    assert row["state"] == "pending" and row["active_count"] == 1
    assert (project.root / ".kpiforge" / "state.db").exists()

    report = project.run(record("cpc", "2026-10", 4.2, "warning"))
    assert report.created == 1 and report.sent == {"ops": 1, "mail": 1} and report.pending == 0
    assert project.sent() == [("cpc", "firing", "warning", "firing", "2026-10")]
    alert = project.recorder.of("ops")[0]
    assert alert.name == "Cost per click" and alert.value == 4.2 and alert.owner == "growth"
    assert alert.message == "Cost per click is warning: 4.20 EUR for 2026-10."
    assert alert.id.startswith("msg_") and alert.id != project.recorder.of("mail")[0].id


def test_second_identical_run_sends_nothing(project):
    records = [record("ctr", "2026-10", 1.0, "warning", unit="percent"),
               record("cpc", "2026-10", 6.0, "critical")]
    first = project.run(*records)
    second = project.run(*records, now=T0 + timedelta(minutes=5))
    assert first.created == 1  # cpc has for: 2, so only ctr fires
    assert second.created == 0 and second.sent == {}
    third = project.run(*records, now=T0 + timedelta(minutes=10))
    assert third.created == 0
    assert len(project.recorder.of("ops")) == 1
    # the same period never counts as a second consecutive evaluation for cpc
    assert project.alert_rows()[("cpc", "{}")]["state"] == "pending"


def test_repeat_interval_uses_the_injected_clock(project):
    project.run(record("ctr", "2026-10-01", 1.0, "warning"))
    project.run(record("ctr", "2026-10-02", 1.0, "warning"), now=T0 + timedelta(hours=12))
    assert len(project.sent()) == 1
    project.run(record("ctr", "2026-10-03", 1.0, "warning"), now=T0 + timedelta(hours=25))
    assert [s[3] for s in project.sent()] == ["firing", "repeat"]
    # the next repeat is measured from the last notification, not from the first one
    project.run(record("ctr", "2026-10-04", 1.0, "warning"), now=T0 + timedelta(hours=40))
    assert len(project.sent()) == 2


def test_severity_change_notifies_at_once(project):
    project.run(record("ctr", "2026-10-01", 1.0, "warning"))
    project.run(record("ctr", "2026-10-02", 0.1, "critical"), now=T0 + timedelta(minutes=1))
    project.run(record("ctr", "2026-10-03", 0.1, "critical"), now=T0 + timedelta(minutes=2))
    assert [(s[2], s[3]) for s in project.sent()] == [("warning", "firing"), ("critical", "firing")]


def test_resolved_notifies_once(project):
    project.run(record("ctr", "2026-10-01", 1.0, "warning"))
    project.run(record("ctr", "2026-10-02", 4.0, "good"), now=T0 + timedelta(hours=1))
    project.run(record("ctr", "2026-10-03", 4.0, "good"), now=T0 + timedelta(days=3))
    assert [s[1] for s in project.sent()] == ["firing", "resolved"]
    resolved = project.recorder.of("ops")[1]
    assert resolved.ends_at is not None and resolved.status == "good"
    assert resolved.message.startswith("Click-through rate recovered")


def test_silence_suppresses_but_keeps_state(project):
    now = T0.timestamp()
    with project.store() as store:
        store.add_silence("s1", kpi="ctr", matchers={"country": "FR"}, starts_at=now - 1,
                          ends_at=now + 3600, comment="maintenance", created_by="test", now=now)
    fr = record("ctr", "2026-10", 1.0, "warning", slice={"country": "FR"})
    de = record("ctr", "2026-10", 1.0, "warning", slice={"country": "DE"})
    report = project.run(fr, de)
    assert report.silenced == 1 and report.created == 1
    assert [a.slice for a in project.recorder.of("ops")] == [{"country": "DE"}]
    rows = project.alert_rows()
    assert rows[("ctr", '{"country": "FR"}')]["state"] == "firing"  # the state moved on
    assert rows[("ctr", '{"country": "FR"}')]["notified_state"] is None  # but nothing was told

    # once the silence is over, the still-firing alert is notified (same period, new run)
    later = project.run(fr, de, now=T0 + timedelta(hours=2))
    assert later.created == 1 and project.recorder.of("ops")[-1].slice == {"country": "FR"}


def test_dry_run_changes_nothing(project):
    report = project.run(record("ctr", "2026-10", 1.0, "warning"), dry_run=True)
    assert report.dry_run and report.created == 1
    assert report.notifications[0].sinks == ("ops", "mail")
    assert not (project.root / ".kpiforge").exists() and project.sent() == []
    # with an existing database, the run is rolled back
    project.run(record("cpc", "2026-10", 4.0, "warning"))
    project.run(record("ctr", "2026-10", 1.0, "warning"), dry_run=True)
    assert ("ctr", "{}") not in project.alert_rows() and project.sent() == []


def test_older_period_is_stale(project):
    project.run(record("ctr", "2026-10", 1.0, "warning"))
    report = project.run(record("ctr", "2026-09", 4.0, "good"))
    assert report.stale == 1 and report.created == 0


def test_change_rule_through_dispatch_with_labels(project):
    project.routes = [{"match": {"team": "finance"}, "sinks": ["mail"]}]
    report = project.run(record("revenue", "2026-10", 70.0, "ok", previous=100.0, change_pct=-30.0))
    assert report.created == 1 and project.sent("ops") == []
    [alert] = project.recorder.of("mail")
    assert alert.labels == {"team": "finance"} and alert.change_pct == pytest.approx(-30.0)
    assert alert.message == "Revenue fell ▼ -30.0 % to 70.00 EUR"


def test_disabled_kpi_and_unknown_kpi_never_alert(project):
    report = project.run(record("quiet", "2026-10", 1.0, "critical"),
                         record("not_a_kpi", "2026-10", 1.0, "critical"))
    assert report.created == 0 and project.alert_rows() == {}


CONTRACT_ROUTES = [
    {"match": {"severity": "critical"}, "sinks": ["ops", "growth-mail"], "continue": True},
    {"match": {"category": "acquisition"}, "sinks": ["growth-mail"]},
    {"match": {"kpi": ["ctr", "cvr"], "owner": "brand"}, "sinks": ["brand"]},
    {"match": {"labels": {"team": "finance"}}, "sinks": ["finance"]},
]


@pytest.mark.parametrize("attributes, expected", [
    ({"kpi": "cpc", "category": "acquisition", "severity": "critical"}, ["ops", "growth-mail"]),
    ({"kpi": "cpc", "category": "acquisition", "severity": "warning"}, ["growth-mail"]),
    ({"kpi": "ctr", "category": "awareness", "severity": "critical", "owner": "brand"},
     ["ops", "growth-mail", "brand"]),
    ({"kpi": "ctr", "category": "awareness", "severity": "warning", "owner": "brand"}, ["brand"]),
    ({"kpi": "ctr", "category": "awareness", "severity": "warning", "owner": "other"}, []),
    ({"kpi": "revenue", "severity": "warning", "team": "finance"}, ["finance"]),
])
def test_routes_first_match_wins_unless_continue(attributes, expected):
    routes = parse_routes(CONTRACT_ROUTES, ["ops", "growth-mail", "brand", "finance"])
    assert route_alert(attributes, routes, ["ops", "growth-mail", "brand", "finance"]) == expected


def test_no_routes_means_every_sink():
    assert route_alert({"kpi": "x"}, parse_routes(None, ["a", "b"]), ["a", "b"]) == ["a", "b"]
    assert route_alert({"kpi": "x"}, parse_routes([], ["a", "b"]), ["a", "b"]) == ["a", "b"]


def test_unrouted_alerts_are_counted(project):
    project.routes = [{"match": {"category": "acquisition"}, "sinks": ["mail"]}]
    report = project.run(record("ctr", "2026-10", 1.0, "warning"))
    assert report.unrouted == 1 and report.sent == {}


@pytest.mark.parametrize("sinks, routes, field, words", [
    ({"x": {"type": "carrier-pigeon"}}, None, "sinks.x.type", ["unknown sink type 'carrier-pigeon'", "webhook"]),
    ({"x": {"url": "http://127.0.0.1"}}, None, "sinks.x.type", ["missing sink type"]),
    ({"ops": {"type": "recorder"}}, [{"sinks": ["ops", "nope"]}], "routes[0].sinks[1]",
     ["'nope'", "not defined under sinks", "ops"]),
    ({"ops": {"type": "recorder"}}, [{"sinks": ["opps"]}], "routes[0].sinks[0]",
     ["(did you mean 'ops'?)"]),
    ({"x": {"type": "recordr"}}, None, "sinks.x.type", ["(did you mean 'recorder'?)"]),
    ({"ops": {"type": "recorder"}}, [{"sinks": []}], "routes[0].sinks", ["non-empty"]),
    ({"ops": {"type": "recorder"}}, [{"sinks": ["ops"], "contine": True}], "routes[0].contine",
     ["unknown route key"]),
    ({"ops": {"type": "recorder", "retry": {"max_attempts": 0}}}, None, "sinks.ops", ["max_attempts"]),
])
def test_configuration_errors_name_the_file_key(project, sinks, routes, field, words):
    project.sinks, project.routes = sinks, routes
    with pytest.raises(ProjectError) as caught:
        project.run(record("ctr", "2026-10", 1.0, "warning"))
    fields = [d.field for d in caught.value.diagnostics]
    assert field in fields
    message = str(caught.value)
    assert "kpiforge.yaml" in message
    for word in words:
        assert word in message
    # nothing was evaluated or written before the configuration was found wrong
    assert not (project.root / ".kpiforge").exists()


def test_env_secrets_and_a_missing_one_breaks_only_its_sink(project, monkeypatch):
    monkeypatch.setenv("KPIF_TEST_TOKEN", "s3cret")
    monkeypatch.delenv("KPIF_TEST_MISSING", raising=False)
    captured = {}
    original = project.recorder.factory

    def factory(name, settings, context):
        captured[name] = dict(settings)
        return original(name, settings, context)

    project.plugins.sink_types["recorder"] = project.plugins.sink_types["recorder"].__class__(
        "sink", "recorder", "test", factory)
    project.sinks = {"ok": {"type": "recorder", "token": "Bearer ${KPIF_TEST_TOKEN} $$5 $${KEPT}"},
                     "broken": {"type": "recorder", "token": "${KPIF_TEST_MISSING}"}}
    report = project.run(record("ctr", "2026-10", 1.0, "warning"))
    assert captured["ok"]["token"] == "Bearer s3cret $$5 ${KEPT}"  # one expander (kpiforge._env)
    assert report.sent == {"ok": 1} and report.failed == {"broken": 1}
    assert "sinks.broken.token: environment variable KPIF_TEST_MISSING is not set" in report.errors["broken"][0]
    assert report.pending == 1  # kept for when the variable is set


CHILD = textwrap.dedent("""
    import sys
    from datetime import datetime, timezone
    from kpiforge import Engine
    from kpiforge.alerts import dispatch
    root, period, value, status = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4]
    engine = Engine.load(root + "/kpis.yaml")
    report = dispatch(engine, [{"kpi": "cpc", "period": period, "slice": {}, "value": value,
                                "unit": "currency", "status": status}],
                      project_dir=root, alerting={}, sinks={"log": {"type": "file", "path": "alerts.jsonl"}},
                      routes=None, state_path="state/alerts.db", plugins=None)
    print(report.created, sum(report.sent.values()))
""")


def _child(root: Path, period: str, value: float, status: str) -> str:
    done = subprocess.run([sys.executable, "-c", CHILD, str(root), period, str(value), status],
                          capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_restart_keeps_pending_timers_and_does_not_resend(tmp_path):
    write_kpis(tmp_path)
    assert _child(tmp_path, "2026-09", 4.0, "warning") == "0 0"   # pending, in process 1
    assert _child(tmp_path, "2026-10", 4.0, "warning") == "1 1"   # fires in process 2
    assert _child(tmp_path, "2026-10", 4.0, "warning") == "0 0"   # process 3: already sent
    assert _child(tmp_path, "2026-11", 1.0, "good") == "1 1"      # resolved, once
    assert _child(tmp_path, "2026-11", 1.0, "good") == "0 0"
    lines = [json.loads(line) for line in (tmp_path / "alerts.jsonl").read_text().splitlines()]
    assert [(x["data"]["state"], x["data"]["period"]) for x in lines] == [
        ("firing", "2026-10"), ("resolved", "2026-11")]
    assert (tmp_path / "state" / "alerts.db").exists()
    with Store(tmp_path / "state" / "alerts.db") as store:
        assert store.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_messages_use_the_chosen_language(project):
    project.run(record("cpc", "2026-09", 6.0, "critical"), lang="fr")
    project.run(record("cpc", "2026-10", 6.0, "critical"), lang="fr")
    [alert] = project.recorder.of("ops")
    assert alert.name == "Coût par clic"
    # the default message is in the chosen language too (templates/alert_messages.yaml)
    assert alert.message == "Coût par clic : statut critique, 6,00 EUR pour 2026-10."


def test_memory_state_is_refused_outside_dry_runs(project):
    with pytest.raises(Exception) as caught:
        project.run(record("ctr", "2026-10", 1.0, "warning"), state_path=":memory:")
    assert "state:" in str(caught.value)
    assert project.run(record("ctr", "2026-10", 1.0, "warning"), state_path=":memory:",
                       dry_run=True).created == 1


CONTRACT_YAML = """\
definitions: kpis.yaml
state: .kpiforge/state.db
alerting: {repeat_interval: 1d, send_resolved: true}
sinks:
  ops:
    type: webhook
    url: http://127.0.0.1:9000/hook
    secret: ${WEBHOOK_SECRET}          # Standard Webhooks secret, whsec_<base64>
  growth-mail:
    type: email
    host: 127.0.0.1
    port: 2525
    from: kpi@example.com
    to: [growth@example.com]
routes:
  - match: {severity: critical}
    sinks: [ops, growth-mail]
    continue: true
  - match: {category: acquisition}
    sinks: [growth-mail]
"""


def test_the_contract_project_file_is_accepted_and_dry_runs(tmp_path, monkeypatch):
    from kpiforge._project import load_project

    monkeypatch.setenv("WEBHOOK_SECRET", "whsec_" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldY")
    write_kpis(tmp_path)
    (tmp_path / "kpiforge.yaml").write_text(CONTRACT_YAML)
    loaded = load_project(tmp_path / "kpiforge.yaml")
    engine = Engine.load(tmp_path / "kpis.yaml")
    report = dispatch(engine, [record("cpc", "2026-10", 6.0, "critical"),
                               record("ctr", "2026-10", 1.0, "warning")],
                      project_dir=loaded.root, alerting=loaded.alerting, sinks=loaded.sinks,
                      routes=loaded.routes, state_path=loaded.state, plugins=engine.plugins,
                      dry_run=True)
    assert {n.alert.kpi: n.sinks for n in report.notifications} == {"ctr": ()}
    assert report.unrouted == 1  # ctr (awareness, warning) matches no route


@pytest.mark.parametrize("fragment, field", [
    ("alerting: {repeat_interval: often}\n", "alerting.repeat_interval"),
    ("alerting: {resend: true}\n", "alerting"),
    ("sinks: {ops: {url: 'http://x'}}\n", "sinks.ops"),
    ("routes: [{match: {severity: critical}}]\n", "routes[0]"),
    ("routes: [{sinks: [ops], continue: yes}]\n", "routes[0].continue"),
    ("state: ''\n", "state"),
])
def test_project_schema_checks_the_alerting_keys(tmp_path, fragment, field):
    from kpiforge._project import load_project

    (tmp_path / "kpiforge.yaml").write_text(fragment)
    with pytest.raises(ProjectError) as caught:
        load_project(tmp_path / "kpiforge.yaml")
    assert any(d.field.startswith(field) for d in caught.value.diagnostics), caught.value
