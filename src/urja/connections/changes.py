"""Requests that change or end a connection (issue 12, parts 4, 6, 7), and the disconnection and
reconnection orders that carry them out.

A change request: requested → approved (a charge to pay) → scheduled (an effective date to wait for)
→ applied, or rejected at any step, with a message at each step. Orders: open (field, closed with
photo proof) or sent (a smart meter's remote command) → done; the account status follows.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from urja.billing import deposits
from urja.billing import ledger as billing_ledger
from urja.billing.models import EntryType
from urja.core import boundary
from urja.core.errors import Conflict
from urja.core.labels import label
from urja.core.money import paise
from urja.core.services import allocate_numbers, record_audit
from urja.core.states import transition
from urja.customers import rules as customer_rules
from urja.customers import services as customers
from urja.customers.models import Account, AccountStatus
from urja.servicedesk import clock, sla

from . import rules, shifting
from .models import (
    OPEN_CHANGE,
    ORDER_STATUS,
    SHIFTING_KINDS,
    ChangeKind,
    ChangeRequest,
    ChangeStatus,
    Order,
    OrderKind,
    OrderStatus,
    machine_for,
)
from .refusals import refuse
from .services import _channel, _sop_document, check_channel, credit_late, data, fee_in_force, received_moment

CHANNEL_ROW = {
    ChangeKind.LOAD_CHANGE: "load_change",
    ChangeKind.NAME_CHANGE: "name_change",
    ChangeKind.CATEGORY_CHANGE: "category_change",
    ChangeKind.TEMPORARY_DISCONNECTION: "disconnection",
    ChangeKind.PERMANENT_DISCONNECTION: "disconnection",
    ChangeKind.METER_SHIFTING: "meter_shifting",
}
OUTCOME_TEXT = {
    ChangeStatus.APPROVED: "approved",
    ChangeStatus.SCHEDULED: "approved",
    ChangeStatus.APPLIED: "done",
    ChangeStatus.REJECTED: "rejected",
}


def _number(kind: str) -> str:
    template = data()["numbers"]["change_template" if kind == "change" else "order_template"]
    return allocate_numbers(key=f"connections:{kind}", template=template)[0]


# what a change request's message says happened, in the consumer's language (data/core/labels.toml)
OUTCOMES = ("approved", "rejected", "done")


def outcome_words(outcome: str, *, language: str, reason: str = "") -> str:
    """The outcome (`approved`, `rejected`, `done`) as its label in `language`, a rejection's reason after
    it as written ("अस्वीकृत: <reason>")."""
    if outcome not in OUTCOMES:
        raise ValueError(f"unknown request outcome {outcome!r}")
    words = label(f"request_outcome_{outcome}", language)
    return f"{words}: {reason}" if reason else words


def _tell(change: ChangeRequest, *, outcome: str, key: str, amount: Decimal | None = None, reason: str = "") -> None:
    from urja.notifications import rendering
    from urja.notifications import services as notifications

    account = change.account

    def send():
        try:
            consumer = account.consumer
            # the language notify renders in: the consumer's, English when none
            language = consumer.preferred_language or rendering.FALLBACK_LANGUAGE
            notifications.notify(
                event="connection.request_decided",
                consumer=consumer,
                account=account,
                context={
                    "request_number": change.number,
                    "outcome": outcome_words(outcome, language=language, reason=reason),
                    "effective_on": change.effective_on,
                    "amount": amount,
                },
                idempotency_key=key,
            )
        except Exception:  # after commit: the step stands
            import logging

            logging.getLogger(__name__).exception("message for %s failed", change.number)

    transaction.on_commit(send)


def _estimated_monthly(account: Account, *, load: Decimal, unit: str, supply_type: str, category: str) -> Decimal:
    from urja.tariffs import services as tariffs

    load_kw = customer_rules.load_in_kw(load, unit, customers._power_factor())
    units = rules.estimated_units(data(), category=category, load_kw=load_kw)
    today = timezone.localdate(clock.now())
    bill = tariffs.calculate(
        period_start=today,
        period_end=today + timedelta(days=int(data()["estimate"]["days"]) - 1),
        units=units,
        category=category,
        sub_category=account.sub_category,
        area=account.area,
        supply_type=supply_type,
        sanctioned_load=load,
        load_unit=unit,
    )
    return paise(bill.total)


def supply_type_for(load: Decimal, unit: str) -> str:
    """The supply type whose range holds the load (a load change across a range changes it)."""
    table = customers.supply_type_table()
    for code, supply in table.items():
        if code == "temporary":
            continue
        if customer_rules.load_problem(supply, load, unit, customers._power_factor()) is None:
            return code
    raise refuse("load_out_of_range", load=load, unit=unit)


# --- requesting ------------------------------------------------------------------------------------


def request_change(
    *, actor, channel: str, account: Account, kind: str, details: dict, received_at: datetime | None = None
) -> ChangeRequest:
    """Register a change on an account, checked now: a load within some supply type's range, a
    known category, a new holder's name and applicant type; the channel matrix of the SoP schedule.
    `received_at`: when a paper request was received, if keyed in later (services.received_moment) — a
    shifting's clock starts then."""
    if kind not in ChangeKind.values:
        raise refuse("unknown_request", kind=kind, details={"allowed": ChangeKind.values})
    channel = check_channel(channel, row=shifting.channel_row(kind) if kind in SHIFTING_KINDS else CHANNEL_ROW[kind])
    if account.status == AccountStatus.PERMANENTLY_DISCONNECTED:
        raise refuse("account_closed", error=Conflict)
    if account.status == AccountStatus.PENDING:
        raise refuse("account_pending", error=Conflict)
    if ChangeRequest.objects.filter(account=account, kind=kind, status__in=OPEN_CHANGE).exists():
        raise refuse("request_open", error=Conflict)
    now = received_moment(received_at)
    today = timezone.localdate(now)
    clean: dict = {}
    effective = None
    if kind == ChangeKind.LOAD_CHANGE:
        unit = str(details.get("unit", account.load_unit))
        if unit not in ("kW", "kVA"):
            raise refuse("invalid_load_unit")
        try:
            load = boundary.parse_quantity(details.get("load"), name="load")
        except boundary.InvalidInput as exc:
            raise refuse("invalid_load", details=exc.details) from exc
        if load <= 0:
            raise refuse("load_not_positive", code="invalid_load")
        if load == account.sanctioned_load and unit == account.load_unit:
            raise refuse("same_load", code="no_change")
        supply = supply_type_for(load, unit)
        clean = {
            "load": str(load),
            "unit": unit,
            "supply_type": supply,
            "from": f"{account.sanctioned_load} {account.load_unit} {account.supply_type}",
            "meter_change": supply != account.supply_type,
        }
        effective = rules.first_of_next_month(today)
    elif kind == ChangeKind.CATEGORY_CHANGE:
        category, sub = str(details.get("category", "")), str(details.get("sub_category", "general"))
        categories = {c["code"]: c for c in customers.regdata.load("customers/categories.toml")["category"]}
        if category not in categories or sub not in categories[category]["sub_categories"]:
            raise refuse("unknown_category", category=f"{category}/{sub}", details={"allowed": sorted(categories)})
        if (category, sub) == (account.category, account.sub_category):
            raise refuse("same_category", code="no_change")
        clean = {"category": category, "sub_category": sub, "from": f"{account.category}/{account.sub_category}"}
        effective = rules.first_of_next_month(today)
    elif kind == ChangeKind.NAME_CHANGE:
        name = " ".join(boundary.clean_text(details.get("name", ""), name="name", max_length=160).split())
        if not name:
            raise refuse("holder_name_required", code="name_required")
        applicant_type = str(details.get("applicant_type", "owner"))
        clean = {
            "name": name,
            "applicant_type": applicant_type,
            "carry_dues": bool(details.get("carry_dues", False)),
            "from": account.consumer.name,
        }
    elif kind == ChangeKind.TEMPORARY_DISCONNECTION:
        if account.status != AccountStatus.ACTIVE:
            raise refuse("not_active", error=Conflict)
    elif kind == ChangeKind.PERMANENT_DISCONNECTION:
        try:
            final_kwh = boundary.parse_quantity(details.get("final_kwh"), name="final_kwh")
        except boundary.InvalidInput as exc:
            raise refuse("invalid_reading", details=exc.details) from exc
        clean = {"final_kwh": str(final_kwh), "reason": str(details.get("reason", "move-out"))[:200]}
    elif kind in SHIFTING_KINDS:
        clean = shifting.check_request(account=account, kind=kind, details=details)
    due = shifting.due_from(now, account=account, kind=kind) if kind in SHIFTING_KINDS else None
    with transaction.atomic():
        change = ChangeRequest.objects.create(
            number=_number("change"),
            kind=kind,
            account=account,
            office_path=account.office_path,
            channel=channel,
            details=clean,
            requested_at=now,
            effective_on=effective,
            due_at=due,
            created_by=actor if getattr(actor, "pk", None) else None,
        )
        record_audit(actor=actor, channel=channel, action="connection.change_requested", obj=change, changes=clean)
        if due is not None:  # a request on the SoP clock is acknowledged with its number and due moment, once
            _acknowledge(change)
            change.next_escalation_at = shifting.next_escalation(change)
            change.save(update_fields=["next_escalation_at"])
        if kind == ChangeKind.PERMANENT_DISCONNECTION:
            # acknowledged on the spot, disconnected forthwith (Supply Code regs 178-179)
            _set(change, ChangeStatus.APPROVED, actor=actor, channel=channel, reason="acknowledged on the spot")
            _order(account, kind=OrderKind.DISCONNECT, reason="permanent", to=AccountStatus.PERMANENTLY_DISCONNECTED,
                   change=change, actor=actor, channel=channel)  # fmt: skip
        elif kind == ChangeKind.TEMPORARY_DISCONNECTION:
            _set(change, ChangeStatus.APPROVED, actor=actor, channel=channel, reason="at the consumer's request")
            _order(account, kind=OrderKind.DISCONNECT, reason="consumer_request",
                   to=AccountStatus.TEMPORARILY_DISCONNECTED, change=change, actor=actor, channel=channel)  # fmt: skip
    return change


