"""API of group payments (issue 15.6), mounted under /api/v1/payments/groups/ by payments.api: the
group's consolidated statement and one payment spread over its connections (payments.group)."""

from datetime import datetime
from decimal import Decimal

from ninja import Router, Schema, Status

from urja.core import boundary
from urja.core.boundary import Amount, PastMoment, Text
from urja.core.permissions import require_role

from . import group
from .models import GroupPayment

router = Router(tags=["payments"])


class GroupPaymentIn(Schema):
    amount: Amount
    idempotency_key: Text(100)
    channel: Text(12) = "file"
    method: Text(12) = "bank"
    reference: Text(64) = ""
    instrument_number: Text(20) = ""
    instrument_bank: Text(80) = ""
    instrument_date: boundary.Day | None = None
    received_at: PastMoment | None = None


class GroupPartOut(Schema):
    consumer_number: str
    amount: Decimal
    by_category: dict[str, Decimal]
    receipt_number: str | None = None


class GroupPaymentOut(Schema):
    id: int
    group_id: int
    channel: str
    method: str
    amount: Decimal
    reference: str
    received_at: datetime
    posted: bool
    parts: list[GroupPartOut]


class GroupStatementRowOut(Schema):
    consumer_number: str
    name: str
    status: str
    balance: Decimal
    open: Decimal
    by_category: dict[str, Decimal]
    oldest_due: str | None
    payable: bool


class GroupStatementOut(Schema):
    group_id: int
    name: str
    kind: str
    connections: int
    total_balance: Decimal
    total_open: Decimal
    rows: list[GroupStatementRowOut]
    payments: list[GroupPaymentOut]


def group_payment_out(gp: GroupPayment) -> dict:
    receipts = {p.consumer_number: p.receipt_number for p in group.parts(gp)}
    return {
        "id": gp.pk,
        "group_id": gp.group_id,
        "channel": gp.channel,
        "method": gp.method,
        "amount": gp.amount,
        "reference": gp.reference,
        "received_at": gp.received_at,
        "posted": gp.posted,
        "parts": [
            {
                "consumer_number": p["consumer_number"],
                "amount": Decimal(p["amount"]),
                "by_category": {k: Decimal(v) for k, v in p["by_category"].items()},
                "receipt_number": receipts.get(p["consumer_number"]),
            }
            for p in gp.spread
        ],
    }


@router.get("/{group_id}/statement", response=GroupStatementOut, summary="A group's consolidated statement")
def group_statement(request, group_id: int):
    """The group's connections in the caller's scope: balance, open items by category (in the order a
    group payment settles them), totals and the recent group payments. No connection in scope: 404."""
    require_role(request.user, *group.GROUP_ROLES)
    st = group.statement(actor=request.user, group_id=group_id)
    return {
        "group_id": st["group"].pk,
        "name": st["group"].name,
        "kind": st["group"].kind,
        "connections": len(st["rows"]),
        "total_balance": st["total_balance"],
        "total_open": st["total_open"],
        "rows": [
            {
                "consumer_number": r["account"].consumer_number,
                "name": r["account"].consumer.name,
                "status": r["account"].status,
                "balance": r["balance"],
                "open": r["open"],
                "by_category": r["by_category"],
                "oldest_due": r["oldest_due"].isoformat() if r["oldest_due"] else None,
                "payable": r["payable"],
            }
            for r in st["rows"]
        ],
        "payments": [group_payment_out(gp) for gp in st["payments"]],
    }


@router.post(
    "/{group_id}/payments", response={201: GroupPaymentOut}, summary="One payment spread over the group's connections"
)
def take_group_payment(request, group_id: int, body: GroupPaymentIn):
    """Oldest dues first across the group (data/payments/allocation.toml order), the rest as advance on
    the first connection. `channel` "file" + `method` "bank" records a bank transfer (UTR in
    `reference`); "counter" takes a cheque, DD or cash in the cashier's open session. The key makes a
    retry safe: a repeat returns the first group payment, the same key with another amount answers 409."""
    require_role(request.user, *group.GROUP_ROLES)
    gp = group.take_group_payment(actor=request.user, group_id=group_id, **body.dict())
    return Status(201, group_payment_out(gp))


@router.get("/payments/{group_payment_id}", response=GroupPaymentOut, summary="A group payment and its parts")
def get_group_payment(request, group_payment_id: int):
    require_role(request.user, *group.GROUP_ROLES)
    return group_payment_out(group.scoped_group_payment(actor=request.user, group_payment_id=group_payment_id))
