"""BBPS biller interface: bill fetch by consumer number (name, amounts, dates, early and late amounts),
payment posting with the BBPS reference through the one pipeline, idempotent; token, unknown number,
reused reference with another amount, unknown payment mode — refused, nothing posted."""

from datetime import date
from decimal import Decimal

import pytest

from urja.billing import services as billing
from urja.billing.models import Bill
from urja.billing.tests.conftest import metered_account, steady
from urja.payments.models import Payment
from urja.tariffs import services as tariffs

TOKEN = {"HTTP_X_URJA_BBPS_TOKEN": "bbps-test-token"}


@pytest.fixture
def billed(offices, settings):
    settings.URJA_BBPS_TOKEN = "bbps-test-token"
    for path in sorted(tariffs.tariff_dir().glob("*.toml")):
        if path.name != "navigation.toml":
            tariffs.load_file(path=path)
    account = metered_account(offices["section1"], mobile="9437012345", readings=steady(250))
    billing.start_run(run=billing.create_run(cycle="C01", period="2025-06", bill_date=date(2025, 7, 2)))
    return account


def fetch(client, number, **headers):
    return client.post("/api/v1/payments/bbps/fetch", {"consumer_number": number}, content_type="application/json",
                       **(headers or TOKEN))  # fmt: skip


def pay(client, **body):
    body = {"payment_mode": "UPI", **body}
    return client.post("/api/v1/payments/bbps/pay", body, content_type="application/json", **TOKEN)


def test_fetch_then_pay_idempotent(client, billed):
    bill = Bill.objects.get(account=billed)
    response = fetch(client, billed.consumer_number.lower())
    assert response.status_code == 200, response.content
    data = response.json()
    assert data["customer_name"] == "Sunita Behera" and data["bill_number"] == bill.bill_number
    assert data["bill_date"] == "2025-07-02" and data["due_date"] == bill.due_date.isoformat()
    assert Decimal(data["bill_amount"]) == bill.net_payable
    assert Decimal(data["late_payment_amount"]) == bill.net_payable
    assert Decimal(data["early_payment_amount"]) == bill.total + bill.rebate_by_due_date + bill.arrears
    assert data["bill_period"] == f"{bill.period_start:%d-%m-%Y} to {bill.period_end:%d-%m-%Y}"

    first = pay(client, consumer_number=billed.consumer_number, amount="500.00", bbps_reference="CC015056BAAA00012345")
    assert first.status_code == 200 and first.json()["status"] == "posted" and first.json()["receipt_number"]
    again = pay(client, consumer_number=billed.consumer_number, amount="500.00", bbps_reference="cc015056baaa00012345")
    assert again.json()["receipt_number"] == first.json()["receipt_number"]
    assert Payment.objects.count() == 1
    payment = Payment.objects.get()
    assert payment.reference == "BBPS CC015056BAAA00012345" and payment.method == "upi"
    assert Decimal(fetch(client, billed.consumer_number).json()["bill_amount"]) == bill.net_payable - 500


def test_bad_requests_change_nothing(client, billed):
    assert fetch(client, billed.consumer_number, HTTP_X_URJA_BBPS_TOKEN="wrong").status_code == 401
    unknown = fetch(client, "999999999999")
    assert unknown.status_code == 404 and unknown.json()["code"] == "consumer_not_found"
    pay(client, consumer_number=billed.consumer_number, amount="100", bbps_reference="REF1")
    reused = pay(client, consumer_number=billed.consumer_number, amount="200", bbps_reference="REF1")
    assert reused.status_code == 409 and reused.json()["code"] == "idempotency_key_reused"
    mode = pay(client, consumer_number=billed.consumer_number, amount="100", bbps_reference="REF2", payment_mode="Gold")
    assert mode.status_code == 400 and mode.json()["code"] == "invalid_payment_mode"
    nobody = pay(client, consumer_number="999999999999", amount="100", bbps_reference="REF3")
    assert nobody.status_code == 404
    assert pay(client, consumer_number=billed.consumer_number, amount="-5", bbps_reference="REF4").status_code in (
        400,
        422,
    )
    assert Payment.objects.count() == 1
