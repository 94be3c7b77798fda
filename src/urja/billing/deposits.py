"""Security deposit (OERC Supply Code regs 52-55; seed 001), amounts from data/billing/billing.toml.

Movements are ledger entries of type `deposit` (positive: a deposit demanded — the consumer owes it;
negative: deposit applied to the account — surplus refunded through the bill, recovery of dues on
default, refund on surrender) and `deposit_interest` (credit). SecurityDeposit.held is the sum of
the account's `deposit` entries; `required` is what the last review asked for.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from urja.core import regdata
from urja.core.errors import DomainError
from urja.core.money import paise
from urja.core.services import record_audit

from . import ledger
from .models import Bill, EntryType, LedgerEntry, SecurityDeposit


def rules() -> dict:
    return regdata.load("billing/billing.toml")["deposit"]


def financial_year(day: date) -> tuple[str, date, date]:
    start_year = day.year if day.month >= 4 else day.year - 1
    return f"{start_year}-{(start_year + 1) % 100:02d}", date(start_year, 4, 1), date(start_year + 1, 3, 31)


def held(account) -> Decimal:
    total = LedgerEntry.objects.filter(account=account, entry_type=EntryType.DEPOSIT).aggregate(t=Sum("amount"))["t"]
    return paise(total or 0)


def _at(day: date | None):
    return None if day is None else timezone.make_aware(timezone.datetime.combine(day, timezone.datetime.min.time()))


def _record(account) -> SecurityDeposit:
    dep, _ = SecurityDeposit.objects.select_for_update().get_or_create(account=account)
    return dep


@transaction.atomic
def demand_initial(
    *, account, estimated_monthly_bill: object, on: date | None = None, actor=None, channel: str = "system"
) -> LedgerEntry:
    """New connection: N months' estimated bill (seed 001: from the estimated monthly bill)."""
    months = Decimal(str(rules()["months"]))
    amount = paise(Decimal(str(estimated_monthly_bill)) * months)
    if amount <= 0:
        raise DomainError("the estimated monthly bill must be positive", code="invalid_amount")
    dep = _record(account)
    entry = ledger.post_entry(account=account, entry_type=EntryType.DEPOSIT, amount=amount,
                              description=f"Security deposit ({months} months' estimated bill)", actor=actor,
                              channel=channel, reference_type="deposit", reference_id=str(dep.pk),
                              idempotency_key=f"deposit:{account.pk}:initial",
                              due_date=on or timezone.localdate(), posted_at=_at(on))  # fmt: skip
    dep.required, dep.held = amount, held(account)
    dep.save()
    return entry


@transaction.atomic
def demand_top_up(
    *,
    account,
    estimated_monthly_bill: object,
    reference: str,
    actor=None,
    channel: str = "system",
    on: date | None = None,
) -> tuple[Decimal, LedgerEntry | None]:
    """A change of load (or of category) raises the estimated bill: demand what the deposit now falls
    short of N months' estimate. Returns (required, the demand or None when the deposit covers it).
    Idempotent per `reference` (e.g. the change request's number)."""
    required = paise(Decimal(str(estimated_monthly_bill)) * Decimal(str(rules()["months"])))
    dep = _record(account)
    shortfall = required - held(account)
    entry = None
    if shortfall > 0:
        entry = ledger.post_entry(account=account, entry_type=EntryType.DEPOSIT, amount=shortfall,
                                  description=f"Additional security deposit for {reference}", actor=actor,
                                  channel=channel, reference_type="deposit", reference_id=str(dep.pk),
                                  idempotency_key=f"deposit:{account.pk}:top_up:{reference}",
                                  due_date=on or timezone.localdate(), posted_at=_at(on))  # fmt: skip
    dep.required, dep.held = required, held(account)
    dep.save()
    return required, entry


