"""Connections API (mounted at /api/v1/connections/): the portal, the field app and the call-centre
desk call the same services as the back-office pages.

Staff (token or session) work applications through their steps; the public may read the checklist
and track an application by its number and mobile (one answer whether or not the number exists).
"""

from datetime import date, datetime
from decimal import Decimal

from ninja import Field, File, Form, Router, Schema, Status
from ninja.files import UploadedFile

from urja.core.api import Error
from urja.core.boundary import Limit, Offset, Quantity, Text, cap_limit
from urja.core.labels import label
from urja.core.models import Role
from urja.core.permissions import require_role

from . import changes, rules, selectors, services, shifting
from .models import SHIFTING_KINDS, Application

router = Router(tags=["connections"])

FRONT = (Role.CRE, Role.ENGINEER, Role.MANAGER, Role.FIELD_AGENT)
FIELD = (Role.ENGINEER, Role.MANAGER)
COLLECT = (Role.CRE, Role.BILLING_OFFICER, Role.MANAGER, Role.FIELD_AGENT)


# --- schemas --------------------------------------------------------------------------------------


class ChecklistLine(Schema):
    code: str
    name: str
    any_of: list[str] = []
    conditional: bool = False


class DocumentIn(Schema):
    code: Text(40)
    proof_type: Text(40) = ""
    number: Text(40) = ""


class ApplicationIn(Schema):
    name: Text(160)
    mobile: Text(20)
    applicant_type: Text(20) = Field(..., description="document-matrix applicant type: owner, tenant, company …")
    applicant_kind: Text(12) = "person"
    preferred_language: Text(2) = "en"
    premises_address: Text(500, multiline=True)
    pincode: Text(6) = ""
    latitude: Text(20) = Field(..., description="decimal degrees, ASCII digits")
    longitude: Text(20)
    area_class: Text(12) = Field(..., description="metro, municipal, rural or hilly_rural (Rights of Consumers Rules)")
    section: Text(16) = Field(..., description="section office code")
    supply_type: Text(12)
    load: Quantity()
    load_unit: Text(3) = "kW"
    category: Text(24)
    sub_category: Text(24) = "general"
    meter_option: Text(10) = "utility"
    temporary_until: date | None = None
    documents: list[DocumentIn] = Field(..., max_length=30)
    channel: Text(20) = "care_centre"


class DemandNoteOut(Schema):
    number: str
    status: str
    total: Decimal
    deposit: Decimal
    estimated_monthly_bill: Decimal
    lines: list[dict]
    outstanding: Decimal


class ApplicationOut(Schema):
    number: str
    kind: str
    status: str
    applicant: str
    applicant_type: str
    section: str
    supply_type: str
    load: Decimal
    load_unit: str
    category: str
    area_class: str
    application_fee: Decimal
    fast_track: bool
    fast_track_note: str
    registered_at: datetime
    dn_due_at: datetime | None
    connection_due_at: datetime | None
    cap_due_at: datetime | None
    sla: str
    paused: bool
    escalation_level: int
    consumer_number: str | None
    account_status: str | None
    placement: dict | None = Field(None, description="the account's DT, feeder, bill cycle and route")
    demand_note: DemandNoteOut | None
    rejection_code: str
    rejection_reason: str
    temporary_until: date | None


def demand_note_of(app: Application):
    try:
        return app.demand_note
    except Application.demand_note.RelatedObjectDoesNotExist:
        return None


