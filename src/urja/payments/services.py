"""Payment services: the only code that changes payments state.

Every money movement goes to the ledger (urja.billing.ledger.post_entry) inside the same
transaction that records the payment, with the account row locked (select_for_update), and with an
idempotency key derived from the channel's own unique key, so a replay posts once and parallel
payments keep the balance exact.
"""

from __future__ import annotations

import json
import logging
import secrets
import time as time_mod
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_FLOOR, Decimal
from urllib.parse import urlencode

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Q, Sum
from django.utils import timezone

from urja.billing import bulk, ledger
from urja.billing import services as billing_services
from urja.billing.models import EntryType, LedgerEntry
from urja.core import regdata, scope
from urja.core.errors import Conflict, DomainError, Forbidden, NotFound
from urja.core.models import Role, StaffProfile
from urja.core.money import MoneyError, paise, parse_amount
from urja.core.permissions import role_of
from urja.core.services import allocate_numbers, record_audit
from urja.core.states import transition
from urja.customers.models import Account, AccountStatus

from . import allocation as alloc
from . import prepaid_rules, seams, signing
from .models import (
    CASHIER_SESSION_STATUS,
    COLLECTION_STATUS,
    GATEWAY_ORDER_STATUS,
    PAYMENT_STATUS,
    WALLET_SUPPLY,
    AdvanceInterestRun,
    CashDeposit,
    CashierSession,
    CollectionCase,
    GatewayEvent,
    GatewayOrder,
    ImportBatch,
    PaygDevice,
    PaygToken,
    Payment,
    PaymentChannel,
    PaymentMethod,
    PaymentStatus,
    PrepaidCharge,
    PrepaidWallet,
    SuspenseCode,
)

log = logging.getLogger(__name__)

# Channel of the audit trail (core.Channel) for each payment channel.
AUDIT_CHANNEL = {
    PaymentChannel.COUNTER: "care_centre",
    PaymentChannel.FIELD_AGENT: "field_agent",
    PaymentChannel.ONLINE: "website",
    PaymentChannel.UPI: "website",
    PaymentChannel.WALLET: "app",
    PaymentChannel.CARD: "care_centre",
    PaymentChannel.ATP: "care_centre",
    PaymentChannel.FILE: "import",
}
# Which methods each channel accepts.
CHANNEL_METHODS = {
    PaymentChannel.COUNTER: {
        PaymentMethod.CASH,
        PaymentMethod.CHEQUE,
        PaymentMethod.DD,
        PaymentMethod.CARD,
        PaymentMethod.UPI,
    },
    PaymentChannel.FIELD_AGENT: {PaymentMethod.CASH, PaymentMethod.CHEQUE, PaymentMethod.DD, PaymentMethod.UPI},
    PaymentChannel.ONLINE: {PaymentMethod.CARD, PaymentMethod.NETBANKING, PaymentMethod.UPI, PaymentMethod.WALLET},
    PaymentChannel.UPI: {PaymentMethod.UPI},
    PaymentChannel.WALLET: {PaymentMethod.WALLET},
    PaymentChannel.CARD: {PaymentMethod.CARD},
    PaymentChannel.ATP: {PaymentMethod.CASH, PaymentMethod.CHEQUE, PaymentMethod.CARD},
    PaymentChannel.FILE: {
        PaymentMethod.BANK,
        PaymentMethod.CASH,
        PaymentMethod.CHEQUE,
        PaymentMethod.UPI,
        PaymentMethod.NETBANKING,
    },
}
INSTRUMENT_METHODS = {PaymentMethod.CHEQUE, PaymentMethod.DD}
COLLECTING_ROLES = {Role.CRE, Role.BILLING_OFFICER, Role.MANAGER, Role.FIELD_AGENT, Role.ADMIN}
SUSPENSE_STATUSES = {AccountStatus.PERMANENTLY_DISCONNECTED}
# Channels where the payer stands in front of the collector (or the machine): money for a closed
# account is refused there, not taken. Money that arrives on its own (gateway, UPI, file) is kept in
# suspense instead, since it has already left the payer.
PAYER_PRESENT_CHANNELS = {PaymentChannel.COUNTER, PaymentChannel.FIELD_AGENT, PaymentChannel.CARD, PaymentChannel.ATP}
# Channels whose money arrives through a gateway order (webhook) or a UPI credit.
GATEWAY_CHANNELS = (PaymentChannel.ONLINE, PaymentChannel.UPI, PaymentChannel.WALLET)


def _data(name: str) -> dict:
    return regdata.load(f"payments/{name}.toml")


def prepaid_rules_data() -> prepaid_rules.Rules:
    return prepaid_rules.Rules.from_data(_data("prepaid"))


# --- validation ----------------------------------------------------------------------------------


def validate_amount(value: object) -> Decimal:
    try:
        amount = parse_amount(value)
    except MoneyError as exc:
        raise DomainError(str(exc), code="invalid_amount", details={"amount": str(value)}) from exc
    limit = Decimal(_data("charges")["limits"]["max_payment"])
    if amount > limit:
        raise DomainError(
            f"amount {amount} is above the single-payment limit {limit}",
            code="amount_too_large",
            details={"limit": str(limit)},
        )
    return amount


def find_account(consumer_number: str) -> Account:
    number = (consumer_number or "").strip().upper()
    account = Account.objects.select_related("consumer", "section").filter(consumer_number=number).first()
    if account is None:
        raise unknown_account(number)
    return account


def unknown_account(number: str) -> NotFound:
    return NotFound(
        f"no account with consumer number {number!r}", code="unknown_account", details={"consumer_number": number}
    )


def _same_or_conflict(existing: Payment, consumer_number: str, amount: Decimal) -> Payment:
    if existing.consumer_number != consumer_number.strip().upper() or existing.amount != amount:
        raise Conflict(
            "this idempotency key was already used for a different payment",
            code="idempotency_key_reused",
            details={"payment": existing.pk, "amount": str(existing.amount)},
        )
    return existing


# --- receipts ------------------------------------------------------------------------------------


def receipt_series(*, channel: str, office) -> tuple[str, str, dict]:
    series = _data("receipts")["series"]
    prefix = series["prefix"][channel]
    code = office.code if office is not None else "HO"
    return f"receipt:{code}:{channel}", series["template"], {"office": code, "prefix": prefix}


def _issue_receipt(payment: Payment) -> None:
    office = payment.office.code if payment.office is not None else None
    [(payment.receipt_number, payment.verification_code)] = issue_receipts(
        channel=payment.channel, rows=[(office, payment.consumer_number, payment.amount, payment.received_at)]
    )


def issue_receipts(*, channel: str, rows: Sequence[tuple[str | None, str, Decimal, datetime]]) -> list[tuple[str, str]]:
    """(receipt number, verification code) for each payment given as (office code or None for head
    office, consumer number, amount, received at): one allocation per office series, so a
    settlement file numbers its rows as the counter numbers one payment."""
    series = _data("receipts")["series"]
    prefix = series["prefix"][channel]
    by_office: dict[str, list[int]] = defaultdict(list)
    for i, row in enumerate(rows):
        by_office[row[0] or "HO"].append(i)
    numbers: list[str] = [""] * len(rows)
    for code, positions in by_office.items():
        allocated = allocate_numbers(
            key=f"receipt:{code}:{channel}",
            template=series["template"],
            count=len(positions),
            fields={"office": code, "prefix": prefix},
        )
        for i, number in zip(positions, allocated, strict=True):
            numbers[i] = number
    days: dict[datetime, date] = {}  # a file has few distinct timestamps
    messages = []
    message = signing.receipt_message
    for (_office, consumer_number, amount, received_at), number in zip(rows, numbers, strict=True):
        day = days.get(received_at)
        if day is None:
            day = days[received_at] = timezone.localdate(received_at)
        messages.append(message(receipt_number=number, consumer_number=consumer_number, amount=amount, day=day))
    return list(zip(numbers, signing.receipt_codes(messages, key=signing.receipt_key()), strict=True))


@dataclass(frozen=True)
class ReceiptCheck:
    valid: bool
    reason: str
    receipt_number: str
    consumer_number: str = ""
    amount: Decimal | None = None
    day: date | None = None
    status: str = ""


def verify_receipt(*, receipt_number: str, code: str, amount: object | None = None) -> ReceiptCheck:
    """Check a (paper) receipt: the number must exist, the code must be the utility's signature of
    that receipt, and — if given — the amount printed must be the amount received."""
    number = (receipt_number or "").strip().upper()
    payment = Payment.objects.filter(receipt_number=number).first()
    if payment is None:
        return ReceiptCheck(False, "unknown_receipt", number)
    day = timezone.localdate(payment.received_at)
    expected = signing.receipt_code(
        receipt_number=number,
        consumer_number=payment.consumer_number,
        amount=payment.amount,
        day=day,
        key=signing.receipt_key(),
    )
    if not signing.codes_match(expected, code or ""):
        return ReceiptCheck(False, "code_mismatch", number)
    if amount not in (None, ""):
        try:
            printed = paise(amount)
        except MoneyError:
            return ReceiptCheck(False, "amount_mismatch", number)
        if printed != payment.amount:
            return ReceiptCheck(False, "amount_mismatch", number)
    masked = payment.consumer_number[:3] + "*" * max(len(payment.consumer_number) - 6, 0) + payment.consumer_number[-3:]
    return ReceiptCheck(True, "ok", number, masked, payment.amount, day, payment.status)


# --- taking a payment ----------------------------------------------------------------------------


