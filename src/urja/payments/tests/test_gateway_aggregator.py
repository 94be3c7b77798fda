"""The payment-aggregator adapter against a stand-in aggregator speaking HTTP on this machine: order
creation (amount in paise, our reference as receipt, once), hosted-checkout URL, the signed browser
return (posted once; a bad signature changes nothing), and the status query that reconciles an order
whose return never came — the same event as its return, so never a second payment."""

import base64
import hashlib
import hmac
import json
import threading
from datetime import timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import pytest
from django.utils import timezone

from urja.payments import gateways, services
from urja.payments.models import GatewayOrder, Payment

KEY_ID, KEY_SECRET = "rzp_test_urja", "s3cret-key"


class FakeAggregator(BaseHTTPRequestHandler):
    orders: dict = {}
    payments: dict = {}  # aggregator order id -> list of payment items

    def log_message(self, *args):
        pass

    def _authorised(self) -> bool:
        expected = "Basic " + base64.b64encode(f"{KEY_ID}:{KEY_SECRET}".encode()).decode()
        return self.headers.get("Authorization") == expected

    def _send(self, status: int, body: dict):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        if not self._authorised():
            return self._send(401, {"error": {"code": "BAD_REQUEST_ERROR"}})
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        order_id = f"order_{len(self.orders) + 1:08d}"
        self.orders[order_id] = {"id": order_id, "entity": "order", "status": "created", **body}
        self._send(200, self.orders[order_id])

    def do_GET(self):
        if not self._authorised():
            return self._send(401, {"error": {"code": "BAD_REQUEST_ERROR"}})
        order_id = self.path.split("/")[3]
        items = self.payments.get(order_id, [])
        self._send(200, {"entity": "collection", "count": len(items), "items": items})


@pytest.fixture
def aggregator(settings):
    FakeAggregator.orders, FakeAggregator.payments = {}, {}
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeAggregator)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    settings.URJA_PA_API_URL = f"http://127.0.0.1:{server.server_port}"
    settings.URJA_PA_CHECKOUT_URL = "https://checkout.aggregator.example/pay"
    settings.URJA_PA_KEY_ID, settings.URJA_PA_KEY_SECRET = KEY_ID, KEY_SECRET
    yield FakeAggregator
    server.shutdown()


def sign(order_id: str, payment_id: str, secret: str = KEY_SECRET) -> str:
    return hmac.new(secret.encode(), f"{order_id}|{payment_id}".encode(), hashlib.sha256).hexdigest()


def test_checkout_then_signed_return_posts_once(client, account, aggregator):
    order = services.create_order(consumer_number=account.consumer_number, amount="1175.50", gateway="aggregator")
    adapter = gateways.get_gateway("aggregator")
    url = adapter.checkout_url(order, return_url=f"/portal/pay/{order.reference}/")
    order.refresh_from_db()
    query = parse_qs(urlparse(url).query)
    assert url.startswith("https://checkout.aggregator.example/pay?")
    assert query["order_id"] == [order.gateway_order_id] and query["key_id"] == [KEY_ID]
    assert query["callback_url"][0].endswith("/payments/gateway/aggregator/return/")
    sent = aggregator.orders[order.gateway_order_id]
    assert sent["amount"] == 117550 and sent["currency"] == "INR" and sent["receipt"] == order.reference
    adapter.checkout_url(order)  # a second visit reuses the aggregator's order
    assert len(aggregator.orders) == 1

    forged = {"razorpay_order_id": order.gateway_order_id, "razorpay_payment_id": "pay_FORGED1",
              "razorpay_signature": sign(order.gateway_order_id, "pay_FORGED1", "wrong-secret")}  # fmt: skip
    assert client.post("/payments/gateway/aggregator/return/", forged).status_code == 401
    assert not Payment.objects.exists()

    good = {"razorpay_order_id": order.gateway_order_id, "razorpay_payment_id": "pay_29QQoUBi66xm2f",
            "razorpay_signature": sign(order.gateway_order_id, "pay_29QQoUBi66xm2f")}  # fmt: skip
    page = client.post("/payments/gateway/aggregator/return/", good)
    assert page.status_code == 200
    payment = Payment.objects.get()
    assert payment.amount == Decimal("1175.50") and payment.reference == "pay_29QQoUBi66xm2f"
    assert payment.receipt_number and payment.receipt_number in page.content.decode()
    client.post("/payments/gateway/aggregator/return/", good)  # the payer reloads the page
    assert Payment.objects.count() == 1
    order.refresh_from_db()
    assert order.status == GatewayOrder.Status.PAID and order.payment_id == payment.pk


def test_status_query_reconciles_an_order_whose_return_never_came(account, aggregator):
    order = services.create_order(consumer_number=account.consumer_number, amount="500", gateway="aggregator")
    failed = services.create_order(consumer_number=account.consumer_number, amount="300", gateway="aggregator")
    adapter = gateways.get_gateway("aggregator")
    for o in (order, failed):
        adapter.checkout_url(o)
        o.refresh_from_db()
    old = timezone.now() - timedelta(minutes=30)
    GatewayOrder.objects.filter(pk__in=[order.pk, failed.pk]).update(created_at=old)
    aggregator.payments[failed.gateway_order_id] = [
        {"id": "pay_F1", "status": "failed", "amount": 30000, "error_description": "Payment declined by bank"}
    ]
    assert gateways.reconcile_orders() == {"checked": 2, "paid": 0, "failed": 1, "pending": 1, "errors": 0}
    aggregator.payments[order.gateway_order_id] = [
        {"id": "pay_A1", "status": "failed", "amount": 50000, "method": "card"},
        {"id": "pay_A2", "status": "captured", "amount": 50000, "method": "upi"},
    ]
    assert gateways.reconcile_orders()["paid"] == 1
    payment = Payment.objects.get()
    assert payment.amount == Decimal("500.00") and payment.reference == "pay_A2" and payment.method == "upi"
    assert gateways.reconcile_orders()["checked"] == 0  # nothing left open
    # the payer's return arrives late: the same event, no second payment
    late = {"razorpay_order_id": order.gateway_order_id, "razorpay_payment_id": "pay_A2",
            "razorpay_signature": sign(order.gateway_order_id, "pay_A2")}  # fmt: skip
    found, status = adapter.verify_return(late)
    result = services.process_gateway_event(gateway="aggregator", event=gateways.event_for(found, status))
    assert result.replay and Payment.objects.count() == 1
    failed.refresh_from_db()
    assert failed.status == GatewayOrder.Status.FAILED and "declined" in failed.failure_reason


def test_an_unconfigured_or_unreachable_aggregator_is_a_clear_error(account, settings):
    settings.URJA_PA_API_URL = "http://127.0.0.1:9"  # nothing listens there
    settings.URJA_PA_KEY_ID, settings.URJA_PA_KEY_SECRET = KEY_ID, KEY_SECRET
    order = services.create_order(consumer_number=account.consumer_number, amount="100", gateway="aggregator")
    with pytest.raises(gateways.GatewayUnavailable):
        gateways.get_gateway("aggregator").checkout_url(order)
    assert GatewayOrder.objects.get(pk=order.pk).gateway_order_id == ""
