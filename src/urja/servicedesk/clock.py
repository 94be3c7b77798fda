"""The service desk's notion of "now".

Everything time-dependent in the service desk (SLA status, the escalation sweep, feedback and
reopen windows) reads `now()`. Tests and demos can move this clock forward (`advance`) to see a
request escalate without waiting; production never calls `advance`.
"""

from datetime import datetime, timedelta

from django.utils import timezone

_offset = timedelta(0)


def now() -> datetime:
    return timezone.now() + _offset


def advance(**delta) -> timedelta:
    """Move the clock forward (e.g. ``advance(hours=5)``); returns the total offset."""
    global _offset
    _offset += timedelta(**delta)
    return _offset


def reset() -> None:
    global _offset
    _offset = timedelta(0)


def epoch(moment: datetime) -> int:
    return int(moment.timestamp())
