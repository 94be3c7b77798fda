"""Estimate true-up: what an actual reading gives back when earlier estimated bills billed too much.

An estimated bill is provisional. When the next actual reading shows that the estimates since the
last actual reading ran ahead of the register, the new bill charges 0 units and withdraws the
surplus from the estimated bills, latest first. Each estimated bill is recomputed by the tariff
engine with its units less the withdrawn ones; the difference of the two totals is credited (an
`estimate_withdrawal` ledger entry). So over the estimated months the units billed, less those
withdrawn, equal the register advance, and the charges are exactly those of the corrected units.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from .models import Bill

ESTIMATED = ("estimated", "provisional")


@dataclass
class Withdrawal:
    units: Decimal  # kWh withdrawn (≥ 0)
    credit: Decimal = Decimal(0)  # Rs, ≤ 0
    bills: list[dict] = field(default_factory=list)  # per estimated bill: number, units, credit


def estimated_bills_since(*, account_id: int, since: date, before: date) -> list[Bill]:
    """The account's estimated bills whose period ends on or after `since` (the last actual reading's
    day) and starts before `before` (the period being billed now), latest first."""
    return list(
        Bill.objects.filter(
            account_id=account_id,
            kind=Bill.Kind.BILL,
            units_status__in=ESTIMATED,
            period_end__gte=since,
            period_start__lt=before,
        ).order_by("-period_start", "-id")
    )


def withdraw(*, bills: list[Bill], units: Decimal) -> Withdrawal:
    """Withdraw `units` from the estimated `bills` (latest first), valuing each with the engine."""
    from .services import bill_lines

    result = Withdrawal(units=units)
    remaining = units
    for bill in bills:
        if remaining <= 0:
            break
        take = min(remaining, bill.units)
        if take <= 0:
            continue
        as_billed = bill_lines(bill)
        corrected = bill_lines(bill, units=bill.units - take)
        # A smaller consumption never costs more; min() keeps a credit a credit whatever the slabs.
        credit = min(Decimal(0), corrected.total - as_billed.total)
        result.credit += credit
        result.bills.append({"bill": bill.bill_number, "units": str(take), "credit": str(credit)})
        remaining -= take
    return result