def _acknowledge(change: ChangeRequest) -> None:
    """The consumer's acknowledgement of a request registered on the SoP clock, whatever the touch point
    (counter, API, the service desk's hand-over): its number, what it is and when it is due, in the
    consumer's language; keyed on the request, so it goes once."""
    from urja.notifications import services as notifications

    consumer = change.account.consumer
    notifications.notify(
        event="request.registered",
        consumer=consumer,
        account=change.account,
        context={
            "request_number": change.number,
            "request_label": label(change.kind, consumer.preferred_language),
            "due_at": change.due_at,
        },
        idempotency_key=f"registered:{change.number}",
    )


def _set(change: ChangeRequest, to: str, *, actor, channel: str, reason: str = "", extra=()) -> None:
    transition(
        change,
        machine_for(change.kind),
        to,
        actor=actor,
        channel=channel,
        reason=reason,
        extra_fields=extra,
        action="change.status",
    )


# --- deciding, paying, applying ---------------------------------------------------------------------


def decide(*, actor, channel: str, change: ChangeRequest, approve: bool, reason: str = "") -> ChangeRequest:
    """Approve (with the charge it needs: the deposit top-up of a load enhancement) or reject."""
    channel = _channel(channel)
    reason = boundary.clean_text(reason, name="reason", max_length=500).strip()
    with transaction.atomic():
        change = ChangeRequest.objects.select_for_update().select_related("account").get(pk=change.pk)
        now = clock.now()
        change.decided_at = now
        if not approve:
            if not reason:
                raise refuse("rejection_reason_required", code="reason_required")
            machine_for(change.kind).check(change.status, ChangeStatus.REJECTED)
            if change.kind in SHIFTING_KINDS:
                shifting.cancel_demand_note(change, actor=actor, channel=channel, reason=reason)
            change.reason = reason
            _set(change, ChangeStatus.REJECTED, actor=actor, channel=channel, reason=reason,
                 extra=["decided_at", "reason"])  # fmt: skip
            _tell(change, outcome="rejected", reason=reason, key=f"change:{change.number}:rejected")
            return change
        if change.kind in SHIFTING_KINDS:  # approved by its inspection and demand note
            meter = change.kind == ChangeKind.METER_SHIFTING
            key = "shifting_needs_inspection" if meter else "shifting_approved_by_inspection"
            raise refuse(key, code="shifting_needs_inspection", error=Conflict)
        machine_for(change.kind).check(change.status, ChangeStatus.APPROVED)
        account = change.account
        charge = Decimal("0.00")
        if change.kind == ChangeKind.LOAD_CHANGE:
            d = change.details
            monthly = _estimated_monthly(account, load=Decimal(d["load"]), unit=d["unit"], supply_type=d["supply_type"],
                                         category=account.category)  # fmt: skip
            required, demand = deposits.demand_top_up(
                account=account,
                estimated_monthly_bill=monthly,
                reference=f"load change {change.number}",
                actor=actor,
                channel=channel,
                on=timezone.localdate(now),
            )
            charge = demand.amount if demand else Decimal("0.00")
            change.outcome = {"deposit_required": str(required), "estimated_monthly_bill": str(monthly)}
        if change.kind == ChangeKind.NAME_CHANGE and not change.details.get("carry_dues"):
            dues = billing_ledger.balance(account=account)
            if dues > 0:
                raise refuse("dues_unsettled", dues=dues, details={"dues": str(dues)})
        change.charge = charge
        _set(change, ChangeStatus.APPROVED, actor=actor, channel=channel, reason=reason or "approved",
             extra=["decided_at", "charge", "outcome"])  # fmt: skip
        _tell(change, outcome="approved", key=f"change:{change.number}:approved", amount=charge or None)
    return apply_if_due(change=change, actor=actor, channel=channel)


