"""Group accounts (issue 15.6, seed 000: government departments and industries with many
connections): one payment spread over the group's connections, and the group's consolidated
statement.

The rule (docs/payments.md, "Group payments"): the group's connections in the taker's scope —
permanently disconnected ones excepted, their final dues are settled on their own — are read with
their open items (`allocation.open_items`, every earlier credit replayed), and the payment is
allocated over **all of them together in the allocation order of data/payments/allocation.toml**:
instalments first, then arrears oldest due date first, DPS, current bills, other charges; ties by
consumer number. So a department's oldest arrears on any connection are cleared before a newer bill
on another, the same order a single connection's payment follows. What is left over after every open
item is kept as advance on the group's first connection (lowest consumer number). Each connection's
part is an ordinary payment through `services.take_payment` (same receipts, ledger entries, audit),
so the connection's own allocation of its part gives the same split.

Paisa-exact: the parts are sums of item amounts (2 places) and the remainder, so they add up to the
payment exactly (property test against a reference). Idempotent: the plan is stored first
(GroupPayment.spread, unique per channel and key); a replay with the same key posts the stored
parts under their own keys (`G<id>:<consumer number>`), which take_payment answers with the first
payment — nothing is posted twice, and an interrupted group payment is finished with the same parts.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.db.models import Sum
from django.utils import timezone

from urja.billing.models import LedgerEntry
from urja.core import scope
from urja.core.errors import Conflict, DomainError
from urja.core.models import Role
from urja.core.money import paise
from urja.core.permissions import role_of
from urja.core.services import record_audit
from urja.customers.models import Account, AccountGroup

from . import allocation as alloc
from . import selectors, services
from .models import GroupPayment, Payment, PaymentChannel, PaymentMethod

ZERO = Decimal("0.00")
# Who takes a group payment: the counter's collectors (cheque / DD at the counter, their session) and
# the back office recording a department's bank transfer (NEFT/RTGS, channel "file", with the UTR).
GROUP_ROLES = (Role.CRE, Role.BILLING_OFFICER, Role.MANAGER, Role.KEY_ACCOUNT_MANAGER, Role.ADMIN)
GROUP_CHANNELS = {
    PaymentChannel.COUNTER: (PaymentMethod.CHEQUE, PaymentMethod.DD, PaymentMethod.CASH),
    PaymentChannel.FILE: (PaymentMethod.BANK,),
}
EXCLUDED_STATUSES = tuple(selectors.SUSPENSE_STATUSES)


# --- the pure rule ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Share:
    account: str  # the connection's key (consumer number)
    amount: Decimal
    by_category: dict[str, Decimal]


def spread(
    amount: Decimal, items: Mapping[str, Sequence[alloc.OpenItem]], order: Sequence[str], advance_to: str
) -> list[Share]:
    """Split `amount` (> 0, 2 places) over the connections' open items, all together in `order`
    (category, then oldest due, then connection); the rest is advance on `advance_to`.
    One share per connection that gets something, in connection order; the shares sum to `amount`."""
    if advance_to not in items:
        raise alloc.AllocationError(f"{advance_to!r} is not one of the group's connections")
    combined = [
        alloc.OpenItem(item.category, f"{account}\x1f{item.key}", item.due, item.amount)
        for account, account_items in items.items()
        for item in account_items
    ]
    result = alloc.allocate(amount, combined, order)
    parts: dict[str, dict[str, Decimal]] = defaultdict(dict)
    for part in result.parts:
        account = part.key.split("\x1f", 1)[0]
        parts[account][part.category] = parts[account].get(part.category, ZERO) + part.amount
    if result.advance:
        parts[advance_to][alloc.ADVANCE] = parts[advance_to].get(alloc.ADVANCE, ZERO) + result.advance
    return [
        Share(account, sum(parts[account].values(), ZERO), dict(parts[account]))
        for account in sorted(parts)
        if sum(parts[account].values(), ZERO) > 0
    ]


# --- reading the group ----------------------------------------------------------------------------


def group_accounts(*, actor, group_id: int) -> tuple[AccountGroup, list[Account]]:
    """The group and its connections in the actor's scope (consumer-number order). A group with no
    connection in scope answers like one that does not exist."""
    if not 0 < group_id < 2**63:  # an id no database row can have (the API takes any integer)
        raise scope.not_found("group", group_id)
    accounts = list(
        scope.scope_accounts(actor, Account.objects.filter(group_id=group_id))
        .select_related("consumer", "group", "section")
        .order_by("consumer_number")
    )
    if not accounts:
        raise scope.not_found("group", group_id)
    return accounts[0].group, accounts


def open_items(accounts: Sequence[Account], *, today: date) -> dict[str, list[alloc.OpenItem]]:
    """Each connection's open items now (every earlier credit replayed), in one query."""
    order, entry_types = selectors.allocation_order()
    histories = selectors.ledger_histories([a.pk for a in accounts])
    out = {}
    for account in accounts:
        items, _credit = alloc.open_items(histories[account.pk], today=today, order=order, entry_types=entry_types)
        out[account.consumer_number] = items
    return out


