"""Service-desk services: the only code that changes requests, outages, hearings and feedback.

Every function is keyword-only, runs in one transaction, raises a DomainError with a specific
code on bad input (and then changes nothing), records an audit event for status and money
changes and a RequestEvent on the request's timeline.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.core import signing
from django.db import transaction
from django.db.models import Count, Exists, OuterRef, Q, QuerySet, prefetch_related_objects
from django.urls import reverse
from django.utils import formats, timezone

from urja.core import boundary, regdata
from urja.core.errors import Conflict, DomainError, NotFound
from urja.core.links import public_url
from urja.core.models import Channel, Role
from urja.core.permissions import role_of
from urja.core.scope import assignable_role, office_covers
from urja.core.services import next_number, record_audit
from urja.core.states import transition as change_state
from urja.core.states import transition_set
from urja.customers.models import Account, Contact
from urja.customers.rules import normalise_mobile
from urja.network.models import LEVEL_ORDER, Office

from . import catalogue, clock, sla, supply_checks
from . import compensation as comp
from .models import (
    OUTAGE_STATUS,
    CompensationAward,
    Escalation,
    EscalationClock,
    EscalationTier,
    Feedback,
    Hearing,
    Outage,
    RequestEvent,
    RequestPause,
    RequestType,
    ServiceRequest,
    SopSchedule,
    StaffNotice,
)

log = logging.getLogger(__name__)
FEEDBACK_SALT = "urja.servicedesk.feedback"


# --- helpers -------------------------------------------------------------------------------


def schedule_of(request: ServiceRequest) -> SopSchedule:
    return request.request_type.schedule


def setting(schedule: SopSchedule, name: str, default: Any = None) -> Any:
    return catalogue.settings_of(schedule).get(name, default)


def open_states(schedule: SopSchedule, workflow: str) -> list[str]:
    return list(catalogue.workflow_def(schedule, workflow)["open"])


def is_open(request: ServiceRequest) -> bool:
    return request.status in open_states(schedule_of(request), request.workflow)


def states_of(request: ServiceRequest) -> catalogue.WorkflowStates:
    """The request's workflow states by role (closed, cancelled, paused …), from the catalogue."""
    return catalogue.workflow_states(schedule_of(request), request.workflow)


def _final_states() -> list[str]:
    """Final states of every workflow of the schedule in force (queries across workflows)."""
    return catalogue.states_in_role(catalogue.active_schedule(), "final")


def _closed_states() -> list[str]:
    return catalogue.states_in_role(catalogue.active_schedule(), "closed")


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


def _local(moment: datetime | None) -> str:
    if moment is None:
        return ""
    return formats.date_format(timezone.localtime(moment), "j M Y, H:i")


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


def find_office(value) -> Office:
    if isinstance(value, Office):
        return value
    try:
        return Office.objects.get(code=value) if isinstance(value, str) else Office.objects.get(pk=value)
    except Office.DoesNotExist as exc:
        raise DomainError(f"unknown office {value!r}", code="unknown_office") from exc


def owning_office(section: Office, level: str) -> Office:
    """The office at `level` above (or equal to) `section`; the section itself if none is found."""
    if section.level == level:
        return section
    if LEVEL_ORDER.index(section.level) < LEVEL_ORDER.index(level):
        return section  # the office is already above the level asked for
    return section.ancestor_at(level) or section


def holder_office(request_office: Office, office_level: str) -> Office:
    return owning_office(request_office, office_level)


def _timeline(request: ServiceRequest) -> sla.Timeline:
    return sla.Timeline(request.timeline_unit, request.timeline_value)


def _pauses(request: ServiceRequest) -> list[tuple[datetime, datetime | None]]:
    return [(p.started_at, p.ended_at) for p in request.pauses.all()]


def _calendar(request: ServiceRequest):
    return request.office.calendar()


def _tiers(request: ServiceRequest) -> list[EscalationTier]:
    # the loaded catalogue holds every type's tiers (a schedule's rows never change)
    return catalogue.tiers_of(request.request_type)


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


