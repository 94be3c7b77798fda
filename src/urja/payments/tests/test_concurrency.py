"""Many simultaneous payments and callbacks on PostgreSQL (real row locks, real threads)."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest
from django.db import connection

from urja.billing import ledger
from urja.billing.models import EntryType, LedgerEntry
from urja.core.errors import DomainError
from urja.demo import testing
from urja.payments import selectors, services, signing
from urja.payments.models import Payment

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres_only]


@pytest.fixture(autouse=True)
def _only_postgres(on_postgres):
    if not on_postgres or connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL")


def in_thread(fn):
    def run(*args):
        try:
            return fn(*args)
        finally:
            connection.close()

    return run


def test_parallel_payments_keep_the_balance_exact(offices):
    account = testing.domestic_account(offices["section1"])
    ledger.post_entry(account=account, entry_type=EntryType.BILL_CHARGE, amount="10000.00", description="bill")
    cashiers = [testing.staff_user("cre", offices["section1"]) for _ in range(4)]
    for c in cashiers:
        services.open_session(actor=c, opening_balance="0")
    amounts = [Decimal("12.34") + i for i in range(40)]
    barrier = threading.Barrier(8)

    @in_thread
    def pay(i):
        if i < 8:
            barrier.wait()
        # every payment is sent twice (a double click / a retry): still posted once
        key = f"par-{i}"
        first = services.take_payment(
            actor=cashiers[i % 4],
            channel="counter",
            consumer_number=account.consumer_number,
            amount=amounts[i],
            idempotency_key=key,
            notify=False,
        )
        second = services.take_payment(
            actor=cashiers[(i + 1) % 4],
            channel="counter",
            consumer_number=account.consumer_number,
            amount=amounts[i],
            idempotency_key=key,
            notify=False,
        )
        assert first.pk == second.pk
        return first

    with ThreadPoolExecutor(max_workers=8) as pool:
        payments = list(pool.map(pay, range(40)))
    assert len({p.pk for p in payments}) == 40
    assert len({p.receipt_number for p in payments}) == 40
    assert LedgerEntry.objects.filter(account=account, entry_type=EntryType.PAYMENT).count() == 40
    assert ledger.balance(account=account) == Decimal("10000.00") - sum(amounts)
    # each payment's balance_after is a distinct point of one serial history
    afters = sorted((p.balance_after for p in Payment.objects.filter(account=account)), reverse=True)
    running = Decimal("10000.00")
    seen = []
    for p in sorted(Payment.objects.filter(account=account), key=lambda p: p.ledger_entry_id):
        running -= p.amount
        seen.append(running)
    assert sorted(seen, reverse=True) == afters


def test_same_callback_ten_times_in_parallel_posts_once(offices):
    account = testing.domestic_account(offices["section1"])
    order = services.create_order(consumer_number=account.consumer_number, amount="999.99")
    import json

    body = json.dumps(
        {
            "id": "evt_par",
            "type": "payment.succeeded",
            "data": {"order_reference": order.reference, "amount": "999.99", "txn_id": "T-PAR"},
        }
    ).encode()
    header = signing.signature_header(secret=signing.gateway_secret("dev"), timestamp=int(time.time()), body=body)
    barrier = threading.Barrier(10)

    @in_thread
    def callback(_):
        barrier.wait()
        return services.handle_webhook(gateway="dev", body=body, signature=header)

    with ThreadPoolExecutor(max_workers=10) as pool:
        results = list(pool.map(callback, range(10)))
    assert len({r.payment_id for r in results}) == 1
    assert sum(1 for r in results if not r.replay) == 1
    assert Payment.objects.count() == 1
    assert ledger.balance(account=account) == Decimal("-999.99")


def test_field_agent_limit_holds_under_parallel_uploads(offices):
    agent = testing.staff_user("field_agent", offices["section1"])
    agent.staff.cash_limit = Decimal("1000.00")
    agent.staff.save()
    account = testing.domestic_account(offices["section1"])
    barrier = threading.Barrier(6)

    @in_thread
    def collect(i):
        barrier.wait()
        try:
            return services.take_payment(
                actor=agent,
                channel="field_agent",
                consumer_number=account.consumer_number,
                amount="300.00",
                idempotency_key=f"dev:{i}",
                notify=False,
            )
        except DomainError as exc:
            return exc.code

    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(collect, range(6)))
    assert sum(1 for r in results if isinstance(r, Payment)) == 3
    assert results.count("cash_limit_exceeded") == 3
    assert selectors.cash_in_hand(agent=agent) == Decimal("900.00")


def test_the_same_settlement_file_imported_twice_at_once_posts_once(offices):
    """Two uploads of one file at the same moment (a double submit): one posts every row, the other
    reports every row as already imported; each payment and each ledger entry exists once."""
    import io

    a = testing.domestic_account(offices["section1"])
    b = testing.domestic_account(offices["section1"])
    lines = ["row_key,consumer_number,amount,paid_at"]
    lines += [f"R{i},{(a, b)[i % 2].consumer_number},{10 + i}.50,2025-03-01 10:00" for i in range(200)]
    data = ("\n".join(lines) + "\n").encode()
    barrier = threading.Barrier(2)

    @in_thread
    def upload(_):
        barrier.wait()
        return services.import_settlement(actor=None, source="DOUBLE", filename="f.csv", stream=io.BytesIO(data))

    with ThreadPoolExecutor(max_workers=2) as pool:
        batches = list(pool.map(upload, range(2)))
    assert sorted((x.posted, x.duplicates) for x in batches) == [(0, 200), (200, 0)]
    assert Payment.objects.filter(channel="file", idempotency_key__startswith="DOUBLE:").count() == 200
    assert LedgerEntry.objects.filter(payment__idempotency_key__startswith="DOUBLE:").count() == 200
    total = sum(Decimal(f"{10 + i}.50") for i in range(200))
    assert ledger.balance(account=a) + ledger.balance(account=b) == -total


def test_one_capture_under_many_event_ids_at_once_is_recorded_once(offices):
    """Gateways retry with new event ids: eight deliveries of one capture at once, for an unknown
    order (no order row to lock) and for a known one, each keep one payment (suspense / posted)."""
    import json

    from urja.payments import selectors

    account = testing.domestic_account(offices["section1"])
    order = services.create_order(consumer_number=account.consumer_number, amount="250.00")

    def delivery(reference, txn, i):
        body = json.dumps(
            {
                "id": f"evt-{txn}-{i}",
                "type": "payment.succeeded",
                "data": {"order_reference": reference, "amount": "250.00", "txn_id": txn},
            }
        ).encode()
        header = signing.signature_header(secret=signing.gateway_secret("dev"), timestamp=int(time.time()), body=body)
        return body, header

    barrier = threading.Barrier(8)

    @in_thread
    def callback(i):
        reference, txn = ("URUNKNOWN01", "T-LOST") if i % 2 else (order.reference, "T-OK")
        body, header = delivery(reference, txn, i)
        barrier.wait()
        return services.handle_webhook(gateway="dev", body=body, signature=header)

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(callback, range(8)))
    assert len({r.payment_id for r in results}) == 2
    assert Payment.objects.count() == 2
    assert Payment.objects.get(idempotency_key="dev:T-LOST").suspense_code == "unknown_order"
    assert ledger.balance(account=account) == Decimal("-250.00")
    totals = selectors.gateway_reconciliation()
    assert (totals["captured"], totals["posted"], totals["suspense"]) == (
        Decimal("500.00"),
        Decimal("250.00"),
        Decimal("250.00"),
    )
    assert totals["balanced"]
