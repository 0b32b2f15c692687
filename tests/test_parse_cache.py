"""The parse cache gives back exactly what the parser built, and only for clean documents.

A document loaded from the cache (``kpiforge._parse_cache``) must be indistinguishable from one
the parser built: the same data with the same types (``1``, ``1.0`` and ``true`` stay apart, key
paths stay tuples), the same positions. A document with any diagnostic is never stored, and a
damaged entry is a miss.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from kpiforge import _parse_cache, _yaml_compose, _yamlio
from kpiforge.errors import DefinitionError

ROOT = Path(__file__).resolve().parent.parent
CATALOG = sorted((ROOT / "definitions").rglob("*.yaml"))

CLEAN = {
    "scalars": "a: 1\nb: 1.0\nc: true\nd: null\ne: '1'\nf: 1e3\ng: -0.5\nh: 0x1F\ni: ~\n",
    "nested": "kpis:\n  - id: x\n    inputs: {a: {unit: count}, b: [1, 2, [3, {c: d}]]}\n"
              "  - id: y\n    tags: []\n    meta: {}\n",
    "unicode": "é: ü\n\"a.b\": \"c\\td\"\nclé:\n  - 'naïve'\n  - \"日本\"\n",
    "block": "text: |\n  line one\n  line two\nfolded: >-\n  a\n  b\n",
    "bom": "\ufeffa: 1\n",
    # finite but past any int64; zero's sign; YAML 1.1 words and dates stay strings
    "numbers": "big: " + "9" * 300 + "\nneg: -" + "9" * 300 + "\nz: -0.0\no: 0o17\np: +1\n"
               "q: .5\nr: 1.\ns: 1_000\nt: yes\nu: 2024-01-31\nv: 012\nw: .Inf_x\n",
    "odd-keys": "\"1\": a\n\"true\": b\n\"\": c\n\"null\": d\n\"k y\": {\"x.y\": [e]}\n",
    "root-list": "- 1\n- [a, {b: [[[[c]]]]}]\n- {}\n- []\n",
    "root-scalar": "42\n",
    "comments": "# a comment\n%YAML 1.2\n---\na: 1  # trailing\n...\n",
}
NOT_STORED = {  # each has a diagnostic: messages must come from the parser, every time
    "alias": "a: &x 1\nb: *x\n",
    "non-finite": "a: .inf\n",
    "huge": "a: " + "9" * 400 + "\n",
    "empty": "",
    "syntax": "a: [1, 2\n",
    "duplicate": "a: 1\na: 2\n",
    "multi-document": "a: 1\n---\nb: 2\n",
    "null-root": "~\n",
    "control": "a: \x01\n",
    "tag": "a: !!python/object x\n",
    "nan": "a: .nan\n",
    "int-key": "1: a\n",
    "deep": "a: " + "[" * 80 + "]" * 80 + "\n",
}


@contextlib.contextmanager
def cache_folder(folder: Path | str | None = None) -> Iterator[Path]:
    """kpiforge's caches in ``folder`` (a fresh one by default) for the block."""
    saved = {k: os.environ.get(k) for k in ("KPIFORGE_CACHE_DIR", "KPIFORGE_NO_CACHE")}
    with tempfile.TemporaryDirectory() as fresh:
        where = Path(folder) if folder is not None else Path(fresh)
        os.environ["KPIFORGE_CACHE_DIR"] = str(where)
        os.environ.pop("KPIFORGE_NO_CACHE", None)
        try:
            yield where
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


def tagged(value: Any) -> Any:
    """``value`` with the type of every part spelled out (so True and 1 differ)."""
    if isinstance(value, dict):
        return ("dict", [(tagged(k), tagged(v)) for k, v in value.items()])
    if isinstance(value, (list, tuple)):
        return (type(value).__name__, [tagged(v) for v in value])
    return (type(value).__name__, repr(value))


def snapshot(document: _yamlio.Document) -> Any:
    return (document.path, tagged(document.data), tagged(dict(document.positions)),
            tagged(dict(document.key_positions)), document.problems, document.sha256)


def entries(folder: Path) -> list[Path]:
    parsed = folder / _parse_cache.FOLDER
    return sorted(parsed.iterdir()) if parsed.is_dir() else []


