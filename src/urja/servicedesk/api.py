"""Service-desk API (mounted at /api/v1/servicedesk/).

Staff (token or session): register, read, move along the workflow, assign, transfer, outages,
reports. Public (auth=None): tracking by request number + mobile or consumer number (one answer
whether or not the number exists), consumer escalation, feedback.
"""

from datetime import date, datetime, timedelta

from django.contrib.auth import get_user_model
from ninja import Field, Router, Schema, Status

from urja.core import boundary
from urja.core.boundary import ColumnText, Days, Limit, Offset, Text, cap_limit
from urja.core.errors import DomainError, Forbidden, NotFound
from urja.core.models import Role
from urja.core.permissions import require_role, role_of
from urja.core.scope import assignable_role, get_scoped, office_covers, scope_offices, scope_records
from urja.network.models import DistributionTransformer, Feeder, Office

from . import catalogue, clock, services
from .models import Outage, RequestPause, ServiceRequest

router = Router(tags=["servicedesk"])

STAFF = [r for r in Role.values if r != Role.CONSUMER]


class RegisterIn(Schema):
    type: Text(40) = Field(..., description="type code from the catalogue, e.g. no_power_supply")
    subtype: Text(40) | None = Field(None, description="sub-type code (required when the type has several)")
    channel: Text(40) = Field(..., description="core Channel value: call_centre, care_centre, whatsapp, field_agent, …")
    consumer_number: Text(40) | None = None
    description: ColumnText(ServiceRequest, "description", multiline=True) = ""
    mobile: Text(32) = ""
    name: ColumnText(ServiceRequest, "contact_name") = ""
    language: Text(10) | None = None
    office: Text(40) | None = Field(None, description="office code, for requests without an account")


class RequestOut(Schema):
    number: str
    type: str
    subtype: str
    type_name: str
    subtype_name: str
    status: str
    channel: str
    consumer_number: str | None
    office: str
    team: str
    assigned_to: str | None
    registered_at: datetime
    due_at: datetime | None
    sla_status: str
    paused: bool
    escalation_level: int
    closed_at: datetime | None
    resolution_notes: str
    outage: str | None
    repeat_contacts: int
    duplicate: bool = False
    supply_check: str | None = None
    handed_over_to: str | None = Field(
        None,
        description="a type another app carries (the charter's shifting: 'connections'): no service request was "
        "made; `number` is the change request's, followed at /api/v1/connections/changes/{number} — its SLA clock "
        "and compensation are the only ones",
    )


def handed_over_out(result, *, type_code: str, subtype_code: str | None, channel: str) -> dict:
    """A registration handed over (`servicedesk.handover`): the change request opened, or found open."""
    done = result.handed_over
    rt = catalogue.find_type(type_code=type_code, subtype_code=subtype_code)
    now = clock.now()
    late = done.due_at is not None and not done.paused and now > done.due_at
    return {
        "number": done.number,
        "type": rt.type_code,
        "subtype": rt.subtype_code,
        "type_name": rt.type_name,
        "subtype_name": rt.name,
        "status": done.status,
        "channel": channel,
        "consumer_number": done.consumer_number,
        "office": done.office,
        "team": rt.team,
        "assigned_to": None,
        "registered_at": done.registered_at,
        "due_at": done.due_at,
        "sla_status": "breached" if late else "on_track",
        "paused": done.paused,
        "escalation_level": 0,
        "closed_at": None,
        "resolution_notes": "",
        "outage": None,
        "repeat_contacts": 0,
        "duplicate": not result.created,
        "supply_check": None,
        "handed_over_to": done.app,
    }


def request_out(request: ServiceRequest, *, duplicate: bool = False, supply_check=None, new: bool = False) -> dict:
    state = services.clock_state(request, never_paused=new)
    return {
        "number": request.number,
        "type": request.type_code,
        "subtype": request.subtype_code,
        "type_name": request.request_type.type_name,
        "subtype_name": request.request_type.name,
        "status": request.status,
        "channel": request.channel,
        "consumer_number": request.account.consumer_number if request.account_id else None,
        "office": request.office.code,
        "team": request.team,
        "assigned_to": request.assigned_to.get_username() if request.assigned_to_id else None,
        "registered_at": request.registered_at,
        "due_at": state.due,
        "sla_status": state.status,
        "paused": state.paused,
        "escalation_level": request.escalation_level,
        "closed_at": request.closed_at,
        "resolution_notes": request.resolution_notes,
        "outage": request.outage.number if request.outage_id else None,
        "repeat_contacts": request.repeat_contacts,
        "duplicate": duplicate,
        "supply_check": supply_check.reason if supply_check else None,
    }