@transaction.atomic
def annual_review(*, account, on: date, actor=None, channel: str = "system") -> dict:
    """Review on the previous financial year's average bill: demand more with notice, or refund the surplus
    above the tolerance through the bill. Idempotent per account and financial year."""
    r = rules()
    fy, fy_start, _fy_end = financial_year(on)
    prev_fy, prev_start, prev_end = financial_year(fy_start - timedelta(days=1))
    bills = Bill.objects.filter(
        account=account, kind=Bill.Kind.BILL, period_start__gte=prev_start, period_end__lte=prev_end
    )
    months = bills.count()
    if not months:
        return {"fy": fy, "action": "none", "reason": f"no bills in FY {prev_fy}"}
    average = paise(sum((b.total for b in bills), Decimal(0)) / months)
    required = paise(average * Decimal(str(r["months"])))
    dep = _record(account)
    have = held(account)
    dep.required, dep.held, dep.last_reviewed_on = required, have, on
    result = {"fy": fy, "average_bill": average, "required": required, "held": have, "action": "none"}
    key = f"deposit:{account.pk}:review:{fy}"
    tolerance = required * Decimal(str(r["surplus_refund_above_percent"])) / 100
    if have < required:
        shortfall = required - have
        due = on + timedelta(days=int(r["additional_notice_days"]))
        ledger.post_entry(account=account, entry_type=EntryType.DEPOSIT, amount=shortfall,
                          description=f"Additional security deposit (review FY {prev_fy}); payable by {due:%d-%m-%Y}",
                          actor=actor, channel=channel, reference_type="deposit", reference_id=str(dep.pk),
                          idempotency_key=key, due_date=due, posted_at=_at(on))  # fmt: skip
        dep.additional_demanded, dep.additional_due_on = shortfall, due
        result.update(action="additional_demanded", amount=shortfall, due_date=due)
    elif have - required > tolerance:
        surplus = have - required
        ledger.post_entry(account=account, entry_type=EntryType.DEPOSIT, amount=-surplus,
                          description=f"Security deposit surplus refunded through the bill (review FY {prev_fy})",
                          actor=actor, channel=channel, reference_type="deposit", reference_id=str(dep.pk),
                          idempotency_key=key, posted_at=_at(on))  # fmt: skip
        result.update(action="surplus_refunded", amount=surplus)
    dep.held = held(account)
    dep.save()
    record_audit(actor=actor, channel=channel, action="deposit.reviewed", obj=account, changes=result)
    return result


@transaction.atomic
def credit_interest(*, account, fy: str, actor=None, channel: str = "system") -> LedgerEntry | None:
    """Yearly interest at the regulator's rate on the deposit held at the end of the financial year."""
    rates = {row["fy"]: Decimal(str(row["rate_percent"])) for row in rules()["interest"]}
    if fy not in rates:
        raise DomainError(f"no interest rate for FY {fy} in data/billing/billing.toml", code="no_interest_rate")
    start_year = int(fy[:4])
    year_end = timezone.make_aware(timezone.datetime(start_year + 1, 3, 31, 23, 59, 59))
    balance = LedgerEntry.objects.filter(account=account, entry_type=EntryType.DEPOSIT, posted_at__lte=year_end)
    base = paise(balance.aggregate(t=Sum("amount"))["t"] or 0)
    interest = paise(base * rates[fy] / 100)
    if interest <= 0:
        return None
    dep = _record(account)
    entry = ledger.post_entry(account=account, entry_type=EntryType.DEPOSIT_INTEREST, amount=-interest,
                              description=f"Interest on security deposit Rs {base} at {rates[fy]}% for FY {fy}",
                              actor=actor, channel=channel, reference_type="deposit", reference_id=str(dep.pk),
                              idempotency_key=f"deposit:{account.pk}:interest:{fy}")  # fmt: skip
    dep.interest_credited_for = fy
    dep.save()
    return entry


@transaction.atomic
def apply_to_dues(*, account, reason: str, actor=None, channel: str = "system") -> LedgerEntry | None:
    """Recovery on default (seed 001) or refund on surrender: the deposit is applied to the account.
    What is left in the consumer's favour is then refunded by payments (a `refund` entry)."""
    if not reason.strip():
        raise DomainError("a reason is required", code="reason_required")
    amount = held(account)
    if amount <= 0:
        return None
    dep = _record(account)
    entry = ledger.post_entry(
        account=account,
        entry_type=EntryType.DEPOSIT,
        amount=-amount,
        description=f"Security deposit applied: {reason}"[:200],
        actor=actor,
        channel=channel,
        reference_type="deposit",
        reference_id=str(dep.pk),
        idempotency_key=f"deposit:{account.pk}:applied:{timezone.now():%Y%m%d%H%M%S%f}",
    )
    dep.held = held(account)
    dep.save()
    return entry
