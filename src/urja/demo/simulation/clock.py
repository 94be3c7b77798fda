"""The simulation's clock: every service reads the time through `django.utils.timezone.now`
(and `localdate`/`localtime`, which call it), so a simulated month is lived at its own dates by
setting this clock instead of passing dates to services that do not take them."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, time, timedelta

from django.utils import timezone as dj_timezone

from urja.core.calendars import IST


class SimClock:
    """A settable clock that only moves forward (a step back would make audit trails lie)."""

    def __init__(self, start: datetime, *, limit: datetime | None = None):
        self.current = start
        self.limit = limit  # the real present: a simulated event after it is a simulation bug

    def __call__(self) -> datetime:
        return self.current

    def set(self, moment: datetime) -> datetime:
        if self.limit is not None and moment > self.limit:
            raise RuntimeError(f"the simulation clock may not pass the present ({moment} > {self.limit})")
        self.current = max(self.current, moment)
        return self.current

    def at(self, day: date, hour: int = 10, minute: int = 0) -> datetime:
        """Move to `day` at local `hour:minute` (Asia/Kolkata)."""
        return self.set(datetime.combine(day, time(hour, minute), IST))

    def tick(self, seconds: float = 1) -> datetime:
        return self.set(self.current + timedelta(seconds=seconds))

    def today(self) -> date:
        return dj_timezone.localdate(self.current)


@contextmanager
def simulated_time(clock: SimClock) -> Iterator[SimClock]:
    """Route `timezone.now()` to `clock` for the duration (restored even on error)."""
    real = dj_timezone.now
    dj_timezone.now = clock
    try:
        yield clock
    finally:
        dj_timezone.now = real