def _staff(request) -> str:
    return require_role(request.user, *STAFF)


def _get(request, number: str) -> ServiceRequest:
    _staff(request)
    qs = scope_records(
        request.user,
        ServiceRequest.objects.select_related("request_type__schedule", "office", "account", "assigned_to", "outage"),
        account_prefix="account__",
        office_path_field="office_path",
    )
    number = number.strip().upper()
    return get_scoped(qs, NotFound(f"no request {number}", code="request_not_found"), number=number)


def _assignee(request, sr: ServiceRequest, username: str):
    """Staff of a role that works requests whose office covers the request's; anyone else (a consumer
    login, another division's staff) answers like an unknown user."""
    user = get_user_model().objects.filter(username=username, is_active=True).select_related("staff__office").first()
    if user is None or not (assignable_role(role_of(user)) or role_of(user) == Role.ADMIN):
        user = None
    if user is None or not office_covers(user, sr.office_path):
        raise DomainError(f"no staff user {username!r} for this request", code="unknown_user")
    return user


@router.post("/requests", response={201: RequestOut, 200: RequestOut}, summary="Register a request or complaint")
def register(request, payload: RegisterIn):
    role = role_of(request.user)
    if role == Role.CONSUMER:
        consumer = getattr(request.user, "consumer", None)
        if not payload.consumer_number or consumer is None:
            raise Forbidden("consumers register requests on their own accounts", code="not_your_account")
        if not consumer.accounts.filter(consumer_number=payload.consumer_number.strip().upper()).exists():
            raise Forbidden("consumers register requests on their own accounts", code="not_your_account")
    else:
        _staff(request)
        if payload.consumer_number:  # another office's account answers like an unknown one
            from urja.customers.selectors import scoped_account
            from urja.customers.services import validate_consumer_number

            scoped_account(request.user, validate_consumer_number(payload.consumer_number))
        if payload.office and not scope_offices(request.user, Office.objects.filter(code=payload.office), "path"):
            raise DomainError(f"unknown office {payload.office!r}", code="unknown_office")
    result = services.register_request(
        actor=request.user,
        channel=payload.channel,
        type_code=payload.type,
        subtype_code=payload.subtype,
        consumer_number=payload.consumer_number,
        description=payload.description,
        mobile=payload.mobile,
        name=payload.name,
        language=payload.language,
        office=payload.office,
    )
    if result.handed_over is not None:
        body = handed_over_out(result, type_code=payload.type, subtype_code=payload.subtype, channel=payload.channel)
        return Status(201 if result.created else 200, body)
    body = request_out(
        result.request, duplicate=not result.created, supply_check=result.supply_check, new=result.created
    )
    return Status(201 if result.created else 200, body)


@router.get("/requests", response=list[RequestOut], summary="Queue: open requests in your scope")
def list_requests(
    request,
    team: str = "",
    status: str = "open",
    office: str | None = None,
    limit: int = Limit(50),
    offset: int = Offset(),
):
    _staff(request)
    office_obj = services.find_office(office) if office else None
    qs = services.queue(user=request.user, office=office_obj, team=team, status=status)
    limit = max(1, cap_limit(limit))
    return [request_out(r) for r in qs[offset : offset + limit]]


@router.get("/requests/{number}", response=RequestOut)
def get_request(request, number: str):
    return request_out(_get(request, number))


class TimelineItem(Schema):
    at: datetime
    kind: str
    label: str
    actor: str
    channel: str
    text: str


@router.get("/requests/{number}/timeline", response=list[TimelineItem])
def get_timeline(request, number: str):
    return services.timeline(_get(request, number))


class TransitionIn(Schema):
    to: Text(40)
    note: Text(multiline=True) = ""


@router.post("/requests/{number}/transition", response=RequestOut)
def transition(request, number: str, payload: TransitionIn):
    sr = services.transition(
        actor=request.user, channel="api", request=_get(request, number), to_status=payload.to, note=payload.note
    )
    return request_out(sr)


class CloseIn(Schema):
    resolution_notes: ColumnText(ServiceRequest, "resolution_notes", multiline=True)
    resolution_code: ColumnText(ServiceRequest, "resolution_code") = "resolved"


@router.post("/requests/{number}/close", response=RequestOut)
def close(request, number: str, payload: CloseIn):
    sr = services.close_request(
        actor=request.user,
        channel="api",
        request=_get(request, number),
        resolution_notes=payload.resolution_notes,
        resolution_code=payload.resolution_code,
    )
    return request_out(sr)


