"""Money is never lost or doubled (issue 10): a payment is never refused because of a rebate, every
rupee a gateway captured is posted or in suspense with a reason, duplicates and out-of-order webhooks
post once, closed accounts are refused at the counter and kept in suspense elsewhere, and the
reconciliation selectors see all of it."""

import io
import json
import time
from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from urja.billing import ledger
from urja.billing import services as billing_services
from urja.billing.models import Bill, EntryType, LedgerEntry
from urja.core.errors import DomainError
from urja.customers import services as customers
from urja.demo.testing import domestic_account
from urja.payments import seams, selectors, services, signing
from urja.payments.models import GatewayEvent, GatewayOrder, Payment, PaymentStatus, PrepaidWallet

pytestmark = pytest.mark.django_db
WEBHOOK = "/api/v1/payments/gateway/dev/webhook"


def close(account):
    customers.change_account_status(
        actor=None, channel="system", account=account, status="perm_disconnected", reason="dismantled"
    )


def charge(account, amount, key):
    return ledger.post_entry(
        account=account,
        entry_type=EntryType.BILL_CHARGE,
        amount=amount,
        description="bill",
        due_date=timezone.localdate() + timedelta(days=10),
        idempotency_key=key,
    )


def bill_with_rebates(account, *, prompt: str, digital: str = "0") -> Bill:
    """A bill as a faulty run issued it: its conditional rebates may have the wrong sign."""
    today = timezone.localdate()
    charge(account, "1000.00", "bill:B1")
    return Bill.objects.create(
        account=account,
        bill_number="B1",
        period_start=today - timedelta(days=40),
        period_end=today - timedelta(days=10),
        bill_date=today - timedelta(days=2),
        due_date=today + timedelta(days=10),
        tariff_versions="",
        sanctioned_load=Decimal("2"),
        total=Decimal("1000.00"),
        net_payable=Decimal("1000.00"),
        rebate_by_due_date=Decimal(prompt),
        rebate_digital=Decimal(digital),
        created_at=timezone.now(),
    )


def rebates(account):
    return list(
        LedgerEntry.objects.filter(account=account, entry_type=EntryType.REBATE).values_list("amount", flat=True)
    )


def post_webhook(client, event: dict):
    raw = json.dumps(event).encode()
    header = signing.signature_header(secret=signing.gateway_secret("dev"), timestamp=int(time.time()), body=raw)
    return client.post(WEBHOOK, data=raw, content_type="application/json", HTTP_X_URJA_SIGNATURE=header)


def captured(reference, *, event_id, txn, amount):
    return {
        "id": event_id,
        "type": "payment.succeeded",
        "data": {"order_reference": reference, "amount": str(amount), "txn_id": txn, "method": "upi"},
    }


def failed(reference, *, event_id):
    return {"id": event_id, "type": "payment.failed", "data": {"order_reference": reference, "reason": "declined"}}


def assert_reconciled():
    gateways = selectors.gateway_reconciliation()
    assert gateways["balanced"], gateways
    for gateway, totals in gateways["gateways"].items():
        assert totals["balanced"], (gateway, totals)
    receipts = selectors.receipts_reconciliation()
    assert receipts["balanced"], receipts


# --- 1. a rebate never refuses a payment --------------------------------------------------------------


def test_positive_prompt_rebate_does_not_refuse_a_counter_payment(cashier, account, client):
    bill_with_rebates(account, prompt="+35.00")
    # paid in full by the due date with something over: the old code then posted the +35 and refused
    payment = services.take_payment(
        actor=cashier,
        channel="counter",
        consumer_number=account.consumer_number,
        amount="1100.00",
        idempotency_key="k1",
    )
    assert payment.status == PaymentStatus.POSTED
    assert rebates(account) == []  # a "rebate" of +35 is not a credit: nothing earned
    assert ledger.balance(account=account) == Decimal("-100.00")
    assert_reconciled()


