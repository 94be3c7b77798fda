"""Connection services: the only code that changes applications, demand notes, change requests and
disconnection / reconnection orders. Typed, keyword-only; called by the API, the pages, the tasks and
the demo alike. Everything is checked before anything is written (a refused request changes nothing).

The other apps do their own part: customers registers the applicant and opens the account (pending
until energized), billing posts the demand note's lines and the security deposit to the ledger,
payments takes the money on any channel, metering installs the meter, notifications sends the
messages, and the service desk's SLA clock, escalation tiers and compensation rule judge lateness.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from django.db import transaction
from django.db.models import Q, Sum
from django.utils import timezone

from urja.billing import deposits
from urja.billing import ledger as billing_ledger
from urja.billing.models import EntryType, LedgerEntry
from urja.core import boundary, regdata
from urja.core.errors import Conflict, NotFound
from urja.core.labels import label
from urja.core.models import Channel
from urja.core.money import paise
from urja.core.services import allocate_numbers, record_audit
from urja.core.states import transition
from urja.customers import rules as customer_rules
from urja.customers import services as customers
from urja.customers.models import Account, AccountStatus, Consumer, Contact
from urja.network.models import Office
from urja.servicedesk import catalogue as sop
from urja.servicedesk import clock, sla
from urja.servicedesk import compensation as comp
from urja.servicedesk import selectors as servicedesk_selectors
from urja.servicedesk import services as servicedesk
from urja.tariffs.models import TariffOrder

from . import rules, selectors
from .models import (
    APPLICATION_STATUS,
    DEMAND_NOTE_STATUS,
    OPEN_APPLICATION,
    Application,
    ApplicationDocument,
    ApplicationStatus,
    AreaClass,
    Compensation,
    DemandNote,
    DemandNoteStatus,
    Escalation,
    Inspection,
    MeterOption,
    Pause,
)
from .refusals import refuse, words
from .selectors import outstanding

log = logging.getLogger(__name__)


def data() -> dict:
    return regdata.load("connections/connections.toml")


def matrix() -> dict:
    return regdata.load("customers/document_matrix.toml")


def _channel(channel: str) -> str:
    if channel not in Channel.values:
        raise refuse("unknown_channel", channel=channel, details={"allowed": Channel.values})
    return channel


def check_channel(channel: str, *, row: str) -> str:
    """The SoP schedule's channel matrix (seed 003 §2): may this request be lodged on `channel`?"""
    channel = _channel(channel)
    try:
        schedule = sop.active_schedule()
    except NotFound:
        return channel  # no schedule loaded: the matrix cannot be read, nothing to refuse on
    allowed = schedule.document.get("channel_matrix", {}).get(row)
    column = sop.channel_column(schedule, channel)
    if allowed is not None and column not in allowed:
        raise refuse(
            "channel_not_allowed",
            channel=label(channel),
            details={"allowed": [sop.channel_label(schedule, c) for c in allowed]},
        )
    return channel


def _power_factor() -> Decimal:
    return Decimal(str(regdata.load("customers/supply_types.toml")["power_factor"]))


# --- fees from the tariff order ---------------------------------------------------------------------


def fee_in_force(*, key: str, on: date) -> tuple[str, Decimal]:
    """(order code, amount) of `key` in the [fees] of the tariff order in force on `on` (the latest
    effective one that names the fee). A fee no order names is refused, never invented."""
    orders = (
        TariffOrder.objects.filter(kind="order", effective_from__lte=on)
        .filter(Q(effective_to__isnull=True) | Q(effective_to__gte=on))
        .order_by("-effective_from")
    )
    for order in orders:
        if key in (order.fees or {}):
            return order.code, paise(order.fees[key])
    raise refuse("fee_not_in_tariff", date=on.strftime("%d-%m-%Y"), fee=key, details={"fee": key})


# --- arrears on other or earlier accounts -------------------------------------------------------------


def arrears_of(*, consumer: Consumer | None, mobile: str) -> list[dict]:
    """Accounts with dues belonging to the applicant: the same consumer, or a consumer with the same
    mobile number (an earlier connection under the same person). Pending accounts are not arrears."""
    who = Q(consumer__contacts__kind=Contact.Kind.MOBILE, consumer__contacts__value=mobile)
    if consumer is not None:
        who |= Q(consumer=consumer)
    accounts = Account.objects.filter(who).exclude(status=AccountStatus.PENDING).distinct()
    dues = (
        LedgerEntry.objects.filter(account__in=accounts)
        .values("account__consumer_number")
        .annotate(total=Sum("amount"))
        .filter(total__gt=0)
    )
    return [{"consumer_number": d["account__consumer_number"], "dues": str(paise(d["total"]))} for d in dues]


# --- registration -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DocumentIn:
    """One line of the checklist given: its code, which proof of an 'any of' group, the number."""

    code: str
    proof_type: str = ""
    number: str = ""
    file: object = None


def _office(value) -> Office:
    if isinstance(value, Office):
        return value
    office = Office.objects.filter(code=str(value)).first()
    if office is None:
        raise refuse("unknown_office", office=value)
    return office


def _check_documents(applicant_type: str, documents: list[DocumentIn]) -> None:
    seen = set()
    for doc in documents:
        _check_line(applicant_type, doc)
        if doc.code in seen:
            raise refuse("duplicate_document", document=label(doc.code), details={"document": doc.code})
        seen.add(doc.code)
    missing = rules.missing_documents(matrix(), applicant_type, seen)
    if missing:
        raise refuse(
            "documents_missing",
            applicant_type=label(applicant_type),
            missing=words(missing),
            details={"missing": missing, "applicant_type": applicant_type},
        )


