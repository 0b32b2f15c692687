"""jsonschema errors turned into positioned, human diagnostics.

``oneOf``/``anyOf`` failures are explained by the alternative the author most plausibly meant;
``propertyNames``, ``additionalProperties`` and ``required`` errors by the field they are about.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from typing import Any, Sequence

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from ._schema_messages import (
    TYPE_NAMES, describe_type, either, expected_of, instance_of, keyword_message, not_one_of, schema_of, show,
)
from ._yamlio import Document, KeyPath
from .errors import Diagnostic, did_you_mean

__all__ = ["CODE", "Explainer"]

CODE = "schema"


class Explainer:
    """Turns jsonschema errors into positioned, human diagnostics."""

    def __init__(self, document: Document, base: KeyPath):
        self.document = document
        self.base = base
        # One "required" error per missing property arrives, but none says which: keep track.
        self.missing_reported: set[tuple[KeyPath, str]] = set()

    def at(self, path: KeyPath, message: str, *, at_key: bool = False) -> Diagnostic:
        return self.document.diagnostic(path, CODE, message, at_key=at_key)

    def explain(self, error: ValidationError) -> Iterator[Diagnostic]:
        path = self.base + tuple(error.absolute_path)
        if _under_property_names(error.absolute_schema_path):
            key = instance_of(error)
            inner = next(iter(self.explain_value(error, path)), None)
            reason = inner.message if inner else "not allowed"
            reason = reason.removeprefix(f"{show(key)} ")  # the name is already in the message
            yield self.at(path + (key,), f"invalid field name {show(key)}: {reason}", at_key=True)
            return
        yield from self.explain_value(error, path)

    def explain_value(self, error: ValidationError, path: KeyPath) -> Iterator[Diagnostic]:
        keyword, expected, value = error.validator, expected_of(error), instance_of(error)
        if keyword == "additionalProperties" and isinstance(value, dict):
            known = list(schema_of(error).get("properties", {}))
            for key in _rejected_fields(error):
                yield self.unknown_field(path, key, known)
        elif keyword == "unevaluatedProperties" and isinstance(value, dict):
            known = _declared_properties(error.schema, value)
            for key in _rejected_fields(error):
                yield self.unknown_field(path, key, known)
        elif keyword == "required" and isinstance(value, dict):
            for name in expected:
                if name not in value and (path, name) not in self.missing_reported:
                    self.missing_reported.add((path, name))
                    yield self.at(path, f"missing required field '{name}'")
        elif keyword == "dependentRequired" and isinstance(value, dict):
            for trigger, needed in expected.items():
                for name in needed:
                    if trigger not in value or name in value or (path, name) in self.missing_reported:
                        continue
                    self.missing_reported.add((path, name))
                    yield self.at(path, f"field '{name}' is required when '{trigger}' is set")
        elif keyword in ("oneOf", "anyOf"):
            yield from self.explain_alternatives(error, path)
        else:
            yield self.at(path, keyword_message(error))

    def unknown_field(self, path: KeyPath, key: str, known: list[str]) -> Diagnostic:
        return self.at(path + (key,), f"unknown field {show(key)}{did_you_mean(key, known)}", at_key=True)

    def explain_alternatives(self, error: ValidationError, path: KeyPath) -> Iterator[Diagnostic]:
        """Explain a failed oneOf/anyOf by the alternative the author most plausibly meant.

        An alternative is implausible when the value has the wrong JSON type for it, or when a
        discriminating field (a ``const``/``enum`` on a direct child, like ``type: csv``) does
        not match. The likeliest remaining alternative has all its errors reported; if none
        remains, the expected types or the discriminator's allowed values are listed instead.
        """
        exclusive = _exclusive_fields(error)
        if exclusive is not None and isinstance(error.instance, dict):
            quoted = [f"'{name}'" for name in exclusive]
            if any(name in error.instance for name in exclusive):
                yield self.at(path, f"set {either(quoted)}, not both" if len(quoted) == 2
                              else f"set only one of {', '.join(quoted)}")
            else:
                yield self.at(path, f"needs {either(quoted)}")
            return
        branches: dict[str | int, list[ValidationError]] = {}  # by the branch's index
        for sub in error.context or ():
            branches.setdefault(sub.relative_schema_path[0], []).append(sub)
        if not branches:
            yield self.at(path, "matches more than one of the allowed forms; it must match exactly one")
            return
        wrong_type = {i for i, errs in branches.items() if any(_is_root_type_error(e) for e in errs)}
        shaped = [i for i in branches if i not in wrong_type]
        # A `const` on a direct child (`type: csv`) names the form. An `enum` does so only when
        # every candidate form rejects that same field; otherwise it is an ordinary field typo.
        enum_keys = set.intersection(
            *({e.relative_path[0] for e in branches[i] if _is_choice_error(e)} for i in shaped)
        ) if shaped else set()

        def discriminator(sub: ValidationError) -> bool:
            return _is_choice_error(sub) and (sub.validator == "const" or sub.relative_path[0] in enum_keys)

        wrong_kind = {i for i in shaped if any(discriminator(e) for e in branches[i])}
        plausible = [i for i in branches if i not in wrong_type and i not in wrong_kind]
        if plausible:
            # The branch that rejects fewest of the fields present wins (one typo must not make
            # the author seem to mean another form), then the one whose fixed-choice fields
            # agree, then the one with fewest errors, then the one whose errors sit deepest,
            # i.e. whose structure the value followed furthest. (best_match descends into nested
            # contexts, so it cannot pick a branch here.)
            chosen = min(
                plausible,
                key=lambda i: (
                    sum(len(_rejected_fields(e)) for e in branches[i]),
                    sum(1 for e in branches[i] if _is_choice_error(e)),
                    len(branches[i]),
                    -max(len(e.relative_path) for e in branches[i]),
                ),
            )
            for sub in branches[chosen]:
                yield from self.explain(sub)
            return
        if wrong_kind:
            found = [e for i in wrong_kind for e in branches[i] if discriminator(e)]
            yield self.explain_discriminator(found, path, error.instance)
            return
        names = []
        for errs in branches.values():
            for sub in errs:
                if _is_root_type_error(sub):
                    types = expected_of(sub)
                    for name in [types] if isinstance(types, str) else types:
                        if TYPE_NAMES.get(name, name) not in names:
                            names.append(TYPE_NAMES.get(name, name))
        yield self.at(path, f"expected {either(names)}, got {describe_type(error.instance)}")

    def explain_discriminator(
        self, errors: list[ValidationError], path: KeyPath, instance: Any
    ) -> Diagnostic:
        allowed: dict[str | int, list[Any]] = {}
        for sub in errors:
            values = [expected_of(sub)] if sub.validator == "const" else list(expected_of(sub))
            bucket = allowed.setdefault(sub.relative_path[0], [])
            bucket.extend(v for v in values if v not in bucket)
        # The field most forms discriminate on (normally every form uses the same one).
        key = max(allowed, key=lambda k: sum(1 for e in errors if e.relative_path[0] == k))
        value = instance.get(key) if isinstance(instance, dict) and isinstance(key, str) else None
        return self.at(path + (key,), not_one_of(value, allowed[key]))


def _under_property_names(schema_path: Sequence[Any]) -> bool:
    """Whether a schema path passes through ``propertyNames`` (as a keyword, not a property)."""
    takes_name = {"properties", "patternProperties", "$defs", "definitions", "dependentSchemas"}
    takes_index = {"allOf", "anyOf", "oneOf", "prefixItems"}
    parts = list(schema_path)
    i = 0
    while i < len(parts):
        if parts[i] == "propertyNames":
            return True
        i += 2 if parts[i] in takes_name or parts[i] in takes_index else 1
    return False


def _is_root_type_error(error: ValidationError) -> bool:
    return error.validator == "type" and not error.relative_path


def _is_choice_error(error: ValidationError) -> bool:
    return error.validator in ("const", "enum") and len(error.relative_path) == 1


def _rejected_fields(error: ValidationError) -> list[str]:
    """Keys an ``additionalProperties: false``/``unevaluatedProperties`` error refuses."""
    value = instance_of(error)
    if not isinstance(value, dict):
        return []
    if error.validator == "additionalProperties":
        known = schema_of(error).get("properties", {})
        patterns = list(schema_of(error).get("patternProperties", {}))
        return [k for k in value if k not in known and not any(re.search(p, k) for p in patterns)]
    if error.validator == "unevaluatedProperties":
        known = _declared_properties(error.schema, value)
        # a declared field with a wrong value counts as unevaluated too: its own error says why
        return [k for k in _unexpected_names(error.message) or value if k not in known]
    return []


def _declared_properties(schema: Any, instance: Any = None) -> list[str]:
    """The property names ``schema`` declares for ``instance``: of an ``if``/``then``/``else``
    only the branch the instance takes (a csv source is not told about a sql source's url)."""
    names: list[str] = []
    stack = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            names.extend(n for n in node.get("properties", {}) if n not in names)
            for keyword in ("allOf", "anyOf", "oneOf"):
                stack.extend(node.get(keyword, []))
            if "if" in node and instance is not None and isinstance(node["if"], (dict, bool)):
                taken = "then" if Draft202012Validator(node["if"]).is_valid(instance) else "else"
                stack.extend([node[taken]] if taken in node else [])
            else:
                stack.extend(node[k] for k in ("then", "else") if k in node)
    return names


def _exclusive_fields(error: ValidationError) -> list[str] | None:
    """The field names of a ``oneOf``/``anyOf`` whose every branch only requires one field
    (``table`` or ``query``), else None."""
    branches = error.validator_value
    names = []
    for branch in branches if isinstance(branches, list) else ():
        required = branch.get("required") if isinstance(branch, dict) else None
        if set(branch) != {"required"} or not isinstance(required, list) or len(required) != 1:
            return None
        names.append(required[0])
    return names or None


def _unexpected_names(message: str) -> list[str]:
    """Property names from jsonschema's "(... were unexpected)" message, if it has that shape."""
    match = re.search(r"\((.*) (?:was|were) unexpected\)$", message)
    if not match:
        return []
    try:
        names = ast.literal_eval(f"[{match.group(1)}]")
    except (ValueError, SyntaxError):
        return []
    return [n for n in names if isinstance(n, str)]
