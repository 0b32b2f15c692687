"""The command line, run as a newcomer would: a subprocess, exit codes, stdout vs stderr."""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
VALID = "tests/fixtures/valid"


def kpiforge(*args, cwd=ROOT, env=None):
    return subprocess.run([sys.executable, "-m", "kpiforge", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


def test_eval_json_output_shape():
    proc = kpiforge("eval", "-d", VALID, "--set", "clicks=120", "--set", "impressions=4000",
                    "--kpi", "ctr", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {"results": [
        {"kpi": "ctr", "value": 3.0, "unit": "percent", "status": "good", "reason": None,
         "reason_code": None}]}


def test_eval_null_is_json_null_with_reason():
    proc = kpiforge("eval", "-d", VALID, "--set", "clicks=1", "--set", "impressions=0",
                    "--kpi", "ctr", "--format", "json")
    (row,) = json.loads(proc.stdout)["results"]
    assert row["value"] is None and row["status"] == "unknown" and row["reason"] == "division by zero"
    assert row["reason_code"] == "division_by_zero"


def test_eval_inputs_file_with_series_as_csv(tmp_path):
    (tmp_path / "in.json").write_text(json.dumps({"clicks": [30, 60], "impressions": [1000, 1000]}))
    proc = kpiforge("eval", "-d", VALID, "--inputs", str(tmp_path / "in.json"), "--format", "csv")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        "kpi,index,value,unit,status,reason",
        "ctr,0,3.0,percent,good,",
        "ctr,1,6.0,percent,good,",
    ]


def test_eval_without_kpi_evaluates_what_the_inputs_allow():
    proc = kpiforge("eval", "-d", VALID, "--set", "clicks=10", "--set", "cost=20", "--format", "json")
    kpis = [r["kpi"] for r in json.loads(proc.stdout)["results"]]
    assert kpis == ["cpc", "clicks_per_euro"]


def test_eval_table_is_readable():
    proc = kpiforge("eval", "-d", VALID, "--set", "clicks=120", "--set", "impressions=4000")
    assert proc.returncode == 0
    assert "ctr" in proc.stdout and "3.00 %" in proc.stdout and "good" in proc.stdout


@pytest.mark.parametrize("args, code, message", [
    (("eval", "-d", VALID, "--set", "clicks"), 2, "expected NAME=VALUE"),
    (("eval", "-d", VALID, "--set", "clicks=lots"), 2, "'lots' is not a number"),
    (("eval", "-d", VALID, "--kpi", "ctrr", "--set", "clicks=1"), 1, "did you mean 'ctr'"),
    (("eval", "-d", "tests/fixtures/invalid"), 1, "error[duplicate-id]"),
    (("show", "nope", "-d", VALID), 1, "unknown KPI 'nope'"),
    (("validate", "no/such/dir"), 1, "no such file or directory"),
    (("frobnicate",), 2, "No such command"),
])
def test_errors_go_to_stderr_without_traceback(args, code, message):
    proc = kpiforge(*args)
    assert proc.returncode == code, (proc.stdout, proc.stderr)
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout


def test_validate_exit_codes():
    assert kpiforge("validate", VALID).returncode == 0
    assert kpiforge("validate", "tests/fixtures/invalid").returncode == 1
    assert kpiforge("validate", "--format", "yaml").returncode == 2


def test_list_and_show():
    listing = json.loads(kpiforge("list", "-d", VALID, "--format", "json").stdout)
    assert sorted(k["id"] for k in listing["kpis"]) == ["clicks_per_euro", "cpc", "ctr", "doubled"]
    shown = json.loads(kpiforge("show", "doubled", "-d", VALID, "--format", "json").stdout)
    assert shown["depends_on"] == ["clicks_per_euro", "ctr"]
    assert shown["inputs_needed"] == ["clicks", "cost", "impressions"]
    text = kpiforge("show", "cpc", "-d", VALID).stdout
    assert "cost / clicks" in text and "clicks_per_euro" in text  # used_by


def test_a_plugin_can_add_a_command(tmp_path):
    (tmp_path / "hello_plugin.py").write_text(textwrap.dedent('''
        import click
        from kpiforge import hookimpl

        @hookimpl
        def kpiforge_register_commands(cli):
            @cli.command()
            def hello():
                """Say hello."""
                click.echo("hello from a plugin")
    '''))
    proc = kpiforge("--plugins-dir", str(tmp_path), "hello")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "hello from a plugin"
    assert "hello" not in kpiforge("--help").stdout.split("Commands:")[1]
    listing = kpiforge("--plugins-dir", str(tmp_path), "plugins").stdout
    assert "hello_plugin" in listing and "command:hello" in listing


def test_a_plugin_command_cannot_replace_a_builtin(tmp_path):
    (tmp_path / "evil_plugin.py").write_text(textwrap.dedent('''
        import click
        from kpiforge import hookimpl

        @hookimpl
        def kpiforge_register_commands(cli):
            @cli.command(name="eval")
            def hijack():
                click.echo("hijacked")
    '''))
    proc = kpiforge("--plugins-dir", str(tmp_path), "eval", "-d", VALID, "--set", "clicks=1",
                    "--set", "impressions=10", "--format", "json")
    assert proc.returncode == 0
    assert "hijacked" not in proc.stdout
    assert "evil_plugin" in proc.stderr and "already exists" in proc.stderr
