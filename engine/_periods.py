"""Calendar periods: grains, labels, ranges, ``--period`` parsing, week starts, time zones.

A period is identified by its grain and its first local day (``date``). Periods are always
whole: a range given by dates selects every period that overlaps it, and each is computed over
its full length, so a value and the value it is compared with always cover the same span.

Labels are stable strings: ``2026-10-14`` (day), ``2026-W43`` (week), ``2026-10`` (month),
``2026-Q4`` (quarter), ``2026`` (year). Weeks are ISO weeks by default (Monday start, week 1 is
the week holding January 4th). With another week start the same rule applies to the shifted
week: week 1 is the week holding January 4th, and a week belongs to the year of its fourth day,
so Monday-start labels are exactly ISO's.

Times are local to the project time zone: a naive timestamp is read as local time, an aware
one is converted, and a period starts at local midnight of its first day.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import TYPE_CHECKING, Iterator

from .errors import PeriodError

if TYPE_CHECKING:  # zoneinfo is imported when a zone is named: --help needs only GRAINS
    from zoneinfo import ZoneInfo

__all__ = [
    "GRAINS",
    "WEEKDAYS",
    "Period",
    "PeriodError",
    "parse_date",
    "parse_period",
    "period_of",
    "periods_between",
    "utc_offset_changes",
    "week_start_index",
    "zone",
]

GRAINS: tuple[str, ...] = ("day", "week", "month", "quarter", "year")
WEEKDAYS: tuple[str, ...] = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday",
                             "sunday")
# how many days a grain spans at most; used to order grains ("is a week finer than a month?")
_SPAN = {"day": 1, "week": 7, "month": 31, "quarter": 92, "year": 366}

_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("day", re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")),
    ("week", re.compile(r"^(\d{4})-W(\d{2})$")),
    ("month", re.compile(r"^(\d{4})-(\d{2})$")),
    ("quarter", re.compile(r"^(\d{4})-Q([1-4])$")),
    ("year", re.compile(r"^(\d{4})$")),
)


def week_start_index(week_start: str | int | None) -> int:
    """0 for Monday ... 6 for Sunday; ``None`` means ISO (Monday)."""
    if week_start is None:
        return 0
    if isinstance(week_start, int):
        if not 0 <= week_start <= 6:
            raise PeriodError(f"week start must be 0 (Monday) to 6 (Sunday), got {week_start}")
        return week_start
    try:
        return WEEKDAYS.index(week_start.lower())
    except ValueError:
        raise PeriodError(f"unknown week start {week_start!r}; use one of {', '.join(WEEKDAYS)}") from None


def zone(name: str) -> ZoneInfo:
    """The IANA time zone ``name``; :class:`PeriodError` if the tz database does not know it."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise PeriodError(f"unknown time zone {name!r}") from exc


def check_grain(grain: str) -> str:
    if grain not in GRAINS:
        raise PeriodError(f"unknown grain {grain!r}; use one of {', '.join(GRAINS)}")
    return grain


def finer(a: str, b: str) -> bool:
    """Whether grain ``a`` is strictly finer than grain ``b``."""
    return _SPAN[a] < _SPAN[b]


def _add_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    # the month's last day is the day before the next month's first (December: 31, also in 9999);
    # no `calendar`, which imports locale, for this
    last = 31 if month == 11 else (date(year, month + 2, 1) - timedelta(days=1)).day
    return date(year, month + 1, min(day.day, last))


def _week_start_of(day: date, start: int) -> date:
    return day - timedelta(days=(day.weekday() - start) % 7)


def _week_one(year: int, start: int) -> date:
    # the week holding January 4th is week 1: ISO's rule, applied to the shifted week
    return _week_start_of(date(year, 1, 4), start)


def weeks_in_year(year: int, start: int = 0) -> int:
    return (_week_one(year + 1, start) - _week_one(year, start)).days // 7


@dataclass(frozen=True, order=True, slots=True)
class Period:
    """One calendar period: ``grain`` and its first local day ``start``. Orders by start."""

    start: date
    grain: str
    week_start: int = 0

    @property
    def end(self) -> date:
        """The first day after the period (exclusive end)."""
        return self.shift(1).start

    @property
    def label(self) -> str:
        s, g = self.start, self.grain
        if g == "day":
            return s.isoformat()
        if g == "week":
            middle = s + timedelta(days=3)
            number = (middle - _week_one(middle.year, self.week_start)).days // 7 + 1
            return f"{middle.year}-W{number:02d}"
        if g == "month":
            return f"{s.year}-{s.month:02d}"
        if g == "quarter":
            return f"{s.year}-Q{(s.month - 1) // 3 + 1}"
        return str(s.year)

    def __str__(self) -> str:
        return self.label

    def shift(self, n: int) -> "Period":
        """The period ``n`` periods later (earlier when negative)."""
        g, s = self.grain, self.start
        if g == "day":
            return Period(s + timedelta(days=n), g, self.week_start)
        if g == "week":
            return Period(s + timedelta(weeks=n), g, self.week_start)
        months = {"month": 1, "quarter": 3, "year": 12}[g] * n
        return Period(_add_months(s, months), g, self.week_start)

    def previous(self) -> "Period":
        return self.shift(-1)

    def year_before(self) -> "Period":
        """The same period one year earlier: same date, month, quarter, or week number.

        Week 53 of a long year maps to week 52 of a year that has none; 29 February to the 28th.
        """
        if self.grain == "week":
            middle = self.start + timedelta(days=3)
            number = (middle - _week_one(middle.year, self.week_start)).days // 7
            year = middle.year - 1
            number = min(number, weeks_in_year(year, self.week_start) - 1)
            return Period(_week_one(year, self.week_start) + timedelta(weeks=number), "week",
                          self.week_start)
        return Period(_add_months(self.start, -12), self.grain, self.week_start)


