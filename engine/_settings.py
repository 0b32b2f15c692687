"""Settings of source and sink types: the project schema composed from the registered types.

``schemas/project.schema.json`` describes only what the core reads (a source's ``type``,
``time``, ``dimensions``, ``inputs``; a sink's ``type``, ``timeout``, ``retry``). Each type's
own settings are the ``settings_schema`` of its register call; :func:`project_schema` adds one
``if type is X then X's settings`` branch per registered type and closes every source and sink
with ``unevaluatedProperties: false``, so built-in and third-party settings get the same
positioned errors and did-you-mean. A type registered without a schema accepts any settings,
and so does a type nobody registered (the unknown type is reported on its own).
"""

from __future__ import annotations

import copy
import functools
import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ._digest import sha256
from ._schema_files import read_schema
from ._verdicts import Verdicts

if TYPE_CHECKING:
    from jsonschema import Draft202012Validator

    from ._plugins import Plugins, Registration
    from ._yamlio import Document
    from .errors import Diagnostic

__all__ = ["SCHEMA", "check_settings_schema", "core_keys", "project_schema", "project_schema_digest",
           "project_schema_problems", "project_validator"]

SCHEMA = "project.schema.json"
_DEF = {"source": "source", "sink": "sink"}
# keywords that would close or reshape the object the core shares with the type
_RESERVED_KEYWORDS = ("additionalProperties", "unevaluatedProperties", "$schema")
_DATA = {"type": "array", "items": {"type": "object"},
         "description": "Inline rows, or (from Python) a table given to engine.run(data=...)."}


def core_keys(kind: str) -> tuple[str, ...]:
    """The keys the core itself reads in a source or a sink (never the type's settings)."""
    # read, not copied: every type registration asks, and a deep copy per call was most of it
    return tuple(read_schema(SCHEMA)["$defs"][_DEF[kind]]["properties"])


def check_settings_schema(kind: str, schema: Any, *, metaschema: bool = True) -> list[str]:
    """Why ``schema`` cannot be a ``settings_schema`` of a ``kind`` type; [] when it can.

    ``metaschema=False`` skips the check against the JSON Schema metaschema, the costly part:
    for built-in types, whose schemas a test checks in full (tests/test_plugins_registry.py)."""
    if not isinstance(schema, Mapping):
        return [f"settings_schema must be a JSON Schema object (a dict), got {type(schema).__name__}"]
    problems = []
    if schema.get("type", "object") != "object":
        problems.append("settings_schema must describe an object (type: object)")
    for keyword in _RESERVED_KEYWORDS:
        if keyword in schema:
            problems.append(f"settings_schema must not set {keyword!r}: the core closes the "
                            f"settings itself (list every setting under 'properties')")
    core = core_keys(kind)
    properties = schema.get("properties") or {}
    clash = sorted(k for k in properties if k in core)
    if clash:
        problems.append(f"settings_schema redefines {', '.join(map(repr, clash))}, which the core "
                        f"reads itself")
    if not metaschema:
        return problems
    try:
        text = json.dumps(schema, sort_keys=True)
    except (TypeError, ValueError):  # not JSON data: the metaschema says why
        problems.extend(_metaschema_problems(dict(schema)))
    else:
        problems.extend(_checked_text(text))
    return problems


@functools.lru_cache(maxsize=256)
def _checked_text(text: str) -> tuple[str, ...]:
    """The metaschema check of one settings schema, by its JSON text: every load of the plugins
    registers the same schemas, and checking them against the metaschema again each time was
    most of the cost of loading plugins."""
    return _metaschema_problems(json.loads(text))


def _metaschema_problems(schema: dict[str, Any]) -> tuple[str, ...]:
    # imported here: built-in types skip this check, so loading them needs no jsonschema
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import SchemaError

    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        where = "/".join(str(p) for p in exc.absolute_path) or "(root)"
        return (f"settings_schema is not a valid JSON Schema at {where}: {exc.message[:200]}",)
    return ()


def _branch(kind: str, reg: "Registration") -> dict[str, Any]:
    if reg.settings_schema is None:
        then: dict[str, Any] = {"additionalProperties": True}
    else:
        then = copy.deepcopy(dict(reg.settings_schema))
        then.setdefault("type", "object")
        if "data" in reg.capabilities:
            then.setdefault("properties", {})["data"] = dict(_DATA)
        # its own resource, so that the type's internal "#/$defs/..." references resolve
        then["$id"] = f"https://kpiforge.dev/schemas/v1/project/{kind}s/{reg.name}.json"
    return {"if": {"properties": {"type": {"const": reg.name}}, "required": ["type"]},
            "then": then}


def project_schema(plugins: "Plugins") -> dict[str, Any]:
    """``project.schema.json`` with the settings of every registered source and sink type."""
    schema = copy.deepcopy(dict(read_schema(SCHEMA)))  # load_schema's copy, without jsonschema
    for kind, types in (("source", plugins.source_types), ("sink", plugins.sink_types)):
        target = schema["$defs"][_DEF[kind]]
        branches = [_branch(kind, reg) for reg in types.values()]
        branches.append({"if": {"properties": {"type": {"not": {"enum": sorted(types)}}},
                                "required": ["type"]},
                         "then": {"additionalProperties": True}})
        target["allOf"] = [*target.get("allOf", []), *branches]
        target["unevaluatedProperties"] = False
        target.pop("additionalProperties", None)
    return schema


def project_schema_digest(plugins: "Plugins") -> str:
    """The sha256 of :func:`project_schema` (canonical JSON), what a cached verdict on a
    project file is about (see ``._verdicts``); built once per plugin set."""
    cached = plugins.cache.get("project_schema_digest")
    if cached is None:
        # default=repr: a third-party schema holding something JSON cannot write still digests
        text = json.dumps(project_schema(plugins), sort_keys=True, default=repr)
        cached = plugins.cache["project_schema_digest"] = sha256(text.encode()).hexdigest()
    return cached


def project_validator(plugins: "Plugins") -> Draft202012Validator:
    """The compiled :func:`project_schema` of ``plugins``, built once per plugin set."""
    from ._schema import compile_schema

    cached = plugins.cache.get("project_validator")
    if cached is None:
        cached = plugins.cache["project_validator"] = compile_schema(project_schema(plugins))
    return cached


def project_schema_problems(document: "Document", plugins: "Plugins") -> list["Diagnostic"]:
    """jsonschema's errors in the project file; none, without asking it, when it accepted these
    very bytes against this very composed schema before (``._verdicts``)."""
    verdicts = Verdicts.open()
    key = None
    if verdicts.enabled and document.sha256 and not document.problems:  # a file, not a dict
        key = verdicts.key(f"project {project_schema_digest(plugins)}", document.sha256)
    if verdicts.accepted(key):
        return []
    from ._schema import validate

    problems = validate(document, project_validator(plugins))
    if not problems:
        verdicts.remember(key)
        verdicts.save()
    return problems
