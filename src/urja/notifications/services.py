"""Notifications: the one way every part of Urja talks to consumers and staff.

    notify(event="bill.issued", consumer=consumer, account=account, idempotency_key=f"bill:{bill.pk}",
           context={"bill_number": ..., "amount": Decimal(...), "due_date": date(...)})

renders the event's template (data/notifications/templates.toml) in the consumer's preferred
language (English when missing) and queues one OutboxMessage per channel with idempotency key
f"{idempotency_key}:{channel}" — calling again creates nothing new. Sending is a Celery task
enqueued on commit; it claims the message with a conditional UPDATE, so a message is sent once.
"""

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from functools import partial

from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from urja.core.errors import DomainError
from urja.core.services import record_audit

from . import rendering
from .channels import PermanentFailure, TemporaryFailure, get_channel
from .models import OUTBOX_STATUS, OutboxMessage, OutboxStatus
from .policy import load_policy

log = logging.getLogger(__name__)

MOBILE_CHANNELS = ("sms", "whatsapp")
# States a worker may claim from: those with an allowed transition to 'sending'.
CLAIMABLE = [s for s in OutboxStatus.values if OutboxStatus.SENDING in OUTBOX_STATUS.allowed(s)]


# --- queueing ------------------------------------------------------------------------------------


def _check_channels(channels: list[str]) -> None:
    unknown = [c for c in channels if c not in rendering.CHANNELS]
    if unknown:
        raise DomainError(
            f"unknown notification channel(s) {', '.join(unknown)}",
            code="unknown_channel",
            details={"unknown": unknown, "allowed": list(rendering.CHANNELS)},
        )


def _check_key(idempotency_key: str) -> None:
    if not idempotency_key or not str(idempotency_key).strip():
        raise DomainError("an idempotency key is required", code="idempotency_key_required")
    if len(idempotency_key) > 180:
        raise DomainError("idempotency key longer than 180 characters", code="idempotency_key_too_long")


def _pick_contacts(consumer) -> tuple:
    """(mobile, email) contacts to use, from one query. Mobile: the primary verified one (any verified
    mobile when the primary is not verified). E-mail: verified before unverified, primary first."""
    contacts = list(consumer.contacts.all())
    mobiles = [c for c in contacts if c.kind == "mobile" and c.verified]
    emails = [c for c in contacts if c.kind == "email"]
    mobiles.sort(key=lambda c: (c.is_primary, c.verified_at.timestamp() if c.verified_at else 0.0, c.id), reverse=True)
    emails.sort(key=lambda c: (c.verified, c.is_primary, c.id), reverse=True)
    return (mobiles[0] if mobiles else None), (emails[0] if emails else None)


def _enqueue(message_id: int) -> None:
    from urja.core.jobs import send

    from .tasks import send_message

    send(send_message, message_id)  # a refused broker defers the call: the message is committed


def _enqueue_many(message_ids: list[int]) -> None:
    from urja.core.jobs import send

    from .tasks import send_messages

    send(send_messages, message_ids)


# Messages queued inside `batched_delivery()` on this thread: their ids, sent as one task at the end.
_batch = threading.local()


@contextmanager
def batched_delivery() -> Iterator[None]:
    """The messages queued in the block are sent by one task (`send_messages`) instead of one task
    each — for a bulk event (the e-bills of a bill run's chunk, the bot's replies of a batch), where a
    task a message costs a commit and an eager task's overhead each. Inside a transaction the task is
    enqueued when it commits; around a loop of transactions (each message its own), at the block's
    end, so it finds every reply committed (one whose transaction rolled back is skipped as not
    claimable)."""
    if getattr(_batch, "ids", None) is not None:  # nested: the outer block sends them
        yield
        return
    _batch.ids = ids = []
    try:
        yield
    finally:
        _batch.ids = None
    if ids:
        transaction.on_commit(partial(_enqueue_many, ids))


