"""Loading definition sets: every error of every file at once, positioned, golden-checked."""

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import pytest

from kpiforge import DefinitionError, Direction, Engine, Unit

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).parent / "fixtures"
GOLDEN = FIXTURES / "golden"


def kpiforge(*args, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", "kpiforge", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=120)


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN"):
        path.parent.mkdir(exist_ok=True)
        path.write_text(text)
    assert text == path.read_text(), f"output differs from {path} (UPDATE_GOLDEN=1 rewrites it)"


def test_invalid_set_reports_every_error_of_every_file_golden():
    proc = kpiforge("validate", "tests/fixtures/invalid")
    assert proc.returncode == 1
    check_golden("validate_invalid.txt", proc.stderr)


def test_invalid_set_as_json_lists_the_same_diagnostics():
    import json

    proc = kpiforge("validate", "--format", "json", "tests/fixtures/invalid")
    assert proc.returncode == 1
    data = json.loads(proc.stdout)
    assert data["valid"] is False
    text_lines = kpiforge("validate", "tests/fixtures/invalid").stderr.splitlines()
    assert len(data["diagnostics"]) == len([l for l in text_lines if "error[" in l or "warning[" in l])
    assert {d["code"] for d in data["diagnostics"]} >= {
        "duplicate-id", "unknown-name", "unused-input", "threshold-order", "cycle", "syntax",
        "yaml-tag", "yaml-alias", "duplicate-key"}


def test_every_file_is_checked_even_when_one_is_unreadable(tmp_path):
    (tmp_path / "a.yaml").write_text("id: [unclosed\n")
    (tmp_path / "b.yaml").write_text("id: b\nname: B\nformula: x +\nunit: count\ndirection: higher_is_better\n")
    with pytest.raises(DefinitionError) as info:
        Engine.load(tmp_path)
    paths = {Path(d.path).name for d in info.value.errors}
    assert paths == {"a.yaml", "b.yaml"}


@pytest.mark.parametrize("fragment, code, field", [
    ("formula: clicks / impresions\ninputs: {clicks: {}, impressions: {}}", "unknown-name", "formula"),
    ("formula: clicks.real\ninputs: {clicks: {}}", "forbidden", "formula"),
    ("formula: clicks +\ninputs: {clicks: {}}", "syntax", "formula"),
    ("formula: foo(clicks)\ninputs: {clicks: {}}", "unknown-function", "formula"),
    ("formula: clicks\ninputs: {clicks: {}}\nthresholds: {good: 1, critical: 2}", "threshold-order", "thresholds"),
    ("formula: clicks\ninputs: {clicks: {}}\nthresholds: {good: .inf}", "non-finite", "thresholds.good"),
    ("formula: clicks\ninputs: {clicks: {}}\nthresholds: {good: '3'}", "schema", "thresholds.good"),
    ("formula: clicks\ninputs: {clicks: {}}\nunits: count", "schema", "units"),
])
def test_single_error_is_positioned(tmp_path, fragment, code, field):
    text = "id: k\nname: K\nunit: count\ndirection: higher_is_better\n" + fragment + "\n"
    if "units:" in fragment:
        text = text.replace("unit: count\n", "", 1)
    (tmp_path / "k.yaml").write_text(text)
    with pytest.raises(DefinitionError) as info:
        Engine.load(tmp_path)
    matching = [d for d in info.value.errors if d.code == code and d.field == field]
    assert matching, info.value
    assert matching[0].line > 0 and matching[0].column > 0
    assert str(matching[0]).startswith(f"{matching[0].path}:{matching[0].line}:{matching[0].column}: error[{code}]")


def test_unused_input_is_a_warning_not_an_error(tmp_path):
    (tmp_path / "k.yaml").write_text(
        "id: k\nname: K\nformula: a\ninputs: {a: {}, b: {}}\nunit: count\ndirection: higher_is_better\n")
    engine = Engine.load(tmp_path)
    assert [d.code for d in engine.warnings] == ["unused-input"]


def test_valid_set_loads_with_dependencies_and_file_level_currency():
    engine = Engine.load(FIXTURES / "valid")
    assert set(engine.definitions) == {"ctr", "cpc", "clicks_per_euro", "doubled"}
    cpc = engine["cpc"]
    assert cpc.unit is Unit.CURRENCY and cpc.currency == "USD" and cpc.direction is Direction.LOWER_IS_BETTER
    assert engine["doubled"].depends_on == ("clicks_per_euro", "ctr")
    assert engine.plan(["doubled"]) .index("cpc") < engine.plan(["doubled"]).index("clicks_per_euro")
    assert engine.required_inputs("doubled") == {"clicks", "cost", "impressions"}


def test_missing_path_is_reported(tmp_path):
    with pytest.raises(DefinitionError) as info:
        Engine.load(tmp_path / "nope")
    assert info.value.errors[0].code == "not-found"


def test_definitions_are_frozen():
    engine = Engine.load(FIXTURES / "valid")
    with pytest.raises(dataclasses.FrozenInstanceError):
        engine["ctr"].formula = "1"  # type: ignore[misc]
    with pytest.raises(TypeError):
        engine.definitions["x"] = engine["ctr"]  # type: ignore[index]