class AssignIn(Schema):
    username: Text(150)


@router.post("/requests/{number}/assign", response=RequestOut)
def assign(request, number: str, payload: AssignIn):
    sr = _get(request, number)
    user = _assignee(request, sr, payload.username)
    return request_out(services.assign(actor=request.user, channel="api", request=sr, user=user))


class BulkAssignIn(Schema):
    numbers: list[ColumnText(ServiceRequest, "number")] = Field(..., max_length=boundary.bounds().max_limit)
    username: Text(150)


@router.post("/requests/bulk-assign", response=list[RequestOut])
def bulk_assign(request, payload: BulkAssignIn):
    _staff(request)
    user = None
    for number in payload.numbers:
        user = _assignee(request, _get(request, number), payload.username)  # scope check
    done = services.bulk_assign(actor=request.user, channel="api", numbers=payload.numbers, user=user)
    return [request_out(r) for r in done]


class TransferIn(Schema):
    office: Text(40)
    reason: Text(multiline=True)


@router.post("/requests/{number}/transfer", response=RequestOut)
def transfer(request, number: str, payload: TransferIn):
    sr = services.transfer(
        actor=request.user, channel="api", request=_get(request, number), office=payload.office, reason=payload.reason
    )
    return request_out(sr)


class NoteIn(Schema):
    text: Text(multiline=True)


@router.post("/requests/{number}/notes", response={201: dict})
def add_note(request, number: str, payload: NoteIn):
    event = services.add_note(actor=request.user, channel="api", request=_get(request, number), text=payload.text)
    return Status(201, {"id": event.pk})


class RequestReasonIn(Schema):
    reason: ColumnText(RequestPause, "reason")


@router.post("/requests/{number}/pause", response=RequestOut, summary="Pause the SLA clock (consumer's reason)")
def pause(request, number: str, payload: RequestReasonIn):
    sr = services.pause_clock(actor=request.user, channel="api", request=_get(request, number), reason=payload.reason)
    return request_out(sr)


@router.post("/requests/{number}/resume", response=RequestOut)
def resume(request, number: str):
    return request_out(services.resume_clock(actor=request.user, channel="api", request=_get(request, number)))


class CatalogueRow(Schema):
    type: str
    subtype: str
    type_name: str
    name: str
    kind: str
    unit: str
    value: int | None
    urban: int | None
    rural: int | None
    channels: list[str]
    office_level: str
    team: str
    workflow: str
    confirmed: bool


@router.get("/catalogue", response=list[CatalogueRow], auth=None, summary="Request types, timelines and channels")
def list_catalogue(request):
    schedule = catalogue.active_schedule()
    return [
        {
            "type": t.type_code,
            "subtype": t.subtype_code,
            "type_name": t.type_name,
            "name": t.name,
            "kind": t.kind,
            "unit": t.unit,
            "value": t.value,
            "urban": t.urban_value,
            "rural": t.rural_value,
            "channels": t.channels,
            "office_level": t.office_level,
            "team": t.team,
            "workflow": t.workflow,
            "confirmed": t.confirmed,
        }
        for t in schedule.types.all()
    ]


# --- public: tracking, consumer escalation, feedback -------------------------------------------


class RequestTrackOut(Schema):
    number: str
    type: str
    subtype: str
    status: str
    registered_at: datetime
    due_at: datetime | None
    sla_status: str
    paused: bool
    closed_at: datetime | None
    resolution: str
    escalated_to: str
    outage: dict | None
    history: list[dict]


@router.get(
    "/track", response=RequestTrackOut, auth=None, summary="Status by request number + mobile or consumer number"
)
def track(request, number: str, mobile: str | None = None, consumer_number: str | None = None):
    return services.track(number=number, mobile=mobile, consumer_number=consumer_number)


class ConsumerEscalateIn(Schema):
    number: Text(40)
    mobile: Text(32) | None = None
    consumer_number: Text(40) | None = None


@router.post("/track/escalate", response={201: dict}, auth=None, summary="The consumer escalates an open request")
def consumer_escalate(request, payload: ConsumerEscalateIn):
    escalation = services.consumer_escalate(
        number=payload.number, mobile=payload.mobile, consumer_number=payload.consumer_number
    )
    return Status(
        201, {"number": escalation.request.number, "level": escalation.level, "escalated_to": escalation.title}
    )


