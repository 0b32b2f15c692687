"""``alerting``, ``sinks`` and ``routes`` of kpiforge.yaml are checked when the project loads,
each problem at its line, before any query runs."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from pathlib import Path

import pytest

from kpiforge import ProjectError
from kpiforge._project import load_project

ROOT = Path(__file__).resolve().parents[1]
SECRET = "whsec_" + base64.b64encode(b"load-time-secret-0123456789").decode()

SOURCES = """\
sources:
  ads: {type: csv, path: ads.csv, time: date, dimensions: [channel], inputs: {clicks: {agg: sum}}}
"""  # lines 1-2; the fragments below start at line 3


@pytest.mark.parametrize("fragment, where, words", [
    ("sinks:\n  ops: {type: webhook, url: 'https://h.example.com/k', secret: '${KPIF_UNSET_S}'}\n",
     "4:64: error[env]: sinks.ops.secret", "environment variable KPIF_UNSET_S is not set"),
    ("sinks:\n  ops:\n    type: webhook\n    url: 'https://h.example.com/${KPIF_UNSET_U}/x'\n",
     "6:10: error[env]: sinks.ops.url", "KPIF_UNSET_U is not set"),
    ("sinks:\n  ops: {type: webhook, url: 'http://exa mple.com/x'}\n",
     "4:29: error[sink-settings]: sinks.ops.url", "not a well-formed URL"),
    ("sinks:\n  ops: {type: webhook, url: 'ftp://example.com/x'}\n",
     "4:29: error[sink-settings]: sinks.ops.url", "http:// or https://"),
    ("sinks:\n  ops: {type: slack, url: 'https://[nope]/x'}\n",
     "4:27: error[sink-settings]: sinks.ops.url", "not a well-formed URL"),
    ("sinks:\n  ops: {type: webhook, url: 'https://h.example.com/k', secret: 'whsec_!!'}\n",
     "4:64: error[sink-settings]: sinks.ops.secret", "not valid base64"),
    ("sinks:\n  ops: {type: webhook, url: 'https://h.example.com/k', secret: 'hunter2'}\n",
     "4:64: error[sink-settings]: sinks.ops.secret", "Standard Webhooks secret"),
    ("sinks:\n  m: {type: email, host: smtp.example.com, from: kpi@example.com, to: [growth@]}\n",
     "4:71: error[sink-settings]: sinks.m.to", "'growth@' is not one"),
    ("sinks:\n  m: {type: email, host: smtp.example.com, from: 'kpi example.com', to: [a@b.com]}\n",
     "4:50: error[sink-settings]: sinks.m.from", "'kpi example.com' is not one"),
    ("sinks:\n  m: {type: email, host: 'smtp://mail.example.com', from: k@b.com, to: a@b.com}\n",
     "4:26: error[sink-settings]: sinks.m.host", "host name or address"),
    ("sinks:\n  m: {type: email, host: smtp.example.com, port: 0, from: k@b.com, to: a@b.com}\n",
     "4:50: error[sink-settings]: sinks.m.port", "port must be"),
    ("sinks:\n  log: {type: file}\n", "4:8: error[sink-settings]: sinks.log", "missing 'path'"),
    ("sinks:\n  ops: {type: webhok, url: 'https://h.example.com/k'}\n",
     "4:15: error[sink-type]: sinks.ops.type", "unknown sink type 'webhok' (did you mean 'webhook'?)"),
    ("sinks:\n  ops: {type: console, timeout: 0}\n",
     "4:33: error[sink-settings]: sinks.ops.timeout: must be more than 0", ""),
    ("alerting: {repeat_interval: 1d, timeout: 0s}\n",
     "3:42: error[sink-settings]: alerting.timeout: must be more than 0", ""),
    ("sinks:\n  mail: {type: console}\nroutes:\n  - sinks: [mial]\n",
     "6:13: error[unknown-sink]: routes[0].sinks[0]", "'mial' which is not defined under sinks "
                                                     "(did you mean 'mail'?)"),
    ("sinks:\n  ops: {type: console}\nroutes:\n  - match: {severty: critical}\n    sinks: [ops]\n",
     "6:13: error[route-match]: routes[0].match.severty", "(did you mean 'severity'?)"),
    ("sinks:\n  ops: {type: console}\nroutes:\n  - match: {chanel: search}\n    sinks: [ops]\n",
     "6:13: error[route-match]: routes[0].match.chanel", "(did you mean 'channel'?)"),
    ("sinks:\n  ops: {type: console}\nroutes:\n  - match: {severity: [warning, critcal]}\n"
     "    sinks: [ops]\n",
     "6:33: error[route-match]: routes[0].match.severity[1]", "never 'critcal' (did you mean 'critical'?)"),
    ("sinks:\n  ops: {type: console}\nroutes:\n  - match: {state: fired}\n    sinks: [ops]\n",
     "6:20: error[route-match]: routes[0].match.state", "one of firing, resolved"),
])
def test_alerting_mistakes_are_reported_at_their_line(tmp_path, monkeypatch, fragment, where, words):
    for name in ("KPIF_UNSET_S", "KPIF_UNSET_U"):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "kpiforge.yaml").write_text(SOURCES + fragment)
    with pytest.raises(ProjectError) as caught:
        load_project(tmp_path / "kpiforge.yaml")
    lines = [str(d) for d in caught.value.diagnostics]
    assert any(line.startswith(f"{tmp_path / 'kpiforge.yaml'}:{where}") and words in line
               for line in lines), lines


def test_a_valid_alerting_configuration_loads(tmp_path, monkeypatch):
    monkeypatch.setenv("KPIF_HOOK_SECRET", SECRET)
    (tmp_path / "kpiforge.yaml").write_text(SOURCES + """\