def plan(*, accounts: Sequence[Account], amount: Decimal, today: date) -> list[Share]:
    eligible = [a for a in accounts if a.status not in EXCLUDED_STATUSES]
    if not eligible:
        raise DomainError(
            "no connection of the group in your area can take a payment", code="group_has_no_payable_connection"
        )
    order, _types = selectors.allocation_order()
    return spread(amount, open_items(eligible, today=today), order, advance_to=eligible[0].consumer_number)


def statement(*, actor, group_id: int, today: date | None = None) -> dict:
    """The consolidated statement: each connection in scope with its balance and its open items by
    category (what a group payment would settle, in order), the totals, and the recent group payments."""
    group, accounts = group_accounts(actor=actor, group_id=group_id)
    today = today or timezone.localdate()
    items = open_items(accounts, today=today)
    balances = dict(
        LedgerEntry.objects.filter(account__in=accounts)
        .values("account_id")
        .annotate(t=Sum("amount"))
        .values_list("account_id", "t")
    )
    rows = []
    for account in accounts:
        own = items[account.consumer_number]
        by_category: dict[str, Decimal] = defaultdict(lambda: ZERO)
        for item in own:
            by_category[item.category] += item.amount
        rows.append(
            {
                "account": account,
                "balance": paise(balances.get(account.pk) or 0),
                "open": sum((i.amount for i in own), ZERO),
                "by_category": dict(by_category),
                "oldest_due": min((i.due for i in own), default=None),
                "payable": account.status not in EXCLUDED_STATUSES,
            }
        )
    payments = GroupPayment.objects.filter(group=group).select_related("taken_by")[:20]
    return {
        "group": group,
        "rows": rows,
        "total_balance": sum((r["balance"] for r in rows), ZERO),
        "total_open": sum((r["open"] for r in rows), ZERO),
        "payments": list(payments),
        "today": today,
    }


# --- taking a group payment ------------------------------------------------------------------------


def _check(*, actor, channel: str, method: str, key: str) -> str:
    if role_of(actor) not in GROUP_ROLES:
        raise scope.not_found("group")  # pages refuse the role first; the API answers like nothing there
    if channel not in GROUP_CHANNELS:
        raise DomainError(
            "a group payment is taken at the counter or recorded as a bank transfer",
            code="unknown_channel",
            details={"allowed": sorted(GROUP_CHANNELS)},
        )
    if method not in GROUP_CHANNELS[channel]:
        raise DomainError(
            f"{channel} does not take {method} for a group",
            code="method_not_allowed",
            details={"allowed": list(GROUP_CHANNELS[channel])},
        )
    key = (key or "").strip()
    if not key or len(key) > 100:
        raise DomainError("an idempotency key (1–100 characters) is required", code="idempotency_key_required")
    return key


def _same_or_conflict(existing: GroupPayment, group_id: int, amount: Decimal) -> GroupPayment:
    if existing.group_id != group_id or existing.amount != amount:
        raise Conflict(
            "this key was already used for another group payment",
            code="idempotency_conflict",
            details={"group": existing.group_id, "amount": str(existing.amount)},
        )
    return existing


