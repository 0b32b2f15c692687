"""What a source or sink type registration declares, checked when ``register`` is called:
its settings schema, its secret settings and its capabilities."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from . import hookspecs
from .errors import PluginError

__all__ = ["checked_type"]


def _secrets(plugin: str, kind: str, name: str, secrets: Any) -> Mapping[str, str] | None:
    if secrets is None:
        return None
    if isinstance(secrets, str):
        raise PluginError(f"plugin {plugin!r}: {kind} {name!r}: secrets must be a list of "
                          f"setting names or a mapping of name to kind, not a string")
    declared = dict(secrets) if isinstance(secrets, Mapping) else dict.fromkeys(secrets, "value")
    for setting, how in declared.items():
        if not isinstance(setting, str) or how not in hookspecs.SECRET_KINDS:
            raise PluginError(f"plugin {plugin!r}: {kind} {name!r}: secret {setting!r}: kind must "
                              f"be one of {', '.join(hookspecs.SECRET_KINDS)}, got {how!r}")
    return MappingProxyType(declared)


def checked_type(plugin: str, kind: str, name: str, settings_schema: Any, secrets: Any,
                  capabilities: Any, known_capabilities: tuple[str, ...],
                  builtin: bool = False) -> dict[str, Any]:
    """The extra fields of a type registration, or PluginError saying what is wrong."""
    from ._settings import check_settings_schema

    schema = None
    if settings_schema is not None:
        # a built-in's schema is checked against the metaschema by the tests, not at every start
        problems = check_settings_schema(kind, settings_schema, metaschema=not builtin)
        if problems:
            raise PluginError(f"plugin {plugin!r}: {kind} {name!r}: {'; '.join(problems)}")
        # a copy, so that a plugin changing its dict later changes nothing here; a built-in's
        # schemas are constants of kpiforge's own, and copying them was most of loading plugins
        schema = MappingProxyType(dict(settings_schema) if builtin
                                  else copy.deepcopy(dict(settings_schema)))
    caps = frozenset([capabilities] if isinstance(capabilities, str) else capabilities)
    unknown = sorted(str(c) for c in caps if c not in known_capabilities)
    if unknown:
        raise PluginError(f"plugin {plugin!r}: {kind} {name!r}: unknown capability "
                          f"{', '.join(map(repr, unknown))} (known: "
                          f"{', '.join(known_capabilities) or 'none'})")
    return {"settings_schema": schema, "secrets": _secrets(plugin, kind, name, secrets),
            "capabilities": caps}
