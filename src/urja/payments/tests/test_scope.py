"""Who collects, on which channel and for which accounts (data/core/permissions.toml), and payments'
lookups: out of scope answers exactly like nonexistent (issue 11, part 1)."""

import json
from decimal import Decimal

import pytest
from django.test import Client

from urja.core.errors import Forbidden, NotFound
from urja.demo import testing
from urja.payments import selectors, services
from urja.payments.models import Payment, PrepaidWallet


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def post(client, url, body):
    return client.post(url, json.dumps(body), content_type="application/json")


@pytest.fixture
def far_account(offices):
    """An account of the other division."""
    return testing.domestic_account(offices["section2"], name="Dinesh Jena", mobile="9437055555")


@pytest.fixture
def agent(offices):
    user = testing.staff_user("field_agent", offices["section1"])
    user.staff.cash_limit = Decimal("5000.00")
    user.staff.save()
    return user


def test_agent_sync_refuses_another_divisions_account_like_an_unknown_number(agent, account, far_account):
    client = client_for(agent)
    items = [
        {"consumer_number": account.consumer_number, "amount": "100", "idempotency_key": "a1"},
        {"consumer_number": far_account.consumer_number, "amount": "100", "idempotency_key": "a2"},
        {"consumer_number": "9999999999999", "amount": "100", "idempotency_key": "a3"},
    ]
    out = post(client, "/api/v1/payments/agent/sync", {"payments": items}).json()
    assert [i["ok"] for i in out] == [True, False, False]
    assert out[1]["code"] == out[2]["code"] == "unknown_account"
    assert out[1]["message"].replace(far_account.consumer_number, "X") == out[2]["message"].replace(
        "9999999999999", "X"
    )
    assert not Payment.objects.filter(account=far_account).exists()


def test_agent_of_another_section_of_the_same_division_is_refused(offices, account):
    from urja.network.services import create_office

    sibling = create_office(code="SIB1", name="Sibling section", level="section", parent=offices["subdivision1"])
    agent = testing.staff_user("field_agent", sibling)
    with pytest.raises(NotFound):
        services.take_payment(
            actor=agent,
            channel="field_agent",
            consumer_number=account.consumer_number,
            amount="50",
            idempotency_key="s",
        )


def test_an_agent_with_a_beat_collects_and_reads_only_on_its_routes(offices, agent):
    """A field agent whose profile names routes works only the accounts on them; with no routes, the
    whole section (data/core/permissions.toml: [accounts] field_agent = "routes")."""
    from urja.core.scope import scope_accounts
    from urja.customers.models import Account

    on_beat = testing.domestic_account(offices["section1"], name="Rina Das", mobile="9437066661", route="R07")
    off_beat = testing.domestic_account(offices["section1"], name="Ajit Sahu", mobile="9437066662", route="R08")
    assert set(scope_accounts(agent, Account.objects.all())) >= {on_beat, off_beat}  # no beat: the section
    agent.staff.routes = "R07, R09"
    agent.staff.save()
    assert set(scope_accounts(agent, Account.objects.all())) == {on_beat}
    items = [
        {"consumer_number": on_beat.consumer_number, "amount": "100", "idempotency_key": "b1"},
        {"consumer_number": off_beat.consumer_number, "amount": "100", "idempotency_key": "b2"},
    ]
    out = post(client_for(agent), "/api/v1/payments/agent/sync", {"payments": items}).json()
    assert [i["ok"] for i in out] == [True, False] and out[1]["code"] == "unknown_account"
    assert not Payment.objects.filter(account=off_beat).exists()
    # the counter still takes money for any account of the utility
    cashier = testing.staff_user("cre", offices["division1"])
    services.open_session(actor=cashier, opening_balance="0")
    services.take_payment(
        actor=cashier, channel="counter", consumer_number=off_beat.consumer_number, amount="100", idempotency_key="c"
    )
    assert Payment.objects.filter(account=off_beat).count() == 1


def test_key_account_manager_collects_on_no_channel(offices, account):
    kam = testing.staff_user("key_account_manager", offices["utility"])
    client = client_for(kam)
    for channel, method in (("atp", "cash"), ("card", "card"), ("counter", "cash")):
        body = {
            "consumer_number": account.consumer_number,
            "amount": "100",
            "idempotency_key": f"k-{channel}",
            "channel": channel,
            "method": method,
        }
        response = post(client, "/api/v1/payments/payments", body)
        assert response.status_code == 403, (channel, response.json())
        assert response.json()["code"] == "role_not_allowed"
    assert not Payment.objects.exists()


