"""Secrets never reach stderr, command output or state.db: URL userinfo, tokens, passwords."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from kpiforge._redact import redact_text, redact_url, secret_values
from tests.alert_servers import free_port, hook_server  # noqa: F401

PASSWORD = "pa55-Word-7731"
SLACK_TOKEN = "xoxbSLACKTOKEN9981"
SIGNING = "whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
SMTP_PASSWORD = "smtp-Secret-4242"
BEARER = "Bearer-Token-5150"
SECRETS = (PASSWORD, SLACK_TOKEN, SIGNING, SMTP_PASSWORD, BEARER)


@pytest.mark.parametrize("url, mask_path, expected", [
    ("http://user:pa55@host.example/hook", False, "http://user:***@host.example/hook"),
    ("https://user:pa55@host.example:8443/x?token=abc&b=", False,
     "https://user:***@host.example:8443/x?token=***&b=***"),
    ("https://tok3n@host.example/x", False, "https://***@host.example/x"),
    ("https://hooks.slack.com/services/T0/B0/XYZ", True, "https://hooks.slack.com/***"),
    ("hooks.slack.com/services/T0/B0/XYZ", False, "hooks.slack.com/***"),
    ("https://example.com/", True, "https://example.com/"),
    ("http://[::1:80/x", False, "***"),
])
def test_redact_url(url, mask_path, expected):
    assert redact_url(url, mask_path=mask_path) == expected


def test_redact_text_masks_values_and_any_userinfo():
    text = "POST http://bob:hunter22@h/x failed; key abcd-1234 rejected; ftp://tok@h/"
    assert redact_text(text, ["abcd-1234"]) == (
        "POST http://bob:***@h/x failed; key *** rejected; ftp://***@h/")


@pytest.mark.parametrize("type_name, settings, secret", [
    ("webhook", {"url": f"http://u:{PASSWORD}@h/x"}, PASSWORD),
    ("webhook", {"url": "http://h/x", "secret": SIGNING}, SIGNING),
    ("webhook", {"url": "http://h/x", "headers": {"authorization": BEARER}}, BEARER),
    ("slack", {"url": f"https://hooks.slack.com/services/T0/B0/{SLACK_TOKEN}"}, SLACK_TOKEN),
    ("email", {"host": "h", "password": SMTP_PASSWORD}, SMTP_PASSWORD),
    ("undeclared", {"api_token": BEARER, "url": "http://h"}, BEARER),
])
def test_each_sink_type_declares_its_secrets(type_name, settings, secret):
    from kpiforge._plugins import default_plugins

    registration = default_plugins().sink_types.get(type_name)
    assert secret in secret_values(registration.secrets if registration else None, settings)


KPIS = """\
kpis:
  - id: errors
    name: Errors
    formula: n
    inputs: {n: {unit: count}}
    unit: count
    status: certified  # a draft would not alert
    direction: lower_is_better
    thresholds: {warning: 5, critical: 10}
"""


def make_project(root: Path, hook_url: str) -> dict[str, str]:
    (root / "kpis.yaml").write_text(KPIS)
    rows = ["date,n"] + [f"2026-09-{d:02d},1" for d in range(1, 31)]
    (root / "events.csv").write_text("\n".join(rows) + "\n")
    host, port = hook_url.removeprefix("http://").split(":")
    (root / "kpiforge.yaml").write_text(textwrap.dedent(f"""
        definitions: [kpis.yaml]
        sources:
          events:
            type: csv
            path: events.csv
            time: date
            inputs:
              n: {{agg: sum}}
        alerting: {{retry: {{max_attempts: 1}}}}
        sinks:
          hook:
            type: webhook
            url: "http://ops:${{PASS}}@{host}:{port}/hook"
            secret: "${{SIGNING}}"
            headers: {{authorization: "${{BEARER}}"}}
          team: {{type: slack, url: "${{SLACK_URL}}"}}
          mail:
            type: email
            host: 127.0.0.1
            port: {free_port()}
            from: kpi@example.com
            to: [ops@example.com]
            username: kpi
            password: "${{SMTP_PASSWORD}}"
    """))
    env = dict(os.environ, PASS=PASSWORD, SIGNING=SIGNING, BEARER=BEARER,
               SMTP_PASSWORD=SMTP_PASSWORD,
               SLACK_URL=f"https://hooks.slack.com/services/T000/B000/{SLACK_TOKEN}")
    return env


def kpiforge(root: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kpiforge", *args], cwd=root, env=env,
                          capture_output=True, text=True, timeout=120)


def test_no_secret_in_output_or_state_database(tmp_path, hook_server):
    hook_server.answer("/hook", default="400")
    env = make_project(tmp_path, hook_server.url)
    # malformed (no scheme): used to be printed whole, token included; now refused at load
    malformed = dict(env, SLACK_URL=f"hooks.slack.com/services/T000/B000/{SLACK_TOKEN}")
    refused = kpiforge(tmp_path, malformed, "run", "--kpi", "errors", "--period", "2026-09")
    assert refused.returncode == 1 and "hooks.slack.com/***" in refused.stderr, refused.stderr
    assert not (tmp_path / ".kpiforge").exists()
    outputs = [refused]
    run = kpiforge(tmp_path, env, "run", "--kpi", "errors", "--period", "2026-09")
    assert run.returncode == 3, run.stderr  # computed, but notifications left undelivered
    assert "failed" in run.stderr and "sink hook" in run.stderr
    outputs.append(run)
    for fmt in ("table", "json"):
        pending = kpiforge(tmp_path, env, "alerts", "pending", "--format", fmt)
        assert pending.returncode == 0, pending.stderr
        outputs.append(pending)
    assert "HTTP 400" in outputs[-1].stdout
    outputs.append(kpiforge(tmp_path, env, "alerts", "retry"))
    for sink in ("hook", "team", "mail"):
        tested = kpiforge(tmp_path, env, "alerts", "test", sink)
        assert tested.returncode != 0
        outputs.append(tested)
    assert [len(hook_server.received("/hook"))] == [3]  # run, retry, test: it was reached
    for done in outputs:
        for secret in SECRETS:
            assert secret not in done.stdout and secret not in done.stderr, (done.args, secret)
    state = tmp_path / ".kpiforge"
    raw = b"".join(p.read_bytes() for p in state.iterdir())
    assert b"HTTP 400" in raw  # the errors are stored, without the secrets
    for secret in SECRETS:
        assert secret.encode() not in raw, secret
