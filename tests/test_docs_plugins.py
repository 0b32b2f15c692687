"""The code blocks of docs/plugins.md's source sections run, and every block is run somewhere.

The hook signatures are checked by test_plugin_docs.py, the sink, command and periods examples
by test_public_sinks.py; this file runs the two source examples through a real project.
"""

from __future__ import annotations

import re
import types
from pathlib import Path

import pytest

import kpiforge
from kpiforge import DefinitionError, ProjectError, hookimpl
from kpiforge._plugins import load_plugins

GUIDE = Path(__file__).resolve().parent.parent / "docs" / "plugins.md"
BLOCK = re.compile(r"^```python\n(.*?)^```$", re.S | re.M)
EXECUTED = {  # section -> the test that runs its blocks
    "Hooks": "test_plugin_docs.py (signatures)",
    "Source types: `kpiforge.sources`": "test_the_source_type_example_runs",
    "Settings and secrets": "test_the_settings_and_secrets_example_validates_its_settings",
    "Writing a sink": "test_public_sinks.py",
    "A command plugin": "test_public_sinks.py",
    "Periods": "test_public_sinks.py",
}
KPI = {"kpis": [{"id": "visits_total", "name": "Visits", "formula": "visits",
                 "inputs": {"visits": {"unit": "count"}}, "unit": "count",
                 "direction": "higher_is_better"}]}


def _sections() -> dict[str, list[str]]:
    text = GUIDE.read_text(encoding="utf-8")
    found: dict[str, list[str]] = {}
    for match in re.finditer(r"^## ([^\n]+)\n(.*?)(?=^## |\Z)", text, re.S | re.M):
        blocks = BLOCK.findall(match.group(2))
        if blocks:
            found[match.group(1)] = blocks
    return found


def _module(code: str, name: str) -> types.ModuleType:
    module = types.ModuleType(name)
    exec(compile(code, f"docs/plugins.md ({name})", "exec"), module.__dict__)
    return module


def _project(tmp_path: Path, source: dict, plugin: object) -> kpiforge.Project:
    import yaml

    (tmp_path / "kpis.yaml").write_text(yaml.safe_dump(KPI), encoding="utf-8")
    return kpiforge.Project.from_dict({"definitions": ["kpis.yaml"], "sources": {"web": source}},
                                      root=tmp_path, plugins=load_plugins(extra=(plugin,)))


def test_every_section_with_code_is_executed_by_a_test():
    assert set(_sections()) == set(EXECUTED)


def test_the_source_type_example_runs(tmp_path):
    [code] = _sections()["Source types: `kpiforge.sources`"]
    guide = _module(code, "guide_constant")

    @hookimpl
    def kpiforge_register_source_types(register):
        register("constant", guide.Constant, settings_schema={"type": "object"})

    plugin = types.SimpleNamespace(kpiforge_register_source_types=kpiforge_register_source_types)
    project = _project(tmp_path, {"type": "constant", "time": "day",
                                  "inputs": {"visits": {"agg": "sum"}}}, plugin)
    (record,) = project.run(period="2026-10").records
    assert (record.kpi, record.period, record.value) == ("visits_total", "2026-10", 1.0)


def test_the_settings_and_secrets_example_validates_its_settings(tmp_path, monkeypatch):
    [code] = _sections()["Settings and secrets"]
    guide = _module(code, "guide_api")
    monkeypatch.setenv("MY_TOKEN", "t0ken-value-123456")
    source = {"type": "api", "token": "${MY_TOKEN}", "time": "day",
              "inputs": {"visits": {"agg": "sum"}}}
    project = _project(tmp_path, source, guide)
    assert project.sources["web"].settings["token"] == "${MY_TOKEN}"  # expanded only when built
    with pytest.raises((DefinitionError, ProjectError)) as caught:
        _project(tmp_path, {**{k: v for k, v in source.items() if k != "token"},
                            "tokn": "${MY_TOKEN}"}, guide)
    message = str(caught.value)
    assert "tokn" in message and "did you mean 'token'" in message
