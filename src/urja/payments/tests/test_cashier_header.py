"""Issue 15: the cashier's header (cash taken, expected in drawer) follows each payment — the
receipt fragment carries the session totals as an out-of-band swap."""

from urja.demo import testing
from urja.payments import services


def test_payment_answer_updates_the_session_totals(client, offices):
    cashier = testing.staff_user("cre", offices["section1"])
    account = testing.domestic_account(offices["section1"], name="Sunita Behera", mobile="")
    services.open_session(actor=cashier, opening_balance="500")
    client.force_login(cashier)
    before = client.get("/payments/cashier/").content.decode()
    assert 'id="cash-taken">₹0.00<' in before
    answer = client.post(
        "/payments/cashier/pay/",
        {"consumer_number": account.consumer_number, "amount": "4684.74", "key": "k-1", "method": "cash"},
        HTTP_HX_REQUEST="true",
    ).content.decode()
    assert 'id="session-totals" hx-swap-oob="true"' in answer
    assert 'id="cash-taken">₹4,684.74<' in answer and "₹5,184.74" in answer  # expected in the drawer


def test_take_payment_link_opens_the_accounts_form(client, offices):
    cashier = testing.staff_user("cre", offices["section1"])
    account = testing.domestic_account(offices["section1"], name="Sunita Behera", mobile="")
    services.open_session(actor=cashier, opening_balance="0")
    client.force_login(cashier)
    page = client.get(f"/backoffice/accounts/{account.consumer_number}/").content.decode()
    assert f'href="/payments/cashier/?consumer={account.consumer_number}"' in page
    cashier_page = client.get(f"/payments/cashier/?consumer={account.consumer_number}").content.decode()
    assert f'hx-get="/payments/cashier/form/{account.consumer_number}/"' in cashier_page
    engineer = testing.staff_user("engineer", offices["section1"])
    client.force_login(engineer)
    assert "take-payment" not in client.get(f"/backoffice/accounts/{account.consumer_number}/").content.decode()
