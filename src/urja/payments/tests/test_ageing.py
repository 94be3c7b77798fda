"""Arrears ageing, one definition (payments.ageing): the ledger replayed through payments' open items and
aged by due date — a hand-computed example."""

from datetime import date, datetime
from decimal import Decimal as D

from urja.billing.ledger import balance, post_entry
from urja.core.calendars import IST
from urja.customers.models import Account
from urja.demo import testing
from urja.payments import ageing


def _at(y, m, d):
    return datetime(y, m, d, 10, 0, tzinfo=IST)


def test_ageing_by_open_items_hand_computed(offices):
    acc = testing.domestic_account(offices["section1"])
    post = [
        ("bill_charge", "1000", date(2026, 1, 15), _at(2026, 1, 5)),
        ("dps", "50", date(2026, 2, 15), _at(2026, 2, 5)),
        ("bill_charge", "800", date(2026, 4, 15), _at(2026, 4, 5)),
        ("payment", "-600", None, _at(2026, 4, 20)),  # arrears first, oldest due: bill 1 → 400 left
        ("bill_charge", "700", date(2026, 7, 10), _at(2026, 6, 25)),  # not yet due on 30 June
        ("payment", "-500", None, _at(2026, 6, 28)),  # bill 1's 400, then 100 of bill 3; DPS after principal
    ]
    for i, (kind, amount, due, at) in enumerate(post):
        post_entry(account=acc, entry_type=kind, amount=amount, description=kind, due_date=due, posted_at=at,
                   idempotency_key=f"ageing-test-{acc.pk}-{i}")  # fmt: skip
    today = date(2026, 6, 30)
    got = ageing.arrears_ageing(accounts=Account.objects.filter(pk=acc.pk), today=today)
    # open: bill 3 700 due 15 Apr (76 days), DPS 50 due 15 Feb (135 days), bill 5 700 not yet due
    assert got == {
        "current": D("700.00"), "1-30": D("0.00"), "31-60": D("0.00"), "61-90": D("700.00"),
        "91-180": D("50.00"), "181-365": D("0.00"), "over 365": D("0.00"),
    }  # fmt: skip
    assert sum(got.values()) == balance(account=acc) == D("1450.00")


def test_advance_leaves_nothing_to_age(offices):
    acc = testing.domestic_account(offices["section1"], mobile="9437099001")
    post_entry(account=acc, entry_type="bill_charge", amount="300", description="bill", due_date=date(2026, 5, 1),
               posted_at=_at(2026, 4, 20), idempotency_key=f"adv-{acc.pk}-1")  # fmt: skip
    post_entry(account=acc, entry_type="payment", amount="-500", description="paid", posted_at=_at(2026, 4, 25),
               idempotency_key=f"adv-{acc.pk}-2")  # fmt: skip
    got = ageing.arrears_ageing(accounts=Account.objects.filter(pk=acc.pk), today=date(2026, 6, 30))
    assert set(got.values()) == {D("0.00")}
