"""Shifting on request (issue 12; seed 003 "Shifting"; channel matrix row `meter_shifting`): a meter
within the premises (15 days), an LT line (30), an 11 kV line (60), a 33 kV line (90) or a DT structure
(90) — one change request of a shifting kind (SHIFTING_KINDS, one machine SHIFTING_STATUS in models.py):

    requested ──inspect──▶ inspected ──demand note──▶ approved ──paid──▶ field_work ──done──▶ applied
        │                     │  (nothing to charge: straight to field_work)  │
        └──────── rejected (with reasons; the unpaid demand note reversed) ◀──┘

Each kind's rules are data (data/connections/connections.toml [shifting.kind.<kind>]): its SoP subtype
(timeline, channel row; the SoP type's compensation), its `fee_key` in a tariff order's [fees] and the
network element its inspection names (the account's meter; a DT of the section — the LT line's, or the
structure moved; a feeder of the section of the kind's voltage).
Who asks: the account holder — the consumer, or a builder or other affected party through their own
connection (recorded as `requester`); the account's ledger carries the demand note.
The charge: the tariff order's `[fees]` line when an order names the kind's key, else — the sources give
no amount, nor a supervision charge for deposit works — the engineer's estimate at inspection.
The clock: the kind's SoP timeline from the request, stopped while the demand note waits; late
completion earns the SoP type's compensation.
The field work: a meter moves through metering (`shift_meter`: the installation's location and the
sheet's geo point); a line or structure shifting records the work done (route length, structures), and
a DT structure's geo point moves through network (`move_transformer`).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from urja.billing import ledger as billing_ledger
from urja.billing.models import EntryType, LedgerEntry
from urja.core import boundary
from urja.core.errors import Conflict, DomainError, NotFound
from urja.core.labels import label
from urja.core.money import paise
from urja.core.services import allocate_numbers, record_audit
from urja.customers.models import Account, AccountStatus
from urja.network.models import DistributionTransformer, Feeder
from urja.payments import selectors as payments_selectors
from urja.servicedesk import clock, sla

from .models import (
    OPEN_CHANGE,
    SHIFTING_KINDS,
    SHIFTING_STATUS,
    ChangeEscalation,
    ChangeInspection,
    ChangeKind,
    ChangeRequest,
    ChangeStatus,
)
from .refusals import refuse
from .services import _channel, _sop_document, credit_late, data, fee_in_force

REFERENCE_TYPE = "change_request"
METER = ChangeKind.METER_SHIFTING


# --- rules read from the data ---------------------------------------------------------------------


def kind_rules(kind: str) -> dict:
    """The kind's row of [shifting.kind] (its SoP subtype, fee key, network element)."""
    found = data()["shifting"]["kind"].get(str(kind)) if kind in SHIFTING_KINDS else None
    if found is None:
        raise refuse("not_a_shifting_request", code="not_a_shifting", error=Conflict)
    return found


def _sop_type(kind: str = METER) -> tuple[dict, dict] | None:
    """(type, subtype) of the SoP schedule for the kind, or None with no schedule loaded."""
    try:
        types = _sop_document().get("types", [])
    except NotFound:
        return None
    code, sub_code = data()["shifting"]["sop_type"], kind_rules(kind)["sop"]
    for t in types:
        if t["code"] == code:
            for sub in t.get("subtypes", []):
                if sub["code"] == sub_code:
                    return t, sub
    return None


def channel_row(kind: str) -> str:
    """The channel matrix row the kind is lodged on: its SoP subtype's (the charter puts every shifting on
    the meter-shifting row)."""
    found = _sop_type(kind)
    return found[1].get("channel_row", "meter_shifting") if found else "meter_shifting"


