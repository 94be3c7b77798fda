"""Reading schedule: the fixed reading day of a bill cycle ± N working days (seed 003). Pure."""

from __future__ import annotations

import calendar as _calendar
from datetime import date, timedelta

from urja.core.calendars import WorkingCalendar


def months_back(today: date, n: int) -> list[tuple[int, int]]:
    """(year, month) of today's month and the n months before it, oldest first."""
    out, y, m = [], today.year, today.month
    for _ in range(n + 1):
        out.append((y, m))
        y, m = (y, m - 1) if m > 1 else (y - 1, 12)
    return list(reversed(out))


def scheduled_date(year: int, month: int, read_day: int) -> date:
    last = _calendar.monthrange(year, month)[1]
    return date(year, month, min(max(read_day, 1), last))


def subtract_working_days(cal: WorkingCalendar, start: date, days: int) -> date:
    current, remaining = start, days
    while remaining:
        current -= timedelta(days=1)
        if cal.is_working_day(current):
            remaining -= 1
    return current


def reading_window(
    cal: WorkingCalendar, year: int, month: int, read_day: int, tolerance: int
) -> tuple[date, date, date]:
    """(earliest, scheduled, latest) reading dates of a cycle's month."""
    scheduled = scheduled_date(year, month, read_day)
    return subtract_working_days(cal, scheduled, tolerance), scheduled, cal.add_working_days(scheduled, tolerance)


def window_for(cal: WorkingCalendar, day: date, read_day: int, tolerance: int) -> tuple[date, date, date]:
    """The window of the cycle month closest to `day` (a reading on 2 June may belong to May's window)."""
    candidates = []
    for dy, dm in ((0, 0), (0, -1), (0, 1)):
        m = day.month + dm
        y = day.year + dy + (m - 1) // 12
        m = (m - 1) % 12 + 1
        candidates.append(reading_window(cal, y, m, read_day, tolerance))
    return min(candidates, key=lambda w: abs((w[1] - day).days))


def in_window(cal: WorkingCalendar, day: date, read_day: int, tolerance: int) -> bool:
    earliest, _, latest = window_for(cal, day, read_day, tolerance)
    return earliest <= day <= latest