def _create(
    *, key: str, rendered: rendering.Rendered, to: str, consumer, account, payload: dict | None = None
) -> OutboxMessage:
    """Insert the message or return the one already holding the key (a concurrent call)."""
    try:
        with transaction.atomic():
            message = OutboxMessage.objects.create(
                idempotency_key=key,
                event=rendered.event,
                channel=rendered.channel,
                to=to,
                language=rendered.language,
                subject=rendered.subject[:250],
                body=rendered.body,
                status=OutboxStatus.QUEUED,
                next_attempt_at=timezone.now(),
                consumer=consumer,
                account=account,
                payload=payload or {},
            )
    except IntegrityError:
        return OutboxMessage.objects.get(idempotency_key=key)
    batch = getattr(_batch, "ids", None)
    if batch is not None:
        batch.append(message.pk)
    else:
        transaction.on_commit(partial(_enqueue, message.pk))
    return message


def notify(
    *,
    event: str,
    consumer,
    context: dict,
    idempotency_key: str,
    channels: list[str] | None = None,
    account=None,
) -> list[OutboxMessage]:
    """Queue `event` for `consumer` on `channels` (default: the event's channels from the templates
    file). sms/whatsapp go to the primary verified mobile — whatsapp only when that contact opted in
    or whatsapp was asked for explicitly; email to the e-mail contact. Channels without a usable
    contact are skipped (logged). Returns the messages of this key (new or already queued)."""
    spec = rendering.event_spec(event)  # unknown_event
    _check_key(idempotency_key)
    explicit = channels is not None
    wanted = list(dict.fromkeys(channels)) if channels is not None else rendering.default_channels(event)
    _check_channels(wanted)
    context = {"consumer_name": consumer.name, **dict(context)}
    if account is not None:
        context.setdefault("consumer_number", account.consumer_number)
    rendering.check_context(event, context, spec)  # missing_context, before anything is skipped
    language = consumer.preferred_language or rendering.FALLBACK_LANGUAGE

    existing = {
        m.channel: m
        for m in OutboxMessage.objects.filter(idempotency_key__in=[f"{idempotency_key}:{c}" for c in wanted])
    }
    mobile = email = None
    if any(c not in existing for c in wanted):
        mobile, email = _pick_contacts(consumer)

    planned: list[tuple[str, str]] = []  # (channel, address)
    for channel in wanted:
        if channel in existing:
            continue
        contact = email if channel == "email" else mobile
        if contact is None:
            log.debug(
                "notify %s [%s]: consumer %s has no usable %s contact",
                event,
                idempotency_key,
                consumer.pk,
                "e-mail" if channel == "email" else "verified mobile",
            )
            continue
        if channel == "whatsapp" and not (explicit or contact.whatsapp_opt_in):
            log.debug("notify %s: consumer %s has not opted in to WhatsApp", event, consumer.pk)
            continue
        planned.append((channel, contact.value))

    rendered = [
        (channel, to, rendering.render(event=event, channel=channel, language=language, context=context))
        for channel, to in planned
    ]
    created: dict[str, OutboxMessage] = {}
    # all channels or none; inside the caller's transaction that transaction is enough (each insert
    # has its own savepoint in _create), so no extra savepoint round trips here
    with transaction.atomic(savepoint=False):
        for channel, to, text in rendered:
            created[channel] = _create(
                key=f"{idempotency_key}:{channel}", rendered=text, to=to, consumer=consumer, account=account
            )
    if not existing and not created:
        log.info("notify %s [%s]: no message for consumer %s (no usable contact)", event, idempotency_key, consumer.pk)
    return [existing.get(c) or created[c] for c in wanted if c in existing or c in created]