alerting: {repeat_interval: 4h, timeout: 5s, retry: {max_attempts: 2}}
sinks:
  ops: {type: webhook, url: 'https://hooks.example.com/kpi', secret: '${KPIF_HOOK_SECRET}'}
  chat: {type: slack, url: 'https://hooks.slack.com/services/T0/B0/xyz'}
  mail: {type: email, host: smtp.example.com, from: kpi@example.com, to: [a@example.com, b@exämple.fr]}
  log: {type: file, path: alerts.jsonl, timeout: 1s}
  tty: {type: console}
routes:
  - match: {severity: [warning, critical], channel: search, team: finance}
    sinks: [ops, mail]
    continue: true
  - match: {labels: {team: growth}, state: resolved}
    sinks: [chat, log, tty]
""")
    project = load_project(tmp_path / "kpiforge.yaml")
    assert project.sinks["ops"]["secret"] == "${KPIF_HOOK_SECRET}"  # never the secret itself


def test_a_secret_expanded_into_a_refused_setting_is_not_shown(tmp_path, monkeypatch):
    monkeypatch.setenv("KPIF_TOKEN", "s3cr3t-token-value")
    (tmp_path / "kpiforge.yaml").write_text(
        SOURCES + "sinks:\n  ops: {type: webhook, url: 'http://exa mple.com/${KPIF_TOKEN}'}\n")
    with pytest.raises(ProjectError) as caught:
        load_project(tmp_path / "kpiforge.yaml")
    assert "not a well-formed URL" in str(caught.value)
    assert "s3cr3t-token-value" not in str(caught.value)


def test_kpiforge_run_stops_before_any_query(tmp_path):
    rows = ["date,channel,clicks"] + [f"2026-09-{d:02d},search,40" for d in range(1, 31)]
    (tmp_path / "ads.csv").write_text("\n".join(rows) + "\n")
    (tmp_path / "kpiforge.yaml").write_text(
        SOURCES + "state: state/alerts.db\n"
        "sinks:\n  ops: {type: webhook, url: 'https://h.example.com/k', secret: '${KPIF_UNSET_S}'}\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("KPIF_UNSET_S", None)
    done = subprocess.run([sys.executable, "-m", "kpiforge", "run", "--format", "json"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert "kpiforge.yaml:5:64: error[env]: sinks.ops.secret: environment variable KPIF_UNSET_S" \
        in done.stderr
    assert done.stdout == "" and "Traceback" not in done.stderr
    assert not (tmp_path / "state").exists()


@pytest.mark.parametrize("match, where, words", [
    ("{kpi: [ctr, cpcc]}", "7:24: error[route-match]: routes[0].match.kpi[1]",
     "no KPI has kpi 'cpcc' (did you mean 'cpc'?)"),
    ("{category: acquisiton}", "7:23: error[route-match]: routes[0].match.category",
     "(did you mean 'acquisition'?)"),
    ("{owner: grwth}", "7:20: error[route-match]: routes[0].match.owner", "(did you mean 'growth'?)"),
    ("{tem: finance}", "7:13: error[route-match]: routes[0].match.tem",
     "not an alert field, a source dimension or a label any KPI's alerts declare (did you mean 'team'?)"),
    ("{labels: {teem: finance}}", "7:22: error[route-match]: routes[0].match.labels.teem",
     "no KPI's alerts declare the label 'teem' (did you mean 'team'?)"),
])
def test_kpiforge_run_checks_route_matchers_against_the_kpis(tmp_path, match, where, words):
    from tests.alert_servers import write_kpis

    write_kpis(tmp_path)
    rows = ["date,channel,clicks,impressions"] + [f"2026-09-{d:02d},search,40,1000"
                                                  for d in range(1, 31)]
    (tmp_path / "ads.csv").write_text("\n".join(rows) + "\n")
    sources = SOURCES.replace("{clicks: {agg: sum}}", "{clicks: {agg: sum}, impressions: {agg: sum}}")
    good = "  - match: {team: finance, channel: search, kpi: revenue, labels: {team: finance}}\n" \
           "    sinks: [log]\n"
    (tmp_path / "kpiforge.yaml").write_text(
        "definitions: [kpis.yaml]\n" + sources + "sinks:\n  log: {type: file, path: a.jsonl}\n"
        f"routes:\n  - match: {match}\n    sinks: [log]\n" + good)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-m", "kpiforge", "run", "--format", "json"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stderr
    problems = [line for line in done.stderr.splitlines() if "error[" in line]
    assert len(problems) == 1 and problems[0].startswith(f"kpiforge.yaml:{where}: ") \
        and words in problems[0], done.stderr
    assert done.stdout == ""
    no_alerts = subprocess.run([sys.executable, "-m", "kpiforge", "run", "--format", "json",
                                "--no-alerts"], cwd=tmp_path, env=env, capture_output=True,
                               text=True, timeout=120)
    assert no_alerts.returncode == 0, no_alerts.stderr
