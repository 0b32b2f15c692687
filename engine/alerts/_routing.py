"""``sinks:`` and ``routes:`` of ``kpiforge.yaml``: validation, ``${ENV}`` secrets, matching.

Configuration mistakes that make routing meaningless (an unknown sink type, a route naming a
sink that does not exist, a malformed route) raise one :class:`ProjectError` listing every
problem with its file key. A problem confined to one sink (a secret whose environment variable
is not set, a factory refusing its settings, an optional dependency missing) only breaks that
sink: its messages wait in the outbox with the error, and the other sinks still deliver.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from .. import _env
from .._redact import redact_text, secret_values
from ..errors import (AlertConfigError, Diagnostic, KpiforgeError, ProjectError, SinkError,
                      did_you_mean)
from ..hookspecs import SinkContext
from ._delivery import RetryPolicy

__all__ = ["Route", "SinkConfig", "build_sink", "expand_env", "parse_routes", "parse_sinks",
           "route_alert"]

_MATCH_FIELDS = ("kpi", "category", "owner", "severity", "state", "status")
_ROUTE_KEYS = {"match", "sinks", "continue"}
# Keys the engine reads itself; they never reach a sink factory except ``timeout`` (seconds).
_DELIVERY_KEYS = {"type", "retry"}


@dataclass
class SinkConfig:
    name: str
    type: str
    settings: dict[str, Any]
    policy: RetryPolicy
    error: str | None = None  # set when the sink cannot work (e.g. missing secret)
    expanded: tuple[str, ...] = ()  # the values ${VAR} references put in: secrets


@dataclass(frozen=True)
class Route:
    match: Mapping[str, tuple[str, ...]]
    sinks: tuple[str, ...]
    continue_: bool = False

    def matches(self, attributes: Mapping[str, str]) -> bool:
        return all(attributes.get(key) in allowed for key, allowed in self.match.items())


@dataclass
class _Problems:
    source: str
    items: list[Diagnostic] = field(default_factory=list)

    def add(self, key: str, code: str, message: str) -> None:
        self.items.append(Diagnostic(self.source, 0, 0, code, message, field=key))

    def raise_if_any(self) -> None:
        if self.items:
            raise ProjectError(self.items)


def expand_env(value: Any, key: str, environ: Mapping[str, str],
               used: list[str] | None = None) -> Any:
    """``value`` with every ``${NAME}`` replaced (see :mod:`kpiforge._env`); an unset NAME is
    an error naming the setting ``key`` it is in."""
    try:
        return _env.expand(value, environ, (), used)
    except _env.UnsetVariable as exc:
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in exc.path)
        raise AlertConfigError(f"{key}{where}: {exc}", field=f"{key}{where}") from None


def parse_sinks(config: Mapping[str, Any] | None, sink_types: Mapping[str, Any], *,
                base_policy: RetryPolicy, source: str = "kpiforge.yaml",
                environ: Mapping[str, str] | None = None) -> dict[str, SinkConfig]:
    environ = os.environ if environ is None else environ
    problems = _Problems(source)
    sinks: dict[str, SinkConfig] = {}
    if config is None:
        return sinks
    if not isinstance(config, Mapping):
        problems.add("sinks", "sinks", "expected a mapping of sink name to settings")
        problems.raise_if_any()
    for name, raw in config.items():
        key = f"sinks.{name}"
        if not isinstance(raw, Mapping):
            problems.add(key, "sink", "expected a mapping with at least 'type'")
            continue
        type_name = raw.get("type")
        if not isinstance(type_name, str) or not type_name:
            problems.add(f"{key}.type", "sink-type", "missing sink type")
            continue
        if type_name not in sink_types:
            known = ", ".join(sorted(sink_types)) or "none"
            problems.add(f"{key}.type", "unknown-sink-type",
                         f"unknown sink type '{type_name}'{did_you_mean(type_name, sink_types)}"
                         f" (known: {known})")
            continue
        try:
            policy = base_policy.override(raw.get("retry"), raw.get("timeout"), key=key)
        except KpiforgeError as exc:
            problems.add(key, "sink-retry", str(exc))
            continue
        error = None
        used: list[str] = []
        try:
            settings = expand_env({k: v for k, v in raw.items() if k not in _DELIVERY_KEYS},
                                  key, environ, used)
        except KpiforgeError as exc:
            settings, error = {}, str(exc)
        settings["timeout"] = policy.timeout
        sinks[str(name)] = SinkConfig(str(name), type_name, settings, policy, error, tuple(used))
    problems.raise_if_any()
    return sinks


def parse_routes(config: Sequence[Any] | None, sink_names: Sequence[str], *,
                 source: str = "kpiforge.yaml") -> list[Route] | None:
    """The routes, or None when there are none (then every alert goes to every sink)."""
    if config is None or (isinstance(config, (list, tuple)) and not config):
        return None
    problems = _Problems(source)
    if not isinstance(config, (list, tuple)):
        problems.add("routes", "routes", "expected a list of routes")
        problems.raise_if_any()
    routes: list[Route] = []
    for i, raw in enumerate(config):
        key = f"routes[{i}]"
        if not isinstance(raw, Mapping):
            problems.add(key, "route", "expected a mapping with 'sinks' and optional 'match'")
            continue
        for extra in sorted(set(raw) - _ROUTE_KEYS):
            problems.add(f"{key}.{extra}", "route-key",
                         f"unknown route key '{extra}' (expected match, sinks, continue)")
        match: dict[str, tuple[str, ...]] = {}
        raw_match = raw.get("match") or {}
        if not isinstance(raw_match, Mapping):
            problems.add(f"{key}.match", "route-match", "expected a mapping")
            raw_match = {}
        for field_name, wanted in raw_match.items():
            if field_name == "labels" and isinstance(wanted, Mapping):
                for label, value in wanted.items():
                    match[str(label)] = _values(value, f"{key}.match.labels.{label}", problems)
            else:
                match[str(field_name)] = _values(wanted, f"{key}.match.{field_name}", problems)
        names = raw.get("sinks")
        if isinstance(names, str):
            names = [names]
        if not isinstance(names, (list, tuple)) or not names:
            problems.add(f"{key}.sinks", "route-sinks", "expected a non-empty list of sink names")
            names = []
        for j, sink in enumerate(names):
            if sink not in sink_names:
                known = ", ".join(sorted(sink_names)) or "none defined"
                problems.add(f"{key}.sinks[{j}]", "unknown-sink",
                             f"route names sink '{sink}' which is not defined under sinks"
                             f"{did_you_mean(sink, sink_names)} (defined: {known})")
        cont = raw.get("continue", False)
        if not isinstance(cont, bool):
            problems.add(f"{key}.continue", "route-continue", "expected true or false")
            cont = False
        routes.append(Route(match, tuple(str(s) for s in names), cont))
    problems.raise_if_any()
    return routes


def _values(value: Any, key: str, problems: _Problems) -> tuple[str, ...]:
    items = value if isinstance(value, (list, tuple)) else [value]
    out = []
    for item in items:
        if isinstance(item, (str, int, float)) and not isinstance(item, bool):
            out.append(str(item))
        else:
            problems.add(key, "route-match", f"expected a string or a list of strings, got {item!r}")
    return tuple(out)


def route_alert(attributes: Mapping[str, str], routes: list[Route] | None,
                all_sinks: Sequence[str]) -> list[str]:
    """Sink names for one alert, like Alertmanager: first matching route wins unless ``continue``."""
    if routes is None:
        return list(all_sinks)
    chosen: list[str] = []
    for route in routes:
        if route.matches(attributes):
            chosen.extend(s for s in route.sinks if s not in chosen)
            if not route.continue_:
                break
    return chosen


def build_sink(config: SinkConfig, sink_types: Mapping[str, Any], project_dir: Path) -> Any:
    """Instantiate one sink; any failure becomes a :class:`SinkError` naming the sink.

    The sink is returned wrapped so that no error it raises carries one of its secret
    settings (see :mod:`kpiforge._redact`): those texts are printed and stored in state.db.
    """
    if config.error:
        raise SinkError(config.error)
    registration = sink_types[config.type]
    factory = getattr(registration, "obj", registration)
    secrets = secret_values(getattr(registration, "secrets", None), config.settings, config.expanded)
    context = SinkContext(project_dir=Path(project_dir))
    try:
        return _RedactingSink(factory(config.name, dict(config.settings), context), secrets)
    except SinkError as exc:
        raise SinkError(redact_text(f"sinks.{config.name}: {exc}", secrets),
                        retryable=exc.retryable, setting=exc.setting) from None
    except KpiforgeError as exc:
        raise SinkError(redact_text(f"sinks.{config.name}: {exc}", secrets)) from None
    except Exception as exc:  # a third-party factory must not break delivery to the others
        raise SinkError(redact_text(f"sinks.{config.name}: {type(exc).__name__}: {exc}",
                                    secrets)) from None


class _RedactingSink:
    """A sink whose errors are :class:`SinkError` texts without the sink's secrets."""

    def __init__(self, sink: Any, secrets: Sequence[str]):
        self.sink = sink
        self._secrets = tuple(secrets)

    def send(self, alert: Any) -> None:
        try:
            self.sink.send(alert)
        except SinkError as exc:
            raise SinkError(redact_text(str(exc), self._secrets), retryable=exc.retryable,
                            retry_after=exc.retry_after) from None
        except Exception as exc:  # noqa: BLE001 - translated: maybe transient, so retryable
            raise SinkError(redact_text(f"{type(exc).__name__}: {exc}", self._secrets),
                            retryable=True) from None