def check_file(document_code: str, file) -> str:
    """A document's file within the limits of the document matrix's [upload] (customers owns them):
    not empty, not larger than max_bytes (413), a kind it accepts by its first bytes — its name and
    declared type are not trusted (415). Returns the kind ('pdf', 'jpeg', 'png')."""
    kinds, max_bytes = customers.upload_limits()
    size = int(getattr(file, "size", 0) or 0)
    name = label(document_code)
    if size <= 0:
        raise refuse("file_empty", document=name, details={"document": document_code})
    if size > max_bytes:
        raise refuse(
            "file_too_large",
            status=413,
            document=name,
            size=f"{size / 1048576:.1f}",
            limit=f"{max_bytes / 1048576:.0f}",
            details={"document": document_code, "size": size, "max_bytes": max_bytes},
        )
    file.seek(0)
    head = file.read(16)
    file.seek(0)
    kind = customer_rules.file_kind(head)
    if kind not in kinds:
        raise refuse(
            "unsupported_file_type",
            status=415,
            document=name,
            kinds=", ".join(k.upper() for k in kinds),
            details={"document": document_code, "allowed": kinds},
        )
    return kind


def _check_line(applicant_type: str, doc: DocumentIn) -> dict:
    """One typed document against the applicant type's checklist; returns its matrix row."""
    lines = {d["code"]: d for d in rules.checklist(matrix(), applicant_type)}
    known = {d["code"]: d for d in matrix()["document"]}
    if doc.code not in known:
        raise refuse("unknown_document_type", document=doc.code, details={"allowed": sorted(known)})
    if doc.code not in lines and not known[doc.code].get("conditional"):
        raise refuse(
            "document_not_on_checklist",
            document=label(doc.code),
            applicant_type=label(applicant_type),
            details={"document": doc.code, "checklist": sorted(lines)},
        )
    proofs = known[doc.code].get("any_of", [])
    if proofs and doc.proof_type not in proofs:
        raise refuse(
            "proof_type_not_accepted",
            document=label(doc.code),
            allowed=words(proofs),
            details={"document": doc.code, "allowed": proofs},
        )
    if doc.proof_type == "aadhaar" and not customer_rules.aadhaar_valid(doc.number):
        raise refuse("invalid_aadhaar", details={"document": doc.code})
    if doc.file:
        check_file(doc.code, doc.file)
    return known[doc.code]


def attach_document(
    *, actor, channel: str, application: Application, document_code: str, file, proof_type: str = "", number: str = ""
) -> ApplicationDocument:
    """A typed upload for one line of the application's checklist (the document matrix for the
    applicant's type): the file checked (`check_file`), kept as the consumer's KYC document
    (customers), and the application's line for that document pointed at it — a new line for a
    document not given yet, the newer file for one given before. Only while the application is open."""
    channel = _channel(channel)
    code = (document_code or "").strip()
    if not file:
        raise refuse("file_required", details={"document": code})
    with transaction.atomic():
        application = _lock(application)
        if application.status not in OPEN_APPLICATION:
            raise refuse("application_closed", error=Conflict, details={"status": application.status})
        given = DocumentIn(code, (proof_type or "").strip(), (number or "").strip(), file)
        _check_line(application.consumer.applicant_type, given)
        kind = check_file(code, file)
        kyc = customers.add_kyc_document(
            actor=actor,
            channel=channel,
            consumer=application.consumer,
            document_code=code,
            proof_type=given.proof_type,
            number=given.number,
            file=file,
        )
        line, created = ApplicationDocument.objects.update_or_create(
            application=application, document_code=code, defaults={"document": kyc}
        )
        record_audit(
            actor=actor,
            channel=channel,
            action="connection.document_added",
            obj=application,
            changes={
                "document": code,
                "proof": given.proof_type,
                "kind": kind,
                "bytes": file.size,
                "replaced": not created,
            },
        )
    return line


def _coordinate(value: object, *, name: str, bound: int) -> Decimal:
    try:
        number = boundary.parse_decimal(value, name=name, code="invalid_location", minimum=-bound, maximum=bound)
    except boundary.InvalidInput as exc:
        raise refuse("invalid_location", details=exc.details) from exc
    return number.quantize(Decimal("0.000001"))


def application_number() -> str:
    return allocate_numbers(key="connections:application", template=data()["numbers"]["application_template"])[0]


def _load_kw(load: Decimal, unit: str) -> Decimal:
    return customer_rules.load_in_kw(load, unit, _power_factor())