def apply_if_due(*, change: ChangeRequest, actor=None, channel: str = "system") -> ChangeRequest:
    """Apply an approved change whose charge is paid, now or — with an effective date ahead — when it
    comes (scheduled meanwhile)."""
    with transaction.atomic():
        change = (
            ChangeRequest.objects.select_for_update().select_related("account", "account__consumer").get(pk=change.pk)
        )
        if change.status not in (ChangeStatus.APPROVED, ChangeStatus.SCHEDULED):
            return change
        if change.kind in (ChangeKind.TEMPORARY_DISCONNECTION, ChangeKind.PERMANENT_DISCONNECTION):
            return change  # applied by its order
        if change.kind in SHIFTING_KINDS:
            return change  # paid: shifting.settle_payment; applied by its field work
        account = change.account
        if change.charge > 0 and billing_ledger.balance(account=account) > 0:
            return change  # waiting for the payment
        today = timezone.localdate(clock.now())
        if change.effective_on and change.effective_on > today:
            if change.status == ChangeStatus.APPROVED:
                _set(change, ChangeStatus.SCHEDULED, actor=actor, channel=channel,
                     reason=f"applies from {change.effective_on}")  # fmt: skip
            return change
        d = change.details
        if change.kind == ChangeKind.LOAD_CHANGE:
            customers.change_sanctioned_load(actor=actor, channel=channel, account=account, load=d["load"],
                                             unit=d["unit"], supply_type=d["supply_type"])  # fmt: skip
            account.refresh_from_db()
            change.outcome = {
                **change.outcome,
                "key_account_manager": account.key_account_manager.get_username()
                if account.key_account_manager_id
                else None,
                "meter_change_needed": d.get("meter_change", False),
            }
        elif change.kind == ChangeKind.CATEGORY_CHANGE:
            customers.change_category(actor=actor, channel=channel, account=account, category=d["category"],
                                      sub_category=d["sub_category"])  # fmt: skip
        elif change.kind == ChangeKind.NAME_CHANGE:
            holder = customers.register_consumer(
                actor=actor, channel=channel, name=d["name"], applicant_type=d["applicant_type"],
                preferred_language=account.consumer.preferred_language,
            )  # fmt: skip
            customers.transfer_account(actor=actor, channel=channel, account=account, consumer=holder,
                                       reason=f"request {change.number}")  # fmt: skip
            change.outcome = {**change.outcome, "new_consumer": holder.pk, "dues_carried": str(
                max(billing_ledger.balance(account=account), Decimal(0)))}  # fmt: skip
        change.applied_at = clock.now()
        _set(change, ChangeStatus.APPLIED, actor=actor, channel=channel, extra=["applied_at", "outcome"])
        _tell(change, outcome="done", key=f"change:{change.number}:applied")
    return change


