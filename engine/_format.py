"""Human formatting of KPI values and statuses for tables (JSON output stays raw numbers)."""

from __future__ import annotations

import math
from typing import Any, Mapping

STATUS_STYLE = {
    "good": "bold green",
    "ok": "green",
    "warning": "bold yellow",
    "critical": "bold red",
    "unknown": "dim",
}


def format_value(value: float | None, unit: str, currency: str | None = None) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    if unit == "percent":
        return f"{value:,.2f} %"
    if unit == "currency":
        return f"{value:,.2f} {currency or ''}".rstrip()
    if unit == "seconds":
        return f"{value:,.0f} s" if abs(value) >= 100 else f"{value:,.1f} s"
    if unit == "count":
        return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.2f}"
    return f"{value:,.2f}"


def format_change(change_pct: float | None) -> str:
    if change_pct is None:
        return "—"
    arrow = "▲" if change_pct > 0 else "▼" if change_pct < 0 else "="
    return f"{arrow} {change_pct:+.1f} %"


def plural(count: int, word: str, many: str | None = None) -> str:
    """``1 KPI``, ``2 KPIs``, ``0 entries`` (with ``many="entries"``): every count message."""
    return f"{count} {word if count == 1 else many or word + 's'}"


def plain(value: Any) -> Any:
    """Frozen mappings and tuples of a definition as JSON-ready dicts and lists."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def show_value(key: str, value: Any) -> str:
    """One field of ``show`` as text: mappings one ``key: value`` per line, never a repr."""
    if key == "inputs":
        return "\n".join(f"{name}: {spec.get('description') or '-'}"
                         + (f" ({spec['unit']})" if spec.get("unit") else "")
                         + (f"; measure: {_measure(spec)}" if spec.get("agg") else "")
                         for name, spec in value.items())
    if key in ("fields", "parameters"):
        return "\n".join(f"{name}: {spec.get('description') or '-'}"
                          + (f" ({spec['unit']})" if spec.get("unit") else "")
                          + (f" default {spec['default']:g}" if "default" in spec else "")
                          + (f", one of {_inline([f'{v:g}' for v in spec['allowed']])}"
                             if spec.get("allowed") else "")
                          for name, spec in value.items())
    if key == "thresholds" and isinstance(value, Mapping) and "source" in value:
        levels = {k: v for k, v in value.items() if k != "source"}
        return "\n".join([show_value(key, levels)] + [f"source: {_source(s)}" for s in value["source"]])
    if isinstance(value, Mapping):
        return "\n".join(f"{k}: {_inline(v)}" for k, v in value.items())
    return _inline(value)


def _source(source: Mapping[str, Any]) -> str:
    said = source["kind"] + (f" ({', '.join(source['levels'])})" if source.get("levels") else "")
    said += f": {source['text']}" if source.get("text") else ""
    return said + (f" <{source['url']}>" if source.get("url") else "")


def _measure(spec: Mapping[str, Any]) -> str:
    text = spec["agg"] + (f" of {spec['field']}" if spec.get("field") else "")
    return text + (f" where {spec['where']}" if spec.get("where") else "")


def _inline(value: Any) -> str:
    if isinstance(value, Mapping):
        return ", ".join(f"{k}={_inline(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return ", ".join(_inline(v) for v in value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
