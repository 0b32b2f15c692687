"""The one ``${VAR}`` expander of source and sink settings.

``${NAME}`` is replaced by the environment variable NAME, and an unset NAME is an error naming
it. ``$${`` writes a literal ``${``; every other ``$`` stays as written, so SQL (PostgreSQL's
``$$`` quoting, DuckDB's ``$1``) and passwords with ``$$`` in them reach the plugin unchanged.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from .errors import UnsetVariable

__all__ = ["UnsetVariable", "expand", "references"]

_REF = re.compile(r"\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
KeyPath = tuple[str | int, ...]


def references(value: Any, path: KeyPath = ()) -> Iterator[tuple[KeyPath, str]]:
    """(key path, variable) for every ``${VAR}`` in strings, list items and mapping values."""
    if isinstance(value, str):
        for match in _REF.finditer(value):
            if match.group(1):
                yield path, match.group(1)
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from references(item, path + (key,))
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            yield from references(item, path + (i,))


def expand(value: Any, environ: Mapping[str, str], path: KeyPath = (),
           used: list[str] | None = None) -> Any:
    """``value`` with every ``${VAR}`` replaced; the values put in are appended to ``used``
    (they are secrets to mask). Raise :class:`UnsetVariable` on the first unset variable."""
    if isinstance(value, str):
        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name is None:
                return "${"
            if name not in environ:
                raise UnsetVariable(name, path)
            if used is not None:
                used.append(environ[name])
            return environ[name]
        return _REF.sub(replace, value)
    if isinstance(value, Mapping):
        return {k: expand(v, environ, path + (k,), used) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [expand(v, environ, path + (i,), used) for i, v in enumerate(value)]
    return value
