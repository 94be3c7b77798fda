"""Moving a request along its workflow: status, notes, pausing and resuming the SLA clock,
assignment, transfer, closing and reopening."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import transaction

from urja.core.errors import Conflict, DomainError, NotFound
from urja.core.models import Role
from urja.core.permissions import role_of
from urja.core.scope import assignable_role, office_covers
from urja.core.services import record_audit
from urja.core.states import transition as change_state
from urja.servicedesk import catalogue, clock
from urja.servicedesk.models import (
    RequestEvent,
    RequestPause,
    ServiceRequest,
)
from urja.servicedesk.selectors import feedback_url, find_office, forums_text, is_open, schedule_of, setting, states_of
from urja.servicedesk.services._base import _event, _reschedule, _save, _stop_escalation, notify_consumer
from urja.servicedesk.services.awards import award_compensation


def _lock(request: ServiceRequest) -> ServiceRequest:
    return (
        ServiceRequest.objects.select_for_update(of=("self",))
        .select_related("request_type__schedule", "office", "account", "consumer", "outage")
        .get(pk=request.pk)
    )


def _set_status(request: ServiceRequest, to_status: str, *, actor, channel: str, text: str = "") -> None:
    machine = catalogue.workflow_machine(schedule_of(request), request.workflow)
    before = change_state(
        request, machine, to_status, actor=actor, channel=channel, reason=text, action="servicedesk.status"
    )
    _event(
        request,
        kind=RequestEvent.Kind.STATUS,
        actor=actor,
        channel=channel,
        from_status=before,
        to_status=to_status,
        text=text,
    )


@transaction.atomic
def transition(*, actor, channel: str, request: ServiceRequest, to_status: str, note: str = "") -> ServiceRequest:
    """Move a request along its workflow (closing, pausing and resuming have their own services)."""
    request = _lock(request)
    states = states_of(request)
    if to_status == states.closed:
        raise DomainError("close a request with close_request (resolution notes are required)", code="use_close")
    schedule = schedule_of(request)
    if to_status in states.paused:
        return pause_clock(actor=actor, channel=channel, request=request, reason=note)
    if request.status in states.paused:
        catalogue.workflow_machine(schedule, request.workflow).check(request.status, to_status)
        return resume_clock(actor=actor, channel=channel, request=request, to_status=to_status, note=note)
    if to_status == states.cancelled and not note.strip():
        raise DomainError("give a reason to cancel a request", code="reason_required")
    _set_status(request, to_status, actor=actor, channel=channel, text=note)
    if to_status == states.cancelled:
        request.closed_at = clock.now()
        _stop_escalation(request)
    _save(request)
    return request


@transaction.atomic
def add_note(*, actor, channel: str, request: ServiceRequest, text: str) -> RequestEvent:
    if not text.strip():
        raise DomainError("a note cannot be empty", code="note_required")
    return _event(request, kind=RequestEvent.Kind.NOTE, actor=actor, channel=channel, text=text.strip())


@transaction.atomic
def pause_clock(*, actor, channel: str, request: ServiceRequest, reason: str) -> ServiceRequest:
    """Stop the SLA clock for a reason attributable to the consumer (recorded)."""
    if not reason.strip():
        raise DomainError("give the reason the consumer is holding the request up", code="reason_required")
    request = _lock(request)
    paused = states_of(request).paused
    if not paused:
        raise DomainError(f"the {request.workflow} workflow has no paused state", code="cannot_pause")
    paused_state = paused[0]
    now = clock.now()
    _set_status(request, paused_state, actor=actor, channel=channel, text=reason)
    RequestPause.objects.create(request=request, started_at=now, reason=reason.strip()[:200])
    request.paused_since = now
    request.due_at = None
    _stop_escalation(request)
    _save(request)
    _event(request, kind=RequestEvent.Kind.PAUSED, actor=actor, channel=channel, text=reason)
    return request


@transaction.atomic
def resume_clock(
    *, actor, channel: str, request: ServiceRequest, to_status: str | None = None, note: str = ""
) -> ServiceRequest:
    request = _lock(request)
    if request.paused_since is None:
        raise Conflict("the clock of this request is not paused", code="not_paused")
    schedule = schedule_of(request)
    states = states_of(request)
    targets = sorted(catalogue.workflow_machine(schedule, request.workflow).allowed(request.status))
    to_status = to_status or (states.working if states.working in targets else targets[0])
    _set_status(request, to_status, actor=actor, channel=channel, text=note)
    assert to_status not in states.paused
    now = clock.now()
    RequestPause.objects.filter(request=request, ended_at__isnull=True).update(ended_at=now)
    request.paused_since = None
    _reschedule(request)
    _save(request)
    _event(
        request,
        kind=RequestEvent.Kind.RESUMED,
        actor=actor,
        channel=channel,
        text=note,
        due=request.due_at.isoformat() if request.due_at else None,
    )
    return request


@transaction.atomic
def assign(*, actor, channel: str, request: ServiceRequest, user) -> ServiceRequest:
    request = _lock(request)
    if not is_open(request):
        raise Conflict(f"request {request.number} is {request.status}; it cannot be assigned", code="not_open")
    # only staff of a role that works requests (data/core/permissions.toml [requests]), never a
    # consumer login, and only someone whose office covers the request's office
    role = role_of(user)
    if role != Role.ADMIN and not assignable_role(role):
        raise DomainError(f"{user} does not work service requests", code="not_staff")
    if not office_covers(user, request.office_path):
        raise DomainError(f"{user} works outside the office of request {request.number}", code="assignee_out_of_scope")
    request.assigned_to = user
    machine = catalogue.workflow_machine(schedule_of(request), request.workflow)
    states = states_of(request)
    if request.status in (states.initial, states.reopened) and states.assigned in machine.allowed(request.status):
        _set_status(request, states.assigned, actor=actor, channel=channel)
    _save(request)
    _event(request, kind=RequestEvent.Kind.ASSIGNED, actor=actor, channel=channel, text=f"assigned to {user}")
    record_audit(actor=actor, channel=channel, action="servicedesk.assigned", obj=request, changes={"to": str(user)})
    return request


@transaction.atomic
def bulk_assign(*, actor, channel: str, numbers: list[str], user) -> list[ServiceRequest]:
    """Assign many requests at once; all or nothing (one refusal refuses the batch)."""
    if not numbers:
        raise DomainError("choose at least one request", code="nothing_selected")
    found = {r.number: r for r in ServiceRequest.objects.filter(number__in=numbers)}
    missing = sorted(set(numbers) - set(found))
    if missing:
        raise NotFound(f"unknown request numbers: {', '.join(missing)}", code="request_not_found")
    return [assign(actor=actor, channel=channel, request=found[n], user=user) for n in numbers]


@transaction.atomic
def transfer(*, actor, channel: str, request: ServiceRequest, office, reason: str) -> ServiceRequest:
    """Move a request to another office (the SLA clock keeps running; its calendar changes)."""
    if not reason.strip():
        raise DomainError("give a reason for the transfer", code="reason_required")
    request = _lock(request)
    target = find_office(office)
    if not is_open(request):
        raise Conflict(f"request {request.number} is {request.status}; it cannot be transferred", code="not_open")
    if target.pk == request.office_id:
        raise DomainError("the request is already with that office", code="same_office")
    before = request.office
    request.office, request.office_path, request.assigned_to = target, target.path, None
    if request.paused_since is None:
        _reschedule(request)
    _save(request)
    _event(
        request,
        kind=RequestEvent.Kind.TRANSFERRED,
        actor=actor,
        channel=channel,
        text=f"{before.name} → {target.name}: {reason}",
        from_office=before.code,
        to_office=target.code,
    )
    record_audit(
        actor=actor,
        channel=channel,
        action="servicedesk.transferred",
        obj=request,
        changes={"from": before.code, "to": target.code, "reason": reason},
    )
    return request


def _close(
    request: ServiceRequest,
    *,
    actor,
    channel: str,
    notes: str,
    code: str,
    at: datetime | None = None,
    feedback: bool = True,
) -> ServiceRequest:
    now = at or clock.now()
    if request.paused_since is not None:
        RequestPause.objects.filter(request=request, ended_at__isnull=True).update(ended_at=now)
        request.paused_since = None
        _reschedule(request)
    _set_status(request, states_of(request).closed, actor=actor, channel=channel, text=notes)
    request.closed_at = now
    request.resolution_notes = notes
    request.resolution_code = code
    request.breached = request.due_at is not None and now > request.due_at
    _stop_escalation(request)
    _save(request)
    if request.breached:
        award_compensation(request=request)
    if feedback and request.consumer_id:
        context = {"resolution": notes, "feedback_url": feedback_url(request)}
        if request.workflow == "dispute":
            context["forums"] = forums_text(request)
            context["resolution"] = f"{notes} If not satisfied: {context['forums']}"
        notify_consumer(
            request, event="request.closed", context=context, key=f"closed:{request.number}:{request.reopen_count}"
        )
    return request


@transaction.atomic
def close_request(
    *, actor, channel: str, request: ServiceRequest, resolution_notes: str, resolution_code: str = "resolved"
) -> ServiceRequest:
    """Close with resolution notes: stops the clock; a breached request earns compensation."""
    if not (resolution_notes or "").strip():
        raise DomainError("resolution notes are required to close a request", code="resolution_required")
    request = _lock(request)
    catalogue.workflow_machine(schedule_of(request), request.workflow).check(request.status, states_of(request).closed)
    return _close(request, actor=actor, channel=channel, notes=resolution_notes.strip(), code=resolution_code)


@transaction.atomic
def reopen_request(*, actor, channel: str, request: ServiceRequest, reason: str) -> ServiceRequest:
    """Reopen a closed request within the schedule's window; a fresh SLA clock starts."""
    if not reason.strip():
        raise DomainError("give the reason for reopening", code="reason_required")
    request = _lock(request)
    schedule = schedule_of(request)
    days = int(setting(schedule, "reopen_within_days", 7))
    now = clock.now()
    states = states_of(request)
    if request.status == states.closed and request.closed_at and now > request.closed_at + timedelta(days=days):
        raise Conflict(f"a request can be reopened within {days} days of closing", code="reopen_window_passed")
    _set_status(request, states.reopened, actor=actor, channel=channel, text=reason)
    request.reopen_count += 1
    request.closed_at = None
    request.breached = None
    request.clock_start = now
    _reschedule(request)
    _save(request)
    return request