@contextlib.contextmanager
def parser_forbidden() -> Iterator[None]:
    """Fail the block if anything is parsed (a hit must not parse)."""
    original = _yaml_compose._Builder.build

    def refuse(self: Any, *args: Any, **kwargs: Any) -> None:
        raise AssertionError("parsed although the cache had the document")

    _yaml_compose._Builder.build = refuse  # type: ignore[method-assign]
    try:
        yield
    finally:
        _yaml_compose._Builder.build = original  # type: ignore[method-assign]


def load_twice(text: str, path: str = "kpis.yaml") -> tuple[Any, Any, Path]:
    with cache_folder() as folder:
        miss = snapshot(_yamlio.load_text(text, path))
        with parser_forbidden():
            hit = snapshot(_yamlio.load_text(text, path))
        return miss, hit, folder


@pytest.mark.parametrize("file", CATALOG, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_catalog_file_from_the_cache_is_what_the_parser_built(file):
    with cache_folder() as folder:
        miss = snapshot(_yamlio.load_document(file, display_path="shown.yaml"))
        assert len(entries(folder)) == 1
        with parser_forbidden():
            hit = snapshot(_yamlio.load_document(file, display_path="shown.yaml"))
    assert hit == miss


@pytest.mark.parametrize("name", sorted(CLEAN))
def test_clean_documents_come_back_with_the_same_types_and_positions(name):
    miss, hit, _ = load_twice(CLEAN[name])
    assert hit == miss


def test_the_shown_path_is_the_callers_not_the_cached_ones():
    with cache_folder():
        _yamlio.load_text("a: 1\n", "first.yaml")
        with parser_forbidden():
            second = _yamlio.load_text("a: 1\n", "second.yaml")
    assert second.path == "second.yaml"
    assert second.diagnostic(("a",), "code", "message").path == "second.yaml"


@pytest.mark.parametrize("name", sorted(NOT_STORED))
def test_a_document_with_a_diagnostic_is_never_stored(name):
    def outcome() -> Any:
        try:
            document = _yamlio.load_text(NOT_STORED[name], "bad.yaml", keep_going=True)
        except DefinitionError as exc:
            return [str(d) for d in exc.diagnostics]
        return [str(d) for d in document.problems], tagged(document.data)

    with cache_folder() as folder:
        first = outcome()
        assert first and not entries(folder)
        assert outcome() == first and not entries(folder)


def damage_flip(entry: Path) -> None:
    raw = bytearray(entry.read_bytes())
    raw[-1] ^= 0xFF
    entry.write_bytes(bytes(raw))


@pytest.mark.parametrize("damage", [
    damage_flip,
    lambda entry: entry.write_bytes(entry.read_bytes()[:-5]),
    lambda entry: entry.write_bytes(entry.read_bytes()[:10]),
    lambda entry: entry.write_bytes(b"not a parse at all"),
    lambda entry: entry.write_bytes(b""),
], ids=["flipped", "cut-short", "header-only", "foreign", "empty"])
def test_a_damaged_entry_is_a_miss_and_is_written_again(damage):
    text = CLEAN["nested"]
    with cache_folder() as folder:
        expected = snapshot(_yamlio.load_text(text, "kpis.yaml"))
        (entry,) = entries(folder)
        good = entry.read_bytes()
        damage(entry)
        assert snapshot(_yamlio.load_text(text, "kpis.yaml")) == expected
        assert entry.read_bytes() == good


def test_a_folder_that_cannot_be_written_is_no_cache(tmp_path):
    (tmp_path / _parse_cache.FOLDER).write_text("a file where the folder would be")
    with cache_folder(tmp_path):
        first = snapshot(_yamlio.load_text(CLEAN["scalars"], "kpis.yaml"))
        assert snapshot(_yamlio.load_text(CLEAN["scalars"], "kpis.yaml")) == first


def test_no_cache_turns_it_off(tmp_path):
    with cache_folder(tmp_path):
        os.environ["KPIFORGE_NO_CACHE"] = "1"
        _yamlio.load_text(CLEAN["scalars"], "kpis.yaml")
    assert not (tmp_path / _parse_cache.FOLDER).exists()


def test_the_key_follows_the_text_and_the_parser():
    digest = b"\0" * 32
    with cache_folder():
        keys = {_parse_cache.key(digest, "_FastCoreSchemaLoader"),
                _parse_cache.key(digest, "_CoreSchemaLoader"),
                _parse_cache.key(b"\1" * 32, "_FastCoreSchemaLoader")}
    assert len(keys) == 3 and None not in keys


def test_the_predicted_parser_is_the_one_used():
    """A hit is looked up under the parser PyYAML would give, told without importing it."""
    _, libyaml = _parse_cache.yaml_fingerprint()
    assert _yamlio._loader_name(libyaml) == _yaml_compose._LOADER.__name__


scalars = (st.none() | st.booleans() | st.integers(-10**12, 10**12)
           | st.floats(allow_nan=False, allow_infinity=False, width=64)
           | st.text(st.characters(codec="utf-8", categories=("L", "N", "P", "Zs")), max_size=12))
keys = st.from_regex(r"[a-zé][a-zA-Z0-9_éü]{0,7}", fullmatch=True)  # keys are names
trees = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                     | st.dictionaries(keys, inner, max_size=4), max_leaves=20)


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(keys, trees, min_size=1, max_size=5), st.booleans())
def test_any_document_from_the_cache_is_what_the_parser_built(data, flow):
    text = yaml.safe_dump(data, allow_unicode=True, default_flow_style=flow, sort_keys=False)
    miss, hit, folder = load_twice(text)
    assert hit == miss


