"""The hardened YAML loader: YAML 1.2 values, positions, and every attack refused with a Diagnostic.

Every test runs twice, with libyaml and with the pure-Python parser, because the loader picks
libyaml when present and falls back to pure Python (also on purpose, for very deep nesting).
"""

from __future__ import annotations

import math
import os
import random
import sys
import time

import pytest

from kpiforge import _yaml_compose, _yamlio
from kpiforge._yamlio import MAX_DEPTH, MAX_FILE_BYTES, Document, field_name, load_document, load_text
from kpiforge.errors import DefinitionError

LOADERS = [pytest.param(_yaml_compose._CoreSchemaLoader, id="pure")]
if hasattr(_yaml_compose, "_FastCoreSchemaLoader"):
    LOADERS.append(pytest.param(_yaml_compose._FastCoreSchemaLoader, id="libyaml"))


@pytest.fixture(autouse=True, params=LOADERS)
def loader(request, monkeypatch):
    monkeypatch.setattr(_yaml_compose, "_LOADER", request.param)
    monkeypatch.setenv("KPIFORGE_NO_CACHE", "1")  # each loader parses: nothing from the parse cache
    return request.param


def errors_of(text: str, path: str = "bad.yaml") -> list[str]:
    with pytest.raises(DefinitionError) as caught:
        load_text(text, path)
    return [str(d) for d in caught.value.diagnostics]


def codes_of(text: str) -> list[tuple[str, int, int]]:
    with pytest.raises(DefinitionError) as caught:
        load_text(text, "bad.yaml")
    return [(d.code, d.line, d.column) for d in caught.value.diagnostics]


def billion_laughs() -> str:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for previous, name in zip("abcdefgh", "bcdefghi"):
        lines.append(f"{name}: &{name} [" + ",".join([f"*{previous}"] * 9) + "]")
    return "\n".join(lines) + "\n"


# --- values: the YAML 1.2 core schema, not PyYAML's YAML 1.1 ----------------------------------

VALUES = [
    ("1e3", 1000.0),
    ("1.5e-3", 0.0015),
    ("-2E+5", -200000.0),
    ("6.02e23", 6.02e23),
    (".5", 0.5),
    ("+1.", 1.0),
    ("42", 42),
    ("-7", -7),
    ("012", 12),  # decimal in YAML 1.2, octal in 1.1
    ("0o17", 15),
    ("0x1F", 31),
    ("true", True),
    ("False", False),
    ("yes", "yes"),
    ("no", "no"),
    ("on", "on"),
    ("off", "off"),
    ("y", "y"),
    ("~", None),
    ("null", None),
    ("", None),
    ("2024-01-31", "2024-01-31"),  # not a date object
    ("1_000", "1_000"),
    ("0b101", "0b101"),
    ("1:30", "1:30"),  # not sexagesimal
    ("'1e3'", "1e3"),
    ('"true"', "true"),
    ("!!str 12", "12"),
    ("!!float 3", 3.0),
    ("!!int '7'", 7),
    ("<<", "<<"),  # merge keys are YAML 1.1 (and need aliases anyway)
]


@pytest.mark.parametrize(("source", "expected"), VALUES, ids=[v[0] or "empty" for v in VALUES])
def test_scalars_follow_yaml_1_2_core_schema(source, expected):
    value = load_text(f"v: {source}\n", "ok.yaml").data["v"]
    assert value == expected
    assert type(value) is type(expected)


def test_plain_data_and_positions():
    doc = load_text("id: conv\nthresholds:\n  good: 1e3\nkpis:\n  - a\n  - {b: [1, 2]}\n", "ok.yaml")
    assert doc.data == {"id": "conv", "thresholds": {"good": 1000.0}, "kpis": ["a", {"b": [1, 2]}]}
    assert doc.position(()) == (1, 1)
    assert doc.position(("id",)) == (1, 5)
    assert doc.key_position(("id",)) == (1, 1)
    assert doc.position(("thresholds", "good")) == (3, 9)
    assert doc.key_position(("thresholds", "good")) == (3, 3)
    assert doc.position(("kpis", 1, "b", 1)) == (6, 13)
    assert doc.key_position(("kpis", 1, "b")) == (6, 6)


