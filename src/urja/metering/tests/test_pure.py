"""Property tests of the pure engines against simple references."""

from calendar import monthrange
from datetime import date, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from urja.core.calendars import WorkingCalendar
from urja.metering import consumption as calc
from urja.metering import schedule, vee

segment = st.builds(
    lambda digits, mf, start_frac, used_frac: (digits, mf, start_frac, used_frac),
    st.integers(min_value=3, max_value=8),
    st.sampled_from([Decimal(1), Decimal(2), Decimal("0.5"), Decimal(40)]),
    st.integers(min_value=0, max_value=999_999),
    st.integers(min_value=0, max_value=199_999),  # < 20 % of the register between two readings
)


@settings(max_examples=300, deadline=None)
@given(st.lists(segment, min_size=1, max_size=5))
def test_consumption_exact_across_replacements_and_rollover(chain):
    """A chain of meters (replacements), each read at its install and removal; registers wrap at 10^digits."""
    segments, expected = [], Decimal(0)
    for digits, mf, start_frac, used_frac in chain:
        size = 10**digits
        start = Decimal(start_frac * size // 1_000_000) + Decimal("0.125")
        used = Decimal(used_frac * size // 1_000_000) + Decimal("0.250")
        used = min(used, Decimal(size) * Decimal("0.2") - 1) if size * Decimal("0.2") > 1 else Decimal(0)
        used = max(used, Decimal(0))
        end = (start + used) % size  # what the register shows: it wraps
        segments.append(calc.Segment(start, end, digits, mf))
        expected += used * mf
    assert calc.consumption(segments) == expected


def test_rollover_versus_real_negative():
    assert calc.register_delta(Decimal(99870), Decimal(12), 5) == Decimal(142)
    with pytest.raises(calc.RegisterError) as err:
        calc.register_delta(Decimal(500), Decimal(400), 5)
    assert err.value.code == "negative_consumption"
    with pytest.raises(calc.RegisterError) as err:
        calc.register_delta(Decimal(500), Decimal(100000), 5)
    assert err.value.code == "out_of_range"


def test_tod_per_zone():
    result = calc.tod_consumption([({"peak": "10", "solar": "99990"}, {"peak": "15", "solar": "5"}, 5, Decimal(1))])
    assert result == {"peak": Decimal(5), "solar": Decimal(15)}


months = st.lists(
    st.tuples(st.integers(2022, 2025), st.integers(1, 12), st.integers(0, 2000), st.booleans()),
    max_size=30,
    unique_by=lambda t: (t[0], t[1]),
)


def ref_average(history, year, month, n):
    target = year * 12 + month
    previous = sorted((y * 12 + m, k) for y, m, k, actual in history if actual and y * 12 + m < target)[-n:]
    if not previous:
        return None
    return (Decimal(sum(k for _, k in previous)) / len(previous)).quantize(Decimal("0.001"))


@settings(max_examples=300, deadline=None)
@given(months, st.integers(2023, 2026), st.integers(1, 12), st.integers(1, 6))
def test_estimation_methods_against_reference(rows, year, month, n):
    history = [vee.MonthUse(y, m, Decimal(k), a) for y, m, k, a in rows]
    assert vee.average_of_previous(history, year, month, n) == ref_average(rows, year, month, n)
    same = [Decimal(k) for y, m, k, a in rows if (y, m) == (year - 1, month) and a]
    assert vee.same_month_last_year(history, year, month) == (same[0] if same else None)
    earlier = sorted((y * 12 + m, k) for y, m, k, _ in rows if y * 12 + m < year * 12 + month)
    assert vee.last_month(history, year, month) == (Decimal(earlier[-1][1]) if earlier else None)
    found = vee.estimate(history, year, month, methods=vee.METHODS, n=n)
    first = next(
        (
            (v, name)
            for name, v in [
                ("average", ref_average(rows, year, month, n)),
                ("same_month_last_year", same[0] if same else None),
                ("last_month", Decimal(earlier[-1][1]) if earlier else None),
            ]
            if v is not None
        ),
        None,
    )
    assert found == first


RULES = vee.Rules(
    {
        "negative_consumption": {"severity": "review"},
        "spike": {"severity": "review", "factor": 3, "min_units": 50},
        "zero_consumption": {"severity": "review"},
        "outside_window": {"severity": "flag"},
        "md_exceeded": {"severity": "flag", "tolerance_percent": 0},
    }
)


def check(**kw):
    from datetime import UTC, datetime

    kw.setdefault("read_at", datetime(2025, 5, 1, tzinfo=UTC))
    kw.setdefault("consumption", Decimal(100))
    return vee.ReadingCheck(**kw)


@pytest.mark.parametrize(
    ("kw", "rules", "status"),
    [
        ({}, [], "passed"),
        ({"negative": True, "consumption": None}, ["negative_consumption"], "review"),
        ({"consumption": Decimal(400), "daily_average": Decimal(3), "days": Decimal(30)}, ["spike"], "review"),
        ({"consumption": Decimal(40), "daily_average": Decimal("0.1"), "days": Decimal(30)}, [], "passed"),  # small
        ({"consumption": Decimal(0)}, ["zero_consumption"], "review"),
        ({"consumption": Decimal(0), "occupied": False}, [], "passed"),
        ({"in_window": False}, ["outside_window"], "flagged"),
        ({"md": Decimal("5.1"), "sanctioned_load": Decimal(5)}, ["md_exceeded"], "flagged"),
        ({"md": Decimal(5), "sanctioned_load": Decimal(5)}, [], "passed"),
    ],
)
def test_vee_rules(kw, rules, status):
    failures = vee.validate(check(**kw), RULES)
    assert [f.rule for f in failures] == rules
    assert vee.outcome(failures) == status


def test_disabled_rule_does_not_fire():
    rules = vee.Rules({"zero_consumption": {"severity": "review", "enabled": False}})
    assert vee.validate(check(consumption=Decimal(0)), rules) == []


@settings(max_examples=200, deadline=None)
@given(st.integers(2024, 2026), st.integers(1, 12), st.integers(1, 31), st.integers(0, 5))
def test_reading_window_is_n_working_days_each_side(year, month, day, tolerance):
    cal = WorkingCalendar(holidays=frozenset({date(year, month, 15), date(year, 1, 26)}))
    earliest, scheduled, latest = schedule.reading_window(cal, year, month, day, tolerance)
    assert earliest <= scheduled <= latest
    assert scheduled.month == month and scheduled.day == min(day, monthrange(year, month)[1])
    before = [earliest + timedelta(days=i) for i in range((scheduled - earliest).days)]
    assert sum(cal.is_working_day(d) for d in before) == tolerance
    assert tolerance == 0 or cal.is_working_day(earliest)
    assert cal.working_days_between(scheduled, latest) == tolerance
    assert schedule.in_window(cal, latest, day, tolerance)