def due_from(start: datetime, *, account: Account, kind: str = METER) -> datetime | None:
    """When a shifting of `kind` requested at `start` is due (the SoP's timeline for the kind, on the
    section's calendar for working units)."""
    found = _sop_type(kind)
    if found is None:
        return None
    sub = found[1]
    return sla.due_at(start, sla.Timeline(sub["unit"], int(sub["value"])), account.section.calendar())


def _fee(key: str) -> tuple[str, Decimal] | None:
    if not key:
        return None
    try:
        return fee_in_force(key=key, on=timezone.localdate(clock.now()))
    except DomainError:
        return None


def fee_line(kind: str = METER) -> tuple[str, Decimal] | None:
    """(order, amount) of the tariff order's fee for the kind in force, or None when no order names one."""
    return _fee(kind_rules(kind).get("fee_key", ""))


def _text(value: object, *, name: str, max_length: int) -> str:
    return " ".join(boundary.clean_text(value or "", name=name, max_length=max_length).split())


def _geo(value: object, *, name: str, bound: int) -> Decimal | None:
    if value in (None, ""):
        return None
    try:
        number = boundary.parse_decimal(value, name=name, code="invalid_geo_point", minimum=-bound, maximum=bound)
    except boundary.InvalidInput as exc:
        raise refuse("invalid_geo_point", details=exc.details) from exc
    return number.quantize(Decimal("0.000001"))


def _count(value: object, *, name: str, key: str, minimum: int) -> int | None:
    if value in (None, ""):
        return None
    try:
        return boundary.parse_int(value, name=name, minimum=minimum, maximum=100_000)
    except boundary.InvalidInput as exc:
        raise refuse(key, details=exc.details) from exc


def _section_ids(account: Account) -> list[int]:
    return [int(p) for p in account.section.path.strip("/").split("/") if p]


def network_element(kind: str, *, account: Account, code: object) -> Feeder | DistributionTransformer | None:
    """The network element a line or structure shifting is on, named by its code: a DT of the account's
    section (an LT line's, or the structure moved), or a feeder of the section or above of the kind's
    voltage. Blank: None. Anything else is refused (`unknown_element`), as out of scope is."""
    from urja.customers import selectors as customer_selectors

    rules = kind_rules(kind)
    code = _text(code, name="element", max_length=24).upper()
    if not code or rules["element"] == "meter":
        return None
    if rules["element"] == "transformer":
        found = customer_selectors.section_transformers(account.section).filter(code__iexact=code).first()
        what = "DT"
    else:
        found = (
            Feeder.objects.filter(office_id__in=_section_ids(account), code__iexact=code)
            .filter(voltage_kv=Decimal(rules["feeder_kv"]))
            .first()
        )
        what = f"{rules['feeder_kv']} kV feeder"
    if found is None:
        raise refuse("shifting_unknown_element", code="unknown_element", element=code, what=what,
                     details={"element": code, "section": account.section.code})  # fmt: skip
    return found


def elements(kind: str, *, account: Account) -> list:
    """The elements a shifting of `kind` on `account` may name (the inspection form's choices)."""
    from urja.customers import selectors as customer_selectors

    rules = kind_rules(kind)
    if rules["element"] == "transformer":
        return list(customer_selectors.section_transformers(account.section))
    if rules["element"] == "feeder":
        return list(
            Feeder.objects.filter(office_id__in=_section_ids(account), voltage_kv=Decimal(rules["feeder_kv"]))
            .order_by("code")
        )  # fmt: skip
    return []


# --- the request ----------------------------------------------------------------------------------


