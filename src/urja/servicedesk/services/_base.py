"""What every service-desk service shares: the request timeline (RequestEvent), consumer messages
through notifications, and the escalation pointer kept in step with the SLA clock."""

from __future__ import annotations

import logging
from typing import Any

from urja.core.errors import DomainError
from urja.servicedesk import clock, sla
from urja.servicedesk.models import (
    EscalationClock,
    RequestEvent,
    ServiceRequest,
)
from urja.servicedesk.selectors import _calendar, _pauses, _tiers, _timeline

log = logging.getLogger(__name__)


def _actor_label(actor) -> str:
    if actor is None:
        return "system"
    return actor.get_username() if getattr(actor, "is_authenticated", False) else ""


def _event(
    request: ServiceRequest, *, kind: str, actor=None, channel: str = "", text: str = "", at=None, **extra
) -> RequestEvent:
    return RequestEvent.objects.create(
        request=request,
        at=at or clock.now(),
        kind=kind,
        actor=actor if getattr(actor, "pk", None) else None,
        actor_label=_actor_label(actor),
        channel=channel,
        text=text,
        from_status=extra.pop("from_status", ""),
        to_status=extra.pop("to_status", ""),
        data=extra,
    )


def send(*, event: str, consumer, account=None, context: dict[str, Any], key: str) -> bool:
    """Queue a message through urja.notifications (the one way to message consumers).

    An event the templates file does not define yet is logged and skipped (the request itself
    must not fail because a template is missing)."""
    if consumer is None:
        return False
    try:
        from urja.notifications.services import notify
    except ImportError:  # notifications not installed: the request still works
        log.warning("notifications.notify unavailable; %s not sent", event)
        return False
    try:
        notify(event=event, consumer=consumer, account=account, context=context, idempotency_key=f"servicedesk:{key}")
    except DomainError as exc:
        if exc.code != "unknown_event":
            raise
        log.warning("notification event %s has no template yet; not sent (%s)", event, key)
        return False
    return True


def notify_consumer(request: ServiceRequest, *, event: str, context: dict[str, Any], key: str) -> bool:
    """Message the request's consumer and note it on the request's timeline."""
    base = {
        "request_number": request.number,
        "request_label": request.request_type.name,
        "due_at": request.due_at,
        "status": request.status.replace("_", " "),
    }
    sent = send(
        event=event,
        consumer=request.consumer if request.consumer_id else None,
        account=request.account if request.account_id else None,
        context={**base, **context},
        key=key,
    )
    if sent:
        _event(request, kind=RequestEvent.Kind.MESSAGE, text=event, channel="system", event=event)
    return sent


def _clock_of(request: ServiceRequest) -> EscalationClock:
    """The request's escalation pointer (created on first use, saved by `_save`)."""
    pending = getattr(request, "_pending_clock", None)
    if pending is not None:
        return pending
    pending = None
    if request.pk:
        pending = EscalationClock.objects.select_for_update().filter(request_id=request.pk).first()
    if pending is None:
        pending = EscalationClock(request_type_id=request.request_type_id, clock_start_ts=0, span_seconds=0)
    request._pending_clock = pending
    return pending


def _save(request: ServiceRequest) -> None:
    request.save()
    pending = getattr(request, "_pending_clock", None)
    if pending is not None:
        pending.request = request
        pending.request_type_id = request.request_type_id
        pending.office_id = request.office_id
        # a new pointer is inserted straight away (its key is the request's, so a plain save()
        # would first try an UPDATE that cannot match)
        pending.save(force_insert=pending._state.adding)


def _stop_escalation(request: ServiceRequest) -> None:
    _clock_of(request).next_escalation_ts = None


def _reschedule(request: ServiceRequest) -> None:
    """Recompute due moment, span, paused seconds and the next escalation moment (saved by _save)."""
    pauses = [p for p in _pauses(request) if p[0] >= request.clock_start] if request.pk else []
    due = sla.due_at(request.clock_start, _timeline(request), _calendar(request), pauses)
    c = _clock_of(request)
    c.clock_start_ts = clock.epoch(request.clock_start)
    if due is None:  # paused
        request.due_at = None
        c.next_escalation_ts = None
        return
    request.due_at = due
    c.span_seconds = int(sla.span_seconds(request.clock_start, due, pauses))
    c.paused_seconds = int(
        sla.paused_seconds(pauses, until=max(clock.now(), request.clock_start), since=request.clock_start)
    )
    tiers = _tiers(request)
    upcoming = [
        c.clock_start_ts + c.paused_seconds + t.fraction * c.span_seconds for t in tiers if t.level > c.escalation_level
    ]
    c.next_escalation_ts = int(-(-min(upcoming) // 1)) if upcoming else None
