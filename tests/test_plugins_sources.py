"""Third-party plugins: a source type and a function from a plugins folder, and broken plugins.

A throwaway plugin file is written into ``tmp_path`` and loaded exactly as ``--plugins-dir``
does; a broken plugin (at import or at registration) is reported by name and the rest works.
"""

import os
import subprocess
import sys
import textwrap

import pytest

from kpiforge import Project
from kpiforge._plugins import load_plugins
from kpiforge.errors import PluginWarning

PLUGIN = '''
"""A constant source and a function, as a third party would write them."""
import numpy as np

from kpiforge import hookimpl
from kpiforge.sources import SourceFrame


class Constant:
    def __init__(self, name, settings, context):
        self.value = float(settings.get("value", 1.0))

    def fetch(self, request):
        # one row per requested range start, aggregated "upstream"
        starts = [start for start, _ in request.ranges]
        return SourceFrame.from_columns(
            starts, {}, {name: [self.value] * len(starts) for name in request.inputs},
            grain=request.grain, week_start=request.week_start)


def triple(x):
    return x * 3


@hookimpl
def kpiforge_register_source_types(register):
    register("constant", Constant, doc="Always the same value.")


@hookimpl
def kpiforge_register_functions(register):
    register("triple", triple, min_args=1, max_args=1, doc="Three times x.")
'''

BROKEN_AT_IMPORT = "raise RuntimeError('this plugin is broken at import')\n"

BROKEN_AT_REGISTRATION = '''
from kpiforge import hookimpl


@hookimpl
def kpiforge_register_source_types(register):
    raise ValueError("cannot register today")
'''

DEFINITION = """\
id: tripled
name: Tripled
formula: triple(visitors)
inputs: {visitors: {unit: count}}
unit: count
direction: higher_is_better
"""


@pytest.fixture
def plugins_dir(tmp_path):
    folder = tmp_path / "plugins"
    folder.mkdir()
    (folder / "constant_plugin.py").write_text(PLUGIN)
    return folder


def test_a_plugin_adds_a_source_type_and_a_function(plugins_dir, tmp_path):
    plugins = load_plugins(plugins_dir=plugins_dir)
    assert plugins.source_types["constant"].plugin == "constant_plugin"
    assert plugins.source_types["constant"].doc == "Always the same value."
    assert "triple" in plugins.functions
    assert not plugins.failures
    (tmp_path / "defs").mkdir()
    (tmp_path / "defs" / "tripled.yaml").write_text(DEFINITION)
    project = Project.from_dict({"definitions": ["defs"], "sources": {"c": {
        "type": "constant", "time": "t", "inputs": {"visitors": {"agg": "sum"}}}}}, root=tmp_path, plugins=plugins)
    result = project.run(period="2026-10")
    assert [(r.kpi, r.period, r.value) for r in result] == [("tripled", "2026-10", 3.0)]


def test_a_plugin_source_without_latest_still_finds_the_latest_period(plugins_dir, tmp_path):
    plugins = load_plugins(plugins_dir=plugins_dir)
    (tmp_path / "defs").mkdir()
    (tmp_path / "defs" / "tripled.yaml").write_text(DEFINITION)
    project = Project.from_dict({"definitions": ["defs"], "sources": {"c": {
        "type": "constant", "time": "t", "inputs": {"visitors": {"agg": "sum"}}}}}, root=tmp_path, plugins=plugins)
    # the constant source has no latest() and no data without a range: nothing to compute
    assert len(project.run()) == 0


def test_an_unknown_source_type_is_a_positioned_project_error(plugins_dir, tmp_path):
    from kpiforge import ProjectError
    from kpiforge._project import load_project

    (tmp_path / "kpiforge.yaml").write_text(
        "sources:\n  c: {type: constnat, time: t, inputs: {visitors: {agg: sum}}}\n")
    with pytest.raises(ProjectError, match="did you mean 'constant'"):
        load_project(tmp_path / "kpiforge.yaml", plugins=load_plugins(plugins_dir=plugins_dir))
    # with the plugin the file is fine; without it the type is unknown
    (tmp_path / "kpiforge.yaml").write_text(
        "sources:\n  c: {type: constant, time: t, inputs: {visitors: {agg: sum}}}\n")
    assert load_project(tmp_path / "kpiforge.yaml", plugins=load_plugins(plugins_dir=plugins_dir))
    with pytest.raises(ProjectError, match="unknown source type 'constant'"):
        load_project(tmp_path / "kpiforge.yaml", plugins=load_plugins())


def test_broken_plugins_are_named_and_the_others_keep_working(plugins_dir):
    (plugins_dir / "broken_import.py").write_text(BROKEN_AT_IMPORT)
    (plugins_dir / "broken_register.py").write_text(BROKEN_AT_REGISTRATION)
    with pytest.warns(PluginWarning, match="broken"):
        plugins = load_plugins(plugins_dir=plugins_dir)
    assert "this plugin is broken at import" in plugins.failures["broken_import"]
    assert "cannot register today" in plugins.failures["broken_register"]
    assert "kpiforge_register_source_types" in plugins.failures["broken_register"]
    # the healthy plugin and every built-in source type are still there
    assert {"constant", "csv", "parquet", "json", "duckdb", "sqlite", "sql", "dataframe", "records"} <= set(
        plugins.source_types)


def kpiforge(*args, cwd):
    # wide enough that rich never wraps a plugin name across lines
    env = {**os.environ, "COLUMNS": "250"}
    return subprocess.run([sys.executable, "-m", "kpiforge", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=120, env=env)


def test_cli_plugins_lists_the_plugin_and_what_it_registered(plugins_dir, tmp_path):
    proc = kpiforge("--plugins-dir", str(plugins_dir), "plugins", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "constant_plugin" in proc.stdout
    assert "source:constant" in proc.stdout and "function:triple" in proc.stdout
    for builtin in ("kpiforge.plugins.sources.files", "kpiforge.plugins.sources.databases",
                    "kpiforge.plugins.sources.records"):
        assert builtin in proc.stdout
    assert "source:csv" in proc.stdout and "source:sqlite" in proc.stdout and "source:dataframe" in proc.stdout


def test_cli_plugins_with_broken_plugins_names_them_and_still_works(plugins_dir, tmp_path):
    (plugins_dir / "broken_import.py").write_text(BROKEN_AT_IMPORT)
    (plugins_dir / "broken_register.py").write_text(BROKEN_AT_REGISTRATION)
    proc = kpiforge("--plugins-dir", str(plugins_dir), "plugins", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "plugin broken_import failed" in proc.stderr
    assert "plugin broken_register failed" in proc.stderr
    assert "source:constant" in proc.stdout and "source:csv" in proc.stdout


def test_cli_run_uses_a_plugin_source(plugins_dir, tmp_path):
    (tmp_path / "defs").mkdir()
    (tmp_path / "defs" / "tripled.yaml").write_text(DEFINITION)
    (tmp_path / "kpiforge.yaml").write_text(textwrap.dedent("""\
        definitions: [defs/]
        sources:
          c: {type: constant, time: t, inputs: {visitors: {agg: sum}}}
        """))
    proc = kpiforge("--plugins-dir", str(plugins_dir), "run", "--period", "2026-Q4", "--grain", "quarter",
                    "--format", "json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert '"value": 3.0' in proc.stdout and '"period": "2026-Q4"' in proc.stdout
    without = kpiforge("run", "--period", "2026-Q4", cwd=tmp_path)
    assert without.returncode == 1 and "unknown source type 'constant'" in without.stderr