def test_position_falls_back_to_nearest_ancestor():
    doc = load_text("a:\n  b: 1\n", "ok.yaml")
    assert doc.position(("a", "missing", 3)) == doc.position(("a",)) == (2, 3)
    assert doc.key_position(("a", "missing")) == (2, 3)
    assert doc.position(("nope",)) == (1, 1)
    assert Document("x.yaml", None).position(("a",)) == (1, 1)


def test_diagnostic_helper_names_the_field():
    doc = load_text("kpis:\n  - formula: x\n", "k.yaml")
    assert str(doc.diagnostic(("kpis", 0, "formula"), "formula", "bad")) == (
        "k.yaml:2:14: error[formula]: kpis[0].formula: bad"
    )
    assert doc.diagnostic(("kpis", 0, "formula"), "x", "y", at_key=True).column == 5


def test_field_name():
    assert field_name(()) == ""
    assert field_name(("kpis", 2, "formula")) == "kpis[2].formula"
    assert field_name(("inputs", "clicks", "unit")) == "inputs.clicks.unit"
    assert field_name(("labels", "a.b", 0)) == 'labels["a.b"][0]'


def test_bom_and_crlf_are_fine():
    doc = load_text("\ufeffa: 1\r\nb: 2\r\n", "ok.yaml")
    assert doc.data == {"a": 1, "b": 2}
    assert doc.position(("b",)) == (2, 4)


# --- hardening: each attack or trap is refused with its own code ------------------------------

