"""Hardened YAML loading: plain data plus the file position of every node.

Definition files come from users and from third parties, so loading must never execute code,
never expand aliases (billion laughs), never recurse without bound, and never let a raw
``yaml``/``Unicode``/``Recursion`` error escape: every problem becomes a :class:`Diagnostic`
inside one :class:`DefinitionError`, and all of a file's problems are reported together.

The YAML 1.2 core-schema data model and the event-based parsing (no recursion, aliases refused
before anything is expanded) are in ``_yaml_compose``. A document that loads without any
diagnostic is remembered in the parse cache (``_parse_cache``) under the digest of its text, so
loading it again parses nothing and imports no PyYAML; every message about a file still comes
from the parser.
"""

from __future__ import annotations

import functools
import os
import re
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Mapping, Sequence

from . import _parse_cache
from ._digest import sha256
from ._files import FileRefused, FileTooLarge, read_user_file
from ._keypath import MAX_DEPTH, MAX_DIAGNOSTICS, KeyPath, Position, field_name
from .errors import DefinitionError, Diagnostic

__all__ = [
    "MAX_DEPTH",
    "MAX_DIAGNOSTICS",
    "MAX_FILE_BYTES",
    "Document",
    "KeyPath",
    "field_name",
    "load_document",
    "load_text",
]

MAX_FILE_BYTES = 1_000_000