def test_field_agent_cash_limit_holds_on_every_channel(agent, account):
    services.take_payment(
        actor=agent, channel="field_agent", consumer_number=account.consumer_number, amount="4025", idempotency_key="f1"
    )
    assert selectors.cash_in_hand(agent=agent) == Decimal("4025.00")
    # ATP is not a field agent's channel at all
    with pytest.raises(Forbidden):
        services.take_payment(
            actor=agent, channel="atp", consumer_number=account.consumer_number, amount="9000", idempotency_key="f2"
        )
    with pytest.raises(Forbidden):
        services.take_payment(
            actor=agent, channel="card", consumer_number=account.consumer_number, amount="9000", idempotency_key="f3",
            method="card",
        )  # fmt: skip
    assert selectors.cash_in_hand(agent=agent) == Decimal("4025.00")


def test_cash_in_hand_counts_cash_on_every_non_counter_channel(offices, account, monkeypatch):
    """If the table lets a cash-limited role take cash on ATP, the limit and in-hand follow it there."""
    from urja.core import scope

    rules = scope.rules()
    patched = {**rules, "collect": {**rules["collect"], "field_agent": ["field_agent", "atp"]}}
    monkeypatch.setattr(scope, "rules", lambda: patched)
    agent = testing.staff_user("field_agent", offices["section1"])
    agent.staff.cash_limit = Decimal("5000.00")
    agent.staff.save()
    services.take_payment(
        actor=agent, channel="field_agent", consumer_number=account.consumer_number, amount="4025", idempotency_key="g1"
    )
    with pytest.raises(Exception) as exc:
        services.take_payment(
            actor=agent, channel="atp", consumer_number=account.consumer_number, amount="9000", idempotency_key="g2"
        )
    assert getattr(exc.value, "code", "") == "cash_limit_exceeded"
    services.take_payment(
        actor=agent, channel="atp", consumer_number=account.consumer_number, amount="900", idempotency_key="g3"
    )
    assert selectors.cash_in_hand(agent=agent) == Decimal("4925.00")


def test_counter_takes_money_for_any_account_of_the_utility(offices, far_account):
    cashier = testing.staff_user("cre", offices["division1"])
    services.open_session(actor=cashier, opening_balance="0")
    payment = services.take_payment(
        actor=cashier, channel="counter", consumer_number=far_account.consumer_number, amount="10", idempotency_key="c"
    )
    # the cashier sees the payment (its receipt), not the account
    client = client_for(cashier)
    assert client.get(f"/api/v1/payments/payments/{payment.pk}").status_code == 200
    far = client.get(f"/api/v1/payments/accounts/{far_account.consumer_number}/payments")
    none = client.get("/api/v1/payments/accounts/9999999999999/payments")
    assert far.status_code == none.status_code == 404
    assert far.json()["code"] == none.json()["code"]


def test_counter_office_only_by_setting(offices, far_account, monkeypatch):
    from urja.core import scope

    rules = scope.rules()
    monkeypatch.setattr(
        scope, "rules", lambda: {**rules, "collect_scope": {**rules["collect_scope"], "counter": "office"}}
    )
    cashier = testing.staff_user("cre", offices["division1"])
    services.open_session(actor=cashier, opening_balance="0")
    with pytest.raises(NotFound):
        services.take_payment(
            actor=cashier,
            channel="counter",
            consumer_number=far_account.consumer_number,
            amount="10",
            idempotency_key="c",
        )


def test_prepaid_wallet_is_scoped_and_reading_it_creates_nothing(offices, prepaid_account):
    far_prepaid = testing.domestic_account(
        offices["section2"], name="Far Prepaid", mobile="9437066666", is_prepaid=True
    )
    cre = testing.staff_user("cre", offices["division1"])
    client = client_for(cre)
    mine = client.get(f"/api/v1/payments/prepaid/{prepaid_account.consumer_number}")
    assert mine.status_code == 200, mine.json()
    far = client.get(f"/api/v1/payments/prepaid/{far_prepaid.consumer_number}")
    none = client.get("/api/v1/payments/prepaid/9999999999999")
    assert far.status_code == none.status_code == 404
    assert far.json()["code"] == none.json()["code"]
    assert far.json()["message"].replace(far_prepaid.consumer_number, "X") == none.json()["message"].replace(
        "9999999999999", "X"
    )
    assert not PrepaidWallet.objects.exists()


