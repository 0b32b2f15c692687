"""Seasonal baselines: the expected range of a KPI, built from the same season in earlier periods.

An ``alerts: {anomaly: {season, window, sensitivity}}`` rule compares each value with the
values of the same season in the ``window`` previous seasons: for ``day_of_week`` at day grain
the same weekday in the previous weeks, for ``week_of_year`` at week grain the same week number
in the previous years, for ``month_of_year`` at month grain the same month in the previous
years, for ``none`` the previous periods. A weekend dip is then compared with earlier weekends
and December with earlier Decembers.

The range is robust, so that one earlier outlier does not widen it: the median of the baseline
values plus or minus ``sensitivity`` times the spread, where the spread is the median absolute
deviation scaled by 1.4826 (the standard deviation of a normal distribution, so the sensitivity
reads in standard deviations), and never less than 1% of the median's size: a noise-free
history does not make every rounding difference an anomaly, while a real break still fires.
Null baseline values are skipped; with fewer than ``min(3, window)`` values left the range is
unknown and says why, and the rule does not fire.

The baseline is computed from the sources by the run itself (its periods are added to the
run's periods, fetched by the same single query per source), never from stored history, so a
first run already has it. The cost is bounded: at most ``window`` (52) seasons back, that is
364 days at day grain, 52 years of one week or one month each, 52 periods with ``none``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from ._periods import GRAINS, Period
from .errors import AlertConfigError

__all__ = [
    "DEFAULT_SEASON",
    "MAD_SCALE",
    "MAX_WINDOW",
    "SEASONS",
    "SEASON_GRAINS",
    "SPREAD_FLOOR",
    "Anomaly",
    "Expected",
    "anomaly_of",
    "anomaly_problem",
    "baseline_periods",
    "expected_range",
    "needed",
    "too_few",
]

SEASONS = ("day_of_week", "week_of_year", "month_of_year", "none")
# the grains at which a season means something: a weekday is a day, a week number a week
SEASON_GRAINS: Mapping[str, tuple[str, ...]] = {
    "day_of_week": ("day",), "week_of_year": ("week",), "month_of_year": ("month",),
    "none": GRAINS}
DEFAULT_SEASON: Mapping[str, str] = {"day": "day_of_week", "week": "week_of_year",
                                     "month": "month_of_year", "quarter": "none", "year": "none"}
MAX_WINDOW = 52
DEFAULT_WINDOW = 4
DEFAULT_SENSITIVITY = 3.0
MAD_SCALE = 1.4826
SPREAD_FLOOR = 0.01  # of |median|: the least spread a baseline has
DIRECTIONS = ("both", "below", "above")


@dataclass(frozen=True, slots=True)
class Anomaly:
    """A KPI's anomaly rule. ``season`` None: the default season of the run's grain;
    ``grain`` None: the rule applies at every grain its season fits."""

    season: str | None = None
    window: int = DEFAULT_WINDOW
    sensitivity: float = DEFAULT_SENSITIVITY
    grain: str | None = None
    direction: str = "both"

    def season_at(self, grain: str) -> str | None:
        """The season used at ``grain``, or None when the rule does not apply there."""
        if self.grain is not None and grain != self.grain:
            return None
        season = self.season or DEFAULT_SEASON[grain]
        return season if grain in SEASON_GRAINS[season] else None

    def describe_grains(self) -> str:
        if self.grain is not None:
            return self.grain
        return " or ".join(SEASON_GRAINS[self.season]) if self.season else "any"


def anomaly_of(definition: Any) -> Anomaly | None:
    """The anomaly rule of a definition (its ``alerts.anomaly``), None without one or when the
    KPI's alerts are disabled. The block was validated by the KPI schema; a value of the wrong
    kind (a definition built by hand) is still refused, naming its field."""
    block = getattr(definition, "alerts", None) or {}
    raw = block.get("anomaly")
    if block.get("enabled") is False or not isinstance(raw, Mapping):
        return None
    window = raw.get("window", DEFAULT_WINDOW)
    sensitivity = raw.get("sensitivity", DEFAULT_SENSITIVITY)
    checks = (
        ("season", raw.get("season") in (None, *SEASONS), f"one of {', '.join(SEASONS)}"),
        ("grain", raw.get("grain") in (None, *GRAINS), f"one of {', '.join(GRAINS)}"),
        ("window", type(window) is int and 1 <= window <= MAX_WINDOW,
         f"a whole number from 1 to {MAX_WINDOW}"),
        ("sensitivity", isinstance(sensitivity, (int, float)) and not isinstance(sensitivity, bool)
         and 0 < sensitivity <= 100, "a number above 0, at most 100"),
        ("direction", raw.get("direction", "both") in DIRECTIONS, f"one of {', '.join(DIRECTIONS)}"),
    )
    for key, ok, wanted in checks:
        if not ok:
            raise AlertConfigError(f"{getattr(definition, 'id', '?')}: alerts.anomaly.{key} must "
                                   f"be {wanted}, got {raw.get(key)!r}", field=f"alerts.anomaly.{key}")
    return Anomaly(season=raw.get("season"), window=window, sensitivity=float(sensitivity),
                   grain=raw.get("grain"), direction=str(raw.get("direction", "both")))


def anomaly_problem(alerts: Mapping[str, Any] | None) -> tuple[tuple[str, ...], str] | None:
    """Where a schema-valid anomaly rule makes no sense, and why: a season at a grain it
    cannot be (a weekday of a month). None when it is fine."""
    raw = (alerts or {}).get("anomaly")
    if not isinstance(raw, Mapping):
        return None
    season, grain = raw.get("season"), raw.get("grain")
    if grain is not None and season is None:
        season = DEFAULT_SEASON.get(grain)
    if season is None or grain is None or season not in SEASON_GRAINS:
        return None
    allowed = SEASON_GRAINS[season]
    if grain in allowed:
        return None
    fits = [s for s, grains in SEASON_GRAINS.items() if grain in grains]
    return (("alerts", "anomaly", "season"),
            f"season {season} needs {' or '.join(allowed)} grain, not {grain}; "
            f"at {grain} grain use {' or '.join(fits)}")


def _earlier(period: Period, season: str, k: int) -> Period:
    if season == "day_of_week":
        return period.shift(-7 * k)
    if season == "month_of_year":
        return period.shift(-12 * k)
    if season == "week_of_year":
        # the same week number k years earlier (week 53 falls back on 52 where there is none)
        for _ in range(k):
            period = period.year_before()
        return period
    return period.shift(-k)


def baseline_periods(current: Sequence[Period], season: str,
                     window: int) -> dict[Period, tuple[Period, ...]]:
    """For each current period, its ``window`` earlier periods of the same season, newest first."""
    window = max(1, min(int(window), MAX_WINDOW))
    if not current:
        return {}
    if season == "week_of_year":
        return {p: tuple(_earlier(p, season, k) for k in range(1, window + 1)) for p in current}
    # a fixed step back: one timeline from the oldest period needed, each period made once
    # (a year of days with a window of 52 would otherwise make 19,000 periods for 730)
    step = _STEP[season]
    newest = max(current)
    timeline = [min(current).shift(-step * window)]
    while timeline[-1] < newest:
        timeline.append(timeline[-1].shift(1))
    position = {p: i for i, p in enumerate(timeline)}
    return {p: tuple(timeline[position[p] - step * k] for k in range(1, window + 1))
            for p in current}


_STEP = {"day_of_week": 7, "month_of_year": 12, "none": 1}


@dataclass(frozen=True, slots=True)
class Expected:
    """A value's expected range; all None with ``reason`` when it cannot be built."""

    expected: float | None = None
    low: float | None = None
    high: float | None = None
    count: int = 0
    reason: str | None = None


def expected_range(values: Sequence[float | None], sensitivity: float, window: int) -> Expected:
    """Median +/- sensitivity x max(1.4826 x MAD, 1% of |median|) of the non-null ``values``."""
    kept = sorted(float(v) for v in values if v is not None and math.isfinite(v))
    if len(kept) < needed(window):
        return Expected(count=len(kept), reason=too_few(len(kept), window))
    median = _median(kept)
    mad = _median(sorted(abs(v - median) for v in kept))
    spread = max(MAD_SCALE * mad, SPREAD_FLOOR * abs(median))
    return Expected(median, median - sensitivity * spread, median + sensitivity * spread,
                    len(kept))


def needed(window: int) -> int:
    """How many baseline values a range needs: three, or all of a shorter window."""
    return min(3, window)


def too_few(count: int, window: int) -> str:
    return f"baseline has {count} of {window} earlier values (needs {needed(window)})"


def _median(ordered: Sequence[float]) -> float:
    n = len(ordered)
    middle = n // 2
    return ordered[middle] if n % 2 else (ordered[middle - 1] + ordered[middle]) / 2.0