@pytest.mark.parametrize("name", sorted(CLEAN))
def test_keep_going_changes_nothing_for_a_clean_document(name):
    """Only clean documents are stored, and for them keep_going changes nothing: one entry."""
    with cache_folder() as folder:
        miss = snapshot(_yamlio.load_text(CLEAN[name], "kpis.yaml"))
        with parser_forbidden():
            hit = snapshot(_yamlio.load_text(CLEAN[name], "kpis.yaml", keep_going=True))
        assert hit == miss and len(entries(folder)) == 1


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0,
                    reason="root writes into a read-only folder")
def test_a_read_only_folder_is_no_cache(tmp_path):
    parsed = tmp_path / _parse_cache.FOLDER
    parsed.mkdir()
    parsed.chmod(0o500)
    try:
        with cache_folder(tmp_path):
            first = snapshot(_yamlio.load_text(CLEAN["nested"], "kpis.yaml"))
            assert snapshot(_yamlio.load_text(CLEAN["nested"], "kpis.yaml")) == first
        assert not list(parsed.iterdir())
    finally:
        parsed.chmod(0o700)


def test_an_entry_under_another_key_is_a_miss():
    """An entry renamed (or copied) to another document's key is foreign: its header says so."""
    with cache_folder() as folder:
        _yamlio.load_text("a: 1\n", "kpis.yaml")
        (first,) = entries(folder)
        expected = snapshot(_yamlio.load_text("a: 2\n", "kpis.yaml"))
        second = next(p for p in entries(folder) if p != first)
        second.write_bytes(first.read_bytes())
        assert snapshot(_yamlio.load_text("a: 2\n", "kpis.yaml")) == expected


WARM_VALIDATE = """
import sys
from kpiforge.cli import main
try:
    main(["validate"])
except SystemExit as exc:
    assert not exc.code, exc.code
print("yaml" in sys.modules, "kpiforge._yaml_compose" in sys.modules)
"""


def test_a_warm_validate_imports_no_yaml(tmp_path):
    """With every catalog file in the cache, ``kpiforge validate`` parses nothing."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env.update(KPIFORGE_CACHE_DIR=str(tmp_path / "cache"))
    env.pop("KPIFORGE_NO_CACHE", None)

    def run() -> list[str]:
        proc = subprocess.run([sys.executable, "-c", WARM_VALIDATE], capture_output=True,
                              text=True, timeout=120, env=env, cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr[-2000:]
        return proc.stdout.splitlines()

    cold = run()
    assert cold[-1] == "True True"  # the first run parses (and the check can see it)
    stored = entries(tmp_path / "cache")
    assert len(stored) >= len([p for p in CATALOG if not p.name.endswith(".test.yaml")])
    warm = run()
    assert warm[-1] == "False False"
    assert warm[:-1] == cold[:-1]  # the same verdict, word for word
    assert entries(tmp_path / "cache") == stored
