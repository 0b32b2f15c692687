"""Outbox delivery: retries, isolation, crash safety (SIGKILL), and the alerts/silence commands."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from kpiforge import Engine, SinkError
from kpiforge.alerts import dispatch
from kpiforge.alerts._delivery import RetryPolicy, send_with_retries
from kpiforge.alerts._state import Store
from kpiforge.plugins.alerting_cli import alerts_group, silence_group
from tests.alert_servers import (  # noqa: F401
    hook_server,
    record,
    recording_plugins,
    verify_standard_webhook,
    write_kpis,
)

ROOT = Path(__file__).resolve().parents[1]
SECRET = "whsec_" + base64.b64encode(b"crash-test-secret-0123456789").decode()


# -- retry policy ----------------------------------------------------------------------------

@pytest.mark.parametrize("attempt, low, high", [(1, 0.5, 1.0), (2, 1.0, 2.0), (3, 2.0, 4.0),
                                                 (4, 4.0, 8.0), (5, 5.0, 10.0), (30, 5.0, 10.0)])
def test_backoff_is_exponential_with_bounded_jitter(attempt, low, high):
    policy = RetryPolicy(initial_delay=1.0, max_delay=10.0)
    delays = [policy.delay(attempt) for _ in range(200)]
    assert low <= min(delays) and max(delays) <= high
    assert len(set(delays)) > 1  # jittered


@pytest.mark.parametrize("retry_after, expected", [(3.0, 3.0), (0.0, 0.0), (500.0, 10.0)])
def test_retry_after_wins_over_backoff_but_is_capped(retry_after, expected):
    assert RetryPolicy(initial_delay=1.0, max_delay=10.0).delay(1, retry_after) == expected


@pytest.mark.parametrize("retry, words", [
    ({"max_attempts": 0}, "max_attempts"), ({"max_attempts": 21}, "max_attempts"),
    ({"initial_delay": "soon"}, "initial_delay"), ({"backoff": 2}, "unknown setting"),
    ("fast", "expected a mapping"),
])
def test_retry_settings_are_checked(retry, words):
    with pytest.raises(Exception) as caught:
        RetryPolicy().override(retry, None, key="sinks.ops")
    assert words in str(caught.value) and "sinks.ops" in str(caught.value)


def test_in_process_retries_are_bounded_by_total_delay():
    calls, slept = [], []

    def send(alert):
        calls.append(alert)
        raise SinkError("down", retryable=True)

    policy = RetryPolicy(max_attempts=20, initial_delay=1.0, max_delay=4.0, max_total_delay=6.0,
                         jitter=False, timeout=1.0)
    outcome = send_with_retries(send, lambda: "a", policy, sleep=slept.append)
    assert not outcome.ok and outcome.deferred
    assert slept == [1.0, 2.0] and sum(slept) <= 6.0 and len(calls) == 3


def test_permanent_errors_are_not_retried():
    calls = []

    def send(alert):
        calls.append(alert)
        raise SinkError("400", retryable=False)

    outcome = send_with_retries(send, lambda: "a", RetryPolicy(), sleep=lambda s: None)
    assert not outcome.ok and not outcome.deferred and len(calls) == 1


def test_a_sink_ignoring_its_timeout_is_abandoned(tmp_path):
    plugins, recorder = recording_plugins()
    engine = Engine.load(write_kpis(tmp_path), plugins=plugins)
    sinks = {"stuck": {"type": "recorder", "fail": "hang", "hang_for": 5, "timeout": "200ms",
                       "retry": {"max_attempts": 2, "initial_delay": "10ms"}},
             "fine": {"type": "recorder"}}
    started = time.monotonic()
    report = dispatch(engine, [record("ctr", "2026-10", 1.0, "warning")], project_dir=tmp_path,
                      alerting={}, sinks=sinks, routes=None, state_path=None, plugins=plugins)
    assert time.monotonic() - started < 4.5
    assert report.sent == {"fine": 1} and report.failed == {"stuck": 1}
    assert "timed out after 0.2s" in report.errors["stuck"][0]
    assert len(recorder.of("fine")) == 1


def test_messages_wait_in_the_outbox_until_the_sink_recovers(tmp_path):
    plugins, recorder = recording_plugins()
    engine = Engine.load(write_kpis(tmp_path), plugins=plugins)
    sinks = {"flaky": {"type": "recorder", "fail": "until:2",
                       "retry": {"max_attempts": 1, "initial_delay": "10ms"}}}
    options = dict(project_dir=tmp_path, alerting={}, sinks=sinks, routes=None, state_path=None,
                   plugins=plugins)
    first = dispatch(engine, [record("ctr", "2026-10", 1.0, "warning")], **options)
    assert first.failed == {"flaky": 1} and first.pending == 1
    time.sleep(0.05)  # the message is due again after its (tiny) backoff
    second = dispatch(engine, [record("ctr", "2026-10", 1.0, "warning")], **options)
    assert second.created == 0 and second.failed == {"flaky": 1}
    time.sleep(0.05)
    third = dispatch(engine, [record("ctr", "2026-10", 1.0, "warning")], **options)
    assert third.created == 0 and third.sent == {"flaky": 1} and third.pending == 0
    [alert] = recorder.of("flaky")
    with Store(tmp_path / ".kpiforge" / "state.db") as store:
        attempts = store.conn.execute("SELECT attempt, ok FROM deliveries ORDER BY seq").fetchall()
    assert [tuple(a) for a in attempts] == [(1, 0), (2, 0), (3, 1)]
    assert alert.id.startswith("msg_")


# -- crash safety ----------------------------------------------------------------------------

PROJECT_YAML = """\
state: .kpiforge/state.db
alerting: {{repeat_interval: 1d, retry: {{max_attempts: 2, initial_delay: 10ms}}}}
sinks:
  ops:
    type: webhook
    url: {url}/hook
    secret: ${{CRASH_SECRET}}