HARDENING = [
    # (id, text, [(code, line, column), ...])
    ("python-tag", "run: !!python/object/apply:os.system ['echo hacked']\n", [("yaml-tag", 1, 6)]),
    ("python-name-tag", "f: !!python/name:os.system\n", [("yaml-tag", 1, 4)]),
    ("custom-tag", "a: !Ref x\n", [("yaml-tag", 1, 4)]),
    ("set-tag", "a: !!set {x, y}\n", [("yaml-tag", 1, 4)]),
    ("binary-tag", "a: !!binary aGk=\n", [("yaml-tag", 1, 4)]),
    ("timestamp-tag", "a: !!timestamp 2024-01-01\n", [("yaml-tag", 1, 4)]),
    ("bad-explicit-int", "a: !!int x\n", [("yaml-tag", 1, 4)]),
    ("anchor-alias", "a: &x 1\nb: *x\n", [("yaml-alias", 1, 4), ("yaml-alias", 2, 4)]),
    ("merge-key", "base: &b {x: 1}\nkpi:\n  <<: *b\n", [("yaml-alias", 1, 7), ("yaml-alias", 3, 7)]),
    ("duplicate-key", "id: a\nname: b\nid: c\n", [("duplicate-key", 3, 1)]),
    ("two-duplicates", "a: 1\nb: 2\na: 3\nb: 4\n", [("duplicate-key", 3, 1), ("duplicate-key", 4, 1)]),
    ("quoted-duplicate", "a: 1\n'a': 2\n", [("duplicate-key", 2, 1)]),
    ("nested-duplicate", "t:\n  good: 1\n  good: 2\n", [("duplicate-key", 3, 3)]),
    ("int-key", "1: x\n", [("key-type", 1, 1)]),
    ("bool-key", "true: x\n", [("key-type", 1, 1)]),
    ("null-key", "~: x\n", [("key-type", 1, 1)]),
    ("list-key", "? [a, b]\n: x\n", [("key-type", 1, 3)]),
    ("nan", "v: .nan\n", [("non-finite", 1, 4)]),
    ("inf", "v: [.inf, -.Inf, +.INF]\n", [("non-finite", 1, 5), ("non-finite", 1, 11), ("non-finite", 1, 18)]),
    ("overflow", "v: 1e999\n", [("non-finite", 1, 4)]),
    ("huge-int", "v: " + "9" * 5000 + "\n", [("number-too-large", 1, 4)]),
    ("int-beyond-float", "v: " + "9" * 400 + "\n", [("number-too-large", 1, 4)]),
    ("negative-int-beyond-float", "v: [1, -" + "9" * 400 + "]\n", [("number-too-large", 1, 8)]),
    ("hex-beyond-float", "v: 0x" + "f" * 300 + "\n", [("number-too-large", 1, 4)]),
    ("syntax", "a: b: c\n", [("yaml-syntax", 1, 5)]),
    ("unclosed", "a: [1, 2\n", [("yaml-syntax", None, None)]),
    ("bad-indent", "a:\n  - b\n c: d\n", [("yaml-syntax", 3, 2)]),
    ("tab", "a:\n\tb: 1\n", [("yaml-syntax", 2, 1)]),
    ("control-char", "a: b\x07c\n", [("encoding", 1, 5)]),
    ("nul", "a: 1\nb: \x00\n", [("encoding", 2, 4)]),
    ("surrogate", "a: \ud800\n", [("encoding", 1, 4)]),
    ("empty", "", [("empty", 0, 0)]),
    ("blank", "  \n\n", [("empty", 0, 0)]),
    ("comments-only", "# nothing\n", [("empty", 0, 0)]),
    ("bare-marker", "---\n", [("empty", 0, 0)]),
    ("null-document", "~\n", [("empty", 0, 0)]),
    ("two-documents", "a: 1\n---\nb: 2\n", [("multiple-documents", 2, 1)]),
    ("too-deep-flow", "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1), [("too-deep", 1, MAX_DEPTH + 1)]),
    ("deep-then-second-document", "[" * MAX_DEPTH + "]" * MAX_DEPTH + "\n---\n", [("multiple-documents", 2, 1)]),
]


@pytest.mark.parametrize(("text", "expected"), [h[1:] for h in HARDENING], ids=[h[0] for h in HARDENING])
def test_hardening(text, expected):
    found = codes_of(text)
    assert [c for c, _, _ in found] == [c for c, _, _ in expected], found
    for (_, line, column), (_, want_line, want_column) in zip(found, expected):
        if want_line is not None:
            assert (line, column) == (want_line, want_column), found


def test_max_depth_itself_is_allowed():
    doc = load_text("[" * MAX_DEPTH + "]" * MAX_DEPTH, "ok.yaml")
    node, depth = doc.data, 0
    while isinstance(node, list):
        node, depth = (node[0] if node else None), depth + 1
    assert depth == MAX_DEPTH


def test_billion_laughs_fails_fast_without_expanding():
    started = time.perf_counter()
    found = errors_of(billion_laughs())
    # a generous bound (expanding would take minutes and gigabytes), so a busy machine passes
    assert time.perf_counter() - started < 5
    assert found[:3] == [
        "bad.yaml:1:4: error[yaml-alias]: a: anchors (&a) are not allowed",
        "bad.yaml:2:4: error[yaml-alias]: b: anchors (&b) are not allowed",
        "bad.yaml:2:8: error[yaml-alias]: b[0]: aliases (*a) are not allowed",
    ]
    assert len(found) == 17  # each anchor, and each alias name once: not 9 lines per use


def _deep_documents():
    n = 100_000
    yield "flow-seq", "[" * n + "]" * n
    yield "flow-map", "{a: " * n + "}" * n
    yield "block-seq", "- " * n + "x\n"
    # As deep as an indented mapping can get under the size cap.
    yield "block-map", "".join(" " * i + "a:\n" for i in range(1400))
    yield "unclosed", "[" * n


@pytest.mark.parametrize(("text"), [t for _, t in _deep_documents()], ids=[i for i, _ in _deep_documents()])
def test_very_deep_nesting_is_a_diagnostic_not_a_crash(text):
    started = time.perf_counter()
    with pytest.raises(DefinitionError) as caught:
        load_text(text, "deep.yaml")
    assert time.perf_counter() - started < 5  # generous: a busy machine must still pass
    assert [d.code for d in caught.value.diagnostics] == ["too-deep"]
    assert str(caught.value.diagnostics[0]).endswith(f"error[too-deep]: nesting is deeper than {MAX_DEPTH} levels")


def test_diagnostics_are_capped():
    text = "".join(f"k{i}: .nan\n" for i in range(500))
    with pytest.raises(DefinitionError) as caught:
        load_text(text, "bad.yaml")
    codes = [d.code for d in caught.value.diagnostics]
    assert codes.count("non-finite") == _yamlio.MAX_DIAGNOSTICS
    assert codes[-1] == "too-many-errors"


def test_a_number_beyond_float_range_keeps_the_rest_of_the_file_checkable():
    doc = load_text("a: 1\nb: -" + "9" * 400 + "\nc: 1e308\n", "n.yaml", keep_going=True)
    assert doc.data == {"a": 1, "b": -math.inf, "c": 1e308}
    (problem,) = doc.problems
    assert str(problem) == ("n.yaml:2:4: error[number-too-large]: b: number with 400 digits is too large "
                            "(numbers must be within about ±1.8e308)")
    assert load_text("v: " + str(int(sys.float_info.max)) + "\n", "max.yaml").data["v"] == int(sys.float_info.max)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this system")
def test_a_fifo_is_refused_before_anything_is_read(tmp_path):
    os.mkfifo(tmp_path / "pipe.yaml")
    started = time.perf_counter()
    with pytest.raises(DefinitionError) as caught:
        load_document(tmp_path / "pipe.yaml", display_path="pipe.yaml")
    assert time.perf_counter() - started < 5  # opening it for reading used to block forever
    assert str(caught.value) == "pipe.yaml:0:0: error[not-a-file]: cannot read: a FIFO (named pipe), not a regular file"


def test_text_size_cap():
    assert codes_of("a: " + "x" * MAX_FILE_BYTES) == [("file-too-large", 0, 0)]
    # The cap is on UTF-8 bytes, not characters.
    assert codes_of("a: " + "é" * (MAX_FILE_BYTES // 2)) == [("file-too-large", 0, 0)]


def test_random_garbage_never_escapes_as_a_raw_exception():
    rng = random.Random(20240131)
    alphabet = list("ab:-[]{},&*!|>'\"#%@`? \n\t.0e") + ["\n  ", ": ", "- ", "!!", "---", "...", "\ud800", "\x00"]
    for _ in range(500):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40)))
        try:
            load_text(text, "fuzz.yaml")
        except DefinitionError as exc:
            assert exc.diagnostics, text