def check_request(*, account: Account, details: dict, kind: str = METER) -> dict:
    """What a shifting request holds. A meter: where the consumer wants it (the supply on, a meter
    installed). A line or structure: what is to be shifted and where to, why, who asks (the consumer, a
    builder or another affected party, through this account) and, if known, the feeder or DT."""
    from urja.metering import selectors as metering

    if kind != METER:
        kind_rules(kind)
        wanted = _text(details.get("location"), name="location", max_length=200)
        if not wanted:
            raise refuse("shifting_route_required", code="location_required")
        requesters = data()["shifting"]["requesters"]
        requester = str(details.get("requester") or requesters[0])
        if requester not in requesters:
            raise refuse("unknown_requester", allowed=", ".join(label(f"shifting_by_{r}") for r in requesters),
                         details={"allowed": requesters})  # fmt: skip
        named = network_element(kind, account=account, code=details.get("element"))
        return {
            "location": wanted,
            "reason": _text(details.get("reason"), name="reason", max_length=200),
            "requester": requester,
            "requested_by": _text(details.get("requested_by"), name="requested_by", max_length=160)
            or account.consumer.name,
            "element": named.code if named is not None else "",
        }
    if account.status != AccountStatus.ACTIVE:
        raise refuse("shifting_not_active", error=Conflict)
    inst = metering.current_installation(account)
    if inst is None:
        raise refuse("shifting_no_meter", code="no_meter", error=Conflict)
    wanted = _text(details.get("location"), name="location", max_length=200)
    if not wanted:
        raise refuse("shifting_location_required", code="location_required")
    return {
        "location": wanted,
        "reason": _text(details.get("reason"), name="reason", max_length=200),
        "from": inst.location,
        "meter": inst.meter.serial,
    }


def _lock(change: ChangeRequest) -> ChangeRequest:
    change = (
        ChangeRequest.objects.select_for_update(of=("self",))
        .select_related("account", "account__section")
        .get(pk=change.pk)
    )
    if change.kind not in SHIFTING_KINDS:
        raise refuse("not_a_shifting_request", code="not_a_shifting", error=Conflict)
    return change


# changes.py imports this module (a request of a shifting kind is checked, timed and cancelled here),
# so its status and message helpers are reached at call time.
def _set(change: ChangeRequest, to: str, *, actor, channel: str, reason: str = "", extra=()) -> None:
    from .changes import _set as set_status

    set_status(change, to, actor=actor, channel=channel, reason=reason, extra=extra)


def _tell(change: ChangeRequest, *, outcome: str, key: str, amount: Decimal | None = None) -> None:
    from .changes import _tell as tell

    tell(change, outcome=outcome, key=key, amount=amount)


# --- site inspection and demand note ----------------------------------------------------------------


