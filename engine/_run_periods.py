"""The periods of a run: those asked for, those they are compared with, and the day ranges
the sources are queried over."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any, Iterable, Mapping, Sequence

from ._periods import Period, finer, parse_date, parse_period, period_of, periods_between
from ._run_plan import RunProject
from ._run_sources import latest_day
from .errors import PeriodError, RunError

__all__ = ["day_ranges", "select_periods", "shift_periods"]


def _as_date(value: Any, what: str) -> date:
    if isinstance(value, datetime):  # a date too (as is a pandas Timestamp): keep its day
        return value.date()
    if isinstance(value, date):
        return value
    try:
        return parse_date(str(value))
    except PeriodError:
        raise RunError(f"{what}: {value} is not a date (YYYY-MM-DD)") from None


def select_periods(project: RunProject, sources: Mapping[str, Any], grain: str | None,
                   period: str | None, start: Any, end: Any, last: int | None,
                   ws: int) -> tuple[str, list[Period]]:
    """The grain and the periods to compute ([] when the sources have no data at all)."""
    if period is not None:
        try:
            chosen = parse_period(str(period), ws)
        except PeriodError as exc:
            raise RunError(str(exc)) from None
        grain = grain or chosen.grain
        if finer(chosen.grain, grain):
            raise RunError(f"period {chosen.label} is a {chosen.grain}, shorter than the grain "
                           f"'{grain}'; use a longer period or a finer grain")
        return grain, periods_between(chosen.start, chosen.end - timedelta(days=1), grain, ws)
    grain = grain or "month"
    if start is not None or end is not None:
        if start is None:
            raise RunError("an end date needs a start date")
        first = _as_date(start, "--from")
        if end is not None:
            final = _as_date(end, "--to")
        else:
            latest = latest_day(project, sources)
            if latest is None:
                return grain, []
            final = latest
        if final < first:
            raise RunError(f"the end date {final} is before the start date {first}")
        return grain, periods_between(first, final, grain, ws)
    latest = latest_day(project, sources)
    if latest is None:
        return grain, []
    newest = period_of(latest, grain, ws)
    count = last or 1
    return grain, [newest.shift(i - count + 1) for i in range(count)]


def shift_periods(current: Sequence[Period],
                  modes: Sequence[str]) -> dict[str, dict[Period, Period]]:
    """For each comparison mode, the period each current period is compared with."""
    return {mode: {p: (p.previous() if mode == "previous" else p.year_before()) for p in current}
            for mode in modes}


def day_ranges(periods: Iterable[Period]) -> tuple[tuple[date, date], ...]:
    """Contiguous periods merged into [start, end) day ranges."""
    ranges: list[list[date]] = []
    for period in sorted(set(periods)):
        if ranges and ranges[-1][1] >= period.start:
            ranges[-1][1] = max(ranges[-1][1], period.end)
        else:
            ranges.append([period.start, period.end])
    return tuple((a, b) for a, b in ranges)