def _open_session(actor) -> CashierSession | None:
    if not getattr(actor, "pk", None):
        return None
    return CashierSession.objects.filter(cashier=actor, status=CashierSession.Status.OPEN).first()


def cash_in_hand(*, agent) -> Decimal:
    """Cash a field agent has collected and not yet deposited."""
    collected = Payment.objects.filter(
        collected_by=agent,
        channel__in=PAYER_PRESENT_CHANNELS - {PaymentChannel.COUNTER},  # counter cash is the session's
        method=PaymentMethod.CASH,
        status__in=[PaymentStatus.POSTED, PaymentStatus.IN_SUSPENSE, PaymentStatus.REFUNDED],
    ).aggregate(t=Sum("amount"))["t"] or Decimal(0)
    deposited = CashDeposit.objects.filter(agent=agent).aggregate(t=Sum("amount"))["t"] or Decimal(0)
    return paise(collected - deposited)


def _check_cash_limit(*, agent, amount: Decimal) -> None:
    profile = StaffProfile.objects.select_for_update().filter(user=agent).first()
    if profile is None or profile.cash_limit is None:
        return
    in_hand = cash_in_hand(agent=agent)
    if in_hand + amount > profile.cash_limit:
        raise DomainError(
            f"cash in hand {in_hand} + {amount} would exceed the limit {profile.cash_limit}; deposit first",
            code="cash_limit_exceeded",
            details={"in_hand": str(in_hand), "limit": str(profile.cash_limit), "amount": str(amount)},
        )


def allocation_order() -> tuple[list[str], dict[str, list[str]]]:
    data = _data("allocation")["allocation"]
    return list(data["order"]), {k: list(v) for k, v in data["entry_types"].items()}


def allocate_on_ledger(*, account, amount: Decimal, today: date, exclude_entry: int | None = None) -> alloc.Allocation:
    """How `amount` is split over what `account` owes now (replaying earlier credits)."""
    order, entry_types = allocation_order()
    rows = LedgerEntry.objects.filter(account=account).order_by("posted_at", "id")
    if exclude_entry:
        rows = rows.exclude(pk=exclude_entry)
    entries = [
        (pk, etype, amt, due, timezone.localdate(posted))
        for pk, etype, amt, due, posted in rows.values_list("pk", "entry_type", "amount", "due_date", "posted_at")
    ]
    items, _credit = alloc.open_items(entries, today=today, order=order, entry_types=entry_types)
    return alloc.allocate(amount, items, order)


def ledger_balances(account_ids) -> dict[int, Decimal]:
    """What each account owes now (0 for an account with no entries), in one query."""
    ids = list(account_ids)
    out = dict.fromkeys(ids, Decimal("0.00"))
    rows = bulk.select_in(
        "SELECT account_id, SUM(amount) FROM billing_ledgerentry WHERE account_id {in} GROUP BY account_id", ids
    )
    # PostgreSQL sums the numeric(…, 2) column exactly; SQLite's raw SUM may come back as a float
    out.update(rows if connection.vendor == "postgresql" else ((pk, paise(total)) for pk, total in rows))
    return out


def allocate_payments(
    *, payments: Sequence[tuple[int, Decimal, date]], balances: dict[int, Decimal]
) -> list[alloc.Allocation]:
    """How each payment (account id, amount, day), posted one after the other, is split over what
    its account owes then — what `allocate_on_ledger` gives for each at the time it is posted.
    `balances` are the accounts' balances before the first. An account that owes nothing has no
    open item (allocation.open_items), so its payment is all advance without reading its history;
    only the histories of accounts that owe are read, in one query."""
    order, entry_types = allocation_order()
    owing = [pk for pk, balance in balances.items() if balance > 0]
    histories: dict[int, list] = defaultdict(list)
    for start in range(0, len(owing), 5000):
        for account_id, pk, etype, amt, due, posted in (
            LedgerEntry.objects.filter(account_id__in=owing[start : start + 5000])
            .order_by("account_id", "posted_at", "id")
            .values_list("account_id", "pk", "entry_type", "amount", "due_date", "posted_at")
        ):
            histories[account_id].append((pk, etype, amt, due, timezone.localdate(posted)))
    running = dict(balances)
    out = []
    for account_id, amount, day in payments:
        owed = running.get(account_id, Decimal(0))
        if owed > 0:
            items, _credit = alloc.open_items(histories[account_id], today=day, order=order, entry_types=entry_types)
            split = alloc.allocate(amount, items, order)
            # the next payment of the account is split after this one
            histories[account_id].append((0, EntryType.PAYMENT, -amount, None, day))
        else:
            split = alloc.Allocation((), amount)
        running[account_id] = owed - amount
        out.append(split)
    return out


def take_payment(
    *,
    actor,
    channel: str,
    consumer_number: str,
    amount: object,
    idempotency_key: str,
    method: str = PaymentMethod.CASH,
    reference: str = "",
    instrument_number: str = "",
    instrument_bank: str = "",
    instrument_date: date | None = None,
    received_at: datetime | None = None,
    office=None,
    suspense_reason: str = "",
    suspense_code: str = "",
    notify: bool = True,
) -> Payment:
    """Receive money for an account. A repeat with the same (channel, key) returns the first payment.

    A permanently disconnected account takes only its final dues where the payer is present (counter,
    field agent, card, ATP; more is refused, `account_closed`); money that arrives on its own for one
    (gateway, UPI) is put in suspense, as is money with a caller-given `suspense_reason` (no ledger
    entry; kept for review).
    """
    value = validate_amount(amount)
    if channel not in PaymentChannel.values:
        raise DomainError(f"unknown channel {channel!r}", code="unknown_channel")
    key = (idempotency_key or "").strip()
    if not key or len(key) > 100:
        raise DomainError("an idempotency key (1–100 characters) is required", code="idempotency_key_required")
    if method not in CHANNEL_METHODS[channel]:
        raise DomainError(
            f"{channel} does not take {method}",
            code="method_not_allowed",
            details={"allowed": sorted(CHANNEL_METHODS[channel])},
        )
    if method in INSTRUMENT_METHODS and not instrument_number.strip():
        raise DomainError("cheque / DD number is required", code="instrument_required")
    # A person takes the money on these channels: the role must collect on this channel
    # (data/core/permissions.toml [collect]); a kiosk or card terminal without a signed-in
    # collector (actor None) is the machine itself.
    collector = channel in PAYER_PRESENT_CHANNELS and (
        channel in (PaymentChannel.COUNTER, PaymentChannel.FIELD_AGENT) or getattr(actor, "pk", None)
    )
    if collector:
        scope.check_collect(actor, channel=channel)
    number = (consumer_number or "").strip().upper()
    existing = Payment.objects.filter(channel=channel, idempotency_key=key).first()
    if existing is not None:
        return _same_or_conflict(existing, number, value)
    account = find_account(number)
    if collector and not scope.may_collect_for(actor, account, channel=channel):
        # the same answer as an unknown number: an agent learns nothing about other sections
        raise unknown_account(number)
    try:
        with transaction.atomic():
            account = Account.objects.select_for_update().select_related("consumer", "section").get(pk=account.pk)
            existing = Payment.objects.filter(channel=channel, idempotency_key=key).first()
            if existing is not None:  # a concurrent replay won the race
                return _same_or_conflict(existing, number, value)
            closed = account.status in SUSPENSE_STATUSES
            if closed and channel in PAYER_PRESENT_CHANNELS:
                _check_final_dues(account=account, amount=value)
            session = None
            if channel == PaymentChannel.COUNTER:
                session = _open_session(actor)
                if session is None:
                    raise DomainError("open a cashier session first", code="no_open_session")
                office = office or session.office
            if collector and method == PaymentMethod.CASH and scope.cash_limited(actor):
                _check_cash_limit(agent=actor, amount=value)  # on every channel the collector takes cash
            if office is None and getattr(actor, "pk", None):
                profile = getattr(actor, "staff", None)
                office = getattr(profile, "office", None) if profile else None
            payment = Payment(
                channel=channel,
                method=method,
                idempotency_key=key,
                account=account,
                consumer_number=account.consumer_number,
                amount=value,
                received_at=received_at or timezone.now(),
                reference=reference[:64],
                instrument_number=instrument_number.strip()[:20],
                instrument_bank=instrument_bank[:80],
                instrument_date=instrument_date,
                office=office or account.section,
                collected_by=actor if getattr(actor, "pk", None) else None,
                session=session,
            )
            _issue_receipt(payment)
            payment.save()
            if closed and channel not in PAYER_PRESENT_CHANNELS:
                reason = f"account is {account.get_status_display().lower()}"
                _to_suspense(payment, reason=reason, code=SuspenseCode.ACCOUNT_CLOSED, actor=actor)
            elif suspense_reason:
                _to_suspense(payment, reason=suspense_reason, code=suspense_code or SuspenseCode.MANUAL, actor=actor)
            else:
                _post(payment, account=account, actor=actor)
    except IntegrityError:
        existing = Payment.objects.filter(channel=channel, idempotency_key=key).first()
        if existing is None:
            raise
        return _same_or_conflict(existing, number, value)
    if notify:
        _notify_received(payment)
    return payment


def _check_final_dues(*, account: Account, amount: Decimal) -> None:
    """A permanently disconnected account takes, from a payer in front of us, its final dues and no
    more: a closed account holds no advance, and money for one is usually a mistyped number."""
    dues = ledger.balance(account=account)
    if amount > dues:
        owed = max(dues, Decimal("0.00"))
        raise DomainError(
            f"connection {account.consumer_number} is permanently disconnected: "
            + (f"only its final dues of {owed} can be paid" if owed > 0 else "nothing is due on it"),
            code="account_closed",
            details={"consumer_number": account.consumer_number, "status": account.status, "dues": str(owed)},
        )


