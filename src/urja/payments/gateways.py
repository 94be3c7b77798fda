"""Payment gateways behind one interface: where to send the payer (hosted checkout), how to check the
gateway's signed return, and what the gateway says about an order (status query).

    gateway = get_gateway(order.gateway)
    url = gateway.checkout_url(order, return_url=...)       # redirect the payer there
    event = gateway.verify_return(order_params)              # the signed browser return → a payment event
    event = gateway.query(order)                             # the reconcile job, when no callback came

Every event goes through services.process_gateway_event — the one capture pipeline (posting, suspense,
duplicates) shared with the signed webhook of the development gateway.

`dev`: the development gateway (the embedded default; its page sends the signed webhook itself).
`aggregator`: the shape of India's common payment aggregators (Razorpay, Cashfree, PayU, …): an order
created server-side with the amount in paise and our reference as `receipt` (POST /v1/orders, HTTP basic
auth key id : key secret), a hosted checkout page for that order, a browser return signed
HMAC-SHA256(key secret, "<order id>|<payment id>"), and GET /v1/orders/<id>/payments for the status.
Configured by URJA_PA_API_URL, URJA_PA_CHECKOUT_URL, URJA_PA_KEY_ID, URJA_PA_KEY_SECRET.
"""

import hashlib
import hmac
import os
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from urllib.parse import urlencode

import httpx
from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from urja.core.errors import DomainError

from .models import GatewayOrder


class GatewayUnavailable(DomainError):
    status = 502
    code = "gateway_unavailable"


def _setting(name: str, default: str = "") -> str:
    return str(getattr(settings, name, None) or os.environ.get(name, default))


@dataclass(frozen=True)
class Status:
    """What the gateway says about an order: 'paid' (with the transaction), 'failed' or 'pending'."""

    state: str
    txn_id: str = ""
    amount: Decimal | None = None
    method: str = ""
    reason: str = ""


def event_for(order: GatewayOrder, status: Status) -> dict | None:
    """The pipeline's event for a settled status (None while pending). The event id is the gateway's
    transaction id, so the return, a webhook and the status query of one payment are one event."""
    if status.state == "paid":
        amount = status.amount if status.amount is not None else order.amount
        return {"id": f"pay:{status.txn_id}", "type": "payment.succeeded",
                "data": {"order_reference": order.reference, "amount": f"{amount:.2f}", "txn_id": status.txn_id,
                         "method": status.method}}  # fmt: skip
    if status.state == "failed":
        return {"id": f"fail:{order.reference}:{status.txn_id}", "type": "payment.failed",
                "data": {"order_reference": order.reference, "reason": status.reason}}  # fmt: skip
    return None


class DevGateway:
    name = "dev"

    def checkout_url(self, order: GatewayOrder, *, return_url: str = "") -> str:
        url = reverse("payments:dev_gateway", args=[order.reference])
        return f"{url}?{urlencode({'next': return_url})}" if return_url else url

    def query(self, order: GatewayOrder) -> Status:
        return Status("pending")  # its page sends the webhook itself; nothing to ask