def test_positive_rebate_does_not_refuse_a_gateway_payment(account, client):
    bill_with_rebates(account, prompt="+35.00", digital="-40.00")  # the digital one is a real credit
    order = services.create_order(consumer_number=account.consumer_number, amount="960.00", channel="upi")
    response = post_webhook(client, captured(order.reference, event_id="e1", txn="T1", amount="960.00"))
    assert response.status_code == 200, response.content
    assert response.json()["outcome"] == "posted"
    assert rebates(account) == [Decimal("-40.00")]
    assert ledger.balance(account=account) == 0
    assert_reconciled()


def test_rebates_earned_keeps_only_credits(account):
    bill = bill_with_rebates(account, prompt="+35.00", digital="-40.00")
    earned = billing_services._rebates_earned(bill, paid_on=timezone.localdate(), digital=True)
    assert [(key, amount) for key, _label, amount in earned] == [("digital", Decimal("-40.00"))]
    entries = billing_services.apply_payment_rebates(bill=bill, paid_on=timezone.localdate(), digital=True)
    assert [e.amount for e in entries] == [Decimal("-40.00")]


# --- 2. gateway: captured = posted + suspense, always ----------------------------------------------------


def test_webhook_for_unknown_order_lands_in_suspense(client):
    response = post_webhook(client, captured("URNOSUCHORDER", event_id="e1", txn="T9", amount="410.00"))
    assert response.status_code == 200, response.content
    body = response.json()
    payment = Payment.objects.get(pk=body["payment_id"])
    assert payment.status == PaymentStatus.IN_SUSPENSE and payment.suspense_code == "unknown_order"
    assert payment.account is None and payment.amount == Decimal("410.00") and payment.receipt_number
    event = GatewayEvent.objects.get(event_id="e1")
    assert event.payment == payment and event.amount == Decimal("410.00") and event.txn_id == "T9"
    # delivered again (same or new event id): still one suspense payment
    assert post_webhook(client, captured("URNOSUCHORDER", event_id="e1", txn="T9", amount="410.00")).json()["replay"]
    post_webhook(client, captured("URNOSUCHORDER", event_id="e2", txn="T9", amount="410.00"))
    assert Payment.objects.count() == 1
    totals = selectors.gateway_reconciliation()["gateways"]["dev"]
    assert totals["captured"] == Decimal("410.00") and totals["suspense"] == Decimal("410.00")
    assert totals["suspense_by_code"] == {"unknown_order": Decimal("410.00")} and totals["balanced"]


def test_webhook_for_an_account_closed_after_the_order_lands_in_suspense(account, client):
    order = services.create_order(consumer_number=account.consumer_number, amount="500.00")
    close(account)
    response = post_webhook(client, captured(order.reference, event_id="e1", txn="T1", amount="500.00"))
    assert response.status_code == 200 and response.json()["outcome"] == PaymentStatus.IN_SUSPENSE
    payment = Payment.objects.get()
    assert payment.suspense_code == "account_closed" and payment.ledger_entry is None
    assert ledger.balance(account=account) == 0
    assert GatewayEvent.objects.get().payment == payment
    assert_reconciled()


def test_webhook_whose_posting_fails_keeps_the_money_in_suspense(account, client, monkeypatch):
    """Any business refusal while posting (here: the rebate step raising, as the wrong_sign did)
    rolls the posting back and keeps the captured money in suspense with the reason — not a 5xx."""

    def refuse(**kwargs):
        raise DomainError("rebate is a credit and must be negative", code="wrong_sign")

    monkeypatch.setattr(billing_services, "rebates_on_payment", refuse)
    order = services.create_order(consumer_number=account.consumer_number, amount="300.00")
    response = post_webhook(client, captured(order.reference, event_id="e1", txn="T1", amount="300.00"))
    assert response.status_code == 200, response.content
    payment = Payment.objects.get()
    assert payment.status == PaymentStatus.IN_SUSPENSE and payment.suspense_code == "posting_failed"
    assert "wrong_sign" in payment.suspense_reason
    assert not LedgerEntry.objects.filter(entry_type=EntryType.PAYMENT).exists()
    order.refresh_from_db()
    assert order.status == GatewayOrder.Status.PAID and order.payment == payment
    assert_reconciled()