def _to_suspense(payment: Payment, *, reason: str, code: str, actor) -> None:
    PAYMENT_STATUS.check(payment.status, PaymentStatus.IN_SUSPENSE)
    payment.suspense_reason = reason[:200]
    payment.suspense_code = code
    transition(
        payment,
        PAYMENT_STATUS,
        PaymentStatus.IN_SUSPENSE,
        actor=actor,
        channel=AUDIT_CHANNEL[payment.channel],
        action="payment.suspense",
        extra_fields=["suspense_reason", "suspense_code"],
        changes={
            "amount": payment.amount,
            "consumer_number": payment.consumer_number,
            "code": code,
            "reason": reason,
        },
    )


def _hold_in_suspense(
    *,
    channel: str,
    idempotency_key: str,
    amount: Decimal,
    method: str,
    account: Account | None,
    consumer_number: str = "",
    reference: str = "",
    code: str,
    reason: str,
) -> Payment:
    """Record money already received that cannot be posted (no account, or posting refused): a
    payment in suspense with its receipt and reason, no ledger entry. A repeat of the key returns
    the first payment (so a concurrent duplicate delivery keeps one)."""
    try:
        with transaction.atomic():
            payment = Payment(
                channel=channel,
                method=method,
                idempotency_key=idempotency_key,
                account=account,
                consumer_number=(account.consumer_number if account else consumer_number.strip().upper())[:20],
                amount=amount,
                received_at=timezone.now(),
                reference=reference[:64],
                office=account.section if account else None,
            )
            _issue_receipt(payment)
            payment.save()
            _to_suspense(payment, reason=reason, code=code, actor=None)
    except IntegrityError:
        existing = Payment.objects.filter(channel=channel, idempotency_key=idempotency_key).first()
        if existing is None:
            raise
        return existing
    return payment


def _post(payment: Payment, *, account: Account, actor) -> None:
    """Post a pending payment (account row already locked by the caller)."""
    PAYMENT_STATUS.check(payment.status, PaymentStatus.POSTED)
    today = timezone.localdate(payment.received_at)
    # the same steps as a settlement file's rows (settlement._post_chunk), for one payment
    [split] = allocate_payments(
        payments=[(account.pk, payment.amount, today)], balances={account.pk: ledger.balance(account=account)}
    )
    entry = ledger.post_entry(
        account=account,
        entry_type=EntryType.PAYMENT,
        amount=-payment.amount,
        description=f"Payment {payment.receipt_number or ''} ({payment.get_channel_display()})".strip(),
        actor=actor,
        channel=AUDIT_CHANNEL[payment.channel],
        reference_type="payment",
        reference_id=str(payment.pk),
        idempotency_key=f"pay:{payment.channel}:{payment.idempotency_key}",
        posted_at=payment.received_at,
    )
    payment.ledger_entry = entry
    payment.posted_at = timezone.now()
    payment.allocation = split.as_json()
    if account.is_prepaid:
        _after_prepaid_recharge(payment, account=account, actor=actor)
    else:  # a bill paid in full earns its conditional rebates (by the due date, digitally)
        billing_services.rebates_on_payment(
            account=account,
            paid_on=today,
            digital=payment.method in _data("charges")["digital_payment"]["methods"],
            actor=actor,
            channel=AUDIT_CHANNEL[payment.channel],
        )
    payment.balance_after = ledger.balance(account=account)
    transition(
        payment,
        PAYMENT_STATUS,
        PaymentStatus.POSTED,
        actor=actor,
        channel=AUDIT_CHANNEL[payment.channel],
        action="payment.posted",
        extra_fields=["ledger_entry", "posted_at", "allocation", "balance_after", "payg_token"],
        changes={"amount": payment.amount, "receipt": payment.receipt_number, "ledger_entry": entry.pk},
    )
    settle_collection_cases(settled={account.pk: (payment.balance_after, today)})


def _notify_received(payment: Payment) -> None:
    if payment.account_id is None:
        return
    context = {
        "consumer_number": payment.consumer_number,
        "amount": payment.amount,
        "receipt_number": payment.receipt_number,
        "paid_at": payment.received_at,
        "verification_code": payment.verification_code,
    }
    if payment.balance_after is not None:
        context["balance"] = payment.balance_after
    if payment.payg_token:
        context["token"] = payment.payg_token
    seams.notify_consumer(
        event="payment.received",
        consumer=payment.account.consumer,
        context=context,
        idempotency_key=f"payment.received:{payment.pk}",
    )


def resolve_suspense(*, actor, payment: Payment, consumer_number: str, reason: str) -> Payment:
    """After review, post a suspense payment to the right (open) account."""
    if not reason.strip():
        raise DomainError("a reason is required", code="reason_required")
    with transaction.atomic():
        payment = Payment.objects.select_for_update().get(pk=payment.pk)
        PAYMENT_STATUS.check(payment.status, PaymentStatus.POSTED)
        account = find_account(consumer_number)
        account = Account.objects.select_for_update().get(pk=account.pk)
        if account.status in SUSPENSE_STATUSES:
            raise DomainError("cannot post to a permanently disconnected account", code="account_closed")
        payment.account = account
        payment.consumer_number = account.consumer_number
        payment.save(update_fields=["account", "consumer_number"])
        record_audit(
            actor=actor,
            channel="backoffice",
            action="payment.suspense_resolved",
            obj=payment,
            changes={"account": account.consumer_number, "reason": reason},
        )
        _post(payment, account=account, actor=actor)
    return payment


def refund_suspense(*, actor, payment: Payment, reason: str) -> Payment:
    """Return money held in suspense to the payer (no ledger entry was ever made)."""
    if not reason.strip():
        raise DomainError("a reason is required", code="reason_required")
    with transaction.atomic():
        payment = Payment.objects.select_for_update().get(pk=payment.pk)
        transition(
            payment,
            PAYMENT_STATUS,
            PaymentStatus.REFUNDED,
            actor=actor,
            channel="backoffice",
            action="payment.suspense_refunded",
            reason=reason,
            changes={"amount": payment.amount},
        )
    return payment


# --- cheque bounce and refunds ---------------------------------------------------------------------


def bounce_cheque(*, actor, payment: Payment, reason: str) -> Payment:
    """A dishonoured cheque / DD: reverse the payment and levy the bounce charge (data)."""
    if not reason.strip():
        raise DomainError("a reason is required", code="reason_required")
    charge = Decimal(_data("charges")["cheque_bounce"]["charge"])
    with transaction.atomic():
        payment = Payment.objects.select_for_update().get(pk=payment.pk)
        if payment.method not in INSTRUMENT_METHODS:
            raise DomainError("only cheques and demand drafts can bounce", code="not_a_cheque")
        PAYMENT_STATUS.check(payment.status, PaymentStatus.REVERSED)
        account = Account.objects.select_for_update().get(pk=payment.account_id)
        ledger.reverse_entry(
            entry=payment.ledger_entry,
            reason=f"cheque {payment.instrument_number} dishonoured: {reason}",
            actor=actor,
            channel="backoffice",
        )
        if charge > 0:
            ledger.post_entry(
                account=account,
                entry_type=EntryType.CHARGE,
                amount=charge,
                description=f"Cheque dishonour charge (cheque {payment.instrument_number})",
                actor=actor,
                channel="backoffice",
                reference_type="payment",
                reference_id=str(payment.pk),
                idempotency_key=f"bounce:{payment.pk}",
            )
        payment.balance_after = ledger.balance(account=account)
        transition(
            payment,
            PAYMENT_STATUS,
            PaymentStatus.REVERSED,
            actor=actor,
            channel="backoffice",
            action="payment.cheque_bounced",
            reason=reason,
            extra_fields=["balance_after"],
            changes={"amount": payment.amount, "charge": charge},
        )
    return payment


def refund(*, actor, consumer_number: str, amount: object, reason: str, idempotency_key: str) -> LedgerEntry:
    """Pay back part or all of an advance (credit balance) to the consumer."""
    value = validate_amount(amount)
    if not reason.strip():
        raise DomainError("a reason is required", code="reason_required")
    account = find_account(consumer_number)
    with transaction.atomic():
        account = Account.objects.select_for_update().get(pk=account.pk)
        done = LedgerEntry.objects.filter(idempotency_key=f"refund:{idempotency_key}").first()
        if done is not None:
            if done.account_id != account.pk or done.amount != value:
                raise Conflict("this idempotency key was used for a different refund", code="idempotency_key_reused")
            return done
        credit = -ledger.balance(account=account)
        if value > credit:
            raise DomainError(
                f"refund {value} is more than the credit {max(credit, Decimal(0))}",
                code="refund_exceeds_credit",
                details={"credit": str(max(credit, Decimal(0)))},
            )
        return ledger.post_entry(
            account=account,
            entry_type=EntryType.REFUND,
            amount=value,
            description=f"Refund: {reason}",
            actor=actor,
            channel="backoffice",
            reference_type="refund",
            reference_id=idempotency_key,
            idempotency_key=f"refund:{idempotency_key}",
        )


# --- advance interest ---------------------------------------------------------------------------


