"""The YAML composer behind ``_yamlio``: parser events to plain data, positions and diagnostics.

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
import re
import sys
from dataclasses import dataclass, field
from typing import Any

import yaml

from ._keypath import MAX_DEPTH, MAX_DIAGNOSTICS, KeyPath, Position, field_name
from .errors import Diagnostic, shorten

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

    class _FastCoreSchemaLoader(yaml.CSafeLoader):
        """libyaml parser (same events and marks, much faster) with the same resolvers."""

        yaml_implicit_resolvers = _CoreSchemaLoader.yaml_implicit_resolvers

    _LOADER: type = _FastCoreSchemaLoader
else:  # pragma: no cover - depends on how PyYAML was built
    _LOADER = _CoreSchemaLoader


# Numbers that are no float are kept as an infinity (``_yamlio`` lets the rest of the file be
# checked), so nothing downstream has to convert a huge int.
_FLOAT_MAX = int(sys.float_info.max)


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
                real = _to_float(text)
                if not math.isfinite(real):
                    self.report(position, "non-finite", f"{_quote(text)} is not a finite number", where)
                    return real, False
                return real, True
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