def inspect(
    *,
    actor,
    channel: str,
    change: ChangeRequest,
    feasible: bool,
    new_location: object = "",
    latitude: object = None,
    longitude: object = None,
    estimate: object = None,
    notes: object = "",
    element: object = "",
    route_length_m: object = None,
    structures: object = None,
) -> ChangeRequest:
    """The engineer's site visit: feasible or not (rejected with the notes as the reason). Feasible: a
    meter's new location within the premises (and geo point); a line's new route, its length in metres,
    the structures to move and the feeder (11 / 33 kV) or DT (LT) it is on; a DT structure's DT and new
    geo point — and the estimate of material and labour, the demand note's amount."""
    channel = _channel(channel)
    line = change.kind != METER
    rules = kind_rules(change.kind)
    location = _text(new_location, name="new_location", max_length=200)
    notes = boundary.clean_text(notes or "", name="notes", multiline=True, max_length=2000).strip()
    lat, lon = _geo(latitude, name="latitude", bound=90), _geo(longitude, name="longitude", bound=180)
    if (lat is None) != (lon is None):
        raise refuse("invalid_geo_point", details={"latitude": str(latitude), "longitude": str(longitude)})
    amount = Decimal("0.00")
    if estimate not in (None, ""):
        try:
            amount = boundary.parse_amount(estimate, name="estimate", allow_zero=True)
        except boundary.InvalidInput as exc:
            raise refuse("invalid_estimate", details=exc.details) from exc
    length = _count(route_length_m, name="route_length_m", key="invalid_route_length", minimum=1) if line else None
    moved = _count(structures, name="structures", key="invalid_structures", minimum=0) if line else None
    named = network_element(change.kind, account=change.account, code=element or change.details.get("element"))
    if feasible and not (location or (line and change.details.get("location"))):
        raise refuse("shifting_location_required" if not line else "shifting_route_required", code="location_required")
    if feasible and line:
        if named is None:
            what = "DT" if rules["element"] == "transformer" else f"{rules['feeder_kv']} kV feeder"
            raise refuse("shifting_element_required", code="element_required", what=what)
        if rules.get("structure"):
            if lat is None:
                raise refuse("shifting_geo_point_required", code="geo_point_required")
            moved = 1 if moved is None else moved
        elif length is None:
            raise refuse("invalid_route_length", code="route_length_required")
    if not feasible and not notes:
        raise refuse("shifting_not_feasible_reason" if not line else "shifting_work_not_feasible_reason",
                     code="reason_required")  # fmt: skip
    with transaction.atomic():
        change = _lock(change)
        SHIFTING_STATUS.check(change.status, ChangeStatus.INSPECTED)
        ChangeInspection.objects.create(
            change_request=change,
            engineer=actor if getattr(actor, "pk", None) else None,
            inspected_at=clock.now(),
            feasible=feasible,
            new_location=location or change.details.get("location", ""),
            latitude=lat,
            longitude=lon,
            estimate=amount,
            route_length_m=length,
            structures=moved,
            feeder=named if isinstance(named, Feeder) else None,
            transformer=named if isinstance(named, DistributionTransformer) else None,
            notes=notes,
        )
        _set(change, ChangeStatus.INSPECTED, actor=actor, channel=channel,
             reason="feasible" if feasible else "not feasible")  # fmt: skip
        if not feasible:  # rejected in the same transaction: an infeasible inspection never leaves it open
            from .changes import decide

            limit = ChangeRequest._meta.get_field("reason").max_length  # the notes may be longer
            reason = notes if len(notes) <= limit else notes[: limit - 1].rstrip() + "…"
            return decide(actor=actor, channel=channel, change=change, approve=False, reason=reason)
    return change


def _kind_label(kind: str) -> str:
    return ChangeKind(kind).label


def demand_note_lines(inspection: ChangeInspection) -> list[dict]:
    """The kind's fee of the tariff order in force (if an order names one), a supervision charge on
    deposit works (if an order names one: none does) and the inspection's estimate; zero lines are left
    out."""
    kind = inspection.change_request.kind
    what = _kind_label(kind)
    lines = []
    fee = fee_line(kind)
    if fee is not None and fee[1] > 0:
        lines.append({"code": "shifting_fee", "label": f"{what}: fee ({fee[0]} [fees])", "amount": fee[1]})
    supervision = _fee(data()["shifting"].get("supervision_fee_key", ""))
    if kind != METER and supervision is not None and supervision[1] > 0:
        lines.append({"code": "supervision", "label": f"{what}: supervision ({supervision[0]} [fees])",
                      "amount": supervision[1]})  # fmt: skip
    if inspection.estimate > 0:
        lines.append({"code": "shifting_estimate", "label": f"{what}: material and labour (estimate)",
                      "amount": inspection.estimate})  # fmt: skip
    return lines


