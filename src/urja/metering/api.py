"""Metering API (/api/v1/metering/): meters, installations, readings, VEE review, imports, commands.

Staff only; accounts are scoped to the user's office subtree. Thin: every change goes through
`services` (or `importer`).
"""

import tempfile
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

from ninja import Field, File, Form, Query, Router, Schema, Status, UploadedFile

from urja.core import boundary
from urja.core.boundary import ColumnText, Day, Limit, Offset, Quantity, Text
from urja.core.errors import NotFound
from urja.core.models import Channel, Role
from urja.core.permissions import ALL_STAFF_ROLES, office_path_of, require_role
from urja.core.scope import get_scoped, scope_accounts, scope_by_creator
from urja.customers.models import Account
from urja.customers.services import get_account

from . import importer, selectors, services
from .models import DeadLetter, ImportBatch, Installation, Meter, MeterCommand, Reading, SheetEntry, VeeStatus

router = Router(tags=["metering"])

VIEW_ROLES = tuple(ALL_STAFF_ROLES)
READ_ROLES = (Role.FIELD_AGENT, Role.ENGINEER, Role.BILLING_OFFICER, Role.MANAGER)
REVIEW_ROLES = (Role.BILLING_OFFICER, Role.MANAGER)
METER_ROLES = (Role.ENGINEER, Role.MANAGER)
COMMAND_ROLES = (Role.ENGINEER, Role.BILLING_OFFICER, Role.MANAGER, Role.CRE)
IMPORT_ROLES = (Role.BILLING_OFFICER, Role.ENGINEER, Role.MANAGER)


def scoped_account(request, consumer_number: str) -> Account:
    account = get_account(consumer_number=consumer_number)
    if not scope_accounts(request.user, Account.objects.filter(pk=account.pk)).exists():
        # word for word the answer for a number that does not exist (customers.services.get_account)
        raise NotFound(f"no account with consumer number {account.consumer_number}", code="account_not_found")
    return account


def scoped_meter(request, serial: str) -> Meter:
    meter = selectors.get_meter(serial=serial)
    inst = Installation.objects.filter(meter=meter, removed_at__isnull=True).select_related("account").first()
    if inst and not scope_accounts(request.user, Account.objects.filter(pk=inst.account_id)).exists():
        raise NotFound(f"no meter with serial {serial}", code="unknown_meter")
    return meter


def _cap(limit: int, most: int = 500) -> int:
    """A page size within 0..most (a negative limit would be a negative slice: a 500)."""
    return max(0, min(limit, most))


# --- schemas ---------------------------------------------------------------------------------


Register = Quantity(places=3)  # kWh / kVAh register values (ASCII digits, bounded, 3 decimals)
Note = Text(200)  # reasons, locations, acknowledgements: the 200-character columns they are kept in


class MeterIn(Schema):
    serial: ColumnText(Meter, "serial")
    make: ColumnText(Meter, "make")
    model: ColumnText(Meter, "model") = ""
    meter_type: Text(20) = Field(
        ..., description="electromechanical, static, amr, smart, smart_prepaid, load_limiter, ct_pt_ht"
    )
    phase: int = Field(1, ge=0, le=boundary.bounds().max_integer)
    multiplying_factor: Quantity(places=3) = Decimal(1)
    register_digits: int = Field(6, ge=0, le=boundary.bounds().max_integer)
    ownership: Text(20) = "utility"
    seals: list[Text(40)] = Field([], max_length=50)


class MeterOut(Schema):
    serial: str
    make: str
    model: str
    meter_type: str
    phase: int
    multiplying_factor: Decimal
    register_digits: int
    ownership: str
    seals: list[str]
    status: str
    relay_connected: bool
    load_limit_kw: Decimal | None
    supply_hours: list
    last_seen_at: datetime | None


class SheetOut(Schema):
    at: datetime
    kind: str
    summary: str
    details: dict
    performed_by_name: str
    channel: str
    consumer_acknowledged: bool
    acknowledged_by: str
    consumer_number: str | None = Field(None, alias="account.consumer_number")


