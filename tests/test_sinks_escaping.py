"""Alert text escaped for each medium, checked on what real loopback servers receive.

Names, slice values, owners and messages come from KPI files and data: in e-mail HTML they
must show as text, in Slack they must not become links, mentions or formatting.
"""

from __future__ import annotations

import email
import json
import re
from email import policy

import pytest

from kpiforge import Engine
from kpiforge.alerts import Alert, dispatch
from kpiforge.plugins.sinks.email import EmailSink
from kpiforge.plugins.sinks.http import SlackSink
from tests.alert_servers import hook_server, record, smtp_server  # noqa: F401


def make_alert(**changes):
    values = dict(fingerprint="0123456789abcdef", kpi="cpc", name="Cost per click", state="firing",
                  severity="critical", status="critical", value=6.5, unit="currency",
                  period="2026-10", slice={"country": "FR"}, thresholds={"critical": 5.0},
                  message="CPC too high", currency="EUR", owner="growth", id="msg_abc")
    values.update(changes)
    return Alert(**values)


HOSTILE = {
    "link": "<http://evil.example|Click here>",
    "mention": "<!channel> <@U123> <#C123>",
    "html": '<a href="http://evil.example">x</a><script>alert(1)</script><img src=x onerror=y>',
    "entity": "R&D &amp; co",
    "bold": "*bold* _italic_ ~strike~ `code`",
}


def slack_texts(body: dict, *, mrkdwn_only: bool = False) -> list[str]:
    """Every text Slack displays from the payload: top-level text and each block's texts."""
    texts = [body["text"]]
    for block in body["blocks"]:
        if "text" in block and not (mrkdwn_only and block["text"]["type"] == "plain_text"):
            texts.append(block["text"]["text"])
        texts.extend(f["text"] for f in block.get("fields", []))
        texts.extend(e["text"] for e in block.get("elements", []))
    return texts


@pytest.mark.parametrize("where", ["name", "message", "slice", "owner", "kpi"])
@pytest.mark.parametrize("case", list(HOSTILE))
def test_slack_payload_escapes_every_text_field(hook_server, where, case):
    value = HOSTILE[case]
    changes = {"slice": {"country": value}} if where == "slice" else {where: value}
    SlackSink("team", {"url": hook_server.url + "/slack", "timeout": 5}).send(make_alert(**changes))
    [request] = hook_server.received("/slack")
    body = json.loads(request.body)
    texts = slack_texts(body)
    joined = "\n".join(texts)
    for text in texts:
        # & only as one of the three entities, never < or > themselves
        assert "<" not in text and ">" not in text, text
        assert not re.search(r"&(?!amp;|lt;|gt;)", text), text
    assert b"<!channel>" not in request.body and b"<http" not in request.body
    # plain_text (the header) is never formatted by Slack; every mrkdwn text is neutralised
    joined = "\n".join(slack_texts(body, mrkdwn_only=True))
    assert "*bold*" not in joined and "_italic_" not in joined and "~strike~" not in joined
    assert "`code`" not in joined
    expected = {
        "link": "&lt;http://evil.example|Click here&gt;",
        "mention": "&lt;!channel&gt; &lt;@U123&gt; &lt;#C123&gt;",
        "html": "&lt;script&gt;alert(1)&lt;/script&gt;",
        "entity": "R&amp;D &amp;amp; co",
        "bold": "\u2217bold\u2217 \u02cditalic\u02cd \u223cstrike\u223c \u02cbcode\u02cb",
    }[case]
    if where in ("name", "message"):
        assert expected in body["text"]
    assert expected in joined
    # our own formatting still works: field labels stay bold, mrkdwn is verbatim (no auto links)
    fields = body["blocks"][2]["fields"]
    assert fields[0]["text"].startswith("*KPI*\n") and all(f["verbatim"] for f in fields)


def test_slack_keeps_underscores_inside_words(hook_server):
    SlackSink("team", {"url": hook_server.url + "/slack", "timeout": 5}).send(
        make_alert(kpi="signup_rate", message="signup_rate fell"))
    body = hook_server.received("/slack")[0].json()
    assert "signup_rate fell" in body["text"] and "*KPI*\nsignup_rate" in slack_texts(body)


def html_part(envelope) -> str:
    message = email.message_from_bytes(envelope.original_content, policy=policy.default)
    return message.get_body(("html",)).get_content()


def text_part(envelope) -> str:
    message = email.message_from_bytes(envelope.original_content, policy=policy.default)
    return message.get_body(("plain",)).get_content()


@pytest.mark.parametrize("where", ["name", "message", "slice", "owner", "kpi", "message_html"])
@pytest.mark.parametrize("case", list(HOSTILE))
def test_email_html_part_shows_every_value_as_text(smtp_server, where, case):
    value = HOSTILE[case]
    changes = {"slice": {"country": value}} if where == "slice" else {where: value}
    sink = EmailSink("mail", {"host": smtp_server.host, "port": smtp_server.port,
                              "from": "kpi@example.com", "to": "a@example.com"})
    sink.send(make_alert(**changes))
    [envelope] = smtp_server.envelopes
    html = html_part(envelope)
    for tag in ("<a ", "<script", "<img", "</a>"):
        assert tag not in html, html
    assert "<http" not in html and "<!channel>" not in html
    if where != "message_html":  # an old outbox row's message_html is never used
        escaped = {"link": "&lt;http://evil.example|Click here&gt;",
                   "mention": "&lt;!channel&gt; &lt;@U123&gt;",
                   "html": "&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=y&gt;",
                   "entity": "R&amp;D &amp;amp; co",
                   "bold": "*bold* _italic_ ~strike~ `code`"}[case]
        assert escaped in html
        if where in ("message", "kpi"):
            assert value in text_part(envelope)  # the text part is the text itself


def test_template_literal_html_is_escaped_in_the_email(tmp_path, smtp_server):
    (tmp_path / "kpis.yaml").write_text(
        "kpis:\n"
        "  - id: x\n"
        "    name: X\n"
        "    formula: x\n"
        "    inputs: {x: {unit: count}}\n"
        "    unit: count\n"
        "    status: certified\n"
        "    direction: higher_is_better\n"
        "    thresholds: {warning: 10, critical: 5}\n"
        "    alerts:\n"
        "      message: '<a href=\"http://evil.example\">Reset your password</a> {{ name }}'\n",
        encoding="utf-8")
    engine = Engine.load(tmp_path / "kpis.yaml")
    sinks = {"mail": {"type": "email", "host": smtp_server.host, "port": smtp_server.port,
                      "from": "kpi@example.com", "to": ["a@example.com"]}}
    report = dispatch(engine, [record("x", "2026-10", 1.0, "critical", unit="count")],
                      project_dir=tmp_path, alerting={}, sinks=sinks, routes=None,
                      state_path=None, plugins=None)
    assert report.sent == {"mail": 1}, report.errors
    html = html_part(smtp_server.envelopes[0])
    assert "<a href" not in html
    assert "&lt;a href=&#34;http://evil.example&#34;&gt;Reset your password&lt;/a&gt; X" in html