def clock_state(request: ServiceRequest, *, now: datetime | None = None, never_paused: bool = False) -> sla.ClockState:
    """The request's SLA clock now. `never_paused`: the caller knows it has no pauses (it was
    registered just now), so they are not read."""
    schedule = schedule_of(request)
    pauses = [] if never_paused else [p for p in _pauses(request) if p[0] >= request.clock_start]
    return sla.clock_state(
        start=request.clock_start,
        timeline=_timeline(request),
        calendar=_calendar(request),
        pauses=pauses,
        now=now or clock.now(),
        at_risk_fraction=float(setting(schedule, "at_risk_fraction", 0.75)),
        stopped_at=request.closed_at if request.status in states_of(request).final else None,
    )


def sla_colour(status: str, *, closed: bool = False) -> str:
    return {sla.ON_TRACK: "green", sla.AT_RISK: "amber", sla.BREACHED: "red"}.get(status, "grey")


# --- registration ------------------------------------------------------------------------


@dataclass
class Registration:
    request: ServiceRequest
    created: bool
    duplicate_of: ServiceRequest | None = None
    supply_check: supply_checks.SupplyCheck | None = None
    outage: Outage | None = None


def check_channel(*, schedule: SopSchedule, request_type: RequestType, channel: str) -> None:
    if channel not in Channel.values:
        raise DomainError(f"unknown channel {channel!r}", code="unknown_channel", details={"allowed": Channel.values})
    column = catalogue.channel_column(schedule, channel)
    if column not in request_type.channels:
        where = catalogue.allowed_labels(schedule, request_type)
        raise DomainError(
            f"A '{request_type.type_name} – {request_type.name}' request cannot be lodged through "
            f"{catalogue.channel_label(schedule, column)}. It can be lodged at: {', '.join(where)}.",
            code="channel_not_allowed",
            details={"channel": channel, "allowed": list(request_type.channels), "allowed_labels": where},
        )


def _resolve_account(consumer_number: str | None, account: Account | None) -> Account | None:
    if account is not None:
        return account
    if consumer_number:
        from urja.customers.services import get_account

        return get_account(consumer_number=consumer_number)
    return None


def _consumer_mobile(consumer) -> str:
    """The primary mobile (else the first one) of the consumer. Reads consumer.contacts.all(), so
    contacts prefetched for the acknowledgement are read once."""
    mobiles = [c for c in consumer.contacts.all() if c.kind == Contact.Kind.MOBILE]
    mobiles.sort(key=lambda c: (not c.is_primary, c.id))
    return mobiles[0].value if mobiles else ""


def _open_same_type(account: Account | None, consumer_number: str | None, schedule, request_type) -> tuple:
    """(account id or None, whether it has an open request of the type) in one query."""
    open_same = ServiceRequest.objects.filter(
        account=OuterRef("pk"),
        type_code=request_type.type_code,
        status__in=open_states(schedule, request_type.workflow),
    )
    if account is not None:
        qs = Account.objects.filter(pk=account.pk)
    elif consumer_number:
        from urja.customers.services import validate_consumer_number

        number = validate_consumer_number(consumer_number)
        qs = Account.objects.filter(consumer_number=number)
    else:
        return None, False
    row = qs.annotate(open_same=Exists(open_same)).values_list("pk", "open_same").first()
    if row is None:
        what = f"consumer number {number}" if account is None else f"id {account.pk}"
        raise NotFound(f"no account with {what}", code="account_not_found")
    return row


def register_request(
    *,
    actor,
    channel: str,
    type_code: str,
    subtype_code: str | None = None,
    consumer_number: str | None = None,
    account: Account | None = None,
    office=None,
    **kwargs,
) -> Registration:
    """Register a request or complaint lodged through `channel` (see `_register`).

    Outside a transaction, the request number is allocated first in a short transaction of its
    own, so concurrent registrations do not queue on the number series' row lock for the whole
    registration (a refused or linked registration may leave a gap; numbers stay unique)."""
    number = schedule = account_id = None
    if not transaction.get_connection().in_atomic_block:
        schedule = catalogue.active_schedule()
        request_type = catalogue.find_type(type_code=type_code, subtype_code=subtype_code, schedule=schedule)
        check_channel(schedule=schedule, request_type=request_type, channel=channel)
        account_id, open_same = _open_same_type(account, consumer_number, schedule, request_type)
        if (account_id is not None or office is not None) and not open_same:
            number = _new_number(schedule)
        if account_id is not None:
            consumer_number = None
    return _register(
        actor=actor,
        channel=channel,
        type_code=type_code,
        subtype_code=subtype_code,
        consumer_number=consumer_number,
        account=account,
        office=office,
        number=number,
        schedule=schedule,
        account_id=account_id,
        **kwargs,
    )


