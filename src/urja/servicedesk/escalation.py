"""The escalation sweep: set-based, idempotent, safe to run concurrently or to kill half-way.

For every open, unpaused request whose escalation pointer (`EscalationClock`, a narrow table of
its own) has passed, SQL computes which tiers
of its type have been reached — tier reached when

    clock_start_ts + paused_seconds + tier.fraction * span_seconds <= now

— claims the request with a conditional UPDATE (its escalation level must still be what the
sweep read) and inserts one Escalation row per tier reached. The unique (request, level)
constraint means a request is never escalated twice to the same level, whatever runs twice.
Then each tier's holder (staff with the manager role at the tier's office) gets one notice per
sweep listing how many requests reached them.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import datetime

from django.db import connection, transaction

from urja.network.models import Office

from . import clock
from .models import Escalation, EscalationClock
from .services import holder_office, notice_holders

C = EscalationClock._meta.db_table
T = "servicedesk_escalationtier"
E = Escalation._meta.db_table

_REACHED = "c.clock_start_ts + c.paused_seconds + t.fraction * c.span_seconds"
_PG_SWEEP = f"""
WITH x AS (
    SELECT c.request_id, c.escalation_level AS old_level,
           MAX(t.level) FILTER (WHERE {_REACHED} <= %(now)s) AS new_level,
           MIN(CEIL({_REACHED})) FILTER (WHERE {_REACHED} > %(now)s) AS next_ts
    FROM {C} c
    JOIN {T} t ON t.request_type_id = c.request_type_id AND t.level > c.escalation_level
    WHERE c.next_escalation_ts <= %(now)s
    GROUP BY c.request_id, c.escalation_level
),
claimed AS (
    UPDATE {C} c
    SET escalation_level = x.new_level, next_escalation_ts = x.next_ts::bigint
    FROM x
    WHERE c.request_id = x.request_id AND c.escalation_level = x.old_level
      AND c.next_escalation_ts <= %(now)s AND x.new_level IS NOT NULL
    RETURNING c.request_id, c.request_type_id, c.office_id, x.old_level, x.new_level
),
inserted AS (
    INSERT INTO {E} (request_id, level, title, office_level, reason, fraction, sweep, created_at)
    SELECT cl.request_id, t.level, t.title, t.office_level, 'sla', t.fraction, %(sweep)s, %(at)s
    FROM claimed cl
    JOIN {T} t ON t.request_type_id = cl.request_type_id AND t.level > cl.old_level AND t.level <= cl.new_level
    ON CONFLICT (request_id, level) DO NOTHING
    RETURNING request_id, level, title, office_level
)
SELECT cl.office_id, i.office_level, i.level, i.title, COUNT(*)
FROM inserted i JOIN claimed cl ON cl.request_id = i.request_id
GROUP BY cl.office_id, i.office_level, i.level, i.title
"""

# SQLite (the embedded default): one writer at a time, so two statements in one transaction.
_SQLITE_INSERT = f"""
INSERT INTO {E} (request_id, level, title, office_level, reason, fraction, sweep, created_at)
SELECT c.request_id, t.level, t.title, t.office_level, 'sla', t.fraction, %(sweep)s, %(at)s
FROM {C} c JOIN {T} t ON t.request_type_id = c.request_type_id
WHERE c.next_escalation_ts <= %(now)s
  AND t.level > c.escalation_level
  AND c.clock_start_ts + c.paused_seconds + t.fraction * c.span_seconds <= %(now)s
ON CONFLICT (request_id, level) DO NOTHING
"""
_SQLITE_GROUPS = f"""
SELECT c.office_id, e.office_level, e.level, e.title, COUNT(*)
FROM {E} e JOIN {C} c ON c.request_id = e.request_id
WHERE e.sweep = %(sweep)s
GROUP BY c.office_id, e.office_level, e.level, e.title
"""
_SQLITE_UPDATE = f"""
UPDATE {C} SET
    escalation_level = COALESCE((SELECT MAX(e.level) FROM {E} e WHERE e.request_id = {C}.request_id), escalation_level),
    next_escalation_ts = (
        SELECT MIN(CAST(x AS INTEGER) + (x > CAST(x AS INTEGER))) FROM (
            SELECT {C}.clock_start_ts + {C}.paused_seconds + t.fraction * {C}.span_seconds AS x
            FROM {T} t WHERE t.request_type_id = {C}.request_type_id
              AND t.level > COALESCE((SELECT MAX(e.level) FROM {E} e WHERE e.request_id = {C}.request_id), 0)
        )
    )
WHERE next_escalation_ts <= %(now)s
"""


def sweep(*, now: datetime | None = None, notify: bool = True) -> dict:
    """Escalate every request that reached a tier by `now`. Returns counts."""
    now = now or clock.now()
    sweep_id = uuid.uuid4().hex
    params = {"now": clock.epoch(now), "sweep": sweep_id, "at": now}
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(_PG_SWEEP, params)
        else:
            cursor.execute(_SQLITE_INSERT, params)
            cursor.execute(_SQLITE_UPDATE, params)
            cursor.execute(_SQLITE_GROUPS, params)
        groups = cursor.fetchall()
    escalated = sum(row[4] for row in groups)
    notified = notify_holders(sweep_id, groups) if notify and escalated else 0
    return {"sweep": sweep_id, "escalated": escalated, "notices": notified}


def notify_holders(sweep_id: str, groups: list[tuple]) -> int:
    """One notice per holder office and tier for this sweep (counts, not one per request).
    `groups`: (request office id, tier office level, level, title, count)."""
    offices: dict[int, Office] = {}
    per_holder: dict[tuple[int, int, str], int] = defaultdict(int)
    for office_id, office_level, level, title, count in groups:
        if office_id not in offices:
            offices[office_id] = Office.objects.get(pk=office_id)
        holder = holder_office(offices[office_id], office_level)
        offices.setdefault(holder.pk, holder)
        per_holder[(holder.pk, level, title)] += count
    sent = 0
    for (holder_id, level, title), count in per_holder.items():
        sent += notice_holders(
            office=offices[holder_id],
            text=f"{count} request(s) escalated to you ({title}, level {level})",
            key=f"sweep:{sweep_id}:{holder_id}:{level}",
        )
    return sent
