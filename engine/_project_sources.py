"""The ``sources:`` of a project file as :class:`SourceConfig` objects, and the settings a
source factory receives from one.

A config holds what was written, ``${VAR}`` unexpanded and read-only; the environment is read
only by :func:`factory_settings`, when the source is built.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

from . import _env
from ._plugins import Plugins
from ._settings import core_keys
from .sources import InputSpec
from ._yamlio import Document
from .errors import SourceError

__all__ = ["CORE_KEYS", "DATA_KEY", "EMPTY", "SourceConfig", "factory_settings", "freeze",
           "source_configs", "thaw"]

# what the core reads in a source; the rest is the type's settings (where ${VAR} expands)
CORE_KEYS = core_keys("source")
DATA_KEY = "data"  # the table of a source type with the "data" capability
EMPTY: Mapping[str, Any] = MappingProxyType({})
_NO_LINES: Mapping[tuple[Any, ...], int] = MappingProxyType({})


def freeze(value: Any) -> Any:
    """``value`` read-only: mappings as mapping proxies, lists as tuples, all the way down."""
    if isinstance(value, Mapping):
        return MappingProxyType({k: freeze(v) for k, v in value.items()})
    if isinstance(value, list):
        return tuple(freeze(v) for v in value)
    return value


def thaw(value: Any) -> Any:
    """A plain, mutable copy of a :func:`freeze`\\ d value."""
    if isinstance(value, Mapping):
        return {k: thaw(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [thaw(v) for v in value]
    return value


@dataclass(frozen=True)
class SourceConfig:
    """One entry of ``sources:``. ``settings`` is everything written for it, unexpanded."""

    name: str
    type: str
    time: str
    dimensions: tuple[str, ...]
    inputs: Mapping[str, InputSpec]
    settings: Mapping[str, Any] = field(default_factory=lambda: EMPTY)
    line: int = 0
    # where each setting was written (``("inputs", "cost", "column")`` -> line), for data errors
    lines: Mapping[tuple[Any, ...], int] = field(default_factory=lambda: _NO_LINES, repr=False)
    file: str = ""
    # inputs listed without an aggregation: a definition defines their measure (``Project``
    # binds them when its engine loads, see ``_measures``)
    unbound: tuple[str, ...] = ()

    @property
    def fields(self) -> Mapping[str, str]:
        """Definition fields bound to this source's columns (``fields: {score: likelihood}``)."""
        return self.settings.get("fields") or EMPTY

    @property
    def provides(self) -> tuple[str, ...]:
        """Every input the source provides, bound or not."""
        return (*self.inputs, *self.unbound)

    @property
    def grain(self) -> str | None:
        """The native time grain of the rows (``grain:``), None when not declared."""
        # read from settings, not a field: the core keys are kept there unexpanded already
        grain = self.settings.get("grain")
        return str(grain) if grain is not None else None

    @property
    def keys(self) -> tuple[str, ...]:
        """The dimensions that key the rows (``keys:``): a non-additive input is per key."""
        return tuple(self.settings.get("keys") or ())

    def line_of(self, path: tuple[Any, ...]) -> int:
        """The line of ``path`` or of its nearest written ancestor (0: not from a file)."""
        key = tuple(path)
        while key and key not in self.lines:
            key = key[:-1]
        return self.lines.get(key, self.line)


def source_configs(document: Document, plugins: Plugins,
                   path: Path | None) -> tuple[dict[str, SourceConfig], dict[str, Any]]:
    """The checked ``sources:`` of ``document`` as configs, and the rows written under
    ``data`` of a source whose type takes in-memory data (the table, not a setting)."""
    sources = {}
    inline: dict[str, Any] = {}
    for name, spec in (document.data.get("sources") or {}).items():
        inputs = {inp: InputSpec.from_settings(inp, s) for inp, s in spec["inputs"].items()
                  if (s or {}).get("agg") is not None}
        unbound = tuple(inp for inp, s in spec["inputs"].items() if (s or {}).get("agg") is None)
        settings = {k: v for k, v in spec.items() if k not in ("time", "dimensions", "inputs")}
        registration = plugins.source_types.get(spec["type"])
        if registration is not None and "data" in registration.capabilities and DATA_KEY in settings:
            inline[name] = settings.pop(DATA_KEY)  # rows written in the file: the table, not a setting
        base = ("sources", name)
        lines = {key[2:]: at[0] for key, at in document.positions.items() if key[:2] == base}
        for i, dim in enumerate(spec.get("dimensions") or ()):
            if ("dimensions", i) in lines:
                lines[("dimensions", dim)] = lines[("dimensions", i)]
        sources[name] = SourceConfig(
            name, spec["type"], spec["time"], tuple(spec.get("dimensions") or ()),
            MappingProxyType(inputs), freeze(settings), document.position(base)[0],
            MappingProxyType(lines) if path is not None else _NO_LINES,
            document.path if path is not None else "", unbound)
    return sources, inline


def factory_settings(config: SourceConfig, environ: Mapping[str, str] | None = None, *,
                     expanded: list[str] | None = None) -> dict[str, Any]:
    """The settings handed to the source factory, with ``${VAR}`` expanded in the type's own
    settings; the values put in are appended to ``expanded`` (secrets to mask)."""
    settings = thaw(config.settings)
    env = os.environ if environ is None else environ
    for key in settings:
        if key in CORE_KEYS:
            continue
        try:
            settings[key] = _env.expand(settings[key], env, (key,), expanded)
        except _env.UnsetVariable as exc:
            raise SourceError(f"source '{config.name}': {key}: {exc}") from None
    settings["time"] = config.time
    settings["dimensions"] = list(config.dimensions)
    settings["inputs"] = dict(config.inputs)
    return settings
