"""Interest on advance payments, accrued once per period."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.db.models import Sum
from django.utils import timezone

from urja.billing import ledger
from urja.billing.models import EntryType, LedgerEntry
from urja.core.errors import DomainError
from urja.core.money import paise
from urja.customers.models import Account
from urja.payments.models import (
    AdvanceInterestRun,
)
from urja.payments.selectors import (
    _data,
)


def _period_bounds(period: str) -> tuple[datetime, datetime, int]:
    try:
        year, month = (int(p) for p in period.split("-"))
        start_day = date(year, month, 1)
    except ValueError as exc:
        raise DomainError(f"period must be YYYY-MM, got {period!r}", code="invalid_period") from exc
    end_day = date(year + (month == 12), month % 12 + 1, 1)
    tz = timezone.get_current_timezone()
    return (
        datetime.combine(start_day, datetime.min.time(), tz),
        datetime.combine(end_day, datetime.min.time(), tz),
        (end_day - start_day).days,
    )


def accrue_advance_interest(*, period: str, now: datetime | None = None) -> AdvanceInterestRun:
    """Credit interest on advances for a month (simple interest on the smallest advance held during
    the month). Idempotent: once per period; a run killed half-way resumes without doubling."""
    start, end, days = _period_bounds(period)
    if (now or timezone.now()) < end:
        raise DomainError(f"period {period} has not ended yet", code="period_not_ended")
    done = AdvanceInterestRun.objects.filter(period=period).first()
    if done is not None:
        return done
    data = _data("charges")["advance_interest"]
    rate = Decimal(data["annual_rate_percent"]) / 100
    minimum = Decimal(data["minimum_credit"])
    candidates = (
        LedgerEntry.objects.filter(posted_at__lt=end, account__is_prepaid=False)
        .values("account")
        .annotate(total=Sum("amount"))
        .filter(total__lt=0)
        .values_list("account", flat=True)
    )
    accounts, total = 0, Decimal(0)
    for account_id in candidates.iterator():
        opening = LedgerEntry.objects.filter(account_id=account_id, posted_at__lt=start).exclude(
            entry_type=EntryType.ADVANCE_INTEREST, reference_id=period
        ).aggregate(t=Sum("amount"))["t"] or Decimal(0)
        running, highest = opening, opening
        for amount in (
            LedgerEntry.objects.filter(account_id=account_id, posted_at__gte=start, posted_at__lt=end)
            .order_by("posted_at", "id")
            .values_list("amount", flat=True)
        ):
            running += amount
            highest = max(highest, running)
        advance = -highest  # the smallest credit held throughout the month
        if advance < minimum:
            continue
        interest = paise(advance * rate * days / int(data["day_count"]))
        if interest <= 0:
            continue
        account = Account.objects.get(pk=account_id)
        ledger.post_entry(
            account=account,
            entry_type=EntryType.ADVANCE_INTEREST,
            amount=-interest,
            description=f"Interest on advance {advance} for {period} at {data['annual_rate_percent']}% p.a.",
            reference_type="advance_interest",
            reference_id=period,
            idempotency_key=f"advint:{period}:{account_id}",
            posted_at=end - timedelta(seconds=1),
        )
        accounts += 1
        total += interest
    try:
        with transaction.atomic():
            return AdvanceInterestRun.objects.create(period=period, accounts=accounts, total=total)
    except IntegrityError:
        return AdvanceInterestRun.objects.get(period=period)
