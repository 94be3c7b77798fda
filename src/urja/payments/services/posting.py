"""Taking a payment and the one posting pipeline every channel shares (allocation, rebates, receipt,
collection cases, notice to the consumer); suspense, cheque bounce and refunds."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.utils import timezone

from urja.billing import ledger
from urja.billing import services as billing_services
from urja.billing.models import EntryType, LedgerEntry
from urja.core import scope
from urja.core.errors import Conflict, DomainError
from urja.core.models import StaffProfile
from urja.core.services import record_audit
from urja.core.states import transition
from urja.customers.models import Account
from urja.payments import seams
from urja.payments.models import (
    PAYMENT_STATUS,
    CashierSession,
    Payment,
    PaymentChannel,
    PaymentMethod,
    PaymentStatus,
    SuspenseCode,
)
from urja.payments.selectors import (
    AUDIT_CHANNEL,
    CHANNEL_METHODS,
    INSTRUMENT_METHODS,
    PAYER_PRESENT_CHANNELS,
    SUSPENSE_STATUSES,
    _data,
    allocate_payments,
    cash_in_hand,
    find_account,
    unknown_account,
)
from urja.payments.services._base import (
    _same_or_conflict,
    validate_amount,
)
from urja.payments.services.collection import (
    settle_collection_cases,
)
from urja.payments.services.prepaid import (
    _after_prepaid_recharge,
)
from urja.payments.services.receipts import (
    _issue_receipt,
)


def _open_session(actor) -> CashierSession | None:
    if not getattr(actor, "pk", None):
        return None
    return CashierSession.objects.filter(cashier=actor, status=CashierSession.Status.OPEN).first()


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
