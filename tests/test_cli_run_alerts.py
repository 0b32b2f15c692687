"""`kpiforge run` dispatches alerts: once, not again on a second identical run, never on dry runs."""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest


def kpiforge(*args, cwd):
    return subprocess.run([sys.executable, "-m", "kpiforge", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=120)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    rows = ["date,channel,impressions,clicks"]
    for day in range(1, 31):
        rows.append(f"2026-09-{day:02d},search,1000,40")   # 4 %: good
        rows.append(f"2026-09-{day:02d},display,1000,5")   # 0.5 %: critical
    (tmp_path / "ads.csv").write_text("\n".join(rows) + "\n")
    (tmp_path / "kpiforge.yaml").write_text(textwrap.dedent("""
        timezone: Europe/Paris
        state: state/alerts.db
        sources:
          ads:
            type: csv
            path: ads.csv
            time: date
            dimensions: [channel]
            inputs:
              impressions: {agg: sum}
              clicks: {agg: sum}
        sinks:
          log: {type: file, path: alerts.jsonl}
    """))
    return tmp_path


def alert_lines(project: Path) -> list[dict]:
    path = project / "alerts.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_run_sends_each_alert_once(project):
    args = ("run", "--kpi", "ctr", "--by", "channel", "--period", "2026-09", "--format", "json")
    first = kpiforge(*args, cwd=project)
    assert first.returncode == 0, first.stderr
    json.loads(first.stdout)  # alert summary goes to stderr: stdout stays JSON
    lines = alert_lines(project)
    assert [(l["data"]["kpi"], l["data"]["slice"], l["data"]["state"]) for l in lines] == [
        ("ctr", {"channel": "display"}, "firing")]
    assert "1 sent" in first.stderr
    second = kpiforge(*args, cwd=project)
    assert second.returncode == 0
    assert len(alert_lines(project)) == 1
    assert "0 new notification" in second.stderr


def test_dry_run_and_no_alerts_send_nothing_and_record_nothing(project):
    dry = kpiforge("run", "--kpi", "ctr", "--by", "channel", "--period", "2026-09", "--dry-run",
                   cwd=project)
    assert dry.returncode == 0, dry.stderr
    assert "would send to log" in dry.stderr and "display" in dry.stderr
    assert alert_lines(project) == [] and not (project / "state").exists()
    quiet = kpiforge("run", "--kpi", "ctr", "--by", "channel", "--period", "2026-09", "--no-alerts",
                     cwd=project)
    assert quiet.returncode == 0 and "alerts:" not in quiet.stderr
    assert alert_lines(project) == []
