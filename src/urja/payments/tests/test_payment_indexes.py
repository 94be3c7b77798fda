"""The indexes a file payment maintains (docs/payments.md, "Indexes of a file payment"): received_at is
BRIN on PostgreSQL (next to nothing per inserted row) and a B-tree elsewhere, and a day's payments are
still found by it."""

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from urja.payments.models import Payment

pytestmark = pytest.mark.django_db


def _received_at_index() -> str:
    with connection.cursor() as cur:
        if connection.vendor == "postgresql":
            cur.execute("SELECT indexdef FROM pg_indexes WHERE indexname = 'payment_received_at_idx'")
        else:
            cur.execute("SELECT sql FROM sqlite_master WHERE type = 'index' AND name = 'payment_received_at_idx'")
        row = cur.fetchone()
    return row[0] if row else ""


def test_received_at_is_brin_on_postgresql_and_a_btree_elsewhere():
    definition = _received_at_index()
    assert '("received_at")' in definition or "(received_at)" in definition
    assert ("USING brin" in definition) == (connection.vendor == "postgresql")
    with connection.cursor() as cur:  # the old per-row B-tree is gone
        names = {c.name for c in connection.introspection.get_table_description(cur, Payment._meta.db_table)}
        constraints = connection.introspection.get_constraints(cur, Payment._meta.db_table)
    assert "received_at" in names
    single = [n for n, c in constraints.items() if c["index"] and c["columns"] == ["received_at"]]
    assert single == ["payment_received_at_idx"]


def test_a_days_payments_are_found_by_time(cashier, account):
    from urja.payments import services

    for key in ("i1", "i2"):
        services.take_payment(
            actor=cashier, channel="counter", consumer_number=account.consumer_number, amount="10", idempotency_key=key
        )
    now = timezone.now()
    assert Payment.objects.filter(received_at__gte=now - timedelta(hours=1), received_at__lt=now).count() == 2
