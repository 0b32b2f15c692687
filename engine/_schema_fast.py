"""A quick yes to "is this document valid?", so that a valid file needs no jsonschema at all.

Importing jsonschema (and referencing, attrs, rpds) and walking a KPI file with it were a
third of ``kpiforge validate`` on the catalog (issue 11). Nearly every file loaded is valid,
and for a valid file jsonschema has nothing to say. :func:`is_valid` answers True only when it
is sure that jsonschema (Draft 2020-12 with its format checker, as :mod:`._schema` runs it)
finds no error; False or None send the document to jsonschema, which finds and words the
errors exactly as before. It is therefore only ever a shortcut: a keyword it does not know, a
reference it cannot follow, a value it cannot compare as jsonschema would, all give None.

Each keyword below mirrors jsonschema's own implementation (``jsonschema/_keywords.py``,
``_types.py``, ``_format.py``); ``tests/test_schema_fast.py`` checks the two agree on every
bundled file and on many broken variants of them.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any, Callable, Mapping

__all__ = ["is_valid"]

Verdict = bool | None  # True: valid; False: invalid; None: not sure (ask jsonschema)

# keywords that never make a document invalid
_ANNOTATIONS = frozenset({"title", "description", "$comment", "default", "examples",
                          "deprecated", "readOnly", "writeOnly", "$schema", "$defs"})
_RE_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$", re.ASCII)  # jsonschema's, with fromisoformat


def _is_type(instance: Any, name: str) -> Verdict:
    kind = type(instance)
    if kind not in (dict, list, str, int, float, bool, type(None)):
        return None  # jsonschema's checks are isinstance-based: leave others to it
    if name == "object":
        return kind is dict
    if name == "array":
        return kind is list
    if name == "string":
        return kind is str
    if name == "boolean":
        return kind is bool
    if name == "null":
        return instance is None
    if name == "number":
        return kind is int or kind is float
    if name == "integer":  # draft 6 on: a float with an integral value is an integer
        return kind is int or (kind is float and instance.is_integer())
    return None


def _date(instance: Any) -> bool:
    if type(instance) is not str:
        return True
    if not _RE_DATE.fullmatch(instance):
        return False
    try:
        date.fromisoformat(instance)
    except ValueError:
        return False
    return True


def _number(instance: Any) -> bool:
    return type(instance) is int or type(instance) is float


def is_valid(schema: Any, instance: Any, root: Mapping[str, Any] | None = None) -> Verdict:
    """Whether ``instance`` is valid under ``schema`` (references resolve in ``root``)."""
    if schema is True:
        return True
    if schema is False:
        return False
    if type(schema) is not dict:
        return None
    if root is None:
        root = schema
    elif "$id" in schema:
        return None  # a new base for references: not followed here
    verdict: Verdict = True
    for keyword, value in schema.items():
        if keyword in _ANNOTATIONS or (keyword == "$id" and schema is root):
            continue
        check = _KEYWORDS.get(keyword)
        if check is None:
            return None
        result = check(value, instance, schema, root)
        if result is False:
            return False  # sure: jsonschema reports at least this one
        if result is None:
            verdict = None
    return verdict


def _all(results: Any) -> Verdict:
    verdict: Verdict = True
    for result in results:
        if result is False:
            return False
        if result is None:
            verdict = None
    return verdict


def _ref(value: Any, instance: Any, schema: Any, root: Any) -> Verdict:
    if type(value) is not str or not value.startswith("#/$defs/"):
        return None
    target = root.get("$defs", {}).get(value.removeprefix("#/$defs/"))
    if target is None or "/" in value.removeprefix("#/$defs/") or "~" in value:
        return None
    return is_valid(target, instance, root)


def _type(value: Any, instance: Any, schema: Any, root: Any) -> Verdict:
    names = value if type(value) is list else [value]
    verdict: Verdict = False
    for name in names:
        result = _is_type(instance, name)
        if result:
            return True
        if result is None:
            verdict = None
    return verdict


def _properties(value: Any, instance: Any, schema: Any, root: Any) -> Verdict:
    if type(instance) is not dict:
        return True
    return _all(is_valid(sub, instance[name], root) for name, sub in value.items()
                if name in instance)


def _additional(value: Any, instance: Any, schema: Any, root: Any) -> Verdict:
    if type(instance) is not dict:
        return True
    if "patternProperties" in schema:
        return None
    known = schema.get("properties", {})
    return _all(is_valid(value, instance[name], root) for name in instance if name not in known)


def _required(value: Any, instance: Any, schema: Any, root: Any) -> Verdict:
    return type(instance) is not dict or all(name in instance for name in value)


def _property_names(value: Any, instance: Any, schema: Any, root: Any) -> Verdict:
    if type(instance) is not dict:
        return True
    return _all(is_valid(value, name, root) for name in instance)


def _items(value: Any, instance: Any, schema: Any, root: Any) -> Verdict:
    if type(instance) is not list:
        return True
    if "prefixItems" in schema:
        return None
    return _all(is_valid(value, item, root) for item in instance)


def _unique(value: Any, instance: Any, schema: Any, root: Any) -> Verdict:
    if not value or type(instance) is not list:
        return True
    # jsonschema's equality: strings equal equal strings, numbers equal numbers (1 and 1.0,
    # as in a set), but True is no 1: mixed or other items are left to it
    if all(type(item) is str for item in instance) or all(
            _number(item) and item == item for item in instance):
        return len(set(instance)) == len(instance)
    return None


def _enum(value: Any, instance: Any, schema: Any, root: Any) -> Verdict:
    if type(value) is not list or not all(type(v) is str for v in value):
        return None
    # jsonschema's equal(): a string equals only an equal string
    return type(instance) is str and instance in value


def _const(value: Any, instance: Any, schema: Any, root: Any) -> Verdict:
    return _enum([value], instance, schema, root)


def _one_of(value: Any, instance: Any, schema: Any, root: Any) -> Verdict:
    results = [is_valid(sub, instance, root) for sub in value]
    if None in results:
        return None
    return results.count(True) == 1


def _any_of(value: Any, instance: Any, schema: Any, root: Any) -> Verdict:
    results = [is_valid(sub, instance, root) for sub in value]
    if True in results:
        return True
    return None if None in results else False


def _all_of(value: Any, instance: Any, schema: Any, root: Any) -> Verdict:
    return _all(is_valid(sub, instance, root) for sub in value)


def _not(value: Any, instance: Any, schema: Any, root: Any) -> Verdict:
    result = is_valid(value, instance, root)
    return None if result is None else not result


def _if(value: Any, instance: Any, schema: Any, root: Any) -> Verdict:
    result = is_valid(value, instance, root)
    if result is None:
        return None
    branch = schema.get("then" if result else "else", True)
    return is_valid(branch, instance, root)


def _branch(value: Any, instance: Any, schema: Any, root: Any) -> Verdict:
    return True  # then / else: applied by "if" (alone they do nothing)


def _format(value: Any, instance: Any, schema: Any, root: Any) -> Verdict:
    if value == "date":
        return _date(instance)
    return None


def _bound(test: Callable[[Any, Any], bool], kind: str) -> Callable[..., Verdict]:
    def check(value: Any, instance: Any, schema: Any, root: Any) -> Verdict:
        if kind == "number":
            if not _number(instance):
                return True
            return not test(instance, value)
        size = len(instance) if type(instance) is {"string": str, "array": list,
                                                      "object": dict}[kind] else None
        return True if size is None else not test(size, value)
    return check


_KEYWORDS: dict[str, Callable[[Any, Any, Any, Any], Verdict]] = {
    "$ref": _ref, "type": _type, "properties": _properties,
    "additionalProperties": _additional, "required": _required,
    "propertyNames": _property_names, "items": _items, "uniqueItems": _unique, "enum": _enum,
    "const": _const, "oneOf": _one_of, "anyOf": _any_of, "allOf": _all_of, "not": _not,
    "if": _if, "then": _branch, "else": _branch, "format": _format,
    "pattern": lambda value, instance, schema, root: (
        type(instance) is not str or re.search(value, instance) is not None),
    "minimum": _bound(lambda x, v: x < v, "number"),
    "maximum": _bound(lambda x, v: x > v, "number"),
    "exclusiveMinimum": _bound(lambda x, v: x <= v, "number"),
    "exclusiveMaximum": _bound(lambda x, v: x >= v, "number"),
    "minLength": _bound(lambda x, v: x < v, "string"),
    "maxLength": _bound(lambda x, v: x > v, "string"),
    "minItems": _bound(lambda x, v: x < v, "array"),
    "maxItems": _bound(lambda x, v: x > v, "array"),
    "minProperties": _bound(lambda x, v: x < v, "object"),
    "maxProperties": _bound(lambda x, v: x > v, "object"),
}