def issue_demand_note(*, actor, channel: str, change: ChangeRequest) -> ChangeRequest:
    """The demand note of a feasible shifting: each line a charge on the account's ledger; the clock
    stops until it is paid. Nothing to charge: the field work is due at once."""
    channel = _channel(channel)
    with transaction.atomic():
        change = _lock(change)
        SHIFTING_STATUS.check(change.status, ChangeStatus.APPROVED)
        inspection = change.inspection
        lines = demand_note_lines(inspection)
        now = clock.now()
        total = paise(sum((line["amount"] for line in lines), Decimal(0)))
        change.decided_at = now
        change.charge = total
        if total <= 0:
            change.outcome = {**change.outcome, "demand_note": None, "paid_at": now.isoformat()}
            _set(change, ChangeStatus.FIELD_WORK, actor=actor, channel=channel, reason="nothing to charge",
                 extra=["decided_at", "charge", "outcome"])  # fmt: skip
            _tell(change, outcome="approved", key=f"change:{change.number}:approved")
            return change
        number = allocate_numbers(key="connections:dn", template=data()["numbers"]["demand_note_template"])[0]
        for line in lines:
            billing_ledger.post_entry(
                account=change.account,
                entry_type=EntryType.CHARGE,
                amount=line["amount"],
                description=f"{line['label']} (demand note {number}, request {change.number})"[:200],
                actor=actor,
                channel=channel,
                reference_type=REFERENCE_TYPE,
                reference_id=change.number,
                idempotency_key=f"dn:{number}:{line['code']}",
                due_date=timezone.localdate(now),
            )
        change.outcome = {
            **change.outcome,
            "demand_note": {
                "number": number,
                "issued_at": now.isoformat(),
                "lines": [{**line, "amount": str(line["amount"])} for line in lines],
                "total": str(total),
            },
            "clock_stopped_at": now.isoformat(),
        }
        _set(change, ChangeStatus.APPROVED, actor=actor, channel=channel, reason=f"demand note {number}",
             extra=["decided_at", "charge", "outcome"])  # fmt: skip
        _tell(change, outcome="approved", key=f"change:{change.number}:approved", amount=total)
    return change


# --- payment ----------------------------------------------------------------------------------------


def still_to_pay(change: ChangeRequest) -> Decimal:
    """What must still be paid for the demand note to be settled. Its charges sit on the account's
    ledger, so a payment settles them in the utility's allocation order (data/payments/allocation.toml:
    instalments, arrears, surcharge and the current bill come before a charge): a payment of the
    monthly bill is not a payment of the note. The answer is every open item up to the note's last
    charge in that order."""
    if change.status != ChangeStatus.APPROVED:
        return Decimal("0.00")
    owed = billing_ledger.balance(account=change.account)
    if owed <= 0:
        return Decimal("0.00")
    note_entries = {
        str(pk)
        for pk in LedgerEntry.objects.filter(
            account_id=change.account_id, reference_type=REFERENCE_TYPE, reference_id=change.number,
            entry_type=EntryType.CHARGE,
        ).values_list("pk", flat=True)
    }  # fmt: skip
    # allocating the whole balance lists every open item in the order a payment would settle them
    split = payments_selectors.allocate_on_ledger(account=change.account, amount=owed, today=timezone.localdate())
    needed = running = Decimal(0)
    for part in split.parts:
        running += part.amount
        if part.key in note_entries:
            needed = running
    return paise(needed)


def settle_payment(*, change: ChangeRequest, actor=None, channel: str = "system") -> bool:
    """The demand note is paid — its charges settled on the ledger (`still_to_pay`) — so the field
    work is due: the clock runs again from now with the time it had left."""
    with transaction.atomic():
        change = _lock(change)
        if change.status != ChangeStatus.APPROVED or still_to_pay(change) > 0:
            return False
        now = clock.now()
        stopped = change.outcome.get("clock_stopped_at")
        if change.due_at and stopped:
            change.due_at = change.due_at + max(now - datetime.fromisoformat(stopped), timedelta(0))
        change.outcome = {**change.outcome, "paid_at": now.isoformat()}
        change.next_escalation_at = next_escalation(change, status=ChangeStatus.FIELD_WORK)
        _set(change, ChangeStatus.FIELD_WORK, actor=actor, channel=channel, reason="demand note paid",
             extra=["due_at", "outcome", "next_escalation_at"])  # fmt: skip
    return True


