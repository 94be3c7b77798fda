"""Area messages in bulk: the same event to every consumer of many accounts (an outage on a DT or a
feeder), queued set-based. One render per (language, channel) — the context is the area's, not the
consumer's — one query for the contacts and one bulk insert into the outbox; `dispatch_due` (the
periodic sender) sends them like any queued message. Idempotent per (key, account, channel): a rerun
queues nothing twice.

Channels as `notify`: sms to the primary verified mobile (any verified mobile otherwise), whatsapp
only to a mobile that opted in; e-mail is not used for area messages (an SMS is what arrives in time).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db.models import QuerySet
from django.utils import timezone

from urja.customers.models import Contact

from . import rendering
from .models import OutboxMessage, OutboxStatus

CHUNK = 5000


def notify_accounts(*, event: str, accounts: QuerySet, context: dict[str, Any], key: str) -> int:
    """Queue `event` for the consumer of every account in `accounts`; returns the messages queued."""
    spec = rendering.event_spec(event)  # unknown_event
    channels = [c for c in rendering.default_channels(event) if c in ("sms", "whatsapp")]
    rendering.check_context(event, {"consumer_name": "", **context}, spec)
    rows = accounts.values_list("id", "consumer_id", "consumer__preferred_language").order_by("id")
    queued = 0
    cache: dict[tuple[str, str], rendering.Rendered] = {}
    now = timezone.now()
    batch: list[tuple[int, int, str]] = []
    for row in rows.iterator(chunk_size=CHUNK):
        batch.append(row)
        if len(batch) >= CHUNK:
            queued += _queue(event, channels, batch, context, key, cache, now)
            batch = []
    if batch:
        queued += _queue(event, channels, batch, context, key, cache, now)
    return queued


def _mobiles(consumer_ids: Iterable[int]) -> dict[int, tuple[str, bool]]:
    """{consumer: (mobile, whatsapp opt-in)}: the primary verified mobile, else any verified one."""
    best: dict[int, tuple[bool, int, str, bool]] = {}
    for cid, primary, pk, value, opt_in in Contact.objects.filter(
        consumer_id__in=list(consumer_ids), kind="mobile", verified=True
    ).values_list("consumer_id", "is_primary", "id", "value", "whatsapp_opt_in"):
        candidate = (primary, pk, value, opt_in)
        if cid not in best or candidate[:2] > best[cid][:2]:
            best[cid] = candidate
    return {cid: (c[2], c[3]) for cid, c in best.items()}


def _queue(event, channels, batch, context, key, cache, now) -> int:
    mobiles = _mobiles({consumer for _, consumer, _ in batch})
    messages = []
    for account_id, consumer_id, language in batch:
        contact = mobiles.get(consumer_id)
        if contact is None:
            continue
        to, opt_in = contact
        language = language or rendering.FALLBACK_LANGUAGE
        for channel in channels:
            if channel == "whatsapp" and not opt_in:
                continue
            text = cache.get((language, channel))
            if text is None:
                text = cache[(language, channel)] = rendering.render(
                    event=event, channel=channel, language=language, context={"consumer_name": "", **context}
                )
            messages.append(
                OutboxMessage(
                    idempotency_key=f"{key}:{account_id}:{channel}"[:200],
                    event=event,
                    channel=channel,
                    to=to,
                    language=text.language,
                    subject=text.subject[:250],
                    body=text.body,
                    status=OutboxStatus.QUEUED,
                    next_attempt_at=now,
                    consumer_id=consumer_id,
                    account_id=account_id,
                )
            )
    before = OutboxMessage.objects.filter(idempotency_key__in=[m.idempotency_key for m in messages]).count()
    OutboxMessage.objects.bulk_create(messages, ignore_conflicts=True, batch_size=CHUNK)
    return len(messages) - before