def application_out(app: Application) -> dict:
    note = demand_note_of(app)
    return {
        "number": app.number,
        "kind": app.kind,
        "status": app.status,
        "applicant": app.consumer.name,
        "applicant_type": app.consumer.applicant_type,
        "section": app.section.code,
        "supply_type": app.supply_type,
        "load": app.load,
        "load_unit": app.load_unit,
        "category": app.category,
        "area_class": app.area_class,
        "application_fee": app.application_fee,
        "fast_track": app.fast_track,
        "fast_track_note": app.fast_track_note,
        "registered_at": app.registered_at,
        "dn_due_at": app.dn_due_at,
        "connection_due_at": app.connection_due_at,
        "cap_due_at": app.cap_due_at,
        "sla": services.sla_colour(app),
        "paused": app.pauses.filter(ended_at__isnull=True).exists(),
        "escalation_level": app.escalation_level,
        "consumer_number": app.account.consumer_number if app.account_id else None,
        "account_status": app.account.status if app.account_id else None,
        "placement": {
            "transformer": app.account.transformer.code if app.account.transformer_id else None,
            "feeder": app.account.feeder.code if app.account.feeder_id else None,
            "bill_cycle": app.account.bill_cycle,
            "route": app.account.route,
        }
        if app.account_id
        else None,
        "demand_note": None
        if note is None
        else {
            "number": note.number,
            "status": note.status,
            "total": note.total,
            "deposit": note.deposit,
            "estimated_monthly_bill": note.estimated_monthly_bill,
            "lines": note.lines,
            "outstanding": selectors.outstanding(app),
        },
        "rejection_code": app.rejection_code,
        "rejection_reason": app.rejection_reason,
        "temporary_until": app.temporary_until,
    }


# --- public ---------------------------------------------------------------------------------------


@router.get("/checklist", response=list[ChecklistLine], auth=None, summary="Documents for an applicant type")
def checklist(request, applicant_type: Text(20)):
    if applicant_type not in services.matrix()["applicant_types"]:
        from urja.core.errors import DomainError

        raise DomainError(
            f"unknown applicant type {applicant_type!r}",
            code="unknown_applicant_type",
            details={"allowed": services.matrix()["applicant_types"]},
        )
    return rules.checklist(services.matrix(), applicant_type)


class TrackIn(Schema):
    number: Text(20)
    mobile: Text(20)


class ApplicationTrackOut(Schema):
    number: str
    status: str
    status_label: str
    registered_at: datetime
    dn_due_at: datetime | None
    connection_due_at: datetime | None
    demand_note_total: Decimal | None
    outstanding: Decimal | None
    consumer_number: str | None
    rejection_reason: str


@router.post("/track", response=ApplicationTrackOut, auth=None, summary="Track an application by its number and mobile")
def track(request, payload: TrackIn):
    app = selectors.track(number=payload.number, mobile=payload.mobile)
    note = demand_note_of(app)
    return {
        "number": app.number,
        "status": app.status,
        "status_label": app.get_status_display(),
        "registered_at": app.registered_at,
        "dn_due_at": app.dn_due_at,
        "connection_due_at": app.connection_due_at,
        "demand_note_total": note.total if note else None,
        "outstanding": selectors.outstanding(app) if note else None,
        "consumer_number": app.account.consumer_number if app.account_id and app.status == "energized" else None,
        "rejection_reason": app.rejection_reason,
    }


# --- staff ----------------------------------------------------------------------------------------


@router.post("/applications", response={201: ApplicationOut}, summary="Register a new-connection application")
def register(request, payload: ApplicationIn):
    require_role(request.user, *FRONT)
    app = services.register_application(
        actor=request.user,
        channel=payload.channel,
        name=payload.name,
        mobile=payload.mobile,
        applicant_type=payload.applicant_type,
        applicant_kind=payload.applicant_kind,
        preferred_language=payload.preferred_language,
        premises_address=payload.premises_address,
        pincode=payload.pincode,
        latitude=payload.latitude,
        longitude=payload.longitude,
        area_class=payload.area_class,
        section=payload.section,
        supply_type=payload.supply_type,
        load=payload.load,
        load_unit=payload.load_unit,
        category=payload.category,
        sub_category=payload.sub_category,
        meter_option=payload.meter_option,
        temporary_until=payload.temporary_until,
        documents=[services.DocumentIn(d.code, d.proof_type, d.number) for d in payload.documents],
    )
    return Status(201, application_out(app))


@router.get("/applications", response=list[ApplicationOut], summary="Applications in your scope")
def list_applications(request, status: Text(12) = "", limit: int = Limit(50), offset: int = Offset()):
    require_role(request.user, *FRONT, Role.BILLING_OFFICER, Role.KEY_ACCOUNT_MANAGER)
    qs = selectors.applications_in_scope(request.user)
    if status:
        qs = qs.filter(status=status)
    limit = max(1, cap_limit(limit))
    return [application_out(a) for a in qs.order_by("-registered_at")[offset : offset + limit]]


