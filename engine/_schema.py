"""JSON Schema validation of loaded YAML, with every error placed at its line and column.

jsonschema's own messages repeat the offending instance (sometimes a whole mapping) and, for
``oneOf``/``anyOf``, say only that nothing matched. Users need the opposite: one short line per
problem, pointing at the key or value to fix, with a suggestion when a name is misspelt. So each
keyword gets its own wording (:mod:`._schema_messages`), and alternatives are explained by the
branch the user most plausibly meant (:mod:`._schema_explain`).

Schemas ship in ``kpiforge.schemas``; ``$ref`` between them resolves through a local registry
keyed by ``$id``, never over the network.
"""

from __future__ import annotations

import copy
import functools
import re
from collections.abc import Iterator
from typing import Any, Sequence
from urllib.parse import urlsplit

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from referencing import Registry, Resource
from referencing.exceptions import NoSuchResource, Unresolvable
from referencing.jsonschema import DRAFT202012

from ._schema_explain import Explainer
from ._schema_files import _read_schema, read_schema, schema_names
from ._schema_messages import shorten
from ._yamlio import Document, field_name
from .errors import Diagnostic

__all__ = ["DIALECT", "check_schema", "compile_schema", "load_schema", "read_schema", "schema_names",
           "validate"]

DIALECT = "https://json-schema.org/draft/2020-12/schema"

# A version segment in the $id path: /v1/, /1.0/, kpi-v2.json, kpi.v1.schema.json ...
_VERSIONED = re.compile(r"(?:^|[/_.-])v?\d+(?:\.\d+)*(?=[/_.-]|$)")


def load_schema(name: str) -> dict[str, Any]:
    """The schema ``name`` (e.g. ``"kpi.schema.json"``) from :mod:`kpiforge.schemas`.

    Returns a copy: callers derive schemas from it, and the cached original must stay intact.
    """
    return copy.deepcopy(_read_schema(name))


def _retrieve(uri: str) -> Resource:
    """Refuse every URI not in the registry: schemas are never fetched over the network."""
    # positional, as mypy knows no attrs fields of referencing's classes (see _registry);
    # ``ref`` is NoSuchResource's only one
    raise NoSuchResource(uri)


@functools.lru_cache(maxsize=1)
def _registry() -> Registry:
    resources = []
    for name in schema_names():
        schema = _read_schema(name)
        if isinstance(schema.get("$id"), str):
            resource = Resource.from_contents(schema, default_specification=DRAFT202012)
            resources.append((schema["$id"], resource))
    # referencing's stub declares its attrs classes with a pre-PEP 681 __dataclass_transform__
    # that mypy does not read, so it knows no ``retrieve`` field
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
    explainer = Explainer(document, base)
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
        problems.append(f"invalid draft 2020-12 schema at {where}: {shorten(exc.message, 200)}")
        return problems
    schema_id = schema.get("$id")
    if not isinstance(schema_id, str) or not _is_versioned_uri(schema_id):
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


def _is_versioned_uri(text: str) -> bool:
    parts = urlsplit(text)
    return bool(parts.scheme) and _VERSIONED.search(parts.path) is not None


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
