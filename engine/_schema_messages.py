"""The wording of schema diagnostics: one short line per failed keyword, values shown
YAML-ish and cut short (a whole mapping is named, never dumped), with a did-you-mean where a
name may be misspelt."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from jsonschema._utils import Unset  # the stubs' type of an error field not set; not exported
from jsonschema.exceptions import ValidationError

from .errors import did_you_mean

__all__ = ["TYPE_NAMES", "describe_type", "either", "expected_of", "instance_of", "keyword_message",
           "not_one_of", "schema_of", "show", "shorten"]

_MAX_LISTED = 12
_MAX_SHOWN = 40

TYPE_NAMES = {
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
    "object": "a mapping",
    "array": "a list",
    "null": "nothing (null)",
}


def expected_of(error: ValidationError) -> Any:
    """The value ``error``'s keyword has in the schema (5 for ``maxLength: 5``)."""
    return _given(error.validator_value)


def instance_of(error: ValidationError) -> Any:
    """The value that failed ``error``'s keyword."""
    return _given(error.instance)


def schema_of(error: ValidationError) -> Mapping[str, Any]:
    """The schema object holding ``error``'s keyword; empty for a boolean (``false``) schema."""
    schema = error.schema
    return schema if isinstance(schema, Mapping) else {}


def _given(value: Any | Unset) -> Any:
    # jsonschema fills every field of the errors iter_errors yields; only an error built by
    # hand can lack one, and then it reads as null rather than as jsonschema's sentinel
    return None if isinstance(value, Unset) else value


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


def describe_type(value: Any) -> str:
    kind = _json_type(value)
    if kind in ("object", "array"):
        return TYPE_NAMES[kind]
    if kind == "null":
        return "an empty value"
    article = "an" if kind == "integer" else "a"
    name = "boolean" if kind == "boolean" else kind
    return f"{article} {name} ({show(value)})"


def show(value: Any) -> str:
    """A short, YAML-ish rendering of a value; collections are named, never dumped."""
    if isinstance(value, str):
        return f"'{shorten(value, _MAX_SHOWN)}'"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return shorten(repr(value), _MAX_SHOWN)
    if isinstance(value, dict):
        return "a mapping"
    return "a list"


def shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def either(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " or " + items[-1]


def not_one_of(value: Any, allowed: Sequence[Any]) -> str:
    listed = ", ".join(show(a) for a in allowed[:_MAX_LISTED])
    if len(allowed) > _MAX_LISTED:
        listed += f", ... ({len(allowed)} in all)"
    return f"{show(value)} is not one of {listed}{did_you_mean(value, allowed)}"


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def keyword_message(error: ValidationError) -> str:
    """One line saying what ``error``'s keyword wants and what the value is instead."""
    keyword, expected, value = error.validator, expected_of(error), instance_of(error)
    if keyword == "type":
        names = [expected] if isinstance(expected, str) else list(expected)
        return f"expected {either([TYPE_NAMES.get(n, n) for n in names])}, got {describe_type(value)}"
    if keyword == "enum":
        return not_one_of(value, list(expected))
    if keyword == "const":
        return f"must be {show(expected)}, got {show(value)}"
    if keyword in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        relation = {
            "minimum": "at least",
            "maximum": "at most",
            "exclusiveMinimum": "greater than",
            "exclusiveMaximum": "less than",
        }[keyword]
        return f"must be {relation} {show(expected)}, got {show(value)}"
    if keyword == "multipleOf":
        return f"must be a multiple of {show(expected)}, got {show(value)}"
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
                return f"items must be unique; {show(item)} appears more than once"
            seen.append(item)
        return "items must be unique"
    if keyword == "pattern":
        return f"{show(value)} does not match the pattern {expected}"
    if keyword == "format":
        return f"{show(value)} is not a valid {expected}"
    if keyword in ("contains", "minContains", "maxContains"):
        return "does not contain the required items"
    if keyword == "not":
        return f"{show(value)} is not allowed here"
    if keyword is None:  # a `false` subschema; jsonschema 4.x leaves its path at the parent
        return f"{show(value)} is not allowed here"
    if "{" in error.message or len(error.message) > 120:  # jsonschema would repr a whole mapping
        return f"{show(value)} is not valid ({keyword})"
    return error.message