def _new_number(schedule: SopSchedule) -> str:
    return next_number(
        key="servicedesk:request", template=setting(schedule, "request_number_template", "SR{yy}{seq:8}{check}")
    )


@transaction.atomic
def _register(
    *,
    number: str | None = None,
    schedule: SopSchedule | None = None,
    account_id: int | None = None,
    actor,
    channel: str,
    type_code: str,
    subtype_code: str | None = None,
    consumer_number: str | None = None,
    account: Account | None = None,
    description: str = "",
    mobile: str = "",
    name: str = "",
    language: str | None = None,
    office=None,
    details: dict | None = None,
    registered_at: datetime | None = None,
) -> Registration:
    """Register a request or complaint lodged through `channel`.

    Refuses an unknown type, a channel the matrix does not allow (naming where it can be lodged)
    and a missing account for types that need one. An open request of the same type on the same
    account is not duplicated: the repeat is recorded on it and it is returned.
    """
    schedule = schedule or catalogue.active_schedule()
    request_type = catalogue.find_type(type_code=type_code, subtype_code=subtype_code, schedule=schedule)
    check_channel(schedule=schedule, request_type=request_type, channel=channel)
    if account_id is None:
        account = _resolve_account(consumer_number, account)
        account_id = account.pk if account is not None else None
    if request_type.requires_account and account_id is None:
        raise DomainError(
            f"a '{request_type.type_name}' request needs the consumer number of the account",
            code="account_required",
        )
    if mobile:
        normalised = normalise_mobile(mobile)
        if not normalised:
            raise DomainError(f"{mobile!r} is not a valid Indian mobile number", code="invalid_mobile")
        mobile = normalised
    if language and language not in ("en", "hi", "or"):
        raise DomainError("language must be en, hi or or", code="invalid_language")
    now = registered_at or clock.now()

    if account_id is not None:
        # serialise registrations on one account so two lodgings cannot both create a request
        account = (
            Account.objects.select_for_update(of=("self",)).select_related("consumer", "section").get(pk=account_id)
        )
        # only the id first (most lodgings find none); the row is locked, so reading it next is safe
        duplicate_id = (
            ServiceRequest.objects.select_for_update()
            .filter(
                account=account,
                type_code=request_type.type_code,
                status__in=open_states(schedule, request_type.workflow),
            )
            .order_by("registered_at")
            .values_list("pk", flat=True)
            .first()
        )
        if duplicate_id is not None:
            duplicate = ServiceRequest.objects.select_related("office", "outage", "esc_clock").get(pk=duplicate_id)
            duplicate.account = account
            known = catalogue.cached_type(schedule, duplicate.request_type_id)
            if known is not None:
                duplicate.request_type = known
            ServiceRequest.objects.filter(pk=duplicate.pk).update(repeat_contacts=duplicate.repeat_contacts + 1)
            duplicate.repeat_contacts += 1
            _event(
                duplicate,
                kind=RequestEvent.Kind.REPEAT,
                actor=actor,
                channel=channel,
                text=description[:500] or f"lodged again through {channel}",
                subtype=request_type.subtype_code,
            )
            return Registration(request=duplicate, created=False, duplicate_of=duplicate)
        section = account.section
    else:
        if office is None:
            raise DomainError("name the office for a request without an account", code="office_required")
        section = find_office(office)

    owner = owning_office(section, request_type.office_level)
    consumer = account.consumer if account is not None else None
    if consumer is not None:
        # one read of the contacts serves the contact mobile here and the acknowledgement's addresses
        prefetch_related_objects([consumer], "contacts")
    area = account.area if account is not None else "urban"
    request = ServiceRequest(
        number=number or _new_number(schedule),
        request_type=request_type,
        type_code=request_type.type_code,
        subtype_code=request_type.subtype_code,
        workflow=request_type.workflow,
        status=catalogue.workflow_def(schedule, request_type.workflow)["initial"],
        account=account,
        consumer=consumer,
        contact_name=name or (consumer.name if consumer else ""),
        contact_mobile=mobile or (_consumer_mobile(consumer) if consumer else ""),
        language=language or (consumer.preferred_language if consumer else "en"),
        channel=channel,
        description=description,
        details=details or {},
        office=owner,
        office_path=owner.path,
        team=request_type.team,
        area=area,
        registered_at=now,
        clock_start=now,
        timeline_unit=request_type.unit,
        timeline_value=request_type.timeline_value(area),
        created_by=actor if getattr(actor, "pk", None) else None,
    )
    _reschedule(request)
    _save(request)
    _event(
        request,
        kind=RequestEvent.Kind.REGISTERED,
        actor=actor,
        channel=channel,
        at=now,
        to_status=request.status,
        text=description[:500],
        due=request.due_at.isoformat() if request.due_at else None,
    )
    record_audit(
        actor=actor,
        channel=channel,
        action="servicedesk.registered",
        obj=request,
        changes={"number": request.number, "type": f"{request.type_code}/{request.subtype_code}"},
    )
    result = Registration(request=request, created=True)
    if request_type.outage_check and account is not None:
        result.supply_check = supply_checks.check(account)
        if result.supply_check is not None:
            # nothing for a crew to do: tell the consumer at once and close the complaint
            _close(
                request,
                actor=None,
                channel="system",
                notes=result.supply_check.message,
                code=result.supply_check.reason,
                at=now,
                feedback=False,
            )
            notify_consumer(
                request,
                event="request.closed",
                context={"resolution": result.supply_check.message},
                key=f"supply_check:{request.number}",
            )
            return result
        result.outage = known_outage(account=account, at=now)
        if result.outage is not None:
            _link_to_outage(request, result.outage, actor=actor, channel=channel)
    label = request_type.name
    if result.outage is not None:
        label += f"; known outage {result.outage.number}"
        if result.outage.expected_restore_at:
            label += f", supply expected back by {_local(result.outage.expected_restore_at)}"
    notify_consumer(
        request,
        event="request.registered",
        context={"request_label": label, "timeline": _timeline(request).describe()},
        key=f"registered:{request.number}",
    )
    return result