# --- orders: disconnection and reconnection ------------------------------------------------------------


def _smart(account: Account) -> bool:
    from urja.metering import selectors as metering

    inst = metering.current_installation(account)
    return bool(inst and inst.meter.is_smart)


def _order(
    account: Account, *, kind: str, reason: str, to: str, actor, channel: str, change: ChangeRequest | None = None
) -> Order:
    """Open an order: a smart meter gets the remote command at once (status sent), else the section's
    field queue (open). Reconnections are due within the working hours of the SoP's reconnection row."""
    from urja.metering import services as metering

    if Order.objects.filter(account=account, kind=kind, status__in=[OrderStatus.OPEN, OrderStatus.SENT]).exists():
        raise refuse("order_open", error=Conflict, kind=label(kind))
    now = clock.now()
    due = None
    if kind == OrderKind.RECONNECT:
        due = sla.due_at(now, sla.Timeline("working_hours", _reconnection_hours()), account.section.calendar())
    order = Order.objects.create(
        number=_number("order"),
        kind=kind,
        account=account,
        office_path=account.office_path,
        reason=reason,
        account_status=to,
        created_at=now,
        due_at=due,
        change_request=change,
    )
    record_audit(actor=actor, channel=channel, action="connection.order_opened", obj=order,
                 changes={"kind": kind, "reason": reason})  # fmt: skip
    if _smart(account) and reason != "permanent":  # a permanent one removes the meter: field work
        command = metering.send_command(
            command=kind, actor=actor, channel=channel, account=account, idempotency_key=f"order:{order.number}"
        )
        order.command_id = command.command_id
        transition(order, ORDER_STATUS, OrderStatus.SENT, actor=actor, channel=channel, extra_fields=["command_id"])
    return order


