"""API of outreach (mounted at /api/v1/outreach/ by core.api): events, attendance, issues and their
follow-up, requests registered on the spot. Thin: the scope in selectors, decisions in services.
Another office's event or issue answers 404 exactly like one that does not exist."""

from datetime import date, datetime

from ninja import Router, Schema, Status

from urja.core import boundary
from urja.core.boundary import Limit, Text, cap_limit

from . import selectors, services
from .models import EventIssue, OutreachEvent

router = Router(tags=["outreach"])


class OutreachEventIn(Schema):
    kind: Text(24)
    office: Text(16)
    held_on: boundary.Day
    venue: Text(200)
    partner: Text(160) = ""


class OutreachAttendanceIn(Schema):
    attendance: int
    notes: Text(2000, multiline=True) = ""


class OutreachNoteIn(Schema):
    note: Text(500) = ""


class OutreachIssueIn(Schema):
    text: Text(500)
    owner: Text(150)
    due_on: boundary.Day | None = None
    raised_by: Text(120) = ""
    consumer_number: Text(40) = ""


class OutreachIssueStatusIn(Schema):
    status: Text(12)
    note: Text(500) = ""


class OutreachRequestIn(Schema):
    type_code: Text(40)
    subtype_code: Text(40) = ""
    consumer_number: Text(40) = ""
    description: Text(2000, multiline=True) = ""
    mobile: Text(20) = ""
    name: Text(120) = ""


class OutreachIssueOut(Schema):
    id: int
    event_id: int
    text: str
    raised_by: str
    consumer_number: str | None
    owner: str
    due_on: date
    status: str
    overdue: bool
    resolution: str


class OutreachEventOut(Schema):
    id: int
    kind: str
    office: str
    held_on: date
    venue: str
    partner: str
    status: str
    attendance: int | None
    notes: str
    created_at: datetime


class OutreachEventDetailOut(OutreachEventOut):
    issues: list[OutreachIssueOut]
    requests: list[str]


class OutreachRequestOut(Schema):
    number: str
    created: bool
    channel: str
    status: str


def _event(e: OutreachEvent) -> dict:
    return {
        "id": e.pk,
        "kind": e.kind,
        "office": e.office.code,
        "held_on": e.held_on,
        "venue": e.venue,
        "partner": e.partner,
        "status": e.status,
        "attendance": e.attendance,
        "notes": e.notes,
        "created_at": e.created_at,
    }


def _issue(i: EventIssue, today: date | None = None) -> dict:
    from django.utils import timezone

    today = today or timezone.localdate()
    return {
        "id": i.pk,
        "event_id": i.event_id,
        "text": i.text,
        "raised_by": i.raised_by,
        "consumer_number": i.account.consumer_number if i.account_id else None,
        "owner": i.owner.username,
        "due_on": i.due_on,
        "status": i.status,
        "resolution": i.resolution,
        "overdue": i.status in selectors.OPEN_ISSUES and i.due_on < today,
    }


def _detail(user, event_id: int) -> dict:
    e = selectors.scoped_event(user, event_id)
    issues = e.issues.select_related("owner", "account").order_by("due_on", "id")
    requests = e.requests.select_related("request").order_by("id")
    return {**_event(e), "issues": [_issue(i) for i in issues], "requests": [r.request.number for r in requests]}


@router.get("/events", response=list[OutreachEventOut], summary="Events of the caller's offices (newest first)")
def list_events(request, kind: str = "", status: str = "", limit: int = Limit(50)):
    services.check_role(request.user)
    qs = selectors.filter_events(selectors.events_in_scope(request.user), kind=kind[:24], status=status[:12])
    return [_event(e) for e in qs.order_by("-held_on", "-id")[: cap_limit(limit)]]


@router.post("/events", response={201: OutreachEventOut}, summary="Plan an event (or record one held)")
def plan_event(request, body: OutreachEventIn):
    services.check_role(request.user)
    office = selectors.scoped_office(request.user, body.office)
    event = services.plan_event(
        actor=request.user,
        channel="api",
        kind=body.kind,
        office=office,
        held_on=body.held_on,
        venue=body.venue,
        partner=body.partner,
    )
    return Status(201, _event(event))


