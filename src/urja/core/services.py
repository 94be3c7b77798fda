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
    next_value, series_template = _advance(key, template, count)
    return ids.render_numbers(series_template, first=next_value - count, count=count, fields=fields, today=today)


def _advance(key: str, template: str, count: int) -> tuple[int, str]:
    """Advance the series by `count`, creating it first if new: (the new next_value, its template)."""
    row = _bump(key, count)
    if row is None:  # a new series: create it (a concurrent creator wins harmlessly), then bump
        with transaction.atomic():
            NumberSeries.objects.get_or_create(key=key, defaults={"template": template})
            row = _bump(key, count)
    return row


def _bump(key: str, count: int) -> tuple[int, str] | None:
    """Advance the series by `count`: (the new next_value, the series template), or None when
    there is no such series."""
    q = connection.ops.quote_name
    table, nxt, name, tpl = q(NumberSeries._meta.db_table), q("next_value"), q("key"), q("template")
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {table} SET {nxt} = {nxt} + %s WHERE {name} = %s RETURNING {nxt}, {tpl}", [count, key])
        row = cursor.fetchone()
    return (int(row[0]), row[1]) if row is not None else None


class NumberBlocks:
    """Numbers of series drawn a block at a time inside one transaction (a settlement file's receipts,
    chunk after chunk): a series is advanced once a block instead of once a chunk — and its caller
    need not wait on the database for most chunks. The numbers handed out are consecutive, as
    `allocate_numbers` gives them; `give_back()` (before the transaction ends) returns what is left
    of each series' last block. No gap: from its first draw the transaction holds the series' row
    lock (a write lock on SQLite), so no one drew after it."""

    def __init__(self, *, block: int, before_draw=None):
        """`before_draw`: called before each statement (a caller whose connection is shared with a
        thread waits for that thread there)."""
        self.block = block
        self.before_draw = before_draw or (lambda: None)
        self._series: dict[str, list] = {}  # key → [next to hand out, end of the blocks, template, last block]

    def take(self, *, key: str, template: str, count: int, fields: Mapping[str, str] | None = None) -> list[str]:
        if count < 1:
            raise ValueError("count must be >= 1")
        series = self._series.get(key)
        if series is None or series[1] - series[0] < count:
            # each block of a series twice the one before: a long file draws a few times, not once a block
            size = max(count, self.block if series is None else 2 * series[3])
            self.before_draw()
            end, series_template = _advance(key, template, size)
            if series is None or series[1] != end - size:  # the first block (blocks follow each other)
                series = self._series[key] = [end - size, end, series_template, size]
            else:
                series[1], series[3] = end, size
        first = series[0]
        series[0] += count
        return ids.render_numbers(series[2], first=first, count=count, fields=fields)

    def give_back(self) -> None:
        """Return the numbers drawn and not handed out (each series back to its next number)."""
        unused = [(key, next_value, end) for key, (next_value, end, *_) in self._series.items() if end > next_value]
        self._series.clear()
        if not unused:
            return
        self.before_draw()
        q = connection.ops.quote_name
        table, nxt, name = q(NumberSeries._meta.db_table), q("next_value"), q("key")
        with connection.cursor() as cursor:
            for key, next_value, end in unused:
                cursor.execute(
                    f"UPDATE {table} SET {nxt} = %s WHERE {name} = %s AND {nxt} = %s", [next_value, key, end]
                )


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
