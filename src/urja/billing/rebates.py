"""Conditional bill rebates earned by payments posted in bulk (settlement files): the rule of
services.rebates_on_payment — the latest bill's rebates are credited when a payment leaves the
account paid in full counting them — applied to many payments with a few queries per chunk."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from decimal import Decimal

import numpy as np
from django.db import connection
from django.utils import timezone

from . import bulk
from .bulk import Column
from .ledger import post_entries
from .models import Bill, EntryType
from .services import _rebates_earned


def latest_bills(account_ids, *, on_or_before: date) -> dict[int, int]:
    """The latest bill (id) of each account dated on or before a day, for those that have one (one
    correlated lookup per account on the bills' account index) — what `rebates_on_payments` starts
    from; a settlement file reads it a chunk ahead."""
    ids = list(account_ids)
    if not ids:
        return {}
    latest = (
        "SELECT b.id FROM billing_bill b WHERE b.account_id = a.id AND b.kind = %s AND b.bill_date <= %s"
        " ORDER BY b.bill_date DESC, b.id DESC LIMIT 1"
    )
    if connection.vendor == "postgresql":  # the ids as an array: no lookup of the accounts themselves
        with connection.cursor() as cur:
            cur.execute(
                f"SELECT a.id, ({latest}) FROM unnest(%s::bigint[]) AS a(id)",
                [Bill.Kind.BILL, on_or_before, bulk.array_literal(ids)],
            )
            found = cur.fetchall()
    else:
        found = bulk.select_in(
            f"SELECT a.id, ({latest}) FROM customers_account a WHERE a.id {{in}}", ids, [Bill.Kind.BILL, on_or_before]
        )
    return {account_id: bill_id for account_id, bill_id in found if bill_id is not None}


def rebates_on_payments(
    *,
    payments: Mapping[int, Sequence[tuple[int, date, bool, Decimal]]],
    actor=None,
    channel: str = "import",
    latest: Mapping[int, int] | None = None,
) -> list[tuple[int, Decimal]]:
    """`payments`: account id → its payments in posting order as (position, paid on, digital,
    balance after the payment and any rebate before it). Posts the rebates earned (idempotent per
    bill and kind, as one by one) and returns (position of the payment that earned it, credit < 0)
    for each rebate newly credited, so the caller can carry it into the balances after. `latest`:
    `latest_bills` of these accounts on or before their last payment's day (or a later day), if
    the caller read it already."""
    if not payments:
        return []
    if latest is None:
        last_day = max(day for rows in payments.values() for _, day, _, _ in rows)
        latest = latest_bills(payments, on_or_before=last_day)
    bill_ids = {account_id: latest[account_id] for account_id in payments if account_id in latest}
    if not bill_ids:
        return []
    bills = {b.account_id: b for b in Bill.objects.filter(pk__in=list(bill_ids.values())).select_related("account")}
    earned: list[tuple[int, int, str, str, Decimal, Bill]] = []  # (position, account, key, label, amount, bill)
    keys_taken: set[str] = set()
    for account_id, rows in payments.items():
        credited = Decimal(0)
        for position, day, digital, balance in rows:
            bill = bills.get(account_id)
            if bill is None:
                break
            if bill.bill_date > day:  # a payment dated before the latest bill (rare): its own bill
                bill = (
                    Bill.objects.filter(account_id=account_id, kind=Bill.Kind.BILL, bill_date__lte=day)
                    .order_by("-bill_date", "-id")
                    .first()
                )
                if bill is None:
                    continue
            offered = _rebates_earned(bill, paid_on=day, digital=digital)
            if not offered or balance + credited + sum(a for _, _, a in offered) > 0:
                continue
            for key, label, amount in offered:
                ledger_key = f"bill:{bill.bill_number}:rebate_{key}"
                if ledger_key in keys_taken:
                    continue
                keys_taken.add(ledger_key)
                earned.append((position, account_id, ledger_key, label, amount, bill))
                credited += amount
    if not earned:
        return []
    done = {
        key
        for (key,) in bulk.select_in(
            "SELECT idempotency_key FROM billing_ledgerentry WHERE idempotency_key {in}", [e[2] for e in earned]
        )
    }
    new = [e for e in earned if e[2] not in done]
    if new:
        post_entries(
            [
                (
                    len(new),
                    [
                        Column("account_id", [e[1] for e in new]),
                        Column("entry_type", EntryType.REBATE),
                        Column("amount", np.array([int(e[4] * 100) for e in new], dtype=np.int64), 2),
                        Column("posted_at", timezone.now()),
                        Column("description", [f"{e[3]} payment rebate, bill {e[5].bill_number}" for e in new]),
                        Column("reference_type", "bill"),
                        Column("reference_id", [e[5].bill_number for e in new]),
                        Column("idempotency_key", [e[2] for e in new]),
                    ],
                )
            ],
            actor=actor,
            channel=channel,
        )
    return [(e[0], e[4]) for e in new]
