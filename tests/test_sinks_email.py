"""The email sink against a real SMTP server (aiosmtpd on 127.0.0.1)."""

from __future__ import annotations

import email
from email import policy

import pytest

from kpiforge import Engine, SinkError
from kpiforge.alerts import Alert, dispatch
from kpiforge.plugins.sinks.email import EmailSink
from tests.alert_servers import free_port, record, smtp_server, write_kpis  # noqa: F401


def make_alert(**changes):
    values = dict(fingerprint="0123456789abcdef", kpi="cpc", name="Cost per click", state="firing",
                  severity="critical", status="critical", value=6.5, unit="currency",
                  period="2026-10", slice={"country": "FR"}, thresholds={"critical": 5.0},
                  message="CPC <b>too high</b>", message_html="CPC &lt;b&gt;too high&lt;/b&gt;",
                  currency="EUR", owner="growth", id="msg_abc")
    values.update(changes)
    return Alert(**values)


def parse(envelope):
    return email.message_from_bytes(envelope.original_content, policy=policy.default)


def test_alert_email_through_dispatch(tmp_path, smtp_server):
    engine = Engine.load(write_kpis(tmp_path))
    sinks = {"growth-mail": {"type": "email", "host": smtp_server.host, "port": smtp_server.port,
                             "from": "kpi@example.com", "to": ["growth@example.com"],
                             "cc": "boss@example.com"}}
    report = dispatch(engine, [record("ctr", "2026-10", 0.2, "critical", unit="percent",
                                      slice={"channel": "<ads>"})],
                      project_dir=tmp_path, alerting={}, sinks=sinks, routes=None,
                      state_path=None, plugins=None)
    assert report.sent == {"growth-mail": 1}, report.errors
    [envelope] = smtp_server.envelopes
    assert envelope.mail_from == "kpi@example.com"
    assert sorted(envelope.rcpt_tos) == ["boss@example.com", "growth@example.com"]
    message = parse(envelope)
    assert message["Subject"] == "[CRITICAL] Click-through rate: critical"
    assert message["To"] == "growth@example.com" and message["Cc"] == "boss@example.com"
    assert message["X-Kpiforge-Message-Id"].startswith("msg_")
    assert message.get_content_type() == "multipart/alternative"
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    assert "Click-through rate is critical: 0.20 % for 2026-10 (channel=<ads>)." in text
    assert "Value: 0.20 %" in text
    assert "channel=&lt;ads&gt;" in html and "<ads>" not in html
    assert html.lstrip().lower().startswith("<!doctype html>")


def test_html_part_escapes_the_message_once(smtp_server):
    sink = EmailSink("mail", {"host": smtp_server.host, "port": smtp_server.port,
                              "from": "kpi@example.com", "to": "a@example.com"})
    sink.send(make_alert(owner="<script>x</script>"))
    message = parse(smtp_server.envelopes[0])
    html = message.get_body(("html",)).get_content()
    assert "CPC &lt;b&gt;too high&lt;/b&gt;" in html  # the text message, escaped once
    assert "&amp;lt;" not in html
    assert "&lt;script&gt;x&lt;/script&gt;" in html and "<script>" not in html
    assert "CPC <b>too high</b>" in message.get_body(("plain",)).get_content()


def test_resolved_and_subject_template(smtp_server):
    sink = EmailSink("mail", {"host": smtp_server.host, "port": smtp_server.port,
                              "from": "kpi@example.com", "to": ["a@example.com"],
                              "subject": "{{ kpi|upper }} {{ state }} ({{ value_text }})"})
    sink.send(make_alert(state="resolved"))
    assert parse(smtp_server.envelopes[0])["Subject"] == "CPC resolved (6.50 EUR)"
    hostile = EmailSink("mail", {"host": smtp_server.host, "port": smtp_server.port,
                                 "from": "kpi@example.com", "to": ["a@example.com"],
                                 "subject": "{{ ''.__class__.__mro__ }}\r\nBcc: evil@example.com"})
    hostile.send(make_alert())
    message = parse(smtp_server.envelopes[1])
    assert message["Subject"].strip().startswith("[CRITICAL] Cost per click: critical [subject template error")
    assert message["Bcc"] is None