def _period_bounds(period: str) -> tuple[datetime, datetime, int]:
    try:
        year, month = (int(p) for p in period.split("-"))
        start_day = date(year, month, 1)
    except ValueError as exc:
        raise DomainError(f"period must be YYYY-MM, got {period!r}", code="invalid_period") from exc
    end_day = date(year + (month == 12), month % 12 + 1, 1)
    tz = timezone.get_current_timezone()
    return (
        datetime.combine(start_day, datetime.min.time(), tz),
        datetime.combine(end_day, datetime.min.time(), tz),
        (end_day - start_day).days,
    )


def accrue_advance_interest(*, period: str, now: datetime | None = None) -> AdvanceInterestRun:
    """Credit interest on advances for a month (simple interest on the smallest advance held during
    the month). Idempotent: once per period; a run killed half-way resumes without doubling."""
    start, end, days = _period_bounds(period)
    if (now or timezone.now()) < end:
        raise DomainError(f"period {period} has not ended yet", code="period_not_ended")
    done = AdvanceInterestRun.objects.filter(period=period).first()
    if done is not None:
        return done
    data = _data("charges")["advance_interest"]
    rate = Decimal(data["annual_rate_percent"]) / 100
    minimum = Decimal(data["minimum_credit"])
    candidates = (
        LedgerEntry.objects.filter(posted_at__lt=end, account__is_prepaid=False)
        .values("account")
        .annotate(total=Sum("amount"))
        .filter(total__lt=0)
        .values_list("account", flat=True)
    )
    accounts, total = 0, Decimal(0)
    for account_id in candidates.iterator():
        opening = LedgerEntry.objects.filter(account_id=account_id, posted_at__lt=start).exclude(
            entry_type=EntryType.ADVANCE_INTEREST, reference_id=period
        ).aggregate(t=Sum("amount"))["t"] or Decimal(0)
        running, highest = opening, opening
        for amount in (
            LedgerEntry.objects.filter(account_id=account_id, posted_at__gte=start, posted_at__lt=end)
            .order_by("posted_at", "id")
            .values_list("amount", flat=True)
        ):
            running += amount
            highest = max(highest, running)
        advance = -highest  # the smallest credit held throughout the month
        if advance < minimum:
            continue
        interest = paise(advance * rate * days / int(data["day_count"]))
        if interest <= 0:
            continue
        account = Account.objects.get(pk=account_id)
        ledger.post_entry(
            account=account,
            entry_type=EntryType.ADVANCE_INTEREST,
            amount=-interest,
            description=f"Interest on advance {advance} for {period} at {data['annual_rate_percent']}% p.a.",
            reference_type="advance_interest",
            reference_id=period,
            idempotency_key=f"advint:{period}:{account_id}",
            posted_at=end - timedelta(seconds=1),
        )
        accounts += 1
        total += interest
    try:
        with transaction.atomic():
            return AdvanceInterestRun.objects.create(period=period, accounts=accounts, total=total)
    except IntegrityError:
        return AdvanceInterestRun.objects.get(period=period)


# --- cashier sessions, agents, hand-over ------------------------------------------------------------


def open_session(*, actor, opening_balance: object, office=None) -> CashierSession:
    role = role_of(actor)
    if role not in COLLECTING_ROLES - {Role.FIELD_AGENT}:
        raise Forbidden("your role may not run a cash counter", code="role_not_allowed")
    try:
        opening = parse_amount(opening_balance, allow_zero=True)
    except MoneyError as exc:
        raise DomainError(str(exc), code="invalid_amount") from exc
    office = office or getattr(getattr(actor, "staff", None), "office", None)
    if office is None:
        raise DomainError("the cashier has no office", code="office_required")
    try:
        with transaction.atomic():
            session = CashierSession.objects.create(
                cashier=actor, office=office, opened_at=timezone.now(), opening_balance=opening
            )
            record_audit(
                actor=actor,
                channel="care_centre",
                action="cash_session.opened",
                obj=session,
                changes={"opening_balance": opening},
            )
    except IntegrityError as exc:
        raise Conflict("you already have an open session", code="session_already_open") from exc
    return session


def session_totals(session: CashierSession) -> dict:
    rows = (
        session.payments.filter(status__in=[PaymentStatus.POSTED, PaymentStatus.IN_SUSPENSE, PaymentStatus.REVERSED])
        .values("method")
        .annotate(total=Sum("amount"))
    )
    by_method = {row["method"]: paise(row["total"]) for row in rows}
    cash = by_method.get(PaymentMethod.CASH, Decimal("0.00"))
    return {"by_method": by_method, "cash": cash, "expected_cash": paise(session.opening_balance + cash)}


def close_session(*, actor, session: CashierSession, counted_cash: object) -> CashierSession:
    """Close a counter: expected = opening float + cash taken; a shortfall is flagged."""
    try:
        counted = parse_amount(counted_cash, allow_zero=True)
    except MoneyError as exc:
        raise DomainError(str(exc), code="invalid_amount") from exc
    with transaction.atomic():
        session = CashierSession.objects.select_for_update().get(pk=session.pk)
        if session.status != CashierSession.Status.OPEN:
            raise Conflict("the session is already closed", code="session_closed")
        if session.cashier_id != actor.pk and role_of(actor) not in (Role.MANAGER, Role.ADMIN):
            raise Forbidden("only the cashier or a manager closes a session", code="not_your_session")
        totals = session_totals(session)
        cheques = session.payments.filter(method__in=list(INSTRUMENT_METHODS))
        session.expected_cash = totals["expected_cash"]
        session.counted_cash = counted
        session.shortage = paise(totals["expected_cash"] - counted)
        session.cheques_count = cheques.count()
        session.cheques_total = cheques.aggregate(t=Sum("amount"))["t"] or 0
        session.closed_at = timezone.now()
        transition(
            session,
            CASHIER_SESSION_STATUS,
            CashierSession.Status.CLOSED,
            actor=actor,
            channel="care_centre",
            extra_fields=("expected_cash", "counted_cash", "shortage", "cheques_count", "cheques_total", "closed_at"),
            action="cash_session.closed",
            changes={"expected": session.expected_cash, "counted": counted, "shortage": session.shortage},
        )
    return session


def record_deposit(*, actor, agent, amount: object, reference: str) -> CashDeposit:
    """A field agent hands cash over (bank slip / office hand-over): frees cash-in-hand."""
    value = validate_amount(amount)
    if not reference.strip():
        raise DomainError("the bank slip / hand-over reference is required", code="reference_required")
    with transaction.atomic():
        StaffProfile.objects.select_for_update().filter(user=agent).first()
        existing = CashDeposit.objects.filter(agent=agent, reference=reference.strip()).first()
        if existing is not None:
            if existing.amount != value:
                raise Conflict("this reference was used for a different amount", code="deposit_reference_reused")
            return existing
        in_hand = cash_in_hand(agent=agent)
        if value > in_hand:
            raise DomainError(
                f"deposit {value} is more than the cash in hand {in_hand}",
                code="deposit_exceeds_cash",
                details={"in_hand": str(in_hand)},
            )
        deposit = CashDeposit.objects.create(
            agent=agent,
            amount=value,
            deposited_at=timezone.now(),
            reference=reference.strip(),
            received_by=actor if getattr(actor, "pk", None) else None,
        )
        record_audit(
            actor=actor,
            channel="backoffice",
            action="cash.deposited",
            obj=deposit,
            changes={"agent": agent.pk, "amount": value, "reference": reference},
        )
    return deposit


def handover_report(*, day: date, office_path: str = "") -> dict:
    """Per collector for one day: collected by method, deposited, cash in hand; shortages flagged."""
    tz = timezone.get_current_timezone()
    start = datetime.combine(day, datetime.min.time(), tz)
    end = start + timedelta(days=1)
    payments = Payment.objects.filter(
        received_at__gte=start,
        received_at__lt=end,
        collected_by__isnull=False,
        status__in=[PaymentStatus.POSTED, PaymentStatus.IN_SUSPENSE, PaymentStatus.REVERSED],
    )
    if office_path:
        payments = payments.filter(office__path__startswith=office_path)
    rows: dict[int, dict] = {}
    for row in payments.values("collected_by", "collected_by__username", "channel", "method").annotate(
        total=Sum("amount")
    ):
        entry = rows.setdefault(
            row["collected_by"],
            {
                "user_id": row["collected_by"],
                "username": row["collected_by__username"],
                "by_method": {},
                "collected": Decimal("0.00"),
                "cash": Decimal("0.00"),
                "deposited": Decimal("0.00"),
                "sessions": [],
                "flags": [],
            },
        )
        entry["by_method"][row["method"]] = entry["by_method"].get(row["method"], Decimal(0)) + row["total"]
        entry["collected"] += row["total"]
        if row["method"] == PaymentMethod.CASH:
            entry["cash"] += row["total"]
    for deposit in (
        CashDeposit.objects.filter(deposited_at__gte=start, deposited_at__lt=end)
        .values("agent", "agent__username")
        .annotate(total=Sum("amount"))
    ):
        entry = rows.setdefault(
            deposit["agent"],
            {
                "user_id": deposit["agent"],
                "username": deposit["agent__username"],
                "by_method": {},
                "collected": Decimal("0.00"),
                "cash": Decimal("0.00"),
                "deposited": Decimal("0.00"),
                "sessions": [],
                "flags": [],
            },
        )
        entry["deposited"] += deposit["total"]
    for session in CashierSession.objects.filter(opened_at__gte=start, opened_at__lt=end):
        entry = rows.get(session.cashier_id)
        if entry is None:
            continue
        entry["sessions"].append(
            {
                "id": session.pk,
                "status": session.status,
                "expected": session.expected_cash,
                "counted": session.counted_cash,
                "shortage": session.shortage,
            }
        )
        if session.status == CashierSession.Status.OPEN:
            entry["flags"].append("session_not_closed")
        elif session.shortage and session.shortage > 0:
            entry["flags"].append("shortage")
    from django.contrib.auth import get_user_model

    users = get_user_model().objects.in_bulk(list(rows))
    for user_id, entry in rows.items():
        user = users.get(user_id)
        if role_of(user) == Role.FIELD_AGENT:
            entry["in_hand"] = cash_in_hand(agent=user)
            if entry["in_hand"] > 0:
                entry["flags"].append("cash_not_deposited")
        else:  # a counter's cashier: cash taken and not yet deposited
            entry["in_hand"] = paise(max(entry["cash"] - entry["deposited"], Decimal(0)))
    return {"day": day, "collectors": sorted(rows.values(), key=lambda e: e["username"])}