def register_application(
    *,
    actor,
    channel: str,
    name: str,
    mobile: str,
    applicant_type: str,
    premises_address: str,
    latitude: object,
    longitude: object,
    area_class: str,
    section,
    supply_type: str,
    load: object,
    category: str,
    documents: list[DocumentIn],
    load_unit: str = "kW",
    sub_category: str = "general",
    applicant_kind: str = Consumer.Kind.PERSON,
    preferred_language: str = "en",
    pincode: str = "",
    meter_option: str = MeterOption.UTILITY,
    temporary_until: date | None = None,
    consumer: Consumer | None = None,
    received_at: datetime | None = None,
) -> Application:
    """A new-connection (or temporary-connection) application, complete or refused: the checklist
    for the applicant type, the load within its supply type's range, the premises inside the
    utility's area, no arrears, the application fee from the tariff order in force.
    `received_at`: when a paper application (a camp, a section office) was received, if keyed in
    later — the clock starts then (not in the future, at most 30 days back)."""
    channel = check_channel(channel, row="new_connection")
    doc = data()
    now = received_moment(received_at)
    today = timezone.localdate(now)
    name = " ".join((name or "").split())
    if not name:
        raise refuse("name_required")
    if applicant_type not in matrix()["applicant_types"]:
        raise refuse(
            "unknown_applicant_type", applicant_type=applicant_type, details={"allowed": matrix()["applicant_types"]}
        )
    mobile = customers.normalise_contact(Contact.Kind.MOBILE, mobile)
    if area_class not in AreaClass.values:
        raise refuse("invalid_area_class", details={"allowed": AreaClass.values})
    if meter_option not in MeterOption.values:
        raise refuse("invalid_meter_option", option=meter_option, details={"allowed": MeterOption.values})
    kind = Application.Kind.TEMPORARY if supply_type == "temporary" else Application.Kind.NEW
    if kind == Application.Kind.TEMPORARY:
        if temporary_until is None or temporary_until <= today:
            raise refuse("temporary_end_required")
    elif temporary_until is not None:
        raise refuse("not_temporary")
    value = customers.validate_load(supply_type=supply_type, load=load, unit=load_unit)
    categories = {c["code"]: c for c in regdata.load("customers/categories.toml")["category"]}
    if category not in categories or sub_category not in categories[category]["sub_categories"]:
        raise refuse("unknown_category", category=f"{category}/{sub_category}", details={"allowed": sorted(categories)})
    address = boundary.clean_text(premises_address, name="premises address", multiline=True, max_length=500).strip()
    if not address:
        raise refuse("address_required")
    lat = _coordinate(latitude, name="latitude", bound=90)
    lon = _coordinate(longitude, name="longitude", bound=180)
    if not rules.inside(doc["area"]["polygon"], float(lat), float(lon)):
        raise refuse(
            "outside_service_area",
            latitude=lat,
            longitude=lon,
            area=doc["area"]["name"],
            details={"latitude": str(lat), "longitude": str(lon)},
        )
    section = _office(section)
    if section.level != "section":
        raise refuse("not_a_section")
    _check_documents(applicant_type, documents)
    arrears = arrears_of(consumer=consumer, mobile=mobile)
    if arrears:
        raise refuse("arrears", details={"accounts": arrears})
    fee_order, fee = fee_in_force(key=rules.fee_key(doc, supply_type=supply_type), on=today)
    problems = rules.fast_track_problems(doc, supply_type=supply_type, load_kw=_load_kw(value, load_unit))
    plan = rules.plan(doc, area_class=area_class, supply_type=supply_type, fast_track=not problems)

    with transaction.atomic():
        if consumer is None:
            consumer = customers.register_consumer(
                actor=actor,
                channel=channel,
                name=name,
                kind=applicant_kind,
                applicant_type=applicant_type,
                preferred_language=preferred_language,
                contacts=[customers.ContactInput(Contact.Kind.MOBILE, mobile, False)],
            )
        application = Application.objects.create(
            number=application_number(),
            kind=kind,
            channel=channel,
            consumer=consumer,
            mobile=mobile,
            premises_address=address,
            pincode=pincode[:6],
            latitude=lat,
            longitude=lon,
            area_class=area_class,
            area=rules.area_of(doc, area_class),
            section=section,
            office_path=section.path,
            supply_type=supply_type,
            load=value,
            load_unit=load_unit,
            category=category,
            sub_category=sub_category,
            meter_option=meter_option,
            temporary_until=temporary_until,
            application_fee=fee,
            fee_order=fee_order,
            fast_track=not problems,
            fast_track_note="; ".join(problems)[:200],
            registered_at=now,
            dn_due_at=rules.dn_due(plan, registered_at=now, calendar=section.calendar()),
            cap_due_at=sla.due_at(now, plan.cap, section.calendar()) if plan.cap else None,
            created_by=actor if getattr(actor, "pk", None) else None,
        )
        for given in documents:
            kyc = customers.add_kyc_document(
                actor=actor,
                channel=channel,
                consumer=consumer,
                document_code=given.code,
                proof_type=given.proof_type,
                number=given.number,
                file=given.file,
            )
            ApplicationDocument.objects.create(application=application, document=kyc, document_code=given.code)
        application.next_escalation_at = next_escalation(application)
        application.save(update_fields=["next_escalation_at"])
        record_audit(
            actor=actor,
            channel=channel,
            action="connection.registered",
            obj=application,
            changes={"number": application.number, "fee": fee, "fast_track": application.fast_track},
        )
        _tell(
            application,
            event="connection.registered",
            context={"due_at": application.dn_due_at},
            key=f"connection.registered:{application.number}",
        )
    return application


def _tell(application: Application, *, event: str, context: dict, key: str, account=None) -> None:
    """Queue a message to the applicant's mobile after commit (a failed message never undoes the step)."""
    from urja.notifications import services as notifications

    def send():
        try:
            notifications.notify_address(
                event=event,
                channel="sms",
                to=application.mobile,
                language=application.consumer.preferred_language,
                context={"application_number": application.number, **context},
                idempotency_key=key,
                consumer=application.consumer,
                account=account,
            )
        except Exception:  # after commit: logged with its trace, the step stands
            log.exception("message %s for application %s failed", event, application.number)

    transaction.on_commit(send)