@router.get("/applications/{number}", response=ApplicationOut)
def get_application(request, number: str):
    return application_out(selectors.scoped_application(request.user, number))


class ApplicationDocumentOut(Schema):
    code: str
    name: str
    proof_type: str
    number_masked: str
    has_file: bool
    uploaded_at: datetime


def document_out(line) -> dict:
    kyc = line.document
    return {
        "code": line.document_code,
        "name": label(line.document_code),
        "proof_type": kyc.proof_type,
        "number_masked": kyc.number_masked,
        "has_file": bool(kyc.file),
        "uploaded_at": kyc.uploaded_at,
    }


@router.get(
    "/applications/{number}/documents", response=list[ApplicationDocumentOut], summary="The application's documents"
)
def list_documents(request, number: str):
    require_role(request.user, *FRONT)
    app = selectors.scoped_application(request.user, number)
    return [document_out(d) for d in app.documents.select_related("document").order_by("document_code")]


@router.post(
    "/applications/{number}/documents",
    response={201: ApplicationDocumentOut, 413: Error, 415: Error},
    summary="Upload a document of the checklist (multipart)",
    description=(
        "A typed upload for one line of the application's checklist (data/customers/document_matrix.toml "
        "for the applicant's type): `code`, `proof_type` (one of the line's `any_of`), `proof_number`, `file` "
        "(PDF, JPEG or PNG by its first bytes, up to the matrix's [upload] max_bytes). 400 "
        "`unknown_document_type`, `document_not_on_checklist`, `proof_type_not_accepted`, `invalid_aadhaar`, "
        "`file_empty`; 413 `file_too_large`; 415 `unsupported_file_type`; 409 `application_closed`; 404 for an "
        "application not in the caller's scope. A document given before is replaced by the newer file."
    ),
)
def upload_document(
    request,
    number: str,
    code: Text(40) = Form(...),  # noqa: B008 (ninja declares parameters so)
    file: UploadedFile = File(...),  # noqa: B008
    proof_type: Text(40) = Form(""),  # noqa: B008
    proof_number: Text(40) = Form(""),  # noqa: B008
):
    require_role(request.user, *FRONT)
    line = services.attach_document(
        actor=request.user,
        channel="api",
        application=selectors.scoped_application(request.user, number),
        document_code=code,
        file=file,
        proof_type=proof_type,
        number=proof_number,
    )
    return Status(201, document_out(line))


class InspectionIn(Schema):
    feasible: bool
    distance_m: int = Field(..., ge=0, le=1_000_000)
    right_of_way_issue: bool = False
    extension_needed: bool = False
    extension_estimate: Text(20) = ""
    notes: Text(2000, multiline=True) = ""
    transformer: Text(24) = Field("", description="the connecting point: a DT code of the section (blank: the nearest)")


@router.post("/applications/{number}/inspection", response=ApplicationOut, summary="Record the site inspection")
def inspection(request, number: str, payload: InspectionIn):
    require_role(request.user, *FIELD)
    app = services.record_inspection(
        actor=request.user,
        channel="api",
        application=selectors.scoped_application(request.user, number),
        **payload.dict(),
    )
    return application_out(app)


@router.post("/applications/{number}/demand-note", response=ApplicationOut, summary="Issue the demand note")
def demand_note(request, number: str):
    require_role(request.user, *FIELD)
    app = selectors.scoped_application(request.user, number)
    services.issue_demand_note(actor=request.user, channel="api", application=app)
    return application_out(selectors.scoped_application(request.user, number))


class DemandNotePaymentIn(Schema):
    idempotency_key: Text(100)
    channel: Text(20) = Field("counter", description="payments channel: counter, field_agent, card, atp")
    method: Text(20) = "cash"
    reference: Text(64) = ""


@router.post(
    "/applications/{number}/demand-note/payment", response=ApplicationOut, summary="Take the demand note's payment"
)
def pay(request, number: str, payload: DemandNotePaymentIn):
    require_role(request.user, *COLLECT)
    app = services.pay_demand_note(
        actor=request.user,
        channel=payload.channel,
        application=selectors.scoped_application(request.user, number),
        idempotency_key=payload.idempotency_key,
        method=payload.method,
        reference=payload.reference,
    )
    return application_out(app)