# --- workflow ------------------------------------------------------------------------------


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


# --- escalation ----------------------------------------------------------------------------


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


def holders(office: Office) -> QuerySet:
    from django.contrib.auth import get_user_model

    return get_user_model().objects.filter(staff__office=office, staff__role=Role.MANAGER, is_active=True)


def notice_holders(*, office: Office, text: str, key: str, url: str = "/servicedesk/?escalated=1") -> int:
    now = clock.now()
    notices = [
        StaffNotice(user=user, text=text[:300], url=url, key=f"{key}:{user.pk}"[:120], created_at=now)
        for user in holders(office)
    ]
    StaffNotice.objects.bulk_create(notices, ignore_conflicts=True)
    return len(notices)


# --- compensation --------------------------------------------------------------------------


def division_of(office: Office) -> Office | None:
    return office if office.level == "division" else office.ancestor_at("division")


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


def compensation_report(*, month: date, division: Office | None = None) -> list[dict[str, Any]]:
    """Compensation credited in a month, per division: count, total, by request type."""
    first = month.replace(day=1)
    qs = CompensationAward.objects.filter(month=first)
    if division is not None:
        qs = qs.filter(division=division)
    rows: dict[tuple, dict[str, Any]] = {}
    for award in qs.select_related("division", "request__request_type"):
        key = (award.division_id, award.request.type_code)
        row = rows.setdefault(
            key,
            {
                "division": award.division.name if award.division else "",
                "division_code": award.division.code if award.division else "",
                "type": award.request.request_type.type_name,
                "count": 0,
                "amount": Decimal("0.00"),
            },
        )
        row["count"] += 1
        row["amount"] += award.amount
    return sorted(rows.values(), key=lambda r: (r["division"], r["type"]))


# --- outages -------------------------------------------------------------------------------


def known_outage(*, account: Account, at: datetime) -> Outage | None:
    """An outage in force on the account's DT or feeder (planned ones once they have begun)."""
    where = Q()
    if account.transformer_id:
        where |= Q(transformer_id=account.transformer_id)
    if account.feeder_id:
        where |= Q(feeder_id=account.feeder_id, transformer__isnull=True)
    if not where:
        return None
    return (
        Outage.objects.filter(where, starts_at__lte=at)
        .filter(status__in=[Outage.Status.ACTIVE, Outage.Status.ANNOUNCED])
        .order_by("-starts_at")
        .first()
    )


