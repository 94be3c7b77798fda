"""Outreach services: the only code that changes outreach state. Typed, keyword-only, audited (who,
channel, what), called alike by the pages, the API and the demo. Every object is looked up within the
actor's scope by the callers (outreach.selectors): another office's event answers like none.

    plan_event        an event of an office (kind from data/outreach/events.toml, date, venue)
    record_attendance the head count (0 or more): a planned event becomes held
    raise_issue       an issue raised there, with its owner and due date (follow-up)
    set_issue_status  the follow-up: open → in progress → resolved (with what was done); reopen
    register_request  a service request lodged on the spot, through the service desk's
                      registration (the kind's channel: `camp`, or `anubhav_kendra`)
    close_event       no more on-the-spot requests; cancel_event for one that did not take place
"""

from __future__ import annotations

from datetime import date, timedelta

from django.db import transaction
from django.utils import timezone

from urja.core import scope
from urja.core.errors import Conflict, DomainError, NotFound
from urja.core.permissions import require_role
from urja.core.services import record_audit
from urja.core.states import transition
from urja.customers.models import Account
from urja.network.models import Office

from . import selectors
from .models import EVENT_STATUS, ISSUE_STATUS, EventIssue, EventRequest, OutreachEvent

ACCEPTING = (OutreachEvent.Status.PLANNED, OutreachEvent.Status.HELD)
PLAN_WINDOW_DAYS = 366  # an event is planned for the next year or recorded for the past one


def check_role(actor) -> str:
    return require_role(actor, *selectors.rules()["roles"])


def _text(value: str, *, field: str, limit: int, required: bool = True) -> str:
    text = " ".join((value or "").split())
    if required and not text:
        raise DomainError(f"give the {field.replace('_', ' ')}", code=f"{field}_required")
    if len(text) > limit:
        raise DomainError(f"the {field.replace('_', ' ')} is longer than {limit} characters", code=f"invalid_{field}")
    return text


def _day(value: date | str, *, field: str) -> date:
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value).strip())
    except ValueError as exc:
        raise DomainError(
            f"give the {field.replace('_', ' ')} as a date (yyyy-mm-dd)", code=f"invalid_{field}"
        ) from exc


def _locked(event: OutreachEvent) -> OutreachEvent:
    return OutreachEvent.objects.select_for_update().select_related("office").get(pk=event.pk)


def _accepting(event: OutreachEvent, what: str) -> None:
    if event.status not in ACCEPTING:
        raise Conflict(
            f"this event is {event.get_status_display().lower()}: it takes no more {what}",
            code="event_closed",
            details={"status": event.status},
        )


@transaction.atomic
def plan_event(
    *,
    actor,
    channel: str,
    kind: str,
    office: Office,
    held_on: date | str,
    venue: str,
    partner: str = "",
    today: date | None = None,
) -> OutreachEvent:
    """Plan (or record after the fact) an event of `office` — an office the caller looked up in the
    actor's scope (selectors.scoped_office)."""
    check_role(actor)
    if kind not in selectors.kinds():
        raise DomainError(
            f"unknown kind of event {kind!r}", code="invalid_kind", details={"allowed": sorted(selectors.kinds())}
        )
    if not scope.office_covers(actor, office.path):
        raise scope.not_found("office", office.code)
    day = _day(held_on, field="held_on")
    today = today or timezone.localdate()
    if abs((day - today).days) > PLAN_WINDOW_DAYS:
        raise DomainError("the date must be within a year of today", code="invalid_held_on")
    event = OutreachEvent.objects.create(
        kind=kind,
        office=office,
        office_path=office.path,
        held_on=day,
        venue=_text(venue, field="venue", limit=200),
        partner=_text(partner, field="partner", limit=160, required=False),
        created_by=actor if getattr(actor, "pk", None) else None,
    )
    record_audit(
        actor=actor,
        channel=channel,
        action="outreach.event_planned",
        obj=event,
        changes={"kind": kind, "office": office.code, "held_on": day.isoformat(), "venue": event.venue},
    )
    return event


@transaction.atomic
def record_attendance(
    *, actor, channel: str, event: OutreachEvent, attendance: int | str, notes: str = "", today: date | None = None
) -> OutreachEvent:
    """The head count of an event that has taken place (0 or more): a planned event becomes held; a
    held one has its count corrected. A closed or cancelled event is not changed."""
    check_role(actor)
    try:
        count = int(str(attendance).strip())
    except ValueError as exc:
        raise DomainError("give the attendance as a whole number", code="invalid_attendance") from exc
    limit = int(selectors.rules()["max_attendance"])
    if count < 0 or count > limit:
        raise DomainError(f"the attendance must be between 0 and {limit}", code="invalid_attendance")
    event = _locked(event)
    _accepting(event, "attendance")
    if event.held_on > (today or timezone.localdate()):
        raise DomainError("the event has not taken place yet", code="event_in_future")
    before = event.attendance
    event.attendance = count
    event.notes = _text(notes, field="notes", limit=2000, required=False) or event.notes
    if event.status == OutreachEvent.Status.PLANNED:
        transition(
            event,
            EVENT_STATUS,
            OutreachEvent.Status.HELD,
            actor=actor,
            channel=channel,
            extra_fields=("attendance", "notes"),
            changes={"attendance": count},
        )
    else:
        event.save(update_fields=["attendance", "notes"])
        record_audit(
            actor=actor,
            channel=channel,
            action="outreach.attendance",
            obj=event,
            changes={"attendance": [before, count]},
        )
    return event


