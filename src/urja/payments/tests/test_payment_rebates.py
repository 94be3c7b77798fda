"""A bill paid in full earns its conditional rebates: digital (4% offered on the bill) and by the due date."""

from datetime import date, datetime, time
from decimal import Decimal as D

from urja.billing import ledger
from urja.billing.models import LedgerEntry

# billing's fixtures (payments is the layer above billing): a June bill of Rs 1,175.00, digital rebate −47.00
from urja.billing.tests.conftest import make_account, tariffs_loaded  # noqa: F401
from urja.billing.tests.test_documents_and_views import billed  # noqa: F401
from urja.core.calendars import IST
from urja.payments import services as payments


def pay(bill, amount, *, method, key, day=date(2025, 7, 5)):
    return payments.take_payment(
        actor=None,
        channel="online" if method != "cash" else "atp",
        consumer_number=bill.account.consumer_number,
        amount=amount,
        idempotency_key=key,
        method=method,
        received_at=datetime.combine(day, time(11), IST),
        notify=False,
    )


def rebates(account):
    return list(LedgerEntry.objects.filter(account=account, entry_type="rebate").values_list("amount", flat=True))


def test_paid_in_full_digitally_earns_the_digital_rebate_once(billed):  # noqa: F811
    account = billed.account
    owed = ledger.balance(account=account)
    pay(billed, owed + billed.rebate_digital, method="upi", key="u1")  # what the bill asks net of the rebate
    assert rebates(account) == [D("-47.00")]
    assert ledger.balance(account=account) == 0
    pay(billed, "10.00", method="upi", key="u2")  # a later payment does not credit it again
    assert rebates(account) == [D("-47.00")]


def test_part_payment_or_cash_earns_no_digital_rebate(billed):  # noqa: F811
    account = billed.account
    owed = ledger.balance(account=account)
    pay(billed, "500.00", method="upi", key="p1")  # not paid in full
    assert rebates(account) == []
    pay(billed, owed - D("500.00"), method="cash", key="p2")  # paid in full, but in cash
    assert rebates(account) == [] and ledger.balance(account=account) == 0