def _link_to_outage(request: ServiceRequest, outage: Outage, *, actor, channel: str) -> None:
    machine = catalogue.workflow_machine(schedule_of(request), request.workflow)
    linked = states_of(request).outage
    if linked and linked in machine.allowed(request.status):
        _set_status(request, linked, actor=actor, channel=channel, text=f"known outage {outage.number}")
    request.outage = outage
    _save(request)
    _event(request, kind=RequestEvent.Kind.OUTAGE, text=f"linked to outage {outage.number}", outage=outage.number)


def affected_accounts(*, feeder=None, transformer=None) -> QuerySet:
    if transformer is not None:
        return Account.objects.filter(transformer=transformer)
    return Account.objects.filter(feeder=feeder)


@transaction.atomic
def declare_outage(
    *,
    actor,
    channel: str,
    kind: str,
    reason: str,
    starts_at: datetime | None = None,
    expected_restore_at: datetime | None = None,
    feeder=None,
    transformer=None,
    office=None,
) -> Outage:
    """Record an outage on a feeder or DT. A planned one is announced to affected consumers now."""
    if kind not in Outage.Kind.values:
        raise DomainError(f"outage kind must be planned or unplanned, not {kind!r}", code="invalid_outage_kind")
    if feeder is None and transformer is None:
        raise DomainError("an outage is on a feeder or a distribution transformer", code="outage_location_required")
    if not reason.strip():
        raise DomainError("give the reason for the outage", code="reason_required")
    now = clock.now()
    starts_at = starts_at or now
    if kind == Outage.Kind.PLANNED and starts_at <= now:
        raise DomainError("a planned outage must be announced before it starts", code="planned_outage_in_past")
    if expected_restore_at is not None and expected_restore_at <= starts_at:
        raise DomainError("restoration must be expected after the start", code="invalid_restore_time")
    if transformer is not None and feeder is None:
        feeder = transformer.feeder
    office = find_office(office) if office is not None else feeder.office
    schedule = catalogue.active_schedule()
    accounts = affected_accounts(feeder=feeder, transformer=transformer)
    outage = Outage.objects.create(
        number=next_number(
            key="servicedesk:outage", template=setting(schedule, "outage_number_template", "OUT{yy}{seq:6}{check}")
        ),
        kind=kind,
        status=Outage.Status.ANNOUNCED if kind == Outage.Kind.PLANNED else Outage.Status.ACTIVE,
        feeder=feeder,
        transformer=transformer,
        office=office,
        reason=reason.strip()[:200],
        starts_at=starts_at,
        expected_restore_at=expected_restore_at,
        announced_at=now if kind == Outage.Kind.PLANNED else None,
        affected_accounts=accounts.count(),
        created_by=actor if getattr(actor, "pk", None) else None,
    )
    record_audit(actor=actor, channel=channel, action="servicedesk.outage", obj=outage, changes={"kind": kind})
    if kind == Outage.Kind.PLANNED:
        _tell_accounts(
            accounts,
            event="outage.planned",
            key=f"outage_planned:{outage.number}",
            context={
                "outage": outage.number,
                "area": outage_area(outage),
                "reason": outage.reason,
                "start": starts_at,
                "end": expected_restore_at or starts_at,
            },
        )
    else:
        # complaints already lodged on this DT / feeder join the outage
        # (not yet worked on: the workflows' initial and assigned states)
        schedule = catalogue.active_schedule()
        waiting = {*catalogue.states_in_role(schedule, "initial"), *catalogue.states_in_role(schedule, "assigned")}
        for request in ServiceRequest.objects.filter(
            outage__isnull=True,
            type_code__in=_outage_types(),
            status__in=sorted(waiting),
            account__in=accounts,
        ).select_related("request_type__schedule", "consumer", "account"):
            _link_to_outage(request, outage, actor=actor, channel=channel)
    return outage


def _outage_types() -> list[str]:
    return list(RequestType.objects.filter(outage_check=True).values_list("type_code", flat=True).distinct())


def _tell_accounts(accounts: QuerySet, *, event: str, key: str, context: dict[str, Any]) -> int:
    sent = 0
    for account in accounts.select_related("consumer").iterator(chunk_size=500):
        sent += send(
            event=event, consumer=account.consumer, account=account, context=context, key=f"{key}:{account.pk}"
        )
    return sent