def test_duplicate_and_out_of_order_webhooks_post_once(account, client):
    order = services.create_order(consumer_number=account.consumer_number, amount="700.00")
    assert post_webhook(client, captured(order.reference, event_id="e1", txn="T1", amount="700.00")).status_code == 200
    post_webhook(client, captured(order.reference, event_id="e2", txn="T1", amount="700.00"))  # retry, new id
    late_failure = post_webhook(client, failed(order.reference, event_id="e3"))  # a failure after the capture
    assert late_failure.status_code == 200 and late_failure.json()["outcome"] == "ignored_paid"
    order.refresh_from_db()
    assert order.status == GatewayOrder.Status.PAID
    assert Payment.objects.count() == 1 and ledger.balance(account=account) == Decimal("-700.00")
    # a second capture by another transaction for the paid order: the payer paid twice → suspense
    second = post_webhook(client, captured(order.reference, event_id="e4", txn="T2", amount="700.00"))
    assert second.status_code == 200 and second.json()["outcome"] == PaymentStatus.IN_SUSPENSE
    assert Payment.objects.get(idempotency_key="dev:T2").suspense_code == "duplicate_capture"
    assert ledger.balance(account=account) == Decimal("-700.00")
    totals = selectors.gateway_reconciliation()["gateways"]["dev"]
    assert (totals["captured"], totals["posted"], totals["suspense"]) == (
        Decimal("1400.00"),
        Decimal("700.00"),
        Decimal("700.00"),
    )
    assert_reconciled()


def test_failure_delivered_before_the_capture_still_posts(account, client):
    order = services.create_order(consumer_number=account.consumer_number, amount="120.00")
    post_webhook(client, failed(order.reference, event_id="e1"))
    order.refresh_from_db()
    assert order.status == GatewayOrder.Status.FAILED
    assert post_webhook(client, captured(order.reference, event_id="e2", txn="T1", amount="120.00")).json()[
        "outcome"
    ] == ("posted")
    order.refresh_from_db()
    assert order.status == GatewayOrder.Status.PAID and ledger.balance(account=account) == Decimal("-120.00")


def test_amount_mismatch_and_above_limit_are_suspense_with_codes(account, client):
    small = services.create_order(consumer_number=account.consumer_number, amount="100.00")
    post_webhook(client, captured(small.reference, event_id="e1", txn="T1", amount="90.00"))
    big = services.create_order(consumer_number=account.consumer_number, amount="100.00")
    response = post_webhook(client, captured(big.reference, event_id="e2", txn="T2", amount="99999999.00"))
    assert response.status_code == 200, response.content
    codes = dict(Payment.objects.values_list("reference", "suspense_code"))
    assert codes == {"T1": "amount_mismatch", "T2": "amount_too_large"}
    assert ledger.balance(account=account) == 0
    assert_reconciled()


def test_upi_bank_line_for_an_order_the_webhook_paid_is_not_posted_again(account, client, admin_user):
    order = services.create_order(consumer_number=account.consumer_number, amount="399.00", channel="upi")
    post_webhook(client, captured(order.reference, event_id="e1", txn="T1", amount="399.00"))
    with pytest.raises(DomainError) as exc:
        services.reconcile_upi(actor=admin_user, reference=order.reference, amount="399.00", utr="412345678901")
    assert exc.value.code == "order_already_paid" and exc.value.status == 409
    assert Payment.objects.count() == 1 and ledger.balance(account=account) == Decimal("-399.00")