def _reconnection_hours() -> int:
    """The SoP schedule's reconnection timeline (4 working hours, Supply Code reg 183)."""
    for t in _sop_document().get("types", []):
        if t["code"] == "reconnection":
            for sub in t.get("subtypes", []):
                if sub["code"] == "reconnection":
                    return int(sub["value"])
    return 4


def complete_order(
    *, actor, channel: str, order: Order, photo=None, notes: str = "", final_kwh: object = None
) -> Order:
    """Field work done (photo proof) or the meter's acknowledgement seen: the account status follows.
    A permanent disconnection also removes the meter (special reading), bills the final bill, sets the
    deposit against the dues and refunds the rest, and closes the request."""
    channel = _channel(channel)
    with transaction.atomic():
        order = (
            Order.objects.select_for_update(of=("self",)).select_related("account", "change_request").get(pk=order.pk)
        )
        ORDER_STATUS.check(order.status, OrderStatus.DONE)
        if order.status == OrderStatus.OPEN and not photo:
            raise refuse("photo_required")
        account = order.account
        now = clock.now()
        if order.kind == OrderKind.RECONNECT and billing_ledger.balance(account=account) > 0:
            raise refuse("dues_unpaid")
        order.done_at = now
        order.notes = boundary.clean_text(notes, name="notes", max_length=500)
        if photo:
            order.photo = photo
        order.done_by = actor if getattr(actor, "pk", None) else None
        transition(order, ORDER_STATUS, OrderStatus.DONE, actor=actor, channel=channel,
                   extra_fields=["done_at", "notes", "photo", "done_by"])  # fmt: skip
        account = order.account = customers.change_account_status(
            actor=actor,
            channel=channel,
            account=account,
            status=order.account_status,
            reason=f"order {order.number} ({order.reason})",
        )
        if order.kind == OrderKind.DISCONNECT and order.reason == "non_payment":
            _charge_reconnection_fee(account, order=order, actor=actor, channel=channel)
        if order.account_status == AccountStatus.PERMANENTLY_DISCONNECTED:
            _close_account(order, actor=actor, channel=channel, final_kwh=final_kwh)
        if order.kind == OrderKind.RECONNECT:
            _compensate_reconnection(order)
        if order.change_request_id and order.change_request.status != ChangeStatus.APPLIED:
            change = order.change_request
            change.applied_at = now
            _set(change, ChangeStatus.APPLIED, actor=actor, channel=channel, extra=["applied_at"])
        _tell_supply(order)
    return order


def _tell_supply(order: Order) -> None:
    from urja.notifications import services as notifications

    account = order.account
    action = {"disconnect": "disconnected", "reconnect": "restored"}[order.kind]
    amount = billing_ledger.balance(account=account) if order.reason == "non_payment" else None

    def send():
        try:
            notifications.notify(event="connection.supply_changed", consumer=account.consumer, account=account,
                                 context={"action": action, "at": order.done_at, "amount": amount},
                                 idempotency_key=f"order:{order.number}:done")  # fmt: skip
        except Exception:
            import logging

            logging.getLogger(__name__).exception("message for order %s failed", order.number)

    transaction.on_commit(send)


