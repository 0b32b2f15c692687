"""Human formatting of KPI values and statuses for tables (JSON output stays raw numbers)."""

from __future__ import annotations

import math

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
