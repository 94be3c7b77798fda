"""Allocation of a payment over what an account owes (pure: no database).

The order of categories is data (data/payments/allocation.toml). Within a category the item with
the oldest due date is settled first (ties: the item key). Whatever is left over is kept as
advance. `open_items` turns a ledger history into the items still open, by replaying every earlier
credit through the same rule, so the split of any payment is reproducible from the ledger alone.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

ZERO = Decimal("0.00")
ADVANCE = "advance"


@dataclass(frozen=True)
class OpenItem:
    category: str
    key: str
    due: date
    amount: Decimal


@dataclass(frozen=True)
class Part:
    category: str
    key: str
    amount: Decimal


@dataclass(frozen=True)
class Allocation:
    parts: tuple[Part, ...]
    advance: Decimal

    def by_category(self) -> dict[str, Decimal]:
        out: dict[str, Decimal] = {}
        for part in self.parts:
            out[part.category] = out.get(part.category, ZERO) + part.amount
        if self.advance:
            out[ADVANCE] = self.advance
        return out

    def as_json(self) -> dict:
        return {
            "parts": [{"category": p.category, "key": p.key, "amount": str(p.amount)} for p in self.parts],
            "advance": str(self.advance),
        }


class AllocationError(ValueError):
    pass


def sort_key(order: Sequence[str]):
    rank = {category: i for i, category in enumerate(order)}

    def key(item: OpenItem):
        if item.category not in rank:
            raise AllocationError(f"category {item.category!r} is not in the allocation order {list(order)}")
        return (rank[item.category], item.due, item.key)

    return key


def allocate(amount: Decimal, items: Iterable[OpenItem], order: Sequence[str]) -> Allocation:
    """Split `amount` (> 0) over `items` in `order`; the rest is advance."""
    if amount <= 0:
        raise AllocationError("only a positive amount can be allocated")
    remaining = amount
    parts: list[Part] = []
    for item in sorted((i for i in items if i.amount > 0), key=sort_key(order)):
        if remaining <= 0:
            break
        take = min(item.amount, remaining)
        parts.append(Part(item.category, item.key, take))
        remaining -= take
    return Allocation(tuple(parts), remaining)


def classify(
    entry_type: str, due: date | None, posted: date, today: date, entry_types: Mapping[str, Sequence[str]]
) -> str | None:
    """The allocation category of a debit entry (None: not allocatable, e.g. a credit type)."""
    for category, types in entry_types.items():
        if entry_type in types:
            if category == "bill":
                return "arrears" if (due or posted) < today else "current"
            return category
    return None


def open_items(
    entries: Iterable[tuple[int, str, Decimal, date | None, date]],
    *,
    today: date,
    order: Sequence[str],
    entry_types: Mapping[str, Sequence[str]],
) -> tuple[list[OpenItem], Decimal]:
    """Items still open after every credit so far has been allocated (and the unused credit).

    `entries` are (id, entry_type, amount, due_date, posted_date) in posting order; debits are
    positive. Credits (negative) are applied in order to the debits posted up to then (later debits
    then consume the advance left over). Reversals net with what they reverse: a reversal of a
    credit is a debit of category "charge"; a reversal of a debit is a credit.
    """
    items: dict[str, OpenItem] = {}
    credit = ZERO
    for entry_id, entry_type, amount, due, posted in entries:
        if amount > 0:
            category = classify(entry_type, due, posted, today, entry_types) or "charge"
            if category not in order:
                category = order[-1]
            item = OpenItem(category, str(entry_id), due or posted, amount)
            if credit > 0:
                take = min(credit, item.amount)
                credit -= take
                item = OpenItem(item.category, item.key, item.due, item.amount - take)
            if item.amount > 0:
                items[item.key] = item
        elif amount < 0:
            result = allocate(-amount, items.values(), order)
            for part in result.parts:
                old = items[part.key]
                left = old.amount - part.amount
                if left > 0:
                    items[part.key] = OpenItem(old.category, old.key, old.due, left)
                else:
                    del items[part.key]
            credit += result.advance
    return sorted(items.values(), key=sort_key(order)), credit
