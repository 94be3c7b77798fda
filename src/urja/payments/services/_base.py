"""What every payments service shares: the amount rule and the idempotency-key check."""

from __future__ import annotations

from decimal import Decimal

from urja.core.errors import Conflict, DomainError
from urja.core.money import MoneyError, parse_amount
from urja.payments.models import (
    Payment,
)
from urja.payments.selectors import (
    _data,
)


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


def _same_or_conflict(existing: Payment, consumer_number: str, amount: Decimal) -> Payment:
    if existing.consumer_number != consumer_number.strip().upper() or existing.amount != amount:
        raise Conflict(
            "this idempotency key was already used for a different payment",
            code="idempotency_key_reused",
            details={"payment": existing.pk, "amount": str(existing.amount)},
        )
    return existing
