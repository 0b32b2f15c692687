"""Calendar periods: labels, parsing, shifting, ranges, week starts and UTC offsets."""

from datetime import date, datetime, timedelta

import pytest

from kpiforge._periods import (
    Period,
    PeriodError,
    parse_period,
    period_of,
    periods_between,
    utc_offset_changes,
    week_start_index,
    weeks_in_year,
    zone,
)

SUNDAY = week_start_index("sunday")


@pytest.mark.parametrize("day, grain, week_start, label, start", [
    (date(2026, 10, 14), "day", 0, "2026-10-14", date(2026, 10, 14)),
    (date(2026, 10, 14), "week", 0, "2026-W42", date(2026, 10, 12)),
    (date(2026, 10, 14), "month", 0, "2026-10", date(2026, 10, 1)),
    (date(2026, 11, 30), "quarter", 0, "2026-Q4", date(2026, 10, 1)),
    (date(2026, 3, 31), "quarter", 0, "2026-Q1", date(2026, 1, 1)),
    (date(2026, 10, 14), "year", 0, "2026", date(2026, 1, 1)),
    # ISO: 1 January 2027 is a Friday, so it belongs to the last ISO week of 2026 (W53)
    (date(2027, 1, 1), "week", 0, "2026-W53", date(2026, 12, 28)),
    # ISO: 29 December 2025 (a Monday) starts 2026-W01
    (date(2025, 12, 29), "week", 0, "2026-W01", date(2025, 12, 29)),
    # a Sunday belongs to the week that started on the Monday before ...
    (date(2026, 10, 18), "week", 0, "2026-W42", date(2026, 10, 12)),
    # ... but with Sunday-start weeks it opens a new week (week 1 of 2026 starts on Sunday
    # 4 January, the week holding 4 January), and the Saturday before closes the previous one
    (date(2026, 10, 18), "week", SUNDAY, "2026-W42", date(2026, 10, 18)),
    (date(2026, 10, 17), "week", SUNDAY, "2026-W41", date(2026, 10, 11)),
])
def test_period_of_and_label(day, grain, week_start, label, start):
    period = period_of(day, grain, week_start)
    assert (period.label, period.start) == (label, start)


def test_monday_start_labels_are_iso_labels_for_every_day_of_several_years():
    day = date(2019, 12, 20)
    while day < date(2028, 1, 10):
        year, week, _ = day.isocalendar()
        assert period_of(day, "week").label == f"{year}-W{week:02d}", day
        day += timedelta(days=1)


@pytest.mark.parametrize("text, grain, start, end", [
    ("2026-10-14", "day", date(2026, 10, 14), date(2026, 10, 15)),
    ("2026-W43", "week", date(2026, 10, 19), date(2026, 10, 26)),
    ("2026-10", "month", date(2026, 10, 1), date(2026, 11, 1)),
    ("2026-12", "month", date(2026, 12, 1), date(2027, 1, 1)),
    ("2026-Q4", "quarter", date(2026, 10, 1), date(2027, 1, 1)),
    ("2026", "year", date(2026, 1, 1), date(2027, 1, 1)),
])
def test_parse_period_round_trips(text, grain, start, end):
    period = parse_period(text)
    assert (period.grain, period.start, period.end, period.label) == (grain, start, end, text)


@pytest.mark.parametrize("text, message", [
    ("2026-13", "not a valid month"),
    ("2026-02-30", "not a valid day"),
    ("2025-W53", "2025 has 52 weeks"),
    ("2026-Q5", "is not a period"),
    ("October", "is not a period"),
    ("", "is not a period"),
])
def test_parse_period_rejects_nonsense_with_a_useful_message(text, message):
    with pytest.raises(PeriodError, match=message):
        parse_period(text)


def test_week_labels_round_trip_with_sunday_start():
    for week in range(1, weeks_in_year(2026, SUNDAY) + 1):
        label = f"2026-W{week:02d}"
        period = parse_period(label, SUNDAY)
        assert period.start.weekday() == 6 and period.label == label


@pytest.mark.parametrize("label, previous, year_before", [
    ("2026-03-01", "2026-02-28", "2025-03-01"),
    ("2028-02-29", "2028-02-28", "2027-02-28"),  # no 29 February a year earlier
    ("2026-W01", "2025-W52", "2025-W01"),
    ("2027-W01", "2026-W53", "2026-W01"),
    ("2027-W10", "2027-W09", "2026-W10"),
    ("2026-01", "2025-12", "2025-01"),
    ("2026-Q1", "2025-Q4", "2025-Q1"),
    ("2026", "2025", "2025"),
])
def test_previous_and_year_before(label, previous, year_before):
    period = parse_period(label)
    assert period.previous().label == previous
    assert period.year_before().label == year_before


def test_week_53_maps_to_week_52_of_a_short_year():
    assert parse_period("2026-W53").year_before().label == "2025-W52"


def test_periods_between_covers_every_overlapping_period_whole():
    labels = [p.label for p in periods_between(date(2026, 10, 15), date(2027, 1, 2), "month")]
    assert labels == ["2026-10", "2026-11", "2026-12", "2027-01"]
    weeks = periods_between(date(2026, 10, 1), date(2026, 10, 31), "week")
    assert [w.label for w in weeks] == ["2026-W40", "2026-W41", "2026-W42", "2026-W43", "2026-W44"]
    assert weeks[0].start == date(2026, 9, 28)  # whole weeks, not clipped to the month
    with pytest.raises(PeriodError, match="ends"):
        periods_between(date(2026, 2, 1), date(2026, 1, 1), "day")


def test_periods_order_chronologically_not_by_label():
    # "2026-W09" > "2026-10" as text; periods must sort by their start instead
    periods = [parse_period("2026-10"), parse_period("2026-W09"), parse_period("2025-Q4")]
    assert [p.label for p in sorted(periods)] == ["2025-Q4", "2026-W09", "2026-10"]
    assert Period(date(2026, 1, 1), "month") < Period(date(2026, 2, 1), "month")


@pytest.mark.parametrize("value, index", [(None, 0), ("monday", 0), ("Sunday", 6), (3, 3)])
def test_week_start_index(value, index):
    assert week_start_index(value) == index


def test_bad_week_start_and_time_zone_are_errors():
    with pytest.raises(PeriodError, match="unknown week start"):
        week_start_index("someday")
    with pytest.raises(PeriodError, match="unknown time zone"):
        zone("Mars/Olympus_Mons")


def test_utc_offset_changes_finds_the_paris_dst_switches_to_the_second():
    initial, changes = utc_offset_changes("Europe/Paris", datetime(2026, 1, 1), datetime(2026, 12, 31))
    assert initial == timedelta(hours=1)
    assert changes == [
        (datetime(2026, 3, 29, 1, 0), timedelta(hours=2)),
        (datetime(2026, 10, 25, 1, 0), timedelta(hours=1)),
    ]
    assert utc_offset_changes("UTC", datetime(2026, 1, 1), datetime(2027, 1, 1)) == (timedelta(0), [])
