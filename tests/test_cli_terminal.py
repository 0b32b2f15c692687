"""What reaches a terminal: user and data text printed literally (never rich markup, never an
escape sequence), the exact install line for a missing extra, and hostile names everywhere."""

import importlib.metadata
import io
import json
import os
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path
from types import SimpleNamespace

import pytest
from rich.console import Console

from kpiforge._terminal import clean
from kpiforge.plugins.sinks.basic import ConsoleSink

ROOT = Path(__file__).resolve().parent.parent
VALID = str(ROOT / "tests/fixtures/valid")
CLEAR = "\x1b[2J"
LINK = "\x1b]8;;http://evil\x07link\x1b]8;;\x07"
CONTROL = [chr(c) for c in (*range(0x00, 0x09), *range(0x0b, 0x20), 0x7f, *range(0x80, 0xa0))]


def kpiforge(*args, cwd=ROOT, columns=120):
    env = {**os.environ, "COLUMNS": str(columns)}
    return subprocess.run([sys.executable, "-m", "kpiforge", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


def assert_clean(proc):
    out = proc.stdout + proc.stderr
    assert "Traceback" not in out and "MarkupError" not in out, out
    assert not any(c in out for c in CONTROL), repr(out)


# \e is YAML's escape for ESC: a definition can carry one too
HOSTILE_KPI = textwrap.dedent("""\
    id: ctr
    name: "CTR [red]x[/] \\e[2J"
    category: acquisition
    formula: clicks / impressions * 100
    inputs: {clicks: {}, impressions: {}}
    unit: percent
    status: certified
    direction: higher_is_better
    thresholds: {good: 5, warning: 4, critical: 3.5}
    """)


@pytest.fixture
def project(tmp_path):
    """A CSV project whose channel names are markup and escape sequences."""
    (tmp_path / "ads.csv").write_text(
        "date,channel,impressions,clicks\n"
        f'2026-10-01,"{CLEAR}",1000,30\n'
        f'2026-10-02,"[/x]{LINK}",1000,20\n'
        "2026-10-03,search,1000,40\n")
    (tmp_path / "kpis.yaml").write_text(HOSTILE_KPI)
    (tmp_path / "kpiforge.yaml").write_text(textwrap.dedent("""\
        definitions: [kpis.yaml]
        state: alerts.db
        sinks:
          term: {type: console}
        sources:
          ads:
            type: csv
            path: ads.csv
            time: date
            dimensions: [channel]
            inputs:
              impressions: {agg: sum}
              clicks: {agg: sum}
        """))
    return tmp_path


# -- one function for every terminal string -------------------------------------------------

@pytest.mark.parametrize("char", CONTROL)
def test_clean_shows_every_control_character(char):
    assert clean(f"a{char}b") == f"a\\x{ord(char):02x}b"


@pytest.mark.parametrize("text", ["tab\there", "two\nlines", "[bold]x[/]", "é — ∅ 日本", "kpiforge[sql]"])
def test_clean_keeps_ordinary_text(text):
    assert clean(text) == text


# -- hostile names: exact message, no traceback --------------------------------------------

@pytest.mark.parametrize("args, code, stderr", [
    (("show", "[/x]", "-d", VALID), 1, "error: unknown KPI '[/x]'\n"),
    (("show", f"ctr{CLEAR}", "-d", VALID), 1, "error: unknown KPI 'ctr\\x1b[2J' (did you mean 'ctr'?)\n"),
    (("eval", "-d", VALID, "--kpi", "ctr[bold]", "--set", "clicks=1"), 1,
     "error: unknown KPI 'ctr[bold]'\n"),
    (("eval", "-d", VALID, "--set", f"cl{CLEAR}=1"), 1,
     "error: --set: no loaded KPI has an input named 'cl\\x1b[2J'\n"),
    (("list", "--category", "[/acquisition]"), 1,
     "error: --category: unknown category '[/acquisition]' (did you mean 'acquisition'?)\n"),
    (("run", "--project", "a[/x]/kpiforge.yaml"), 1,
     "a[/x]/kpiforge.yaml:0:0: error[io]: cannot read file: No such file or directory\n"
     "error: 1 error in a[/x]/kpiforge.yaml\n"),
    (("silence", "add", "--kpi", "[/ctr]", "--for", "1h", "--comment", "x"), 1,
     "error: --kpi: unknown KPI '[/ctr]' (did you mean 'ctr'?)\n"),
])
def test_hostile_names_are_printed_literally(project, args, code, stderr):
    proc = kpiforge(*args, cwd=project)
    assert (proc.returncode, proc.stderr) == (code, stderr), proc.stdout
    assert_clean(proc)


def test_run_by_a_markup_dimension_names_it(project):
    proc = kpiforge("run", "--by", "[/channel]", cwd=project)
    assert proc.returncode == 1
    assert proc.stderr.startswith("error: unknown dimension '[/channel]'")
    assert_clean(proc)


def test_escape_sequences_in_data_never_reach_the_run_table(project):
    proc = kpiforge("run", "--by", "channel", "--kpi", "ctr", cwd=project)
    assert proc.returncode == 0, proc.stderr
    assert_clean(proc)
    assert "\\x1b[2J" in proc.stdout
    assert "[/x]\\x1b]8;;http://evil\\x07link\\x1b]8;;\\x07" in proc.stdout


def test_escape_sequences_in_data_never_reach_the_console_sink(project):
    proc = kpiforge("run", "--by", "channel", cwd=project)
    assert proc.returncode == 0, proc.stderr
    assert_clean(proc)
    assert "CTR [red]x[/] \\x1b[2J" in proc.stderr  # the KPI name, in the alert message
    assert "channel=[/x]\\x1b]8;;http://evil\\x07link\\x1b]8;;\\x07" in proc.stderr


def test_console_sink_prints_markup_and_escapes_literally():
    sink = ConsoleSink("term", {})
    sink.console = Console(file=io.StringIO(), width=200, color_system=None)
    alert = SimpleNamespace(state="firing", severity="warning", kpi="ctr[/x]",
                            message=f"CTR is warning [bold]{CLEAR} for 2026-10 (channel={LINK})")
    sink.send(alert)
    assert sink.console.file.getvalue() == (
        "WARNING ctr[/x]: CTR is warning [bold]\\x1b[2J for 2026-10 "
        "(channel=\\x1b]8;;http://evil\\x07link\\x1b]8;;\\x07)\n")


def test_alerts_list_shows_hostile_slices_literally(project):
    assert kpiforge("run", "--by", "channel", cwd=project).returncode == 0
    proc = kpiforge("alerts", "list", cwd=project, columns=300)
    assert proc.returncode == 0, proc.stderr
    assert_clean(proc)
    assert "channel=[/x]\\x1b]8;;http://evil\\x07link\\x1b]8;;\\x07" in proc.stdout


# -- a missing extra names its exact install line --------------------------------------------

BLOCKER = """
import sys

class Block:
    def __init__(self, names):
        self.names = names

    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in self.names:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, Block(set(sys.argv[1].split(","))))
from kpiforge.cli import main
main(sys.argv[2:])
"""


@pytest.mark.parametrize("blocked, project_text, args, message", [
    ("sqlalchemy", """
        sources:
          shop: {type: sql, url: "sqlite:///shop.db", table: orders, time: day,
                 inputs: {clicks: {agg: sum}, impressions: {agg: sum}}}
        """, ("run",), "error: source 'shop': the sql source needs SQLAlchemy: "
                       "pip install 'kpiforge[sql]'\n"),
    ("psycopg", """
        sources:
          shop: {type: sql, url: "postgresql+psycopg://u:p@127.0.0.1:9/db", table: orders,
                 time: day, inputs: {clicks: {agg: sum}, impressions: {agg: sum}}}
        """, ("run",), "error: kpiforge.yaml:4: source 'shop': driver for postgresql+psycopg is not installed: "
                       "pip install 'kpiforge[sql]' (psycopg)\n"),
    ("pyarrow,pandas", """
        sources:
          mem: {type: records, data: [{day: "2026-10-01", clicks: 1, impressions: 10}], time: day,
                inputs: {clicks: {agg: sum}, impressions: {agg: sum}}}
        """, ("run",), "error: source 'mem': reading records needs pyarrow or pandas: "
                       "pip install 'kpiforge[dataframe]'\n"),
    ("apprise", """
        state: alerts.db
        sinks:
          notify: {type: apprise, urls: "json://127.0.0.1:9/"}
        """, ("alerts", "test", "notify"), "error: sinks.notify: the apprise sink needs the apprise "
                                           "package: pip install 'kpiforge[apprise]'\n"),
])
def test_missing_extra_names_the_install_line(tmp_path, blocked, project_text, args, message):
    (tmp_path / "kpiforge.yaml").write_text(f"definitions: [{VALID}]\n"
                                            + textwrap.dedent(project_text))
    proc = subprocess.run([sys.executable, "-c", BLOCKER, blocked, *args], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert (proc.returncode, proc.stderr) == (1, message), proc.stdout
    assert_clean(proc)


def test_http_sinks_need_no_extra():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert any(d.startswith("httpx") for d in pyproject["dependencies"])
    assert pyproject["optional-dependencies"]["http"] == []  # kept as an alias
    assert any(r.startswith("httpx") and ";" not in r
               for r in importlib.metadata.requires("kpiforge") or [])


# -- eval: typos and nothing computable ----------------------------------------------------

@pytest.mark.parametrize("args, code, stderr", [
    (("--set", "clics=120"), 1,
     "error: --set: no loaded KPI has an input named 'clics' (did you mean 'clicks'?)\n"),
    (("--set", "clicks=120"), 1,
     "error: no KPI can be computed from clicks: clicks_per_euro also needs cost; cpc also needs "
     "cost; ctr also needs impressions\n"),
    ((), 1, "error: no inputs given (use --set NAME=VALUE or --inputs FILE)\n"),
    (("--set", "clicks=120", "--kpi", "ctr"), 1,
     "error: no requested KPI can be computed: missing 1 input: impressions\n"),
    (("--set", "clicks=nan"), 2, "'nan' is not a finite number"),
    (("--set", "clicks=-inf"), 2, "'-inf' is not a finite number"),
])
def test_eval_says_what_is_wrong_with_the_inputs(args, code, stderr):
    proc = kpiforge("eval", "-d", VALID, "--format", "json", *args)
    assert proc.returncode == code, proc.stderr
    assert proc.stderr == stderr if code == 1 else stderr in proc.stderr
    assert_clean(proc)


def test_eval_inputs_file_with_an_unknown_name(tmp_path):
    (tmp_path / "in.yaml").write_text("clicks: 1\nimpresions: 10\n")
    proc = kpiforge("eval", "-d", VALID, "--inputs", str(tmp_path / "in.yaml"))
    assert proc.returncode == 1
    assert proc.stderr == (f"error: {tmp_path / 'in.yaml'}: no loaded KPI has an input named "
                           "'impresions' (did you mean 'impressions'?)\n")


def test_eval_still_evaluates_what_it_can():
    proc = kpiforge("eval", "-d", VALID, "--set", "clicks=120", "--set", "impressions=4000",
                    "--format", "json")
    assert proc.returncode == 0, proc.stderr
    assert [r["kpi"] for r in json.loads(proc.stdout)["results"]] == ["ctr"]


def test_kpiforge_test_prints_case_names_literally(tmp_path):
    (tmp_path / "kpis.yaml").write_text(HOSTILE_KPI)
    (tmp_path / "kpis.test.yaml").write_text(textwrap.dedent("""\
        tests:
          - name: "fails [/x] \\e[2J"
            inputs: {clicks: 1, impressions: 10}
            expect:
              ctr: {value: 99.0}
        """))
    proc = kpiforge("test", ".", cwd=tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert_clean(proc)
    assert "FAIL kpis.test.yaml: fails [/x] \\x1b[2J" in proc.stdout