def _lock(application: Application) -> Application:
    return Application.objects.select_for_update().select_related("section", "consumer").get(pk=application.pk)


def _move(application: Application, to: str, *, actor, channel: str, reason: str = "", extra=(), changes=None) -> None:
    transition(
        application,
        APPLICATION_STATUS,
        to,
        actor=actor,
        channel=channel,
        reason=reason,
        extra_fields=extra,
        action="connection.status",
        changes=changes,
    )


# --- pauses (reasons attributable to the applicant) ------------------------------------------------


def _pauses(application: Application) -> list[tuple[datetime, datetime | None]]:
    return [(p.started_at, p.ended_at) for p in application.pauses.all()]


def _plan(application: Application, *, extension: bool | None = None) -> rules.Plan:
    if extension is None:
        inspection = Inspection.objects.filter(application=application).first()
        extension = bool(inspection and inspection.extension_needed)
    return rules.plan(
        data(),
        area_class=application.area_class,
        supply_type=application.supply_type,
        extension=extension,
        fast_track=application.fast_track,
    )


def _reschedule(application: Application, *, status: str | None = None) -> list[str]:
    """Recompute the due moments (and the escalation pointer, for the application in `status`) from
    the registration, the payment and the pauses."""
    cal = application.section.calendar()
    plan = _plan(application)
    pauses = _pauses(application)
    application.dn_due_at = rules.dn_due(plan, registered_at=application.registered_at, calendar=cal, pauses=pauses)
    application.cap_due_at = sla.due_at(application.registered_at, plan.cap, cal, pauses) if plan.cap else None
    if application.dn_paid_at:
        application.connection_due_at = rules.connection_due(
            plan,
            registered_at=application.registered_at,
            dn_paid_at=application.dn_paid_at,
            calendar=cal,
            pauses=pauses,
        )
    application.next_escalation_at = next_escalation(application, status=status)
    return ["dn_due_at", "cap_due_at", "connection_due_at", "next_escalation_at"]


def pause_clock(*, actor, channel: str, application: Application, reason: str) -> Application:
    reason = boundary.clean_text(reason, name="reason", max_length=300).strip()
    if not reason:
        raise refuse("pause_reason_required", code="reason_required")
    with transaction.atomic():
        application = _lock(application)
        if application.status not in OPEN_APPLICATION:
            raise refuse("not_open", error=Conflict)
        if application.pauses.filter(ended_at__isnull=True).exists():
            raise refuse("already_paused", error=Conflict)
        Pause.objects.create(
            application=application,
            started_at=clock.now(),
            reason=reason,
            started_by=actor if getattr(actor, "pk", None) else None,
        )
        application.save(update_fields=_reschedule(application))
        record_audit(
            actor=actor,
            channel=_channel(channel),
            action="connection.paused",
            obj=application,
            changes={"reason": reason},
        )
    return application


def resume_clock(*, actor, channel: str, application: Application) -> Application:
    with transaction.atomic():
        application = _lock(application)
        pause = application.pauses.filter(ended_at__isnull=True).first()
        if pause is None:
            raise refuse("not_paused", error=Conflict)
        pause.ended_at = max(clock.now(), pause.started_at)
        pause.save(update_fields=["ended_at"])
        application.save(update_fields=_reschedule(application))
        record_audit(
            actor=actor,
            channel=_channel(channel),
            action="connection.resumed",
            obj=application,
            changes={"paused_for": str(pause.ended_at - pause.started_at)},
        )
    return application


# --- site inspection ------------------------------------------------------------------------------


def record_inspection(
    *,
    actor,
    channel: str,
    application: Application,
    feasible: bool,
    distance_m: object,
    right_of_way_issue: bool = False,
    extension_needed: bool = False,
    extension_estimate: object = None,
    notes: str = "",
    transformer: object = None,
) -> Application:
    """The section engineer's report. Not feasible: the application is rejected with the notes as the
    reason. The fast track holds only within 30 m and with no right-of-way issue or extension.
    `transformer` (the connecting point) must be one of the section's DTs; none given: the section's DT
    nearest to the premises, if any is mapped."""
    channel = _channel(channel)
    if transformer in (None, ""):
        transformer = selectors.nearest_transformer(application)
    else:
        transformer = customers.check_placement(section=application.section, transformer=transformer).transformer
    distance = boundary.parse_int(distance_m, name="distance_m", minimum=0, maximum=1_000_000)
    estimate = None
    if extension_estimate not in (None, ""):
        estimate = boundary.parse_amount(extension_estimate, name="extension_estimate", allow_zero=True)
    notes = boundary.clean_text(notes, name="notes", multiline=True, max_length=2000)
    if not feasible and not notes.strip():
        raise refuse("not_feasible_reason", code="reason_required")
    with transaction.atomic():
        application = _lock(application)
        APPLICATION_STATUS.check(application.status, ApplicationStatus.INSPECTED)
        Inspection.objects.create(
            application=application,
            engineer=actor if getattr(actor, "pk", None) else None,
            inspected_at=clock.now(),
            feasible=feasible,
            distance_m=distance,
            right_of_way_issue=right_of_way_issue,
            extension_needed=extension_needed,
            extension_estimate=rules.extension_estimate(data(), distance_m=distance, given=estimate)
            if extension_needed
            else Decimal("0.00"),
            transformer=transformer,
            notes=notes,
        )
        fields = []
        if application.fast_track:
            problems = rules.fast_track_problems(
                data(),
                supply_type=application.supply_type,
                load_kw=_load_kw(application.load, application.load_unit),
                distance_m=distance,
                right_of_way_issue=right_of_way_issue or extension_needed,
            )
            if problems:
                application.fast_track = False
                application.fast_track_note = ("inspection: " + "; ".join(problems))[:200]
                fields += ["fast_track", "fast_track_note"]
        fields += _reschedule(application, status=ApplicationStatus.INSPECTED)
        _move(
            application,
            ApplicationStatus.INSPECTED,
            actor=actor,
            channel=channel,
            extra=fields,
            changes={"feasible": feasible, "distance_m": distance, "extension": extension_needed},
        )
    if not feasible:
        return reject(actor=actor, channel=channel, application=application, code="not_feasible", reason=notes)
    return application


