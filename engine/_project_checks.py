"""The checks of a project file that a JSON schema cannot express.

The time zone exists, each ``definitions`` item resolves to a path that exists, each source
type is registered by a plugin, an input names a ``column`` or an ``expression`` (not both), no
input is provided by two sources, every ``${VAR}`` in a source's settings names a set
environment variable, and every sink of ``alerting``/``sinks``/``routes`` can be built.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping

from . import _env
from ._defpaths import resolve_definition_path, unknown_reference, with_required_packs
from ._periods import zone
from ._plugins import Plugins
from ._project_sources import CORE_KEYS, DATA_KEY
from ._yamlio import Document, KeyPath, field_name
from .errors import Diagnostic, PeriodError, did_you_mean

__all__ = ["check_alerting_settings", "check_values", "definition_path"]


def check_alerting_settings(document: Document, root: Path, plugins: Plugins,
                    environ: Mapping[str, str] | None) -> list[Diagnostic]:
    """``alerting``/``sinks``/``routes``: every sink is built now, not after the queries."""
    data = document.data
    if not any(key in data for key in ("alerting", "sinks", "routes")):
        return []
    from .alerts._config import check_alerting

    sources = data.get("sources")
    dimensions = [d for spec in (sources.values() if isinstance(sources, dict) else ())
                  if isinstance(spec, dict) and isinstance(spec.get("dimensions"), list)
                  for d in spec["dimensions"] if isinstance(d, str)]
    return check_alerting(document, root, plugins.sink_types, environ, dimensions)


def definition_path(root: Path, item: str, plugins: Plugins) -> Path:
    """A ``definitions`` item as a path: packs (``kpiforge:standard``) resolve as everywhere
    else, other items relative to the project's folder."""
    path = resolve_definition_path(item, root, plugins.definition_packs())
    if path is None:  # check_values reported it; the project is not built
        raise ValueError(item)
    return path


def check_values(document: Document, root: Path, plugins: Plugins,
           environ: Mapping[str, str] | None) -> list[Diagnostic]:
    """The checks a JSON schema cannot express; run on whatever is well-formed enough."""
    data = document.data
    out: list[Diagnostic] = []
    env = os.environ if environ is None else environ

    tz = data.get("timezone")
    if isinstance(tz, str):
        try:
            zone(tz)
        except PeriodError:
            out.append(document.diagnostic(("timezone",), "timezone", f"unknown time zone '{tz}' "
                                           "(use an IANA name such as Europe/Paris or UTC)"))

    raw_definitions = data.get("definitions")
    listed = [raw_definitions] if isinstance(raw_definitions, str) else raw_definitions
    if isinstance(listed, list):
        for i, item in enumerate(listed):
            where: KeyPath = ("definitions",) if isinstance(raw_definitions, str) else ("definitions", i)
            if not isinstance(item, str):
                continue
            if resolve_definition_path(item, root, plugins.definition_packs()) is None:
                out.append(document.diagnostic(where, "unknown-reference",
                                               unknown_reference(item, plugins.definition_packs())))
            elif not definition_path(root, item, plugins).exists():
                out.append(document.diagnostic(where, "path", f"'{item}' does not exist "
                                               f"(paths are relative to {root})"))
            for required in with_required_packs([item], plugins.definition_packs())[:-1]:
                if resolve_definition_path(str(required), root, plugins.definition_packs()) is None:
                    out.append(document.diagnostic(where, "unknown-reference", f"'{item}' requires "
                               + unknown_reference(str(required), plugins.definition_packs())))

    sources = data.get("sources")
    if not isinstance(sources, dict):
        return out
    types = plugins.source_types
    provided_by: dict[str, str] = {}
    for name, spec in sources.items():
        if not isinstance(spec, dict):
            continue
        base = ("sources", name)
        kind = spec.get("type")
        if isinstance(kind, str) and kind not in types:
            known = ", ".join(sorted(types)) or "none"
            out.append(document.diagnostic(base + ("type",), "source-type",
                                           f"unknown source type '{kind}'{did_you_mean(kind, types)}; "
                                           f"registered types: {known}"))
        takes_data = isinstance(kind, str) and kind in types and "data" in types[kind].capabilities
        for key in spec:
            if key in CORE_KEYS or (takes_data and key == DATA_KEY):
                continue
            for sub, variable in _env.references(spec[key], (key,)):
                if variable not in env:
                    out.append(document.diagnostic(
                        base + sub, "env",
                        f"environment variable {variable} is not set (referenced as ${{{variable}}})"))
        inputs = spec.get("inputs")
        if not isinstance(inputs, dict):
            continue
        for input_name, input_spec in inputs.items():
            where = base + ("inputs", input_name)
            if isinstance(input_spec, dict) and "column" in input_spec and "expression" in input_spec:
                out.append(document.diagnostic(where, "input", "set 'column' or 'expression', not both"))
            if isinstance(input_spec, dict) and input_spec.get("column") == "*" and input_spec.get("agg") != "count":
                out.append(document.diagnostic(where + ("column",), "input",
                                               "column '*' (count rows) only works with agg: count"))
            only = input_spec.get("for") if isinstance(input_spec, dict) else None
            # an input bound for some KPIs only is keyed input@kpi: one binding per KPI
            keys = [f"{input_name}@{k}" for k in only] if isinstance(only, list) else [input_name]
            for key in keys:
                other = provided_by.get(key)
                if other is not None:
                    for_kpi = f" for {key.partition('@')[2]}" if "@" in key else ""
                    out.append(Diagnostic(document.path, *document.key_position(where),
                                          "duplicate-input",
                                          f"input '{input_name}'{for_kpi} is provided by both "
                                          f"source '{other}' and source '{name}'",
                                          field=field_name(where)))
                else:
                    provided_by[key] = name
    return out