"""

CHILD = textwrap.dedent("""
    import sys
    from kpiforge import Engine
    from kpiforge._yamlio import load_document
    from kpiforge.alerts import dispatch
    root = sys.argv[1]
    config = load_document(root + "/kpiforge.yaml").data
    engine = Engine.load(root + "/kpis.yaml")
    records = [
        {"kpi": "ctr", "period": "2026-10", "slice": {"country": c}, "value": 1.0,
         "unit": "percent", "status": "warning"} for c in ("FR", "DE", "IT")]
    report = dispatch(engine, records, project_dir=root, alerting=config.get("alerting"),
                      sinks=config.get("sinks"), routes=config.get("routes"),
                      state_path=config.get("state"), plugins=None)
    print(report.created, sum(report.sent.values()), report.pending)
""")


def _crash_project(tmp_path, hook_server):
    write_kpis(tmp_path)
    (tmp_path / "kpiforge.yaml").write_text(PROJECT_YAML.format(url=hook_server.url))
    return {**os.environ, "CRASH_SECRET": SECRET, "PYTHONPATH": str(ROOT)}


def _run_child(tmp_path, env, failpoint=None):
    env = dict(env)
    env.pop("KPIFORGE_FAILPOINT", None)
    if failpoint:
        env["KPIFORGE_FAILPOINT"] = failpoint
    return subprocess.run([sys.executable, "-c", CHILD, str(tmp_path)], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)


def _kpiforge(tmp_path, env, *args):
    return subprocess.run([sys.executable, "-m", "kpiforge", *args], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)


def test_killed_after_outbox_write_then_alerts_retry_delivers(tmp_path, hook_server):
    env = _crash_project(tmp_path, hook_server)
    crashed = _run_child(tmp_path, env, "after-outbox-write")
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr
    assert hook_server.received() == []

    pending = _kpiforge(tmp_path, env, "alerts", "pending", "--format", "json")
    assert pending.returncode == 0, pending.stderr
    assert len(json.loads(pending.stdout)["pending"]) == 3

    retried = _kpiforge(tmp_path, env, "alerts", "retry")
    assert retried.returncode == 0, retried.stderr
    assert "3 delivered" in retried.stdout
    requests = hook_server.received("/hook")
    assert sorted(r.json()["data"]["slice"]["country"] for r in requests) == ["DE", "FR", "IT"]
    for request in requests:
        verify_standard_webhook(SECRET, request.headers, request.body)

    # the state was committed with the outbox: running again notifies nobody twice
    again = _run_child(tmp_path, env)
    assert again.returncode == 0 and again.stdout.split() == ["0", "0", "0"]
    assert len(hook_server.received("/hook")) == 3


def test_killed_after_send_redelivers_with_the_same_webhook_id(tmp_path, hook_server):
    env = _crash_project(tmp_path, hook_server)
    crashed = _run_child(tmp_path, env, "after-send")
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr
    [delivered_once] = hook_server.received("/hook")  # accepted, but never marked delivered

    restarted = _run_child(tmp_path, env)
    assert restarted.returncode == 0, restarted.stderr
    assert restarted.stdout.split() == ["0", "3", "0"]  # nothing new, the 3 queued delivered
    requests = hook_server.received("/hook")
    assert len(requests) == 4
    by_id: dict[str, list] = {}
    for request in requests:
        verify_standard_webhook(SECRET, request.headers, request.body)
        by_id.setdefault(request.headers["webhook-id"], []).append(request)
    # every alert arrived at least once; the duplicate carries the same id and body
    assert len(by_id) == 3
    duplicate = by_id[delivered_once.headers["webhook-id"]]
    assert len(duplicate) == 2 and duplicate[0].body == duplicate[1].body
    countries = {r.json()["data"]["slice"]["country"] for r in requests}
    assert countries == {"FR", "DE", "IT"}


# -- the alerts and silence commands ---------------------------------------------------------

@pytest.fixture
def cli_project(tmp_path, hook_server):
    write_kpis(tmp_path)
    (tmp_path / "kpiforge.yaml").write_text(textwrap.dedent(f"""\
        state: var/alerts.db
        alerting: {{retry: {{max_attempts: 1, initial_delay: 10ms}}}}
        sinks:
          hook: {{type: webhook, url: "{hook_server.url}/hook"}}
          log: {{type: file, path: alerts.jsonl}}
        routes:
          - match: {{severity: critical}}
            sinks: [hook]
          - match: {{}}
            sinks: [log]
        """))
    return tmp_path


def _dispatch(project: Path, *records):
    from kpiforge._yamlio import load_document

    config = load_document(project / "kpiforge.yaml").data
    engine = Engine.load(project / "kpis.yaml")
    return dispatch(engine, list(records), project_dir=project, alerting=config["alerting"],
                    sinks=config["sinks"], routes=config["routes"], state_path=config["state"])


def invoke(group, *args):
    return CliRunner().invoke(group, list(args), catch_exceptions=False)


def test_alerts_pending_and_retry(cli_project, hook_server):
    project = str(cli_project / "kpiforge.yaml")
    hook_server.answer("/hook", "400", "200")
    report = _dispatch(cli_project, record("ctr", "2026-10", 0.1, "critical"))
    assert report.failed == {"hook": 1}
    assert (cli_project / "var" / "alerts.db").exists()

    pending = invoke(alerts_group, "pending", "--project", project, "--format", "json")
    [row] = json.loads(pending.output)["pending"]
    assert row["sink"] == "hook" and row["status"] == "failed" and "HTTP 400" in row["last_error"]
    table = invoke(alerts_group, "pending", "--project", project)
    assert "1 undelivered message\n" in table.output

    retried = invoke(alerts_group, "retry", "--project", project)
    assert retried.exit_code == 0 and "1 delivered, 0 failed, 0 still undelivered" in retried.output
    first, second = hook_server.received("/hook")
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    assert json.loads(invoke(alerts_group, "pending", "--project", project, "--format", "json")
                      .output)["pending"] == []


def test_alerts_retry_exits_1_when_still_failing(cli_project, hook_server):
    hook_server.answer("/hook", default="500")
    _dispatch(cli_project, record("ctr", "2026-10", 0.1, "critical"))
    result = CliRunner().invoke(alerts_group, ["retry", "--project", str(cli_project / "kpiforge.yaml")])
    assert result.exit_code == 1 and "0 delivered, 1 failed, 1 still undelivered" in result.output


def test_alerts_list(cli_project):
    _dispatch(cli_project, record("ctr", "2026-10", 1.0, "warning", slice={"country": "FR"}),
              record("cpc", "2026-10", 4.0, "warning"))
    listed = json.loads(invoke(alerts_group, "list", "--project", str(cli_project / "kpiforge.yaml"),
                               "--format", "json").output)["alerts"]
    states = {(a["kpi"], a["state"], a["severity"]) for a in listed}
    assert states == {("ctr", "firing", "warning"), ("cpc", "pending", "warning")}
    table = invoke(alerts_group, "list", "--project", str(cli_project / "kpiforge.yaml"))
    assert "2 alerts" in table.output and "firing" in table.output


def test_alerts_test_sends_to_one_sink(cli_project, hook_server):
    project = str(cli_project / "kpiforge.yaml")
    result = invoke(alerts_group, "test", "log", "--project", project)
    assert result.exit_code == 0 and "delivered to sink 'log'" in result.output
    [line] = (cli_project / "alerts.jsonl").read_text().splitlines()
    assert json.loads(line)["data"]["kind"] == "test"
    assert invoke(alerts_group, "test", "hook", "--project", project).exit_code == 0
    assert hook_server.received("/hook")[0].json()["data"]["kpi"] == "kpiforge_test"

    unknown = CliRunner().invoke(alerts_group, ["test", "nope", "--project", project])
    assert unknown.exit_code == 1 and "unknown sink 'nope'" in unknown.output
    hook_server.answer("/hook", "400")
    failing = CliRunner().invoke(alerts_group, ["test", "hook", "--project", project])
    assert failing.exit_code == 1 and "HTTP 400" in failing.output


def test_missing_project_file_is_a_usage_error(tmp_path):
    result = CliRunner().invoke(alerts_group, ["pending", "--project", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 2 and "project file not found" in result.output


def test_silence_commands(cli_project):
    project = str(cli_project / "kpiforge.yaml")
    added = invoke(silence_group, "add", "--kpi", "ctr", "--match", "country=FR", "--for", "2d",
                   "--comment", "campaign paused", "--author", "ana", "--project", project)
    assert added.exit_code == 0
    silence_id = added.output.split()[0]

    listed = json.loads(invoke(silence_group, "list", "--project", project, "--format", "json").output)
    [silence] = listed["silences"]
    assert silence["id"] == silence_id and silence["kpi"] == "ctr"
    assert silence["matchers"] == {"country": "FR"} and silence["comment"] == "campaign paused"
    assert silence["created_by"] == "ana"

    report = _dispatch(cli_project, record("ctr", "2026-10", 1.0, "warning", slice={"country": "FR"}),
                       record("ctr", "2026-10", 1.0, "warning", slice={"country": "DE"}))
    assert report.silenced == 1 and report.sent == {"log": 1}
    alerts = json.loads(invoke(alerts_group, "list", "--project", project, "--format", "json").output)
    assert {(a["slice"]["country"], a["state"], a["silenced"]) for a in alerts["alerts"]} == {
        ("FR", "firing", True), ("DE", "firing", False)}

    removed = invoke(silence_group, "remove", silence_id, "--project", project)
    assert removed.exit_code == 0
    assert json.loads(invoke(silence_group, "list", "--project", project, "--format", "json")
                      .output)["silences"] == []
    again = CliRunner().invoke(silence_group, ["remove", silence_id, "--project", project])
    assert again.exit_code == 1 and "no silence" in again.output
    # unsilenced: the FR alert that kept firing is told now
    report = _dispatch(cli_project, record("ctr", "2026-10", 1.0, "warning", slice={"country": "FR"}))
    assert report.sent == {"log": 1}


@pytest.mark.parametrize("args, words", [
    (["--for", "2d", "--comment", "x"], "give --kpi and/or --match"),
    (["--kpi", "ctr", "--for", "soon", "--comment", "x"], "not a duration"),
    (["--kpi", "ctr", "--for", "0s", "--comment", "x"], "longer than 0"),
    (["--kpi", "ctr", "--match", "country", "--for", "1d", "--comment", "x"], "label=value"),
])
def test_silence_add_rejects(cli_project, args, words):
    result = CliRunner().invoke(silence_group, ["add", *args, "--project",
                                                str(cli_project / "kpiforge.yaml")])
    assert result.exit_code == 2 and words in result.output


def test_commands_are_registered_in_the_real_cli(tmp_path):
    done = subprocess.run([sys.executable, "-m", "kpiforge", "--help"], capture_output=True,
                          text=True, timeout=60, cwd=ROOT)
    assert done.returncode == 0
    assert "alerts" in done.stdout and "silence" in done.stdout
    assert "warning" not in done.stderr


def test_silence_works_when_another_part_of_the_project_is_broken(tmp_path):
    (tmp_path / "kpiforge.yaml").write_text(
        "state: st/alerts.db\nsources: {orders: {type: sql, url: '${KPIF_UNSET_PG_URL}',"
        " time: day, inputs: {n: {agg: count}}}}\n")
    added = CliRunner().invoke(silence_group, ["add", "--kpi", "ctr", "--for", "1h", "--comment",
                                               "x", "--project", str(tmp_path / "kpiforge.yaml")])
    assert added.exit_code == 0, added.output
    assert (tmp_path / "st" / "alerts.db").exists()