class FeedbackIn(Schema):
    rating: int = Field(..., ge=-boundary.bounds().max_integer, le=boundary.bounds().max_integer)
    comment: Text(multiline=True) = ""
    reopen: bool = False


@router.post("/feedback/{token}", response={201: dict}, auth=None, summary="Rate a closed request (signed link)")
def feedback(request, token: str, payload: FeedbackIn):
    fb = services.submit_feedback(token=token, rating=payload.rating, comment=payload.comment, reopen=payload.reopen)
    sr = fb.request
    reopened = catalogue.workflow_states(sr.request_type.schedule, sr.workflow).reopened
    return Status(201, {"number": sr.number, "rating": fb.rating, "reopened": sr.status == reopened})


# --- outages ----------------------------------------------------------------------------------


class OutageIn(Schema):
    kind: Text(10)
    reason: ColumnText(Outage, "reason")
    feeder: Text(40) | None = None
    transformer: Text(40) | None = None
    starts_at: datetime | None = None
    expected_restore_at: datetime | None = None


class OutageOut(Schema):
    number: str
    kind: str
    status: str
    feeder: str | None
    transformer: str | None
    reason: str
    starts_at: datetime
    expected_restore_at: datetime | None
    restored_at: datetime | None
    affected_accounts: int
    linked_requests: int


def outage_out(outage: Outage) -> dict:
    return {
        "number": outage.number,
        "kind": outage.kind,
        "status": outage.status,
        "feeder": outage.feeder.code if outage.feeder_id else None,
        "transformer": outage.transformer.code if outage.transformer_id else None,
        "reason": outage.reason,
        "starts_at": outage.starts_at,
        "expected_restore_at": outage.expected_restore_at,
        "restored_at": outage.restored_at,
        "affected_accounts": outage.affected_accounts,
        "linked_requests": outage.requests.count(),
    }


@router.post("/outages", response={201: OutageOut})
def declare_outage(request, payload: OutageIn):
    require_role(request.user, Role.ENGINEER, Role.MANAGER, Role.CRE)
    # only on the network of the caller's office; another division's feeder answers like an unknown one
    feeders = scope_offices(request.user, Feeder.objects.all(), "office__path")
    transformers = scope_offices(request.user, DistributionTransformer.objects.all(), "feeder__office__path")
    feeder = transformer = None
    if payload.feeder:
        missing = NotFound(f"no feeder {payload.feeder}", code="feeder_not_found")
        feeder = get_scoped(feeders, missing, code=payload.feeder)
    if payload.transformer:
        missing = NotFound(f"no transformer {payload.transformer}", code="transformer_not_found")
        transformer = get_scoped(transformers, missing, code=payload.transformer)
    outage = services.declare_outage(
        actor=request.user,
        channel="api",
        kind=payload.kind,
        reason=payload.reason,
        feeder=feeder,
        transformer=transformer,
        starts_at=payload.starts_at,
        expected_restore_at=payload.expected_restore_at,
    )
    return Status(201, outage_out(outage))


@router.post("/outages/{number}/restore", response=OutageOut)
def restore_outage(request, number: str):
    require_role(request.user, Role.ENGINEER, Role.MANAGER)
    outages = scope_offices(request.user, Outage.objects.all(), "office__path")
    outage = get_scoped(outages, NotFound(f"no outage {number}", code="outage_not_found"), number=number)
    return outage_out(services.restore_outage(actor=request.user, channel="api", outage=outage))


# --- reports ---------------------------------------------------------------------------------


class CompensationRow(Schema):
    division: str
    division_code: str
    type: str
    count: int
    amount: str


@router.get("/reports/compensation", response=list[CompensationRow], summary="Compensation credited per division")
def compensation_report(request, month: str):
    require_role(request.user, Role.MANAGER, Role.BILLING_OFFICER)
    try:
        first = date.fromisoformat(f"{month}-01")
    except ValueError as exc:
        raise DomainError("month must be YYYY-MM", code="invalid_month") from exc
    rows = services.compensation_report(month=first, user=request.user)
    return [{**r, "amount": str(r["amount"])} for r in rows]


class ComplianceRow(Schema):
    type_code: str
    type: str
    office: str
    total: int
    closed_in_time: int
    closed_late: int
    open: int
    open_breached: int
    compliance_pct: float | None


@router.get("/reports/sla-compliance", response=list[ComplianceRow])
def sla_compliance(request, days: int = Days(30)):
    _staff(request)
    now = clock.now()
    return services.sla_compliance(user=request.user, since=now - timedelta(days=max(1, days)), until=now)
