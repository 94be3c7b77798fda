"""Core services: number allocation and audit recording."""

from collections.abc import Mapping
from datetime import date

from django.db import connection, transaction

from . import ids
from .models import AuditEvent, Channel, NumberSeries


def allocate_numbers(
    *, key: str, template: str, count: int = 1, fields: Mapping[str, str] | None = None, today: date | None = None
) -> list[str]:
    """Allocate `count` consecutive numbers of a series; unique under concurrency.

    The increment is a single UPDATE … RETURNING (row lock on PostgreSQL, write lock on SQLite),
    so two transactions can never read the same counter value. Outside a transaction it is one
    statement in autocommit: the lock is held for that statement only, not for the caller's work.
    """
    if count < 1:
        raise ValueError("count must be >= 1")
    row = _bump(key, count)
    if row is None:  # a new series: create it (a concurrent creator wins harmlessly), then bump
        with transaction.atomic():
            NumberSeries.objects.get_or_create(key=key, defaults={"template": template})
            row = _bump(key, count)
    next_value, series_template = row
    return ids.render_numbers(series_template, first=next_value - count, count=count, fields=fields, today=today)


def _bump(key: str, count: int) -> tuple[int, str] | None:
    """Advance the series by `count`: (the new next_value, the series template), or None when
    there is no such series."""
    q = connection.ops.quote_name
    table, nxt, name, tpl = q(NumberSeries._meta.db_table), q("next_value"), q("key"), q("template")
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {table} SET {nxt} = {nxt} + %s WHERE {name} = %s RETURNING {nxt}, {tpl}", [count, key])
        row = cursor.fetchone()
    return (int(row[0]), row[1]) if row is not None else None


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
