"""Template filters for notification texts (builtins of the notifications template engine)."""

import datetime as dt

from django import template
from django.utils import timezone

from urja.core.money import format_inr

register = template.Library()


@register.filter
def inr(value) -> str:
    """Rupees with Indian digit grouping, no symbol: 123456.5 -> '1,23,456.50'."""
    if value in (None, ""):
        return ""
    return format_inr(value)


def _local(value):
    if isinstance(value, dt.datetime):
        return timezone.localtime(value) if timezone.is_aware(value) else value
    return value


@register.filter
def when(value) -> str:
    """A date as 31-12-2025; a date-time as 31-12-2025 14:30 (Indian time)."""
    if value in (None, ""):
        return ""
    if isinstance(value, str):
        return value
    value = _local(value)
    if isinstance(value, dt.datetime):
        return value.strftime("%d-%m-%Y %H:%M")
    if isinstance(value, dt.date):
        return value.strftime("%d-%m-%Y")
    return str(value)


@register.filter
def when_after(value, start) -> str:
    """Like `when`, but only the time when `value` falls on the same day as `start`."""
    if isinstance(value, dt.datetime) and isinstance(start, dt.datetime):
        local, local_start = _local(value), _local(start)
        if local.date() == local_start.date():
            return local.strftime("%H:%M")
    return when(value)
