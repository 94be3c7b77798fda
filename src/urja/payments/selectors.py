"""Payments reads: which channels take what (data the services and the reads share), the account
lookup, receipt checks, cash in hand and the hand-over report, what an account owes and how a
payment is split over it, wallet balances, overdue amounts and the disconnection list; and the
read-only reconciliation of payments: money received against the ledger and suspense.

Nothing here writes. The reconciliation is used by back office reports and by the simulation's invariants:

* `gateway_reconciliation`: per gateway, what it captured = what was posted + what is in suspense
  (+ what was refunded from suspense);
* `receipts_reconciliation`: per channel, every rupee received is posted (and then in the ledger as a
  payment entry of the same amount and account) or in suspense (or refunded / reversed).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from urllib.parse import urlencode

from django.conf import settings
from django.db import connection
from django.db.models import F, Min, Q, Sum
from django.utils import timezone

from urja.billing import bulk, ledger
from urja.billing.models import EntryType, LedgerEntry
from urja.core import regdata
from urja.core.errors import NotFound
from urja.core.models import Role
from urja.core.money import MoneyError, paise
from urja.core.permissions import role_of
from urja.customers.models import Account, AccountStatus
from urja.payments import allocation as alloc
from urja.payments import prepaid_rules, signing
from urja.payments.models import (
    CashDeposit,
    CashierSession,
    CollectionCase,
    GatewayEvent,
    GatewayOrder,
    PaygDevice,
    Payment,
    PaymentChannel,
    PaymentMethod,
    PaymentStatus,
)

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


# Channel of the audit trail (core.Channel) for each payment channel.
AUDIT_CHANNEL = {
    PaymentChannel.COUNTER: "care_centre",
    PaymentChannel.FIELD_AGENT: "field_agent",
    PaymentChannel.ONLINE: "website",
    PaymentChannel.UPI: "website",
    PaymentChannel.WALLET: "app",
    PaymentChannel.CARD: "care_centre",
    PaymentChannel.ATP: "care_centre",
    PaymentChannel.FILE: "import",
}


# Which methods each channel accepts.
CHANNEL_METHODS = {
    PaymentChannel.COUNTER: {
        PaymentMethod.CASH,
        PaymentMethod.CHEQUE,
        PaymentMethod.DD,
        PaymentMethod.CARD,
        PaymentMethod.UPI,
    },
    PaymentChannel.FIELD_AGENT: {PaymentMethod.CASH, PaymentMethod.CHEQUE, PaymentMethod.DD, PaymentMethod.UPI},
    PaymentChannel.ONLINE: {PaymentMethod.CARD, PaymentMethod.NETBANKING, PaymentMethod.UPI, PaymentMethod.WALLET},
    PaymentChannel.UPI: {PaymentMethod.UPI},
    PaymentChannel.WALLET: {PaymentMethod.WALLET},
    PaymentChannel.CARD: {PaymentMethod.CARD},
    PaymentChannel.ATP: {PaymentMethod.CASH, PaymentMethod.CHEQUE, PaymentMethod.CARD},
    PaymentChannel.FILE: {
        PaymentMethod.BANK,
        PaymentMethod.CASH,
        PaymentMethod.CHEQUE,
        PaymentMethod.UPI,
        PaymentMethod.NETBANKING,
    },
}


INSTRUMENT_METHODS = {PaymentMethod.CHEQUE, PaymentMethod.DD}


COLLECTING_ROLES = {Role.CRE, Role.BILLING_OFFICER, Role.MANAGER, Role.FIELD_AGENT, Role.ADMIN}


SUSPENSE_STATUSES = {AccountStatus.PERMANENTLY_DISCONNECTED}


# Channels where the payer stands in front of the collector (or the machine): money for a closed
# account is refused there, not taken. Money that arrives on its own (gateway, UPI, file) is kept in
# suspense instead, since it has already left the payer.
PAYER_PRESENT_CHANNELS = {PaymentChannel.COUNTER, PaymentChannel.FIELD_AGENT, PaymentChannel.CARD, PaymentChannel.ATP}


# Channels whose money arrives through a gateway order (webhook) or a UPI credit.
GATEWAY_CHANNELS = (PaymentChannel.ONLINE, PaymentChannel.UPI, PaymentChannel.WALLET)


def _data(name: str) -> dict:
    return regdata.load(f"payments/{name}.toml")


def prepaid_rules_data() -> prepaid_rules.Rules:
    return prepaid_rules.Rules.from_data(_data("prepaid"))


def find_account(consumer_number: str) -> Account:
    number = (consumer_number or "").strip().upper()
    account = Account.objects.select_related("consumer", "section").filter(consumer_number=number).first()
    if account is None:
        raise unknown_account(number)
    return account


def unknown_account(number: str) -> NotFound:
    return NotFound(
        f"no account with consumer number {number!r}", code="unknown_account", details={"consumer_number": number}
    )


@dataclass(frozen=True)
class ReceiptCheck:
    valid: bool
    reason: str
    receipt_number: str
    consumer_number: str = ""
    amount: Decimal | None = None
    day: date | None = None
    status: str = ""


def verify_receipt(*, receipt_number: str, code: str, amount: object | None = None) -> ReceiptCheck:
    """Check a (paper) receipt: the number must exist, the code must be the utility's signature of
    that receipt, and — if given — the amount printed must be the amount received."""
    number = (receipt_number or "").strip().upper()
    payment = Payment.objects.filter(receipt_number=number).first()
    if payment is None:
        return ReceiptCheck(False, "unknown_receipt", number)
    day = timezone.localdate(payment.received_at)
    expected = signing.receipt_code(
        receipt_number=number,
        consumer_number=payment.consumer_number,
        amount=payment.amount,
        day=day,
        key=signing.receipt_key(),
    )
    if not signing.codes_match(expected, code or ""):
        return ReceiptCheck(False, "code_mismatch", number)
    if amount not in (None, ""):
        try:
            printed = paise(amount)
        except MoneyError:
            return ReceiptCheck(False, "amount_mismatch", number)
        if printed != payment.amount:
            return ReceiptCheck(False, "amount_mismatch", number)
    masked = payment.consumer_number[:3] + "*" * max(len(payment.consumer_number) - 6, 0) + payment.consumer_number[-3:]
    return ReceiptCheck(True, "ok", number, masked, payment.amount, day, payment.status)


def cash_in_hand(*, agent) -> Decimal:
    """Cash a field agent has collected and not yet deposited."""
    return cash_in_hand_of([agent.pk])[agent.pk]


def cash_in_hand_of(agent_ids) -> dict[int, Decimal]:
    """`cash_in_hand` of several agents in two grouped queries (a console or a hand-over report lists a
    site's or a day's agents): agent id → cash collected in the field and not yet deposited."""
    ids = list(agent_ids)
    collected = dict(
        Payment.objects.filter(
            collected_by_id__in=ids,
            channel__in=PAYER_PRESENT_CHANNELS - {PaymentChannel.COUNTER},  # counter cash is the session's
            method=PaymentMethod.CASH,
            status__in=[PaymentStatus.POSTED, PaymentStatus.IN_SUSPENSE, PaymentStatus.REFUNDED],
        )
        .values("collected_by_id")
        .annotate(t=Sum("amount"))
        .values_list("collected_by_id", "t")
    )
    deposited = dict(
        CashDeposit.objects.filter(agent_id__in=ids)
        .values("agent_id")
        .annotate(t=Sum("amount"))
        .values_list("agent_id", "t")
    )
    return {i: paise((collected.get(i) or Decimal(0)) - (deposited.get(i) or Decimal(0))) for i in ids}


def allocation_order() -> tuple[list[str], dict[str, list[str]]]:
    data = _data("allocation")["allocation"]
    return list(data["order"]), {k: list(v) for k, v in data["entry_types"].items()}


def allocate_on_ledger(*, account, amount: Decimal, today: date, exclude_entry: int | None = None) -> alloc.Allocation:
    """How `amount` is split over what `account` owes now (replaying earlier credits)."""
    order, entry_types = allocation_order()
    rows = LedgerEntry.objects.filter(account=account).order_by("posted_at", "id")
    if exclude_entry:
        rows = rows.exclude(pk=exclude_entry)
    entries = [
        (pk, etype, amt, due, timezone.localdate(posted))
        for pk, etype, amt, due, posted in rows.values_list("pk", "entry_type", "amount", "due_date", "posted_at")
    ]
    items, _credit = alloc.open_items(entries, today=today, order=order, entry_types=entry_types)
    return alloc.allocate(amount, items, order)


def ledger_histories(account_ids: Sequence[int]) -> defaultdict[int, list]:
    """Each account's ledger in posting order as `allocation.open_items` replays it — (id, type, amount,
    due date, local day posted) — read in chunks of 5,000 accounts; an account with no entry: []."""
    histories: defaultdict[int, list] = defaultdict(list)
    ids = list(account_ids)
    for start in range(0, len(ids), 5000):
        for account_id, pk, etype, amount, due, posted in (
            LedgerEntry.objects.filter(account_id__in=ids[start : start + 5000])
            .order_by("account_id", "posted_at", "id")
            .values_list("account_id", "pk", "entry_type", "amount", "due_date", "posted_at")
        ):
            histories[account_id].append((pk, etype, amount, due, timezone.localdate(posted)))
    return histories


def allocate_payments(
    *,
    payments: Sequence[tuple[int, Decimal, date]],
    balances: dict[int, Decimal],
    histories: dict[int, list] | None = None,
) -> list[alloc.Allocation]:
    """How each payment (account id, amount, day), posted one after the other, is split over what
    its account owes then — what `allocate_on_ledger` gives for each at the time it is posted.
    `balances` are the accounts' balances before the first. An account that owes nothing has no
    open item (allocation.open_items), so its payment is all advance without reading its history;
    only the histories of accounts that owe are read, in one query — those not in `histories`
    (`ledger_histories` of some of them, read already; extended here)."""
    order, entry_types = allocation_order()
    owing = [pk for pk, balance in balances.items() if balance > 0]
    known = histories or {}
    histories = ledger_histories([pk for pk in owing if pk not in known])
    histories.update((pk, list(known[pk])) for pk in owing if pk in known)
    running = dict(balances)
    out = []
    for account_id, amount, day in payments:
        owed = running.get(account_id, Decimal(0))
        if owed > 0:
            items, _credit = alloc.open_items(histories[account_id], today=day, order=order, entry_types=entry_types)
            split = alloc.allocate(amount, items, order)
            # the next payment of the account is split after this one
            histories[account_id].append((0, EntryType.PAYMENT, -amount, None, day))
        else:
            split = alloc.Allocation((), amount)
        running[account_id] = owed - amount
        out.append(split)
    return out


def ledger_balances(account_ids) -> dict[int, Decimal]:
    """What each account owes now (0 for an account with no entries), in one query."""
    ids = list(account_ids)
    out = dict.fromkeys(ids, Decimal("0.00"))
    rows = bulk.select_in(
        "SELECT account_id, SUM(amount) FROM billing_ledgerentry WHERE account_id {in} GROUP BY account_id", ids
    )
    # PostgreSQL sums the numeric(…, 2) column exactly; SQLite's raw SUM may come back as a float
    out.update(rows if connection.vendor == "postgresql" else ((pk, paise(total)) for pk, total in rows))
    return out


def session_totals(session: CashierSession) -> dict:
    rows = (
        session.payments.filter(status__in=[PaymentStatus.POSTED, PaymentStatus.IN_SUSPENSE, PaymentStatus.REVERSED])
        .values("method")
        .annotate(total=Sum("amount"))
    )
    by_method = {row["method"]: paise(row["total"]) for row in rows}
    cash = by_method.get(PaymentMethod.CASH, Decimal("0.00"))
    return {"by_method": by_method, "cash": cash, "expected_cash": paise(session.opening_balance + cash)}


def _collector(rows: dict[int, dict], user_id: int, username: str) -> dict:
    """The hand-over report's row of a collector (cashier or field agent), started at zero."""
    if user_id not in rows:
        rows[user_id] = {
            "user_id": user_id,
            "username": username,
            "by_method": {},
            "collected": Decimal("0.00"),
            "cash": Decimal("0.00"),
            "deposited": Decimal("0.00"),
            "sessions": [],
            "flags": [],
        }
    return rows[user_id]


