"""Schema validation: every error, at its place in the file, in one short human line."""

from __future__ import annotations

import pytest
from referencing.exceptions import Unresolvable

from kpiforge._schema import DIALECT, check_schema, load_schema, schema_names, validate
from kpiforge._yamlio import load_text

SOURCE_FORMS = [
    {
        "type": "object",
        "required": ["type", "path"],
        "additionalProperties": False,
        "properties": {"type": {"const": "csv"}, "path": {"type": "string"}},
    },
    {
        "type": "object",
        "required": ["type", "query"],
        "additionalProperties": False,
        "properties": {"type": {"const": "sql"}, "query": {"type": "string"}, "url": {"type": "string"}},
    },
    {"type": "string", "minLength": 1},
]

KPI = {
    "$schema": DIALECT,
    "$id": "https://kpiforge.dev/schemas/test/v1/kpi.schema.json",
    "type": "object",
    "required": ["id", "formula", "unit"],
    "additionalProperties": False,
    "properties": {
        "id": {"type": "string", "pattern": "^[a-z][a-z0-9_]*$"},
        "formula": {"type": "string", "minLength": 1},
        "unit": {"enum": ["count", "percent", "currency", "ratio"]},
        "thresholds": {
            "type": "object",
            "additionalProperties": False,
            "properties": {"good": {"type": "number"}, "bad": {"type": "number"}},
        },
        "inputs": {
            "type": "object",
            "propertyNames": {"pattern": "^[a-z][a-z0-9_]*$"},
            "additionalProperties": {
                "type": "object",
                "additionalProperties": False,
                "properties": {"unit": {"enum": ["count", "percent"]}, "description": {"type": "string"}},
            },
        },
        "window": {"anyOf": [{"type": "string", "pattern": "^[0-9]+[dwm]$"}, {"type": "integer", "minimum": 1}]},
        "source": {"oneOf": SOURCE_FORMS},
        "since": {"type": "string", "format": "date"},
        "tags": {"type": "array", "items": {"type": "string"}, "uniqueItems": True, "maxItems": 3},
        "enabled": {"type": "boolean"},
    },
}

LIST = {
    "$schema": DIALECT,
    "$id": "https://kpiforge.dev/schemas/test/v1/list.schema.json",
    "type": "object",
    "required": ["kpis"],
    "properties": {"kpis": {"type": "array", "minItems": 1, "items": {"$ref": KPI["$id"]}}},
}


def lines(text: str, schema=KPI, **kwargs) -> list[str]:
    return [str(d) for d in validate(load_text(text, "bad.yaml"), schema, **kwargs)]


# LIST refers to KPI by an $id no registry knows; BUNDLE carries KPI along in $defs.
BUNDLE = {**LIST, "$id": "https://kpiforge.dev/schemas/test/v1/bundle.schema.json", "$defs": {"kpi": KPI}}
BUNDLE["properties"] = {"kpis": {"type": "array", "minItems": 1, "items": {"$ref": "#/$defs/kpi"}}}