class EnergizeIn(Schema):
    meter_serial: Text(40)
    initial_kwh: Quantity() = Decimal("0")
    transformer: Text(24) = Field("", description="DT code of the section (blank: the inspection's connecting point)")
    bill_cycle: Text(12) = Field("", description="bill cycle (blank: the section's usual one)")
    route: Text(16) = Field("", description="reading route / book of the section (blank: the section's usual one)")


@router.post("/applications/{number}/energize", response=ApplicationOut, summary="Energize: meter, account, welcome")
def energize(request, number: str, payload: EnergizeIn):
    require_role(request.user, *FIELD)
    app = services.energize(
        actor=request.user,
        channel="api",
        application=selectors.scoped_application(request.user, number),
        meter_serial=payload.meter_serial,
        initial_kwh=payload.initial_kwh,
        transformer=payload.transformer,
        bill_cycle=payload.bill_cycle,
        route=payload.route,
    )
    return application_out(selectors.scoped_application(request.user, app.number))


class RejectIn(Schema):
    code: Text(40) = "other"
    reason: Text(500)
    withdrawn: bool = False


@router.post("/applications/{number}/reject", response=ApplicationOut, summary="Reject (or withdraw) with reasons")
def reject(request, number: str, payload: RejectIn):
    require_role(request.user, *FRONT)
    app = services.reject(
        actor=request.user,
        channel="api",
        application=selectors.scoped_application(request.user, number),
        code=payload.code,
        reason=payload.reason,
        withdrawn=payload.withdrawn,
    )
    return application_out(app)


class PauseIn(Schema):
    reason: Text(300)


@router.post("/applications/{number}/pause", response=ApplicationOut, summary="Pause the clock (applicant's cause)")
def pause(request, number: str, payload: PauseIn):
    require_role(request.user, *FRONT)
    app = services.pause_clock(
        actor=request.user,
        channel="api",
        application=selectors.scoped_application(request.user, number),
        reason=payload.reason,
    )
    return application_out(app)


@router.post("/applications/{number}/resume", response=ApplicationOut, summary="Resume the clock")
def resume(request, number: str):
    require_role(request.user, *FRONT)
    app = services.resume_clock(
        actor=request.user, channel="api", application=selectors.scoped_application(request.user, number)
    )
    return application_out(app)


# --- change requests, disconnection and reconnection orders ---------------------------------------


class ChangeRequestIn(Schema):
    consumer_number: Text(20)
    kind: Text(20) = Field(
        ...,
        description="load_change, name_change, category_change, temp_disconnection, perm_disconnection, "
        "meter_shifting, lt_line_shifting, 11kv_line_shifting, 33kv_line_shifting, dt_shifting",
    )
    details: dict = Field(
        default_factory=dict,
        description="load/unit, category/sub_category, name/carry_dues, final_kwh; meter_shifting: location, "
        "reason; line and DT shifting: location (what is to move, where to), reason, requester (consumer, builder, "
        "affected_party), requested_by (name), element (the DT or feeder code, if known)",
    )
    channel: Text(20) = "care_centre"


class ChangeRequestOut(Schema):
    number: str
    kind: str
    status: str
    consumer_number: str
    details: dict
    requested_at: datetime
    effective_on: date | None
    charge: Decimal
    applied_at: datetime | None
    due_at: datetime | None
    reason: str
    outcome: dict
    inspection: dict | None = Field(None, description="a shifting: the site inspection")
    still_to_pay: Decimal = Field(Decimal("0.00"), description="a shifting: what the demand note still wants")
    escalation_level: int = Field(0, description="a shifting: the SoP escalation tier its lateness reached (0: none)")


def _inspection_of(change) -> dict | None:
    i = getattr(change, "inspection", None)  # the reverse one-to-one raises an AttributeError when absent
    if i is None:
        return None
    return {
        "inspected_at": i.inspected_at,
        "feasible": i.feasible,
        "new_location": i.new_location,
        "latitude": str(i.latitude) if i.latitude is not None else None,
        "longitude": str(i.longitude) if i.longitude is not None else None,
        "estimate": str(i.estimate),
        "route_length_m": i.route_length_m,
        "structures": i.structures,
        "element": i.transformer.code if i.transformer_id else i.feeder.code if i.feeder_id else None,
        "notes": i.notes,
    }