@router.get("/events/{event_id}", response=OutreachEventDetailOut, summary="An event with its issues and requests")
def get_event(request, event_id: int):
    services.check_role(request.user)
    return _detail(request.user, event_id)


@router.post("/events/{event_id}/attendance", response=OutreachEventOut, summary="Record the attendance (held)")
def record_attendance(request, event_id: int, body: OutreachAttendanceIn):
    services.check_role(request.user)
    event = selectors.scoped_event(request.user, event_id)
    event = services.record_attendance(
        actor=request.user, channel="api", event=event, attendance=body.attendance, notes=body.notes
    )
    return _event(event)


@router.post("/events/{event_id}/close", response=OutreachEventOut, summary="Close a held event")
def close_event(request, event_id: int, body: OutreachNoteIn):
    services.check_role(request.user)
    event = selectors.scoped_event(request.user, event_id)
    return _event(services.close_event(actor=request.user, channel="api", event=event, note=body.note))


@router.post("/events/{event_id}/cancel", response=OutreachEventOut, summary="Cancel a planned event")
def cancel_event(request, event_id: int, body: OutreachNoteIn):
    services.check_role(request.user)
    event = selectors.scoped_event(request.user, event_id)
    return _event(services.cancel_event(actor=request.user, channel="api", event=event, reason=body.note))


@router.post("/events/{event_id}/issues", response={201: OutreachIssueOut}, summary="Record an issue raised")
def raise_issue(request, event_id: int, body: OutreachIssueIn):
    services.check_role(request.user)
    event = selectors.scoped_event(request.user, event_id)
    issue = services.raise_issue(
        actor=request.user,
        channel="api",
        event=event,
        text=body.text,
        owner_username=body.owner,
        due_on=body.due_on,
        raised_by=body.raised_by,
        consumer_number=body.consumer_number,
    )
    return Status(201, _issue(issue))


@router.post(
    "/events/{event_id}/requests", response={201: OutreachRequestOut}, summary="Register a request on the spot"
)
def register_request(request, event_id: int, body: OutreachRequestIn):
    services.check_role(request.user)
    event = selectors.scoped_event(request.user, event_id)
    reg = services.register_request(
        actor=request.user,
        event=event,
        type_code=body.type_code,
        subtype_code=body.subtype_code,
        consumer_number=body.consumer_number,
        description=body.description,
        mobile=body.mobile,
        name=body.name,
    )
    r = reg.request or reg.handed_over  # a shifting: the connections change request it opened (servicedesk.handover)
    channel = r.channel if reg.request is not None else selectors.kinds()[event.kind].get("request_channel", "camp")
    return Status(201, {"number": reg.number, "created": reg.created, "channel": channel, "status": r.status})


@router.get("/issues", response=list[OutreachIssueOut], summary="Issues to follow up (open by default)")
def list_issues(request, status: str = "open", overdue: bool = False, limit: int = Limit(50)):
    from django.utils import timezone

    services.check_role(request.user)
    today = timezone.localdate()
    qs = selectors.filter_issues(
        selectors.issues_in_scope(request.user), status=status[:12], overdue_on=today if overdue else None
    )
    return [_issue(i, today) for i in qs.order_by("due_on", "id")[: cap_limit(limit)]]


@router.post(
    "/issues/{issue_id}/status", response=OutreachIssueOut, summary="Follow an issue up (status, what was done)"
)
def set_issue_status(request, issue_id: int, body: OutreachIssueStatusIn):
    services.check_role(request.user)
    issue = selectors.scoped_issue(request.user, issue_id)
    issue = services.set_issue_status(
        actor=request.user, channel="api", issue=issue, to_status=body.status, note=body.note
    )
    return _issue(selectors.scoped_issue(request.user, issue.pk))
