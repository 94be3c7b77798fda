"""Area messages in bulk: the same event to every consumer of many accounts (an outage on a DT or a
feeder; every outage a detector pass declares), queued set-based. One render per (area, language,
channel) — the context is the area's, not the consumer's — and ONE `INSERT … SELECT` into the outbox for
every area and channel; `dispatch_due` (the periodic sender) sends them like any queued message.
Idempotent per (key, account, channel): a rerun queues nothing twice.

Channels as `notify`: sms to the primary verified mobile (any verified mobile otherwise), whatsapp
only to a mobile that opted in; e-mail is not used for area messages (an SMS is what arrives in time).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from urja.customers.models import Contact

from . import rendering
from .models import OutboxMessage, OutboxStatus

CHUNK = 5000


@dataclass(frozen=True)
class AreaMessage:
    """One area's message: the same text (its own context) to the consumers of `accounts`, keyed
    `{key}:{account}:{channel}`."""

    accounts: QuerySet
    context: dict[str, Any]
    key: str


def notify_accounts(*, event: str, accounts: QuerySet, context: dict[str, Any], key: str) -> int:
    """Queue `event` for the consumer of every account in `accounts`; returns the messages queued.
    `notify_accounts_rows` is the same in Python, kept as the reference the SQL is tested against."""
    return notify_areas(event=event, messages=[AreaMessage(accounts, context, key)])


def notify_areas(*, event: str, messages: Sequence[AreaMessage]) -> int:
    """Queue `event` for many areas at once (every outage a detector pass declares): the texts rendered
    once per (area, language, channel) in Python, then ONE `INSERT … SELECT` for every recipient of every
    area and both channels (sms; whatsapp where the mobile opted in). Idempotent per (key, account,
    channel): a rerun, or an account in two areas under the same key, queues nothing twice."""
    if not messages:
        return 0
    spec = rendering.event_spec(event)  # unknown_event
    channels = [c for c in rendering.default_channels(event) if c in ("sms", "whatsapp")]
    if not channels:
        return 0
    languages = rendering_languages()
    texts = []  # (area, language asked, channel, language used, subject, body, key prefix, key suffix)
    for g, message in enumerate(messages):
        context = {"consumer_name": "", **message.context}
        rendering.check_context(event, context, spec)  # missing_context: nothing queued for any area
        for language in languages:
            for channel in channels:
                text = rendering.render(event=event, channel=channel, language=language, context=context)
                texts.append((g, language, channel, text.language, text.subject[:250], text.body,
                              f"{message.key}:", f":{channel}"))  # fmt: skip
    return _insert_areas(event, messages, texts, languages)


def rendering_languages() -> list[str]:
    from urja.customers.models import Consumer

    return [code for code, _ in Consumer._meta.get_field("preferred_language").choices]


def _insert_areas(event: str, messages: Sequence[AreaMessage], texts: list[tuple], languages: list[str]) -> int:
    """INSERT INTO the outbox SELECT one row per (area, account, channel) whose consumer has a usable
    mobile: the areas' accounts and the rendered texts are CTEs; the recipients (language asked, best
    verified mobile: one correlated lookup per account on the consumer's contacts' index) a materialised
    CTE, joined to the texts by (area, language)."""
    from django.db import connection

    q = connection.ops.quote_name
    now = timezone.now()
    targets, target_params = [], []
    for g, message in enumerate(messages):
        sql, params = message.accounts.values("id").query.sql_with_params()
        targets.append(f"SELECT {int(g)} AS g, u.id AS account_id FROM ({sql}) u")
        target_params.extend(params)
    rows = ", ".join("(%s, %s, %s, %s, %s, %s, %s, %s)" for _ in texts)
    text_params = [x for row in texts for x in row]
    given = {
        "idempotency_key": ("x.key_prefix || CAST(a.account_id AS VARCHAR(20)) || x.key_suffix", []),
        "event": ("%s", [event]),
        "channel": ("x.channel", []),
        "to": ("m.value", []),
        "language": ("x.used", []),
        "subject": ("x.subject", []),
        "body": ("x.body", []),
        "status": ("%s", [OutboxStatus.QUEUED]),
        "next_attempt_at": ("%s", [now]),
        "consumer_id": ("a.consumer_id", []),
        "account_id": ("a.account_id", []),
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
    asked = "CASE WHEN k.preferred_language IN ({}) THEN k.preferred_language ELSE %s END".format(
        ", ".join("%s" for _ in languages)
    )
    # INSERT first, the WITH inside it: a statement that starts with WITH gets no rowcount from sqlite3.
    # The recipients (account, consumer's language, best verified mobile) are found once per account and
    # materialised before the texts are joined, so the mobile lookup is not repeated per text.
    sql = (
        f"INSERT INTO {q(OutboxMessage._meta.db_table)} ({', '.join(columns)})"
        f" WITH targets (g, account_id) AS ({' UNION ALL '.join(targets)}),"
        f" texts (g, asked, channel, used, subject, body, key_prefix, key_suffix) AS (VALUES {rows}),"
        " recipients AS MATERIALIZED (SELECT t.g AS g, a.id AS account_id, a.consumer_id AS consumer_id,"
        f" {asked} AS asked, (SELECT c.id FROM customers_contact c WHERE c.consumer_id = a.consumer_id"
        " AND c.kind = 'mobile' AND c.verified ORDER BY c.is_primary DESC, c.id DESC LIMIT 1) AS contact_id"
        " FROM targets t JOIN customers_account a ON a.id = t.account_id"
        " JOIN customers_consumer k ON k.id = a.consumer_id)"
        f" SELECT {', '.join(exprs)}"
        " FROM recipients a JOIN customers_contact m ON m.id = a.contact_id"
        " JOIN texts x ON x.g = a.g AND x.asked = a.asked"
        " WHERE x.channel = 'sms' OR (x.channel = 'whatsapp' AND m.whatsapp_opt_in)"
        " ON CONFLICT (idempotency_key) DO NOTHING"
    )
    all_params = [*target_params, *text_params, *languages, rendering.FALLBACK_LANGUAGE, *params]
    with transaction.atomic(), connection.cursor() as cursor:
        jit = None
        if connection.vendor == "postgresql":
            # PostgreSQL's JIT compiles this statement for seconds (the planner's cost of 100,000
            # correlated lookups passes jit_above_cost) to save milliseconds: off for this statement only
            cursor.execute("SELECT current_setting('jit'), set_config('jit', 'off', true)")
            jit = cursor.fetchone()[0]
        cursor.execute(sql, all_params)
        queued = max(cursor.rowcount, 0)
        if jit is not None:
            cursor.execute("SELECT set_config('jit', %s, true)", [jit])
        return queued


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
