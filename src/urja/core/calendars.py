"""Working-day and working-hour calendars (pure; no database).

A calendar is: the weekdays that are worked, the office hours, the Saturdays of the month that are
off ("second and fourth Saturday"), and the holidays (national and state holidays from the
`holidays` package in the categories the state's file names, plus local additions for the state and
for an office and the offices under it) — all kept as data in `data/holidays/<state>.toml`. SLA
clocks count in these units.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo

import holidays as holidays_lib

IST = ZoneInfo("Asia/Kolkata")


@dataclass(frozen=True)
class WorkingCalendar:
    holidays: frozenset[date] = field(default_factory=frozenset)
    workdays: frozenset[int] = frozenset({0, 1, 2, 3, 4, 5})  # Mon–Sat (seed 003: CCCs)
    opens: time = time(9, 30)
    closes: time = time(17, 30)
    tz: ZoneInfo = IST
    # which Saturdays of a month are off, counted 1..5 (e.g. {2, 4}: second and fourth Saturday)
    saturdays_off: frozenset[int] = frozenset()

    def is_working_day(self, day: date) -> bool:
        if day.weekday() not in self.workdays or day in self.holidays:
            return False
        return not (day.weekday() == 5 and self.saturdays_off and (day.day - 1) // 7 + 1 in self.saturdays_off)

    def add_working_days(self, start: date, days: int) -> date:
        """The date `days` working days after `start` (start itself not counted)."""
        if days < 0:
            raise ValueError("days must be >= 0")
        current = start
        remaining = days
        while remaining:
            current += timedelta(days=1)
            if self.is_working_day(current):
                remaining -= 1
        return current

    def working_days_between(self, start: date, end: date) -> int:
        """Working days in (start, end]."""
        count, current = 0, start
        while current < end:
            current += timedelta(days=1)
            if self.is_working_day(current):
                count += 1
        return count

    def _local(self, moment: datetime) -> datetime:
        if moment.tzinfo is None:
            raise ValueError("aware datetimes only")
        return moment.astimezone(self.tz)

    def _day_window(self, day: date) -> tuple[datetime, datetime]:
        return (datetime.combine(day, self.opens, self.tz), datetime.combine(day, self.closes, self.tz))

    def add_working_seconds(self, start: datetime, seconds: float) -> datetime:
        """The moment when `seconds` of office time have passed after `start`."""
        if seconds < 0:
            raise ValueError("seconds must be >= 0")
        if seconds == 0:
            return start
        local = self._local(start)
        remaining = timedelta(seconds=seconds)
        day = local.date()
        for _ in range(3700):  # ten years of days is a broken calendar, not a real SLA
            if self.is_working_day(day):
                opens, closes = self._day_window(day)
                begin = max(local, opens)
                if begin < closes:
                    available = closes - begin
                    if remaining <= available:
                        return (begin + remaining).astimezone(start.tzinfo)
                    remaining -= available
            day += timedelta(days=1)
            local = datetime.combine(day, time(0), self.tz)
        raise ValueError("calendar has no working time")

    def add_working_hours(self, start: datetime, hours: float) -> datetime:
        return self.add_working_seconds(start, hours * 3600)

    def working_seconds_between(self, start: datetime, end: datetime) -> float:
        if end <= start:
            return 0.0
        a, b = self._local(start), self._local(end)
        total = 0.0
        day = a.date()
        while day <= b.date():
            if self.is_working_day(day):
                opens, closes = self._day_window(day)
                lo, hi = max(a, opens), min(b, closes)
                if hi > lo:
                    total += (hi - lo).total_seconds()
            day += timedelta(days=1)
        return total


def _state_doc(data_dir: Path, state: str) -> dict:
    path = data_dir / "holidays" / f"{state.lower()}.toml"
    if not path.exists():
        return {}
    return tomllib.loads(path.read_text(encoding="utf-8"))


def local_additions(data_dir: Path, state: str) -> dict[date, str]:
    """Holidays declared locally (data/holidays/<state>.toml): [[holiday]] date=..., name=..."""
    return {item["date"]: item["name"] for item in _state_doc(data_dir, state).get("holiday", [])}


@dataclass(frozen=True)
class StateRules:
    """The [calendar] table of a state's file and its offices' own holidays."""

    categories: tuple[str, ...] = ("public",)
    saturdays_off: frozenset[int] = frozenset()
    office_holidays: tuple[tuple[str, date, str], ...] = ()  # (office code, date, name)


@lru_cache(maxsize=64)
def state_rules(state: str, data_dir: str) -> StateRules:
    doc = _state_doc(Path(data_dir), state)
    table = doc.get("calendar", {})
    saturdays = frozenset(int(n) for n in table.get("saturdays_off", []))
    if any(not 1 <= n <= 5 for n in saturdays):
        raise ValueError(f"holidays/{state.lower()}.toml: saturdays_off counts Saturdays of a month, 1 to 5")
    return StateRules(
        categories=tuple(table.get("categories", ["public"])),
        saturdays_off=saturdays,
        office_holidays=tuple((h["office"], h["date"], h["name"]) for h in doc.get("office_holiday", [])),
    )


@lru_cache(maxsize=64)
def state_holidays(state: str, years: tuple[int, ...], data_dir: str) -> frozenset[date]:
    categories = state_rules(state, data_dir).categories
    official = holidays_lib.country_holidays("IN", subdiv=state or None, years=years, categories=categories)
    extra = local_additions(Path(data_dir), state)
    return frozenset(official.keys()) | frozenset(extra.keys())


def office_holidays(state: str, offices: tuple[str, ...], data_dir: str) -> frozenset[date]:
    """Holidays the state's file declares for any of `offices` (an office and the offices above it)."""
    wanted = set(offices)
    return frozenset(day for code, day, _ in state_rules(state, data_dir).office_holidays if code in wanted)


def calendar_for(
    *,
    state: str,
    opens: time = time(9, 30),
    closes: time = time(17, 30),
    workdays: frozenset[int] = frozenset({0, 1, 2, 3, 4, 5}),
    years: tuple[int, ...] | None = None,
    offices: tuple[str, ...] = (),
) -> WorkingCalendar:
    """The calendar of an office in `state`; `offices`: its code and its ancestors' codes (for the
    holidays the state's file declares for an office and everything under it)."""
    from django.conf import settings

    this_year = date.today().year
    years = years or tuple(range(this_year - 2, this_year + 3))
    data_dir = str(settings.DATA_DIR)
    holidays = state_holidays(state, years, data_dir)
    if offices:
        holidays = holidays | office_holidays(state, offices, data_dir)
    return WorkingCalendar(
        holidays=holidays,
        workdays=workdays,
        opens=opens,
        closes=closes,
        saturdays_off=state_rules(state, data_dir).saturdays_off,
    )