def handover_report(*, day: date, office_path: str = "") -> dict:
    """Per collector for one day: collected by method, deposited, cash in hand; shortages flagged."""
    tz = timezone.get_current_timezone()
    start = datetime.combine(day, datetime.min.time(), tz)
    end = start + timedelta(days=1)
    payments = Payment.objects.filter(
        received_at__gte=start,
        received_at__lt=end,
        collected_by__isnull=False,
        status__in=[PaymentStatus.POSTED, PaymentStatus.IN_SUSPENSE, PaymentStatus.REVERSED],
    )
    if office_path:
        payments = payments.filter(office__path__startswith=office_path)
    rows: dict[int, dict] = {}
    for row in payments.values("collected_by", "collected_by__username", "channel", "method").annotate(
        total=Sum("amount")
    ):
        entry = _collector(rows, row["collected_by"], row["collected_by__username"])
        entry["by_method"][row["method"]] = entry["by_method"].get(row["method"], Decimal(0)) + row["total"]
        entry["collected"] += row["total"]
        if row["method"] == PaymentMethod.CASH:
            entry["cash"] += row["total"]
    for deposit in (
        CashDeposit.objects.filter(deposited_at__gte=start, deposited_at__lt=end)
        .values("agent", "agent__username")
        .annotate(total=Sum("amount"))
    ):
        entry = _collector(rows, deposit["agent"], deposit["agent__username"])
        entry["deposited"] += deposit["total"]
    for session in CashierSession.objects.filter(opened_at__gte=start, opened_at__lt=end):
        entry = rows.get(session.cashier_id)
        if entry is None:
            continue
        entry["sessions"].append(
            {
                "id": session.pk,
                "status": session.status,
                "expected": session.expected_cash,
                "counted": session.counted_cash,
                "shortage": session.shortage,
            }
        )
        if session.status == CashierSession.Status.OPEN:
            entry["flags"].append("session_not_closed")
        elif session.shortage and session.shortage > 0:
            entry["flags"].append("shortage")
    from django.contrib.auth import get_user_model

    users = get_user_model().objects.in_bulk(list(rows))
    agents = [user_id for user_id in rows if role_of(users.get(user_id)) == Role.FIELD_AGENT]
    in_hand = cash_in_hand_of(agents)
    for user_id, entry in rows.items():
        if user_id in in_hand:
            entry["in_hand"] = in_hand[user_id]
            if entry["in_hand"] > 0:
                entry["flags"].append("cash_not_deposited")
        else:  # a counter's cashier: cash taken and not yet deposited
            entry["in_hand"] = paise(max(entry["cash"] - entry["deposited"], Decimal(0)))
    return {"day": day, "collectors": sorted(rows.values(), key=lambda e: e["username"])}