GOLDEN = [
    (
        "every-error-at-its-place",
        """\
id: Revenue KPI
formula: ''
unit: precent
treshold: {good: 1}
thresholds:
  good: high
  bda: 2
inputs:
  Clicks: {}
  visits:
    unit: cnt
    desc: x
window: 7x
since: 2024-13-01
tags: [a, b, a]
enabled: yes
""",
        [
            "bad.yaml:1:5: error[schema]: id: 'Revenue KPI' does not match the pattern ^[a-z][a-z0-9_]*$",
            "bad.yaml:2:10: error[schema]: formula: must not be empty",
            "bad.yaml:3:7: error[schema]: unit: 'precent' is not one of 'count', 'percent', 'currency', 'ratio'"
            " (did you mean 'percent'?)",
            "bad.yaml:4:1: error[schema]: treshold: unknown field 'treshold' (did you mean 'thresholds'?)",
            "bad.yaml:6:9: error[schema]: thresholds.good: expected a number, got a string ('high')",
            "bad.yaml:7:3: error[schema]: thresholds.bda: unknown field 'bda' (did you mean 'bad'?)",
            "bad.yaml:9:3: error[schema]: inputs.Clicks: invalid field name 'Clicks':"
            " does not match the pattern ^[a-z][a-z0-9_]*$",
            "bad.yaml:11:11: error[schema]: inputs.visits.unit: 'cnt' is not one of 'count', 'percent'"
            " (did you mean 'count'?)",
            "bad.yaml:12:5: error[schema]: inputs.visits.desc: unknown field 'desc'",
            "bad.yaml:13:9: error[schema]: window: '7x' does not match the pattern ^[0-9]+[dwm]$",
            "bad.yaml:14:8: error[schema]: since: '2024-13-01' is not a valid date",
            "bad.yaml:15:7: error[schema]: tags: items must be unique; 'a' appears more than once",
            "bad.yaml:16:10: error[schema]: enabled: expected true or false, got a string ('yes')",
        ],
    ),
    (
        "required-points-at-the-parent",
        "unit: count\nthresholds: {}\n",
        [
            "bad.yaml:1:1: error[schema]: missing required field 'formula'",
            "bad.yaml:1:1: error[schema]: missing required field 'id'",
        ],
    ),
    (
        "wrong-shape-lists-the-allowed-types",
        "id: a\nformula: x\nunit: count\nsource: [a.csv]\nwindow: [7]\nthresholds: [1]\n",
        [
            "bad.yaml:4:9: error[schema]: source: expected a mapping or a string, got a list",
            "bad.yaml:5:9: error[schema]: window: expected a string or an integer, got a list",
            "bad.yaml:6:13: error[schema]: thresholds: expected a mapping, got a list",
        ],
    ),
    (
        "discriminator-mismatch-lists-the-forms",
        "id: a\nformula: x\nunit: count\nsource:\n  type: xlsx\n  path: a.xlsx\n",
        ["bad.yaml:5:9: error[schema]: source.type: 'xlsx' is not one of 'csv', 'sql'"],
    ),
    (
        "discriminator-match-explains-that-form",
        "id: a\nformula: x\nunit: count\nsource:\n  type: sql\n  query: 1\n  uri: postgres://\n",
        [
            "bad.yaml:6:10: error[schema]: source.query: expected a string, got an integer (1)",
            "bad.yaml:7:3: error[schema]: source.uri: unknown field 'uri' (did you mean 'url'?)",
        ],
    ),
    (
        "missing-field-in-the-chosen-form",
        "id: a\nformula: x\nunit: count\nsource: {type: csv}\n",
        ["bad.yaml:4:9: error[schema]: source: missing required field 'path'"],
    ),
    (
        "numbers-and-sizes",
        "id: a\nformula: x\nunit: count\nwindow: 0\ntags: [a, b, c, d]\n",
        [
            "bad.yaml:4:9: error[schema]: window: must be at least 1, got 0",
            "bad.yaml:5:7: error[schema]: tags: must have at most 3 items, got 4",
        ],
    ),
    (
        "null-value",
        "id:\nformula: x\nunit: count\n",
        ["bad.yaml:1:4: error[schema]: id: expected a string, got an empty value"],
    ),
]


@pytest.mark.parametrize(("text", "expected"), [g[1:] for g in GOLDEN], ids=[g[0] for g in GOLDEN])
def test_golden_output(text, expected):
    assert lines(text) == expected


def test_a_valid_document_has_no_diagnostics():
    text = "id: conv\nformula: a / b\nunit: percent\nsource: {type: csv, path: a.csv}\nwindow: 7d\n"
    assert validate(load_text(text, "ok.yaml"), KPI) == []


def test_paths_inside_lists_and_refs():
    text = "kpis:\n  - id: a\n    formula: x\n    unit: count\n  - id: b\n    formula: 3\n    unit: count\n"
    assert lines(text, BUNDLE) == ["bad.yaml:6:14: error[schema]: kpis[1].formula: expected a string, got an integer (3)"]


def test_unknown_ref_is_never_fetched():
    # LIST points at KPI by an $id no shipped schema has: refused, not downloaded.
    with pytest.raises(Unresolvable):
        validate(load_text("kpis: [{}]\n", "x.yaml"), LIST)


def test_refs_to_shipped_schemas_resolve_by_id():
    if "kpi.schema.json" not in schema_names():
        pytest.skip("kpi.schema.json not written yet")
    kpi_id = load_schema("kpi.schema.json")["$id"]
    schema = {"type": "object", "properties": {"kpi": {"$ref": kpi_id}}}
    assert lines("kpi: 1\n", schema) == ["bad.yaml:1:6: error[schema]: kpi: expected a mapping, got an integer (1)"]


def test_dependent_required():
    schema = {"type": "object", "dependentRequired": {"currency": ["unit"]}}
    assert lines("a: 1\ncurrency: EUR\n", schema) == [
        "bad.yaml:1:1: error[schema]: field 'unit' is required when 'currency' is set"
    ]


def test_base_path_validates_a_subtree_with_document_positions():
    text = "kpis:\n  - id: a\n    formula: x\n    unit: count\n  - id: B\n    unit: count\n"
    doc = load_text(text, "bad.yaml")
    assert [str(d) for d in validate(doc, KPI, base_path=("kpis", 1))] == [
        "bad.yaml:5:5: error[schema]: kpis[1]: missing required field 'formula'",
        "bad.yaml:5:9: error[schema]: kpis[1].id: 'B' does not match the pattern ^[a-z][a-z0-9_]*$",
    ]
    assert validate(doc, KPI, base_path=("kpis", 0)) == []
    with pytest.raises(LookupError):
        validate(doc, KPI, base_path=("kpis", 5))


def test_enum_suggestion_ignores_case():
    assert lines("id: a\nformula: x\nunit: COUNT\n") == [
        "bad.yaml:3:7: error[schema]: unit: 'COUNT' is not one of 'count', 'percent', 'currency', 'ratio'"
        " (did you mean 'count'?)"
    ]