# --- online gateway and UPI ---------------------------------------------------------------------


def create_order(
    *,
    consumer_number: str,
    amount: object,
    channel: str = PaymentChannel.ONLINE,
    gateway: str = "dev",
    anonymous: bool = False,
) -> GatewayOrder:
    """An online / UPI order. For an `anonymous` caller (quick pay without login) the answer does not
    depend on whether the number exists or its connection is closed — a well-formed number (check
    digit right) always gets an order; money for a number no account has, or for a closed connection,
    is held in suspense when it arrives."""
    value = validate_amount(amount)
    if channel not in (PaymentChannel.ONLINE, PaymentChannel.UPI, PaymentChannel.WALLET):
        raise DomainError("orders are for online, UPI and wallet payments", code="unknown_channel")
    if anonymous:
        from urja.customers.services import validate_consumer_number

        number = validate_consumer_number(consumer_number)
        account = Account.objects.filter(consumer_number=number).first()
    else:
        account = find_account(consumer_number)
        number = account.consumer_number
        if account.status in SUSPENSE_STATUSES:
            raise DomainError("this connection is permanently disconnected; contact the office", code="account_closed")
    return GatewayOrder.objects.create(
        reference="UR" + secrets.token_hex(6).upper(),
        gateway=gateway,
        channel=channel,
        account=account,
        consumer_number=number,
        amount=value,
    )


def upi_vpa() -> str:
    import os

    return getattr(settings, "URJA_UPI_VPA", None) or os.environ.get("URJA_UPI_VPA", "urja.discom@upi")


def upi_intent(order: GatewayOrder) -> str:
    """The UPI deep link (NPCI linking spec): shown as a QR and as a 'pay with UPI app' link."""
    params = {
        "pa": upi_vpa(),
        "pn": getattr(settings, "URJA_UTILITY_NAME", "Urja"),
        "am": f"{order.amount:.2f}",
        "cu": "INR",
        "tr": order.reference,
        "tn": f"Electricity {order.consumer_number or order.account.consumer_number}",
    }
    return "upi://pay?" + urlencode(params, safe="@")


@dataclass(frozen=True)
class WebhookResult:
    event_id: str
    outcome: str
    payment_id: int | None
    replay: bool


def handle_webhook(*, gateway: str, body: bytes, signature: str, now: int | None = None) -> WebhookResult:
    """A gateway callback. Signature (HMAC-SHA256 over 't.body') and timestamp are checked first;
    an event id seen before returns the first outcome; a transaction id seen before posts nothing.

    Money the gateway captured is always recorded once a signed event is accepted: posted to the
    account, or — unknown order, closed account, second capture of a paid order, amount mismatch or
    above the limit, posting refused — kept in suspense with its code. Never nothing, never a 5xx."""
    try:
        signing.verify_webhook(
            secret=signing.gateway_secret(gateway),
            header=signature or "",
            body=body,
            now=int(now if now is not None else time_mod.time()),
        )
    except ValueError as exc:
        raise DomainError(f"webhook rejected: {exc}", code="invalid_signature", status=401) from exc
    try:
        event = json.loads(body)
    except ValueError as exc:
        raise DomainError("malformed webhook body", code="malformed_event") from exc
    return process_gateway_event(gateway=gateway, event=event)


def process_gateway_event(*, gateway: str, event: dict) -> WebhookResult:
    """One verified gateway event {id, type: payment.succeeded | payment.failed, data: {order_reference,
    amount, txn_id, method, reason}} through the one capture pipeline — from a signed webhook, a gateway
    adapter's signed callback or its status query (payments.gateways). The caller has checked the
    signature; an event id seen before returns its first outcome."""
    try:
        event_id = str(event["id"])
        kind = str(event["type"])
        data = event["data"]
        reference = str(data["order_reference"])
    except (KeyError, TypeError) as exc:
        raise DomainError("malformed webhook body", code="malformed_event") from exc
    seen = GatewayEvent.objects.filter(gateway=gateway, event_id=event_id).first()
    if seen is not None:
        return _replayed(seen)
    try:
        with transaction.atomic():
            record = GatewayEvent.objects.create(gateway=gateway, event_id=event_id, payload=event, kind=kind[:40])
            order = (
                GatewayOrder.objects.select_for_update(of=("self",))
                .select_related("account__section", "payment")
                .filter(reference=reference.strip().upper(), gateway=gateway)
                .first()
            )
            payment = None
            if kind == "payment.succeeded":
                payment, outcome = _capture(record, gateway=gateway, order=order, reference=reference, data=data)
            elif kind == "payment.failed":
                if order is None:
                    outcome = "unknown_order"
                elif GATEWAY_ORDER_STATUS.can(order.status, GatewayOrder.Status.FAILED):
                    order.failure_reason = str(data.get("reason", ""))[:200]
                    transition(order, GATEWAY_ORDER_STATUS, GatewayOrder.Status.FAILED, actor=None, channel="system",
                               reason=order.failure_reason, extra_fields=("failure_reason",),
                               action="gateway_order.failed")  # fmt: skip
                    outcome = "failed"
                else:  # a failure delivered after the capture (out of order) changes nothing
                    outcome = f"ignored_{order.status}"
            else:
                outcome = "ignored"
            record.outcome = outcome
            record.payment = payment
            record.payload = {**event, "_payment": payment.pk if payment else None}
            record.save(update_fields=["outcome", "payload", "payment", "txn_id", "amount"])
    except IntegrityError:
        seen = GatewayEvent.objects.filter(gateway=gateway, event_id=event_id).first()
        if seen is None:
            raise
        return _replayed(seen)
    return WebhookResult(event_id, outcome, payment.pk if payment else None, False)


def _capture(
    record: GatewayEvent, *, gateway: str, order: GatewayOrder | None, reference: str, data: dict
) -> tuple[Payment, str]:
    """A payment.succeeded event: the captured money as a posted payment or a suspense payment."""
    txn = str(data.get("txn_id") or "").strip()
    if not txn:
        raise DomainError("txn_id is required", code="malformed_event")
    try:
        paid = parse_amount(data.get("amount"))
    except MoneyError as exc:
        raise DomainError(f"malformed amount: {exc}", code="malformed_event") from exc
    record.txn_id, record.amount = txn[:80], paid
    key = f"{gateway}:{txn}"[:100]
    channel = order.channel if order is not None else PaymentChannel.ONLINE
    existing = Payment.objects.filter(channel__in=GATEWAY_CHANNELS, idempotency_key=key).first()
    if existing is not None:  # the same transaction delivered again under a new event id
        return existing, "duplicate"
    method = {PaymentChannel.UPI: PaymentMethod.UPI, PaymentChannel.WALLET: PaymentMethod.WALLET}.get(channel)
    method = method or data.get("method") or PaymentMethod.CARD
    if method not in CHANNEL_METHODS[channel]:
        method = PaymentMethod.CARD
    hold = dict(channel=channel, idempotency_key=key, amount=paid, method=method, reference=txn)
    limit = Decimal(_data("charges")["limits"]["max_payment"])
    if order is None:
        payment = _hold_in_suspense(
            **hold,
            account=None,
            code=SuspenseCode.UNKNOWN_ORDER,
            reason=f"no order {reference} at gateway {gateway}",
        )
        return payment, payment.status
    if order.payment is not None:  # paid already by another transaction: the payer paid twice
        payment = _hold_in_suspense(
            **hold,
            account=order.account,
            code=SuspenseCode.DUPLICATE_CAPTURE,
            reason=f"order {order.reference} already paid by {order.payment.reference or order.payment.pk}",
        )
        return payment, payment.status
    if order.account_id is None:  # an anonymous order for a number no account has
        payment = _hold_in_suspense(
            **hold,
            account=None,
            consumer_number=order.consumer_number,
            code=SuspenseCode.UNKNOWN_ACCOUNT,
            reason=f"no account with consumer number {order.consumer_number}",
        )
    elif paid > limit:
        payment = _hold_in_suspense(
            **hold,
            account=order.account,
            code=SuspenseCode.AMOUNT_TOO_LARGE,
            reason=f"gateway amount {paid} is above the single-payment limit {limit}",
        )
    else:
        mismatch = "" if paid == order.amount else f"gateway amount {paid} differs from order {order.amount}"
        try:
            with transaction.atomic():
                payment = take_payment(
                    actor=None,
                    channel=channel,
                    consumer_number=order.account.consumer_number,
                    amount=paid,
                    idempotency_key=key,
                    method=method,
                    reference=txn,
                    suspense_reason=mismatch,
                    suspense_code=SuspenseCode.AMOUNT_MISMATCH if mismatch else "",
                )
        except DomainError as exc:
            # the money was taken by the gateway: refused postings are kept for review, not dropped
            log.warning("gateway %s txn %s not posted (%s): held in suspense", gateway, txn, exc.code)
            payment = Payment.objects.filter(channel=channel, idempotency_key=key).first() or _hold_in_suspense(
                **hold,
                account=order.account,
                code=SuspenseCode.POSTING_FAILED,
                reason=f"{exc.code}: {exc.message}",
            )
    order.payment = payment
    transition(order, GATEWAY_ORDER_STATUS, GatewayOrder.Status.PAID, actor=None, channel="system",
               extra_fields=("payment",), action="gateway_order.paid", changes={"payment": payment.pk})  # fmt: skip
    return payment, "posted" if payment.status == PaymentStatus.POSTED else payment.status


