"""The command line's public contract: one group per invocation, the same options on every
command, kpiforge init, progress only on a terminal, names in the chosen language, completion."""

import ast
import json
import os
import pty
import select
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def kpiforge(*args, cwd=ROOT, env=None):
    return subprocess.run([sys.executable, "-m", "kpiforge", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=180, env=env)


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A project straight from ``kpiforge init``: the one every table-driven case uses."""
    root = tmp_path_factory.mktemp("init") / "shop"
    proc = kpiforge("init", str(root))
    assert proc.returncode == 0, proc.stderr
    return root / "kpiforge.yaml"


# -- one group per invocation, no import circle ---------------------------------------------

def test_main_twice_in_one_process_reports_no_failed_plugin():
    code = """
import sys
from kpiforge.cli import main
for _ in range(2):
    try:
        main(["plugins"])
    except SystemExit as exc:
        assert exc.code in (0, None), exc.code
"""
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "failed" not in proc.stdout + proc.stderr
    assert proc.stdout.count("alerts") == 2 and proc.stdout.count("silence") == 2


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom):
            names.add("." * node.level + (node.module or ""))
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


@pytest.mark.parametrize("path", sorted((ROOT / "engine").glob("_cli*.py"))
                         + [ROOT / "plugins" / "alerting_cli.py"]
                         + sorted((ROOT / "plugins").glob("_alerting_*.py")), ids=lambda p: p.name)
def test_command_modules_do_not_import_cli_py(path):
    assert not _imports(path) & {".cli", "kpiforge.cli", "engine.cli"}


# -- the same options on every command ------------------------------------------------------

# the bundled catalog's KPIs (counted from its files, so a new catalog KPI needs no edit here)
BUNDLED_KPIS = sum(1 for p in (ROOT / "definitions").glob("*/*.yaml")
                   if not p.name.endswith(".test.yaml"))

# (command, extra arguments, check of the JSON on stdout)
PROJECT_COMMANDS = [
    # the bundled catalog plus the project's own cost_per_signup
    (("validate",), (), lambda d: d["valid"] and d["kpis"] == BUNDLED_KPIS + 1),
    (("list",), (), lambda d: "cost_per_signup" in {k["id"] for k in d["kpis"]}),
    (("show", "cost_per_signup"), (), lambda d: d["formula"] == "cost / signups"),
    (("eval",), ("--set", "cost=30", "--set", "signups=2", "--kpi", "cost_per_signup"),
     lambda d: d["results"][0]["value"] == 15.0),
    (("catalog",), (), lambda d: "cost_per_signup" in {k["id"] for k in d["kpis"]}),
    (("test",), (), lambda d: d["failed"] == 0 and d["passed"] > 2),
    (("run",), ("--no-alerts",), lambda d: "cost_per_signup" in {r["kpi"] for r in d["results"]}),
    (("alerts", "list"), (), lambda d: d == {"alerts": []}),
    (("silence", "list"), (), lambda d: d == {"silences": []}),
    (("annotate", "--list"), (), lambda d: d == {"annotations": []}),
]


@pytest.mark.parametrize("command, extra, check", PROJECT_COMMANDS, ids=lambda c: " ".join(c)
                         if isinstance(c, tuple) and c and isinstance(c[0], str) else None)
def test_every_command_takes_the_project_and_its_definitions(project, tmp_path, command, extra,
                                                             check):
    # run from elsewhere: the project's definitions come from --project, not from the cwd
    proc = kpiforge(*command, "--project", str(project), *extra, "--format", "json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert check(json.loads(proc.stdout))


@pytest.mark.parametrize("command", [("list",), ("show", "ctr"), ("catalog",), ("test",),
                                     ("validate",)], ids=" ".join)
def test_project_and_definitions_together_is_a_usage_error(project, command):
    proc = kpiforge(*command, "--project", str(project), "-d", "tests/fixtures/valid")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "not both" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.parametrize("command", [("validate",), ("list",), ("show", "ctr"), ("eval",),
                                     ("catalog",), ("test",)], ids=" ".join)
def test_definitions_take_packs_everywhere(command):
    extra = ("--set", "clicks=3", "--set", "impressions=100", "--kpi", "ctr") if command == ("eval",) else ()
    proc = kpiforge(*command, "-d", "kpiforge:standard", *extra, "--format", "json")
    assert proc.returncode == 0, proc.stderr
    json.loads(proc.stdout)


# every command with a human format accepts both "text" and "table" for it, with one meaning
HUMAN_FORMATS = [
    ("validate", "-d", "tests/fixtures/valid"),
    ("list", "-d", "tests/fixtures/valid"),
    ("show", "ctr", "-d", "tests/fixtures/valid"),
    ("eval", "-d", "tests/fixtures/valid", "--set", "clicks=3", "--set", "impressions=100"),
    ("test", "-d", "tests/fixtures/valid"),
    ("alerts", "list"),
    ("silence", "list"),
]


@pytest.mark.parametrize("args", HUMAN_FORMATS, ids=lambda a: a[0] + (f" {a[1]}" if a[0] in ("alerts", "silence") else ""))
def test_text_and_table_formats_mean_the_same(project, args):
    cwd = project.parent
    text, table = (kpiforge(*args, "--format", fmt, cwd=cwd if args[0] in ("alerts", "silence") else ROOT)
                   for fmt in ("text", "table"))
    assert (text.returncode, text.stdout) == (table.returncode, table.stdout), text.stderr
    assert text.returncode == 0, text.stderr


def test_validate_project_also_validates_the_project_file(tmp_path):
    (tmp_path / "kpiforge.yaml").write_text(
        "definitions: [kpiforge:standard]\nsources:\n  ads: {type: csv, path: a.csv, time: date, "
        "inputs: {clicks: {agg: summ}}}\n")
    proc = kpiforge("validate", "--project", str(tmp_path / "kpiforge.yaml"))
    assert proc.returncode == 1
    assert "kpiforge.yaml:3:" in proc.stderr and "summ" in proc.stderr


# -- kpiforge init -----------------------------------------------------------------------

def test_init_writes_a_project_that_validates_tests_and_runs(tmp_path):
    root = tmp_path / "new"
    assert kpiforge("init", str(root), "--team", "growth").returncode == 0
    text = (root / "kpiforge.yaml").read_text()
    assert text.startswith("# yaml-language-server: $schema=https://kpiforge.dev/schemas/v1/project.schema.json")
    assert sorted(p.name for p in (root / "growth-kpis").iterdir()) == [
        "cost_per_signup.test.yaml", "cost_per_signup.yaml"]
    project = str(root / "kpiforge.yaml")
    validate = kpiforge("validate", "--project", project)
    assert validate.returncode == 0, validate.stderr
    tests = kpiforge("test", "--project", project)
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert "PASS" in tests.stdout and "cost_per_signup.test.yaml" in tests.stdout
    team_tests = kpiforge("test", str(root / "growth-kpis"), cwd=root)
    assert team_tests.returncode == 0 and team_tests.stdout.endswith("2 passed, 0 failed\n")
    run = kpiforge("run", "--project", project, "--by", "channel", "--format", "json", cwd=root)
    assert run.returncode == 0, run.stderr
    values = {(r["kpi"], r["slice"]["channel"]): r["value"] for r in json.loads(run.stdout)["results"]}
    assert values[("cost_per_signup", "search")] is not None
    assert values[("ctr", "social")] is not None


def test_init_never_overwrites(tmp_path):
    (tmp_path / "kpiforge.yaml").write_text("mine: true\n")
    proc = kpiforge("init", str(tmp_path))
    assert proc.returncode == 1 and "not overwriting" in proc.stderr
    assert (tmp_path / "kpiforge.yaml").read_text() == "mine: true\n"
    assert not (tmp_path / "team-kpis").exists()


# -- progress, languages, completion --------------------------------------------------------

def _run_on_a_terminal(args, cwd):
    """kpiforge with stderr on a pseudo-terminal (stdout piped): what a person would see."""
    main, child = pty.openpty()
    env = {**os.environ, "TERM": "xterm", "COLUMNS": "120"}
    proc = subprocess.Popen([sys.executable, "-m", "kpiforge", *args], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=child, stdin=subprocess.DEVNULL)
    os.close(child)
    seen = b""
    while True:
        ready, _, _ = select.select([main], [], [], 60)
        if not ready:
            break
        try:
            chunk = os.read(main, 65536)
        except OSError:  # the child closed its end
            break
        if not chunk:
            break
        seen += chunk
    out = proc.communicate(timeout=120)[0]
    os.close(main)
    return proc.returncode, out.decode(), seen.decode(errors="replace")


def test_run_shows_progress_on_a_terminal_only(project):
    code, out, terminal = _run_on_a_terminal(
        ["run", "--project", str(project), "--no-alerts", "--format", "json"], project.parent)
    assert code == 0, terminal
    assert "computing KPIs" in terminal
    json.loads(out)  # stdout stays data

    quiet = _run_on_a_terminal(["run", "--project", str(project), "--no-alerts", "--quiet",
                                "--format", "json"], project.parent)
    assert quiet[0] == 0 and "computing KPIs" not in quiet[2]

    piped = kpiforge("run", "--project", str(project), "--no-alerts", cwd=project.parent)
    assert piped.returncode == 0, piped.stderr
    assert "computing" not in piped.stderr and "\x1b" not in piped.stderr


@pytest.mark.parametrize("args, expected", [
    (("list", "--category", "acquisition", "--lang", "fr"), "Taux de clics (CTR)"),
    (("list", "--category", "acquisition"), "Click-through rate (CTR)"),
    (("show", "ctr", "--lang", "fr"), "ctr — Taux de clics (CTR)"),
    (("eval", "--set", "clicks=3", "--set", "impressions=100", "--kpi", "ctr", "--lang", "fr"),
     "Taux de clics (CTR)"),
])
def test_tables_show_names_in_the_chosen_language(args, expected):
    proc = kpiforge(*args, env={**os.environ, "COLUMNS": "200"})
    assert proc.returncode == 0, proc.stderr
    assert expected in proc.stdout


def test_run_table_shows_names_in_the_chosen_language(project):
    proc = kpiforge("run", "--project", str(project), "--no-alerts", "--lang", "fr",
                    cwd=project.parent)
    assert proc.returncode == 0, proc.stderr
    assert "Coût par inscription" in proc.stdout and "cost_per_signup" in proc.stdout


def test_shell_completion_script_and_plugin_commands():
    env = {**os.environ, "_KPIFORGE_COMPLETE": "bash_source"}
    script = kpiforge(env=env)
    assert script.returncode == 0 and "_kpiforge_completion" in script.stdout
    env = {**os.environ, "_KPIFORGE_COMPLETE": "bash_complete", "COMP_WORDS": "kpiforge al",
           "COMP_CWORD": "1"}
    words = kpiforge(env=env)
    assert "alerts" in words.stdout


def test_cli_docs_name_every_command_and_exit_code():
    docs = (ROOT / "docs" / "cli.md").read_text()
    for word in ("kpiforge init", "_KPIFORGE_COMPLETE=bash_source", "--project", "--quiet",
                 "| 3 |", "| 4 |"):
        assert word in docs


def test_cli_docs_have_every_built_in_command():
    from kpiforge.cli import _builtin_commands

    docs = (ROOT / "docs" / "cli.md").read_text()
    table = docs.split("## Commands", 1)[1].split("\n## ", 1)[0]
    missing = [name for name in _builtin_commands() if f"| `kpiforge {name}" not in table]
    assert not missing, f"docs/cli.md's table of commands lacks {missing}"