def test_enum_discriminated_alternatives():
    schema = {
        "oneOf": [
            {"type": "object", "properties": {"kind": {"enum": ["csv", "tsv"]}, "path": {"type": "string"}}},
            {"type": "object", "properties": {"kind": {"enum": ["sql"]}, "query": {"type": "string"}}},
        ]
    }
    assert lines("kind: xlsx\n", schema) == ["bad.yaml:1:7: error[schema]: kind: 'xlsx' is not one of 'csv', 'tsv', 'sql'"]
    assert lines("kind: sql\nquery: 1\n", schema) == [
        "bad.yaml:2:8: error[schema]: query: expected a string, got an integer (1)"
    ]


def test_one_typo_does_not_switch_to_another_form():
    schema = {
        "oneOf": [
            {"type": "object", "additionalProperties": False, "properties": {"id": {}, "unit": {"enum": ["count"]}}},
            {"type": "object", "additionalProperties": False, "required": ["kpis"], "properties": {"kpis": {}}},
        ]
    }
    assert lines("id: a\nunit: cnt\n", schema) == [
        "bad.yaml:2:7: error[schema]: unit: 'cnt' is not one of 'count' (did you mean 'count'?)"
    ]


def test_unevaluated_properties_are_unknown_fields():
    schema = {"type": "object", "allOf": [{"properties": {"name": {}}}], "unevaluatedProperties": False}
    assert lines("name: a\nnmae: b\n", schema) == [
        "bad.yaml:2:1: error[schema]: nmae: unknown field 'nmae' (did you mean 'name'?)"
    ]


def test_messages_never_dump_whole_values():
    schema = {"type": "object", "properties": {"a": {"not": {"type": "object"}}, "b": {"oneOf": [{}, {}]}}}
    found = lines("a: {x: 1, y: [1, 2, 3]}\nb: {z: 1}\n", schema)
    assert found == [
        "bad.yaml:1:4: error[schema]: a: a mapping is not allowed here",
        "bad.yaml:2:4: error[schema]: b: matches more than one of the allowed forms; it must match exactly one",
    ]
    long = "x" * 500
    (line,) = lines(f"id: a\nformula: x\nunit: {long}\n")
    assert len(line) < 200


def test_named_schemas_are_cached_copies():
    names = schema_names()
    if not names:
        pytest.skip("no schema files in kpiforge.schemas yet")
    first = load_schema(names[0])
    first["mutated"] = True
    assert "mutated" not in load_schema(names[0])
    with pytest.raises(LookupError):
        load_schema("no-such.schema.json")
    with pytest.raises(ValueError):
        load_schema("../pyproject.toml")


def test_every_shipped_schema_is_a_versioned_draft_2020_12_schema():
    names = schema_names()
    if not names:
        pytest.skip("no schema files in kpiforge.schemas yet")
    for name in names:
        assert check_schema(name) == [], name


def test_check_schema_reports_problems():
    assert check_schema(KPI) == []
    assert check_schema({**KPI, "$schema": "http://json-schema.org/draft-07/schema#"}) == [
        f"$schema must be {DIALECT!r}"
    ]
    assert check_schema({**KPI, "$id": "https://kpiforge.dev/schemas/kpi.schema.json"}) == [
        "$id must be an absolute URI with a version, e.g. https://kpiforge.dev/schemas/kpi/v1.json"
    ]
    assert check_schema({**KPI, "$id": "kpi/v1.json"})[0].startswith("$id must be an absolute URI")
    assert check_schema({**KPI, "properties": {"a": {"type": "strnig"}}})[0].startswith(
        "invalid draft 2020-12 schema at properties/a/type:"
    )
    assert check_schema({**KPI, "properties": {"a": {"$ref": "#/$defs/missing"}}}) == [
        "$ref '#/$defs/missing' does not resolve"
    ]
    for versioned in ("https://x.dev/schemas/v2/kpi.json", "https://x.dev/kpi/1.0/schema.json", "https://x.dev/kpi-v3.json"):
        assert check_schema({**KPI, "$id": versioned}) == [], versioned


def test_a_schema_without_an_id_is_refused():
    without = {k: v for k, v in KPI.items() if k != "$id"}
    assert check_schema(without) == [
        "$id must be an absolute URI with a version, e.g. https://kpiforge.dev/schemas/kpi/v1.json"
    ]
    # the metaschema already refuses an $id that is not a string
    assert check_schema({**KPI, "$id": 5})[0].startswith("invalid draft 2020-12 schema at $id:")


def test_a_ref_outside_the_registry_is_never_fetched():
    from referencing.exceptions import NoSuchResource

    from kpiforge._schema import _retrieve

    uri = "https://example.invalid/schemas/v1/other.json"
    with pytest.raises(NoSuchResource) as caught:
        _retrieve(uri)
    assert caught.value.ref == uri  # referencing reports the URI it was asked for from `ref`
    assert check_schema({**KPI, "properties": {"a": {"$ref": uri}}}) == [f"$ref {uri!r} does not resolve"]