def _replayed(seen: GatewayEvent) -> WebhookResult:
    return WebhookResult(seen.event_id, seen.outcome, seen.payload.get("_payment"), True)


def dev_gateway_event(*, order: GatewayOrder, outcome: str) -> tuple[bytes, str]:
    """What the development gateway would send for `order` (body, signature header)."""
    if outcome not in ("success", "failure"):
        raise DomainError("outcome is success or failure", code="invalid_outcome")
    txn = "DEV" + secrets.token_hex(6).upper()
    event = {
        "id": "evt_" + secrets.token_hex(8),
        "type": "payment.succeeded" if outcome == "success" else "payment.failed",
        "data": {
            "order_reference": order.reference,
            "amount": f"{order.amount:.2f}",
            "txn_id": txn,
            "method": "upi" if order.channel == PaymentChannel.UPI else "card",
            "reason": "" if outcome == "success" else "declined by the issuing bank (simulated)",
        },
    }
    body = json.dumps(event, separators=(",", ":")).encode()
    header = signing.signature_header(
        secret=signing.gateway_secret(order.gateway), timestamp=int(time_mod.time()), body=body
    )
    return body, header


def simulate_gateway(*, order: GatewayOrder, outcome: str) -> WebhookResult:
    """The development gateway page: send the signed callback a real gateway would send."""
    if getattr(settings, "PRODUCTION", False):
        raise Forbidden("the development gateway is disabled in production", code="dev_gateway_disabled")
    body, header = dev_gateway_event(order=order, outcome=outcome)
    return handle_webhook(gateway=order.gateway, body=body, signature=header)


def reconcile_upi(*, actor, reference: str, amount: object, utr: str) -> Payment:
    """A UPI credit reported by the bank (statement / collect callback) matched by the `tr` reference."""
    order = GatewayOrder.objects.filter(reference=(reference or "").strip().upper()).select_related("account").first()
    if order is None:
        raise NotFound(f"no UPI order with reference {reference!r}", code="unknown_reference")
    if order.account_id is None:
        raise DomainError(
            f"order {order.reference} is for consumer number {order.consumer_number}, which no account has; "
            "its money belongs in suspense",
            code="order_without_account",
        )
    if not (utr or "").strip():
        raise DomainError("the UTR is required", code="utr_required")
    paid = validate_amount(amount)
    mismatch = "" if paid == order.amount else f"UPI amount {paid} differs from order {order.amount}"
    paid_by = order.payment
    if paid_by is not None and paid_by.idempotency_key != f"utr:{utr.strip()}" and paid_by.reference != utr.strip():
        # The gateway's webhook (or another UTR) has already recorded this order's money: posting the
        # bank's line too would count one credit twice. Back office checks the statement instead.
        raise Conflict(
            f"order {order.reference} is already paid (receipt {paid_by.receipt_number})",
            code="order_already_paid",
            details={"payment": paid_by.pk, "reference": paid_by.reference, "amount": str(paid_by.amount)},
        )
    with transaction.atomic():
        payment = take_payment(
            actor=actor,
            channel=PaymentChannel.UPI,
            consumer_number=order.account.consumer_number,
            amount=paid,
            idempotency_key=f"utr:{utr.strip()}",
            method=PaymentMethod.UPI,
            reference=utr.strip(),
            suspense_reason=mismatch,
            suspense_code=SuspenseCode.AMOUNT_MISMATCH if mismatch else "",
        )
        order = GatewayOrder.objects.select_for_update().get(pk=order.pk)
        if order.status != GatewayOrder.Status.PAID:  # the same UTR reported again: already paid
            order.payment = order.payment or payment
            transition(order, GATEWAY_ORDER_STATUS, GatewayOrder.Status.PAID, actor=actor, channel="backoffice",
                       extra_fields=("payment",), action="gateway_order.paid",
                       changes={"payment": payment.pk, "utr": utr.strip()})  # fmt: skip
        elif order.payment_id is None:
            order.payment = payment
            order.save(update_fields=["payment"])
    return payment


# --- settlement files ---------------------------------------------------------------------------


def import_settlement(*, actor, source: str, filename: str, stream, max_report: int = 10_000) -> ImportBatch:
    """Import a bank / collection-agency settlement CSV (see docs/payments.md). Streamed; each row
    posts once (key = source + row key) however often the file is imported; rows that cannot be
    posted are listed in the batch's report with a reason."""
    from . import settlement

    source = (source or "").strip().upper()
    if not source or len(source) > 40 or not source.replace("-", "").replace("_", "").isalnum():
        raise DomainError("source must be a bank / agency code", code="invalid_source")
    return settlement.run_import(actor=actor, source=source, filename=filename, stream=stream, max_report=max_report)


# --- prepaid ------------------------------------------------------------------------------------


def ensure_wallet(*, account: Account) -> PrepaidWallet:
    if not account.is_prepaid:
        raise DomainError("the account is not prepaid", code="not_prepaid")
    wallet, _ = PrepaidWallet.objects.get_or_create(account=account)
    return wallet


def wallet_balance(*, account: Account) -> Decimal:
    """Money in the wallet (the ledger's credit; negative = emergency credit in use)."""
    return -ledger.balance(account=account)


def _after_prepaid_recharge(payment: Payment, *, account: Account, actor) -> None:
    if account.status in SUSPENSE_STATUSES:  # final dues of a closed wallet: no rebate, token or switching
        return
    device = account.payg_devices.filter(active=True).first()
    if device is not None:
        _buy_payg_days(payment, account=account, device=device, actor=actor)
        return
    percent = seams.prepaid_rebate_percent(account=account)
    rebate = paise(payment.amount * percent / 100)
    if rebate > 0:
        ledger.post_entry(
            account=account,
            entry_type=EntryType.REBATE,
            amount=-rebate,
            description=f"Prepaid rebate {percent}% on recharge {payment.receipt_number}",
            actor=actor,
            channel=AUDIT_CHANNEL[payment.channel],
            reference_type="payment",
            reference_id=str(payment.pk),
            idempotency_key=f"prepaid-rebate:{payment.pk}",
            posted_at=payment.received_at,
        )
    ensure_wallet(account=account)
    evaluate_wallet(account=account, locked=True)


def day_price_for(account: Account) -> Decimal:
    payg = _data("prepaid")["payg"]
    return Decimal(payg.get("day_price", {}).get(account.package_code, payg["default_day_price"]))


def _buy_payg_days(payment: Payment, *, account: Account, device: PaygDevice, actor) -> None:
    from openpaygo.token_shared import OpenPAYGOTokenShared

    price = day_price_for(account)
    available = -ledger.balance(account=account)
    days = int((available / price).to_integral_value(rounding=ROUND_FLOOR)) if available > 0 else 0
    days = min(days, OpenPAYGOTokenShared.MAX_ACTIVATION_VALUE)
    if days < 1:
        return
    ledger.post_entry(
        account=account,
        entry_type=EntryType.BILL_CHARGE,
        amount=price * days,
        description=f"{days} days of service on {device.serial} at {price}/day",
        actor=actor,
        channel="system",
        reference_type="payg_token",
        reference_id=str(payment.pk),
        idempotency_key=f"payg:{payment.pk}",
        posted_at=payment.received_at,
        due_date=timezone.localdate(payment.received_at),
    )
    token = issue_payg_token(actor=actor, device=device, days=days, payment=payment)
    payment.payg_token = token.token


def _office_holidays(account: Account):
    return account.section.calendar().holidays


