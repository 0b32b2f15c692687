"""Messages of the command line: typos caught with did-you-mean, `show` in full, dates named by
their option, alert ids never cut, and counts in the singular when there is one."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from kpiforge import Engine
from kpiforge._format import plural
from kpiforge.alerts import dispatch
from tests.alert_servers import record, write_kpis

ROOT = Path(__file__).resolve().parent.parent
VALID = str(ROOT / "tests/fixtures/valid")


def kpiforge(*args, cwd=ROOT, columns=None):
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    if columns:
        env["COLUMNS"] = str(columns)
    return subprocess.run([sys.executable, "-m", "kpiforge", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


@pytest.fixture
def alert_project(tmp_path):
    """A project whose store holds firing, pending and inactive alerts with long slices."""
    write_kpis(tmp_path)
    (tmp_path / "kpiforge.yaml").write_text("definitions: [kpis.yaml]\nstate: alerts.db\n")
    engine = Engine.load(tmp_path / "kpis.yaml")
    long_slice = {"campaign": "black-friday-retargeting-lookalike-audience-2026", "country": "FR"}
    for records in ([record("ctr", "2026-10", 1.0, "warning", slice=long_slice, unit="percent"),
                     record("cpc", "2026-10", 4.0, "warning"),
                     record("cpc", "2026-10", 4.0, "warning", slice={"country": "DE"})],
                    [record("cpc", "2026-11", 1.0, "good", slice={"country": "DE"})]):
        dispatch(engine, records, project_dir=tmp_path, state_path="alerts.db", sinks={}, routes=[])
    return tmp_path


# -- typos are errors with did-you-mean ------------------------------------------------------

@pytest.mark.parametrize("args, stderr", [
    (("list", "--category", "acquisiton"),
     "error: --category: unknown category 'acquisiton' (did you mean 'acquisition'?)\n"),
    (("list", "--category", "zzz"), "error: --category: unknown category 'zzz' (categories: "
                                    "acquisition, awareness, conversion, retention, seo)\n"),
    (("silence", "add", "--kpi", "ctrr", "--for", "2h", "--comment", "x"),
     "error: --kpi: unknown KPI 'ctrr' (did you mean 'ctr'?)\n"),
])
def test_typos_are_errors(alert_project, args, stderr):
    proc = kpiforge(*args, cwd=alert_project)
    assert (proc.returncode, proc.stderr, proc.stdout) == (1, stderr, "")


def test_silence_add_accepts_a_kpi_of_the_project(alert_project):
    proc = kpiforge("silence", "add", "--kpi", "revenue", "--for", "2h", "--comment", "x",
                    cwd=alert_project)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(kpiforge("silence", "list", "--format", "json", cwd=alert_project)
                      .stdout)["silences"][0]["kpi"] == "revenue"


def test_silence_add_still_works_when_the_definitions_do_not_load(tmp_path):
    (tmp_path / "kpiforge.yaml").write_text("definitions: [missing/]\nstate: alerts.db\n")
    proc = kpiforge("silence", "add", "--kpi", "ctr", "--for", "2h", "--comment", "x", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ("warning: cannot check --kpi 'ctr': the definitions of kpiforge.yaml "
                           "do not load\n")


# -- show ------------------------------------------------------------------------------------

def test_show_lists_alert_rules_and_readable_inputs():
    proc = kpiforge("show", "bounce_rate", columns=200)
    assert proc.returncode == 0, proc.stderr
    lines = [" ".join(line.strip("│ ").split()) for line in proc.stdout.splitlines()]
    assert "alerts │ for: 2" in lines
    assert "inputs │ bounced_sessions: Sessions with a single page viewed. (count)" in lines
    assert "sessions: Visits to the website, repeated visits included. (count)" in lines
    assert "{'description'" not in proc.stdout
    data = json.loads(kpiforge("show", "bounce_rate", "--format", "json").stdout)
    assert data["alerts"] == {"for": 2}


def test_show_formats_nested_alert_settings(tmp_path):
    write_kpis(tmp_path)
    proc = kpiforge("show", "revenue", "-d", str(tmp_path / "kpis.yaml"), columns=200)
    assert proc.returncode == 0, proc.stderr
    lines = [" ".join(line.strip("│ ").split()) for line in proc.stdout.splitlines()]
    assert "alerts │ change: vs=previous, drop_pct=20" in lines
    assert "labels: team=finance" in lines


# -- --from / --to ---------------------------------------------------------------------------

@pytest.mark.parametrize("args, stderr", [
    (("--from", "2026-09-31"), "error: --from: 2026-09-31 is not a date (YYYY-MM-DD)\n"),
    (("--from", "2026-09-01", "--to", "yesterday"), "error: --to: yesterday is not a date (YYYY-MM-DD)\n"),
])
def test_bad_dates_name_their_option(tmp_path, args, stderr):
    (tmp_path / "ads.csv").write_text("date,clicks,impressions\n2026-09-01,1,10\n")
    (tmp_path / "kpiforge.yaml").write_text(textwrap.dedent(f"""\
        definitions: [{VALID}]
        sources:
          ads: {{type: csv, path: ads.csv, time: date,
                 inputs: {{clicks: {{agg: sum}}, impressions: {{agg: sum}}}}}}
        """))
    proc = kpiforge("run", *args, cwd=tmp_path)
    assert (proc.returncode, proc.stderr) == (1, stderr)


# -- alerts list -----------------------------------------------------------------------------

@pytest.mark.parametrize("columns", [80, 60, None])  # None: piped with no COLUMNS
def test_alert_fingerprints_are_never_cut(alert_project, columns):
    alerts = json.loads(kpiforge("alerts", "list", "--all", "--format", "json",
                                 cwd=alert_project).stdout)["alerts"]
    assert len(alerts) == 3
    proc = kpiforge("alerts", "list", "--all", cwd=alert_project, columns=columns)
    assert proc.returncode == 0, proc.stderr
    for alert in alerts:
        assert alert["fingerprint"] in proc.stdout
    assert "…" not in proc.stdout


def test_inactive_alerts_have_no_severity(alert_project):
    alerts = json.loads(kpiforge("alerts", "list", "--all", "--format", "json",
                                 cwd=alert_project).stdout)["alerts"]
    assert sorted((a["kpi"], a["state"], a["severity"]) for a in alerts) == [
        ("cpc", "inactive", None), ("cpc", "pending", "warning"), ("ctr", "firing", "warning")]
    table = kpiforge("alerts", "list", "--all", cwd=alert_project, columns=250).stdout
    [inactive] = [line for line in table.splitlines() if "inactive" in line]
    assert [cell.strip() for cell in inactive.split("│")][3:5] == ["inactive", "-"]
    assert "info" not in table


# -- counts ------------------------------------------------------------------------------------

@pytest.mark.parametrize("count, word, many, text", [
    (0, "KPI", None, "0 KPIs"), (1, "KPI", None, "1 KPI"), (2, "KPI", None, "2 KPIs"),
    (1, "silence", None, "1 silence"), (3, "entry", "entries", "3 entries"),
])
def test_plural(count, word, many, text):
    assert plural(count, word, many) == text


@pytest.mark.parametrize("args, stream, text", [
    (("validate", "one.yaml"), "stdout", "1 KPI valid, 0 warnings\n"),
    (("list", "-d", "one.yaml"), "stdout", "1 KPI\n"),
    (("alerts", "list"), "stdout", "2 alerts\n"),
    (("silence", "list"), "stdout", "1 silence\n"),
])
def test_counts_are_singular_for_one(alert_project, args, stream, text):
    kpiforge("silence", "add", "--kpi", "ctr", "--for", "2h", "--comment", "x", cwd=alert_project)
    (alert_project / "one.yaml").write_text(
        "id: ctr\nname: CTR\nformula: clicks / impressions * 100\n"
        "inputs: {clicks: {}, impressions: {}}\nunit: percent\ndirection: higher_is_better\n")
    proc = kpiforge(*args, cwd=alert_project)
    assert proc.returncode == 0, proc.stderr
    assert getattr(proc, stream).startswith(text)