def change_out(change) -> dict:
    return {
        "number": change.number,
        "kind": change.kind,
        "status": change.status,
        "consumer_number": change.account.consumer_number,
        "details": change.details,
        "requested_at": change.requested_at,
        "effective_on": change.effective_on,
        "charge": change.charge,
        "applied_at": change.applied_at,
        "due_at": change.due_at,
        "reason": change.reason,
        "outcome": change.outcome or {},
        "inspection": _inspection_of(change),
        "still_to_pay": shifting.still_to_pay(change) if change.kind in SHIFTING_KINDS else Decimal("0.00"),
        "escalation_level": change.escalation_level,
    }


@router.post("/changes", response={201: ChangeRequestOut}, summary="Request a change on an account")
def request_change(request, payload: ChangeRequestIn):
    from urja.customers.selectors import scoped_account

    require_role(request.user, *FRONT)
    account = scoped_account(request.user, payload.consumer_number)
    change = changes.request_change(
        actor=request.user, channel=payload.channel, account=account, kind=payload.kind, details=payload.details
    )
    return Status(201, change_out(change))


@router.get("/changes", response=list[ChangeRequestOut], summary="Change requests in your scope")
def list_changes(request, status: Text(12) = "", limit: int = Limit(50), offset: int = Offset()):
    require_role(request.user, *FRONT, Role.BILLING_OFFICER, Role.KEY_ACCOUNT_MANAGER)
    qs = selectors.change_requests_in_scope(request.user)
    if status:
        qs = qs.filter(status=status)
    limit = max(1, cap_limit(limit))
    return [change_out(c) for c in qs[offset : offset + limit]]


@router.get("/changes/{number}", response=ChangeRequestOut)
def get_change(request, number: str):
    return change_out(selectors.scoped_change_request(request.user, number))


class ChangeDecisionIn(Schema):
    approve: bool
    reason: Text(500) = ""


@router.post("/changes/{number}/decision", response=ChangeRequestOut, summary="Approve or reject a change request")
def decide(request, number: str, payload: ChangeDecisionIn):
    require_role(request.user, Role.MANAGER, Role.ENGINEER, Role.BILLING_OFFICER)
    change = changes.decide(
        actor=request.user,
        channel="api",
        change=selectors.scoped_change_request(request.user, number),
        approve=payload.approve,
        reason=payload.reason,
    )
    return change_out(change)


class ShiftingInspectionIn(Schema):
    feasible: bool
    new_location: Text(200) = Field("", description="where on the premises the meter goes; a line's new route")
    latitude: Text(20) = Field("", description="the new geo point (decimal degrees), with longitude; a DT: required")
    longitude: Text(20) = ""
    estimate: Text(20) = Field("", description="material and labour, Rs (the demand note's amount)")
    element: Text(24) = Field(
        "", description="line / DT shifting: the DT (LT line, DT structure) or the 11 / 33 kV feeder of the section"
    )
    route_length_m: Text(10) = Field("", description="line shifting: the new route's length, whole metres")
    structures: Text(10) = Field("", description="line / DT shifting: poles or structures to move")
    notes: Text(2000, multiline=True) = Field("", description="not feasible: the reasons (the rejection's)")


@router.post("/changes/{number}/inspection", response=ChangeRequestOut, summary="Shifting: record the site inspection")
def shifting_inspection(request, number: str, payload: ShiftingInspectionIn):
    require_role(request.user, *FIELD)
    change = shifting.inspect(
        actor=request.user,
        channel="api",
        change=selectors.scoped_change_request(request.user, number),
        **payload.dict(),
    )
    return change_out(change)


@router.post("/changes/{number}/demand-note", response=ChangeRequestOut, summary="Shifting: issue the demand note")
def shifting_demand_note(request, number: str):
    require_role(request.user, *FIELD)
    change = shifting.issue_demand_note(
        actor=request.user, channel="api", change=selectors.scoped_change_request(request.user, number)
    )
    return change_out(change)


@router.post(
    "/changes/{number}/demand-note/payment",
    response=ChangeRequestOut,
    summary="Shifting: take the demand note's payment",
)
def shifting_payment(request, number: str, payload: DemandNotePaymentIn):
    require_role(request.user, *COLLECT)
    change = shifting.pay_demand_note(
        actor=request.user,
        channel=payload.channel,
        change=selectors.scoped_change_request(request.user, number),
        idempotency_key=payload.idempotency_key,
        method=payload.method,
        reference=payload.reference,
    )
    return change_out(change)


