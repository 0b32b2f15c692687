"""JSON Schema validation of loaded YAML, with every error placed at its line and column.

jsonschema's own messages repeat the offending instance (sometimes a whole mapping) and, for
``oneOf``/``anyOf``, say only that nothing matched. Users need the opposite: one short line per
problem, pointing at the key or value to fix, with a suggestion when a name is misspelt. So each
keyword gets its own wording here, and alternatives are explained by the branch the user most
plausibly meant.

Schemas ship in ``kpiforge.schemas``; ``$ref`` between them resolves through a local registry
keyed by ``$id``, never over the network.
"""

from __future__ import annotations

import ast
import copy
import functools
import importlib.resources
import json
import re
from collections.abc import Iterator
from typing import Any, Sequence
from urllib.parse import urlsplit

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError, ValidationError
from referencing import Registry, Resource
from referencing.exceptions import NoSuchResource, Unresolvable
from referencing.jsonschema import DRAFT202012

from ._yamlio import Document, KeyPath, field_name
from .errors import Diagnostic, did_you_mean

__all__ = ["DIALECT", "check_schema", "compile_schema", "load_schema", "schema_names", "validate"]

SCHEMA_PACKAGE = "kpiforge.schemas"
DIALECT = "https://json-schema.org/draft/2020-12/schema"
CODE = "schema"

# A version segment in the $id path: /v1/, /1.0/, kpi-v2.json, kpi.v1.schema.json ...
_VERSIONED = re.compile(r"(?:^|[/_.-])v?\d+(?:\.\d+)*(?=[/_.-]|$)")
_MAX_LISTED = 12
_MAX_SHOWN = 40


def schema_names() -> list[str]:
    """File names of the JSON schemas shipped in :mod:`kpiforge.schemas`, sorted."""
    root = importlib.resources.files(SCHEMA_PACKAGE)
    return sorted(entry.name for entry in root.iterdir() if entry.name.endswith(".json") and entry.is_file())


@functools.lru_cache(maxsize=None)
def _read_schema(name: str) -> dict[str, Any]:
    if "/" in name or "\\" in name or not name.endswith(".json"):
        raise ValueError(f"not a schema file name: {name!r}")
    entry = importlib.resources.files(SCHEMA_PACKAGE).joinpath(name)
    if not entry.is_file():
        raise LookupError(f"no schema named {name!r} (have: {', '.join(schema_names()) or 'none'})")
    schema = json.loads(entry.read_text(encoding="utf-8"))
    if not isinstance(schema, dict):
        raise ValueError(f"schema {name!r} is not a JSON object")
    return schema


def load_schema(name: str) -> dict[str, Any]:
    """The schema ``name`` (e.g. ``"kpi.schema.json"``) from :mod:`kpiforge.schemas`.

    Returns a copy: callers derive schemas from it, and the cached original must stay intact.
    """
    return copy.deepcopy(_read_schema(name))


def _retrieve(uri: str) -> Resource:
    """Refuse every URI not in the registry: schemas are never fetched over the network."""
    raise NoSuchResource(ref=uri)


@functools.lru_cache(maxsize=1)
def _registry() -> Registry:
    resources = []
    for name in schema_names():
        schema = _read_schema(name)
        if isinstance(schema.get("$id"), str):
            resource = Resource.from_contents(schema, default_specification=DRAFT202012)
            resources.append((schema["$id"], resource))
    return Registry(retrieve=_retrieve).with_resources(resources)  # type: ignore[call-arg]


def compile_schema(schema: dict[str, Any]) -> Draft202012Validator:
    """A validator for a derived schema, to build once and pass to :func:`validate` many times
    (building one per call costs more than validating a small document)."""
    return _validator(schema)


def _validator(schema: dict[str, Any]) -> Draft202012Validator:
    return Draft202012Validator(
        schema, registry=_registry(), format_checker=Draft202012Validator.FORMAT_CHECKER
    )


@functools.lru_cache(maxsize=None)
def _named_validator(name: str) -> Draft202012Validator:
    return _validator(_read_schema(name))