class InstallationOut(Schema):
    id: int
    meter: str = Field(..., alias="meter.serial")
    consumer_number: str = Field(..., alias="account.consumer_number")
    installed_at: datetime
    removed_at: datetime | None
    initial_kwh: Decimal
    final_kwh: Decimal | None
    location: str
    reason: str
    removal_reason: str


class MeterDetailOut(MeterOut):
    installation: InstallationOut | None = None
    sheet: list[SheetOut] = []


class MeterStatusIn(Schema):
    status: Text(20)
    reason: Note


class SealsIn(Schema):
    seals: list[Text(40)] = Field(..., max_length=50)
    reason: Note
    acknowledged_by: Text(150) = ""


class MeterTestIn(Schema):
    notice_given_on: Day
    tested_on: Day
    error_percent: Quantity(places=2, allow_negative=True)
    result: Text(10) | None = None
    remarks: Note = ""
    acknowledged_by: Text(150) = ""


class MeterTestOut(Schema):
    id: int
    tested_on: date
    notice_given_on: date
    error_percent: Decimal
    result: str


class InstallIn(Schema):
    meter: Text(40)
    installed_at: datetime | None = None  # checked by the service (timestamp_in_future / _too_early)
    initial_kwh: Register = Decimal(0)
    initial_kvah: Register | None = None
    location: ColumnText(Installation, "location") = ""
    acknowledged_by: Text(150) = ""


class ReplaceIn(Schema):
    new_meter: Text(40)
    final_kwh: Register
    initial_kwh: Register = Decimal(0)
    reason: ColumnText(Installation, "reason")
    replaced_at: datetime | None = None  # checked by the service (timestamp_in_future / _too_early)
    old_meter_status: Text(20) = "defective"
    acknowledged_by: Text(150) = ""


class RemoveIn(Schema):
    final_kwh: Register
    reason: ColumnText(Installation, "removal_reason")
    removed_at: datetime | None = None  # checked by the service (timestamp_in_future / _too_early)
    acknowledged_by: Text(150) = ""


class ShiftIn(Schema):
    location: ColumnText(Installation, "location")
    acknowledged_by: Text(150) = ""


class ReadingOut(Schema):
    id: int
    meter: str = Field(..., alias="meter.serial")
    consumer_number: str = Field(..., alias="account.consumer_number")
    read_at: datetime
    source: str
    status: str
    kwh: Decimal | None
    kvah: Decimal | None
    md_kw: Decimal | None
    md_kva: Decimal | None
    tod: dict | None
    vee_status: str
    exceptions: list | None
    estimation_method: str
    original_kwh: Decimal | None
    review_reason: str
    photo_url: str | None = None
    latitude: Decimal | None
    longitude: Decimal | None

    @staticmethod
    def resolve_photo_url(obj):
        return obj.photo.url if obj.photo else None


class ReadingForm(Schema):
    consumer_number: Text(40) | None = None
    meter_serial: Text(40) | None = None
    read_at: datetime  # checked by the service (timestamp_in_future / timestamp_too_early)
    kwh: Text(32) | None = None  # numbers checked by the service (core.boundary's rule, its own codes)
    kvah: Text(32) | None = None
    md_kw: Text(32) | None = None
    md_kva: Text(32) | None = None
    status: Text(16) = "actual"
    source: Text(16) = "field_agent"
    latitude: Text(32) | None = None
    longitude: Text(32) | None = None


class ReviewIn(Schema):
    action: Text(20) = Field(..., description="accept, edit or estimate")
    reason: ColumnText(Reading, "review_reason") = ""
    kwh: Register | None = None


class MonthOut(Schema):
    year: int
    month: int
    kwh: Decimal | None
    status: str | None


class ReadingFileOut(Schema):
    id: int
    file_name: str
    file_format: str
    source: str
    state: str
    rows: int
    inserted: int
    duplicates: int
    rejected: int
    message: str
    seconds: float
    started_at: datetime


class RowErrorOut(Schema):
    row_number: int
    code: str
    message: str
    raw: str


class CommandIn(Schema):
    consumer_number: Text(40) | None = None
    meter_serial: Text(40) | None = None
    command: Text(20)
    params: dict = {}
    idempotency_key: ColumnText(MeterCommand, "idempotency_key") | None = None