def upi_vpa() -> str:
    import os

    return getattr(settings, "URJA_UPI_VPA", None) or os.environ.get("URJA_UPI_VPA", "urja.discom@upi")


def upi_intent(order: GatewayOrder) -> str:
    """The UPI deep link (NPCI linking spec): shown as a QR and as a 'pay with UPI app' link."""
    params = {
        "pa": upi_vpa(),
        "pn": getattr(settings, "URJA_UTILITY_NAME", "Urja"),
        "am": f"{order.amount:.2f}",
        "cu": "INR",
        "tr": order.reference,
        "tn": f"Electricity {order.consumer_number or order.account.consumer_number}",
    }
    return "upi://pay?" + urlencode(params, safe="@")


def wallet_balance(*, account: Account) -> Decimal:
    """Money in the wallet (the ledger's credit; negative = emergency credit in use)."""
    return -ledger.balance(account=account)


def day_price_for(account: Account) -> Decimal:
    payg = _data("prepaid")["payg"]
    return Decimal(payg.get("day_price", {}).get(account.package_code, payg["default_day_price"]))


def _office_holidays(account: Account):
    return account.section.calendar().holidays


def device_secret(device: PaygDevice) -> str:
    return signing.device_fernet().decrypt(bytes(device.secret_encrypted)).decode()