def _owner(actor, event: OutreachEvent, owner_username: str):
    """A staff member of an office within the actor's scope, or of an office above the event's (the
    division's engineer for a section's camp). Anyone else answers like an unknown name."""
    from django.contrib.auth import get_user_model

    name = (owner_username or "").strip()
    user = get_user_model().objects.filter(username=name, staff__isnull=False).select_related("staff").first()
    if user is not None:
        path = user.staff.office.path if user.staff.office_id else ""
        if scope.office_covers(actor, path) or event.office_path.startswith(path):
            return user
    raise DomainError(f"no staff member {name!r} in your offices", code="owner_not_found")


@transaction.atomic
def raise_issue(
    *,
    actor,
    channel: str,
    event: OutreachEvent,
    text: str,
    owner_username: str,
    due_on: date | str | None = None,
    raised_by: str = "",
    consumer_number: str = "",
) -> EventIssue:
    """Record an issue raised at the event, with its owner and due date (by default the event's date
    plus data's followup_days). A consumer number, when given, must be an account in scope."""
    check_role(actor)
    event = _locked(event)
    _accepting(event, "issues")
    owner = _owner(actor, event, owner_username)
    due = (
        _day(due_on, field="due_on")
        if due_on
        else event.held_on + timedelta(days=int(selectors.rules()["followup_days"]))
    )
    if due < event.held_on:
        raise DomainError("the follow-up cannot be due before the event", code="invalid_due_on")
    account = None
    if (consumer_number or "").strip():
        number = consumer_number.strip().upper()
        account = scope.scope_accounts(actor, Account.objects.filter(consumer_number=number)).first()
        if account is None:
            raise NotFound(f"no account with consumer number {number}", code="account_not_found")
    issue = EventIssue.objects.create(
        event=event,
        text=_text(text, field="text", limit=500),
        raised_by=_text(raised_by, field="raised_by", limit=120, required=False),
        account=account,
        owner=owner,
        due_on=due,
    )
    record_audit(
        actor=actor,
        channel=channel,
        action="outreach.issue_raised",
        obj=issue,
        changes={"event": event.pk, "owner": owner.username, "due_on": due.isoformat()},
    )
    return issue


@transaction.atomic
def set_issue_status(*, actor, channel: str, issue: EventIssue, to_status: str, note: str = "") -> EventIssue:
    """Follow an issue up: in progress, resolved (what was done is required), or reopened."""
    check_role(actor)
    if to_status not in EventIssue.Status.values:
        raise DomainError(
            f"unknown status {to_status!r}", code="invalid_status", details={"allowed": EventIssue.Status.values}
        )
    issue = EventIssue.objects.select_for_update().get(pk=issue.pk)
    note = _text(note, field="note", limit=500, required=to_status == EventIssue.Status.RESOLVED)
    extra: tuple[str, ...] = ()
    if to_status == EventIssue.Status.RESOLVED:
        issue.resolution, issue.resolved_at = note, timezone.now()
        extra = ("resolution", "resolved_at")
    elif issue.status == EventIssue.Status.RESOLVED:
        issue.resolved_at = None
        extra = ("resolved_at",)
    transition(issue, ISSUE_STATUS, to_status, actor=actor, channel=channel, reason=note, extra_fields=extra)
    return issue


def register_request(
    *,
    actor,
    event: OutreachEvent,
    type_code: str,
    subtype_code: str | None = None,
    consumer_number: str = "",
    description: str = "",
    mobile: str = "",
    name: str = "",
):
    """Lodge a service request on the spot through the service desk's registration, on the kind's
    channel (data/outreach/events.toml: `camp`, which the channel matrix treats as the care centre
    column, or `anubhav_kendra`). A request without an account is lodged at the event's office. A
    repeat of an open request of the same type returns it (the service desk's rule), linked once."""
    from urja.servicedesk.services import register_request as lodge

    check_role(actor)
    event = OutreachEvent.objects.select_related("office").get(pk=event.pk)
    _accepting(event, "requests")
    number = (consumer_number or "").strip().upper()
    if number and not scope.scope_accounts(actor, Account.objects.filter(consumer_number=number)).exists():
        raise NotFound(f"no account with consumer number {number}", code="account_not_found")
    channel = selectors.kinds()[event.kind].get("request_channel", "camp")
    with transaction.atomic():
        event = _locked(event)
        _accepting(event, "requests")  # closed meanwhile
        registration = lodge(
            actor=actor,
            channel=channel,
            type_code=type_code,
            subtype_code=subtype_code or None,
            consumer_number=number or None,
            office=None if number else event.office,
            description=_text(description, field="description", limit=2000, required=False),
            mobile=mobile,
            name=_text(name, field="name", limit=120, required=False),
        )
        created = registration.created  # a shifting is a connections change request: no service request to link
        if registration.request is not None:
            _link, created = EventRequest.objects.get_or_create(request=registration.request, defaults={"event": event})
        if created:
            record_audit(
                actor=actor,
                channel=channel,
                action="outreach.request_registered",
                obj=event,
                changes={"request": registration.number},
            )
    return registration


@transaction.atomic
def close_event(*, actor, channel: str, event: OutreachEvent, note: str = "") -> OutreachEvent:
    """Close a held event: no more requests or issues on it (the issues' follow-up goes on)."""
    check_role(actor)
    event = _locked(event)
    transition(event, EVENT_STATUS, OutreachEvent.Status.CLOSED, actor=actor, channel=channel, reason=note)
    return event


@transaction.atomic
def cancel_event(*, actor, channel: str, event: OutreachEvent, reason: str) -> OutreachEvent:
    check_role(actor)
    reason = _text(reason, field="reason", limit=300)
    event = _locked(event)
    transition(event, EVENT_STATUS, OutreachEvent.Status.CANCELLED, actor=actor, channel=channel, reason=reason)
    return event