def pay_demand_note(
    *, actor, channel: str, change: ChangeRequest, idempotency_key: str, method: str = "cash", reference: str = ""
) -> ChangeRequest:
    """Take what is still to pay on the shifting's demand note through payments (counter, field agent)
    and mark it paid."""
    from urja.payments import services as payments

    from .services import _audit_channel

    if change.kind not in SHIFTING_KINDS:
        raise refuse("not_a_shifting_request", code="not_a_shifting", error=Conflict)
    SHIFTING_STATUS.check(change.status, ChangeStatus.FIELD_WORK)
    amount = still_to_pay(change)
    if amount > 0:
        payments.take_payment(
            actor=actor,
            channel=channel,
            consumer_number=change.account.consumer_number,
            amount=amount,
            idempotency_key=idempotency_key,
            method=method,
            reference=reference or change.outcome["demand_note"]["number"],
        )
    settle_payment(change=change, actor=actor, channel=_audit_channel(channel))
    change.refresh_from_db()
    return change


def settle_payments() -> int:
    """The periodic job: shifting demand notes paid on channels that do not call us."""
    moved = 0
    for change in ChangeRequest.objects.filter(kind__in=SHIFTING_KINDS, status=ChangeStatus.APPROVED):
        if settle_payment(change=change):
            moved += 1
    return moved


def cancel_demand_note(change: ChangeRequest, *, actor, channel: str, reason: str) -> None:
    """A rejected shifting's unpaid demand note: its charges reversed (a part payment stays on the
    account as a credit for the next bill)."""
    for entry in LedgerEntry.objects.filter(
        account_id=change.account_id, reference_type=REFERENCE_TYPE, reference_id=change.number,
        entry_type=EntryType.CHARGE,
    ):  # fmt: skip
        if not LedgerEntry.objects.filter(reverses=entry).exists():
            billing_ledger.reverse_entry(entry=entry, reason=f"request {change.number} rejected: {reason}"[:200],
                                         actor=actor, channel=channel)  # fmt: skip


# --- the field work -----------------------------------------------------------------------------------


def complete(
    *,
    actor,
    channel: str,
    change: ChangeRequest,
    location: object = "",
    latitude: object = None,
    longitude: object = None,
    acknowledged_by: object = "",
    notes: object = "",
    route_length_m: object = None,
    structures: object = None,
) -> ChangeRequest:
    """The field work is done; the request is applied, compensated when late. A meter is shifted through
    metering (the installation's location and geo point, one sheet entry); a line or structure shifting
    records the work (what was done, the route length and structures as built, the inspection's unless
    given); a DT structure's new geo point goes on the DT through network."""
    channel = _channel(channel)
    if change.kind != METER:
        return _complete_work(actor=actor, channel=channel, change=change, location=location, latitude=latitude,
                              longitude=longitude, notes=notes, route_length_m=route_length_m,
                              structures=structures, acknowledged_by=acknowledged_by)  # fmt: skip
    from urja.metering import services as metering

    with transaction.atomic():
        change = _lock(change)
        SHIFTING_STATUS.check(change.status, ChangeStatus.APPLIED)
        inspection = change.inspection
        where = _text(location, name="location", max_length=200) or inspection.new_location
        lat = _geo(latitude, name="latitude", bound=90)
        lon = _geo(longitude, name="longitude", bound=180)
        if lat is None and lon is None:
            lat, lon = inspection.latitude, inspection.longitude
        if (lat is None) != (lon is None):
            raise refuse("invalid_geo_point", details={"latitude": str(latitude), "longitude": str(longitude)})
        now = clock.now()
        inst = metering.shift_meter(
            account=change.account,
            location=where,
            latitude=lat,
            longitude=lon,
            reference=change.number,
            actor=actor,
            channel=channel,
            acknowledged_by=_text(acknowledged_by, name="acknowledged_by", max_length=150),
        )
        change.applied_at = now
        change.outcome = {
            **change.outcome,
            "shifted_to": inst.location,
            "latitude": str(lat) if lat is not None else None,
            "longitude": str(lon) if lon is not None else None,
            "meter": inst.meter.serial,
        }
        _applied(change, actor=actor, channel=channel)
    return change