class CommandOut(Schema):
    command_id: str
    meter: str = Field(..., alias="meter.serial")
    command: str
    params: dict
    status: str
    attempts: int
    max_attempts: int
    created_at: datetime
    sent_at: datetime | None
    deadline_at: datetime | None
    finished_at: datetime | None
    result: dict


class DeadLetterOut(Schema):
    id: int
    received_at: datetime
    topic: str
    code: str
    reason: str
    payload: str


# --- meters ------------------------------------------------------------------------------------


@router.get("/meters", response=list[MeterOut])
def list_meters(
    request, status: str | None = None, meter_type: str | None = None, q: str = "", limit: int = Limit(100)
):
    require_role(request.user, *VIEW_ROLES)
    qs = Meter.objects.order_by("serial")
    if status:
        qs = qs.filter(status=status)
    if meter_type:
        qs = qs.filter(meter_type=meter_type)
    if q:
        qs = qs.filter(serial__startswith=q.strip().upper())
    return list(qs[: _cap(limit)])


@router.post("/meters", response={201: MeterOut})
def register_meter(request, data: MeterIn):
    require_role(request.user, *METER_ROLES)
    return Status(201, services.register_meter(actor=request.user, channel=Channel.API, **data.dict()))


def _meter_detail(meter: Meter) -> dict:
    inst = Installation.objects.filter(meter=meter, removed_at__isnull=True).select_related("meter", "account").first()
    detail = {name: getattr(meter, name) for name in MeterOut.model_fields}
    detail["installation"] = inst
    detail["sheet"] = list(SheetEntry.objects.filter(meter=meter).select_related("account"))
    return detail


@router.get("/meters/{serial}", response=MeterDetailOut)
def meter_detail(request, serial: str):
    require_role(request.user, *VIEW_ROLES)
    return _meter_detail(scoped_meter(request, serial))


@router.post("/meters/{serial}/status", response=MeterOut)
def meter_status(request, serial: str, data: MeterStatusIn):
    require_role(request.user, *METER_ROLES)
    meter = scoped_meter(request, serial)
    return services.change_meter_status(
        meter=meter, status=data.status, reason=data.reason, actor=request.user, channel=Channel.API
    )


@router.post("/meters/{serial}/seals", response=MeterOut)
def meter_seals(request, serial: str, data: SealsIn):
    require_role(request.user, *METER_ROLES)
    meter = scoped_meter(request, serial)
    return services.change_seals(meter=meter, actor=request.user, channel=Channel.API, **data.dict())


@router.post("/meters/{serial}/tests", response={201: MeterTestOut})
def meter_test(request, serial: str, data: MeterTestIn):
    require_role(request.user, *METER_ROLES)
    meter = scoped_meter(request, serial)
    return Status(201, services.record_meter_test(meter=meter, actor=request.user, channel=Channel.API, **data.dict()))


# --- installations --------------------------------------------------------------------------------


@router.get("/accounts/{consumer_number}/installations", response=list[InstallationOut])
def installations(request, consumer_number: str):
    require_role(request.user, *VIEW_ROLES)
    account = scoped_account(request, consumer_number)
    return list(Installation.objects.filter(account=account).select_related("meter", "account"))


@router.post("/accounts/{consumer_number}/install", response={201: InstallationOut})
def install(request, consumer_number: str, data: InstallIn):
    require_role(request.user, *METER_ROLES)
    account = scoped_account(request, consumer_number)
    meter = selectors.get_meter(serial=data.meter)
    fields = data.dict(exclude={"meter"})
    return Status(
        201, services.install_meter(account=account, meter=meter, actor=request.user, channel=Channel.API, **fields)
    )


@router.post("/accounts/{consumer_number}/replace", response={201: InstallationOut})
def replace(request, consumer_number: str, data: ReplaceIn):
    require_role(request.user, *METER_ROLES)
    account = scoped_account(request, consumer_number)
    new_meter = selectors.get_meter(serial=data.new_meter)
    fields = data.dict(exclude={"new_meter"})
    inst = services.replace_meter(
        account=account, new_meter=new_meter, actor=request.user, channel=Channel.API, **fields
    )
    return Status(201, inst)