def evaluate_wallet(*, account: Account, now: datetime | None = None, locked: bool = False) -> PrepaidWallet:
    """Alerts at thresholds; disconnect after emergency credit (never in protected hours/days);
    reconnect once the debt is cleared. Sends at most one command per change of state."""
    rules = prepaid_rules_data()
    now = now or timezone.now()
    with transaction.atomic():
        if not locked:
            account = Account.objects.select_for_update().select_related("consumer", "section").get(pk=account.pk)
        wallet = PrepaidWallet.objects.select_for_update().get(pk=ensure_wallet(account=account).pk)
        balance = wallet_balance(account=account)
        already = Decimal(wallet.alerted_threshold) if wallet.alerted_threshold else None
        changed = []
        if already is not None and balance > already:
            crossed = [t for t in rules.thresholds if balance <= t]
            wallet.alerted_threshold = str(min(crossed)) if crossed else ""
            already = min(crossed) if crossed else None
            changed.append("alerted_threshold")
        due = prepaid_rules.alert_due(balance, rules.thresholds, already)
        if due is not None:
            wallet.alerted_threshold = str(due)
            changed.append("alerted_threshold")
            seams.notify_consumer(
                event="prepaid.low_balance",
                consumer=account.consumer,
                context={"consumer_number": account.consumer_number, "balance": balance, "threshold": due},
                idempotency_key=f"prepaid.low:{account.pk}:{due}:{wallet.commands_sent}:{timezone.localdate(now)}",
            )
        local = timezone.localtime(now)
        protected = prepaid_rules.in_protected_window(local, rules, _office_holidays(account))
        action = prepaid_rules.supply_action(
            balance=balance,
            connected=wallet.supply == PrepaidWallet.Supply.CONNECTED,
            rules=rules,
            protected=protected,
        )
        if action is not None and account.status in SUSPENSE_STATUSES:
            # a permanently disconnected connection is not switched by its wallet (the meter is gone)
            action = None
        if action is not None:
            try:
                sent = seams.send_meter_command(
                    account=account,
                    command=action,
                    idempotency_key=f"prepaid:{action}:{account.pk}:{wallet.commands_sent + 1}",
                    reason=f"prepaid balance {balance}",
                )
            except seams.NoSmartMeter as exc:
                # nothing to switch remotely: leave the state as it is (a field visit is needed)
                log.warning("prepaid %s of %s not sent: %s", action, account.consumer_number, exc)
                action = None
        if action is not None:
            wallet.commands_sent += 1
            wallet.last_command = action
            wallet.last_command_id = sent.command_id
            wallet.last_command_at = now
            changed += ["commands_sent", "last_command", "last_command_at", "last_command_id"]
            transition(
                wallet,
                WALLET_SUPPLY,
                PrepaidWallet.Supply.DISCONNECTED if action == "disconnect" else PrepaidWallet.Supply.CONNECTED,
                actor=None,
                channel="system",
                reason=f"prepaid balance {balance}",
                field="supply",
                extra_fields=sorted(set(changed)),
                action=f"prepaid.{action}",
                changes={"balance": balance, "command": sent.command_id},
            )
            changed = []  # saved with the transition
            if action == "disconnect":
                seams.notify_consumer(
                    event="prepaid.disconnected",
                    consumer=account.consumer,
                    context={"consumer_number": account.consumer_number, "balance": balance},
                    idempotency_key=f"prepaid.disconnected:{account.pk}:{wallet.commands_sent}",
                )
        if changed:
            wallet.save(update_fields=sorted(set(changed)))
    return wallet


def charge_prepaid_day(*, account: Account, day: date, kwh: object | None = None) -> PrepaidCharge | None:
    """Charge one day's consumption to a smart prepaid wallet (once per account and day). None: no
    consumption recorded yet. Raises seams.NoTariff when no tariff prices the day (nothing is
    charged: the caller reports the day as skipped with that reason)."""
    wallet = ensure_wallet(account=account)
    done = PrepaidCharge.objects.filter(wallet=wallet, day=day).first()
    if done is not None:
        return done
    consumption = seams.day_consumption(account=account, day=day) if kwh is None else Decimal(str(kwh))
    if consumption is None:
        return None
    if consumption < 0:
        raise DomainError("consumption cannot be negative", code="invalid_consumption")
    price = seams.price_energy(account=account, day=day, kwh=consumption)
    try:
        with transaction.atomic():
            account = Account.objects.select_for_update().select_related("consumer", "section").get(pk=account.pk)
            entry = None
            if price.amount > 0:
                entry = ledger.post_entry(
                    account=account,
                    entry_type=EntryType.BILL_CHARGE,
                    amount=price.amount,
                    description=f"Prepaid consumption {day:%d-%m-%Y}: {consumption} kWh",
                    channel="system",
                    reference_type="prepaid_day",
                    reference_id=day.isoformat(),
                    idempotency_key=f"prepaid:{account.pk}:{day.isoformat()}",
                    due_date=day,
                )
            charge = PrepaidCharge.objects.create(
                wallet=wallet, day=day, kwh=consumption, amount=price.amount, ledger_entry=entry, source=price.source
            )
            PrepaidWallet.objects.filter(pk=wallet.pk).update(charged_through=day)
    except IntegrityError:
        return PrepaidCharge.objects.get(wallet=wallet, day=day)
    return charge


def run_prepaid_day(*, day: date, now: datetime | None = None) -> dict:
    """The daily job: charge yesterday's consumption of every smart prepaid account, then evaluate.
    A day no tariff prices is not charged: it is logged, audited on the account and listed under
    "skipped" with its reason."""
    counts: dict = {"charged": 0, "no_data": 0, "no_tariff": 0, "evaluated": 0, "skipped": []}
    accounts = (
        Account.objects.filter(is_prepaid=True)
        .exclude(payg_devices__active=True)
        .exclude(status__in=SUSPENSE_STATUSES)  # closed: no supply, nothing to charge or switch
        .select_related("consumer", "section")
    )
    for account in accounts.iterator(chunk_size=500):
        try:
            charge = charge_prepaid_day(account=account, day=day)
        except seams.NoTariff as exc:
            log.warning("prepaid day %s of %s not charged: %s", day, account.consumer_number, exc)
            record_audit(
                actor=None,
                channel="system",
                action="prepaid.day_not_charged",
                obj=account,
                changes={"day": day, "reason": "no_tariff", "message": str(exc)},
            )
            counts["no_tariff"] += 1
            counts["skipped"].append(
                {"consumer_number": account.consumer_number, "day": day.isoformat(), "reason": "no_tariff"}
            )
        else:
            counts["charged" if charge is not None else "no_data"] += 1
        evaluate_wallet(account=account, now=now)
        counts["evaluated"] += 1
    return counts


def sweep_prepaid_supply(*, now: datetime | None = None) -> int:
    """Re-evaluate every wallet that needs a command (e.g. protected hours have ended)."""
    count = 0
    for wallet in PrepaidWallet.objects.exclude(account__status__in=SUSPENSE_STATUSES).select_related("account"):
        before = wallet.commands_sent
        after = evaluate_wallet(account=wallet.account, now=now)
        count += after.commands_sent - before
    return count


# --- OpenPAYGO ---------------------------------------------------------------------------------


def register_payg_device(
    *,
    actor,
    account: Account,
    serial: str,
    secret_hex: str,
    starting_code: int | None = None,
    token_count: int = 1,
    restricted_digit_set: bool = False,
) -> PaygDevice:
    from openpaygo.token_shared import OpenPAYGOTokenShared

    secret = (secret_hex or "").strip().lower()
    if len(secret) != 32 or any(c not in "0123456789abcdef" for c in secret):
        raise DomainError("the device secret must be 32 hexadecimal characters", code="invalid_secret")
    if not account.is_prepaid:
        raise DomainError("PAYG devices belong to prepaid accounts", code="not_prepaid")
    if starting_code is None:
        starting_code = OpenPAYGOTokenShared.generate_starting_code(bytes.fromhex(secret))
    with transaction.atomic():
        if PaygDevice.objects.filter(serial=serial).exists():
            raise Conflict(f"device {serial} is already registered", code="device_exists")
        device = PaygDevice.objects.create(
            account=account,
            serial=serial,
            secret_encrypted=signing.device_fernet().encrypt(secret.encode()),
            starting_code=starting_code,
            token_count=token_count,
            restricted_digit_set=restricted_digit_set,
        )
        ensure_wallet(account=account)
        record_audit(
            actor=actor,
            channel="backoffice",
            action="payg.device_registered",
            obj=device,
            changes={"serial": serial, "account": account.consumer_number},
        )
    return device


def device_secret(device: PaygDevice) -> str:
    return signing.device_fernet().decrypt(bytes(device.secret_encrypted)).decode()


def issue_payg_token(
    *, actor, device: PaygDevice, days: int, kind: str = PaygToken.Kind.ADD_TIME, payment: Payment | None = None
) -> PaygToken:
    """Generate the next OpenPAYGO token. The device row is locked, the counter only moves forward,
    and (device, count) is unique: no token is ever issued twice."""
    from openpaygo import TokenType, generate_token

    token_type = {
        PaygToken.Kind.ADD_TIME: TokenType.ADD_TIME,
        PaygToken.Kind.SET_TIME: TokenType.SET_TIME,
        PaygToken.Kind.DISABLE: TokenType.DISABLE_PAYG,
    }.get(kind)
    if token_type is None:
        raise DomainError(f"unknown token kind {kind!r}", code="invalid_token_kind")
    if kind != PaygToken.Kind.DISABLE and not (0 <= days <= 995):
        raise DomainError("days must be between 0 and 995", code="invalid_days")
    with transaction.atomic():
        device = PaygDevice.objects.select_for_update().get(pk=device.pk)
        if not device.active:
            raise DomainError("the device is not active", code="device_inactive")
        new_count, token = generate_token(
            secret_key=device_secret(device),
            count=device.token_count,
            value=None if kind == PaygToken.Kind.DISABLE else days,
            token_type=token_type,
            starting_code=device.starting_code,
            restricted_digit_set=device.restricted_digit_set,
        )
        device.token_count = new_count
        device.save(update_fields=["token_count"])
        record = PaygToken.objects.create(
            device=device,
            count=new_count,
            kind=kind,
            days=days,
            token=str(token),
            payment=payment,
            issued_by=actor if getattr(actor, "pk", None) else None,
        )
        record_audit(
            actor=actor,
            channel="system",
            action="payg.token_issued",
            obj=device,
            changes={"count": new_count, "kind": kind, "days": days},
        )
    return record


# --- collection automation ----------------------------------------------------------------------


def _collection_data() -> dict:
    return _data("collection")


def credit_limit_for(category: str) -> Decimal:
    data = _collection_data()["credit_limit"]
    return Decimal(data.get("by_category", {}).get(category, data["default"]))