def take_group_payment(
    *,
    actor,
    group_id: int,
    amount: object,
    channel: str,
    method: str,
    idempotency_key: str,
    reference: str = "",
    instrument_number: str = "",
    instrument_bank: str = "",
    instrument_date: date | None = None,
    received_at: datetime | None = None,
) -> GroupPayment:
    """Take one payment for the group and post its parts on the connections (see the module doc).
    All or nothing: a part refused (no open cashier session, a role that may not collect on the
    channel, a cheque without its number) leaves nothing posted. A repeat of (channel, key) returns
    the first group payment; the same key for another group or amount answers 409."""
    value = services.validate_amount(amount)
    key = _check(actor=actor, channel=channel, method=method, key=idempotency_key)
    if method in selectors.INSTRUMENT_METHODS and not instrument_number.strip():
        raise DomainError("cheque / DD number is required", code="instrument_required")
    if channel == PaymentChannel.FILE and not reference.strip():
        raise DomainError("give the bank transfer's UTR / reference", code="reference_required")
    group, accounts = group_accounts(actor=actor, group_id=group_id)
    existing = GroupPayment.objects.filter(channel=channel, idempotency_key=key).first()
    if existing is not None:
        _same_or_conflict(existing, group_id, value)
        return existing if existing.posted else _post_parts(existing, actor=actor)
    try:
        with transaction.atomic():
            # lock the connections so the dues read are the dues the parts settle
            locked = list(
                Account.objects.select_for_update().filter(pk__in=[a.pk for a in accounts]).order_by("consumer_number")
            )
            shares = plan(accounts=locked, amount=value, today=timezone.localdate())
            ids = {a.consumer_number: a.pk for a in locked}
            gp = GroupPayment.objects.create(
                group=group,
                channel=channel,
                method=method,
                idempotency_key=key,
                amount=value,
                reference=reference.strip()[:64],
                instrument_number=instrument_number.strip()[:20],
                received_at=received_at or timezone.now(),
                taken_by=actor if getattr(actor, "pk", None) else None,
                spread=[
                    {
                        "consumer_number": s.account,
                        "account_id": ids[s.account],
                        "amount": str(s.amount),
                        "by_category": {k: str(v) for k, v in s.by_category.items()},
                    }
                    for s in shares
                ],
            )
            _post_parts(gp, actor=actor, instrument_bank=instrument_bank, instrument_date=instrument_date)
    except IntegrityError:
        existing = GroupPayment.objects.filter(channel=channel, idempotency_key=key).first()
        if existing is None:
            raise
        _same_or_conflict(existing, group_id, value)
        return existing if existing.posted else _post_parts(existing, actor=actor)
    return gp


@transaction.atomic
def _post_parts(gp: GroupPayment, *, actor, instrument_bank: str = "", instrument_date: date | None = None):
    for part in gp.spread:
        services.take_payment(
            actor=actor,
            channel=gp.channel,
            consumer_number=part["consumer_number"],
            amount=part["amount"],
            idempotency_key=part_key(gp, part["consumer_number"]),
            method=gp.method,
            reference=gp.reference or f"group payment {gp.pk}",
            instrument_number=gp.instrument_number,
            instrument_bank=instrument_bank,
            instrument_date=instrument_date,
            received_at=gp.received_at,
            notify=False,
        )
    gp.posted = True
    gp.save(update_fields=["posted"])
    record_audit(
        actor=actor,
        channel="backoffice" if gp.channel == PaymentChannel.COUNTER else "import",
        action="group_payment.taken",
        obj=gp.group,
        changes={"group_payment": gp.pk, "amount": str(gp.amount), "parts": len(gp.spread), "channel": gp.channel},
    )
    return gp


def part_key(gp: GroupPayment, consumer_number: str) -> str:
    return f"G{gp.pk}:{consumer_number}"


def parts(gp: GroupPayment) -> list[Payment]:
    """The payments a group payment posted, in connection order."""
    keys = [part_key(gp, p["consumer_number"]) for p in gp.spread]
    return list(Payment.objects.filter(channel=gp.channel, idempotency_key__in=keys).order_by("consumer_number"))


def scoped_group_payment(*, actor, group_payment_id: int) -> GroupPayment:
    """A group payment of a group with a connection in the actor's scope (else: as nonexistent)."""
    gp = GroupPayment.objects.select_related("group").filter(pk=group_payment_id).first()
    if gp is None or not scope.scope_accounts(actor, Account.objects.filter(group_id=gp.group_id)).exists():
        raise scope.not_found("group_payment", group_payment_id)
    return gp
