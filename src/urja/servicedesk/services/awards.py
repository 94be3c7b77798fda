"""Compensation for a missed standard of performance, credited through the billing ledger."""

from __future__ import annotations

from django.utils import timezone

from urja.servicedesk import clock, sla
from urja.servicedesk import compensation as comp
from urja.servicedesk.models import (
    CompensationAward,
    RequestEvent,
    ServiceRequest,
)
from urja.servicedesk.selectors import division_of, schedule_of, setting
from urja.servicedesk.services._base import _event, notify_consumer


def award_compensation(*, request: ServiceRequest) -> CompensationAward | None:
    """Compensation for a request closed after its due moment, credited to the ledger once."""
    rt = request.request_type
    if not (request.breached and rt.compensation_key and request.account_id and request.due_at):
        return None
    existing = CompensationAward.objects.filter(request=request).first()
    if existing:
        return existing
    schedule = schedule_of(request)
    rule = schedule.document.get("compensation", {}).get(rt.compensation_key)
    if not rule:
        return None
    per = "hour" if rule["basis"] == "per_hour" else "day"
    late = sla.units_late(due=request.due_at, closed_at=request.closed_at, per=per)
    many = bool(
        request.outage_id and request.outage.affected_accounts >= int(setting(schedule, "many_affected_threshold", 50))
    )
    award = comp.compute(
        rule,
        units_late=late,
        supply_class=comp.supply_class_of(request.account.supply_type),
        many_affected=many,
    )
    if award.amount <= 0:
        return None
    from urja.billing.ledger import post_entry

    entry = post_entry(
        account=request.account,
        entry_type="compensation",
        amount=-award.amount,
        description=f"Compensation: {rt.type_name} {request.number} late by {late} {per}(s)",
        channel="system",
        reference_type="service_request",
        reference_id=str(request.pk),
        idempotency_key=f"compensation:{request.pk}",
    )
    now = clock.now()
    record = CompensationAward.objects.create(
        request=request,
        account=request.account,
        division=division_of(request.office),
        amount=award.amount,
        units_late=late,
        basis=award.basis,
        capped=award.capped,
        many_affected=award.many_affected,
        rule=dict(rule, key=rt.compensation_key),
        ledger_entry=entry,
        month=timezone.localtime(now).date().replace(day=1),
        created_at=now,
    )
    _event(
        request,
        kind=RequestEvent.Kind.COMPENSATION,
        text=f"Rs {award.amount} credited for {late} {per}(s) of delay",
        amount=str(award.amount),
    )
    notify_consumer(
        request,
        event="request.compensation_credited",
        context={"amount": str(award.amount), "units_late": late, "per": per},
        key=f"compensation:{request.pk}",
    )
    return record