def overdue_amounts(*, today: date, account_ids: list[int] | None = None, office_path: str = ""):
    """(account_id, balance, overdue) for post-paid accounts owing something (under `office_path`, if
    given). Credits settle the oldest debits first, so what is overdue is the balance less the debits
    not yet past due + grace."""
    grace = int(_collection_data()["flag"]["grace_days"])
    cutoff = today - timedelta(days=grace)
    cutoff_dt = datetime.combine(cutoff + timedelta(days=1), datetime.min.time(), timezone.get_current_timezone())
    recent = Q(amount__gt=0) & (Q(due_date__gte=cutoff) | Q(due_date__isnull=True, posted_at__gte=cutoff_dt))
    qs = LedgerEntry.objects.filter(account__is_prepaid=False)
    if account_ids is not None:
        qs = qs.filter(account_id__in=account_ids)
    if office_path:
        qs = qs.filter(account__office_path__startswith=office_path)
    rows = (
        qs.values("account").annotate(balance=Sum("amount"), recent=Sum("amount", filter=recent)).filter(balance__gt=0)
    )
    for row in rows.iterator():
        recent_total = row["recent"] or Decimal(0)
        yield row["account"], paise(row["balance"]), paise(max(row["balance"] - recent_total, Decimal(0)))


OPEN_CASE = [
    CollectionCase.Status.FLAGGED,
    CollectionCase.Status.NOTICE_SENT,
    CollectionCase.Status.DISCONNECTION_DUE,
]
SWEEP_PROGRESS_EVERY = 200  # accounts between two progress reports of a sweep job


def sweep_collections(*, today: date | None = None, office_path: str = "", progress=None) -> dict:
    """Flag accounts overdue past grace or above their credit limit; settle cases that are paid;
    move cases whose notice period has run out to 'due for disconnection'. Only accounts under
    `office_path` ('' = the whole utility). Idempotent and resumable: each change is its own
    transaction guarded by the case's current status, so a second (or concurrent, or restarted)
    sweep the same day changes nothing twice. `progress(done, total)` is told every few hundred."""
    today = today or timezone.localdate()
    minimum = Decimal(_collection_data()["flag"]["minimum_overdue"])
    counts = {"flagged": 0, "settled": 0, "due": 0}
    cases = CollectionCase.objects.filter(status__in=OPEN_CASE)
    accounts = Account.objects.filter(is_prepaid=False)
    if office_path:
        cases = cases.filter(account__office_path__startswith=office_path)
        accounts = accounts.filter(office_path__startswith=office_path)
    open_cases = {c.account_id: c for c in cases}
    categories, statuses = {}, {}
    for pk, category, status in accounts.values_list("id", "category", "status"):
        categories[pk], statuses[pk] = category, status
    owing = set()
    # Read everything before writing: on SQLite an open read cursor cannot become a writer.
    rows = list(overdue_amounts(today=today, office_path=office_path))
    total, done = len(rows) + len(open_cases), 0
    if progress:
        progress(0, total)
    for account_id, balance, overdue in rows:
        done += 1
        if progress and done % SWEEP_PROGRESS_EVERY == 0:
            progress(done, total)
        if statuses.get(account_id) != AccountStatus.ACTIVE:
            continue
        reason = None
        if overdue >= minimum:
            reason = CollectionCase.Reason.OVERDUE
        elif balance > credit_limit_for(categories.get(account_id, "")):
            reason = CollectionCase.Reason.CREDIT_LIMIT
        if reason is None:
            continue
        owing.add(account_id)
        if account_id in open_cases:
            continue
        try:
            with transaction.atomic():
                CollectionCase.objects.create(
                    account_id=account_id,
                    reason=reason,
                    flagged_on=today,
                    amount_due=overdue if reason == CollectionCase.Reason.OVERDUE else balance,
                )
            counts["flagged"] += 1
        except IntegrityError:
            continue
    for account_id, case in open_cases.items():
        done += 1
        if progress and done % SWEEP_PROGRESS_EVERY == 0:
            progress(done, total)
        if account_id not in owing:
            target = CollectionCase.Status.SETTLED
        elif case.status == CollectionCase.Status.NOTICE_SENT and case.pay_by and today > case.pay_by:
            target = CollectionCase.Status.DISCONNECTION_DUE
        else:
            continue
        with transaction.atomic():
            # a payment or another sweep may have moved the case since it was read: re-check locked
            case = CollectionCase.objects.select_for_update().get(pk=case.pk)
            if case.status not in OPEN_CASE or case.status == target:
                continue
            if target == CollectionCase.Status.DISCONNECTION_DUE and case.status != CollectionCase.Status.NOTICE_SENT:
                continue
            _transition_case(case, target, today=today)
        counts["settled" if target == CollectionCase.Status.SETTLED else "due"] += 1
    if progress:
        progress(total, total)
    return counts


def _transition_case(case: CollectionCase, status: str, *, today: date) -> None:
    COLLECTION_STATUS.check(case.status, status)
    if status in (CollectionCase.Status.SETTLED, CollectionCase.Status.CLOSED):
        case.closed_on = today
    transition(
        case,
        COLLECTION_STATUS,
        status,
        actor=None,
        channel="system",
        action=f"collection.{status}",
        extra_fields=["closed_on"],
    )


def settle_collection_cases(*, settled: dict[int, tuple[Decimal, date]]) -> int:
    """After payments: settle the open collection cases of the accounts (id → (balance now, day paid))
    whose balance is below the flagging minimum. Returns how many were settled."""
    minimum = Decimal(_collection_data()["flag"]["minimum_overdue"])
    paid = {pk: day for pk, (balance, day) in settled.items() if balance is not None and balance < minimum}
    # few accounts have an open case: find them with one lookup, then lock and settle those
    case_ids = [
        pk
        for (pk,) in bulk.select_in(
            "SELECT id FROM payments_collectioncase WHERE status IN (%s, %s, %s) AND account_id {in}",
            list(paid),
            OPEN_CASE,
        )
    ]
    count = 0
    for case in CollectionCase.objects.select_for_update().filter(pk__in=case_ids, status__in=OPEN_CASE):
        _transition_case(case, CollectionCase.Status.SETTLED, today=paid[case.account_id])
        count += 1
    return count


def issue_disconnection_notices(
    *, today: date | None = None, limit: int | None = None, office_path: str = "", progress=None
) -> int:
    """Send the written notice (15 working days, data) for every flagged case (under `office_path`,
    if given). Idempotent: a case gets its notice once, under its row lock."""
    today = today or timezone.localdate()
    days = int(_collection_data()["notice"]["working_days"])
    sent = 0
    cases = CollectionCase.objects.filter(status=CollectionCase.Status.FLAGGED)
    if office_path:
        cases = cases.filter(account__office_path__startswith=office_path)
    ids = cases.order_by("id").values_list("pk", flat=True)
    ids = list(ids[:limit] if limit else ids)  # read before writing (SQLite: a cursor cannot write)
    if progress:
        progress(0, len(ids))
    for done, case_id in enumerate(ids, start=1):
        if progress and done % SWEEP_PROGRESS_EVERY == 0:
            progress(done, len(ids))
        with transaction.atomic():
            case = (
                CollectionCase.objects.select_for_update()
                .select_related("account__consumer", "account__section")
                .get(pk=case_id)
            )
            if case.status != CollectionCase.Status.FLAGGED:
                continue
            account = case.account
            pay_by = account.section.calendar().add_working_days(today, days)
            case.notice_number = allocate_numbers(key="disconnection-notice", template="DN{yy}{seq:08}")[0]
            case.notice_date = today
            case.pay_by = pay_by
            _transition_case(case, CollectionCase.Status.NOTICE_SENT, today=today)
            CollectionCase.objects.filter(pk=case.pk).update(
                notice_number=case.notice_number, notice_date=today, pay_by=pay_by
            )
            seams.notify_consumer(
                event="disconnection.notice",
                consumer=account.consumer,
                context={
                    "consumer_number": account.consumer_number,
                    "amount": case.amount_due,
                    "disconnect_date": pay_by,
                    "notice_number": case.notice_number,
                },
                idempotency_key=f"disconnection.notice:{case.pk}",
            )
            sent += 1
    if progress:
        progress(len(ids), len(ids))
    return sent


COLLECTIONS_SWEEP = "payments.collections_sweep"


def start_collections_sweep(*, actor, office_path: str, channel: str = "api"):
    """Start the collections sweep (flagging, then notices) for `office_path` ('' = the whole
    utility) as a background job; (job, created). While one is queued or running for the same scope,
    that one is returned: a double click does not sweep twice."""
    from urja.core import jobs

    job, created = jobs.start_job(kind=COLLECTIONS_SWEEP, actor=actor, scope=office_path)
    if created:
        record_audit(
            actor=actor, channel=channel, action="collections.sweep_started", obj=job, changes={"scope": office_path}
        )
    return job, created


def collections_sweep_job(*, job, progress) -> dict:
    """The background job's body (core.jobs.run_job): sweep, then notices, within the job's scope."""
    progress(0, stage="flagging")
    counts = sweep_collections(office_path=job.scope, progress=progress)
    progress(0, total=0, stage="notices")
    counts["notices"] = issue_disconnection_notices(office_path=job.scope, progress=progress)
    return counts


def disconnection_list(*, office_path: str = "", today: date | None = None):
    """Cases whose notice period has run out: the service desk's disconnection work."""
    qs = CollectionCase.objects.filter(status=CollectionCase.Status.DISCONNECTION_DUE).select_related(
        "account__consumer"
    )
    if office_path:
        qs = qs.filter(account__office_path__startswith=office_path)
    return qs.order_by("pay_by", "id")
