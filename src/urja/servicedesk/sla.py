"""The SLA clock (pure: no database).

Given when a request started, its timeline (unit + value) from the SoP schedule, the owning
office's WorkingCalendar and the intervals during which the clock was paused (reasons
attributable to the consumer), compute the due moment and the status at any moment.

Units (data/servicedesk/*.toml):

* ``calendar_hours`` — wall-clock hours.
* ``working_hours`` — office hours of the calendar (nights, weekly offs and holidays skipped).
* ``calendar_days`` — days counted from the day after the start; due at the end of the Nth day.
* ``working_days`` — like calendar_days, counting only the calendar's working days.
* ``next_month_first_day`` — due at the end of the first day of the month after the start.

A pause moves the due moment by the clock time it covered (a pause at night does not move a
working-hours clock). Day units round the due moment up to the end of a (local) day.

Fractions (escalation tiers, 'at risk') are fractions of the **wall-clock span** from the start
to the due moment with paused time removed; the escalation sweep computes the same fraction in
SQL from ``clock_start_ts + paused_seconds + fraction * span_seconds``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from urja.core.calendars import WorkingCalendar

UNITS = ("calendar_hours", "working_hours", "calendar_days", "working_days", "next_month_first_day")
DAY = 86400

ON_TRACK, AT_RISK, BREACHED = "on_track", "at_risk", "breached"

Pause = tuple[datetime, datetime | None]


@dataclass(frozen=True)
class Timeline:
    unit: str
    value: int

    def __post_init__(self):
        if self.unit not in UNITS:
            raise ValueError(f"unknown SLA unit {self.unit!r}; one of {', '.join(UNITS)}")
        if int(self.value) < 1:
            raise ValueError("an SLA timeline must be at least 1")

    def describe(self) -> str:
        if self.unit == "next_month_first_day":
            return "by the 1st of next month"
        label = self.unit.replace("_", " ")
        return f"{self.value} {label if self.value != 1 else label.rstrip('s')}"


def _aware(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("aware datetimes only")
    return moment


def _next_midnight(moment: datetime, cal: WorkingCalendar) -> datetime:
    local = moment.astimezone(cal.tz)
    return datetime.combine(local.date() + timedelta(days=1), time(0), cal.tz)


def _ceil_midnight(moment: datetime, cal: WorkingCalendar) -> datetime:
    local = moment.astimezone(cal.tz)
    if local.time() == time(0) and local.microsecond == 0:
        return local
    return _next_midnight(moment, cal)


def _first_of_next_month(day: date) -> date:
    return date(day.year + (day.month == 12), day.month % 12 + 1, 1)


class _Clock:
    """How one unit measures time: measure(a, b), advance(a, amount), where counting begins."""

    def __init__(self, timeline: Timeline, cal: WorkingCalendar, start: datetime):
        self.unit, self.cal = timeline.unit, cal
        self.round_to_day = self.unit in ("calendar_days", "working_days", "next_month_first_day")
        if self.unit in ("calendar_hours", "working_hours"):
            self.begin, self.total = start, timeline.value * 3600.0
        elif self.unit in ("calendar_days", "working_days"):
            self.begin, self.total = _next_midnight(start, cal), float(timeline.value * DAY)
        else:  # next_month_first_day: the end of the 1st of the next month
            local = start.astimezone(cal.tz)
            end = datetime.combine(_first_of_next_month(local.date()) + timedelta(days=1), time(0), cal.tz)
            self.begin, self.total = start, (end - start).total_seconds()

    def measure(self, a: datetime, b: datetime) -> float:
        if b <= a:
            return 0.0
        if self.unit == "working_hours":
            return self.cal.working_seconds_between(a, b)
        if self.unit == "working_days":
            total, cursor = 0.0, a
            while cursor < b:
                nxt = min(_next_midnight(cursor, self.cal), b)
                if self.cal.is_working_day(cursor.astimezone(self.cal.tz).date()):
                    total += (nxt - cursor).total_seconds()
                cursor = nxt
            return total
        return (b - a).total_seconds()

    def advance(self, a: datetime, amount: float) -> datetime:
        if self.unit == "working_hours":
            return self.cal.add_working_seconds(a, amount)
        if self.unit == "working_days":
            cursor, remaining = a, amount
            for _ in range(20000):
                nxt = _next_midnight(cursor, self.cal)
                if self.cal.is_working_day(cursor.astimezone(self.cal.tz).date()):
                    room = (nxt - cursor).total_seconds()
                    if remaining <= room:
                        return cursor + timedelta(seconds=remaining)
                    remaining -= room
                cursor = nxt
            raise ValueError("calendar has no working days")
        return a + timedelta(seconds=amount)


def merge_pauses(pauses: Sequence[Pause]) -> list[Pause]:
    """Sort and merge overlapping pause intervals; an open pause (end None) swallows what follows."""
    merged: list[Pause] = []
    for start, end in sorted(pauses, key=lambda p: _aware(p[0])):
        if end is not None and end < start:
            raise ValueError("a pause cannot end before it starts")
        if merged:
            last_start, last_end = merged[-1]
            if last_end is None:
                break
            if start <= last_end:
                merged[-1] = (last_start, None if end is None else max(last_end, end))
                continue
        merged.append((start, end))
    return merged


def due_at(
    start: datetime, timeline: Timeline, calendar: WorkingCalendar, pauses: Sequence[Pause] = ()
) -> datetime | None:
    """The moment the request is due; None while the clock is paused (an open pause)."""
    _aware(start)
    clock = _Clock(timeline, calendar, start)
    cursor, consumed = clock.begin, 0.0

    def finish(moment: datetime) -> datetime:
        moment = _ceil_midnight(moment, calendar) if clock.round_to_day else moment
        return moment.astimezone(start.tzinfo)

    for p_start, p_end in merge_pauses(pauses):
        if p_end is not None and p_end <= cursor:
            continue
        if p_start > cursor:
            segment = clock.measure(cursor, p_start)
            if consumed + segment >= clock.total:
                return finish(clock.advance(cursor, clock.total - consumed))
            consumed += segment
        if p_end is None:
            return None
        cursor = max(cursor, p_end)
    return finish(clock.advance(cursor, clock.total - consumed))


def paused_seconds(pauses: Sequence[Pause], *, until: datetime, since: datetime | None = None) -> float:
    """Wall-clock seconds of pause in [since, until] (an open pause counts up to `until`)."""
    total = 0.0
    for p_start, p_end in merge_pauses(pauses):
        lo = max(p_start, since) if since else p_start
        hi = min(p_end or until, until)
        if hi > lo:
            total += (hi - lo).total_seconds()
    return total


@dataclass(frozen=True)
class ClockState:
    status: str  # on_track / at_risk / breached
    fraction: float  # of the wall-clock span used (pauses excluded)
    paused: bool
    due: datetime | None
    seconds_left: float  # wall seconds to the due moment (negative: late)


def span_seconds(start: datetime, due: datetime, pauses: Sequence[Pause]) -> float:
    """Wall seconds from start to due with the pauses before `due` removed."""
    return max((due - start).total_seconds() - paused_seconds(pauses, until=due, since=start), 1.0)


def elapsed_fraction(start: datetime, due: datetime, pauses: Sequence[Pause], now: datetime) -> float:
    used = (now - start).total_seconds() - paused_seconds(pauses, until=now, since=start)
    return max(used, 0.0) / span_seconds(start, due, pauses)


def clock_state(
    *,
    start: datetime,
    timeline: Timeline,
    calendar: WorkingCalendar,
    pauses: Sequence[Pause] = (),
    now: datetime,
    at_risk_fraction: float = 0.75,
    stopped_at: datetime | None = None,
) -> ClockState:
    """Status at `now` (or at `stopped_at` when the request is closed)."""
    moment = stopped_at or now
    merged = merge_pauses(pauses)
    paused = bool(merged) and merged[-1][1] is None and merged[-1][0] <= moment
    if paused:
        # frozen at the moment the pause began: compute as if it had not begun yet
        pause_start = merged[-1][0]
        closed = merged[:-1]
        due = due_at(start, timeline, calendar, closed)
        fraction = elapsed_fraction(start, due, closed, pause_start)
        left = (due - pause_start).total_seconds()
    else:
        due = due_at(start, timeline, calendar, merged)
        fraction = elapsed_fraction(start, due, merged, moment)
        left = (due - moment).total_seconds()
    if left < 0:
        status = BREACHED
    elif fraction >= at_risk_fraction:
        status = AT_RISK
    else:
        status = ON_TRACK
    return ClockState(status=status, fraction=fraction, paused=paused, due=due, seconds_left=left)


def units_late(*, due: datetime, closed_at: datetime, per: str) -> int:
    """Started hours or days of delay past the due moment (0 when on time)."""
    late = (closed_at - due).total_seconds()
    if late <= 0:
        return 0
    size = 3600 if per == "hour" else DAY
    return int(-(-late // size))