# --- demand note ---------------------------------------------------------------------------------


def estimated_monthly_bill(application: Application, *, on: date) -> Decimal:
    """A month's bill at the tariff in force for the L x D x H x F units of the applied load."""
    from urja.tariffs import services as tariffs

    load_kw = _load_kw(application.load, application.load_unit)
    units = rules.estimated_units(data(), category=application.category, load_kw=load_kw)
    # a temporary connection is priced on the schedule of its category (no 'temporary' schedule)
    supply = "lt_1ph" if application.supply_type == "temporary" else application.supply_type
    bill = tariffs.calculate(
        period_start=on,
        period_end=on + timedelta(days=int(data()["estimate"]["days"]) - 1),
        units=units,
        category=application.category,
        sub_category=application.sub_category,
        area=application.area,
        supply_type=supply,
        sanctioned_load=application.load,
        load_unit=application.load_unit,
    )
    return paise(bill.total)


def issue_demand_note(*, actor, channel: str, application: Application) -> DemandNote:
    """The demand note: application fee, meter cost (when bought from the utility), extension
    estimate, temporary advance and the security deposit (billing.deposits: N months' estimated
    bill). The account is opened now, pending, so the note can be paid on any channel against its
    consumer number; each line is a ledger entry of that account."""
    channel = _channel(channel)
    doc = data()
    with transaction.atomic():
        application = _lock(application)
        APPLICATION_STATUS.check(application.status, ApplicationStatus.DN_ISSUED)
        today = timezone.localdate(clock.now())
        monthly = estimated_monthly_bill(application, on=today)
        if monthly <= 0:
            raise refuse("estimate_failed")
        inspection = application.inspection
        advance = Decimal("0.00")
        if application.kind == Application.Kind.TEMPORARY and doc["charges"].get("temporary_advance"):
            advance = paise(monthly * rules.temporary_months(today, application.temporary_until))
        account = customers.open_account(
            actor=actor,
            channel=channel,
            consumer=application.consumer,
            section=application.section,
            premises_address=application.premises_address,
            category=application.category,
            sub_category=application.sub_category,
            supply_type=application.supply_type,
            sanctioned_load=application.load,
            load_unit=application.load_unit,
            area=application.area,
            pincode=application.pincode,
            latitude=application.latitude,
            longitude=application.longitude,
            pending=True,
        )
        deposit_entry = deposits.demand_initial(
            account=account, estimated_monthly_bill=monthly, on=today, actor=actor, channel=channel
        )
        lines = rules.demand_note_lines(
            doc,
            application_fee=application.application_fee,
            supply_type=application.supply_type,
            meter_option=application.meter_option,
            deposit=deposit_entry.amount,
            extension=inspection.extension_estimate,
            advance=advance,
        )
        number = allocate_numbers(key="connections:dn", template=doc["numbers"]["demand_note_template"])[0]
        for line in lines:
            if line.code == "security_deposit":
                continue  # posted by billing.deposits above
            billing_ledger.post_entry(
                account=account,
                entry_type=EntryType.CHARGE,
                amount=line.amount,
                description=f"{line.label} (demand note {number})"[:200],
                actor=actor,
                channel=channel,
                reference_type="demand_note",
                reference_id=number,
                idempotency_key=f"dn:{number}:{line.code}",
                due_date=today,
            )
        total = paise(sum((line.amount for line in lines), Decimal(0)))
        note = DemandNote.objects.create(
            application=application,
            number=number,
            issued_at=clock.now(),
            lines=[line.as_json() for line in lines],
            total=total,
            deposit=deposit_entry.amount,
            estimated_monthly_bill=monthly,
        )
        application.account = account
        application.next_escalation_at = None  # the applicant's turn: no clock runs until the payment
        _move(
            application,
            ApplicationStatus.DN_ISSUED,
            actor=actor,
            channel=channel,
            extra=["account", "next_escalation_at"],
            changes={"demand_note": number, "total": total, "consumer_number": account.consumer_number},
        )
        _tell(
            application,
            event="connection.demand_note",
            context={"demand_note": number, "amount": total, "consumer_number": account.consumer_number},
            key=f"connection.dn:{number}",
            account=account,
        )
    return note


