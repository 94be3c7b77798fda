"""Due dates of every row of the timelines table (and the Rules' caps, the fast track) across
weekends, holidays and Saturday rules: the engine (rules.plan + servicedesk.sla) against a plain
day-by-day count written here."""

import tomllib
from datetime import date, datetime, time, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from urja.connections import rules
from urja.core.calendars import IST, WorkingCalendar

DOC = tomllib.loads(
    (Path(__file__).resolve().parents[4] / "data" / "connections" / "connections.toml").read_text(encoding="utf-8")
)
ROWS = rules.rows(DOC)
SUPPLY_OF = {"lt": "lt_1ph", "11kv": "ht"}
CLASSES_OF = {"urban": ["metro", "municipal"], "rural": ["rural", "hilly_rural"]}

moments = st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2027, 12, 31)).map(
    lambda d: d.replace(tzinfo=IST)
)
calendars = st.builds(
    WorkingCalendar,
    holidays=st.frozensets(st.dates(min_value=date(2025, 1, 1), max_value=date(2028, 12, 31)), max_size=60),
    saturdays_off=st.frozensets(st.integers(1, 5), max_size=3),
)


def midnight_after(day: date) -> datetime:
    return datetime.combine(day + timedelta(days=1), time(0), IST)


def reference_working_days(start: datetime, n: int, cal: WorkingCalendar) -> datetime:
    """End of the n-th working day after the start's own day."""
    day, seen = start.astimezone(IST).date(), 0
    while seen < n:
        day += timedelta(days=1)
        is_off = day.weekday() == 6 or day in cal.holidays
        is_off = is_off or (day.weekday() == 5 and (day.day - 1) // 7 + 1 in cal.saturdays_off)
        if not is_off:
            seen += 1
    return midnight_after(day)


def reference_calendar_days(start: datetime, n: int) -> datetime:
    """End of the n-th day after the start's own day."""
    return midnight_after(start.astimezone(IST).date() + timedelta(days=n))


def test_the_table_is_the_seed_003_table():
    table = {(r.area, r.voltage): (r.up_to_dn, r.after_dn, r.with_extension) for r in ROWS}
    assert table == {
        ("urban", "lt"): (5, 7, 90),
        ("urban", "11kv"): (10, 7, 90),
        ("rural", "lt"): (5, 15, 90),
        ("rural", "11kv"): (10, 15, 90),
    }
    # totals of the charter: up to DN + after DN = 12/17/20/25 days, with extension 95/100
    totals = {(r.area, r.voltage): (r.up_to_dn + r.after_dn, r.up_to_dn + r.with_extension) for r in ROWS}
    assert totals == {
        ("urban", "lt"): (12, 95),
        ("urban", "11kv"): (17, 100),
        ("rural", "lt"): (20, 95),
        ("rural", "11kv"): (25, 100),
    }


@pytest.mark.parametrize("row", ROWS, ids=lambda r: f"{r.area}-{r.voltage}")
@settings(max_examples=60, deadline=None)
@given(start=moments, paid_after=st.integers(0, 40), cal=calendars, extension=st.booleans(), data=st.data())
def test_due_dates_of_every_row(row, start, paid_after, cal, extension, data):
    area_class = data.draw(st.sampled_from(CLASSES_OF[row.area]))
    plan = rules.plan(DOC, area_class=area_class, supply_type=SUPPLY_OF[row.voltage], extension=extension)
    # up to the demand note: working days of the office from registration
    assert rules.dn_due(plan, registered_at=start, calendar=cal) == reference_working_days(start, row.up_to_dn, cal)
    paid = start + timedelta(days=paid_after, hours=3)
    after = reference_working_days(paid, row.with_extension if extension else row.after_dn, cal)
    due = rules.connection_due(plan, registered_at=start, dn_paid_at=paid, calendar=cal)
    if extension:  # the SERC's period for extension work: no cap
        assert due == after
    else:  # never later than the Rights of Consumers Rules' cap from registration (calendar days)
        cap = reference_calendar_days(start, int(DOC["caps"][area_class]))
        assert due == min(after, cap)
    # a due moment is never on a day off: it is the midnight ending a working day
    last_day = (due - timedelta(seconds=1)).astimezone(IST).date()
    assert due.astimezone(IST).time() == time(0)
    if extension or due == after:
        assert cal.is_working_day(last_day)


@settings(max_examples=80, deadline=None)
@given(start=moments, cal=calendars, gap=st.integers(1, 4), length=st.integers(1, 10))
def test_a_pause_moves_the_dn_due_date_by_the_working_days_it_covers(start, cal, gap, length):
    plan = rules.plan(DOC, area_class="rural", supply_type="lt_1ph")
    first = start.astimezone(IST).date() + timedelta(days=gap)
    pause = (datetime.combine(first, time(0), IST), datetime.combine(first + timedelta(days=length), time(0), IST))
    plain = rules.dn_due(plan, registered_at=start, calendar=cal)
    paused = rules.dn_due(plan, registered_at=start, calendar=cal, pauses=[pause])
    if pause[0] >= plain:  # paused after the due moment: no effect
        assert paused == plain
        return
    covered = sum(cal.is_working_day(first + timedelta(days=i)) for i in range(length))
    assert paused == reference_working_days(start, 5 + covered, cal)
    # an open pause: no due moment while it lasts
    assert rules.dn_due(plan, registered_at=start, calendar=cal, pauses=[(pause[0], None)]) is None


@settings(max_examples=60, deadline=None)
@given(start=moments, paid_after=st.integers(0, 10), cal=calendars)
def test_fast_track_is_48_hours_from_the_paid_application_whatever_the_calendar(start, paid_after, cal):
    plan = rules.plan(DOC, area_class="rural", supply_type="lt_1ph", fast_track=True)
    paid = start + timedelta(days=paid_after)
    assert rules.connection_due(plan, registered_at=start, dn_paid_at=paid, calendar=cal) == paid + timedelta(hours=48)


def test_fast_track_eligibility():
    ok = rules.fast_track_problems(DOC, supply_type="lt_1ph", load_kw=rules.Decimal("5"))
    assert ok == []
    assert rules.fast_track_problems(DOC, supply_type="lt_3ph", load_kw=rules.Decimal("6")) == [
        "not LT single phase",
        "load above 5 kW",
    ]
    far = rules.fast_track_problems(
        DOC, supply_type="lt_1ph", load_kw=rules.Decimal("2"), distance_m=31, right_of_way_issue=True
    )
    assert far == ["premises more than 30 m from the connecting point", "right-of-way issue"]
    assert rules.fast_track_problems(
        DOC, supply_type="lt_1ph", load_kw=rules.Decimal("2"), arrears=True, missing=["x"]
    ) == [
        "documents incomplete",
        "arrears",
    ]


@settings(max_examples=200, deadline=None)
@given(lat=st.floats(15, 25), lon=st.floats(80, 90))
def test_the_area_polygon_agrees_with_its_bounding_box_outside_it(lat, lon):
    poly = DOC["area"]["polygon"]
    lats, lons = [p[0] for p in poly], [p[1] for p in poly]
    if not (min(lats) <= lat <= max(lats) and min(lons) <= lon <= max(lons)):
        assert not rules.inside(poly, lat, lon)


def test_known_places():
    poly = DOC["area"]["polygon"]
    assert rules.inside(poly, 21.4945, 86.9332)  # Balasore
    assert rules.inside(poly, 21.9333, 86.7333)  # Baripada
    assert rules.inside(poly, 21.0548, 86.4958)  # Bhadrak
    assert not rules.inside(poly, 20.2961, 85.8245)  # Bhubaneswar (another licensee)
    assert not rules.inside(poly, 28.6139, 77.2090)  # Delhi