def notify_address(
    *,
    event: str,
    channel: str,
    to: str,
    language: str,
    context: dict,
    idempotency_key: str,
    consumer=None,
    account=None,
    payload: dict | None = None,
) -> OutboxMessage:
    """Queue `event` to a raw address (a staff mobile, a contact being verified, an applicant's
    e-mail). `to` is normalised (E.164 mobile / lower-case e-mail); language falls back to English.
    `payload`: what the channel's sender needs besides the text (a bot reply's WhatsApp shape, an
    SMS's DLT template id), stored with the message; a message already queued under the key keeps its
    own."""
    from urja.customers.services import normalise_contact

    rendering.event_spec(event)
    _check_key(idempotency_key)
    _check_channels([channel])
    address = normalise_contact("email" if channel == "email" else "mobile", to)
    if consumer is not None:
        context = {"consumer_name": consumer.name, **dict(context)}
    if account is not None:
        context = {"consumer_number": account.consumer_number, **dict(context)}
    key = f"{idempotency_key}:{channel}"
    existing = OutboxMessage.objects.filter(idempotency_key=key).first()
    if existing is not None:
        return existing
    rendered = rendering.render(event=event, channel=channel, language=language or "en", context=context)
    # _create's own atomic block is the only one needed (one savepoint inside a caller's transaction)
    return _create(key=key, rendered=rendered, to=address, consumer=consumer, account=account, payload=payload)


# --- sending -------------------------------------------------------------------------------------


def claim(*, message_id: int, now=None) -> OutboxMessage | None:
    """Take the message for sending: one conditional UPDATE (queued/failed and due → sending,
    attempts + 1). Returns the message when this caller won, None when someone else did or it is
    not due / already final."""
    now = now or timezone.now()
    won = OutboxMessage.objects.filter(pk=message_id, status__in=CLAIMABLE, next_attempt_at__lte=now).update(
        status=OutboxStatus.SENDING, attempts=F("attempts") + 1, claimed_at=now
    )
    if not won:
        return None
    return OutboxMessage.objects.get(pk=message_id)


def _finish(message: OutboxMessage, status: str, **fields) -> bool:
    """Move a claimed message out of 'sending' — only if it is still our claim."""
    OUTBOX_STATUS.check(message.status, status)
    done = OutboxMessage.objects.filter(
        pk=message.pk, status=OutboxStatus.SENDING, claimed_at=message.claimed_at
    ).update(status=status, **fields)
    if done:
        message.status = status
        for name, value in fields.items():
            setattr(message, name, value)
    return bool(done)


def _send_claimed(message: OutboxMessage, policy) -> str:
    """Send a message this caller claimed and move it to sent, failed (with backoff) or dead."""
    try:
        provider_id = get_channel(message.channel).send(message)
    except PermanentFailure as exc:
        log.warning("outbox %s permanently failed: %s", message.pk, exc)
        _finish(message, OutboxStatus.DEAD, last_error=str(exc)[:2000])
    except Exception as exc:  # TemporaryFailure and anything unexpected: retry with backoff
        error = str(exc) if isinstance(exc, TemporaryFailure) else f"{exc.__class__.__name__}: {exc}"
        if message.attempts >= policy.max_attempts:
            log.warning("outbox %s dead after %s attempts: %s", message.pk, message.attempts, error)
            _finish(message, OutboxStatus.DEAD, last_error=error[:2000])
        else:
            delay = policy.backoff_seconds(message.attempts)
            _finish(
                message,
                OutboxStatus.FAILED,
                last_error=error[:2000],
                next_attempt_at=timezone.now() + timedelta(seconds=delay),
            )
    else:
        _finish(message, OutboxStatus.SENT, provider_message_id=str(provider_id)[:200], sent_at=timezone.now())
    return message.status


def deliver(*, message_id: int, now=None) -> str:
    """Claim and send one message through its channel; returns the resulting status ('skipped'
    when it was not claimable)."""
    message = claim(message_id=message_id, now=now)
    if message is None:
        return "skipped"
    return _send_claimed(message, load_policy())