def _applied(change: ChangeRequest, *, actor, channel: str) -> None:
    award = _compensate(change)
    if award:
        change.outcome["compensation"] = str(award)
    _set(change, ChangeStatus.APPLIED, actor=actor, channel=channel, extra=["applied_at", "outcome"])
    _tell(change, outcome="done", key=f"change:{change.number}:applied")


def _complete_work(
    *, actor, channel: str, change: ChangeRequest, location, latitude, longitude, notes, route_length_m, structures,
    acknowledged_by,
) -> ChangeRequest:  # fmt: skip
    from urja.network import services as network

    rules = kind_rules(change.kind)
    work = boundary.clean_text(notes or "", name="notes", multiline=True, max_length=2000).strip()
    if not work:
        raise refuse("shifting_work_required", code="work_required")
    where = _text(location, name="location", max_length=200)
    lat, lon = _geo(latitude, name="latitude", bound=90), _geo(longitude, name="longitude", bound=180)
    if (lat is None) != (lon is None):
        raise refuse("invalid_geo_point", details={"latitude": str(latitude), "longitude": str(longitude)})
    length = _count(route_length_m, name="route_length_m", key="invalid_route_length", minimum=1)
    moved = _count(structures, name="structures", key="invalid_structures", minimum=0)
    witness = _text(acknowledged_by, name="acknowledged_by", max_length=150)
    with transaction.atomic():
        change = _lock(change)
        SHIFTING_STATUS.check(change.status, ChangeStatus.APPLIED)
        inspection = change.inspection
        if lat is None:
            lat, lon = inspection.latitude, inspection.longitude
        dt = inspection.transformer
        outcome = {
            "work": work,
            "shifted_to": where or inspection.new_location,
            "element": (dt.code if dt else inspection.feeder.code if inspection.feeder_id else ""),
            "route_length_m": length if length is not None else inspection.route_length_m,
            "structures": moved if moved is not None else inspection.structures,
            "acknowledged_by": witness,
        }
        if rules.get("structure"):
            if lat is None or dt is None:
                raise refuse("shifting_geo_point_required", code="geo_point_required")
            before = (dt.latitude, dt.longitude)
            network.move_transformer(transformer=dt, latitude=lat, longitude=lon, actor=actor, channel=channel,
                                     reason=f"request {change.number}")  # fmt: skip
            outcome.update(
                latitude=str(lat), longitude=str(lon),
                from_geo=[str(before[0]), str(before[1])] if before[0] is not None else None,
            )  # fmt: skip
        change.applied_at = clock.now()
        change.outcome = {**change.outcome, **outcome}
        _applied(change, actor=actor, channel=channel)
    return change


def _compensate(change: ChangeRequest) -> Decimal | None:
    """Late shifting earns the SoP type's compensation rule, credited to the account once."""
    found = _sop_type(change.kind)
    credit = credit_late(
        rule_key=found[0].get("compensation", "") if found else "",
        account=change.account,
        supply_type=change.account.supply_type,
        due=change.due_at,
        done=change.applied_at,
        what=f"{_kind_label(change.kind).lower()} {change.number}",
        reference_type=REFERENCE_TYPE,
        reference_id=change.number,
        idempotency_key=f"compensation:change:{change.pk}",
    )
    if credit is None:
        return None
    record_audit(actor=None, channel="system", action="connection.shifting_compensated", obj=change,
                 changes={"amount": str(credit.amount), "late": credit.units_late, "per": credit.per})  # fmt: skip
    from .handover import tell_compensated

    tell_compensated(change, amount=credit.amount, units_late=credit.units_late, per=credit.per)
    return credit.amount