def outage_area(outage: Outage) -> str:
    if outage.transformer_id:
        return f"DT {outage.transformer.code} ({outage.feeder.name if outage.feeder_id else ''})".replace(" ()", "")
    return f"{outage.feeder.name} feeder" if outage.feeder_id else outage.office.name


@transaction.atomic
def restore_outage(*, actor, channel: str, outage: Outage, restored_at: datetime | None = None) -> Outage:
    """Supply is back: close the outage, close every linked complaint and tell each consumer."""
    outage = Outage.objects.select_for_update().get(pk=outage.pk)
    if not OUTAGE_STATUS.can(outage.status, Outage.Status.RESTORED):
        raise Conflict(f"outage {outage.number} is already {outage.status}", code="outage_closed")
    now = restored_at or clock.now()
    if now < outage.starts_at:
        raise DomainError("restoration cannot precede the start of the outage", code="invalid_restore_time")
    outage.restored_at = now
    change_state(outage, OUTAGE_STATUS, Outage.Status.RESTORED, actor=actor, channel=channel,
                 extra_fields=("restored_at",), action="servicedesk.outage_restored")  # fmt: skip
    for request in ServiceRequest.objects.filter(outage=outage).exclude(status__in=_final_states()):
        request = _lock(request)
        if request.status in states_of(request).paused:  # the consumer holds it up: not closed for them
            continue
        _close(
            request,
            actor=actor,
            channel=channel,
            notes=f"Supply restored ({outage.reason}); outage {outage.number} closed.",
            code="outage_restored",
            at=now,
        )
    return outage


@transaction.atomic
def cancel_outage(*, actor, channel: str, outage: Outage, reason: str) -> Outage:
    outage = Outage.objects.select_for_update().get(pk=outage.pk)
    if not OUTAGE_STATUS.can(outage.status, Outage.Status.CANCELLED):
        raise Conflict("only an announced (not yet begun) outage can be cancelled", code="outage_not_announced")
    change_state(outage, OUTAGE_STATUS, Outage.Status.CANCELLED, actor=actor, channel=channel, reason=reason,
                 action="servicedesk.outage_cancelled")  # fmt: skip
    _tell_accounts(
        affected_accounts(feeder=outage.feeder, transformer=outage.transformer),
        event="outage.cancelled",
        key=f"outage_cancelled:{outage.number}",
        context={"outage": outage.number, "area": outage_area(outage), "reason": reason},
    )
    return outage


def activate_planned_outages(*, now: datetime | None = None) -> int:
    """Announced outages whose start has come become active (periodic). Set-based, the WHERE from
    OUTAGE_STATUS; an audit event per outage (a handful a day)."""
    now = now or clock.now()
    return transition_set(
        Outage.objects.filter(starts_at__lte=now),
        OUTAGE_STATUS,
        Outage.Status.ACTIVE,
        actor=None,
        channel=Channel.SYSTEM,
        reason="start time reached",
        action="servicedesk.outage_active",
    )


# --- disputes: hearing and counselling cell -------------------------------------------------


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


def grievance_forums(*, division: Office | None = None) -> list[dict[str, Any]]:
    """GRF and ombudsman addresses (data/servicedesk/grievance_forums.toml) for a division."""
    doc = regdata.load("servicedesk/grievance_forums.toml")
    forums = []
    name = (division.name if division else "").lower()
    for forum in doc.get("forum", []):
        divisions = forum.get("divisions", [])
        if forum["kind"] == "ombudsman" or not divisions or not name or any(d.lower() in name for d in divisions):
            forums.append(dict(forum))
    if not any(f["kind"] == "grf" for f in forums):  # unknown division: list every forum
        forums = [dict(f) for f in doc.get("forum", [])]
    return forums


def forums_text(request: ServiceRequest) -> str:
    return "; ".join(
        f"{f['name']}, {f['address']}, tel. {f['phone']}"
        for f in grievance_forums(division=division_of(request.office))
    )


# --- feedback ---------------------------------------------------------------------------------


def feedback_token(request: ServiceRequest) -> str:
    return signing.dumps({"r": request.pk, "c": request.reopen_count}, salt=FEEDBACK_SALT, compress=True)


def feedback_url(request: ServiceRequest) -> str:
    return public_url(reverse("servicedesk:feedback", args=[feedback_token(request)]))


