"""Online gateway and UPI: orders, signed webhooks (each event once), the development gateway, and
UPI credits reconciled by hand."""

from __future__ import annotations

import json
import logging
import secrets
import time as time_mod
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.db import IntegrityError, transaction

from urja.core.errors import Conflict, DomainError, Forbidden, NotFound
from urja.core.money import MoneyError, parse_amount
from urja.core.states import transition
from urja.customers.models import Account
from urja.payments import signing
from urja.payments.models import (
    GATEWAY_ORDER_STATUS,
    GatewayEvent,
    GatewayOrder,
    Payment,
    PaymentChannel,
    PaymentMethod,
    PaymentStatus,
    SuspenseCode,
)
from urja.payments.selectors import (
    CHANNEL_METHODS,
    GATEWAY_CHANNELS,
    SUSPENSE_STATUSES,
    _data,
    find_account,
)
from urja.payments.services._base import (
    validate_amount,
)
from urja.payments.services.posting import (
    _hold_in_suspense,
    take_payment,
)

log = logging.getLogger(__name__)


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
