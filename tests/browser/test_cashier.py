"""Issue 5: the cashier screen — find account, take payment, print receipt, next — in a real browser."""

import pytest
from playwright.sync_api import expect

from urja.billing import ledger
from urja.demo import testing
from urja.payments.models import Payment

pytestmark = pytest.mark.browser


@pytest.fixture
def counter(offices):
    testing.staff_user("cre", offices["section1"], username="cashier_bls", password="cash-pass-1")
    return testing.domestic_account(offices["section1"], name="Sunita Behera", mobile="9437012345")


def test_cashier_takes_a_payment_and_prints_the_receipt(page, login, screenshot, counter):
    account = counter
    login(page, "cashier_bls", "cash-pass-1")
    page.goto("/payments/cashier/")
    page.get_by_label("Opening cash (₹)").fill("500.00")
    page.get_by_role("button", name="Open session").click()

    page.get_by_label("Find account").press_sequentially(account.consumer_number, delay=10)
    amount = page.get_by_label("Amount (₹)")
    expect(amount).to_be_visible()  # one match: the payment form comes straight up
    amount.fill("745.50")
    page.get_by_role("button", name="Take payment").click()
    expect(page.locator("#pay-area")).to_contain_text("Payment received")
    payment = Payment.objects.get()
    expect(page.locator("#pay-area")).to_contain_text(payment.receipt_number)
    assert ledger.balance(account=account) == -payment.amount
    screenshot(page, "cashier-paid")

    with page.expect_popup() as popup:
        page.get_by_role("link", name="Print 58 mm").click()
    receipt = popup.value
    expect(receipt.locator("body")).to_contain_text(payment.verification_code)
    screenshot(receipt, "receipt-thermal")
    receipt.close()

    page.get_by_role("link", name="Next").click()
    expect(page.get_by_label("Find account")).to_be_focused()