@functools.cache
def _non_printable() -> re.Pattern[str]:
    """Everything the YAML spec forbids in a stream; checked up front so the position is exact
    and the same with libyaml and with the pure-Python reader (compiled on the first parse: a
    document from the parse cache passed it already)."""
    return re.compile(
        "[^\x09\x0a\x0d\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


@dataclass(frozen=True)
class Document:
    """A loaded YAML file: plain data plus 1-based (line, column) positions by key path.

    ``positions`` maps a key path (``("kpis", 2, "formula")``) to the start of its value node;
    ``key_positions`` maps it to the start of the mapping key naming it.
    """

    path: str
    data: Any
    positions: Mapping[KeyPath, Position] = field(default_factory=dict)
    key_positions: Mapping[KeyPath, Position] = field(default_factory=dict)
    problems: tuple[Diagnostic, ...] = ()  # errors kept with keep_going=True (see load_document)
    # hex sha256 of the text loaded (what a verdict of ._verdicts is about); "" when unknown
    sha256: str = field(default="", compare=False, repr=False)

    def position(self, path: Sequence[str | int]) -> Position:
        """Position of the value at ``path``, else of its nearest known ancestor, else (1, 1)."""
        key = tuple(path)
        while True:
            found = self.positions.get(key)
            if found is not None:
                return found
            if not key:
                return (1, 1)
            key = key[:-1]

    def key_position(self, path: Sequence[str | int]) -> Position:
        """Position of the mapping key naming ``path`` (where "unknown field" should point)."""
        found = self.key_positions.get(tuple(path))
        return found if found is not None else self.position(path)

    def diagnostic(
        self, path: Sequence[str | int], code: str, message: str, *, at_key: bool = False
    ) -> Diagnostic:
        """A Diagnostic about the value (or, with ``at_key``, the key) at ``path``."""
        line, column = self.key_position(path) if at_key else self.position(path)
        return Diagnostic(self.path, line, column, code, message, field=field_name(path))


def load_document(path: str | os.PathLike[str], *, display_path: str | None = None,
                  keep_going: bool = False) -> Document:
    """Load one YAML file; raise :class:`DefinitionError` listing every problem found.

    ``display_path`` is what messages show (e.g. a path relative to the project). With
    ``keep_going``, a file whose only errors leave its structure intact (non-finite numbers)
    is returned with those errors in ``Document.problems``, so the caller can go on checking
    it and report everything at once; the caller must then treat the document as invalid.
    """
    shown = display_path if display_path is not None else os.fsdecode(path)
    try:
        raw = read_user_file(path, limit=MAX_FILE_BYTES)
    except FileTooLarge as exc:
        raise DefinitionError([_too_large(shown, exc.size)]) from None
    except FileRefused as exc:
        raise DefinitionError([Diagnostic(shown, 0, 0, exc.code, exc.reason)]) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        line_start = raw.rfind(b"\n", 0, exc.start) + 1
        column = len(raw[line_start : exc.start].decode("utf-8", "replace")) + 1
        message = f"file is not valid UTF-8 (byte 0x{raw[exc.start]:02x})"
        raise DefinitionError([Diagnostic(shown, line, column, "encoding", message)]) from None
    return _load(text, shown, keep_going)


def load_text(text: str, path: str, *, keep_going: bool = False) -> Document:
    """Load YAML from a string, with exactly the checks :func:`load_document` applies."""
    path = str(path)
    try:
        size = len(text.encode("utf-8"))
    except UnicodeEncodeError as exc:  # lone surrogates: the text was never valid Unicode
        line, column = _text_position(text, exc.start)
        message = f"invalid character U+{ord(text[exc.start]):04X} (unpaired surrogate)"
        raise DefinitionError([Diagnostic(path, line, column, "encoding", message)]) from None
    if size > MAX_FILE_BYTES:
        raise DefinitionError([_too_large(path, size)])
    return _load(text, path, keep_going)


def _too_large(path: str, size: int) -> Diagnostic:
    message = f"file is {size:,} bytes; definition files are limited to {MAX_FILE_BYTES:,} bytes"
    return Diagnostic(path, 0, 0, "file-too-large", message)


def _text_position(text: str, index: int) -> Position:
    line_start = text.rfind("\n", 0, index) + 1
    return text.count("\n", 0, index) + 1, index - line_start + 1


# Numbers that are no float: the value is kept as an infinity so the rest of the file can be
# checked (the document stays invalid), and nothing downstream has to convert a huge int.
_RECOVERABLE = frozenset({"non-finite", "number-too-large"})


def _load(text: str, path: str, keep_going: bool = False) -> Document:
    if text.startswith("\ufeff"):
        text = text[1:]
    digest = sha256(text.encode("utf-8"))
    # the loader PyYAML would give, told without importing it (see _parse_cache)
    predicted = _parse_cache.key(digest.digest(), _loader_name(_parse_cache.yaml_fingerprint()[1]))
    cached = _parse_cache.read(predicted) if predicted is not None else None
    if cached is not None:
        data, positions, key_positions = cached
        return Document(path, data, MappingProxyType(positions), MappingProxyType(key_positions),
                        (), digest.hexdigest())
    bad = _non_printable().search(text)
    if bad:
        line, column = _text_position(text, bad.start())
        message = f"control character U+{ord(bad.group()):04X} is not allowed in YAML"
        raise DefinitionError([Diagnostic(path, line, column, "encoding", message)])
    from ._yaml_compose import _LOADER, _Builder, _CoreSchemaLoader

    builder = _Builder(path)
    builder.build(text, _LOADER)
    if builder.retry_without_libyaml:
        # libyaml stops at its own nesting limit while scanning ahead, before our depth check
        # sees the events; the pure-Python parser is lazy, so it stops at MAX_DEPTH exactly.
        builder = _Builder(path)
        builder.build(text, _CoreSchemaLoader)
    if not builder.diagnostics and builder.root is None:
        builder.diagnostics.append(Diagnostic(path, 0, 0, "empty", "file has no content"))
    errors = [d for d in builder.diagnostics if d.is_error]
    if errors and not (keep_going and all(d.code in _RECOVERABLE for d in errors)):
        raise DefinitionError(builder.diagnostics)
    if not builder.diagnostics:  # only a clean parse is remembered: messages come from the parser
        key = _parse_cache.key(digest.digest(), _LOADER.__name__)
        if key is not None:
            _parse_cache.write(key, builder.root, builder.positions, builder.key_positions)
    return Document(
        path,
        builder.root,
        MappingProxyType(builder.positions),
        MappingProxyType(builder.key_positions),
        tuple(builder.diagnostics),
        digest.hexdigest(),
    )


def _loader_name(libyaml: bool) -> str:
    # the names of _yaml_compose's loader classes: with libyaml, its fast one
    return "_FastCoreSchemaLoader" if libyaml else "_CoreSchemaLoader"
