"""The JSON schemas shipped in ``kpiforge.schemas``, read once and shared.

Apart from :mod:`._schema` so that reading a schema (the keys the core reads in a source or a
sink, when plugins register their types) does not import jsonschema: loading plugins is part of
every command, ``--help`` included.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from typing import Any

from ._defpaths import package_folder

__all__ = ["SCHEMA_PACKAGE", "read_schema", "schema_names"]

SCHEMA_PACKAGE = "kpiforge.schemas"


@functools.lru_cache(maxsize=1)
def _root() -> Any:
    return package_folder(SCHEMA_PACKAGE)


def schema_names() -> list[str]:
    """File names of the JSON schemas shipped in :mod:`kpiforge.schemas`, sorted."""
    root = _root()
    return sorted(entry.name for entry in root.iterdir() if entry.name.endswith(".json") and entry.is_file())


@functools.lru_cache(maxsize=None)
def _read_schema(name: str) -> dict[str, Any]:
    if "/" in name or "\\" in name or not name.endswith(".json"):
        raise ValueError(f"not a schema file name: {name!r}")
    entry = _root().joinpath(name)
    if not entry.is_file():
        raise LookupError(f"no schema named {name!r} (have: {', '.join(schema_names()) or 'none'})")
    schema = json.loads(entry.read_text(encoding="utf-8"))
    if not isinstance(schema, dict):
        raise ValueError(f"schema {name!r} is not a JSON object")
    return schema


def read_schema(name: str) -> Mapping[str, Any]:
    """The schema ``name`` itself, cached and shared: read it, never change it (no copy made,
    unlike :func:`load_schema`)."""
    return _read_schema(name)
