"""Escalating a request: by the consumer, by staff, and the next tier's notices to its holders."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import transaction

from urja.core.errors import Conflict, DomainError
from urja.core.services import record_audit
from urja.network.models import Office
from urja.servicedesk import clock
from urja.servicedesk.models import (
    Escalation,
    RequestEvent,
    ServiceRequest,
    StaffNotice,
)
from urja.servicedesk.selectors import _tiers, find_for_consumer, holder_office, holders, is_open, schedule_of, setting
from urja.servicedesk.services._base import _clock_of, _event, _reschedule, _save, notify_consumer
from urja.servicedesk.services.workflow import _lock


@transaction.atomic
def consumer_escalate(
    *, number: str, mobile: str | None = None, consumer_number: str | None = None, channel: str = "website"
) -> Escalation:
    """The consumer escalates an open request to the next tier after N days (schedule setting)."""
    request = _lock(find_for_consumer(number=number, mobile=mobile, consumer_number=consumer_number))
    schedule = schedule_of(request)
    if not is_open(request):
        raise Conflict("only an open request can be escalated", code="not_open")
    days = int(setting(schedule, "consumer_escalation_after_days", 3))
    now = clock.now()
    if now < request.registered_at + timedelta(days=days):
        raise Conflict(
            f"you can escalate a request {days} days after registering it",
            code="too_early_to_escalate",
            details={"from": (request.registered_at + timedelta(days=days)).isoformat()},
        )
    return _escalate_next(request, reason=Escalation.Reason.CONSUMER, actor=None, channel=channel, now=now)


@transaction.atomic
def staff_escalate(*, actor, channel: str, request: ServiceRequest, note: str) -> Escalation:
    if not note.strip():
        raise DomainError("say why you escalate", code="reason_required")
    request = _lock(request)
    if not is_open(request):
        raise Conflict("only an open request can be escalated", code="not_open")
    return _escalate_next(request, reason=Escalation.Reason.MANUAL, actor=actor, channel=channel, now=clock.now())


def _escalate_next(request: ServiceRequest, *, reason: str, actor, channel: str, now: datetime) -> Escalation:
    tiers = [t for t in _tiers(request) if t.level > _clock_of(request).escalation_level]
    if not tiers:
        raise Conflict("the request is already at the highest tier", code="top_tier_reached")
    tier = tiers[0]
    escalation = Escalation.objects.create(
        request=request,
        level=tier.level,
        title=tier.title,
        office_level=tier.office_level,
        reason=reason,
        created_at=now,
    )
    _clock_of(request).escalation_level = tier.level
    if request.paused_since is None:
        _reschedule(request)
    _save(request)
    _event(request, kind=RequestEvent.Kind.NOTE, actor=actor, channel=channel, text=f"escalated to {tier.title}")
    record_audit(
        actor=actor, channel=channel, action="servicedesk.escalated", obj=request, changes={"level": tier.level}
    )
    holder = holder_office(request.office, tier.office_level)
    notice_holders(office=holder, text=f"{request.number} escalated to you ({tier.title})", key=f"esc:{escalation.pk}")
    notify_consumer(
        request,
        event="request.escalated",
        context={"escalated_to": tier.title},
        key=f"escalated:{request.number}:{tier.level}",
    )
    return escalation


def notice_holders(*, office: Office, text: str, key: str, url: str = "/servicedesk/?escalated=1") -> int:
    now = clock.now()
    notices = [
        StaffNotice(user=user, text=text[:300], url=url, key=f"{key}:{user.pk}"[:120], created_at=now)
        for user in holders(office)
    ]
    StaffNotice.objects.bulk_create(notices, ignore_conflicts=True)
    return len(notices)
