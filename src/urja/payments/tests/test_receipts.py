from decimal import Decimal

import pytest

from urja.payments import selectors, services, signing

pytestmark = pytest.mark.django_db


@pytest.fixture
def payment(cashier, account):
    return services.take_payment(
        actor=cashier,
        channel="counter",
        consumer_number=account.consumer_number,
        amount="1234.50",
        idempotency_key="rc1",
    )


def test_genuine_receipt_verifies(payment, client):
    check = selectors.verify_receipt(
        receipt_number=payment.receipt_number, code=payment.verification_code, amount="1234.50"
    )
    assert check.valid and check.amount == Decimal("1234.50")
    # typed in lower case, without the dash, with 0/O confusion: still fine
    sloppy = payment.verification_code.replace("-", "").lower().replace("o", "0")
    assert selectors.verify_receipt(receipt_number=payment.receipt_number.lower(), code=sloppy).valid
    response = client.get(
        "/api/v1/payments/receipts/verify", {"number": payment.receipt_number, "code": payment.verification_code}
    )
    assert response.status_code == 200 and response.json()["valid"] is True


def test_forged_receipt_fails(payment, client):
    # a made-up code for a real number
    assert not selectors.verify_receipt(receipt_number=payment.receipt_number, code="ABCDE-FGHIJ").valid
    # a real code copied onto a receipt with a higher amount
    check = selectors.verify_receipt(
        receipt_number=payment.receipt_number, code=payment.verification_code, amount="9234.50"
    )
    assert not check.valid and check.reason == "amount_mismatch"
    # a receipt number that was never issued, with a code computed without the utility's key
    fake = signing.receipt_code(
        receipt_number="X1C2500000019",
        consumer_number=payment.consumer_number,
        amount=Decimal("1234.50"),
        day=payment.received_at.date(),
        key=b"guess",
    )
    assert selectors.verify_receipt(receipt_number="X1C2500000019", code=fake).reason == "unknown_receipt"
    # an issued number with a code forged without the key
    forged = signing.receipt_code(
        receipt_number=payment.receipt_number,
        consumer_number=payment.consumer_number,
        amount=Decimal("9999.00"),
        day=payment.received_at.date(),
        key=b"guess",
    )
    response = client.get("/api/v1/payments/receipts/verify", {"number": payment.receipt_number, "code": forged})
    assert response.status_code == 200 and response.json()["valid"] is False
    page = client.get("/payments/verify/", {"number": payment.receipt_number, "code": forged})
    assert page.status_code == 200 and b"not genuine" in page.content.lower()


def test_confirmation_message_in_the_consumers_language(cashier, account, django_capture_on_commit_callbacks):
    from urja.customers.models import Contact
    from urja.notifications.models import OutboxMessage

    Contact.objects.filter(consumer=account.consumer).update(verified=True)
    account.consumer.preferred_language = "or"
    account.consumer.save()
    with django_capture_on_commit_callbacks(execute=True):
        payment = services.take_payment(
            actor=cashier,
            channel="counter",
            consumer_number=account.consumer_number,
            amount="610.00",
            idempotency_key="sms1",
        )
    message = OutboxMessage.objects.get(event="payment.received", channel="sms")
    assert message.language == "or"
    assert payment.receipt_number in message.body and "610" in message.body


def test_bulk_receipt_codes_are_the_one_by_one_codes():
    # settlement files sign their receipts in bulk (numpy base32): the same codes as one by one
    from datetime import date

    key = signing.receipt_key()
    rows = [
        (f"BH1B26{i:07d}{i % 10}", f"0210{i:08d}", Decimal(i * 37) / 100 + 1, date(2025, 3, 1 + i % 28))
        for i in range(500)
    ]
    messages = [signing.receipt_message(receipt_number=r, consumer_number=c, amount=a, day=d) for r, c, a, d in rows]
    one_by_one = [
        signing.receipt_code(receipt_number=r, consumer_number=c, amount=a, day=d, key=key) for r, c, a, d in rows
    ]
    assert signing.receipt_codes(messages, key=key) == one_by_one
    assert signing.receipt_codes([], key=key) == []