def reconnection_fee(account: Account) -> Decimal:
    key = rules.fee_key(data(), supply_type=account.supply_type, category=account.category, which="reconnection")
    return fee_in_force(key=key, on=timezone.localdate(clock.now()))[1]


def _charge_reconnection_fee(account: Account, *, order: Order, actor, channel: str) -> None:
    billing_ledger.post_entry(
        account=account,
        entry_type=EntryType.CHARGE,
        amount=reconnection_fee(account),
        description=f"Reconnection charge (tariff order [fees]), order {order.number}",
        actor=actor,
        channel=channel,
        reference_type="connection_order",
        reference_id=order.number,
        idempotency_key=f"order:{order.number}:reconnection_fee",
        due_date=timezone.localdate(clock.now()),
    )


def _close_account(order: Order, *, actor, channel: str, final_kwh: object) -> None:
    from urja.billing import services as billing
    from urja.metering import services as metering
    from urja.metering.models import Reading
    from urja.metering.selectors import current_installation
    from urja.payments import services as payments

    account = order.account
    change = order.change_request
    reading = final_kwh if final_kwh not in (None, "") else (change.details.get("final_kwh") if change else None)
    units = Decimal("0")
    inst = current_installation(account)
    if inst is not None:
        last = (
            Reading.objects.filter(account=account, status="actual")
            .order_by("-read_at")
            .values_list("kwh", flat=True)
            .first()
        )
        base = last if last is not None else inst.initial_kwh
        units = max(Decimal(str(reading or base)) - Decimal(str(base)), Decimal(0))
        metering.remove_meter(account=account, actor=actor, channel=channel, final_kwh=reading or base,
                              reason=f"permanent disconnection {order.number}")  # fmt: skip
    today = timezone.localdate(clock.now())
    bill = billing.final_bill(account=account, closing_kwh_units=units, disconnected_on=today, actor=actor,
                              channel=channel)  # fmt: skip
    deposits.apply_to_dues(account=account, reason=f"permanent disconnection {order.number}", actor=actor,
                           channel=channel)  # fmt: skip
    credit = -billing_ledger.balance(account=account)
    if credit > 0:
        payments.refund(actor=actor, consumer_number=account.consumer_number, amount=credit,
                        reason=f"deposit refunded after final bill {bill.bill_number}",
                        idempotency_key=f"close:{order.number}")  # fmt: skip
    if change is not None:
        change.outcome = {"final_bill": bill.bill_number, "final_units": str(units), "refunded": str(max(credit, 0))}
        change.save(update_fields=["outcome"])


def _compensate_reconnection(order: Order) -> None:
    credit = credit_late(
        rule_key=data()["lateness"]["reconnection_compensation"],
        account=order.account,
        supply_type=order.account.supply_type,
        due=order.due_at,
        done=order.done_at,
        what=f"reconnection {order.number}",
        reference_type="connection_order",
        reference_id=order.number,
        idempotency_key=f"compensation:order:{order.pk}",
    )
    if credit is not None:
        order.compensation = credit.amount
        order.save(update_fields=["compensation"])


def request_reconnection(*, actor, channel: str, account: Account) -> Order:
    """Dues plus the reconnection charge paid → a reconnection order due within 4 working hours."""
    channel = _channel(channel)
    if account.status != AccountStatus.TEMPORARILY_DISCONNECTED:
        raise refuse("not_disconnected", error=Conflict)
    dues = billing_ledger.balance(account=account)
    if dues > 0:
        raise refuse("reconnect_dues_unpaid", code="dues_unpaid", dues=dues, details={"dues": str(dues)})
    with transaction.atomic():
        return _order(account, kind=OrderKind.RECONNECT, reason="paid", to=AccountStatus.ACTIVE, actor=actor,
                      channel=channel)  # fmt: skip


