"""The quick validity check agrees with jsonschema: it never vouches for a document jsonschema
finds an error in, and it vouches for every valid bundled file (else it would save nothing).

The documents are the bundled definition files and objectives, and broken variants of them
made by hypothesis (a key dropped or added, a value replaced by one of another type, shape or
size), each checked against the KPI schemas as ``load_catalog`` applies them.
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kpiforge._definitions import _kpi_validator
from kpiforge._schema import _named_checked, validate
from kpiforge._schema_fast import is_valid
from kpiforge._yamlio import Document, load_document

ROOT = Path(__file__).resolve().parent.parent / "definitions"
KPI_FILES = sorted(p for p in ROOT.rglob("*.yaml")
                   if not p.name.endswith(".test.yaml") and p.name != "objectives.yaml")
OBJECTIVES = ROOT / "objectives.yaml"


def schemas_of(path: Path):
    return [_named_checked("objectives.schema.json")] if path == OBJECTIVES \
        else [_kpi_validator("single"), _kpi_validator("list")]


def jsonschema_errors(checked, data):
    return list(checked.validator.iter_errors(data))


@pytest.mark.parametrize("path", KPI_FILES + [OBJECTIVES], ids=lambda p: p.name)
def test_every_valid_bundled_file_is_vouched_for(path):
    data = load_document(path).data
    checked = schemas_of(path)[0]
    assert not jsonschema_errors(checked, data)
    assert is_valid(checked.schema, data) is True


def test_a_kpis_list_file_is_vouched_for():
    items = [load_document(p).data for p in KPI_FILES[:5]]
    checked = _kpi_validator("list")
    assert not jsonschema_errors(checked, {"kpis": items})
    assert is_valid(checked.schema, {"kpis": items}) is True


REPLACEMENTS = [None, True, False, 0, 1, -1, 1.5, 0.0, 1e300, -1e300, 2.0, "", "x", "X Y",
                "not_a-valid id!", "a" * 300, "EUR", "eur", "2024-02-30", "2024-01-15",
                "higher_is_better", "target", "good", "count", "first", "\n", "a\n", [], [1],
                ["a"], ["a", "a"], [5, 5.0], [1, True], {}, {"x": 1}, {"good": 1}]


def paths(node, prefix=()):
    yield prefix
    if isinstance(node, dict):
        for key, value in node.items():
            yield from paths(value, prefix + (key,))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from paths(value, prefix + (i,))


def mutate(data, path, action, value):
    data = copy.deepcopy(data)
    if not path:
        return value if action == "replace" else data
    parent = data
    for part in path[:-1]:
        parent = parent[part]
    last = path[-1]
    if action == "replace":
        parent[last] = value
    elif action == "drop":
        del parent[last]
    elif action == "add" and isinstance(parent, dict):
        parent[str(value) if not isinstance(value, (dict, list)) else "extra"] = value
    elif action == "add":
        parent.append(value)
    return data


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_a_broken_variant_is_never_vouched_for(data):
    path = data.draw(st.sampled_from(KPI_FILES + [OBJECTIVES]), label="file")
    original = load_document(path).data
    where = data.draw(st.sampled_from(list(paths(original))), label="where")
    action = data.draw(st.sampled_from(["replace", "drop", "add"]), label="action")
    value = data.draw(st.sampled_from(REPLACEMENTS), label="value")
    variant = mutate(original, where, action, value)
    for checked in schemas_of(path):
        errors = jsonschema_errors(checked, variant)
        verdict = is_valid(checked.schema, variant)
        if errors:
            assert verdict is not True, (where, action, value, errors[0].message)
        else:
            assert verdict is not False, (where, action, value)


def test_validate_gives_jsonschemas_diagnostics_either_way():
    data = load_document(KPI_FILES[0]).data
    broken = {**data, "direction": "sideways", "unexpected": 1}
    doc = Document("k.yaml", broken)
    checked = _kpi_validator("single")
    assert validate(doc, checked) == validate(doc, checked.validator) != []
    assert validate(Document("k.yaml", data), checked) == []