# --- closed accounts on the other channels ---------------------------------------------------------------


def test_counter_refuses_a_closed_account_with_a_clear_4xx(cashier, account, client):
    close(account)
    client.force_login(cashier)
    response = client.post(
        "/api/v1/payments/payments",
        data={"consumer_number": account.consumer_number, "amount": "100.00", "idempotency_key": "c1"},
        content_type="application/json",
    )
    assert response.status_code == 400 and response.json()["code"] == "account_closed"
    assert not Payment.objects.exists()


def test_file_row_for_a_closed_account_goes_to_suspense_with_its_code(account, admin_user):
    close(account)
    data = f"row_key,consumer_number,amount,paid_at\nR1,{account.consumer_number},80.00,2025-03-01\n".encode()
    batch = services.import_settlement(actor=admin_user, source="SBI", filename="f.csv", stream=io.BytesIO(data))
    again = services.import_settlement(actor=admin_user, source="SBI", filename="f.csv", stream=io.BytesIO(data))
    assert (batch.suspense, again.suspense, again.duplicates) == (1, 0, 1)
    payment = Payment.objects.get()
    assert payment.status == PaymentStatus.IN_SUSPENSE and payment.suspense_code == "account_closed"
    assert_reconciled()


# --- 3. the selectors ------------------------------------------------------------------------------------


def test_receipts_reconciliation_across_channels(cashier, account, offices, admin_user):
    closed = domestic_account(offices["section1"], mobile="9437000031")
    close(closed)
    services.take_payment(
        actor=cashier, channel="counter", consumer_number=account.consumer_number, amount="250.00", idempotency_key="a"
    )
    cheque = services.take_payment(
        actor=cashier,
        channel="counter",
        consumer_number=account.consumer_number,
        amount="400.00",
        idempotency_key="b",
        method="cheque",
        instrument_number="111222",
    )
    services.bounce_cheque(actor=admin_user, payment=cheque, reason="insufficient funds")
    rows = f"row_key,consumer_number,amount,paid_at\nR1,{account.consumer_number},60.00,2025-03-01\n"
    rows += f"R2,{closed.consumer_number},70.00,2025-03-01\n"
    services.import_settlement(actor=admin_user, source="AG", filename="f.csv", stream=io.BytesIO(rows.encode()))
    upi = services.take_payment(
        actor=None,
        channel="upi",
        method="upi",
        consumer_number=closed.consumer_number,
        amount="30.00",
        idempotency_key="u",
    )
    services.refund_suspense(actor=admin_user, payment=upi, reason="returned to payer")

    report = selectors.receipts_reconciliation()
    assert report["balanced"], report
    assert report["received"] == Decimal("810.00")
    assert (report["posted"], report["suspense"], report["refunded"], report["reversed"]) == (
        Decimal("310.00"),
        Decimal("70.00"),
        Decimal("30.00"),
        Decimal("400.00"),
    )
    assert report["ledger_payments"] == Decimal("710.00")  # posted + the bounced cheque's (reversed) entry
    assert report["channels"]["file"]["suspense"] == Decimal("70.00")
    # later than everything: nothing counted
    assert selectors.receipts_reconciliation(since=timezone.now() + timedelta(days=1))["received"] == 0

    # a payment entry with no payment behind it, or a posted payment without its entry, is caught
    ledger.post_entry(account=account, entry_type=EntryType.PAYMENT, amount="-5.00", description="by hand")
    assert selectors.receipts_reconciliation()["orphan_entries"] == 1
    assert not selectors.receipts_reconciliation()["balanced"]


