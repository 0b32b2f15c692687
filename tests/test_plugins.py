"""Plugin loading rules: built-ins keep their names, failures are isolated, the env var limits."""

import textwrap

import pytest

from kpiforge._plugins import DEFAULT_PLUGINS, LOAD_PLUGINS_ENV, load_plugins
from kpiforge.errors import PluginWarning


def write_plugin(directory, name, body):
    (directory / f"{name}.py").write_text(textwrap.dedent(body))


def test_every_default_plugin_imports_and_registers():
    plugins = load_plugins()
    assert not plugins.failures
    assert set(DEFAULT_PLUGINS) <= set(plugins.origins)
    assert {"min", "safe_div", "coalesce"} <= set(plugins.functions)
    assert {"csv", "parquet", "duckdb", "sqlite", "sql"} <= set(plugins.source_types)
    assert {"console", "file", "webhook", "slack", "email"} <= set(plugins.sink_types)


def test_a_late_plugin_cannot_take_a_builtin_name(tmp_path):
    write_plugin(tmp_path, "usurper", '''
        from kpiforge import hookimpl

        @hookimpl
        def kpiforge_register_functions(register):
            register("min", lambda *a: 0.0, min_args=1, max_args=None)
    ''')
    with pytest.warns(PluginWarning, match="usurper"):
        plugins = load_plugins(tmp_path)
    assert plugins.functions["min"].plugin == "kpiforge.plugins.functions"
    assert "usurper" in plugins.failures
    assert "kpiforge.plugins.functions" in plugins.failures["usurper"]


def test_a_plugin_that_raises_at_import_leaves_the_others_working(tmp_path):
    write_plugin(tmp_path, "broken", "raise RuntimeError('boom at import')\n")
    write_plugin(tmp_path, "fine", '''
        from kpiforge import hookimpl

        @hookimpl
        def kpiforge_register_functions(register):
            register("double", lambda x: x * 2, min_args=1, max_args=1)
    ''')
    with pytest.warns(PluginWarning, match="boom at import"):
        plugins = load_plugins(tmp_path)
    assert "boom at import" in plugins.failures["broken"]
    assert plugins.functions["double"].plugin == "fine"


@pytest.mark.parametrize("allowed, loaded", [("", set()), ("fine", {"fine"}), ("fine,other", {"fine", "other"})])
def test_load_plugins_env_limits_third_party_plugins(tmp_path, monkeypatch, allowed, loaded):
    for name in ("fine", "other"):
        write_plugin(tmp_path, name, "x = 1\n")
    monkeypatch.setenv(LOAD_PLUGINS_ENV, allowed)
    plugins = load_plugins(tmp_path)
    assert {n for n in plugins.origins if n in ("fine", "other")} == loaded
    assert set(DEFAULT_PLUGINS) <= set(plugins.origins)  # built-ins always load