# --- files ------------------------------------------------------------------------------------


def test_load_document_reads_a_file_and_shows_the_display_path(tmp_path):
    file = tmp_path / "kpi.yaml"
    file.write_text("id: conv\n", encoding="utf-8")
    assert load_document(file).data == {"id": "conv"}
    assert load_document(file).path == str(file)
    file.write_text("id: conv\nid: again\n", encoding="utf-8")
    with pytest.raises(DefinitionError) as caught:
        load_document(file, display_path="kpis/kpi.yaml")
    assert str(caught.value) == "kpis/kpi.yaml:2:1: error[duplicate-key]: id: duplicate key 'id' (first defined at line 1)"


def test_file_size_cap(tmp_path):
    file = tmp_path / "big.yaml"
    file.write_bytes(b"a: " + b"x" * MAX_FILE_BYTES + b"\n")
    with pytest.raises(DefinitionError) as caught:
        load_document(file, display_path="big.yaml")
    assert str(caught.value) == (
        "big.yaml:0:0: error[file-too-large]: file is 1,000,004 bytes; definition files are limited to 1,000,000 bytes"
    )


def test_invalid_utf8_points_at_the_byte(tmp_path):
    file = tmp_path / "latin1.yaml"
    file.write_bytes("id: conv\nname: Caf".encode() + b"\xe9 cr\xc3\xa8me\n")
    with pytest.raises(DefinitionError) as caught:
        load_document(file, display_path="latin1.yaml")
    assert str(caught.value) == "latin1.yaml:2:10: error[encoding]: file is not valid UTF-8 (byte 0xe9)"