class ShiftedIn(Schema):
    location: Text(200) = Field("", description="blank: the inspection's new location")
    latitude: Text(20) = Field("", description="blank: the inspection's geo point")
    longitude: Text(20) = ""
    acknowledged_by: Text(150) = Field("", description="the consumer or representative who signed the sheet")
    notes: Text(2000, multiline=True) = Field("", description="line / DT shifting: the work done (required)")
    route_length_m: Text(10) = Field("", description="line shifting: as built (blank: the inspection's)")
    structures: Text(10) = Field("", description="structures moved (blank: the inspection's)")


@router.post(
    "/changes/{number}/field-work",
    response=ChangeRequestOut,
    summary="Shifting: the field work is done (a meter shifted, a line or DT structure moved)",
)
def shifting_done(request, number: str, payload: ShiftedIn):
    require_role(request.user, *FIELD)
    change = shifting.complete(
        actor=request.user,
        channel="api",
        change=selectors.scoped_change_request(request.user, number),
        **payload.dict(),
    )
    return change_out(change)


class SupplyOrderOut(Schema):
    number: str
    kind: str
    status: str
    consumer_number: str
    reason: str
    account_status: str
    created_at: datetime
    due_at: datetime | None
    done_at: datetime | None
    remote: bool
    compensation: Decimal


def order_out(order) -> dict:
    return {
        "number": order.number,
        "kind": order.kind,
        "status": order.status,
        "consumer_number": order.account.consumer_number,
        "reason": order.reason,
        "account_status": order.account_status,
        "created_at": order.created_at,
        "due_at": order.due_at,
        "done_at": order.done_at,
        "remote": bool(order.command_id),
        "compensation": order.compensation,
    }


@router.get("/orders", response=list[SupplyOrderOut], summary="Disconnection and reconnection orders in your scope")
def list_orders(request, status: Text(10) = "", kind: Text(10) = "", limit: int = Limit(50), offset: int = Offset()):
    require_role(request.user, *FIELD, Role.CRE, Role.FIELD_AGENT)
    qs = selectors.orders_in_scope(request.user)
    if status:
        qs = qs.filter(status=status)
    if kind:
        qs = qs.filter(kind=kind)
    limit = max(1, cap_limit(limit))
    return [order_out(o) for o in qs[offset : offset + limit]]


@router.get("/orders/{number}", response=SupplyOrderOut)
def get_order(request, number: str):
    return order_out(selectors.scoped_order(request.user, number))


@router.post("/orders/{number}/complete", response=SupplyOrderOut, summary="Close an order (field: with photo proof)")
def complete(
    request,
    number: str,
    photo: UploadedFile | None = File(None),  # noqa: B008 (ninja declares parameters so)
    notes: Text(500) = Form(""),  # noqa: B008
    final_kwh: Text(20) = Form(""),  # noqa: B008
):
    require_role(request.user, *FIELD, Role.FIELD_AGENT)
    order = changes.complete_order(
        actor=request.user,
        channel="api",
        order=selectors.scoped_order(request.user, number),
        photo=photo,
        notes=notes,
        final_kwh=final_kwh or None,
    )
    return order_out(order)


@router.post(
    "/accounts/{consumer_number}/disconnection", response={201: SupplyOrderOut}, summary="Disconnect for non-payment"
)
def disconnect(request, consumer_number: str):
    from urja.customers.selectors import scoped_account

    require_role(request.user, *FIELD)
    order = changes.order_disconnection(
        actor=request.user, channel="api", account=scoped_account(request.user, consumer_number)
    )
    return Status(201, order_out(order))


@router.post(
    "/accounts/{consumer_number}/reconnection", response={201: SupplyOrderOut}, summary="Reconnect after payment"
)
def reconnect(request, consumer_number: str):
    from urja.customers.selectors import scoped_account

    require_role(request.user, *FRONT)
    order = changes.request_reconnection(
        actor=request.user, channel="api", account=scoped_account(request.user, consumer_number)
    )
    return Status(201, order_out(order))