def order_disconnection(*, actor, channel: str, account: Account, reason: str = "non_payment") -> Order:
    """Staff open a disconnection order for an account whose notice has expired (or the sweep does)."""
    channel = _channel(channel)
    if account.status != AccountStatus.ACTIVE:
        raise refuse("not_active", error=Conflict)
    if reason != "non_payment":
        raise refuse("invalid_reason")
    if billing_ledger.balance(account=account) <= 0:
        raise refuse("nothing_due")
    with transaction.atomic():
        return _order(account, kind=OrderKind.DISCONNECT, reason=reason, to=AccountStatus.TEMPORARILY_DISCONNECTED,
                      actor=actor, channel=channel)  # fmt: skip


def disconnect_for_non_payment(*, actor=None, channel: str = "system", today: date | None = None) -> int:
    """Notices that have expired (payments' disconnection list) become disconnection orders."""
    from urja.payments import selectors as payments

    made = 0
    for case in payments.disconnection_list(today=today):
        account = case.account
        if account.status != AccountStatus.ACTIVE:
            continue
        if Order.objects.filter(account=account, kind=OrderKind.DISCONNECT, status__in=["open", "sent"]).exists():
            continue
        with transaction.atomic():
            _order(account, kind=OrderKind.DISCONNECT, reason="non_payment", to=AccountStatus.TEMPORARILY_DISCONNECTED,
                   actor=actor, channel=channel)  # fmt: skip
        made += 1
    return made


def reconnect_paid(*, actor=None, channel: str = "system") -> int:
    """Accounts disconnected for non-payment whose dues and charge are now paid get their order."""
    made = 0
    done = Order.objects.filter(kind=OrderKind.DISCONNECT, reason="non_payment", status=OrderStatus.DONE)
    for account in Account.objects.filter(
        status=AccountStatus.TEMPORARILY_DISCONNECTED, connection_orders__in=done
    ).distinct():
        if Order.objects.filter(account=account, kind=OrderKind.RECONNECT, status__in=["open", "sent"]).exists():
            continue
        if billing_ledger.balance(account=account) > 0:
            continue
        request_reconnection(actor=actor, channel=channel, account=account)
        made += 1
    return made


def acknowledge_commands() -> int:
    """Remote orders whose meter command was acknowledged are done; a failed one goes to the field."""
    from urja.metering.models import MeterCommand

    moved = 0
    for order in Order.objects.filter(status=OrderStatus.SENT).select_related("account"):
        command = MeterCommand.objects.filter(command_id=order.command_id).first()
        if command is None:
            continue
        if command.status == "acknowledged":
            complete_order(actor=None, channel="system", order=order, notes="remote: meter acknowledged")
            moved += 1
        elif command.status in ("failed", "timed_out", "cancelled"):
            transition(order, ORDER_STATUS, OrderStatus.OPEN, actor=None, channel="system",
                       reason=f"remote command {command.status}: field work")  # fmt: skip
            moved += 1
    return moved


def end_temporary_connections(*, today: date | None = None) -> int:
    """Temporary connections past their end date are disconnected (a field order)."""
    from .models import Application

    today = today or timezone.localdate(clock.now())
    made = 0
    for app in Application.objects.filter(
        kind=Application.Kind.TEMPORARY, status="energized", temporary_until__lt=today, account__status="active"
    ).select_related("account"):
        if Order.objects.filter(account=app.account, kind=OrderKind.DISCONNECT, status__in=["open", "sent"]).exists():
            continue
        with transaction.atomic():
            _order(app.account, kind=OrderKind.DISCONNECT, reason="temporary_ended",
                   to=AccountStatus.PERMANENTLY_DISCONNECTED, actor=None, channel="system")  # fmt: skip
        made += 1
    return made


def run_due_work() -> dict:
    """The periodic job: changes that are due, orders from expired notices and paid dues, remote
    acknowledgements, temporary connections past their end date."""
    applied = 0
    for change in ChangeRequest.objects.filter(status__in=[ChangeStatus.APPROVED, ChangeStatus.SCHEDULED]).exclude(
        kind__in=SHIFTING_KINDS
    ):
        before = change.status
        if apply_if_due(change=change).status != before:
            applied += 1
    return {
        "changes": applied,
        "shifting_paid": shifting.settle_payments(),
        "disconnections": disconnect_for_non_payment(),
        "reconnections": reconnect_paid(),
        "remote": acknowledge_commands(),
        "temporary_ended": end_temporary_connections(),
    }
