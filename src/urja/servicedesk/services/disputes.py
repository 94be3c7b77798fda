"""Disputes: hearings of the grievance/counselling cell and their outcomes."""

from __future__ import annotations

from datetime import datetime

from django.db import transaction

from urja.core.errors import Conflict, DomainError
from urja.servicedesk import clock
from urja.servicedesk.models import (
    Hearing,
    RequestEvent,
    ServiceRequest,
)
from urja.servicedesk.selectors import _local
from urja.servicedesk.services._base import _event, _save, notify_consumer
from urja.servicedesk.services.workflow import _lock, _set_status


@transaction.atomic
def schedule_hearing(*, actor, channel: str, request: ServiceRequest, scheduled_for: datetime, venue: str) -> Hearing:
    request = _lock(request)
    if request.workflow != "dispute":
        raise DomainError("only billing and arrear disputes go to the hearing cell", code="not_a_dispute")
    if scheduled_for <= clock.now():
        raise DomainError("a hearing must be scheduled in the future", code="hearing_in_past")
    if not venue.strip():
        raise DomainError("name the hearing venue", code="venue_required")
    if request.status != "hearing_scheduled":
        _set_status(request, "hearing_scheduled", actor=actor, channel=channel, text=f"hearing {_local(scheduled_for)}")
        _save(request)
    hearing = Hearing.objects.create(request=request, scheduled_for=scheduled_for, venue=venue.strip())
    _event(
        request,
        kind=RequestEvent.Kind.HEARING,
        actor=actor,
        channel=channel,
        text=f"hearing on {_local(scheduled_for)} at {venue}",
    )
    notify_consumer(
        request,
        event="request.hearing_scheduled",
        context={"when": scheduled_for, "venue": venue},
        key=f"hearing:{hearing.pk}",
    )
    return hearing


@transaction.atomic
def record_hearing_outcome(
    *,
    actor,
    channel: str,
    hearing: Hearing,
    outcome: str,
    notes: str,
    revision_amount: object = None,
) -> Hearing:
    """Record what the cell decided. A bill revision posts a credit note (negative amount) or
    a debit note (positive) to the ledger, once."""
    from urja.core.money import paise

    hearing = Hearing.objects.select_for_update().select_related("request").get(pk=hearing.pk)
    request = _lock(hearing.request)
    if hearing.outcome != Hearing.Outcome.PENDING:
        raise Conflict("this hearing's outcome is already recorded", code="hearing_decided")
    if outcome not in Hearing.Outcome.values or outcome == Hearing.Outcome.PENDING:
        raise DomainError(f"unknown hearing outcome {outcome!r}", code="invalid_outcome")
    if not notes.strip():
        raise DomainError("record the hearing's findings", code="notes_required")
    amount = None
    if revision_amount not in (None, ""):
        try:
            amount = paise(revision_amount)
        except Exception as exc:
            raise DomainError(f"{revision_amount!r} is not an amount", code="invalid_amount") from exc
    if amount and request.account_id is None:
        raise DomainError("a bill revision needs an account", code="account_required")
    hearing.outcome, hearing.notes, hearing.revision_amount = outcome, notes.strip(), amount
    hearing.decided_at, hearing.decided_by = clock.now(), actor if getattr(actor, "pk", None) else None
    if amount:
        from urja.billing.ledger import post_entry

        hearing.ledger_entry = post_entry(
            account=request.account,
            entry_type="credit_note" if amount < 0 else "debit_note",
            amount=amount,
            description=f"Bill revision after hearing on {request.number}",
            actor=actor,
            channel=channel,
            reference_type="service_request",
            reference_id=str(request.pk),
            idempotency_key=f"bill_revision:{request.pk}:{hearing.pk}",
        )
    hearing.save()
    if outcome != Hearing.Outcome.ADJOURNED:
        _set_status(request, "heard", actor=actor, channel=channel, text=f"{outcome}: {notes}")
        _save(request)
    _event(
        request,
        kind=RequestEvent.Kind.HEARING,
        actor=actor,
        channel=channel,
        text=f"outcome {outcome}" + (f"; revision Rs {amount}" if amount else ""),
        amount=str(amount) if amount else None,
    )
    return hearing
