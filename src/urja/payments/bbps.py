"""Bharat BillPay (BBPS) biller interface: the utility as a biller on NPCI's BBPS, reached through its
biller operating unit (BBPOU).

    POST /api/v1/payments/bbps/fetch   {consumer_number}             → the bill (name, amounts, dates)
    POST /api/v1/payments/bbps/pay     {consumer_number, amount, bbps_reference, payment_mode, paid_at}

Both need the header X-Urja-BBPS-Token (URJA_BBPS_TOKEN; the BBPOU's connection is the other check, by
network). A payment goes through the one posting pipeline (services.take_payment) under the key
"bbps:<BBPS reference>": a repeat of the same reference returns the first payment, a repeat with another
amount or consumer number is refused (409). Decisions where BBPS leaves it to the biller: the early
amount is the bill's amount with the rebate for paying by the due date; the late amount is the bill's
net payable (the delayed-payment surcharge comes on the next bill, per the tariff order); billAmount is
what the account owes now (the latest bill less what was paid since).
"""

import hmac
import os
from datetime import datetime
from decimal import Decimal

from django.conf import settings
from django.utils import timezone
from ninja import Router, Schema

from urja.billing import ledger
from urja.billing.models import Bill
from urja.core.boundary import Amount, PastMoment, Text
from urja.core.errors import DomainError, NotFound
from urja.customers.models import Account, AccountStatus

from .models import Payment, PaymentChannel, PaymentMethod

# BBPS payment modes → our methods on the online channel
MODES = {
    "upi": PaymentMethod.UPI,
    "credit card": PaymentMethod.CARD,
    "debit card": PaymentMethod.CARD,
    "internet banking": PaymentMethod.NETBANKING,
    "wallet": PaymentMethod.WALLET,
    "prepaid card": PaymentMethod.CARD,
}


def _token() -> str:
    default = "" if getattr(settings, "PRODUCTION", False) else "urja-dev-bbps-token"
    return str(getattr(settings, "URJA_BBPS_TOKEN", None) or os.environ.get("URJA_BBPS_TOKEN", default))


def _unknown(number: str) -> NotFound:
    # BBPS error BFR004 "invalid consumer number": the same answer for a closed or never-existing number
    return NotFound(f"no bill for consumer number {number}", code="consumer_not_found")


def fetch_bill(*, consumer_number: str) -> dict:
    number = (consumer_number or "").strip().upper()
    account = Account.objects.select_related("consumer").filter(consumer_number=number).first()
    if account is None or account.status == AccountStatus.PERMANENTLY_DISCONNECTED:
        raise _unknown(number)
    bill = Bill.objects.filter(account=account).order_by("-period_start", "-id").first()
    if bill is None:
        raise _unknown(number)
    owed = max(ledger.balance(account=account), Decimal("0"))
    early = bill.total + bill.rebate_by_due_date + bill.arrears
    return {
        "consumer_number": account.consumer_number,
        "customer_name": account.consumer.name,
        "bill_number": bill.bill_number,
        "bill_date": bill.bill_date,
        "bill_period": f"{bill.period_start:%d-%m-%Y} to {bill.period_end:%d-%m-%Y}",
        "due_date": bill.due_date,
        "bill_amount": owed,
        "early_payment_amount": max(min(early, owed), Decimal("0")),
        "late_payment_amount": max(min(bill.net_payable, owed), Decimal("0")) if owed else Decimal("0"),
    }


def post_payment(
    *, consumer_number: str, amount: object, bbps_reference: str, payment_mode: str, paid_at: datetime | None = None
) -> Payment:
    from . import services

    reference = (bbps_reference or "").strip().upper()
    if not reference or len(reference) > 60 or not reference.isalnum():
        raise DomainError("bbps_reference must be 1-60 letters and digits", code="invalid_reference")
    method = MODES.get((payment_mode or "").strip().lower())
    if method is None:
        raise DomainError(f"unknown BBPS payment mode {payment_mode!r}", code="invalid_payment_mode",
                          details={"allowed": sorted(MODES)})  # fmt: skip
    number = (consumer_number or "").strip().upper()
    if not Account.objects.filter(consumer_number=number).exists():
        raise _unknown(number)
    return services.take_payment(
        actor=None,
        channel=PaymentChannel.ONLINE,
        consumer_number=number,
        amount=amount,
        idempotency_key=f"bbps:{reference}",
        method=method,
        reference=f"BBPS {reference}",
        received_at=paid_at or timezone.now(),
    )


# --- API -------------------------------------------------------------------------------------------

router = Router(tags=["bbps"])


class Forbidden401(DomainError):
    status = 401
    code = "invalid_token"


def _check(request) -> None:
    token = _token()
    if not token or not hmac.compare_digest(request.headers.get("X-Urja-BBPS-Token", ""), token):
        raise Forbidden401("X-Urja-BBPS-Token is missing or wrong")


class BbpsFetchIn(Schema):
    consumer_number: Text(40)


class BbpsFetchOut(Schema):
    consumer_number: str
    customer_name: str
    bill_number: str
    bill_date: datetime | str
    bill_period: str
    due_date: datetime | str | None
    bill_amount: Decimal
    early_payment_amount: Decimal
    late_payment_amount: Decimal


class BbpsPayIn(Schema):
    consumer_number: Text(40)
    amount: Amount
    bbps_reference: Text(60)
    payment_mode: Text(40)
    paid_at: PastMoment | None = None


class BbpsPayOut(Schema):
    bbps_reference: str
    status: str
    receipt_number: str | None
    amount: Decimal


@router.post("/fetch", response=BbpsFetchOut, auth=None, summary="BBPS bill fetch by consumer number")
def bbps_fetch(request, body: BbpsFetchIn):
    _check(request)
    bill = fetch_bill(consumer_number=body.consumer_number)
    return {**bill, "bill_date": bill["bill_date"].isoformat(),
            "due_date": bill["due_date"].isoformat() if bill["due_date"] else None}  # fmt: skip


@router.post("/pay", response=BbpsPayOut, auth=None, summary="BBPS payment posting (idempotent by BBPS reference)")
def bbps_pay(request, body: BbpsPayIn):
    _check(request)
    payment = post_payment(consumer_number=body.consumer_number, amount=body.amount,
                           bbps_reference=body.bbps_reference, payment_mode=body.payment_mode,
                           paid_at=body.paid_at)  # fmt: skip
    return {"bbps_reference": body.bbps_reference.strip().upper(), "status": payment.status,
            "receipt_number": payment.receipt_number, "amount": payment.amount}  # fmt: skip
