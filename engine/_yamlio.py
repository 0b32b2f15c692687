"""Hardened YAML loading: plain data plus the file position of every node.

Definition files come from users and from third parties, so loading must never execute code,
never expand aliases (billion laughs), never recurse without bound, and never let a raw
``yaml``/``Unicode``/``Recursion`` error escape: every problem becomes a :class:`Diagnostic`
inside one :class:`DefinitionError`, and all of a file's problems are reported together.

The data model is the YAML 1.2 core schema (the JSON one), not PyYAML's YAML 1.1: ``1e3`` is a
float, ``yes``/``no``/``on``/``off`` and dates stay strings, and only ``true``/``false`` are
booleans. Non-finite numbers (``.nan``, ``.inf``, ``1e999``) are rejected because no KPI
threshold or input can meaningfully be one.

Parsing is event based: the data is built from parser events with an explicit stack, so depth
is checked before any nesting happens and aliases are refused before anything is expanded.
PyYAML's recursive composer is never used.
"""

from __future__ import annotations

import json
import math
import os
import re
import sys
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Mapping, Sequence

import yaml

from ._files import FileRefused, FileTooLarge, read_user_file
from .errors import MAX_DIAGNOSTICS_PER_FILE, DefinitionError, Diagnostic, shorten

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
MAX_DEPTH = 64
# A hostile file could otherwise produce one diagnostic per alias: hundreds of thousands.
MAX_DIAGNOSTICS = MAX_DIAGNOSTICS_PER_FILE

KeyPath = tuple[str | int, ...]
Position = tuple[int, int]

_YAML_TAG = "tag:yaml.org,2002:"
_STR, _INT, _FLOAT, _BOOL, _NULL = (_YAML_TAG + t for t in ("str", "int", "float", "bool", "null"))
_SEQ, _MAP = _YAML_TAG + "seq", _YAML_TAG + "map"

# YAML 1.2.2 core schema, section 10.3.2; \Z rather than $ so a trailing newline never matches.
_NULL_RE = re.compile(r"^(?:~|null|Null|NULL|)\Z")
_BOOL_RE = re.compile(r"^(?:true|True|TRUE|false|False|FALSE)\Z")
_INT_RE = re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)\Z")
_FLOAT_RE = re.compile(
    r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
    r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))\Z"
)

# Everything the YAML spec forbids in a stream; checked up front so the position is exact and
# the same with libyaml and with the pure-Python reader.
_NON_PRINTABLE = re.compile(
    "[^\x09\x0a\x0d\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]"
)
_PLAIN_FIELD = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*\Z")


class _CoreSchemaLoader(yaml.SafeLoader):
    """Pure-Python parser whose implicit resolvers implement the YAML 1.2 core schema."""

    yaml_implicit_resolvers: dict = {}


for _tag, _regexp, _first in (
    (_NULL, _NULL_RE, ["~", "n", "N", ""]),
    (_BOOL, _BOOL_RE, list("tTfF")),
    # int before float: the resolver takes the first match and "12" matches both.
    (_INT, _INT_RE, list("-+0123456789")),
    (_FLOAT, _FLOAT_RE, list("-+.0123456789")),
):
    _CoreSchemaLoader.add_implicit_resolver(_tag, _regexp, _first)

if hasattr(yaml, "CSafeLoader"):

    class _FastCoreSchemaLoader(yaml.CSafeLoader):  # type: ignore[name-defined,misc]
        """libyaml parser (same events and marks, much faster) with the same resolvers."""

        yaml_implicit_resolvers = _CoreSchemaLoader.yaml_implicit_resolvers

    _LOADER: type = _FastCoreSchemaLoader
else:  # pragma: no cover - depends on how PyYAML was built
    _LOADER = _CoreSchemaLoader


