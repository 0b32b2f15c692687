"""Start-up stays cheap: `kpiforge --help` and `--version` import no heavy library they do not need.

Checked with ``python -X importtime`` in a fresh process, whose stderr names every module
imported. Speed itself is measured by benchmarks/bench_startup.py, never here.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# numpy, schema checking, the SQL engine and the sink clients: printing help must not load them
NOT_FOR_HELP = ("numpy", "jsonschema", "duckdb", "httpx", "smtplib", "ssl", "apprise")


def imported_modules(*args: str, cwd: Path | None = None, **env_vars: str) -> set[str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPROFILEIMPORTTIME"}
    env.update(env_vars)
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "kpiforge", *args],
                          capture_output=True, text=True, timeout=120, env=env, cwd=cwd)
    assert proc.returncode == 0, proc.stderr[-2000:]
    names = set()
    for line in proc.stderr.splitlines():
        if line.startswith("import time:") and line.count("|") == 2:
            name = line.rsplit("|", 1)[1].strip()
            if name != "package":  # the header line
                names.add(name)
    assert "kpiforge" in names and "encodings" in names  # the parse sees real imports
    return names


def top_level(names: set[str]) -> set[str]:
    return {name.split(".")[0] for name in names}


@pytest.mark.parametrize("args", [("--help",), ("--version",)])
def test_help_and_version_import_no_schema_checker_sql_engine_nor_sink_client(args):
    imported = top_level(imported_modules(*args))
    assert not imported & set(NOT_FOR_HELP), sorted(imported & set(NOT_FOR_HELP))


def test_validate_on_the_catalog_computes_nothing_so_imports_neither_numpy_nor_asteval(tmp_path):
    """Formulas are checked by the allow-list, not run; the built-in functions and source
    types are registered without numpy. With the schema verdicts cached (kpiforge._verdicts)
    jsonschema is not needed either."""
    cache = str(tmp_path / "cache")
    cold = top_level(imported_modules("validate", cwd=tmp_path, KPIFORGE_CACHE_DIR=cache))
    assert "jsonschema" in cold  # the first run validates every file
    assert not cold & {"numpy", "asteval", "duckdb"}, sorted(cold & {"numpy", "asteval", "duckdb"})
    warm_names = imported_modules("validate", cwd=tmp_path, KPIFORGE_CACHE_DIR=cache)
    warm = top_level(warm_names)
    # the parse cache: no YAML is parsed; the source plugins register without their SQL
    unwanted = {"numpy", "asteval", "duckdb", "jsonschema", "referencing", "yaml", "sqlite3"}
    assert not warm & unwanted, sorted(warm & unwanted)
    heavy = {"kpiforge.sources", "kpiforge._yaml_compose", "kpiforge.plugins.sources._sqlsource"}
    assert not warm_names & heavy, sorted(warm_names & heavy)
    off = top_level(imported_modules("validate", cwd=tmp_path, KPIFORGE_CACHE_DIR=cache,
                                     KPIFORGE_NO_CACHE="1"))
    assert "jsonschema" in off and "numpy" not in off


def test_version_is_the_installed_distributions():
    import importlib.metadata

    proc = subprocess.run([sys.executable, "-m", "kpiforge", "--version"], capture_output=True,
                          text=True, timeout=120)
    assert proc.stdout.strip() == f"kpiforge, version {importlib.metadata.version('kpiforge')}"


def test_the_deferred_builtins_only_register_functions_and_types():
    """With ``lazy=True`` only COMMAND_PLUGINS are imported at once: any other built-in must
    implement nothing but the register hooks, which are called when a registry is read."""
    import importlib

    from kpiforge._plugins import COMMAND_PLUGINS, DEFAULT_PLUGINS

    registers = {"kpiforge_register_functions", "kpiforge_register_source_types",
                 "kpiforge_register_sink_types", "kpiforge_register_packs"}
    assert set(COMMAND_PLUGINS) <= set(DEFAULT_PLUGINS)
    for dotted in DEFAULT_PLUGINS:
        module = importlib.import_module(dotted)
        hooks = {name for name in dir(module) if name.startswith("kpiforge_")
                 and hasattr(getattr(module, name), "kpiforge_impl")}
        assert hooks, dotted
        if dotted not in COMMAND_PLUGINS:
            assert hooks <= registers, (dotted, hooks - registers)


def test_lazy_loading_registers_the_same_as_eager_loading():
    from kpiforge._plugins import load_plugins

    eager, lazy = load_plugins(), load_plugins(lazy=True)
    assert lazy.pending is not None  # nothing collected yet, the source plugins not even added
    assert lazy.manager.get_plugin("kpiforge.plugins.sources.files") is None
    assert lazy.manager.get_plugin("kpiforge.plugins.alerting_cli") is not None
    assert list(lazy.origins) == list(eager.origins)
    for kind in ("functions", "source_types", "sink_types"):
        assert {n: r.plugin for n, r in getattr(lazy, kind).items()} == \
               {n: r.plugin for n, r in getattr(eager, kind).items()}, kind
    assert lazy.pending is None
    assert lazy.infos() == eager.infos() and lazy.failures == eager.failures == {}


def test_a_lazy_load_reports_a_failing_registration_when_it_collects():
    import warnings

    import kpiforge
    from kpiforge._plugins import load_plugins
    from kpiforge.errors import PluginWarning

    class Broken:
        __name__ = "broken"

        @kpiforge.hookimpl
        def kpiforge_register_functions(self, register):
            raise RuntimeError("boom")

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        plugins = load_plugins(extra=(Broken(),), lazy=True)
        assert not caught and plugins.failures == {}
        assert plugins.functions  # reading a registry collects them all
    assert "boom" in plugins.failures["broken"]
    assert [w.category for w in caught] == [PluginWarning]


def test_a_command_that_needs_the_engine_still_gets_it(tmp_path):
    # eval computes (numpy, asteval); with the verdict cache off, every file goes to jsonschema
    imported = top_level(imported_modules("eval", "--set", "clicks=120", "--set",
                                          "impressions=4000", "--kpi", "ctr", cwd=tmp_path,
                                          KPIFORGE_NO_CACHE="1"))
    assert {"numpy", "asteval", "jsonschema"} <= imported


def test_the_public_names_resolve_on_first_use():
    code = "\n".join([
        "import sys, kpiforge",
        "assert 'kpiforge._engine' not in sys.modules",
        "from kpiforge import Engine, Status, hookimpl",
        "assert 'kpiforge._engine' in sys.modules and Engine.__module__ == 'kpiforge._engine'",
        "assert set(kpiforge.__all__) <= set(dir(kpiforge))",
        "try:\n    kpiforge.NoSuchName\nexcept AttributeError as e:\n    print(e)",
    ])
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "has no attribute 'NoSuchName'" in proc.stdout


def test_the_startup_benchmark_runs_and_prints_its_targets():
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks/bench_startup.py"), "--quick",
                           "--repeats", "1"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    targets = [line for line in proc.stdout.splitlines() if line.startswith("target ")]
    assert len(targets) == 2, proc.stdout
    assert all(line.endswith(("-> met", "-> missed")) for line in targets), targets
    assert "kpiforge --help" in targets[0] and "kpiforge validate" in targets[1]
    for floor in ("python -c pass", 'python -c "import click"'):
        assert floor in proc.stdout


def test_a_plain_run_to_a_pipe_imports_no_alerting_rich_or_masked_arrays(tmp_path):
    """`kpiforge run --format json --no-alerts` (what scripts and the peers benchmark run)
    needs neither the alerting package (jinja2 templates), rich (nothing is drawn on a pipe)
    nor numpy.ma (no column has a NULL)."""
    (tmp_path / "ads.csv").write_text("day,clicks,impressions\n2026-10-01,5,100\n"
                                      "2026-10-02,7,120\n", encoding="utf-8")
    (tmp_path / "kpis.yaml").write_text(
        "kpis:\n  - id: ctr\n    name: CTR\n    formula: clicks / impressions * 100\n"
        "    inputs: {clicks: {unit: count}, impressions: {unit: count}}\n"
        "    unit: percent\n    direction: higher_is_better\n", encoding="utf-8")
    (tmp_path / "kpiforge.yaml").write_text(
        "definitions: [kpis.yaml]\nsources:\n  ads:\n    type: csv\n    path: ads.csv\n"
        "    time: day\n    inputs: {clicks: {agg: sum}, impressions: {agg: sum}}\n",
        encoding="utf-8")
    names = imported_modules("run", "--period", "2026-10", "--format", "json", "--no-alerts",
                             cwd=tmp_path, KPIFORGE_CACHE_DIR=str(tmp_path / "cache"))
    assert "duckdb" in top_level(names) and "kpiforge._run" in names  # it did run
    unwanted = {"kpiforge.alerts", "jinja2", "rich", "numpy.ma"}
    assert not (names | top_level(names)) & unwanted, sorted((names | top_level(names)) & unwanted)


@pytest.mark.parametrize("given, expected", [(None, "1"), ("4", "4")])
def test_the_command_line_starts_openblas_with_one_thread_unless_told_otherwise(given, expected):
    code = ("import os, sys\nfrom kpiforge.cli import main\nsys.argv = ['kpiforge', '--version']\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            "print(os.environ.get('OPENBLAS_NUM_THREADS'))")
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    if given is not None:
        env["OPENBLAS_NUM_THREADS"] = given
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-1] == expected
