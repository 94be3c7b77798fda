"""Arrears ageing (pure): credits settle the oldest debits first; what remains is aged by due date."""

from datetime import date, datetime
from decimal import Decimal


def age(
    entries: list[tuple[Decimal, date | None, datetime]], *, today: date, buckets: list[tuple[str, int, int | None]]
):
    from .ledger import AgeingBucket

    debits = sorted(((due or posted.date(), amt) for amt, due, posted in entries if amt > 0), key=lambda d: d[0])
    credit = -sum((amt for amt, _, _ in entries if amt < 0), Decimal(0))
    open_items = []
    for due, amt in debits:
        settled = min(credit, amt)
        credit -= settled
        if amt - settled > 0:
            open_items.append((due, amt - settled))
    result = []
    for label, lo, hi in buckets:
        total = sum(
            (
                amt
                for due, amt in open_items
                if lo <= max((today - due).days, 0) and (hi is None or max((today - due).days, 0) <= hi)
            ),
            Decimal(0),
        )
        result.append(AgeingBucket(label, lo, hi, total))
    return result