def field_name(path: Sequence[str | int]) -> str:
    """Render a key path the way users write it: ``kpis[2].formula``, ``inputs["a.b"]``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
            continue
        part = shorten(part)  # a key is source text too: a 100 kB one must not be echoed
        if _PLAIN_FIELD.match(part):
            out += f".{part}" if out else part
        else:
            out += f"[{json.dumps(part, ensure_ascii=False)}]"
    return out


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
_FLOAT_MAX = int(sys.float_info.max)


def _load(text: str, path: str, keep_going: bool = False) -> Document:
    if text.startswith("\ufeff"):
        text = text[1:]
    bad = _NON_PRINTABLE.search(text)
    if bad:
        line, column = _text_position(text, bad.start())
        message = f"control character U+{ord(bad.group()):04X} is not allowed in YAML"
        raise DefinitionError([Diagnostic(path, line, column, "encoding", message)])
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
    return Document(
        path,
        builder.root,
        MappingProxyType(builder.positions),
        MappingProxyType(builder.key_positions),
        tuple(builder.diagnostics),
    )


class _Stop(Exception):
    """Parsing cannot (or should not) go on; what was collected so far is reported."""


_NO_KEY = object()  # a mapping waiting for its next key
_BAD_KEY = object()  # the key was reported; its value is built (to find errors) but dropped


@dataclass
class _Frame:
    container: dict[str, Any] | list[Any]
    path: KeyPath | None  # None: this collection is a mapping key, not part of the data
    position: Position
    key: Any = _NO_KEY
    first_lines: dict[str, int] = field(default_factory=dict)


class _Builder:
    """Turns parser events into plain data, positions and diagnostics, without recursion."""

    def __init__(self, path: str):
        self.path = path
        self.diagnostics: list[Diagnostic] = []
        self.positions: dict[KeyPath, Position] = {}
        self.key_positions: dict[KeyPath, Position] = {}
        self.stack: list[_Frame] = []
        self.root: Any = None
        self.retry_without_libyaml = False
        self.loader: Any = None
        self.aliases_seen: set[str] = set()

    def build(self, text: str, loader_class: type) -> None:
        loader = loader_class(text)
        self.loader = loader
        try:
            self._consume(loader)
        except _Stop:
            pass
        except yaml.MarkedYAMLError as exc:
            if loader_class is not _CoreSchemaLoader and "nesting depth" in (exc.problem or ""):
                self.retry_without_libyaml = True
            else:
                self._syntax_error(exc)
        except yaml.YAMLError as exc:  # unmarked (reader) errors: the pre-checks should prevent them
            self.diagnostics.append(Diagnostic(self.path, 0, 0, "yaml-syntax", str(exc)))
        finally:
            loader.dispose()

    def _syntax_error(self, exc: yaml.MarkedYAMLError) -> None:
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (0, 0)
        message = exc.problem or exc.context or "invalid YAML"
        context_mark = exc.context_mark
        if exc.problem and exc.context and context_mark and (
            context_mark.line,
            context_mark.column,
        ) != (line - 1, column - 1):
            message += f" ({exc.context} started at line {context_mark.line + 1})"
        self.diagnostics.append(Diagnostic(self.path, line, column, "yaml-syntax", message))

    def report(self, position: Position, code: str, message: str, path: KeyPath | None = None) -> None:
        line, column = position
        where = field_name(path) if path else ""
        self.diagnostics.append(Diagnostic(self.path, line, column, code, message, field=where))
        if len(self.diagnostics) >= MAX_DIAGNOSTICS:
            message = f"stopped after {MAX_DIAGNOSTICS} errors; the rest of the file was not checked"
            self.diagnostics.append(Diagnostic(self.path, 0, 0, "too-many-errors", message, "note"))
            raise _Stop

    def _consume(self, loader: Any) -> None:
        documents = 0
        # Most frequent events first, by exact type: this loop runs once per node, and a 1 MB
        # file can hold hundreds of thousands of them.
        scalar, mapping, sequence = yaml.ScalarEvent, yaml.MappingStartEvent, yaml.SequenceStartEvent
        ends = (yaml.SequenceEndEvent, yaml.MappingEndEvent)
        while True:
            event = loader.get_event()
            kind = type(event)
            if kind in ends:
                frame = self.stack.pop()
                self._attach(frame.container, frame.position, reported=False)
                continue
            mark = event.start_mark
            position = (mark.line + 1, mark.column + 1)
            if kind is scalar:
                where = self._child_path()
                if event.anchor is not None:
                    self._check_anchor(event, position, where)
                value, ok = self._scalar(event, position, where)
                if where is not None:
                    self.positions.setdefault(where, position)
                self._attach(value, position, reported=not ok)
            elif kind is mapping or kind is sequence:
                where = self._child_path()
                if event.anchor is not None:
                    self._check_anchor(event, position, where)
                is_map = kind is mapping
                if event.tag not in (None, "!", _MAP if is_map else _SEQ):
                    self.report(position, "yaml-tag", f"tag {_quote(_short_tag(event.tag))} is not allowed", where)
                if len(self.stack) >= MAX_DEPTH:
                    # No field: at this depth the dotted path would be the longest part of the line.
                    self.report(position, "too-deep", f"nesting is deeper than {MAX_DEPTH} levels")
                    raise _Stop
                if where is not None:
                    self.positions.setdefault(where, position)
                self.stack.append(_Frame({} if is_map else [], where, position))
            elif kind is yaml.StreamEndEvent:
                return
            elif kind is yaml.DocumentStartEvent:
                documents += 1
                if documents > 1:
                    message = "a definition file must hold exactly one YAML document"
                    self.report(position, "multiple-documents", message)
                    raise _Stop
            elif kind is yaml.AliasEvent:
                # Once per name: a billion-laughs file would otherwise drown the useful lines.
                if event.anchor not in self.aliases_seen:
                    self.aliases_seen.add(event.anchor)
                    where = self._child_path()
                    self.report(position, "yaml-alias", f"aliases (*{shorten(event.anchor)}) are not allowed", where)
                self._attach(None, position, reported=True)

    def _check_anchor(self, event: Any, position: Position, where: KeyPath | None) -> None:
        if event.anchor is not None:
            self.report(position, "yaml-alias", f"anchors (&{shorten(event.anchor)}) are not allowed", where)

    def _child_path(self) -> KeyPath | None:
        """Key path of the node about to start, or None if it is a mapping key (or under one)."""
        if not self.stack:
            return ()
        top = self.stack[-1]
        if top.path is None:
            return None
        if isinstance(top.container, list):
            return top.path + (len(top.container),)
        if top.key is _NO_KEY or top.key is _BAD_KEY:
            return None
        return top.path + (top.key,)

    def _attach(self, value: Any, position: Position, *, reported: bool) -> None:
        if not self.stack:
            self.root = value
            return
        top = self.stack[-1]
        if isinstance(top.container, list):
            top.container.append(value)
        elif top.key is _NO_KEY:
            top.key = self._accept_key(top, value, position, reported)
        else:
            if top.key is not _BAD_KEY:
                top.container[top.key] = value
            top.key = _NO_KEY

    def _accept_key(self, frame: _Frame, key: Any, position: Position, reported: bool) -> Any:
        if reported:
            return _BAD_KEY
        if not isinstance(key, str):
            if isinstance(key, (dict, list)):
                message = f"a key must be a string, not a {'mapping' if isinstance(key, dict) else 'list'}"
            elif key is None:
                message = "a key must be a string, not empty (null)"
            else:
                text = shorten(json.dumps(key))
                message = f"key {text} must be a string (quote it: \"{text}\")"
            self.report(position, "key-type", message, frame.path)
            return _BAD_KEY
        first = frame.first_lines.get(key)
        if first is not None:
            where = None if frame.path is None else frame.path + (key,)
            message = f"duplicate key {_quote(key)} (first defined at line {first})"
            self.report(position, "duplicate-key", message, where)
            return _BAD_KEY
        frame.first_lines[key] = position[0]
        if frame.path is not None:
            self.key_positions[frame.path + (key,)] = position
        return key

    def _scalar(self, event: Any, position: Position, where: KeyPath | None) -> tuple[Any, bool]:
        """The scalar's Python value, and False if a diagnostic was reported for it."""
        tag, text = event.tag, event.value
        if tag is None and event.implicit[0]:
            tag = _resolve_plain(text)  # what the core-schema resolvers give, without their lookup
        elif tag is None or tag == "!":
            tag = self.loader.resolve(yaml.ScalarNode, text, event.implicit)
        try:
            if tag == _STR:
                return text, True
            if tag == _NULL and _NULL_RE.match(text):
                return None, True
            if tag == _BOOL and _BOOL_RE.match(text):
                return text[0] in "tT", True
            if tag == _INT and _INT_RE.match(text):
                number = _to_int(text)
                if abs(number) > _FLOAT_MAX:
                    return self._too_large(text, position, where)
                return number, True
            if tag == _FLOAT and (_FLOAT_RE.match(text) or _INT_RE.match(text)):
                number = _to_float(text)
                if not math.isfinite(number):
                    self.report(position, "non-finite", f"{_quote(text)} is not a finite number", where)
                    return number, False
                return number, True
        except ValueError:  # int() refuses more than sys.get_int_max_str_digits() digits
            return self._too_large(text, position, where)
        if tag in (_NULL, _BOOL, _INT, _FLOAT):
            self.report(position, "yaml-tag", f"{_quote(text)} cannot be read as {_short_tag(tag)}", where)
        else:
            self.report(position, "yaml-tag", f"tag {_quote(_short_tag(tag))} is not allowed", where)
        return None, False

    def _too_large(self, text: str, position: Position, where: KeyPath | None) -> tuple[float, bool]:
        digits = len(text.lstrip("+-"))
        message = f"number with {digits:,} digits is too large (numbers must be within about ±1.8e308)"
        self.report(position, "number-too-large", message, where)
        return (-math.inf if text.startswith("-") else math.inf), False


def _resolve_plain(text: str) -> str:
    # The same order as the resolvers registered above: the first that matches wins.
    for tag, pattern in _PLAIN_RESOLVERS:
        if pattern.match(text):
            return tag
    return _STR


_PLAIN_RESOLVERS = ((_NULL, _NULL_RE), (_BOOL, _BOOL_RE), (_INT, _INT_RE), (_FLOAT, _FLOAT_RE))


def _to_int(text: str) -> int:
    if text.startswith(("0o", "0x")):
        return int(text[2:], 8 if text[1] == "o" else 16)
    return int(text, 10)  # base 10 explicitly: "012" is twelve in YAML 1.2, not an error


def _to_float(text: str) -> float:
    lowered = text.lower()
    if lowered.endswith(".nan"):
        return math.nan
    if lowered.endswith(".inf"):
        return -math.inf if lowered.startswith("-") else math.inf
    return float(text)


def _short_tag(tag: str) -> str:
    return "!!" + tag[len(_YAML_TAG) :] if tag.startswith(_YAML_TAG) else tag


def _quote(text: str) -> str:
    """Source text inside a message: quoted and cut, so a 100 kB scalar is not echoed whole."""
    return f"'{shorten(text)}'"