def deliver_many(*, message_ids: list[int], now=None) -> dict[str, int]:
    """Claim the claimable ones of `message_ids` in one transaction, send each, and record the
    outcomes one by one; returns how many ended in each status ('skipped': not claimable — sent
    already, someone else's claim, not due). The claim is committed before anything is sent, as in
    `deliver`, so a worker lost mid-batch leaves 'sending' messages for `dispatch_due`, never a
    message sent twice by two workers."""
    now = now or timezone.now()
    with transaction.atomic():
        # rows another worker holds are skipped, not waited for (no-op on SQLite, whose
        # IMMEDIATE transactions already serialise this)
        mine = list(
            OutboxMessage.objects.select_for_update(skip_locked=True)
            .filter(pk__in=message_ids, status__in=CLAIMABLE, next_attempt_at__lte=now)
            .order_by("pk")
        )
        OutboxMessage.objects.filter(pk__in=[m.pk for m in mine]).update(
            status=OutboxStatus.SENDING, attempts=F("attempts") + 1, claimed_at=now
        )
    for message in mine:
        message.status, message.attempts, message.claimed_at = OutboxStatus.SENDING, message.attempts + 1, now
    policy = load_policy()
    outcome = {"skipped": len(set(message_ids)) - len(mine)}
    for message in mine:  # each outcome committed as soon as known: a crash re-sends at most one
        status = _send_claimed(message, policy)
        outcome[status] = outcome.get(status, 0) + 1
    return outcome


def dispatch_due(*, now=None) -> dict:
    """Periodic sweep: stuck 'sending' messages (older than the timeout) become failed (or dead when
    out of attempts); due failed messages and queued messages whose on-commit task did not run are
    enqueued. Safe to run concurrently: every send claims first."""
    now = now or timezone.now()
    policy = load_policy()
    cutoff = now - timedelta(seconds=policy.sending_timeout_seconds)
    stuck = OutboxMessage.objects.filter(status=OutboxStatus.SENDING, claimed_at__lt=cutoff)
    error = f"no result within {int(policy.sending_timeout_seconds)}s of sending (worker lost?)"
    dead = stuck.filter(attempts__gte=policy.max_attempts).update(status=OutboxStatus.DEAD, last_error=error)
    retried = stuck.update(status=OutboxStatus.FAILED, last_error=error, next_attempt_at=now)
    due = list(
        OutboxMessage.objects.filter(
            Q(status=OutboxStatus.FAILED, next_attempt_at__lte=now)
            | Q(status=OutboxStatus.QUEUED, next_attempt_at__lte=now - timedelta(seconds=policy.queued_grace_seconds))
        )
        .order_by("next_attempt_at", "id")
        .values_list("pk", flat=True)[: policy.batch_size]
    )
    for pk in due:
        _enqueue(pk)
    return {"stuck_retried": retried, "stuck_dead": dead, "enqueued": len(due)}


@transaction.atomic
def requeue(*, actor, channel: str, message: OutboxMessage) -> OutboxMessage:
    """Staff: give a dead message a fresh set of attempts."""
    message = OutboxMessage.objects.select_for_update().get(pk=message.pk)
    OUTBOX_STATUS.check(message.status, OutboxStatus.QUEUED)
    message.status = OutboxStatus.QUEUED
    message.attempts = 0
    message.next_attempt_at = timezone.now()
    message.claimed_at = None
    message.save(update_fields=["status", "attempts", "next_attempt_at", "claimed_at"])
    record_audit(actor=actor, channel=channel, action="outbox.requeued", obj=message, changes={"status": "queued"})
    transaction.on_commit(partial(_enqueue, message.pk))
    return message


# --- delivery reports ------------------------------------------------------------------------------

DELIVERY_RANK = {"sent": 0, "delivered": 1, "read": 2, "failed": 3}


def record_delivery(*, provider_message_id: str, status: str, at=None) -> int:
    """A provider's delivery report (WhatsApp statuses: sent, delivered, read, failed) on the messages it
    names; a report never moves a message back (read stays read when a late 'delivered' arrives).
    Returns how many messages changed."""
    if status not in DELIVERY_RANK or not provider_message_id:
        return 0
    lower = [s for s, rank in DELIVERY_RANK.items() if rank < DELIVERY_RANK[status]]
    return (
        OutboxMessage.objects.filter(provider_message_id=provider_message_id)
        .filter(Q(delivery_status__in=["", *lower]))
        .update(delivery_status=status, delivery_at=at or timezone.now())
    )