@router.post("/accounts/{consumer_number}/remove", response=InstallationOut)
def remove(request, consumer_number: str, data: RemoveIn):
    require_role(request.user, *METER_ROLES)
    account = scoped_account(request, consumer_number)
    return services.remove_meter(account=account, actor=request.user, channel=Channel.API, **data.dict())


@router.post("/accounts/{consumer_number}/shift", response=InstallationOut)
def shift(request, consumer_number: str, data: ShiftIn):
    require_role(request.user, *METER_ROLES)
    account = scoped_account(request, consumer_number)
    return services.shift_meter(account=account, actor=request.user, channel=Channel.API, **data.dict())


# --- readings -----------------------------------------------------------------------------------


@router.get("/accounts/{consumer_number}/readings", response=list[ReadingOut])
def account_readings(request, consumer_number: str, limit: int = Limit(50)):
    require_role(request.user, *VIEW_ROLES)
    account = scoped_account(request, consumer_number)
    qs = Reading.objects.filter(account=account).select_related("meter", "account").order_by("-read_at", "-id")
    return list(qs[: _cap(limit)])


@router.get("/accounts/{consumer_number}/consumption", response=list[MonthOut])
def account_consumption(request, consumer_number: str, months: int = 12):
    require_role(request.user, *VIEW_ROLES)
    return selectors.consumption_series(scoped_account(request, consumer_number), months=min(max(months, 1), 36))


@router.get("/accounts/{consumer_number}/billing-consumption")
def billing_consumption(request, consumer_number: str, period_start: Day, period_end: Day):
    """What billing will use for the period (estimates a missing reading, as the bill run does)."""
    require_role(request.user, *REVIEW_ROLES)
    account = scoped_account(request, consumer_number)
    return services.billing_consumption(account=account, period_start=period_start, period_end=period_end).as_dict()


@router.post("/readings", response={201: ReadingOut})
def submit_reading(request, data: Form[ReadingForm], photo: File[UploadedFile] = None):
    """Field-agent app: a reading with a photo of the meter (required for actual field readings) and GPS."""
    require_role(request.user, *READ_ROLES)
    account = scoped_account(request, data.consumer_number) if data.consumer_number else None
    meter = scoped_meter(request, data.meter_serial) if data.meter_serial else None
    reading = services.record_reading(
        actor=request.user,
        channel=Channel.FIELD_AGENT if data.source == "field_agent" else Channel.API,
        source=data.source,
        read_at=data.read_at,
        account=account,
        meter=meter,
        kwh=data.kwh,
        kvah=data.kvah,
        md_kw=data.md_kw,
        md_kva=data.md_kva,
        status=data.status,
        photo=photo,
        latitude=data.latitude,
        longitude=data.longitude,
    )
    return Status(201, reading)


@router.get("/review-queue", response=list[ReadingOut])
def review_queue(request, limit: int = Limit(100)):
    require_role(request.user, *REVIEW_ROLES)
    accounts = scope_accounts(request.user, Account.objects.all())
    qs = (
        Reading.objects.filter(vee_status=VeeStatus.REVIEW, account__in=accounts)
        .select_related("meter", "account")
        .order_by("read_at")
    )
    return list(qs[: _cap(limit)])


@router.post("/readings/{reading_id}/review", response=ReadingOut)
def review(request, reading_id: int, data: ReviewIn):
    require_role(request.user, *REVIEW_ROLES)
    accounts = scope_accounts(request.user, Account.objects.all())
    reading = Reading.objects.filter(pk=reading_id, account__in=accounts).first()
    if reading is None:
        raise NotFound("no such reading", code="reading_not_found")
    reading = services.review_reading(reading=reading, actor=request.user, channel=Channel.API, **data.dict())
    return Reading.objects.select_related("meter", "account").get(pk=reading.pk)


@router.get("/route-book")
def route_book(
    request,
    bill_cycle: str,
    year: int = Query(..., ge=-boundary.bounds().max_integer, le=boundary.bounds().max_integer),
    month: int = Query(..., ge=-boundary.bounds().max_integer, le=boundary.bounds().max_integer),
    route: str | None = None,
):
    require_role(request.user, *VIEW_ROLES)
    return selectors.route_book(
        office_path=office_path_of(request.user) or "", bill_cycle=bill_cycle, year=year, month=month, route=route
    )


