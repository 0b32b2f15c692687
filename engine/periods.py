"""The public API of calendar periods, for plugins: grains, period labels, ranges, time zones.

A :class:`Period` is a grain (``day``, ``week``, ``month``, ``quarter``, ``year``) and its first
local day; its ``label`` is the stable string every record carries (``2026-10-14``,
``2026-W43``, ``2026-10``, ``2026-Q4``, ``2026``). Weeks are ISO weeks unless the project sets
another ``week_start`` (an index from :func:`week_start_index`, 0 for Monday), and periods
start at local midnight in the project's time zone. A source that buckets rows itself uses
:func:`period_of`; one whose database has no time-zone table uses :func:`utc_offset_changes`.
Every function raises :class:`PeriodError` for a string it cannot understand.
"""

from __future__ import annotations

from ._periods import (
    GRAINS,
    WEEKDAYS,
    Period,
    parse_date,
    parse_period,
    period_of,
    periods_between,
    utc_offset_changes,
    week_start_index,
    zone,
)
from .errors import PeriodError

__all__ = [
    "GRAINS",
    "Period",
    "PeriodError",
    "WEEKDAYS",
    "parse_date",
    "parse_period",
    "period_of",
    "periods_between",
    "utc_offset_changes",
    "week_start_index",
    "zone",
]
