"""The cashier screen, receipts, the 360° panel, quick pay and the development gateway, reports,
demo data and the periodic jobs."""

import random
import re
from decimal import Decimal

import pytest
from django.urls import reverse

from urja.billing import ledger
from urja.demo import testing
from urja.payments import demo, services, tasks
from urja.payments.models import Payment

pytestmark = pytest.mark.django_db


def test_cashier_find_pay_print_next(client, cashier, account, settings):
    settings.URJA_PUBLIC_URL = "https://pay.example.in"
    client.force_login(cashier)
    page = client.get("/payments/cashier/")
    assert page.status_code == 200 and b"Find account" in page.content
    found = client.get("/payments/cashier/lookup/", {"q": account.consumer_number})
    assert found.status_code == 200 and b'name="amount"' in found.content  # one match: straight to the form
    key = re.search(rb'name="key" value="([0-9a-f]+)"', found.content).group(1).decode()
    form = {"consumer_number": account.consumer_number, "amount": "345.60", "method": "cash", "key": key}
    paid = client.post("/payments/cashier/pay/", form)
    assert paid.status_code == 200 and b"Payment received" in paid.content
    # a double click posts the same form again: still one payment
    client.post("/payments/cashier/pay/", form)
    assert Payment.objects.count() == 1
    payment = Payment.objects.get()
    for layout in ("a4", "thermal"):
        receipt = client.get(f"/payments/receipt/{payment.receipt_number}/", {"layout": layout})
        assert receipt.status_code == 200
        assert payment.verification_code.encode() in receipt.content and b"345.60" in receipt.content
        assert b"https://pay.example.in/payments/verify/" in receipt.content  # absolute on paper
    bad = client.post("/payments/cashier/pay/", {**form, "amount": "12.345", "key": "other"})
    assert b"more than two decimal places" in bad.content and Payment.objects.count() == 1


def test_account_panel_is_the_payment_history(client, cashier, account):
    services.take_payment(
        actor=cashier, channel="counter", consumer_number=account.consumer_number, amount="99.00", idempotency_key="h1"
    )
    client.force_login(cashier)
    url = reverse("payments:account_panel", args=[account.consumer_number])
    response = client.get(url)
    assert response.status_code == 200 and b"99.00" in response.content
    outsider = testing.staff_user("cre", testing.office_tree("Z")["section1"])
    client.force_login(outsider)
    assert client.get(url).status_code == 404  # out of scope


def test_quick_pay_through_the_dev_gateway_page(client, account):
    response = client.post(
        "/payments/pay/", {"consumer_number": account.consumer_number, "amount": "500", "channel": "upi"}
    )
    assert response.status_code == 302
    page = client.get(response["Location"])
    assert b"upi://pay?" in page.content and b"Simulate success" in page.content
    done = client.post(response["Location"], {"outcome": "success"})
    assert b"Paid. Receipt" in done.content
    assert ledger.balance(account=account) == Decimal("-500.00")
    refused = client.post("/payments/pay/", {"consumer_number": account.consumer_number, "amount": "0"})
    assert refused.status_code == 200 and b"greater than zero" in refused.content


def test_api_payment_agent_sync_and_history(client, agent, account, admin_user):
    client.force_login(agent)
    body = {
        "payments": [
            {"consumer_number": account.consumer_number, "amount": "200.00", "idempotency_key": "tab-7:1"},
            {"consumer_number": account.consumer_number, "amount": "200.00", "idempotency_key": "tab-7:1"},
            {"consumer_number": "NOPE", "amount": "5", "idempotency_key": "tab-7:2"},
            {"consumer_number": account.consumer_number, "amount": "-1", "idempotency_key": "tab-7:3"},
        ]
    }
    out = client.post("/api/v1/payments/agent/sync", body, content_type="application/json").json()
    assert [i["ok"] for i in out] == [True, True, False, False]
    assert out[0]["payment"]["id"] == out[1]["payment"]["id"]
    assert [i["code"] for i in out[2:]] == ["unknown_account", "invalid_amount"]
    assert client.get("/api/v1/payments/agents/me/cash").json()["in_hand"] == "200.00"
    client.force_login(admin_user)
    history = client.get(f"/api/v1/payments/accounts/{account.consumer_number}/payments").json()
    assert [p["amount"] for p in history] == ["200.00"]
    report = client.get("/api/v1/payments/reports/handover", {"day": history[0]["received_at"][:10]})
    assert report.status_code == 200


def test_prepaid_pages(client, cashier, prepaid_account):
    services.take_payment(
        actor=cashier,
        channel="counter",
        consumer_number=prepaid_account.consumer_number,
        amount="100",
        idempotency_key="pp",
    )
    client.force_login(cashier)
    assert b"104.00" in client.get(f"/payments/prepaid/{prepaid_account.consumer_number}/").content
    body = client.get(f"/api/v1/payments/prepaid/{prepaid_account.consumer_number}").json()
    assert body["balance"] == "104.00" and body["supply"] == "connected"


def test_reports_and_lists_render(client, admin_user):
    client.force_login(admin_user)
    for url in (
        "/payments/reports/handover/",
        "/payments/collections/",
        "/payments/imports/",
        "/payments/panel/",
        "/payments/verify/",
    ):
        assert client.get(url).status_code == 200, url


def test_demo_populate_is_repeatable(offices, cashier, agent):
    accounts = [testing.domestic_account(offices["section1"], mobile=f"94370001{i:02d}") for i in range(6)]
    accounts.append(testing.domestic_account(offices["section1"], mobile="9437000199", is_prepaid=True))
    first = demo.populate(accounts=accounts, staff=[cashier, agent], rng=random.Random(1))
    assert first["payments"] >= 3 and first["prepaid_recharges"] == 1
    n = Payment.objects.count()
    demo.populate(accounts=accounts, staff=[cashier, agent], rng=random.Random(1))
    assert Payment.objects.count() == n


def test_periodic_jobs_run(cashier, account):
    assert set(tasks.PERIODIC_TASKS) >= {"payments.prepaid_daily", "payments.collections"}
    tasks.prepaid_daily()
    tasks.prepaid_supply()
    tasks.collections()
    from datetime import timedelta

    from django.utils import timezone

    last_month = f"{timezone.localdate().replace(day=1) - timedelta(days=1):%Y-%m}"
    assert tasks.advance_interest().startswith(f"{last_month}: 0 accounts")
    assert tasks.advance_interest().startswith(last_month)  # once per period


@pytest.mark.parametrize("channel", ["online", "upi", "wallet", "file"])
def test_api_payment_refuses_channels_that_come_by_gateway_or_file(client, cashier, account, channel):
    client.force_login(cashier)
    body = {"channel": channel, "consumer_number": account.consumer_number, "amount": "10.00", "idempotency_key": "x"}
    response = client.post("/api/v1/payments/payments", body, content_type="application/json")
    assert response.status_code == 403 and response.json()["code"] == "channel_not_direct"
    assert Payment.objects.count() == 0