def request_from_token(token: str) -> tuple[ServiceRequest, int]:
    try:
        payload = signing.loads(token, salt=FEEDBACK_SALT, max_age=timedelta(days=90))
        request = ServiceRequest.objects.select_related("request_type__schedule", "office").get(pk=payload["r"])
    except (signing.BadSignature, KeyError, ServiceRequest.DoesNotExist) as exc:
        raise NotFound("this feedback link is not valid", code="invalid_feedback_link") from exc
    days = int(setting(schedule_of(request), "feedback_valid_days", 30))
    if request.closed_at and clock.now() > request.closed_at + timedelta(days=days):
        raise Conflict("this feedback link has expired", code="feedback_link_expired")
    return request, int(payload["c"])


@transaction.atomic
def submit_feedback(*, token: str, rating: int, comment: str = "", reopen: bool = False) -> Feedback:
    """Rate the resolution (1–5). Unsatisfied (rating ≤ 2) may reopen within the window."""
    request, closure = request_from_token(token)
    try:  # the boundary's rule: ASCII digits ("५" is refused, as int() would read it)
        rating = boundary.parse_int(rating, name="rating", minimum=-boundary.bounds().max_integer)
    except boundary.InvalidInput as exc:
        raise DomainError("rating must be a number from 1 to 5", code="invalid_rating") from exc
    if not 1 <= rating <= 5:
        raise DomainError("rating must be from 1 to 5", code="invalid_rating")
    if closure != request.reopen_count or request.status != states_of(request).closed:
        raise Conflict("this request has changed since the link was sent", code="feedback_link_stale")
    if Feedback.objects.filter(request=request, closure=closure).exists():
        raise Conflict("feedback for this closure is already recorded", code="feedback_exists")
    satisfied = rating >= 3
    feedback = Feedback.objects.create(
        request=request,
        rating=rating,
        comment=comment.strip()[:2000],
        satisfied=satisfied,
        closure=closure,
        created_at=clock.now(),
    )
    _event(request, kind=RequestEvent.Kind.FEEDBACK, channel="website", text=f"rated {rating}/5 {comment}".strip())
    if reopen:
        if satisfied:
            raise DomainError("a request is reopened only when you are not satisfied", code="reopen_needs_low_rating")
        reopen_request(actor=None, channel=Channel.WEBSITE, request=request, reason=comment or "consumer unsatisfied")
    return feedback


# --- tracking -------------------------------------------------------------------------------


NOT_FOUND_MESSAGE = "No request matches that request number and mobile / consumer number."


def find_for_consumer(*, number: str, mobile: str | None = None, consumer_number: str | None = None) -> ServiceRequest:
    """The request if (number, mobile) or (number, consumer number) match; one error otherwise,
    whether or not the number exists (no leak)."""
    if not (mobile or consumer_number):
        raise DomainError("give the mobile number or the consumer number as well", code="verification_required")
    number = (number or "").strip().upper()
    request = (
        ServiceRequest.objects.select_related("request_type__schedule", "account", "office", "consumer")
        .filter(number=number)
        .first()
    )
    ok = False
    if request is not None:
        if mobile:
            wanted = normalise_mobile(mobile) or ""
            mobiles = {request.contact_mobile}
            if request.consumer_id:
                mobiles |= set(
                    Contact.objects.filter(consumer_id=request.consumer_id, kind=Contact.Kind.MOBILE).values_list(
                        "value", flat=True
                    )
                )
            ok = bool(wanted) and wanted in mobiles
        if not ok and consumer_number and request.account_id:
            ok = request.account.consumer_number == consumer_number.strip().upper()
    if not ok:
        raise NotFound(NOT_FOUND_MESSAGE, code="request_not_found")
    return request


def status_view(request: ServiceRequest) -> dict[str, Any]:
    """What any touch point may show the consumer about a request."""
    state = clock_state(request)
    tier = request.escalations.order_by("-level").first()
    return {
        "number": request.number,
        "type": request.request_type.type_name,
        "subtype": request.request_type.name,
        "status": request.status,
        "registered_at": request.registered_at,
        "due_at": state.due,
        "sla_status": state.status,
        "paused": state.paused,
        "closed_at": request.closed_at,
        "resolution": request.resolution_notes if request.status == states_of(request).closed else "",
        "escalated_to": tier.title if tier else "",
        "outage": (
            {
                "number": request.outage.number,
                "reason": request.outage.reason,
                "expected_restore_at": request.outage.expected_restore_at,
            }
            if request.outage_id
            else None
        ),
        "history": [
            {"at": e.at, "status": e.to_status}
            for e in request.events.filter(kind__in=[RequestEvent.Kind.REGISTERED, RequestEvent.Kind.STATUS])
        ],
    }


