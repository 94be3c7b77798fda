"""The pure allocation engine against a deliberately simple reference."""

from datetime import date, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from urja.payments import allocation as alloc

ORDER = ["instalment", "arrears", "dps", "current", "charge"]
TYPES = {"instalment": ["instalment"], "dps": ["dps"], "bill": ["bill_charge"], "charge": ["charge"]}

money = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("5000"), places=2)
items = st.lists(
    st.builds(
        alloc.OpenItem,
        category=st.sampled_from(ORDER),
        key=st.uuids().map(str),
        due=st.dates(min_value=date(2024, 1, 1), max_value=date(2025, 12, 31)),
        amount=money,
    ),
    max_size=12,
)


def reference(amount, open_items, order):
    """Pay category by category, oldest first, one paisa at a time is too slow: one item at a time."""
    left = amount
    paid = {}
    for category in order:
        for item in sorted([i for i in open_items if i.category == category], key=lambda i: (i.due, i.key)):
            take = item.amount if left >= item.amount else left
            if take:
                paid[item.key] = take
            left -= take
    return paid, left


@given(amount=money, open_items=items)
@settings(max_examples=300, deadline=None)
def test_allocate_matches_reference(amount, open_items):
    result = alloc.allocate(amount, open_items, ORDER)
    paid, left = reference(amount, open_items, ORDER)
    assert {p.key: p.amount for p in result.parts} == paid
    assert result.advance == left
    # conservation: nothing lost or invented, nothing over-paid
    assert sum((p.amount for p in result.parts), Decimal(0)) + result.advance == amount
    owed = {i.key: i.amount for i in open_items}
    assert all(Decimal(0) < p.amount <= owed[p.key] for p in result.parts)
    # order: a later category is touched only once every earlier one is fully paid
    touched = {p.category for p in result.parts}
    for part in result.parts:
        rank = ORDER.index(part.category)
        for item in open_items:
            if ORDER.index(item.category) < rank:
                assert sum((p.amount for p in result.parts if p.key == item.key), Decimal(0)) == item.amount
    assert touched <= set(ORDER)


entries = st.lists(
    st.tuples(
        st.sampled_from(["bill_charge", "dps", "instalment", "charge", "payment"]),
        money,
        st.integers(min_value=-60, max_value=30),
    ),
    max_size=15,
)


@given(history=entries)
@settings(max_examples=200, deadline=None)
def test_open_items_conserve_the_balance(history):
    """Whatever the history, what is still open minus unused credit equals the ledger balance."""
    today = date(2025, 6, 15)
    rows = []
    for i, (etype, amount, due_offset) in enumerate(history):
        signed = -amount if etype == "payment" else amount
        due = today + timedelta(days=due_offset)
        rows.append((i, etype, signed, due if etype != "payment" else None, today - timedelta(days=60 - i)))
    open_, credit = alloc.open_items(rows, today=today, order=ORDER, entry_types=TYPES)
    balance = sum((r[2] for r in rows), Decimal(0))
    assert sum((i.amount for i in open_), Decimal(0)) - credit == balance
    assert credit >= 0 and all(i.amount > 0 for i in open_)
    assert not (credit > 0 and open_)  # credit left over only when nothing is open


def test_bills_split_into_arrears_and_current():
    today = date(2025, 6, 15)
    rows = [
        (1, "bill_charge", Decimal("100"), date(2025, 5, 1), date(2025, 4, 20)),
        (2, "bill_charge", Decimal("50"), date(2025, 6, 20), date(2025, 6, 13)),
    ]
    open_, _ = alloc.open_items(rows, today=today, order=ORDER, entry_types=TYPES)
    assert [(i.category, i.amount) for i in open_] == [("arrears", Decimal("100")), ("current", Decimal("50"))]


def test_non_positive_amount_refused():
    with pytest.raises(alloc.AllocationError):
        alloc.allocate(Decimal("0"), [], ORDER)
