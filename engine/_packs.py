"""Definition packs: what ``kpiforge_register_packs`` registers, checked before it is kept.

A pack is a folder of definitions with a ``namespace:name``, a version and an owner. The host
checks every argument when ``register`` is called, so a broken pack is one plugin failure
naming the plugin, never a confusing error later when some project names the pack.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import PluginError

__all__ = ["PACK_NAME", "RESERVED_NAMESPACE", "Pack", "checked_pack"]

# namespace:name, lower case; two characters at least before the colon so that every pack
# name is also a reference to _defpaths (which keeps "C:kpis" a Windows path)
PACK_NAME = re.compile(r"^[a-z][a-z0-9_-]+:[a-z][a-z0-9_-]*\Z")
# digits first, then what PEP 440 and semantic versions put after them (1.2.0, 2.0.0rc1, 1.0+acme)
_VERSION = re.compile(r"^[0-9]+(\.[0-9]+)*[A-Za-z0-9.+_-]*\Z")
# a pack named kpiforge:... by a third party would read as shipped (and vouched for) by kpiforge
RESERVED_NAMESPACE = "kpiforge"


@dataclass(frozen=True, slots=True)
class Pack:
    """One registered pack. ``path`` is its folder on disk, resolved."""

    name: str
    path: Path
    version: str
    owner: str
    doc: str
    requires: tuple[str, ...] = ()


def _folder(plugin: str, name: str, files: Any) -> Path:
    """The folder ``files`` names: a path, or an importlib.resources folder that lies on disk
    (a pack inside a zip file cannot be walked like the folders ``-d`` takes)."""
    if isinstance(files, (str, os.PathLike)):
        path = Path(files)
        if not path.is_absolute():
            raise PluginError(f"plugin {plugin!r}: pack {name!r}: files must be an absolute path "
                              f"or an importlib.resources folder, got relative path {str(path)!r}")
    elif callable(getattr(files, "iterdir", None)) and callable(getattr(files, "is_dir", None)):
        path = Path(str(files))
    else:
        raise PluginError(f"plugin {plugin!r}: pack {name!r}: files must be a path or an "
                          f"importlib.resources folder, not {type(files).__name__}")
    if not path.is_dir():
        raise PluginError(f"plugin {plugin!r}: pack {name!r}: files {str(files)!r} is not a "
                          f"folder on disk")
    return path.resolve()


def checked_pack(plugin: str, name: Any, files: Any, version: Any, owner: Any, doc: Any,
                 requires: Any = (), *, builtin: bool = False) -> Pack:
    """The :class:`Pack` a plugin's ``register(...)`` call describes, or :class:`PluginError`
    saying which argument is wrong."""
    if not isinstance(name, str) or not PACK_NAME.match(name):
        raise PluginError(f"plugin {plugin!r} registered an invalid pack name {name!r} "
                          f"(expected namespace:name in lower case, such as acme:sales)")
    if name.split(":")[0] == RESERVED_NAMESPACE and not builtin:
        raise PluginError(f"plugin {plugin!r}: pack {name!r}: the namespace "
                          f"'{RESERVED_NAMESPACE}' is kept for the packs kpiforge ships")
    if not isinstance(version, str) or not _VERSION.match(version):
        raise PluginError(f"plugin {plugin!r}: pack {name!r}: version must be a string such as "
                          f"'1.2.0', got {version!r}")
    for label, value in (("owner", owner), ("doc", doc)):
        if not isinstance(value, str):
            raise PluginError(f"plugin {plugin!r}: pack {name!r}: {label} must be a string, "
                              f"got {type(value).__name__}")
    required = (requires,) if isinstance(requires, str) else tuple(requires)
    for other in required:
        if not isinstance(other, str) or not PACK_NAME.match(other) or other == name:
            raise PluginError(f"plugin {plugin!r}: pack {name!r}: requires must name other "
                              f"packs (namespace:name), got {other!r}")
    return Pack(name, _folder(plugin, name, files), version, owner, doc, required)