def validate(
    document: Document, schema: str | dict[str, Any] | Draft202012Validator, *,
    base_path: Sequence[str | int] = ()
) -> list[Diagnostic]:
    """Every schema violation in ``document`` (or in its value at ``base_path``), sorted.

    ``schema`` is a file name in :mod:`kpiforge.schemas`, a schema dict or a validator from
    :func:`compile_schema`. Paths in the diagnostics are relative to the document root, so they
    stay right with ``base_path``.
    """
    if isinstance(schema, str):
        validator = _named_validator(schema)
    elif isinstance(schema, dict):
        validator = _validator(schema)
    else:
        validator = schema
    base = tuple(base_path)
    instance = document.data
    for step, part in enumerate(base):
        try:
            instance = instance[part]
        except (KeyError, IndexError, TypeError):
            raise LookupError(f"{document.path}: nothing at {field_name(base[: step + 1])}") from None
    explainer = _Explainer(document, base)
    found: set[Diagnostic] = set()
    for error in validator.iter_errors(instance):
        found.update(explainer.explain(error))
    return sorted(found)


def check_schema(schema: str | dict[str, Any]) -> list[str]:
    """Problems that keep ``schema`` from being a publishable kpiforge schema; [] when fine.

    It must declare draft 2020-12, be valid under that metaschema, carry an absolute, versioned
    ``$id`` (so documents can pin the version they were written for), and resolve every ``$ref``.
    """
    if isinstance(schema, str):
        schema = _read_schema(schema)
    problems = []
    if schema.get("$schema") != DIALECT:
        problems.append(f"$schema must be {DIALECT!r}")
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        where = "/".join(str(p) for p in exc.absolute_path) or "(root)"
        problems.append(f"invalid draft 2020-12 schema at {where}: {_shorten(exc.message, 200)}")
        return problems
    schema_id = schema.get("$id")
    parts = urlsplit(schema_id) if isinstance(schema_id, str) else None
    if not parts or not parts.scheme or not _VERSIONED.search(parts.path):
        problems.append(
            "$id must be an absolute URI with a version, e.g. https://kpiforge.dev/schemas/kpi/v1.json"
        )
        return problems
    resolver = _registry().with_resource(schema_id, Resource.from_contents(schema)).resolver(schema_id)
    for ref in sorted(set(_refs(schema))):
        try:
            resolver.lookup(ref)
        except Unresolvable:
            problems.append(f"$ref {ref!r} does not resolve")
    return problems


def _refs(node: Any) -> Iterator[str]:
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if isinstance(item.get("$ref"), str):
                yield item["$ref"]
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


class _Explainer:
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
            key = error.instance
            inner = next(iter(self.explain_value(error, path)), None)
            reason = inner.message if inner else "not allowed"
            reason = reason.removeprefix(f"{_show(key)} ")  # the name is already in the message
            yield self.at(path + (key,), f"invalid field name {_show(key)}: {reason}", at_key=True)
            return
        yield from self.explain_value(error, path)

    def explain_value(self, error: ValidationError, path: KeyPath) -> Iterator[Diagnostic]:
        keyword, expected, value = error.validator, error.validator_value, error.instance
        if keyword == "additionalProperties" and isinstance(value, dict):
            known = list(error.schema.get("properties", {}))
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
            yield self.at(path, _message(error))

    def unknown_field(self, path: KeyPath, key: str, known: list[str]) -> Diagnostic:
        return self.at(path + (key,), f"unknown field {_show(key)}{did_you_mean(key, known)}", at_key=True)

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
                yield self.at(path, f"set {_or(quoted)}, not both" if len(quoted) == 2
                              else f"set only one of {', '.join(quoted)}")
            else:
                yield self.at(path, f"needs {_or(quoted)}")
            return
        branches: dict[int, list[ValidationError]] = {}
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
                    types = sub.validator_value
                    for name in [types] if isinstance(types, str) else types:
                        if _TYPE_NAMES.get(name, name) not in names:
                            names.append(_TYPE_NAMES.get(name, name))
        yield self.at(path, f"expected {_or(names)}, got {_describe_type(error.instance)}")

    def explain_discriminator(
        self, errors: list[ValidationError], path: KeyPath, instance: Any
    ) -> Diagnostic:
        allowed: dict[str | int, list[Any]] = {}
        for sub in errors:
            values = [sub.validator_value] if sub.validator == "const" else list(sub.validator_value)
            bucket = allowed.setdefault(sub.relative_path[0], [])
            bucket.extend(v for v in values if v not in bucket)
        # The field most forms discriminate on (normally every form uses the same one).
        key = max(allowed, key=lambda k: sum(1 for e in errors if e.relative_path[0] == k))
        value = instance.get(key) if isinstance(instance, dict) and isinstance(key, str) else None
        return self.at(path + (key,), _not_one_of(value, allowed[key]))


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
    value = error.instance
    if not isinstance(value, dict):
        return []
    if error.validator == "additionalProperties":
        known = error.schema.get("properties", {})
        patterns = list(error.schema.get("patternProperties", {}))
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