def settle_demand_note(*, application: Application, actor=None, channel: str = "system") -> bool:
    """Mark the demand note paid when the pending account's balance is cleared (by a payment on any
    channel: counter, agent, online, UPI, bank file). Returns whether it moved."""
    with transaction.atomic():
        application = _lock(application)
        if application.status != ApplicationStatus.DN_ISSUED or outstanding(application) > 0:
            return False
        note = DemandNote.objects.select_for_update().get(application=application)
        now = clock.now()
        note.paid_at = now
        transition(
            note, DEMAND_NOTE_STATUS, DemandNoteStatus.PAID, actor=actor, channel=channel, extra_fields=["paid_at"]
        )
        application.dn_paid_at = now
        application.connection_due_at = rules.connection_due(
            _plan(application),
            registered_at=application.registered_at,
            dn_paid_at=now,
            calendar=application.section.calendar(),
            pauses=_pauses(application),
        )
        application.next_escalation_at = next_escalation(application, status=ApplicationStatus.DN_PAID)
        _move(
            application,
            ApplicationStatus.DN_PAID,
            actor=actor,
            channel=channel,
            extra=["dn_paid_at", "connection_due_at", "next_escalation_at"],
            changes={"connection_due_at": application.connection_due_at},
        )
    return True


def pay_demand_note(
    *, actor, channel: str, application: Application, idempotency_key: str, method: str = "cash", reference: str = ""
) -> Application:
    """Take the demand note's outstanding amount through payments (its counter, field-agent, kiosk
    rules apply) and mark the note paid."""
    from urja.payments import services as payments

    if application.status != ApplicationStatus.DN_ISSUED:
        APPLICATION_STATUS.check(application.status, ApplicationStatus.DN_PAID)
    amount = outstanding(application)
    if amount > 0:
        payments.take_payment(
            actor=actor,
            channel=channel,
            consumer_number=application.account.consumer_number,
            amount=amount,
            idempotency_key=idempotency_key,
            method=method,
            reference=reference or application.demand_note.number,
        )
    settle_demand_note(application=application, actor=actor, channel=_audit_channel(channel))
    application.refresh_from_db()
    return application


def _audit_channel(channel: str) -> str:
    """The audit channel of a payment channel (payments' own table)."""
    from urja.payments.selectors import AUDIT_CHANNEL

    found = AUDIT_CHANNEL.get(channel, channel)
    return found if found in Channel.values else "system"


def sweep_paid_demand_notes() -> int:
    """The periodic job: demand notes paid on a channel that does not call us (gateway, UPI, bank file)."""
    moved = 0
    for application in Application.objects.filter(status=ApplicationStatus.DN_ISSUED).select_related("account"):
        if outstanding(application) <= 0 and settle_demand_note(application=application):
            moved += 1
    return moved


# --- energization -------------------------------------------------------------------------------


def energize(
    *,
    actor,
    channel: str,
    application: Application,
    meter_serial: str,
    initial_kwh: object = 0,
    transformer: object = None,
    bill_cycle: str = "",
    route: str = "",
) -> Application:
    """The supply is on: the meter installed (metering), the account placed on the network and in a
    bill cycle and route of its section (customers.place_account: the DT chosen, else the inspection's
    connecting point; the cycle and route given, else the section's usual ones), the account active with
    its consumer number, the deposit held (billing's ledger), the welcome message sent; compensation
    when late."""
    from urja.metering import services as metering
    from urja.metering.selectors import get_meter

    channel = _channel(channel)
    serial = (meter_serial or "").strip()
    if not serial:
        raise refuse("meter_required")
    with transaction.atomic():
        application = _lock(application)
        APPLICATION_STATUS.check(application.status, ApplicationStatus.ENERGIZED)
        if outstanding(application) > 0:
            raise refuse("dn_unpaid")
        where = selectors.default_placement(application)
        customers.place_account(
            actor=actor,
            channel=channel,
            account=application.account,
            transformer=transformer or where["transformer"],
            bill_cycle=bill_cycle or where["bill_cycle"],
            route=route or where["route"],
        )
        meter = get_meter(serial=serial)
        now = clock.now()
        metering.install_meter(
            account=application.account,
            meter=meter,
            actor=actor,
            channel=channel,
            installed_at=None,  # metering's own now (the SLA reads the service desk's clock)
            initial_kwh=initial_kwh,
        )
        account = customers.activate_account(
            actor=actor,
            channel=channel,
            account=application.account,
            connected_on=timezone.localdate(now),
            reason=f"energized (application {application.number})",
        )
        application.energized_at = application.closed_at = now
        application.next_escalation_at = None
        _move(
            application,
            ApplicationStatus.ENERGIZED,
            actor=actor,
            channel=channel,
            extra=["energized_at", "closed_at", "next_escalation_at"],
            changes={"consumer_number": account.consumer_number, "meter": serial},
        )
        award = _compensate(application)
        _tell(
            application,
            event="account.opened",
            context={"consumer_number": account.consumer_number},
            key=f"connection.welcome:{application.number}",
            account=account,
        )
    application.compensation_award = award
    return application


def _sop_document() -> dict:
    return sop.active_schedule().document


@dataclass(frozen=True)
class LateCredit:
    amount: Decimal
    units_late: int
    per: str
    basis: str
    rule: dict
    entry: LedgerEntry


