import json
import time
from decimal import Decimal

import pytest

from urja.billing import ledger
from urja.billing.models import EntryType, LedgerEntry
from urja.core.errors import DomainError
from urja.payments import selectors, services, signing
from urja.payments.models import GatewayEvent, GatewayOrder, Payment, PaymentStatus

pytestmark = pytest.mark.django_db


def signed(body: dict, *, secret=None, ts=None):
    raw = json.dumps(body).encode()
    header = signing.signature_header(
        secret=secret or signing.gateway_secret("dev"), timestamp=ts or int(time.time()), body=raw
    )
    return raw, header


def success_event(order, *, event_id="evt_1", txn="TXN1", amount=None):
    return {
        "id": event_id,
        "type": "payment.succeeded",
        "data": {"order_reference": order.reference, "amount": str(amount or order.amount), "txn_id": txn},
    }


def test_same_callback_ten_times_posts_one_payment(account, client):
    order = services.create_order(consumer_number=account.consumer_number, amount="745.50")
    raw, header = signed(success_event(order))
    results = [services.handle_webhook(gateway="dev", body=raw, signature=header) for _ in range(10)]
    assert results[0].outcome == "posted" and not results[0].replay
    assert all(r.replay and r.payment_id == results[0].payment_id for r in results[1:])
    # the same transaction under a new event id (gateways retry with new ids) still posts once
    raw2, header2 = signed(success_event(order, event_id="evt_2"))
    services.handle_webhook(gateway="dev", body=raw2, signature=header2)
    # and through the HTTP endpoint too
    for _ in range(3):
        response = client.post(
            "/api/v1/payments/gateway/dev/webhook",
            data=raw,
            content_type="application/json",
            HTTP_X_URJA_SIGNATURE=header,
        )
        assert response.status_code == 200, response.content
        assert response.json()["replay"] is True
    assert Payment.objects.count() == 1
    assert LedgerEntry.objects.filter(entry_type=EntryType.PAYMENT).count() == 1
    assert ledger.balance(account=account) == Decimal("-745.50")
    order.refresh_from_db()
    assert order.status == GatewayOrder.Status.PAID and order.payment.status == PaymentStatus.POSTED


def test_tampered_or_stale_signature_is_rejected(account, client):
    order = services.create_order(consumer_number=account.consumer_number, amount="100")
    raw, header = signed(success_event(order))
    tampered = raw.replace(b"100.00", b"900.00")
    with pytest.raises(DomainError) as exc:
        services.handle_webhook(gateway="dev", body=tampered, signature=header)
    assert exc.value.code == "invalid_signature"
    raw_old, header_old = signed(success_event(order), ts=int(time.time()) - 3600)
    with pytest.raises(DomainError):
        services.handle_webhook(gateway="dev", body=raw_old, signature=header_old)
    raw_bad, header_bad = signed(success_event(order), secret=b"not-the-secret")
    response = client.post(
        "/api/v1/payments/gateway/dev/webhook",
        data=raw_bad,
        content_type="application/json",
        HTTP_X_URJA_SIGNATURE=header_bad,
    )
    assert response.status_code == 401 and response.json()["code"] == "invalid_signature"
    assert not Payment.objects.exists() and not GatewayEvent.objects.exists()


def test_amount_mismatch_goes_to_suspense(account):
    order = services.create_order(consumer_number=account.consumer_number, amount="100")
    raw, header = signed(success_event(order, amount="90.00"))
    result = services.handle_webhook(gateway="dev", body=raw, signature=header)
    assert result.outcome == PaymentStatus.IN_SUSPENSE
    assert ledger.balance(account=account) == 0


def test_dev_gateway_success_and_failure(account):
    ok = services.create_order(consumer_number=account.consumer_number, amount="250")
    assert services.simulate_gateway(order=ok, outcome="success").outcome == "posted"
    bad = services.create_order(consumer_number=account.consumer_number, amount="250")
    assert services.simulate_gateway(order=bad, outcome="failure").outcome == "failed"
    bad.refresh_from_db()
    assert bad.status == GatewayOrder.Status.FAILED
    assert ledger.balance(account=account) == Decimal("-250.00")


def test_upi_intent_and_reconciliation_by_reference(account, admin_user):
    order = services.create_order(consumer_number=account.consumer_number, amount="399", channel="upi")
    intent = selectors.upi_intent(order)
    assert intent.startswith("upi://pay?pa=")
    assert f"tr={order.reference}" in intent and "am=399.00" in intent and "cu=INR" in intent
    payment = services.reconcile_upi(actor=admin_user, reference=order.reference, amount="399.00", utr="412345678901")
    again = services.reconcile_upi(actor=admin_user, reference=order.reference, amount="399.00", utr="412345678901")
    assert payment.pk == again.pk and payment.channel == "upi" and payment.status == PaymentStatus.POSTED
    with pytest.raises(DomainError) as exc:
        services.reconcile_upi(actor=admin_user, reference="URNOPE", amount="1", utr="1")
    assert exc.value.code == "unknown_reference"
