"""Calendars as data: the Saturday rule, the holiday categories of a state and an office's own
holidays (data/holidays/<state>.toml, core.calendars.state_rules)."""

from datetime import date, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from urja.core import calendars
from urja.core.calendars import WorkingCalendar


def nth_saturday(day: date) -> int:
    return (day.day - 1) // 7 + 1


@settings(max_examples=300, deadline=None)
@given(
    day=st.dates(min_value=date(2024, 1, 1), max_value=date(2030, 12, 31)),
    off=st.frozensets(st.integers(1, 5)),
)
def test_the_saturday_rule_closes_exactly_the_named_saturdays(day, off):
    cal = WorkingCalendar(saturdays_off=off)
    if day.weekday() == 6:
        assert not cal.is_working_day(day)
    elif day.weekday() == 5:
        assert cal.is_working_day(day) == (nth_saturday(day) not in off)
    else:
        assert cal.is_working_day(day)


def test_second_and_fourth_saturday_of_december_2026():
    cal = WorkingCalendar(saturdays_off=frozenset({2, 4}))
    saturdays = [date(2026, 12, 5) + timedelta(days=7 * i) for i in range(4)]  # 5, 12, 19, 26
    assert [cal.is_working_day(d) for d in saturdays] == [True, False, True, False]
    # Friday 11 Dec + 1 working day skips Sat 12 and Sun 13
    assert cal.add_working_days(date(2026, 12, 11), 1) == date(2026, 12, 14)


def _write(tmp_path, text: str):
    (tmp_path / "holidays").mkdir()
    (tmp_path / "holidays" / "zz.toml").write_text(text, encoding="utf-8")


def test_state_rules_read_categories_saturdays_and_office_holidays(tmp_path):
    _write(
        tmp_path,
        """
[calendar]
categories = ["public", "government"]
saturdays_off = [2, 4]

[[office_holiday]]
office = "BLS"
date = 2026-11-24
name = "Baliyatra"
""",
    )
    rules = calendars.state_rules("ZZ", str(tmp_path))
    assert rules.categories == ("public", "government")
    assert rules.saturdays_off == frozenset({2, 4})
    assert calendars.office_holidays("ZZ", ("X1", "BLS"), str(tmp_path)) == frozenset({date(2026, 11, 24)})
    assert calendars.office_holidays("ZZ", ("X1",), str(tmp_path)) == frozenset()


def test_a_state_without_a_calendar_table_keeps_the_defaults(tmp_path):
    _write(tmp_path, '[[holiday]]\ndate = 2026-06-15\nname = "Raja"\n')
    rules = calendars.state_rules("ZZ", str(tmp_path))
    assert rules == calendars.StateRules()


def test_odisha_counts_the_government_category(settings):
    cal = calendars.calendar_for(state="OD", years=(2026,))
    # Mahalaya (10 Oct 2026) is an Odisha government holiday, not a gazetted public one
    assert date(2026, 10, 10) in cal.holidays
    assert not cal.is_working_day(date(2026, 10, 10))


def test_an_office_holiday_holds_below_that_office(offices, settings, tmp_path):
    import shutil

    (tmp_path / "holidays").mkdir()
    shutil.copy(settings.DATA_DIR / "holidays" / "od.toml", tmp_path / "holidays" / "od.toml")
    with open(tmp_path / "holidays" / "od.toml", "a", encoding="utf-8") as f:
        code = offices["division1"].code
        f.write(f'\n[[office_holiday]]\noffice = "{code}"\ndate = 2026-12-02\nname = "Local festival"\n')
    settings.DATA_DIR = tmp_path
    calendars.state_rules.cache_clear()
    try:
        assert not offices["section1"].calendar().is_working_day(date(2026, 12, 2))  # under division 1
        assert offices["section2"].calendar().is_working_day(date(2026, 12, 2))  # division 2
    finally:
        calendars.state_rules.cache_clear()
