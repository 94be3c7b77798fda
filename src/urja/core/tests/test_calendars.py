from datetime import UTC, date, datetime, time, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from urja.core.calendars import IST, WorkingCalendar

HOLIDAYS = frozenset({date(2026, 1, 26), date(2026, 4, 1), date(2026, 8, 15), date(2026, 10, 2), date(2026, 10, 20)})
CAL = WorkingCalendar(holidays=HOLIDAYS)


def reference_add_days(cal, start, n):
    day, seen = start, 0
    while seen < n:
        day += timedelta(days=1)
        if day.weekday() != 6 and day not in cal.holidays and day.weekday() in cal.workdays:
            seen += 1
    return day


def reference_add_minutes(cal, start, minutes):
    """Step minute by minute: obviously right, slow."""
    t = start.astimezone(IST).replace(second=0, microsecond=0)
    assert t == start.astimezone(IST)
    left = minutes
    while left:
        local = t
        if cal.is_working_day(local.date()) and cal.opens <= local.time() < cal.closes:
            left -= 1
        t += timedelta(minutes=1)
    return t


def test_skips_sundays_and_holidays():
    # Sat 2026-01-24 + 1 working day: Sun 25 off, Mon 26 Republic Day off -> Tue 27.
    assert CAL.add_working_days(date(2026, 1, 24), 1) == date(2026, 1, 27)
    assert CAL.working_days_between(date(2026, 1, 24), date(2026, 1, 27)) == 1


def test_working_hours_run_across_nights():
    start = datetime(2026, 3, 2, 16, 30, tzinfo=IST)  # Monday, one hour before closing
    assert CAL.add_working_hours(start, 4) == datetime(2026, 3, 3, 12, 30, tzinfo=IST)
    assert CAL.working_seconds_between(start, datetime(2026, 3, 3, 12, 30, tzinfo=IST)) == 4 * 3600


def test_before_opening_starts_at_opening():
    start = datetime(2026, 3, 2, 6, 0, tzinfo=IST)
    assert CAL.add_working_hours(start, 1) == datetime(2026, 3, 2, 10, 30, tzinfo=IST)


def test_naive_datetimes_are_refused():
    with pytest.raises(ValueError):
        CAL.add_working_hours(datetime(2026, 3, 2, 10, 0), 1)


@given(st.dates(min_value=date(2025, 12, 1), max_value=date(2026, 12, 1)), st.integers(0, 60))
def test_add_working_days_matches_reference(start, n):
    result = CAL.add_working_days(start, n)
    assert result == reference_add_days(CAL, start, n)
    assert CAL.working_days_between(start, result) == n


@settings(max_examples=60, deadline=None)
@given(
    st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2026, 11, 1)).map(
        lambda d: d.replace(second=0, microsecond=0, tzinfo=IST)
    ),
    st.integers(0, 3 * 8 * 60),
)
def test_add_working_minutes_matches_minute_stepping(start, minutes):
    got = CAL.add_working_seconds(start, minutes * 60)
    expected = reference_add_minutes(CAL, start, minutes)
    assert got == expected
    assert CAL.working_seconds_between(start, got) == minutes * 60


def test_result_keeps_callers_timezone():
    start = datetime(2026, 3, 2, 5, 0, tzinfo=UTC)  # 10:30 IST
    assert CAL.add_working_hours(start, 1).tzinfo == UTC


def test_office_hours_are_configurable():
    cal = WorkingCalendar(opens=time(10, 0), closes=time(14, 0), workdays=frozenset(range(5)))
    start = datetime(2026, 3, 6, 13, 0, tzinfo=IST)  # Friday
    assert cal.add_working_hours(start, 2) == datetime(2026, 3, 9, 11, 0, tzinfo=IST)  # Monday