def track(*, number: str, mobile: str | None = None, consumer_number: str | None = None) -> dict[str, Any]:
    """Status by request number plus mobile or consumer number: portal, API, WhatsApp and SMS bots."""
    return status_view(find_for_consumer(number=number, mobile=mobile, consumer_number=consumer_number))


# --- queues and reports ---------------------------------------------------------------------


def queue(
    *,
    user,
    office: Office | None = None,
    team: str = "",
    status: str = "open",
    escalated: bool = False,
    assigned_to_me: bool = False,
) -> QuerySet:
    from urja.core.scope import scope_records

    qs = scope_records(user, ServiceRequest.objects.all(), account_prefix="account__", office_path_field="office_path")
    if office is not None:
        qs = qs.filter(office_path__startswith=office.path)
    if team:
        qs = qs.filter(team=team)
    if status == "open":
        qs = qs.exclude(status__in=_final_states())
    elif status:
        qs = qs.filter(status=status)
    if escalated:
        qs = qs.filter(esc_clock__escalation_level__gt=0)
    if assigned_to_me:
        qs = qs.filter(assigned_to=user)
    return (
        qs.select_related("request_type__schedule", "office", "account", "assigned_to", "esc_clock")
        .prefetch_related("pauses")
        .order_by("due_at", "id")
    )


def sla_compliance(*, user, since: datetime, until: datetime, office: Office | None = None) -> list[dict[str, Any]]:
    """Per request type and owning office: closed within / after the due moment, open breached."""
    from urja.core.permissions import scope_by_office

    qs = scope_by_office(
        user, ServiceRequest.objects.filter(registered_at__gte=since, registered_at__lt=until), "office_path"
    )
    if office is not None:
        qs = qs.filter(office_path__startswith=office.path)
    now = clock.now()
    closed, final = _closed_states(), _final_states()
    rows = (
        qs.values("type_code", "request_type__type_name", "office__name")
        .annotate(
            total=Count("id"),
            closed_in_time=Count("id", filter=Q(status__in=closed, breached=False)),
            closed_late=Count("id", filter=Q(status__in=closed, breached=True)),
            open_breached=Count("id", filter=~Q(status__in=final) & Q(due_at__lt=now)),
            open_total=Count("id", filter=~Q(status__in=final)),
        )
        .order_by("request_type__type_name", "office__name")
    )
    out = []
    for row in rows:
        decided = row["closed_in_time"] + row["closed_late"] + row["open_breached"]
        out.append(
            {
                "type_code": row["type_code"],
                "type": row["request_type__type_name"],
                "office": row["office__name"],
                "total": row["total"],
                "closed_in_time": row["closed_in_time"],
                "closed_late": row["closed_late"],
                "open": row["open_total"],
                "open_breached": row["open_breached"],
                "compliance_pct": round(100 * row["closed_in_time"] / decided, 1) if decided else None,
            }
        )
    return out


def timeline(request: ServiceRequest) -> list[dict[str, Any]]:
    """Events and escalations of a request in time order (the request page)."""
    items = [
        {
            "at": e.at,
            "kind": e.kind,
            "label": e.get_kind_display(),
            "actor": e.actor_label,
            "channel": e.channel,
            "from": e.from_status,
            "to": e.to_status,
            "text": e.text,
        }
        for e in request.events.all()
    ]
    for esc in request.escalations.all():
        holder = holder_office(request.office, esc.office_level)
        items.append(
            {
                "at": esc.created_at,
                "kind": "escalated",
                "label": "Escalated",
                "actor": "system" if esc.reason == "sla" else esc.get_reason_display(),
                "channel": "",
                "from": "",
                "to": "",
                "text": f"Level {esc.level}: {esc.title} ({holder.name})"
                + (f" at {esc.fraction:.0%} of the SLA" if esc.fraction else ""),
            }
        )
    return sorted(items, key=lambda i: i["at"])
