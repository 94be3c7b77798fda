"""Ledger services: post, reverse, balance and arrears ageing. The only writers of LedgerEntry."""

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from urja.core.errors import Conflict, DomainError
from urja.core.money import paise
from urja.core.services import record_audit

from .models import EntryType, LedgerEntry

# Entry types that are credits (reduce what the consumer owes): their amount must be negative.
CREDIT_TYPES = {
    EntryType.PAYMENT,
    EntryType.CREDIT_NOTE,
    EntryType.REBATE,
    EntryType.SUBSIDY,
    EntryType.DEPOSIT_INTEREST,
    EntryType.ADVANCE_INTEREST,
    EntryType.COMPENSATION,
    EntryType.WRITE_OFF,
    EntryType.ESTIMATE_WITHDRAWAL,
}
DEBIT_TYPES = {
    EntryType.BILL_CHARGE,
    EntryType.DEBIT_NOTE,
    EntryType.DPS,
    EntryType.CHARGE,
    EntryType.INSTALMENT,
    EntryType.REFUND,
    EntryType.DEPOSIT_REFUND,
}


def post_entry(
    *,
    account,
    entry_type: str,
    amount: object,
    description: str,
    actor=None,
    channel: str = "system",
    reference_type: str = "",
    reference_id: str = "",
    idempotency_key: str | None = None,
    due_date: date | None = None,
    posted_at: datetime | None = None,
) -> LedgerEntry:
    """Post one entry. With an idempotency key, a repeat returns the entry already posted."""
    value = paise(amount)
    if entry_type not in EntryType.values:
        raise DomainError(f"unknown ledger entry type {entry_type!r}", code="unknown_entry_type")
    if value == 0:
        raise DomainError("a ledger entry cannot be zero", code="zero_amount")
    if entry_type in CREDIT_TYPES and value > 0:
        raise DomainError(f"{entry_type} is a credit and must be negative", code="wrong_sign")
    if entry_type in DEBIT_TYPES and value < 0:
        raise DomainError(f"{entry_type} is a debit and must be positive", code="wrong_sign")
    fields = dict(
        account=account,
        entry_type=entry_type,
        amount=value,
        description=description[:200],
        reference_type=reference_type,
        reference_id=str(reference_id),
        due_date=due_date,
        posted_at=posted_at or timezone.now(),
        created_by=actor if getattr(actor, "pk", None) else None,
        channel=channel,
    )
    with transaction.atomic():
        if idempotency_key:
            entry, created = LedgerEntry.objects.get_or_create(idempotency_key=idempotency_key, defaults=fields)
            if not created and (entry.account_id != account.pk or entry.amount != value):
                raise Conflict(
                    "this idempotency key was used for a different posting",
                    code="idempotency_key_reused",
                    details={"key": idempotency_key},
                )
        else:
            entry, created = LedgerEntry.objects.create(**fields), True
        if created:
            record_audit(
                actor=actor,
                channel=channel,
                action=f"ledger.{entry_type}",
                obj=account,
                changes={"amount": value, "entry": entry.pk, "reference": f"{reference_type}:{reference_id}"},
            )
    return entry


def reverse_entry(*, entry: LedgerEntry, reason: str, actor=None, channel: str = "backoffice") -> LedgerEntry:
    """A reversal is a new entry of the opposite amount pointing at the original."""
    if not reason.strip():
        raise DomainError("a reason is required to reverse an entry", code="reason_required")
    with transaction.atomic():
        original = LedgerEntry.objects.select_for_update().get(pk=entry.pk)
        if original.entry_type == EntryType.REVERSAL:
            raise Conflict("a reversal cannot itself be reversed", code="cannot_reverse_reversal")
        if LedgerEntry.objects.filter(reverses=original).exists():
            raise Conflict(f"entry {original.pk} is already reversed", code="already_reversed")
        reversal = LedgerEntry.objects.create(
            account_id=original.account_id,
            entry_type=EntryType.REVERSAL,
            amount=-original.amount,
            description=f"Reversal: {reason}"[:200],
            reference_type=original.reference_type,
            reference_id=original.reference_id,
            reverses=original,
            posted_at=timezone.now(),
            created_by=actor if getattr(actor, "pk", None) else None,
            channel=channel,
        )
        record_audit(
            actor=actor,
            channel=channel,
            action="ledger.reversal",
            obj=original.account,
            changes={"reverses": original.pk, "amount": reversal.amount, "reason": reason},
        )
    return reversal


def balance(*, account, as_of: datetime | None = None) -> Decimal:
    """What the consumer owes (negative: credit / advance with the utility)."""
    qs = LedgerEntry.objects.filter(account=account)
    if as_of is not None:
        qs = qs.filter(posted_at__lte=as_of)
    return paise(qs.aggregate(total=Sum("amount"))["total"] or 0)


@dataclass(frozen=True)
class AgeingBucket:
    label: str
    min_days: int
    max_days: int | None
    amount: Decimal


AGEING_BUCKETS = [
    ("current", 0, 0),
    ("1-30", 1, 30),
    ("31-60", 31, 60),
    ("61-90", 61, 90),
    ("91-180", 91, 180),
    ("181-365", 181, 365),
    ("over 365", 366, None),
]


def arrears_ageing(*, account, today: date | None = None) -> list[AgeingBucket]:
    """Outstanding debits by age past their due date, oldest paid first (FIFO credits)."""
    from . import ageing

    today = today or timezone.localdate()
    entries = list(LedgerEntry.objects.filter(account=account).values_list("amount", "due_date", "posted_at"))
    return ageing.age(entries, today=today, buckets=AGEING_BUCKETS)
