"""The dates a run is given (``start``/``end``) as plain days."""

from __future__ import annotations

from datetime import date, datetime, timezone

import pandas as pd
import pytest

from kpiforge._run_periods import _as_date
from kpiforge.errors import RunError


class _Day(date):
    """A date subclass that is not a datetime (some calendar libraries have one)."""


@pytest.mark.parametrize("value", [
    date(2026, 10, 31),
    datetime(2026, 10, 31, 23, 59),
    datetime(2026, 10, 31, 23, 59, tzinfo=timezone.utc),
    pd.Timestamp("2026-10-31T12:00"),
    "2026-10-31",
    _Day(2026, 10, 31),
])
def test_a_start_or_end_is_read_as_its_day(value):
    day = _as_date(value, "--from")
    assert day == date(2026, 10, 31)
    assert not isinstance(day, datetime)  # a datetime would compare unlike a date with the periods


def test_a_value_that_is_no_date_is_refused():
    with pytest.raises(RunError, match=r"--to: 31/10/2026 is not a date \(YYYY-MM-DD\)"):
        _as_date("31/10/2026", "--to")


def test_adding_months_keeps_the_day_or_takes_the_months_last():
    """``_add_months`` is ``calendar.monthrange``'s rule without importing calendar."""
    import calendar

    from kpiforge._periods import _add_months

    days = [date(y, m, d) for y in (1, 1999, 2000, 2024, 2100, 9998) for m in range(1, 13)
            for d in (1, 28, 29, 30, 31) if d <= calendar.monthrange(y, m)[1]]
    for day in days:
        for k in range(-13, 14):
            index = day.year * 12 + day.month - 1 + k
            year, month = divmod(index, 12)
            if not 1 <= year <= 9999:
                continue
            expected = date(year, month + 1, min(day.day, calendar.monthrange(year, month + 1)[1]))
            assert _add_months(day, k) == expected, (day, k)
    assert _add_months(date(9999, 11, 30), 1) == date(9999, 12, 30)
