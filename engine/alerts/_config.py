"""Project-load checks of ``alerting:``, ``sinks:`` and ``routes:``, positioned in the file.

Without them a mistake in a sink (an unset ``${WEBHOOK_SECRET}``, a malformed URL, a route
naming ``opps``) would surface at send time, after every query has run. Here every sink is
built once, the way delivery builds it (constructed, never connected: sink factories must not
touch the network), and each problem becomes a :class:`Diagnostic` at its line in
``kpiforge.yaml``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping, Sequence

from .._model import AlertState
from .._yamlio import Document
from ..errors import Diagnostic, KpiforgeError, SinkError, did_you_mean
from ._delivery import RetryPolicy
from .. import _env
from ._routing import _DELIVERY_KEYS, _MATCH_FIELDS, SinkConfig, build_sink, expand_env
from ._rules import SEVERITIES, parse_duration

__all__ = ["check_alerting", "check_routes_against"]

_ALLOWED_VALUES = {
    "severity": SEVERITIES,
    "state": (str(AlertState.FIRING), str(AlertState.RESOLVED)),
    "status": ("good", "ok", "warning", "critical", "unknown"),
}
KeyPath = tuple[str | int, ...]


def _conceal(message: str, values: Sequence[str]) -> str:
    # A factory may quote a setting it refuses; a secret expanded into it must not be shown.
    for value in sorted(values, key=len, reverse=True):
        if value:
            message = message.replace(value, "***")
    return message


def check_alerting(document: Document, root: Path, sink_types: Mapping[str, Any],
                   environ: Mapping[str, str] | None = None,
                   dimensions: Sequence[str] = ()) -> list[Diagnostic]:
    """Every problem of the alerting keys of ``document``; sinks are built, not connected."""
    env = os.environ if environ is None else environ
    data = document.data if isinstance(document.data, Mapping) else {}
    out: list[Diagnostic] = []
    base = RetryPolicy()

    alerting = data.get("alerting")
    if isinstance(alerting, Mapping):
        if "repeat_interval" in alerting:
            try:
                parse_duration(alerting["repeat_interval"], field_name="repeat_interval")
            except KpiforgeError as exc:
                out.append(document.diagnostic(("alerting", "repeat_interval"), "alerting",
                                               str(exc).split(": ", 1)[-1]))
        base, problems = _policy(document, ("alerting",), alerting, base)
        out.extend(problems)

    sinks = data.get("sinks")
    names: list[str] = []
    if isinstance(sinks, Mapping):
        for name, raw in sinks.items():
            names.append(str(name))
            if isinstance(raw, Mapping):
                out.extend(_check_sink(document, root, sink_types, env, str(name), raw, base))

    routes = data.get("routes")
    if isinstance(routes, list):
        for i, route in enumerate(routes):
            if isinstance(route, Mapping):
                out.extend(_check_route(document, i, route, names, dimensions))
    return out


def _policy(document: Document, where: KeyPath, raw: Mapping[str, Any],
            base: RetryPolicy) -> tuple[RetryPolicy, list[Diagnostic]]:
    problems: list[Diagnostic] = []
    policy = base
    retry = raw.get("retry")
    if isinstance(retry, Mapping):
        for key, value in retry.items():
            try:
                policy = policy.override({key: value}, None, key=".".join(map(str, where)))
            except KpiforgeError as exc:
                problems.append(document.diagnostic(where + ("retry", key), "retry",
                                                    str(exc).split(": ", 1)[-1]))
    if "timeout" in raw:
        dotted = ".".join(map(str, where)) + ".timeout"
        try:
            policy = policy.override(None, raw["timeout"], key=dotted.removesuffix(".timeout"))
        except KpiforgeError as exc:
            message = str(exc).removeprefix(dotted).removeprefix(":").strip()
            problems.append(document.diagnostic(where + ("timeout",), "sink-settings", message))
    return policy, problems


def _check_sink(document: Document, root: Path, sink_types: Mapping[str, Any],
                env: Mapping[str, str], name: str, raw: Mapping[str, Any],
                base: RetryPolicy) -> list[Diagnostic]:
    where: KeyPath = ("sinks", name)
    kind = raw.get("type")
    if not isinstance(kind, str):
        return []  # the schema reports it
    if kind not in sink_types:
        known = ", ".join(sorted(sink_types)) or "none"
        return [document.diagnostic(where + ("type",), "sink-type",
                                    f"unknown sink type '{kind}'{did_you_mean(kind, sink_types)}; "
                                    f"registered types: {known}")]
    policy, problems = _policy(document, where, raw, base)
    settings = {k: v for k, v in raw.items() if k not in _DELIVERY_KEYS}
    secrets = []
    for path, variable in _env.references(settings, where):
        if variable not in env:
            problems.append(document.diagnostic(
                path, "env", f"environment variable {variable} is not set "
                             f"(referenced as ${{{variable}}})"))
        else:
            secrets.append(env[variable])
    if problems:
        return problems
    expanded = expand_env(settings, f"sinks.{name}", env)
    expanded["timeout"] = policy.timeout
    try:
        build_sink(SinkConfig(name, kind, expanded, policy, expanded=tuple(secrets)), sink_types, root)
    except SinkError as exc:
        cause = exc.__cause__ if isinstance(exc.__cause__, SinkError) else exc
        setting = getattr(cause, "setting", None)
        message = str(cause) if cause is not exc else str(exc).removeprefix(f"sinks.{name}: ")
        path = where + (setting,) if isinstance(setting, str) and setting in raw else where
        if isinstance(setting, str):
            message = message.removeprefix(f"{setting}: ")  # the diagnostic names the field
        problems.append(document.diagnostic(path, "sink-settings", _conceal(message, secrets)))
    return problems


def _check_route(document: Document, i: int, route: Mapping[str, Any], names: Sequence[str],
                 dimensions: Sequence[str]) -> list[Diagnostic]:
    where: KeyPath = ("routes", i)
    out: list[Diagnostic] = []
    sinks = route.get("sinks")
    if isinstance(sinks, list):
        for j, sink in enumerate(sinks):
            if isinstance(sink, str) and sink not in names:
                defined = ", ".join(names) or "none"
                out.append(document.diagnostic(
                    where + ("sinks", j), "unknown-sink",
                    f"route names sink '{sink}' which is not defined under sinks"
                    f"{did_you_mean(sink, names)} (defined: {defined})"))
    match = route.get("match")
    if not isinstance(match, Mapping):
        return out
    known = [*_MATCH_FIELDS, "labels", *dimensions]
    for key, wanted in match.items():
        if key in _ALLOWED_VALUES:
            allowed = _ALLOWED_VALUES[key]
            values = wanted if isinstance(wanted, list) else [wanted]
            for k, value in enumerate(values):
                if isinstance(value, str) and value not in allowed:
                    path = where + ("match", key) + ((k,) if isinstance(wanted, list) else ())
                    out.append(document.diagnostic(
                        path, "route-match",
                        f"{key} is never '{value}'{did_you_mean(value, allowed)}; "
                        f"it is one of {', '.join(allowed)}"))
        elif key not in known:
            # Any other key matches an alert label, which only the KPI files declare; a key
            # one letter away from a field or a dimension is a typo, not a label.
            hint = did_you_mean(key, known)
            if hint:
                out.append(document.diagnostic(
                    where + ("match", key), "route-match",
                    f"'{key}' is not an alert field or a dimension{hint}; a route matches on "
                    f"{', '.join(_MATCH_FIELDS)}, a source dimension, or an alert label",
                    at_key=True))
    return out


def check_routes_against(document: Document, definitions: Mapping[str, Any],
                         dimensions: Sequence[str] = ()) -> list[Diagnostic]:
    """Route matchers against the loaded KPIs: ids, categories, owners and alert labels.

    Run once the definitions are loaded (before any query): a matcher naming a label no KPI
    declares, or a KPI, category or owner no definition has, would never match anything.
    """
    data = document.data if isinstance(document.data, Mapping) else {}
    routes = data.get("routes")
    if not isinstance(routes, list):
        return []
    defs = list(definitions.values())
    labels = sorted({str(k) for d in defs for k in ((getattr(d, "alerts", None) or {}).get("labels") or {})})
    known_values = {
        "kpi": sorted(definitions),
        "category": sorted({d.category for d in defs if getattr(d, "category", None)}),
        "owner": sorted({d.owner for d in defs if getattr(d, "owner", None)}),
    }
    fields = [*_MATCH_FIELDS, "labels", *dimensions]
    out: list[Diagnostic] = []
    for i, route in enumerate(routes):
        match = route.get("match") if isinstance(route, Mapping) else None
        if not isinstance(match, Mapping):
            continue
        where: KeyPath = ("routes", i, "match")
        for key, wanted in match.items():
            if key == "labels" and isinstance(wanted, Mapping):
                for label in wanted:
                    if label not in labels:
                        out.append(document.diagnostic(
                            where + ("labels", label), "route-match",
                            f"no KPI's alerts declare the label '{label}'"
                            f"{did_you_mean(label, labels)}", at_key=True))
            elif key in known_values:
                values = wanted if isinstance(wanted, list) else [wanted]
                for k, value in enumerate(values):
                    if str(value) not in known_values[key]:
                        path = where + (key,) + ((k,) if isinstance(wanted, list) else ())
                        out.append(document.diagnostic(
                            path, "route-match", f"no KPI has {key} '{value}'"
                                                 f"{did_you_mean(str(value), known_values[key])}"))
            elif key not in fields and key not in labels:
                out.append(document.diagnostic(
                    where + (key,), "route-match",
                    f"'{key}' is not an alert field, a source dimension or a label any KPI's "
                    f"alerts declare{did_you_mean(key, [*fields, *labels])}", at_key=True))
    return out
