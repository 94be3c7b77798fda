"""The SLA clock against a minute-stepping reference, and every catalogue row's due dates."""

import tomllib
from datetime import date, datetime, time, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from urja.core.calendars import IST, WorkingCalendar
from urja.servicedesk import sla
from urja.servicedesk.sla import Timeline, due_at

MINUTE = timedelta(minutes=1)
CATALOGUE = Path(__file__).resolve().parents[4] / "data" / "servicedesk" / "oerc_sop.toml"


def reference_due(start, timeline, cal, pauses=()):
    """Step minute by minute, counting the minutes the unit counts and no pause covers."""

    def paused(t):
        return any(ps <= t and (pe is None or t < pe) for ps, pe in pauses)

    local_start = start.astimezone(IST)
    if timeline.unit == "next_month_first_day":
        d = local_start.date()
        first = date(d.year + (d.month == 12), d.month % 12 + 1, 1)
        total = int((datetime.combine(first + timedelta(days=1), time(0), IST) - local_start).total_seconds() // 60)
    elif timeline.unit in ("calendar_hours", "working_hours"):
        total = timeline.value * 60
    else:
        total = timeline.value * 1440
    day_begin = datetime.combine(local_start.date() + timedelta(days=1), time(0), IST)
    t, counted = local_start, 0
    while counted < total:
        if any(ps <= t and pe is None for ps, pe in pauses):
            return None
        counts = not paused(t)
        if timeline.unit == "working_hours":
            counts = counts and cal.is_working_day(t.date()) and cal.opens <= t.time() < cal.closes
        elif timeline.unit == "calendar_days":
            counts = counts and t >= day_begin
        elif timeline.unit == "working_days":
            counts = counts and t >= day_begin and cal.is_working_day(t.date())
        if counts:
            counted += 1
        t += MINUTE
    if timeline.unit in ("calendar_days", "working_days", "next_month_first_day") and t.time() != time(0):
        t = datetime.combine(t.date() + timedelta(days=1), time(0), IST)
    return t


HOLIDAYS = frozenset({date(2025, 1, 26), date(2025, 3, 14), date(2025, 4, 1), date(2025, 8, 15), date(2025, 10, 2)})
CAL = WorkingCalendar(holidays=HOLIDAYS)


def at(y, m, d, hh=0, mm=0):
    return datetime(y, m, d, hh, mm, tzinfo=IST)


# --- explicit cases -------------------------------------------------------------------------


def test_working_hours_cross_the_night():
    # Reconnection: 4 working hours from Friday 16:00 → 1.5 h Friday + 2.5 h Saturday = Saturday 12:00
    assert due_at(at(2025, 1, 10, 16), Timeline("working_hours", 4), CAL) == at(2025, 1, 11, 12)


def test_working_hours_skip_sunday_and_holiday():
    # Saturday 16:30 → 1 h Saturday; Sunday off; Monday 2025-01-27? (26th is Sunday & holiday) → Monday 12:30
    assert due_at(at(2025, 1, 25, 16, 30), Timeline("working_hours", 4), CAL) == at(2025, 1, 27, 12, 30)


def test_working_hours_registered_at_night_start_next_morning():
    assert due_at(at(2025, 1, 8, 23), Timeline("working_hours", 4), CAL) == at(2025, 1, 9, 13, 30)


def test_calendar_hours_ignore_the_night():
    assert due_at(at(2025, 1, 8, 22), Timeline("calendar_hours", 4), CAL) == at(2025, 1, 9, 2)


def test_working_days_skip_sunday_and_holiday():
    # Meter testing, 7 working days from Thursday 13 March 2025: 14th is a holiday (Holi), 16th Sunday.
    # Counted: 15, 17, 18, 19, 20, 21, 22 → due at the end of Saturday 22 March.
    assert due_at(at(2025, 3, 13, 11), Timeline("working_days", 7), CAL) == at(2025, 3, 23)


def test_calendar_days_due_at_end_of_nth_day():
    assert due_at(at(2025, 1, 10, 10), Timeline("calendar_days", 15), CAL) == at(2025, 1, 26)


def test_next_month_first_day():
    assert due_at(at(2025, 1, 15, 10), Timeline("next_month_first_day", 1), CAL) == at(2025, 2, 2)
    assert due_at(at(2025, 12, 31, 23, 59), Timeline("next_month_first_day", 1), CAL) == at(2026, 1, 2)


def test_pause_extends_due_by_clock_time_it_covered():
    start = at(2025, 1, 8, 10)
    # paused 11:00–13:00 on a 4 working-hour clock → due two working hours later
    pauses = [(at(2025, 1, 8, 11), at(2025, 1, 8, 13))]
    assert due_at(start, Timeline("working_hours", 4), CAL, pauses) == at(2025, 1, 8, 16)
    # a pause at night does not move a working-hours clock
    night = [(at(2025, 1, 8, 20), at(2025, 1, 9, 8))]
    assert due_at(at(2025, 1, 8, 16), Timeline("working_hours", 4), CAL, night) == due_at(
        at(2025, 1, 8, 16), Timeline("working_hours", 4), CAL
    )


def test_open_pause_stops_the_clock():
    assert due_at(at(2025, 1, 8, 10), Timeline("calendar_hours", 4), CAL, [(at(2025, 1, 8, 11), None)]) is None


def test_clock_state_on_track_at_risk_breached_and_paused():
    start = at(2025, 1, 8, 10)
    timeline = Timeline("calendar_hours", 4)
    state = sla.clock_state(start=start, timeline=timeline, calendar=CAL, now=at(2025, 1, 8, 11))
    assert (state.status, round(state.fraction, 2)) == (sla.ON_TRACK, 0.25)
    assert sla.clock_state(start=start, timeline=timeline, calendar=CAL, now=at(2025, 1, 8, 13, 30)).status == "at_risk"
    late = sla.clock_state(start=start, timeline=timeline, calendar=CAL, now=at(2025, 1, 8, 15))
    assert late.status == sla.BREACHED and late.seconds_left == -3600
    paused = sla.clock_state(
        start=start, timeline=timeline, calendar=CAL, pauses=[(at(2025, 1, 8, 11), None)], now=at(2025, 1, 9, 11)
    )
    assert paused.paused and paused.status == sla.ON_TRACK and round(paused.fraction, 2) == 0.25
    closed = sla.clock_state(
        start=start, timeline=timeline, calendar=CAL, now=at(2025, 2, 1), stopped_at=at(2025, 1, 8, 12)
    )
    assert closed.status == sla.ON_TRACK


def test_units_late_counts_started_units():
    due = at(2025, 1, 8, 14)
    assert sla.units_late(due=due, closed_at=due, per="hour") == 0
    assert sla.units_late(due=due, closed_at=due + timedelta(minutes=1), per="hour") == 1
    assert sla.units_late(due=due, closed_at=due + timedelta(hours=25), per="day") == 2


def test_bad_timelines_refused():
    with pytest.raises(ValueError):
        Timeline("fortnights", 1)
    with pytest.raises(ValueError):
        Timeline("calendar_days", 0)


# --- property tests against the reference ------------------------------------------------------

starts = st.builds(
    lambda day, minute: (
        datetime.combine(date(2025, 1, 1) + timedelta(days=day), time(0), IST) + timedelta(minutes=minute)
    ),
    st.integers(0, 364),
    st.integers(0, 24 * 60 - 1),
)
timelines = st.one_of(
    st.builds(Timeline, st.just("calendar_hours"), st.integers(1, 48)),
    st.builds(Timeline, st.just("working_hours"), st.integers(1, 20)),
    st.builds(Timeline, st.just("calendar_days"), st.integers(1, 6)),
    st.builds(Timeline, st.just("working_days"), st.integers(1, 5)),
    st.builds(Timeline, st.just("next_month_first_day"), st.just(1)),
)
calendars = st.builds(
    lambda hol, opens, length, sunday_off: WorkingCalendar(
        holidays=frozenset(hol),
        workdays=frozenset(range(6)) if sunday_off else frozenset(range(5)),
        opens=time(opens // 60, opens % 60),
        closes=time((opens + length) // 60, (opens + length) % 60),
    ),
    st.sets(st.dates(date(2025, 1, 1), date(2025, 12, 31)), max_size=40),
    st.integers(6 * 60, 11 * 60),
    st.integers(60, 10 * 60),
    st.booleans(),
)


@st.composite
def pause_lists(draw, start):
    pauses, cursor = [], start
    for _ in range(draw(st.integers(0, 3))):
        begin = cursor + timedelta(minutes=draw(st.integers(0, 2000)))
        end = begin + timedelta(minutes=draw(st.integers(1, 1500)))
        pauses.append((begin, end))
        cursor = end
    return pauses


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(start=starts, timeline=timelines, cal=calendars, data=st.data())
def test_due_matches_minute_stepping_reference(start, timeline, cal, data):
    pauses = data.draw(pause_lists(start))
    assert due_at(start, timeline, cal, pauses) == reference_due(start, timeline, cal, pauses)


@settings(max_examples=100, deadline=None)
@given(start=starts, timeline=timelines, cal=calendars, data=st.data())
def test_pauses_never_bring_the_due_moment_forward(start, timeline, cal, data):
    pauses = data.draw(pause_lists(start))
    assert due_at(start, timeline, cal, pauses) >= due_at(start, timeline, cal)


@settings(max_examples=100, deadline=None)
@given(start=starts, timeline=timelines, cal=calendars, minutes=st.integers(0, 60 * 24 * 20))
def test_status_is_monotonic_in_time(start, timeline, cal, minutes):
    order = {sla.ON_TRACK: 0, sla.AT_RISK: 1, sla.BREACHED: 2}
    now = start + timedelta(minutes=minutes)
    a = sla.clock_state(start=start, timeline=timeline, calendar=cal, now=now)
    b = sla.clock_state(start=start, timeline=timeline, calendar=cal, now=now + timedelta(hours=1))
    assert order[a.status] <= order[b.status]
    assert (a.status == sla.BREACHED) == (now > a.due)


# --- every catalogue row ------------------------------------------------------------------------


def catalogue_rows():
    doc = tomllib.loads(CATALOGUE.read_text(encoding="utf-8"))
    for t in doc["types"]:
        for sub in t["subtypes"]:
            for area in ("urban", "rural"):
                value = sub.get(area, sub.get("value"))
                yield pytest.param(Timeline(sub["unit"], value), id=f"{t['code']}/{sub['code']}/{area}")


# Friday evening before a weekend with a holiday on Monday, a night, a holiday eve, month end.
TRICKY_STARTS = [
    at(2025, 8, 15 - 1, 17, 15),  # Thursday 14 Aug, after office hours; 15 Aug holiday, then Sat, Sun
    at(2025, 1, 25, 16, 45),  # Saturday evening; Sunday 26 Jan is Republic Day
    at(2025, 3, 13, 23, 30),  # night before Holi
    at(2025, 12, 31, 9, 0),  # year end
]


@pytest.mark.parametrize("timeline", list(catalogue_rows()))
def test_every_catalogue_row_due_dates(timeline):
    for start in TRICKY_STARTS:
        due = due_at(start, timeline, CAL)
        assert due > start
        if timeline.value <= 31 or timeline.unit in ("working_hours", "calendar_hours"):
            assert due == reference_due(start, timeline, CAL), (timeline, start)
        local = due.astimezone(IST)
        if timeline.unit == "working_hours":
            assert CAL.is_working_day(local.date()) and CAL.opens < local.time() <= CAL.closes
        if timeline.unit == "working_days":
            last_day = local.date() - timedelta(days=1)
            assert local.time() == time(0) and CAL.is_working_day(last_day)
            assert CAL.working_days_between(start.astimezone(IST).date(), last_day) == timeline.value
        if timeline.unit == "calendar_days":
            assert local.date() == start.astimezone(IST).date() + timedelta(days=timeline.value + 1)
        if timeline.unit == "calendar_hours":
            assert due - start == timedelta(hours=timeline.value)