class AggregatorGateway:
    name = "aggregator"

    def __init__(self, *, api_url=None, checkout=None, key_id=None, key_secret=None, timeout: float = 10.0):
        self.api_url = (api_url or _setting("URJA_PA_API_URL")).rstrip("/")
        self.checkout = checkout or _setting("URJA_PA_CHECKOUT_URL")
        self.key_id = key_id or _setting("URJA_PA_KEY_ID")
        self.key_secret = key_secret or _setting("URJA_PA_KEY_SECRET")
        self.timeout = timeout

    def _request(self, method: str, path: str, **kwargs) -> dict:
        if not (self.api_url and self.key_id and self.key_secret):
            raise GatewayUnavailable("the payment aggregator is not configured (URJA_PA_*)")
        try:
            response = httpx.request(
                method, self.api_url + path, auth=(self.key_id, self.key_secret), timeout=self.timeout, **kwargs
            )
        except httpx.HTTPError as exc:
            raise GatewayUnavailable(f"payment aggregator unreachable: {exc}") from exc
        if response.status_code >= 400:
            raise GatewayUnavailable(f"payment aggregator answered {response.status_code}")
        return response.json()

    def ensure_order(self, order: GatewayOrder) -> str:
        """The aggregator's order id, created once (our reference is its `receipt`, so a retry after a
        lost answer is recognised by the aggregator and by us)."""
        if order.gateway_order_id:
            return order.gateway_order_id
        paise = int((order.amount * 100).to_integral_value())
        body = {"amount": paise, "currency": "INR", "receipt": order.reference,
                "notes": {"consumer_number": order.consumer_number or ""}}  # fmt: skip
        created = self._request("POST", "/v1/orders", json=body)
        if int(created.get("amount", -1)) != paise or created.get("receipt") != order.reference:
            raise GatewayUnavailable("the aggregator's order does not match ours")
        GatewayOrder.objects.filter(pk=order.pk, gateway_order_id="").update(gateway_order_id=str(created["id"]))
        order.refresh_from_db(fields=["gateway_order_id"])
        return order.gateway_order_id

    def checkout_url(self, order: GatewayOrder, *, return_url: str = "") -> str:
        from urja.core.links import public_url

        gateway_id = self.ensure_order(order)
        callback = public_url(reverse("payments:gateway_return", args=[self.name]))
        params = {"order_id": gateway_id, "key_id": self.key_id, "callback_url": callback}
        if return_url:
            params["cancel_url"] = public_url(return_url)
        return f"{self.checkout}?{urlencode(params)}"

    def signature(self, gateway_order_id: str, payment_id: str) -> str:
        message = f"{gateway_order_id}|{payment_id}".encode()
        return hmac.new(self.key_secret.encode(), message, hashlib.sha256).hexdigest()

    def verify_return(self, params) -> tuple[GatewayOrder, Status]:
        """The browser's return from the hosted page: (order, paid status) if the signature is right;
        DomainError 401 invalid_signature otherwise (nothing is read or changed)."""
        gateway_id = str(params.get("razorpay_order_id") or params.get("order_id") or "")
        payment_id = str(params.get("razorpay_payment_id") or params.get("payment_id") or "")
        given = str(params.get("razorpay_signature") or params.get("signature") or "")
        if not (gateway_id and payment_id and given and self.key_secret) or not hmac.compare_digest(
            self.signature(gateway_id, payment_id), given
        ):
            raise DomainError("gateway return rejected: bad signature", code="invalid_signature", status=401)
        order = GatewayOrder.objects.filter(gateway=self.name, gateway_order_id=gateway_id).first()
        if order is None:
            raise DomainError("gateway return for an unknown order", code="unknown_order", status=404)
        return order, Status("paid", txn_id=payment_id)

    def query(self, order: GatewayOrder) -> Status:
        if not order.gateway_order_id:
            return Status("pending")  # never reached the aggregator: the payer never saw a checkout
        items = self._request("GET", f"/v1/orders/{order.gateway_order_id}/payments").get("items", [])
        for item in items:
            if item.get("status") == "captured":
                amount = Decimal(int(item["amount"])) / 100
                return Status("paid", txn_id=str(item["id"]), amount=amount, method=_method(item.get("method", "")))
        if items and all(item.get("status") == "failed" for item in items):
            last = items[-1]
            return Status("failed", txn_id=str(last.get("id", "")), reason=str(last.get("error_description", ""))[:200])
        return Status("pending")


def _method(name: str) -> str:
    return {"upi": "upi", "card": "card", "netbanking": "netbanking", "wallet": "wallet"}.get(name, "card")


GATEWAYS = {"dev": DevGateway, "aggregator": AggregatorGateway}


def get_gateway(name: str):
    try:
        return GATEWAYS[name]()
    except KeyError as exc:
        raise DomainError(f"unknown gateway {name!r}", code="unknown_gateway") from exc


def default_gateway() -> str:
    """The gateway new orders use: URJA_PAYMENT_GATEWAY (dev in the embedded default)."""
    return _setting("URJA_PAYMENT_GATEWAY", "dev")


def reconcile_orders(
    *, now: datetime | None = None, older_than=timedelta(minutes=15), window=timedelta(days=2)
) -> dict:
    """Ask the gateway about its orders still 'created' after `older_than` (no callback came) and post
    what it says through the pipeline. Idempotent: a paid order is the same event as its callback."""
    from . import services

    now = now or timezone.now()
    counts = {"checked": 0, "paid": 0, "failed": 0, "pending": 0, "errors": 0}
    orders = GatewayOrder.objects.filter(
        status=GatewayOrder.Status.CREATED, created_at__lt=now - older_than, created_at__gte=now - window
    ).exclude(gateway="dev")
    for order in orders.order_by("created_at")[:500]:
        counts["checked"] += 1
        try:
            status = get_gateway(order.gateway).query(order)
        except DomainError:
            counts["errors"] += 1
            continue
        event = event_for(order, status)
        if event is None:
            counts["pending"] += 1
            continue
        services.process_gateway_event(gateway=order.gateway, event=event)
        counts[status.state] += 1
    return counts
