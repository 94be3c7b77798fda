"""Meter shifting within the premises on the consumer's request (issue 12; seed 003: "Meter shifting",
15 days; channel matrix row `meter_shifting`).

A change request of kind `meter_shifting` (SHIFTING_STATUS in models.py):

    requested ──inspect──▶ inspected ──demand note──▶ approved ──paid──▶ field_work ──shifted──▶ applied
        │                     │  (nothing to charge: straight to field_work)  │
        └──────── rejected (with reasons; the unpaid demand note reversed) ◀──┘

The charge: the tariff order's `[fees]` line when an order names one (`[charges] shifting_fee_key`),
else — the sources give no amount — the engineer's estimate (material and labour) at inspection.
The clock: the SoP schedule's `shifting / meter_shifting` timeline from the request, stopped while the
demand note waits for the consumer; late completion earns the SoP type's compensation.
The field work moves the meter through metering (`shift_meter`): the installation's location
and the sheet's geo point change, the meter's sheet keeps the history.
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
from urja.core.money import paise
from urja.core.services import allocate_numbers, record_audit
from urja.customers.models import Account, AccountStatus
from urja.payments import selectors as payments_selectors
from urja.servicedesk import clock, sla

from .models import SHIFTING_STATUS, ChangeInspection, ChangeKind, ChangeRequest, ChangeStatus
from .refusals import refuse
from .services import _channel, _sop_document, credit_late, data, fee_in_force

REFERENCE_TYPE = "change_request"


# --- rules read from the data ---------------------------------------------------------------------


def _sop_type() -> tuple[dict, dict] | None:
    """(type, subtype) of the SoP schedule for meter shifting, or None with no schedule loaded."""
    try:
        types = _sop_document().get("types", [])
    except NotFound:
        return None
    code, sub_code = data()["charges"]["shifting_sop"]
    for t in types:
        if t["code"] == code:
            for sub in t.get("subtypes", []):
                if sub["code"] == sub_code:
                    return t, sub
    return None


def due_from(start: datetime, *, account: Account) -> datetime | None:
    """When a shifting requested at `start` is due (the SoP's meter-shifting timeline, on the section's
    calendar for working units)."""
    found = _sop_type()
    if found is None:
        return None
    sub = found[1]
    return sla.due_at(start, sla.Timeline(sub["unit"], int(sub["value"])), account.section.calendar())


def fee_line() -> tuple[str, Decimal] | None:
    """(order, amount) of the tariff order's shifting fee in force, or None when no order names one."""
    key = data()["charges"].get("shifting_fee_key")
    if not key:
        return None
    try:
        return fee_in_force(key=key, on=timezone.localdate(clock.now()))
    except DomainError:
        return None


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


# --- the request ----------------------------------------------------------------------------------


def check_request(*, account: Account, details: dict) -> dict:
    """What a shifting request holds: where the consumer wants the meter, and why. The supply must be on
    and a meter installed."""
    from urja.metering import selectors as metering

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
    if change.kind != ChangeKind.METER_SHIFTING:
        raise refuse("not_a_shifting", error=Conflict)
    return change


# changes.py imports this module (a request of kind meter_shifting is checked, timed and cancelled here),
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
) -> ChangeRequest:
    """The engineer's site visit: feasible (the new location within the premises, its geo point and the
    estimate of material and labour) or not (rejected with the notes as the reason)."""
    channel = _channel(channel)
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
    if feasible and not location:
        raise refuse("shifting_location_required", code="location_required")
    if not feasible and not notes:
        raise refuse("shifting_not_feasible_reason", code="reason_required")
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


def demand_note_lines(inspection: ChangeInspection) -> list[dict]:
    """The shifting fee of the tariff order in force (if an order names one) and the inspection's
    estimate; zero lines are left out."""
    lines = []
    fee = fee_line()
    if fee is not None and fee[1] > 0:
        lines.append({"code": "shifting_fee", "label": f"Meter shifting fee ({fee[0]} [fees])", "amount": fee[1]})
    if inspection.estimate > 0:
        lines.append({"code": "shifting_estimate", "label": "Meter shifting: material and labour (estimate)",
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
        _set(change, ChangeStatus.FIELD_WORK, actor=actor, channel=channel, reason="demand note paid",
             extra=["due_at", "outcome"])  # fmt: skip
    return True


def pay_demand_note(
    *, actor, channel: str, change: ChangeRequest, idempotency_key: str, method: str = "cash", reference: str = ""
) -> ChangeRequest:
    """Take what is still to pay on the shifting's demand note through payments (counter, field agent)
    and mark it paid."""
    from urja.payments import services as payments

    from .services import _audit_channel

    if change.kind != ChangeKind.METER_SHIFTING:
        raise refuse("not_a_shifting", error=Conflict)
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
    for change in ChangeRequest.objects.filter(kind=ChangeKind.METER_SHIFTING, status=ChangeStatus.APPROVED):
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
) -> ChangeRequest:
    """The meter is shifted (metering: the installation's location and geo point, one sheet entry);
    the request is applied, compensated when late."""
    from urja.metering import services as metering

    channel = _channel(channel)
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
        award = _compensate(change)
        if award:
            change.outcome["compensation"] = str(award)
        _set(change, ChangeStatus.APPLIED, actor=actor, channel=channel, extra=["applied_at", "outcome"])
        _tell(change, outcome="done", key=f"change:{change.number}:applied")
    return change


def _compensate(change: ChangeRequest) -> Decimal | None:
    """Late shifting earns the SoP type's compensation rule, credited to the account once."""
    found = _sop_type()
    credit = credit_late(
        rule_key=found[0].get("compensation", "") if found else "",
        account=change.account,
        supply_type=change.account.supply_type,
        due=change.due_at,
        done=change.applied_at,
        what=f"meter shifting {change.number}",
        reference_type=REFERENCE_TYPE,
        reference_id=change.number,
        idempotency_key=f"compensation:change:{change.pk}",
    )
    if credit is None:
        return None
    record_audit(actor=None, channel="system", action="connection.shifting_compensated", obj=change,
                 changes={"amount": str(credit.amount), "late": credit.units_late, "per": credit.per})  # fmt: skip
    return credit.amount