# --- escalation ---------------------------------------------------------------------------------------
#
# A late shifting climbs the same SoP tiers as a late application (services.escalation_tiers): each tier
# is reached at its fraction of the kind's time, the time the demand note waited left out; nothing climbs
# while the note waits (the consumer holds the clock), nor once the request is done or rejected.


def _pauses(change: ChangeRequest) -> list:
    """The clock's pause: from the demand note to its payment (open while the note waits)."""
    stopped = change.outcome.get("clock_stopped_at")
    if not stopped:
        return []
    paid = change.outcome.get("paid_at")
    return [(datetime.fromisoformat(stopped), datetime.fromisoformat(paid) if paid else None)]


def _waits_for_payment(change: ChangeRequest, status: str | None = None) -> bool:
    return (status or change.status) == ChangeStatus.APPROVED and bool(change.outcome.get("clock_stopped_at"))


def next_escalation(change: ChangeRequest, *, status: str | None = None) -> datetime | None:
    """The moment the next tier is reached (None: no clock, the clock stopped, or every tier passed), for
    the request in `status` (default: its own). `due_at` already carries the pause (settle_payment moves
    it on by the time the note waited)."""
    from .services import escalation_tiers

    status = status or change.status
    if change.kind not in SHIFTING_KINDS or change.due_at is None or status not in OPEN_CHANGE:
        return None
    if _waits_for_payment(change, status):
        return None
    tiers = [t for t in escalation_tiers() if t["level"] > change.escalation_level]
    if not tiers:
        return None
    pauses = _pauses(change)
    span = sla.span_seconds(change.requested_at, change.due_at, pauses)
    paused = sla.paused_seconds(pauses, until=change.due_at, since=change.requested_at)
    return change.requested_at + timedelta(seconds=paused + float(tiers[0]["at"]) * span)


def escalate_late(*, now: datetime | None = None) -> int:
    """Escalate open shiftings whose next tier has come: one ChangeEscalation per (request, level) — a
    rerun adds nothing — and one notice to the managers of the tier's office; the escalation rows made."""
    from .services import climb_tiers, escalation_tiers

    now = now or clock.now()
    tiers = escalation_tiers()
    if not tiers:
        return 0
    made = 0
    due = ChangeRequest.objects.filter(next_escalation_at__lte=now, status__in=OPEN_CHANGE, kind__in=SHIFTING_KINDS)
    for change in due.select_related("account__section").order_by("next_escalation_at"):
        reached = []
        if change.due_at is not None and not _waits_for_payment(change):
            fraction = sla.elapsed_fraction(change.requested_at, change.due_at, _pauses(change), now)
            reached = [t for t in tiers if t["level"] > change.escalation_level and fraction >= float(t["at"])]
        if not reached:  # the pointer was early, or the note waits: move it on
            ChangeRequest.objects.filter(pk=change.pk).update(next_escalation_at=next_escalation(change))
            continue
        with transaction.atomic():
            locked = _lock(change)
            if locked.status not in OPEN_CHANGE:
                continue
            made += climb_tiers(
                reached=reached,
                level=locked.escalation_level,
                section=locked.account.section,
                row=lambda tier, holder, locked=locked: ChangeEscalation.objects.get_or_create(
                    change_request=locked,
                    level=tier["level"],
                    defaults={"title": tier["title"], "office": holder, "created_at": now},
                )[1],
                text=lambda tier, locked=locked: (
                    f"{_kind_label(locked.kind)} {locked.number} escalated to you ({tier['title']})"
                ),
                key=f"change-esc:{locked.pk}",
                url=f"/connections/changes/{locked.number}/",
            )
            locked.escalation_level = max(locked.escalation_level, max(t["level"] for t in reached))
            locked.next_escalation_at = next_escalation(locked)
            locked.save(update_fields=["escalation_level", "next_escalation_at"])
            record_audit(actor=None, channel="system", action="connection.change_escalated", obj=locked,
                         changes={"level": locked.escalation_level})  # fmt: skip
    return made
