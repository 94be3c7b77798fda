"""Read-only reconciliation of payments: money received against the ledger and suspense.

Nothing here writes. Used by back office reports and by the simulation's invariants:

* `gateway_reconciliation`: per gateway, what it captured = what was posted + what is in suspense
  (+ what was refunded from suspense);
* `receipts_reconciliation`: per channel, every rupee received is posted (and then in the ledger as a
  payment entry of the same amount and account) or in suspense (or refunded / reversed).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from django.db.models import F, Min, Q, Sum

from urja.billing.models import EntryType, LedgerEntry

from .models import GatewayEvent, Payment, PaymentStatus

ZERO = Decimal("0.00")
# what became of money received, by payment status (failed payments were never received)
OUTCOMES = {
    PaymentStatus.POSTED: "posted",
    PaymentStatus.IN_SUSPENSE: "suspense",
    PaymentStatus.REFUNDED: "refunded",
    PaymentStatus.REVERSED: "reversed",
    PaymentStatus.PENDING: "pending",
}


def _money(value) -> Decimal:
    return (value or ZERO).quantize(ZERO)


def gateway_reconciliation(*, since: datetime | None = None) -> dict:
    """What the gateways captured against what was recorded: the totals over every gateway at the
    top level, and per gateway under `gateways`. `captured` counts each transaction once (by its
    first capture event); of the payments holding that money, `posted`, `suspense` (by code in
    `suspense_by_code`), `refunded` (returned from suspense) and `unrecorded` (captures with no
    payment: must be 0). `balanced` is captured == posted + suspense + refunded and nothing
    unrecorded. `since` counts the transactions first captured at or after that moment."""
    first_ids = (
        GatewayEvent.objects.filter(amount__isnull=False)
        .values("gateway", "txn_id")
        .annotate(first=Min("id"))
        .values("first")
    )
    captures = GatewayEvent.objects.filter(id__in=first_ids)
    if since is not None:
        captures = captures.filter(received_at__gte=since)
    out: dict[str, dict] = {}
    keys = ("captured", "posted", "suspense", "refunded", "unrecorded")
    for row in captures.values("gateway").annotate(
        captured=Sum("amount"),
        posted=Sum("payment__amount", filter=Q(payment__status=PaymentStatus.POSTED)),
        suspense=Sum("payment__amount", filter=Q(payment__status=PaymentStatus.IN_SUSPENSE)),
        refunded=Sum("payment__amount", filter=Q(payment__status=PaymentStatus.REFUNDED)),
        unrecorded=Sum("amount", filter=Q(payment__isnull=True)),
    ):
        out[row["gateway"]] = {k: _money(row[k]) for k in keys}
        out[row["gateway"]]["suspense_by_code"] = {}
    for row in (
        captures.filter(payment__status=PaymentStatus.IN_SUSPENSE)
        .values("gateway", "payment__suspense_code")
        .annotate(total=Sum("payment__amount"))
    ):
        out[row["gateway"]]["suspense_by_code"][row["payment__suspense_code"]] = _money(row["total"])
    overall = {k: sum((g[k] for g in out.values()), ZERO) for k in keys}
    overall["suspense_by_code"] = {}
    for totals in out.values():
        for code, amount in totals["suspense_by_code"].items():
            overall["suspense_by_code"][code] = overall["suspense_by_code"].get(code, ZERO) + amount
    for totals in (*out.values(), overall):
        totals["balanced"] = (
            totals["captured"] == totals["posted"] + totals["suspense"] + totals["refunded"]
            and totals["unrecorded"] == 0
        )
    return {**overall, "gateways": out}


def receipts_reconciliation(*, since: datetime | None = None) -> dict:
    """Every rupee received is in the ledger or in suspense, across all channels.

    `channels`: per channel, `received` and what became of it (`posted`, `suspense`, `refunded`,
    `reversed`, `pending`). `ledger_payments`: the ledger's payment entries (as a positive sum).
    Posted and reversed payments each have one payment entry of their amount on their account
    (a dishonoured cheque keeps it, offset by a reversal entry), so `ledger_payments` must equal
    posted + reversed. Mismatches are counted: `posted_without_entry`, `entry_mismatch` (amount or
    account differs) and `orphan_entries` (payment entries that no payment points at).
    `since` counts payments received (and entries posted) at or after that moment."""
    payments = Payment.objects.exclude(status=PaymentStatus.FAILED)
    entries = LedgerEntry.objects.filter(entry_type=EntryType.PAYMENT)
    if since is not None:
        payments = payments.filter(received_at__gte=since)
        entries = entries.filter(posted_at__gte=since)
    channels: dict[str, dict] = {}
    totals = {key: ZERO for key in ("received", *OUTCOMES.values())}
    for row in payments.values("channel", "status").annotate(total=Sum("amount")).order_by():
        amount = _money(row["total"])
        per = channels.setdefault(row["channel"], {key: ZERO for key in totals})
        outcome = OUTCOMES[row["status"]]
        for key in ("received", outcome):
            per[key] += amount
            totals[key] += amount
    booked = payments.filter(status__in=[PaymentStatus.POSTED, PaymentStatus.REVERSED])
    ledger_payments = -_money(entries.aggregate(t=Sum("amount"))["t"])
    report = {
        "channels": channels,
        **totals,
        "ledger_payments": ledger_payments,
        "posted_without_entry": booked.filter(ledger_entry__isnull=True).count(),
        "entry_mismatch": booked.filter(ledger_entry__isnull=False)
        .exclude(ledger_entry__amount=-F("amount"), ledger_entry__account_id=F("account_id"))
        .count(),
        "orphan_entries": entries.filter(payment__isnull=True).count(),
    }
    report["balanced"] = (
        ledger_payments == totals["posted"] + totals["reversed"]
        and report["posted_without_entry"] == 0
        and report["entry_mismatch"] == 0
        and report["orphan_entries"] == 0
        and totals["pending"] == 0
    )
    return report
