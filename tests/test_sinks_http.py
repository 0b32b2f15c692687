"""Webhook and Slack sinks against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import base64
import json
import sys
import time
from datetime import datetime, timezone

import jsonschema
import pytest

from kpiforge import Engine, SinkError
from kpiforge.alerts import Alert, dispatch
from kpiforge.alerts._state import Store
from kpiforge.plugins.sinks.http import (
    SlackSink,
    WebhookSink,
    decode_secret,
    parse_retry_after,
    sign,
)
from kpiforge._schema import load_schema
from tests.alert_servers import hook_server, record, verify_standard_webhook, write_kpis  # noqa: F401

SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()
FAST = {"max_attempts": 3, "initial_delay": "20ms", "max_delay": "200ms", "max_total_delay": "2s"}


@pytest.fixture
def engine(tmp_path):
    return Engine.load(write_kpis(tmp_path))


def run(engine, root, sinks, *records, now=None, alerting=None):
    return dispatch(engine, list(records or [record("ctr", "2026-10", 1.0, "warning", unit="percent")]),
                    project_dir=root, alerting=alerting or {}, sinks=sinks, routes=None,
                    state_path=None, plugins=None, now=now)


def outbox(root):
    with Store(root / ".kpiforge" / "state.db") as store:
        return store.undelivered(include_failed=True)


def test_webhook_is_signed_and_matches_the_published_schema(engine, tmp_path, hook_server, monkeypatch):
    monkeypatch.setenv("WEBHOOK_SECRET", SECRET)
    sinks = {"ops": {"type": "webhook", "url": hook_server.url + "/hook", "secret": "${WEBHOOK_SECRET}",
                     "headers": {"x-team": "growth"}}}
    report = run(engine, tmp_path, sinks, record("cpc", "2026-10", 6.5, "critical", slice={"country": "FR"}),
                 record("cpc", "2026-11", 6.5, "critical", slice={"country": "FR"}))
    assert report.sent == {"ops": 1}, report.errors
    [request] = hook_server.received("/hook")
    verify_standard_webhook(SECRET, request.headers, request.body)
    assert request.headers["content-type"] == "application/json"
    assert request.headers["x-team"] == "growth"
    assert request.headers["webhook-id"].startswith("msg_")
    body = request.json()
    jsonschema.Draft202012Validator(load_schema("alert.schema.json"),
                                    format_checker=jsonschema.FormatChecker()).validate(body)
    assert body["type"] == "kpi.alert"
    datetime.fromisoformat(body["timestamp"].replace("Z", "+00:00"))
    data = body["data"]
    assert {k: data[k] for k in ("kpi", "name", "state", "severity", "status", "value", "unit",
                                 "period", "slice", "thresholds")} == {
        "kpi": "cpc", "name": "Cost per click", "state": "firing", "severity": "critical",
        "status": "critical", "value": 6.5, "unit": "currency", "period": "2026-11",
        "slice": {"country": "FR"}, "thresholds": {"good": 2.0, "warning": 3.0, "critical": 5.0}}
    assert data["message"] == "Cost per click is critical: 6.50 EUR for 2026-11 (country=FR)."
    assert len(data["fingerprint"]) == 16


def test_a_tampered_body_fails_verification(hook_server):
    key = decode_secret(SECRET)
    signature = sign(key, "msg_1", int(time.time()), b'{"a":1}')
    headers = {"webhook-id": "msg_1", "webhook-timestamp": str(int(time.time())),
               "webhook-signature": signature}
    verify_standard_webhook(SECRET, headers, b'{"a":1}')
    with pytest.raises(AssertionError):
        verify_standard_webhook(SECRET, headers, b'{"a":2}')


def test_5xx_is_retried_with_the_same_webhook_id(engine, tmp_path, hook_server):
    hook_server.answer("/hook", "500", "503", "200")
    sinks = {"ops": {"type": "webhook", "url": hook_server.url + "/hook", "secret": SECRET, "retry": FAST}}
    report = run(engine, tmp_path, sinks)
    assert report.sent == {"ops": 1} and report.failed == {} and report.pending == 0
    requests = hook_server.received("/hook")
    assert len(requests) == 3
    assert len({r.headers["webhook-id"] for r in requests}) == 1
    assert len({r.body for r in requests}) == 1  # the same message, byte for byte
    for r in requests:
        verify_standard_webhook(SECRET, r.headers, r.body)


def test_429_honours_retry_after(engine, tmp_path, hook_server):
    hook_server.answer("/hook", "429:1", "200")
    sinks = {"ops": {"type": "webhook", "url": hook_server.url + "/hook",
                     "retry": {**FAST, "max_delay": "5s"}}}
    report = run(engine, tmp_path, sinks)
    assert report.sent == {"ops": 1}
    first, second = hook_server.received("/hook")
    assert 0.95 <= second.at - first.at < 3


def test_retry_after_is_capped(engine, tmp_path, hook_server):
    hook_server.answer("/hook", "429:3600", "200")
    sinks = {"ops": {"type": "webhook", "url": hook_server.url + "/hook",
                     "retry": {**FAST, "max_delay": "300ms"}}}
    started = time.monotonic()
    report = run(engine, tmp_path, sinks)
    assert report.sent == {"ops": 1} and time.monotonic() - started < 5
    first, second = hook_server.received("/hook")
    assert 0.25 <= second.at - first.at < 2


def test_retry_after_beyond_the_budget_is_deferred_to_the_outbox(engine, tmp_path, hook_server):
    hook_server.answer("/hook", "429:120")
    sinks = {"ops": {"type": "webhook", "url": hook_server.url + "/hook",
                     "retry": {**FAST, "max_delay": "10m", "max_total_delay": "1s"}}}
    now = datetime(2026, 11, 2, tzinfo=timezone.utc)
    report = run(engine, tmp_path, sinks, now=now)
    assert report.failed == {"ops": 1} and report.pending == 1
    assert len(hook_server.received("/hook")) == 1
    [row] = outbox(tmp_path)
    assert row["status"] == "pending" and row["attempts"] == 1
    assert row["next_attempt_at"] - now.timestamp() == pytest.approx(120, abs=2)
    assert "HTTP 429" in row["last_error"]


def test_4xx_is_not_retried(engine, tmp_path, hook_server):
    hook_server.answer("/hook", "400")
    sinks = {"ops": {"type": "webhook", "url": hook_server.url + "/hook", "retry": FAST}}
    report = run(engine, tmp_path, sinks)
    assert report.failed == {"ops": 1} and len(hook_server.received("/hook")) == 1
    [row] = outbox(tmp_path)
    assert row["status"] == "failed" and "HTTP 400" in row["last_error"]


def test_a_hanging_server_times_out_and_stays_in_the_outbox(engine, tmp_path, hook_server):
    hook_server.answer("/hook", default="hang")
    sinks = {"ops": {"type": "webhook", "url": hook_server.url + "/hook", "timeout": "300ms",
                     "retry": {**FAST, "max_attempts": 2}}}
    started = time.monotonic()
    report = run(engine, tmp_path, sinks)
    assert time.monotonic() - started < 5
    assert report.failed == {"ops": 1} and report.pending == 1
    assert "timed out" in report.errors["ops"][0]
    assert len(hook_server.received("/hook")) == 2


def test_a_failing_sink_does_not_delay_the_others(engine, tmp_path, hook_server):
    hook_server.answer("/bad", default="500")
    sinks = {
        "bad": {"type": "webhook", "url": hook_server.url + "/bad",
                "retry": {"max_attempts": 4, "initial_delay": "300ms", "max_delay": "1s",
                          "max_total_delay": "5s", "jitter": False}},
        "good": {"type": "webhook", "url": hook_server.url + "/good"},
    }
    report = run(engine, tmp_path, sinks, record("ctr", "2026-10", 1.0, "warning"),
                 record("cpc", "2026-10", 6.0, "critical"), record("cpc", "2026-11", 6.0, "critical"))
    assert report.sent == {"good": 2} and report.failed == {"bad": 2}
    good = hook_server.received("/good")
    bad = hook_server.received("/bad")
    # the bad sink's first message went through its 4 attempts (0.3 + 0.6 + 1.0 s apart: max_delay caps the last)...
    assert len(bad) == 4 and bad[-1].at - bad[0].at >= 1.8
    # ...while the good sink had both of its messages long before
    assert max(r.at for r in good) < bad[1].at
    # the bad sink's second message was left in the outbox untried, not retried in line
    rows = {r["sink"]: r for r in outbox(tmp_path)}
    assert set(rows) == {"bad"} and len(outbox(tmp_path)) == 2


def test_slack_message_has_blocks(engine, tmp_path, hook_server):
    hook_server.answer("/slack", "500", "200")
    sinks = {"team": {"type": "slack", "url": hook_server.url + "/slack", "retry": FAST}}
    report = run(engine, tmp_path, sinks, record("ctr", "2026-10", 0.2, "critical", unit="percent",
                                                 slice={"channel": "<ads & co>"}))
    assert report.sent == {"team": 1}
    first, second = hook_server.received("/slack")
    assert first.body == second.body
    body = second.json()
    assert body["text"].startswith("Critical: Click-through rate")
    kinds = [b["type"] for b in body["blocks"]]
    assert kinds == ["header", "section", "section", "context"]
    assert body["blocks"][0]["text"]["text"] == "Critical: Click-through rate"
    fields = " ".join(f["text"] for f in body["blocks"][2]["fields"])
    assert "0.20 %" in fields and "&lt;ads &amp; co&gt;" in fields and "<ads" not in fields


def test_slack_4xx_is_permanent(hook_server):
    hook_server.answer("/slack", "404")
    sink = SlackSink("team", {"url": hook_server.url + "/slack", "timeout": 2})
    alert = Alert(fingerprint="0" * 16, kpi="k", name="K", state="firing", severity="info",
                  status="ok", value=1.0, unit="count", period=None, slice={}, thresholds={},
                  message="m", id="msg_x")
    with pytest.raises(SinkError) as caught:
        sink.send(alert)
    assert not caught.value.retryable and "HTTP 404" in str(caught.value)


def test_connection_refused_is_retryable():
    from tests.alert_servers import free_port

    sink = WebhookSink("ops", {"url": f"http://127.0.0.1:{free_port()}/x", "timeout": 1})
    alert = Alert(fingerprint="0" * 16, kpi="k", name="K", state="firing", severity="info",
                  status="ok", value=1.0, unit="count", period=None, slice={}, thresholds={},
                  message="m", id="msg_x")
    with pytest.raises(SinkError) as caught:
        sink.send(alert)
    assert caught.value.retryable


@pytest.mark.parametrize("settings, words", [
    ({}, "missing 'url'"),
    ({"url": "ftp://example.com/x"}, "http:// or https://"),
    ({"url": "http://exa mple.com/x"}, "not a well-formed URL"),
    ({"url": "http://example.com:99999/x"}, "not a well-formed URL"),
    ({"url": "http://[not-ipv6]/x"}, "not a well-formed URL"),
    ({"url": "http://a..b/x"}, "not a well-formed URL"),
    ({"url": "http://127.0.0.1/x", "secret": "not-a-secret"}, "whsec_"),
    ({"url": "http://127.0.0.1/x", "secret": "whsec_!!!"}, "not valid base64"),
    ({"url": "http://127.0.0.1/x", "secret": "whsec_" + base64.b64encode(b"short").decode()}, "16 bytes"),
    ({"url": "http://127.0.0.1/x", "headers": ["x"]}, "headers"),
])
def test_webhook_settings_are_checked(settings, words):
    with pytest.raises(SinkError) as caught:
        WebhookSink("ops", settings)
    assert words in str(caught.value)


def test_missing_httpx_names_the_extra(monkeypatch, engine, tmp_path):
    monkeypatch.setitem(sys.modules, "httpx", None)
    with pytest.raises(SinkError) as caught:
        WebhookSink("ops", {"url": "http://127.0.0.1/x"})
    assert "pip install 'kpiforge[http]'" in str(caught.value)
    # through dispatch: the sink is broken, the message waits in the outbox with that error
    report = run(engine, tmp_path, {"ops": {"type": "webhook", "url": "http://127.0.0.1/x"},
                                    "log": {"type": "file", "path": "log.jsonl"}})
    assert report.sent == {"log": 1} and report.failed == {"ops": 1}
    assert "kpiforge[http]" in report.errors["ops"][0]


@pytest.mark.parametrize("header, seconds", [
    ("5", 5.0), ("0", 0.0), ("1.5", 1.5), ("-3", 0.0), ("abc", None), (None, None), ("", None),
    ("999999999", 86400.0),
])
def test_parse_retry_after(header, seconds):
    assert parse_retry_after(header) == seconds


def test_parse_retry_after_http_date():
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT",
                             now=datetime(2015, 10, 21, 7, 28, tzinfo=timezone.utc).timestamp()) == 30.0


def test_file_sink_line_is_valid_json_per_alert(engine, tmp_path):
    report = run(engine, tmp_path, {"log": {"type": "file", "path": "out/alerts.jsonl"}},
                 record("ctr", "2026-10", 1.0, "warning"), record("cpc", "2026-10", 6.0, "critical"),
                 record("cpc", "2026-11", 6.0, "critical"))
    assert report.sent == {"log": 2}
    lines = (tmp_path / "out" / "alerts.jsonl").read_text().splitlines()
    assert len(lines) == 2
    assert [json.loads(line)["data"]["kpi"] for line in lines] == ["ctr", "cpc"]


def test_apprise_sink_reaches_a_real_receiver(hook_server):
    """Apprise's own json:// service posts to our loopback server: the extra works end to end."""
    pytest.importorskip("apprise", reason="apprise is a dev dependency: make test installs it")
    from kpiforge.plugins.sinks.apprise import AppriseSink
    from tests.test_sinks_basic import make_alert

    url = hook_server.url.replace("http://", "json://") + "/apprise"
    AppriseSink("pager", {"urls": [url]}).send(make_alert())
    [request] = hook_server.received("/apprise")
    body = request.json()
    assert body["title"].startswith("Critical:")
    assert "too high" in body["message"]
    hook_server.answer("/apprise", "500")
    with pytest.raises(SinkError) as failed:
        AppriseSink("pager", {"urls": [url]}).send(make_alert())
    assert failed.value.retryable
