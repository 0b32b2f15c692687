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


def write_ads_project(tmp_path: Path, settings: str) -> Path:
    """A project of September ads by channel (search good, display critical) with a file
    sink; ``settings`` are top-level lines put before the rest."""
    rows = ["date,channel,impressions,clicks"]
    for day in range(1, 31):
        rows.append(f"2026-09-{day:02d},search,1000,40")   # 4 %: good
        rows.append(f"2026-09-{day:02d},display,1000,5")   # 0.5 %: critical
    (tmp_path / "ads.csv").write_text("\n".join(rows) + "\n")
    (tmp_path / "kpiforge.yaml").write_text(settings + textwrap.dedent("""
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


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return write_ads_project(tmp_path, "timezone: Europe/Paris\n")


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
    assert "alerts: 1 notification; 1 delivery sent" in first.stderr
    second = kpiforge(*args, cwd=project)
    assert second.returncode == 0
    assert len(alert_lines(project)) == 1
    assert "alerts: 0 notifications; no deliveries" in second.stderr


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


def _closed_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_exit_3_when_a_notification_is_left_undelivered_in_the_outbox(project):
    config = project / "kpiforge.yaml"
    config.write_text(config.read_text().replace(
        "  log: {type: file, path: alerts.jsonl}",
        f"  log: {{type: file, path: alerts.jsonl}}\n  hook: {{type: webhook, url: 'http://127.0.0.1:{_closed_port()}/', "
        "retry: {max_attempts: 1}, timeout: 2s}"))
    proc = kpiforge("run", "--kpi", "ctr", "--by", "channel", "--period", "2026-09", cwd=project)
    assert proc.returncode == 3, proc.stderr
    assert "alerts: 1 notification; 1 delivery sent, 1 failed, 1 pending retry" in proc.stderr
    assert len(alert_lines(project)) == 1  # the file sink got it all the same


@pytest.mark.parametrize("args, code", [
    (("--by", "channel", "--fail-on", "critical"), 4),   # display is critical
    (("--fail-on", "warning"), 0),                       # 45 / 2000 = 2.25 %: ok
    (("--by", "channel", "--fail-on", "warning"), 4),
    ((), 0),
])
def test_fail_on_exits_4_when_a_kpi_has_that_status_or_worse(project, args, code):
    proc = kpiforge("run", "--kpi", "ctr", "--period", "2026-09", "--no-alerts", *args, cwd=project)
    assert proc.returncode == code, proc.stderr
    if code == 4:
        assert "--fail-on" in proc.stderr and "or worse" in proc.stderr


def test_a_period_without_rows_split_by_a_dimension_is_no_data_not_a_crash(project):
    proc = kpiforge("run", "--kpi", "ctr", "--by", "channel", "--period", "2026-07", "--format", "json",
                    "--no-alerts", cwd=project)
    assert proc.returncode == 0, proc.stderr
    (row,) = json.loads(proc.stdout)["results"]
    assert (row["slice"], row["value"], row["reason"]) == ({"channel": None}, None, "no data")


def test_alert_summary_counts_notifications_and_deliveries_apart():
    from kpiforge._cli_run import alert_summary
    from kpiforge.alerts import DispatchReport

    report = DispatchReport(sent={"a": 2, "b": 1}, failed={"b": 1}, pending=1)
    report.notifications = [type("N", (), {"silenced": False})()] * 2
    assert alert_summary(report) == "alerts: 2 notifications; 3 deliveries sent, 1 failed, 1 pending retry"