def credit_late(
    *,
    rule_key: str,
    account: Account,
    supply_type: str,
    due: datetime | None,
    done: datetime | None,
    what: str,
    reference_type: str,
    reference_id: str,
    idempotency_key: str,
) -> LateCredit | None:
    """Work done after its due moment earns the SoP schedule's compensation rule `rule_key`
    (servicedesk.compensation), credited to the account's ledger once (the idempotency key); None when
    on time, with no such rule (or no schedule), or nothing earned. New connections, reconnections and
    meter shifting share it."""
    if due is None or done is None or done <= due:
        return None
    try:
        rule = _sop_document().get("compensation", {}).get(rule_key) if rule_key else None
    except NotFound:
        rule = None
    if not rule:
        return None
    per = "hour" if rule["basis"] == "per_hour" else "day"
    late = sla.units_late(due=due, closed_at=done, per=per)
    award = comp.compute(rule, units_late=late, supply_class=comp.supply_class_of(supply_type))
    if award.amount <= 0:
        return None
    entry = billing_ledger.post_entry(
        account=account,
        entry_type=EntryType.COMPENSATION,
        amount=-award.amount,
        description=f"Compensation: {what} late by {late} {per}(s)",
        channel="system",
        reference_type=reference_type,
        reference_id=reference_id,
        idempotency_key=idempotency_key,
    )
    return LateCredit(amount=award.amount, units_late=late, per=per, basis=award.basis, rule=rule, entry=entry)


def _compensate(application: Application) -> Compensation | None:
    """Late energization earns the SoP schedule's compensation, credited to the new account once."""
    key = data()["lateness"]["compensation"]
    credit = credit_late(
        rule_key=key,
        account=application.account,
        supply_type=application.supply_type,
        due=application.connection_due_at,
        done=application.energized_at,
        what=f"new connection {application.number}",
        reference_type="connection_application",
        reference_id=application.number,
        idempotency_key=f"compensation:connection:{application.pk}",
    )
    if credit is None:
        return None
    return Compensation.objects.create(
        application=application,
        amount=credit.amount,
        units_late=credit.units_late,
        basis=credit.basis,
        rule=dict(credit.rule, key=key),
        ledger_entry_id=credit.entry.pk,
        created_at=clock.now(),
    )


# --- rejection and withdrawal ---------------------------------------------------------------------


def reject(
    *, actor, channel: str, application: Application, code: str, reason: str, withdrawn: bool = False
) -> Application:
    """Reject (or, at the applicant's wish, withdraw) an application at any open step, with reasons.
    A demand note is cancelled: its lines reversed, money paid refunded through payments, the pending
    account closed."""
    channel = _channel(channel)
    reason = boundary.clean_text(reason, name="reason", max_length=500).strip()
    if not reason:
        raise refuse("rejection_reason_required", code="reason_required")
    code = boundary.clean_text(code or "other", name="code", max_length=40).strip() or "other"
    target = ApplicationStatus.WITHDRAWN if withdrawn else ApplicationStatus.REJECTED
    with transaction.atomic():
        application = _lock(application)
        APPLICATION_STATUS.check(application.status, target)
        note = DemandNote.objects.select_for_update().filter(application=application).first()
        if note is not None and note.status == DemandNoteStatus.ISSUED:
            transition(
                note, DEMAND_NOTE_STATUS, DemandNoteStatus.CANCELLED, actor=actor, channel=channel, reason=reason
            )
        if application.account_id:
            _close_pending_account(application, actor=actor, channel=channel, reason=reason)
        application.rejection_code, application.rejection_reason = code, reason
        application.closed_at = clock.now()
        application.next_escalation_at = None
        _move(
            application,
            target,
            actor=actor,
            channel=channel,
            reason=reason,
            extra=["rejection_code", "rejection_reason", "closed_at", "next_escalation_at"],
            changes={"code": code},
        )
        _tell(
            application,
            event="connection.rejected",
            context={"reason": reason},
            key=f"connection.rejected:{application.number}",
        )
    return application


def _close_pending_account(application: Application, *, actor, channel: str, reason: str) -> None:
    from urja.payments import services as payments

    account = application.account
    for entry in LedgerEntry.objects.filter(
        account=account, entry_type__in=[EntryType.CHARGE, EntryType.DEPOSIT]
    ).exclude(reverses__isnull=False):
        if not LedgerEntry.objects.filter(reverses=entry).exists():
            billing_ledger.reverse_entry(
                entry=entry, reason=f"application {application.number} closed: {reason}", actor=actor
            )
    credit = -billing_ledger.balance(account=account)
    if credit > 0:
        payments.refund(
            actor=actor,
            consumer_number=account.consumer_number,
            amount=credit,
            reason=f"demand note refunded: application {application.number} closed",
            idempotency_key=f"connection:{application.number}",
        )
    customers.change_account_status(
        actor=actor,
        channel=channel,
        account=account,
        status=AccountStatus.PERMANENTLY_DISCONNECTED,
        reason=f"application {application.number} closed before connection: {reason}"[:200],
    )


# --- lateness: the service desk's tiers --------------------------------------------------------------


def _stage(application: Application, *, status: str | None = None):
    """(start, timeline, pauses) of the stage's SLA clock: up to the demand note while registered /
    inspected; none while the demand note waits for the applicant's payment; to the connection after
    payment (kept for a closed application that was paid, to read its clock at the close)."""
    status = status or application.status
    plan = _plan(application)
    pauses = _pauses(application)
    if status in (ApplicationStatus.REGISTERED, ApplicationStatus.INSPECTED):
        return application.registered_at, plan.up_to_dn, pauses
    if application.dn_paid_at is not None and status != ApplicationStatus.DN_ISSUED:
        start = application.dn_paid_at
        return start, plan.fast_track or plan.after_dn, [p for p in pauses if p[0] >= start]
    return None


