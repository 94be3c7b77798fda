"""Gateway orders, cashier sessions and prepaid supply have machines; their changes are checked
and audited through core.states (issue 11, part 4)."""

import json
import time
import uuid
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from urja.core.errors import Conflict
from urja.core.models import AuditEvent
from urja.payments import services, signing
from urja.payments.models import (
    GATEWAY_ORDER_STATUS,
    WALLET_SUPPLY,
    CashierSession,
    PrepaidWallet,
)

pytestmark = pytest.mark.django_db
TUESDAY_11 = datetime(2025, 6, 10, 11, 0, tzinfo=ZoneInfo("Asia/Kolkata"))


def _moves(obj, field="status"):
    events = AuditEvent.objects.filter(object_type=obj._meta.label_lower, object_id=str(obj.pk)).order_by("id")
    return [(e.action, e.changes["from"], e.changes["to"]) for e in events if "to" in e.changes and "from" in e.changes]


def _webhook(order, kind, event_id, **data):
    body = {"id": event_id, "type": kind, "data": {"order_reference": order.reference, **data}}
    raw = json.dumps(body).encode()
    header = signing.signature_header(secret=signing.gateway_secret("dev"), timestamp=int(time.time()), body=raw)
    return services.handle_webhook(gateway="dev", body=raw, signature=header)


def test_gateway_order_failed_then_captured_is_paid_and_each_step_audited(account):
    order = services.create_order(consumer_number=account.consumer_number, amount="500.00")
    assert _webhook(order, "payment.failed", "e1", reason="card declined").outcome == "failed"
    order.refresh_from_db()
    assert order.status == "failed" and order.failure_reason == "card declined"
    # the payer tries again on the same order: the capture pays it (failed → paid is in the machine)
    assert _webhook(order, "payment.succeeded", "e2", amount="500.00", txn_id="T1").outcome == "posted"
    order.refresh_from_db()
    assert order.status == "paid" and order.payment is not None
    assert _moves(order) == [("gateway_order.failed", "created", "failed"), ("gateway_order.paid", "failed", "paid")]
    # a failure delivered after the capture changes nothing: paid is final
    assert _webhook(order, "payment.failed", "e3", reason="late").outcome == "ignored_paid"
    assert GATEWAY_ORDER_STATUS.terminal == {"paid"}


def test_upi_reconciliation_pays_the_order_through_the_machine_once(account, cashier):
    order = services.create_order(consumer_number=account.consumer_number, amount="300.00", channel="upi")
    services.reconcile_upi(actor=cashier, reference=order.reference, amount="300.00", utr="UTR123")
    services.reconcile_upi(actor=cashier, reference=order.reference, amount="300.00", utr="UTR123")  # reported again
    order.refresh_from_db()
    assert order.status == "paid"
    assert _moves(order) == [("gateway_order.paid", "created", "paid")]


def test_cashier_session_closes_once_with_an_audited_transition(cashier):
    session = CashierSession.objects.get(cashier=cashier)  # the fixture's open counter
    closed = services.close_session(actor=cashier, session=session, counted_cash=str(session.opening_balance))
    assert closed.status == CashierSession.Status.CLOSED and closed.closed_at is not None
    assert _moves(closed) == [("cash_session.closed", "open", "closed")]
    with pytest.raises(Conflict):
        services.close_session(actor=cashier, session=session, counted_cash="0")


def test_prepaid_supply_changes_are_wallet_transitions(cashier, prepaid_account, tariffs_loaded, monkeypatch):
    from urja.metering import services as metering

    meter = metering.register_meter(
        serial=f"SPM{uuid.uuid4().hex[:8]}", make="Genus", meter_type="smart_prepaid", actor=None, channel="system"
    )
    metering.install_meter(account=prepaid_account, meter=meter, actor=None, channel="system")
    services.charge_prepaid_day(account=prepaid_account, day=TUESDAY_11.date(), kwh="100")
    wallet = services.evaluate_wallet(account=prepaid_account, now=TUESDAY_11)
    assert wallet.supply == PrepaidWallet.Supply.DISCONNECTED
    [(action, before, after)] = _moves(wallet)
    assert (action, before, after) == ("prepaid.disconnect", "connected", "disconnected")
    assert WALLET_SUPPLY.can(after, before)  # a recharge that clears the debt reconnects