def period_of(day: date, grain: str, week_start: int = 0) -> Period:
    """The period of ``grain`` holding the local day ``day``."""
    check_grain(grain)
    if isinstance(day, datetime):
        day = day.date()
    if grain == "day":
        return Period(day, grain, week_start)
    if grain == "week":
        return Period(_week_start_of(day, week_start), grain, week_start)
    if grain == "month":
        return Period(day.replace(day=1), grain, week_start)
    if grain == "quarter":
        return Period(date(day.year, (day.month - 1) // 3 * 3 + 1, 1), grain, week_start)
    return Period(date(day.year, 1, 1), grain, week_start)


def periods_between(first: date, last: date, grain: str, week_start: int = 0) -> list[Period]:
    """Every period of ``grain`` overlapping the days ``first`` .. ``last`` (both included)."""
    if last < first:
        raise PeriodError(f"the range ends ({last}) before it starts ({first})")
    out = []
    period = period_of(first, grain, week_start)
    while period.start <= last:
        out.append(period)
        period = period.shift(1)
    return out


def iter_periods(first: Period, count: int) -> Iterator[Period]:
    for i in range(count):
        yield first.shift(i)


def parse_date(text: str) -> date:
    """An ISO date (``2026-10-14``) as a :class:`datetime.date`; :class:`PeriodError` if not one."""
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise PeriodError(f"{text!r} is not a date (expected YYYY-MM-DD)") from None


def parse_period(text: str, week_start: int = 0) -> Period:
    """``2026-10-14``, ``2026-W43``, ``2026-10``, ``2026-Q4`` or ``2026`` -> :class:`Period`."""
    raw = text.strip()
    for grain, pattern in _PATTERNS:
        match = pattern.match(raw)
        if not match:
            continue
        numbers = [int(part) for part in match.groups()]
        try:
            if grain == "day":
                return Period(date(*numbers), grain, week_start)
            if grain == "week":
                year, week = numbers
                if not 1 <= week <= weeks_in_year(year, week_start):
                    raise PeriodError(f"{raw!r}: {year} has {weeks_in_year(year, week_start)} weeks")
                return Period(_week_one(year, week_start) + timedelta(weeks=week - 1), grain, week_start)
            if grain == "month":
                return Period(date(numbers[0], numbers[1], 1), grain, week_start)
            if grain == "quarter":
                return Period(date(numbers[0], (numbers[1] - 1) * 3 + 1, 1), grain, week_start)
            return Period(date(numbers[0], 1, 1), grain, week_start)
        except PeriodError:  # already says what is wrong (a week the year does not have)
            raise
        except ValueError as exc:
            raise PeriodError(f"{raw!r} is not a valid {grain}: {exc}") from None
    raise PeriodError(
        f"{raw!r} is not a period; use 2026-10-14 (day), 2026-W43 (week), 2026-10 (month), "
        "2026-Q4 (quarter) or 2026 (year)")


def local_midnight_utc(day: date, tz: str) -> datetime:
    """The UTC instant at which the local day ``day`` starts in ``tz``."""
    return datetime(day.year, day.month, day.day, tzinfo=zone(tz)).astimezone(timezone.utc)


def utc_offset_changes(tz: str, first: datetime, last: datetime) -> tuple[timedelta, list[tuple[datetime, timedelta]]]:
    """UTC offset of ``tz`` at the naive UTC instant ``first``, and every change up to ``last``.

    Returns ``(initial_offset, [(naive_utc_instant, new_offset), ...])``. Used by SQL engines
    without a time-zone database (SQLite): the conversion becomes a CASE over these instants.
    Changes are found by probing every 6 hours and bisecting to the second; real offsets never
    change twice within 6 hours.
    """
    info = zone(tz)

    def offset(instant: datetime) -> timedelta:
        return instant.replace(tzinfo=timezone.utc).astimezone(info).utcoffset() or timedelta(0)

    step = timedelta(hours=6)
    current = offset(first)
    initial = current
    changes: list[tuple[datetime, timedelta]] = []
    cursor = first
    while cursor < last:
        probe = min(cursor + step, last)
        if offset(probe) != current:
            low, high = cursor, probe
            while high - low > timedelta(seconds=1):
                mid = low + (high - low) / 2
                if offset(mid) == current:
                    low = mid
                else:
                    high = mid
            high = high.replace(microsecond=0)
            current = offset(probe)
            changes.append((high, current))
        cursor = probe
    return initial, changes
