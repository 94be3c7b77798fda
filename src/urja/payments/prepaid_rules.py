"""Prepaid decisions (pure): alert thresholds, the protected window, what to do at a balance."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal


@dataclass(frozen=True)
class Rules:
    thresholds: tuple[Decimal, ...]  # descending
    emergency_credit: Decimal
    protected_from: time
    protected_to: time
    protected_weekdays: frozenset[int]
    protect_holidays: bool
    rebate_percent: Decimal

    @classmethod
    def from_data(cls, data: dict) -> Rules:
        def hhmm(text: str) -> time:
            hours, minutes = text.split(":")
            return time(int(hours), int(minutes))

        return cls(
            thresholds=tuple(sorted((Decimal(t) for t in data["alerts"]["thresholds"]), reverse=True)),
            emergency_credit=Decimal(data["emergency"]["credit"]),
            protected_from=hhmm(data["protected"]["from"]),
            protected_to=hhmm(data["protected"]["to"]),
            protected_weekdays=frozenset(int(d) for d in data["protected"].get("weekdays", [])),
            protect_holidays=bool(data["protected"].get("holidays", True)),
            rebate_percent=Decimal(data["rebate"]["percent"]),
        )


def in_protected_window(local: datetime, rules: Rules, holidays: Iterable[date] = ()) -> bool:
    """True when disconnection is not allowed at this local time."""
    if local.weekday() in rules.protected_weekdays:
        return True
    if rules.protect_holidays and local.date() in set(holidays):
        return True
    start, end, now = rules.protected_from, rules.protected_to, local.time()
    if start == end:
        return False
    if start < end:
        return start <= now < end
    return now >= start or now < end  # wraps midnight


def alert_due(balance: Decimal, thresholds: Sequence[Decimal], already: Decimal | None) -> Decimal | None:
    """The lowest threshold the balance is at or below that has not been alerted yet (or None)."""
    crossed = [t for t in thresholds if balance <= t]
    if not crossed:
        return None
    lowest = min(crossed)
    if already is not None and lowest >= already:
        return None
    return lowest


def supply_action(*, balance: Decimal, connected: bool, rules: Rules, protected: bool) -> str | None:
    """'disconnect', 'reconnect' or None. `balance` is money in the wallet (negative = debt)."""
    if connected and balance <= -rules.emergency_credit and not protected:
        return "disconnect"
    if not connected and balance >= 0 and balance > -rules.emergency_credit:
        return "reconnect"
    return None


def rebate(amount: Decimal, rules: Rules) -> Decimal:
    from urja.core.money import paise

    return paise(amount * rules.rebate_percent / 100)