_TYPE_NAMES = {
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
    "object": "a mapping",
    "array": "a list",
    "null": "nothing (null)",
}


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, dict):
        return "object"
    return "array"


def _describe_type(value: Any) -> str:
    kind = _json_type(value)
    if kind in ("object", "array"):
        return _TYPE_NAMES[kind]
    if kind == "null":
        return "an empty value"
    article = "an" if kind == "integer" else "a"
    name = "boolean" if kind == "boolean" else kind
    return f"{article} {name} ({_show(value)})"


def _show(value: Any) -> str:
    """A short, YAML-ish rendering of a value; collections are named, never dumped."""
    if isinstance(value, str):
        return f"'{_shorten(value, _MAX_SHOWN)}'"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return _shorten(repr(value), _MAX_SHOWN)
    if isinstance(value, dict):
        return "a mapping"
    return "a list"


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _or(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " or " + items[-1]


def _not_one_of(value: Any, allowed: Sequence[Any]) -> str:
    listed = ", ".join(_show(a) for a in allowed[:_MAX_LISTED])
    if len(allowed) > _MAX_LISTED:
        listed += f", ... ({len(allowed)} in all)"
    return f"{_show(value)} is not one of {listed}{did_you_mean(value, allowed)}"


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _message(error: ValidationError) -> str:
    keyword, expected, value = error.validator, error.validator_value, error.instance
    if keyword == "type":
        names = [expected] if isinstance(expected, str) else list(expected)
        return f"expected {_or([_TYPE_NAMES.get(n, n) for n in names])}, got {_describe_type(value)}"
    if keyword == "enum":
        return _not_one_of(value, list(expected))
    if keyword == "const":
        return f"must be {_show(expected)}, got {_show(value)}"
    if keyword in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        relation = {
            "minimum": "at least",
            "maximum": "at most",
            "exclusiveMinimum": "greater than",
            "exclusiveMaximum": "less than",
        }[keyword]
        return f"must be {relation} {_show(expected)}, got {_show(value)}"
    if keyword == "multipleOf":
        return f"must be a multiple of {_show(expected)}, got {_show(value)}"
    if keyword in ("minLength", "minItems", "minProperties") and expected == 1:
        return "must not be empty"
    if keyword == "minLength":
        return f"must be at least {_plural(expected, 'character')} long"
    if keyword == "maxLength":
        return f"must be at most {_plural(expected, 'character')} long, got {len(value)}"
    if keyword == "minItems":
        return f"must have at least {_plural(expected, 'item')}, got {len(value)}"
    if keyword == "maxItems":
        return f"must have at most {_plural(expected, 'item')}, got {len(value)}"
    if keyword == "minProperties":
        return f"must have at least {_plural(expected, 'field')}, got {len(value)}"
    if keyword == "maxProperties":
        return f"must have at most {_plural(expected, 'field')}, got {len(value)}"
    if keyword == "uniqueItems":
        seen: list[Any] = []
        for item in value:
            if item in seen:
                return f"items must be unique; {_show(item)} appears more than once"
            seen.append(item)
        return "items must be unique"
    if keyword == "pattern":
        return f"{_show(value)} does not match the pattern {expected}"
    if keyword == "format":
        return f"{_show(value)} is not a valid {expected}"
    if keyword in ("contains", "minContains", "maxContains"):
        return "does not contain the required items"
    if keyword == "not":
        return f"{_show(value)} is not allowed here"
    if keyword is None:  # a `false` subschema; jsonschema 4.x leaves its path at the parent
        return f"{_show(value)} is not allowed here"
    if "{" in error.message or len(error.message) > 120:  # jsonschema would repr a whole mapping
        return f"{_show(value)} is not valid ({keyword})"
    return error.message
