"""Receipt numbers: one series per channel and office, issued for one payment or in bulk."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal

from django.utils import timezone

from urja.core.services import NumberBlocks, allocate_numbers
from urja.payments import signing
from urja.payments.models import (
    Payment,
)
from urja.payments.selectors import (
    _data,
)


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
    numbers = allocate_receipt_numbers(channel=channel, offices=[row[0] for row in rows])
    return list(zip(numbers, verification_codes(rows=rows, numbers=numbers), strict=True))


def allocate_receipt_numbers(
    *, channel: str, offices: Sequence[str | None], blocks: NumberBlocks | None = None
) -> list[str]:
    """The receipt number of each payment, by its office code (None: head office) — the database
    half of issue_receipts (one allocation per office series; with `blocks`, from the blocks of a
    long transaction, which gives back what it did not use)."""
    series = _data("receipts")["series"]
    prefix = series["prefix"][channel]
    by_office: dict[str, list[int]] = defaultdict(list)
    for i, office in enumerate(offices):
        by_office[office or "HO"].append(i)
    numbers: list[str] = [""] * len(offices)
    for code, positions in by_office.items():
        allocated = (blocks.take if blocks is not None else allocate_numbers)(
            key=f"receipt:{code}:{channel}",
            template=series["template"],
            count=len(positions),
            fields={"office": code, "prefix": prefix},
        )
        for i, number in zip(positions, allocated, strict=True):
            numbers[i] = number
    return numbers


def verification_codes(
    *, rows: Sequence[tuple[str | None, str, Decimal, datetime]], numbers: Sequence[str]
) -> list[str]:
    """The verification code of each receipt (rows as for issue_receipts) — pure: a settlement file
    computes them while the database writes its previous chunk."""
    days: dict[datetime, date] = {}  # a file has few distinct timestamps
    messages = []
    message = signing.receipt_message
    for (_office, consumer_number, amount, received_at), number in zip(rows, numbers, strict=True):
        day = days.get(received_at)
        if day is None:
            day = days[received_at] = timezone.localdate(received_at)
        messages.append(message(receipt_number=number, consumer_number=consumer_number, amount=amount, day=day))
    return signing.receipt_codes(messages, key=signing.receipt_key())