def test_subject_line_breaks_cannot_inject_headers(smtp_server):
    sink = EmailSink("mail", {"host": smtp_server.host, "port": smtp_server.port,
                              "from": "kpi@example.com", "to": ["a@example.com"],
                              "subject": "{{ name }}"})
    sink.send(make_alert(name="x\r\nBcc: evil@example.com"))
    [envelope] = smtp_server.envelopes
    assert envelope.rcpt_tos == ["a@example.com"]
    assert parse(envelope)["Bcc"] is None


@pytest.mark.parametrize("reply, retryable", [
    ("550 5.1.1 no such user", False),
    ("451 4.3.0 try again later", True),
])
def test_refused_recipients(smtp_server, reply, retryable):
    smtp_server.handler.reject_with = reply
    sink = EmailSink("mail", {"host": smtp_server.host, "port": smtp_server.port,
                              "from": "kpi@example.com", "to": ["a@example.com"], "timeout": 5})
    with pytest.raises(SinkError) as caught:
        sink.send(make_alert())
    assert caught.value.retryable is retryable
    assert "a@example.com" in str(caught.value)


def test_starttls_not_offered_is_a_clear_permanent_error(smtp_server):
    sink = EmailSink("mail", {"host": smtp_server.host, "port": smtp_server.port, "tls": "starttls",
                              "from": "kpi@example.com", "to": ["a@example.com"], "timeout": 5})
    with pytest.raises(SinkError) as caught:
        sink.send(make_alert())
    assert not caught.value.retryable and "STARTTLS" in str(caught.value).upper()


def test_connection_refused_is_retryable():
    sink = EmailSink("mail", {"host": "127.0.0.1", "port": free_port(), "from": "k@example.com",
                              "to": ["a@example.com"], "timeout": 2})
    with pytest.raises(SinkError) as caught:
        sink.send(make_alert())
    assert caught.value.retryable


@pytest.mark.parametrize("settings, words", [
    ({"from": "k@example.com", "to": ["a@example.com"]}, "missing 'host'"),
    ({"host": "127.0.0.1", "to": ["a@example.com"]}, "missing 'from'"),
    ({"host": "127.0.0.1", "from": "k@example.com"}, "missing 'to'"),
    ({"host": "127.0.0.1", "from": "k@example.com", "to": ["not-an-address"]}, "'to' must be"),
    ({"host": "127.0.0.1", "from": "k@example.com", "to": ["growth@"]}, "'growth@' is not one"),
    ({"host": "127.0.0.1", "from": "k@example.com", "to": "a@x.com, b@x.com"}, "go in a list"),
    ({"host": "127.0.0.1", "from": "k @example.com", "to": "a@x.com"}, "'from' must be"),
    ({"host": "127.0.0.1", "from": "k@example..com", "to": "a@x.com"}, "'from' must be"),
    ({"host": "smtp://127.0.0.1", "from": "k@example.com", "to": "a@x.com"}, "host name or address"),
    ({"host": "127.0.0.1", "from": "k@example.com", "to": ["a@example.com"], "tls": "maybe"}, "tls must be"),
    ({"host": "127.0.0.1", "from": "k@example.com", "to": ["a@example.com"], "port": 0}, "port must be"),
    ({"host": "smtp.example.com", "from": "k@example.com", "to": ["a@example.com"], "tls": "none",
      "username": "u", "password": "p"}, "without TLS"),
    ({"host": "127.0.0.1", "from": "k@example.com", "to": ["a@example.com"], "username": "u"}, "both"),
])
def test_email_settings_are_checked(settings, words):
    with pytest.raises(SinkError) as caught:
        EmailSink("mail", settings)
    assert words in str(caught.value)


@pytest.mark.parametrize("host, tls, port", [
    ("127.0.0.1", "none", 25), ("localhost", "none", 25), ("::1", "none", 25),
    ("smtp.example.com", "starttls", 587),
])
def test_tls_defaults(host, tls, port):
    sink = EmailSink("mail", {"host": host, "from": "k@example.com", "to": ["a@example.com"]})
    assert (sink.tls, sink.port) == (tls, port)
    assert EmailSink("mail", {"host": host, "from": "k@example.com", "to": "a@example.com",
                              "tls": "ssl"}).port == 465
