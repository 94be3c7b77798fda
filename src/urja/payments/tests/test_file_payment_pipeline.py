"""A settlement-file payment goes through the same post-payment steps as a counter payment:
receipt number and verification code, allocation over what is owed, the bill's conditional
rebates when paid in full, collection-case settlement (they used to get none of these)."""

import io
from datetime import date
from decimal import Decimal as D

from urja.billing import ledger
from urja.billing.models import LedgerEntry

# billing's fixtures (payments is the layer above billing): a June bill of Rs 1,175.00, digital rebate −47.00
from urja.billing.tests.conftest import make_account, tariffs_loaded  # noqa: F401
from urja.billing.tests.test_documents_and_views import billed  # noqa: F401
from urja.payments import selectors
from urja.payments import services as payments
from urja.payments.models import CollectionCase, Payment


def import_rows(rows, source="SBI"):
    text = "row_key,consumer_number,amount,paid_at,method\n" + "".join(f"{r}\n" for r in rows)
    return payments.import_settlement(actor=None, source=source, filename="f.csv", stream=io.BytesIO(text.encode()))


def rebates(account):
    return sorted(LedgerEntry.objects.filter(account=account, entry_type="rebate").values_list("amount", flat=True))


def test_file_payment_in_full_earns_rebate_allocation_receipt_and_settles_the_case(billed):  # noqa: F811
    account = billed.account
    owed = ledger.balance(account=account)
    case = CollectionCase.objects.create(
        account=account, reason="overdue", flagged_on=date(2025, 7, 1), amount_due=owed
    )
    amount = owed + billed.rebate_digital  # what the bill asks net of the digital rebate
    batch = import_rows([f"T1,{account.consumer_number},{amount},2025-07-05 11:00,upi"])
    assert batch.posted == 1, batch.report
    payment = Payment.objects.get(batch=batch)
    # the bill's digital rebate, credited once, and the account is paid up
    assert D("-47.00") in rebates(account)
    assert ledger.balance(account=account) == 0 and payment.balance_after == 0
    # allocation: the whole amount settles the bill's charges, nothing left as advance
    assert D(payment.allocation["advance"]) == 0
    assert sum(D(p["amount"]) for p in payment.allocation["parts"]) == amount
    # a receipt like the counter's: numbered in the office's file series, with a code that verifies
    assert payment.receipt_number and payment.verification_code
    check = selectors.verify_receipt(receipt_number=payment.receipt_number, code=payment.verification_code)
    assert check.valid and check.amount == amount
    case.refresh_from_db()
    assert case.status == CollectionCase.Status.SETTLED
    # the same file again: nothing more (no second rebate, no second payment)
    again = import_rows([f"T1,{account.consumer_number},{amount},2025-07-05 11:00,upi"])
    assert again.posted == 0 and again.duplicates == 1
    assert ledger.balance(account=account) == 0


def test_file_part_payments_allocate_in_turn_and_cash_earns_no_digital_rebate(billed):  # noqa: F811
    account = billed.account
    owed = ledger.balance(account=account)
    batch = import_rows(
        [
            f"P1,{account.consumer_number},500.00,2025-07-05 10:00,cash",
            f"P2,{account.consumer_number},{owed - D('500.00') + D('20.00')},2025-07-05 11:00,cash",
        ]
    )
    assert batch.posted == 2, batch.report
    first, second = Payment.objects.filter(batch=batch).order_by("received_at")
    assert D(first.allocation["advance"]) == 0 and first.balance_after == owed - D("500.00")
    # the second pays the rest and leaves 20.00 as advance
    assert D(second.allocation["advance"]) == D("20.00") and second.balance_after == D("-20.00")
    assert D("-47.00") not in rebates(account)  # cash is not digital
    # the same split as the counter would make, one after the other
    first_split = selectors.allocate_payments(payments=[(account.pk, D("1.00"), date(2025, 7, 5))], balances={})
    assert first_split[0].advance == D("1.00")  # an account not known to owe: all advance


def test_an_account_paid_in_several_chunks_carries_its_balance_and_rebate(billed, monkeypatch):  # noqa: F811
    # the import reads an account's balance once and carries it (with its own payments and rebates)
    # into later chunks: the result is what one chunk, or the counter one by one, gives
    from urja.payments import settlement

    monkeypatch.setattr(settlement, "CHUNK", 1)
    account = billed.account
    owed = ledger.balance(account=account)
    rest = owed + billed.rebate_digital - D("300.00")  # with the digital rebate, this pays in full
    batch = import_rows(
        [
            f"C1,{account.consumer_number},300.00,2025-07-05 10:00,upi",
            f"C2,{account.consumer_number},{rest},2025-07-05 11:00,upi",
            f"C3,{account.consumer_number},50.00,2025-07-05 12:00,upi",
        ]
    )
    assert batch.posted == 3, batch.report
    first, second, third = Payment.objects.filter(batch=batch).order_by("received_at")
    assert first.balance_after == owed - D("300.00")
    assert D(first.allocation["advance"]) == 0
    # the second earns the digital rebate (once) and leaves nothing owed
    assert rebates(account) == [D("-47.00")]
    assert second.balance_after == 0 and D(second.allocation["advance"]) == 0
    # the third is all advance over a paid-up account
    assert third.balance_after == D("-50.00") and D(third.allocation["advance"]) == D("50.00")
    assert ledger.balance(account=account) == D("-50.00")