# --- imports ---------------------------------------------------------------------------------------


@router.post("/imports", response={201: ReadingFileOut})
def upload_import(
    request,
    file: File[UploadedFile],
    source: Form[str] = "amr",
    file_format: Form[str] = "",
    bill_cycle: Form[str] = "",
):
    """Upload an AMR / mobile-app reading file (CSV, JSON or JSON Lines). Idempotent. With `bill_cycle`
    (the cycle the file was read for), rows of accounts in another cycle are reported as `wrong_bill_cycle`."""
    require_role(request.user, *IMPORT_ROLES)
    suffix = Path(file.name or "upload.csv").suffix or ".csv"
    with tempfile.NamedTemporaryFile(suffix=suffix) as tmp:
        for chunk in file.chunks():
            tmp.write(chunk)
        tmp.flush()
        batch = importer.import_file(
            path=tmp.name,
            actor=request.user,
            channel=Channel.IMPORT,
            source=source,
            file_format=file_format or None,
            name=file.name,
            bill_cycle=bill_cycle or None,
        )
    return Status(201, batch)


def _batch(request, batch_id: int) -> ImportBatch:
    """An import (and its error report) for staff whose office covers the importer's, or admin."""
    batches = scope_by_creator(request.user, ImportBatch.objects.all(), "imported_by")
    return get_scoped(batches, NotFound("no such import", code="import_not_found"), pk=batch_id)


@router.get("/imports/{batch_id}", response=ReadingFileOut)
def import_batch(request, batch_id: int):
    require_role(request.user, *IMPORT_ROLES)
    return _batch(request, batch_id)


@router.get("/imports/{batch_id}/errors", response=list[RowErrorOut])
def import_errors(request, batch_id: int, offset: int = Offset(), limit: int = Limit(500)):
    require_role(request.user, *IMPORT_ROLES)
    return list(_batch(request, batch_id).errors.all()[max(offset, 0) :][: _cap(limit, 5000)])


# --- smart-meter commands and dead letters --------------------------------------------------------


@router.post("/commands", response={201: CommandOut})
def send_command(request, data: CommandIn):
    require_role(request.user, *COMMAND_ROLES)
    account = scoped_account(request, data.consumer_number) if data.consumer_number else None
    meter = scoped_meter(request, data.meter_serial) if data.meter_serial else None
    cmd = services.send_command(
        account=account,
        meter=meter,
        command=data.command,
        params=data.params,
        actor=request.user,
        channel=Channel.API,
        idempotency_key=data.idempotency_key,
    )
    return Status(201, MeterCommand.objects.select_related("meter").get(pk=cmd.pk))


@router.get("/commands", response=list[CommandOut])
def list_commands(request, status: str | None = None, meter_serial: str | None = None, limit: int = Limit(100)):
    require_role(request.user, *VIEW_ROLES)
    qs = scope_accounts(request.user, MeterCommand.objects.select_related("meter"), "account__")
    if status:
        qs = qs.filter(status=status)
    if meter_serial:
        qs = qs.filter(meter__serial=meter_serial.upper())
    return list(qs[: _cap(limit)])


def _command(request, command_id: str) -> MeterCommand:
    commands = scope_accounts(request.user, MeterCommand.objects.select_related("meter"), "account__")
    return get_scoped(commands, NotFound("no such command", code="unknown_command"), command_id=command_id)


@router.get("/commands/{command_id}", response=CommandOut)
def command_detail(request, command_id: str):
    require_role(request.user, *VIEW_ROLES)
    return _command(request, command_id)


@router.post("/commands/{command_id}/retry", response=CommandOut)
def command_retry(request, command_id: str):
    require_role(request.user, *COMMAND_ROLES)
    services.retry_command(command=_command(request, command_id), actor=request.user, channel=Channel.API)
    return _command(request, command_id)


@router.get("/dead-letters", response=list[DeadLetterOut])
def dead_letters(request, code: str | None = None, limit: int = Limit(100)):
    require_role(request.user, Role.ENGINEER, Role.MANAGER)
    qs = DeadLetter.objects.all()
    if code:
        qs = qs.filter(code=code)
    return list(qs[: _cap(limit)])