def clock_of(application: Application, *, now: datetime | None = None) -> sla.ClockState | None:
    """The stage's SLA clock now (frozen at the close for a closed application)."""
    now = now or clock.now()
    stage = _stage(application)
    if stage is None:
        return None
    start, timeline, pauses = stage
    stopped = application.closed_at if application.status not in OPEN_APPLICATION else None
    return sla.clock_state(
        start=start, timeline=timeline, calendar=application.section.calendar(), pauses=pauses, now=now,
        stopped_at=stopped,
    )  # fmt: skip


def next_escalation(application: Application, *, status: str | None = None) -> datetime | None:
    """The moment the next SoP tier is reached: start + paused time + tier fraction x the stage's span
    (servicedesk.sla's fraction), None when no clock runs or every tier is passed."""
    status = status or application.status
    if status not in OPEN_APPLICATION:
        return None
    stage = _stage(application, status=status)
    if stage is None:
        return None
    start, timeline, pauses = stage
    due = sla.due_at(start, timeline, application.section.calendar(), pauses)
    if due is None:  # paused
        return None
    try:
        tiers = [t for t in _tiers() if t["level"] > application.escalation_level]
    except NotFound:
        return None
    if not tiers:
        return None
    span = sla.span_seconds(start, due, pauses)
    paused = sla.paused_seconds(pauses, until=due, since=start)
    return start + timedelta(seconds=paused + float(tiers[0]["at"]) * span)


def sla_colour(application: Application, *, now: datetime | None = None) -> str:
    if application.status not in OPEN_APPLICATION:
        return "grey"
    state = clock_of(application, now=now)
    if state is None:
        return "grey"
    if application.status == ApplicationStatus.DN_PAID and application.connection_due_at:
        moment = now or clock.now()
        if moment > application.connection_due_at:
            return "red"
    return servicedesk_selectors.sla_colour(state.status)


def _tiers() -> list[dict]:
    name = data()["lateness"]["escalation"]
    return sorted(_sop_document().get("escalation", {}).get(name, []), key=lambda t: t["level"])


def received_moment(received_at: datetime | None) -> datetime:
    """When a request's clock starts: now, or when a paper request (a camp, a section office) keyed in
    later was received — not in the future, at most 30 days back."""
    now = clock.now()
    if received_at is None:
        return now
    received_at = boundary.check_moment(received_at, name="received_at", now=now)
    if received_at < now - timedelta(days=30):
        raise refuse("received_too_early")
    return received_at


def climb_tiers(*, reached: list[dict], level: int, section, row, text, key: str, url: str) -> int:
    """Record each SoP tier of `reached` above `level` for a late application or change request:
    `row(tier, holder office)` creates its escalation row once (True when new), and the managers of the
    tier's office (servicedesk.notice_holders) get `text(tier)` once per tier. The rows made."""
    made = 0
    for tier in reached:
        if tier["level"] <= level:
            continue
        holder = servicedesk_selectors.holder_office(section, tier["office_level"])
        if row(tier, holder):
            made += 1
            servicedesk.notice_holders(office=holder, text=text(tier), key=f"{key}:{tier['level']}", url=url)
    return made


def escalation_tiers() -> list[dict]:
    """The SoP schedule's escalation tiers lateness climbs (`[lateness] escalation` names the table), by
    level; none without a schedule."""
    try:
        return _tiers()
    except NotFound:
        return []


def escalate_late(*, now: datetime | None = None) -> int:
    """Escalate open applications through the SoP schedule's tiers (fraction of the stage's time used,
    pauses excluded): one Escalation row per (application, level) — a rerun adds nothing — and one
    notice to the managers of the tier's office (servicedesk.notice_holders)."""
    now = now or clock.now()
    tiers = _tiers()
    if not tiers:
        return 0
    made = 0
    due = Application.objects.filter(next_escalation_at__lte=now, status__in=OPEN_APPLICATION)
    for application in due.select_related("section").order_by("next_escalation_at"):
        state = clock_of(application, now=now)
        reached = []
        if state is not None and not state.paused:
            level = application.escalation_level
            reached = [t for t in tiers if t["level"] > level and state.fraction >= float(t["at"])]
        if not reached:  # the pointer was early (or the clock stopped): move it on
            Application.objects.filter(pk=application.pk).update(next_escalation_at=next_escalation(application))
            continue
        with transaction.atomic():
            locked = _lock(application)
            made += climb_tiers(
                reached=reached,
                level=locked.escalation_level,
                section=locked.section,
                row=lambda tier, holder, locked=locked: Escalation.objects.get_or_create(
                    application=locked,
                    level=tier["level"],
                    defaults={"title": tier["title"], "office": holder, "created_at": now},
                )[1],
                text=lambda tier, locked=locked: f"New connection {locked.number} escalated to you ({tier['title']})",
                key=f"connection-esc:{locked.pk}",
                url=f"/connections/applications/{locked.number}/",
            )
            locked.escalation_level = max(t["level"] for t in reached)
            locked.next_escalation_at = next_escalation(locked)
            locked.save(update_fields=["escalation_level", "next_escalation_at"])
            record_audit(
                actor=None,
                channel="system",
                action="connection.escalated",
                obj=locked,
                changes={"level": locked.escalation_level},
            )
    return made
