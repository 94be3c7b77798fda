"""Core services: number allocation and audit recording."""

from collections.abc import Mapping
from datetime import date

from django.db import transaction
from django.db.models import F

from . import ids
from .models import AuditEvent, Channel, NumberSeries


def allocate_numbers(
    *, key: str, template: str, count: int = 1, fields: Mapping[str, str] | None = None, today: date | None = None
) -> list[str]:
    """Allocate `count` consecutive numbers of a series; unique under concurrency.

    The increment is a single UPDATE (row lock on PostgreSQL, write lock on SQLite), so two
    transactions can never read the same counter value.
    """
    if count < 1:
        raise ValueError("count must be >= 1")
    with transaction.atomic():
        NumberSeries.objects.get_or_create(key=key, defaults={"template": template})
        NumberSeries.objects.filter(key=key).update(next_value=F("next_value") + count)
        series = NumberSeries.objects.get(key=key)
        first = series.next_value - count
    return ids.render_numbers(series.template, first=first, count=count, fields=fields, today=today)


def next_number(*, key: str, template: str, fields: Mapping[str, str] | None = None) -> str:
    return allocate_numbers(key=key, template=template, fields=fields)[0]


def record_audit(*, actor, channel: str, action: str, obj, changes: Mapping | None = None) -> AuditEvent:
    if channel not in Channel.values:
        raise ValueError(f"unknown channel {channel!r}")
    label = ""
    if actor is not None and getattr(actor, "is_authenticated", False):
        label = actor.get_username()
    elif actor is None:
        label = "system"
    return AuditEvent.objects.create(
        actor=actor if actor is not None and getattr(actor, "pk", None) else None,
        actor_label=label,
        channel=channel,
        action=action,
        object_type=obj._meta.label_lower,
        object_id=str(obj.pk),
        changes=_jsonable(changes or {}),
    )


def _jsonable(value):
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)