def test_unreadable_file_is_a_diagnostic(tmp_path):
    with pytest.raises(DefinitionError) as caught:
        load_document(tmp_path / "missing.yaml", display_path="missing.yaml")
    assert str(caught.value) == "missing.yaml:0:0: error[io]: cannot read file: No such file or directory"
    with pytest.raises(DefinitionError) as caught:
        load_document(tmp_path, display_path="dir")
    assert str(caught.value) == "dir:0:0: error[not-a-file]: cannot read: a directory, not a regular file"


# --- golden output: the exact lines users read ------------------------------------------------

GOLDEN = [
    (
        "id: conv\nname: Conversion\nid: conv2\nthresholds:\n  good: .nan\n  good: 1\n",
        [
            "bad.yaml:3:1: error[duplicate-key]: id: duplicate key 'id' (first defined at line 1)",
            "bad.yaml:5:9: error[non-finite]: thresholds.good: '.nan' is not a finite number",
            "bad.yaml:6:3: error[duplicate-key]: thresholds.good: duplicate key 'good' (first defined at line 5)",
        ],
    ),
    (
        "kpis:\n  - id: a\n    formula: !!python/object/apply:os.system [ls]\n  - &k {id: b}\n  - *k\n",
        [
            "bad.yaml:3:14: error[yaml-tag]: kpis[0].formula: tag '!!python/object/apply:os.system' is not allowed",
            "bad.yaml:4:5: error[yaml-alias]: kpis[1]: anchors (&k) are not allowed",
            "bad.yaml:5:5: error[yaml-alias]: kpis[2]: aliases (*k) are not allowed",
        ],
    ),
    (
        "inputs:\n  1: {unit: count}\n  null: {}\n  clicks: {unit: -.inf}\n",
        [
            'bad.yaml:2:3: error[key-type]: inputs: key 1 must be a string (quote it: "1")',
            "bad.yaml:3:3: error[key-type]: inputs: a key must be a string, not empty (null)",
            "bad.yaml:4:18: error[non-finite]: inputs.clicks.unit: '-.inf' is not a finite number",
        ],
    ),
    ("a: 1\n---\nb: 2\n", ["bad.yaml:2:1: error[multiple-documents]: a definition file must hold exactly one YAML document"]),
    ("# only a comment\n", ["bad.yaml:0:0: error[empty]: file has no content"]),
]


@pytest.mark.parametrize(("text", "expected"), GOLDEN, ids=[f"golden-{i}" for i in range(len(GOLDEN))])
def test_golden_output(text, expected):
    assert errors_of(text) == expected


def test_golden_syntax_error(loader):
    # libyaml and PyYAML word their parser errors differently; the place and the prefix agree.
    (line,) = errors_of("id: conv\nname: a: b\n")
    assert line.startswith("bad.yaml:2:8: error[yaml-syntax]: mapping values are not allowed")
    (line,) = errors_of("a:\n  - b\n c: d\n")
    assert line.startswith("bad.yaml:3:2: error[yaml-syntax]: ")
    assert line.endswith("(while parsing a block mapping started at line 1)")


def test_errors_before_a_syntax_error_are_kept():
    assert [c for c, _, _ in codes_of("a: 1\na: 2\nb: [\n")] == ["duplicate-key", "yaml-syntax"]


def test_non_finite_values_never_load():
    for text in ("v: .nan", "v: [1, .inf]", "v: {w: -.inf}", "v: 1e400"):
        with pytest.raises(DefinitionError):
            load_text(text, "x.yaml")
    assert math.isfinite(load_text("v: 1.7976931348623157e308", "x.yaml").data["v"])


def test_keep_going_returns_non_finite_numbers_as_problems_not_data_loss():
    doc = load_text("a: .nan\nb: [1, .inf]\n", "k.yaml", keep_going=True)
    assert [(d.code, d.field) for d in doc.problems] == [("non-finite", "a"), ("non-finite", "b[1]")]
    with pytest.raises(DefinitionError):
        load_text("a: .nan\n", "k.yaml")  # without keep_going it stays an error
    with pytest.raises(DefinitionError):
        load_text("a: [unclosed\n", "k.yaml", keep_going=True)  # structure lost: still raised
