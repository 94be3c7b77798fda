"""Arrears ageing — the one definition (issue 14.6): an account's ledger replayed through payments'
open items (`allocation.open_items`, the rule that splits every payment), the items still open aged by
days past their due date into the buckets below. The managers' dashboard (`reports.operations`) and any
other caller read it from here; billing keeps no second ageing rule (billing/ageing.py is gone: billing
sits below payments, so it cannot use the allocation rule).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

from django.utils import timezone

from urja.billing.models import LedgerEntry
from urja.core.money import paise

from . import allocation as alloc
from .selectors import allocation_order

ZERO = paise(0)
# (label, min days past due, max days past due — None: no upper bound)
AGEING_BUCKETS = [
    ("current", 0, 0),
    ("1-30", 1, 30),
    ("31-60", 31, 60),
    ("61-90", 61, 90),
    ("91-180", 91, 180),
    ("181-365", 181, 365),
    ("over 365", 366, None),
]


def age_items(items: Iterable[alloc.OpenItem], *, today: date) -> dict[str, object]:
    """Open items into the buckets by days past their due date (not yet due counts as current)."""
    totals = {label: ZERO for label, _, _ in AGEING_BUCKETS}
    for item in items:
        days = max((today - item.due).days, 0)
        for label, lo, hi in AGEING_BUCKETS:
            if lo <= days and (hi is None or days <= hi):
                totals[label] += item.amount
                break
    return totals


def arrears_ageing(*, accounts, today: date | None = None) -> dict[str, object]:
    """The arrears of `accounts` (a queryset; one account: `Account.objects.filter(pk=…)`) by age, every
    account's ledger replayed through the open items — streamed in account order, one pass."""
    today = today or timezone.localdate()
    order, entry_types = allocation_order()
    totals = {label: ZERO for label, _, _ in AGEING_BUCKETS}
    rows = (
        LedgerEntry.objects.filter(account__in=accounts)
        .order_by("account_id", "posted_at", "id")
        .values_list("account_id", "pk", "entry_type", "amount", "due_date", "posted_at")
    )
    current, history = None, []

    def flush():
        if history:
            items, _ = alloc.open_items(history, today=today, order=order, entry_types=entry_types)
            for label, amount in age_items(items, today=today).items():
                totals[label] += amount

    for account_id, pk, etype, amount, due, posted in rows.iterator(chunk_size=10_000):
        if account_id != current:
            flush()
            current, history = account_id, []
        history.append((pk, etype, amount, due, timezone.localdate(posted)))
    flush()
    return totals