def test_import_report_only_for_staff_covering_the_importers_office(offices):
    from urja.payments.models import ImportBatch

    importer = testing.staff_user("billing_officer", offices["division1"])
    batch = ImportBatch.objects.create(source="SBI", filename="x.csv", sha256="0" * 64, imported_by=importer)
    other = testing.staff_user("billing_officer", offices["division2"])
    manager = testing.staff_user("manager", offices["circle"])
    assert client_for(importer).get(f"/api/v1/payments/imports/{batch.pk}").status_code == 200
    assert client_for(manager).get(f"/api/v1/payments/imports/{batch.pk}").status_code == 200
    far = client_for(other).get(f"/api/v1/payments/imports/{batch.pk}")
    none = client_for(other).get("/api/v1/payments/imports/999999")
    assert far.status_code == none.status_code == 404
    assert far.json() == none.json()


def test_counter_page_takes_another_offices_consumer_but_shows_only_what_a_receipt_needs(offices, account, far_account):
    from urja.billing import ledger

    cashier = testing.staff_user("cre", offices["division1"])
    services.open_session(actor=cashier, opening_balance="0")
    client = client_for(cashier)
    mine = client.get(f"/payments/cashier/form/{account.consumer_number}/")
    assert mine.status_code == 200 and "another office" not in mine.content.decode()
    far = client.get(f"/payments/cashier/form/{far_account.consumer_number}/")
    assert far.status_code == 200
    assert (
        "another office" in far.content.decode()
        and str(ledger.balance(account=far_account)) not in far.content.decode()
    )
    paid = client.post(
        "/payments/cashier/pay/",
        {"consumer_number": far_account.consumer_number, "amount": "100", "key": "far-1", "method": "cash"},
    )
    assert paid.status_code == 200 and Payment.objects.filter(account=far_account).count() == 1
    # the receipt is the cashier's to print; a name search across the utility finds nothing
    receipt_number = Payment.objects.get(account=far_account).receipt_number
    assert client.get(f"/payments/receipt/{receipt_number}/").status_code == 200
    assert far_account.consumer.name not in client.get("/payments/cashier/lookup/?q=Dinesh").content.decode()
    assert client.get("/payments/cashier/form/9999999999999/").status_code == 404


def test_prepaid_page_tells_an_anonymous_caller_nothing_and_creates_no_wallet(offices, prepaid_account):
    anonymous = Client()
    known = anonymous.get(f"/payments/prepaid/{prepaid_account.consumer_number}/")
    unknown = anonymous.get("/payments/prepaid/9999999999999/")
    assert known.status_code == unknown.status_code == 302
    far = client_for(testing.staff_user("cre", offices["division2"]))
    assert far.get(f"/payments/prepaid/{prepaid_account.consumer_number}/").status_code == 404
    assert far.get("/payments/prepaid/9999999999999/").status_code == 404
    mine = client_for(testing.staff_user("cre", offices["division1"]))
    assert mine.get(f"/payments/prepaid/{prepaid_account.consumer_number}/").status_code == 200
    assert not PrepaidWallet.objects.exists()


def test_orders_tell_an_anonymous_caller_nothing_about_a_number(offices, account):
    from urja.customers.models import AccountStatus
    from urja.payments.models import GatewayOrder

    closed = testing.domestic_account(offices["section1"], name="Closed Connection", mobile="9437022222")
    closed.status = AccountStatus.PERMANENTLY_DISCONNECTED
    closed.save(update_fields=["status"])
    gone = testing.domestic_account(offices["section1"], name="Gone", mobile="9437033333")
    missing = gone.consumer_number  # well formed (check digit right), no account has it
    gone.delete()
    gone.consumer.delete()
    anonymous = Client()
    answers = []
    for number in (account.consumer_number, closed.consumer_number, missing):
        response = post(anonymous, "/api/v1/payments/orders", {"consumer_number": number, "amount": "100"})
        body = response.json()
        answers.append((response.status_code, sorted(body), body.get("status"), body.get("amount")))
    assert answers[0] == answers[1] == answers[2] and answers[0][0] == 200
    # a typo is refused by the check digit, which says nothing about existence
    typo = post(anonymous, "/api/v1/payments/orders", {"consumer_number": missing[:-1] + "X", "amount": "100"})
    assert 400 <= typo.status_code < 500
    # money for the unknown number is held in suspense when it arrives, never posted
    order = GatewayOrder.objects.get(consumer_number=missing)
    assert order.account is None
    result = services.simulate_gateway(order=order, outcome="success")
    payment = Payment.objects.get(pk=result.payment_id)
    assert payment.status == "in_suspense" and payment.suspense_code == "unknown_account"