def test_gateway_reconciliation_catches_a_capture_recorded_nowhere(account, client):
    order = services.create_order(consumer_number=account.consumer_number, amount="50.00")
    post_webhook(client, captured(order.reference, event_id="e1", txn="T1", amount="50.00"))
    # what the old code did on a refused posting: an event with no payment behind it
    GatewayEvent.objects.create(
        gateway="dev", event_id="lost", payload={}, kind="payment.succeeded", txn_id="T2", amount=Decimal("20.00")
    )
    totals = selectors.gateway_reconciliation()["gateways"]["dev"]
    assert totals["captured"] == Decimal("70.00") and totals["unrecorded"] == Decimal("20.00")
    assert not totals["balanced"]
    assert not selectors.gateway_reconciliation()["balanced"]
    later = selectors.gateway_reconciliation(since=timezone.now() + timedelta(days=1))
    assert later["gateways"] == {} and later["captured"] == 0 and later["balanced"]


# --- 4. prepaid ------------------------------------------------------------------------------------------


def test_prepaid_recharge_retry_posts_once_with_one_rebate(cashier, prepaid_account):
    first = services.take_payment(
        actor=cashier, channel="counter", consumer_number=prepaid_account.consumer_number, amount="500.00",
        idempotency_key="r1",
    )  # fmt: skip
    again = services.take_payment(
        actor=cashier, channel="counter", consumer_number=prepaid_account.consumer_number, amount="500.00",
        idempotency_key="r1",
    )  # fmt: skip
    assert first.pk == again.pk
    assert rebates(prepaid_account) == [Decimal("-20.00")]
    assert selectors.wallet_balance(account=prepaid_account) == Decimal("520.00")


def test_prepaid_recharge_by_file_twice_earns_one_rebate(prepaid_account, admin_user):
    data = f"row_key,consumer_number,amount,paid_at\nP1,{prepaid_account.consumer_number},100.00,2025-03-01\n".encode()
    for _ in range(2):
        services.import_settlement(actor=admin_user, source="ATP", filename="p.csv", stream=io.BytesIO(data))
    assert rebates(prepaid_account) == [Decimal("-4.00")]
    assert selectors.wallet_balance(account=prepaid_account) == Decimal("104.00")


def test_recharge_for_a_closed_prepaid_account(cashier, prepaid_account, admin_user, client):
    close(prepaid_account)
    with pytest.raises(DomainError) as exc:  # at the counter: refused (nothing is due)
        services.take_payment(
            actor=cashier, channel="counter", consumer_number=prepaid_account.consumer_number, amount="200.00",
            idempotency_key="r1",
        )  # fmt: skip
    assert exc.value.code == "account_closed"
    data = f"row_key,consumer_number,amount,paid_at\nP1,{prepaid_account.consumer_number},200.00,2025-03-01\n"
    services.import_settlement(actor=admin_user, source="ATP", filename="p.csv", stream=io.BytesIO(data.encode()))
    payment = Payment.objects.get()
    assert payment.status == PaymentStatus.IN_SUSPENSE and payment.suspense_code == "account_closed"
    assert rebates(prepaid_account) == [] and ledger.balance(account=prepaid_account) == 0
    assert_reconciled()


def test_closed_prepaid_wallet_is_neither_charged_nor_switched(prepaid_account, monkeypatch):
    sent = []
    monkeypatch.setattr(seams, "send_meter_command", lambda **kw: sent.append(kw) or seams.CommandSent("c1", "test"))
    wallet = services.ensure_wallet(account=prepaid_account)
    PrepaidWallet.objects.filter(pk=wallet.pk).update(supply=PrepaidWallet.Supply.DISCONNECTED)
    close(prepaid_account)
    monday_11 = timezone.make_aware(datetime(2025, 6, 9, 11, 0))
    assert services.evaluate_wallet(account=prepaid_account, now=monday_11).commands_sent == 0  # no reconnect
    counts = services.run_prepaid_day(day=date(2025, 6, 8), now=monday_11)
    assert counts == {"charged": 0, "no_data": 0, "no_tariff": 0, "evaluated": 0, "skipped": []}
    assert services.sweep_prepaid_supply(now=monday_11) == 0 and sent == []