def _collection_data() -> dict:
    return _data("collection")


def credit_limit_for(category: str) -> Decimal:
    data = _collection_data()["credit_limit"]
    return Decimal(data.get("by_category", {}).get(category, data["default"]))


def overdue_amounts(*, today: date, account_ids: list[int] | None = None, office_path: str = ""):
    """(account_id, balance, overdue) for post-paid accounts owing something (under `office_path`, if
    given). Credits settle the oldest debits first, so what is overdue is the balance less the debits
    not yet past due + grace."""
    grace = int(_collection_data()["flag"]["grace_days"])
    cutoff = today - timedelta(days=grace)
    cutoff_dt = datetime.combine(cutoff + timedelta(days=1), datetime.min.time(), timezone.get_current_timezone())
    recent = Q(amount__gt=0) & (Q(due_date__gte=cutoff) | Q(due_date__isnull=True, posted_at__gte=cutoff_dt))
    qs = LedgerEntry.objects.filter(account__is_prepaid=False)
    if account_ids is not None:
        qs = qs.filter(account_id__in=account_ids)
    if office_path:
        qs = qs.filter(account__office_path__startswith=office_path)
    rows = (
        qs.values("account").annotate(balance=Sum("amount"), recent=Sum("amount", filter=recent)).filter(balance__gt=0)
    )
    for row in rows.iterator():
        recent_total = row["recent"] or Decimal(0)
        yield row["account"], paise(row["balance"]), paise(max(row["balance"] - recent_total, Decimal(0)))


OPEN_CASE = [
    CollectionCase.Status.FLAGGED,
    CollectionCase.Status.NOTICE_SENT,
    CollectionCase.Status.DISCONNECTION_DUE,
]


def open_collection_cases(account_ids) -> list[tuple[int, int]]:
    """(case, account) of the open collection cases of these accounts (few have one): one lookup."""
    return [
        (case_id, account_id)
        for case_id, account_id in bulk.select_in(
            "SELECT id, account_id FROM payments_collectioncase WHERE status IN (%s, %s, %s) AND account_id {in}",
            list(account_ids),
            OPEN_CASE,
        )
    ]


def disconnection_list(*, office_path: str = "", today: date | None = None):
    """Cases whose notice period has run out: the service desk's disconnection work."""
    qs = CollectionCase.objects.filter(status=CollectionCase.Status.DISCONNECTION_DUE).select_related(
        "account__consumer"
    )
    if office_path:
        qs = qs.filter(account__office_path__startswith=office_path)
    return qs.order_by("pay_by", "id")
