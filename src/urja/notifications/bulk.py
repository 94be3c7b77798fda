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
    """Queue `event` for the consumer of every account in `accounts`; returns the messages queued.
    One INSERT … SELECT per channel (the texts rendered once per language); `notify_accounts_rows`
    is the same in Python, kept as the reference the SQL is tested against."""
    spec = rendering.event_spec(event)  # unknown_event
    channels = [c for c in rendering.default_channels(event) if c in ("sms", "whatsapp")]
    rendering.check_context(event, {"consumer_name": "", **context}, spec)
    texts = {
        (language, channel): rendering.render(
            event=event, channel=channel, language=language, context={"consumer_name": "", **context}
        )
        for language in rendering_languages()
        for channel in channels
    }
    return sum(_insert_select(event, channel, texts, accounts, key) for channel in channels)


def rendering_languages() -> list[str]:
    from urja.customers.models import Consumer

    return [code for code, _ in Consumer._meta.get_field("preferred_language").choices]


def _insert_select(event, channel, texts, accounts: QuerySet, key: str) -> int:
    """INSERT INTO the outbox SELECT one row per account whose consumer has a usable mobile."""
    from django.db import connection

    table = OutboxMessage._meta.db_table
    q = connection.ops.quote_name
    now = timezone.now()
    account_sql, account_params = accounts.values("id").query.sql_with_params()
    languages = sorted({lang for lang, ch in texts if ch == channel})
    body_case = " ".join("WHEN %s THEN %s" for _ in languages)
    subject_case = body_case
    lang_case = body_case
    given = {
        "idempotency_key": ("%s || CAST(a.id AS VARCHAR(20)) || %s", [f"{key}:", f":{channel}"]),
        "event": ("%s", [event]),
        "channel": ("%s", [channel]),
        "to": ("m.value", []),
        "language": (
            f"CASE k.preferred_language {lang_case} ELSE %s END",
            [x for lang in languages for x in (lang, texts[(lang, channel)].language)] + [rendering.FALLBACK_LANGUAGE],
        ),
        "subject": (
            f"CASE k.preferred_language {subject_case} ELSE %s END",
            [x for lang in languages for x in (lang, texts[(lang, channel)].subject[:250])]
            + [texts[(rendering.FALLBACK_LANGUAGE, channel)].subject[:250]],
        ),
        "body": (
            f"CASE k.preferred_language {body_case} ELSE %s END",
            [x for lang in languages for x in (lang, texts[(lang, channel)].body)]
            + [texts[(rendering.FALLBACK_LANGUAGE, channel)].body],
        ),
        "status": ("%s", [OutboxStatus.QUEUED]),
        "next_attempt_at": ("%s", [now]),
        "consumer_id": ("a.consumer_id", []),
        "account_id": ("a.id", []),
    }
    columns, exprs, params = [], [], []
    for field in OutboxMessage._meta.concrete_fields:
        if field.primary_key:
            continue
        columns.append(q(field.column))
        if field.attname in given:
            expr, ps = given[field.attname]
        elif getattr(field, "auto_now_add", False) or getattr(field, "auto_now", False):
            expr, ps = "%s", [now]
        elif field.null:
            expr, ps = "NULL", []
        else:
            expr, ps = "%s", [field.get_db_prep_save(field.get_default(), connection)]
        exprs.append(expr)
        params.extend(ps)
    opt_in = " AND m.whatsapp_opt_in" if channel == "whatsapp" else ""
    sql = (
        f"INSERT INTO {table} ({', '.join(columns)}) SELECT {', '.join(exprs)}"
        " FROM customers_account a JOIN customers_consumer k ON k.id = a.consumer_id"
        " JOIN customers_contact m ON m.id = (SELECT c.id FROM customers_contact c WHERE c.consumer_id = a.consumer_id"
        " AND c.kind = 'mobile' AND c.verified ORDER BY c.is_primary DESC, c.id DESC LIMIT 1)"
        f" WHERE a.id IN ({account_sql}){opt_in} ON CONFLICT (idempotency_key) DO NOTHING"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, *account_params])
        return max(cursor.rowcount, 0)


def notify_accounts_rows(*, event: str, accounts: QuerySet, context: dict[str, Any], key: str) -> int:
    """The same as `notify_accounts`, row by row in Python (the reference of the set-based path)."""
    spec = rendering.event_spec(event)
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
