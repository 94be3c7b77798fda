"""One owner for the ledger: billing's bulk post checks every row like post_entry; no module outside
billing writes ledger rows; on PostgreSQL the table refuses UPDATE and DELETE (trigger)."""

import re
from datetime import date
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from urja.billing import ledger
from urja.billing.bulk import Column
from urja.billing.models import EntryType, LedgerEntry
from urja.core.errors import DomainError
from urja.demo.testing import domestic_account

SRC = Path(__file__).resolve().parents[2]  # src/urja


@pytest.fixture
def account(db, offices):
    return domestic_account(offices["section1"], mobile="9437000501")


def _batch(account, types, amounts, keys=None):
    n = len(amounts)
    cols = [
        Column("account_id", [account.pk] * n),
        Column("entry_type", types),
        Column("amount", amounts),
        Column("posted_at", timezone.now()),
        Column("description", [f"row {i}" for i in range(n)]),
    ]
    if keys is not None:
        cols.append(Column("idempotency_key", keys))
    return [(n, cols)]


@pytest.mark.parametrize(
    "types, amounts, code",
    [
        (EntryType.PAYMENT, [Decimal("-10.00"), Decimal("5.00")], "wrong_sign"),  # a credit posted positive
        (EntryType.BILL_CHARGE, [Decimal("10.00"), Decimal("-1.00")], "wrong_sign"),  # a debit posted negative
        (EntryType.DPS, [Decimal("10.00"), Decimal("0")], "zero_amount"),
        ("no_such_type", [Decimal("1.00")], "unknown_entry_type"),
        (EntryType.REVERSAL, [Decimal("-1.00")], "reversal_not_bulk"),
        ([EntryType.BILL_CHARGE, EntryType.REBATE], [Decimal("10.00"), Decimal("3.00")], "wrong_sign"),  # per row
    ],
)
def test_bulk_post_checks_every_row_and_writes_nothing_when_one_is_wrong(account, types, amounts, code):
    with pytest.raises(DomainError) as err:
        ledger.post_entries(_batch(account, types, amounts))
    assert err.value.code == code
    assert not LedgerEntry.objects.filter(account=account).exists()


def test_bulk_post_numpy_amounts_are_checked_too(account):
    cols = _batch(account, EntryType.SUBSIDY, [Decimal("-1.00")] * 3)[0][1]
    cols[2] = Column("amount", np.array([-100, 250, -5], dtype=np.int64), 2)  # one subsidy (credit) positive
    with pytest.raises(DomainError) as err:
        ledger.post_entries([(3, cols)])
    assert err.value.code == "wrong_sign" and err.value.details["row"] == 1


def test_bulk_post_writes_and_honours_idempotency_keys(account):
    ids = ledger.post_entries(
        _batch(
            account, EntryType.PAYMENT, [Decimal("-10.00"), Decimal("-20.00"), Decimal("-10.00")], ["k1", "k2", "k1"]
        ),
        return_ids=True,
    )
    assert ids[0] == ids[2] and len(set(ids)) == 2  # the repeat in the same call posts once
    assert ledger.balance(account=account) == Decimal("-30.00")
    again = ledger.post_entries(
        _batch(account, EntryType.PAYMENT, [Decimal("-20.00"), Decimal("-5.00")], ["k2", None]), return_ids=True
    )
    assert again[0] == ids[1]  # posted before: the earlier entry, nothing new
    assert ledger.balance(account=account) == Decimal("-35.00")
    with pytest.raises(DomainError) as err:  # the same key for another amount
        ledger.post_entries(_batch(account, EntryType.PAYMENT, [Decimal("-99.00")], ["k1"]))
    assert err.value.code == "idempotency_key_reused"
    assert ledger.balance(account=account) == Decimal("-35.00")


# Writes of ledger rows: the model's create/bulk_create/update/delete, a LedgerEntry(...) built to
# be saved, and raw SQL on the table.
WRITE_PATTERNS = [
    re.compile(r"LedgerEntry\.objects\b[^\n]*\.(create|bulk_create|get_or_create|update_or_create|update|delete)\("),
    re.compile(r"\bLedgerEntry\("),
    re.compile(r"(INSERT\s+INTO|UPDATE|DELETE\s+FROM)\s+\"?billing_ledgerentry", re.IGNORECASE),
]


def test_no_module_outside_billing_writes_ledger_rows():
    offenders = []
    for path in SRC.rglob("*.py"):
        rel = path.relative_to(SRC)
        if rel.parts[0] == "billing" or "tests" in rel.parts or "migrations" in rel.parts:
            continue
        text = path.read_text(encoding="utf-8")
        for pattern in WRITE_PATTERNS:
            for match in pattern.finditer(text):
                line = text.count("\n", 0, match.start()) + 1
                offenders.append(f"{rel}:{line}: {match.group(0)}")
    assert not offenders, "ledger rows are written only through billing.ledger:\n" + "\n".join(offenders)


def test_the_source_scan_finds_a_write():
    """The scan above would catch the writes payments used to make (a guard for the guard)."""
    samples = [
        "LedgerEntry.objects.bulk_create(entries, batch_size=1000)",
        "entries = [LedgerEntry(account_id=1)]",
        "INSERT INTO billing_ledgerentry (id, account_id) SELECT 1, 2",
        "LedgerEntry.objects.filter(pk=1).update(amount=0)",
    ]
    for sample in samples:
        assert any(p.search(sample) for p in WRITE_PATTERNS), sample


postgres_only = pytest.mark.skipif(connection.vendor != "postgresql", reason="the trigger is PostgreSQL only")


@postgres_only
@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE billing_ledgerentry SET amount = 0 WHERE id = %s",
        "DELETE FROM billing_ledgerentry WHERE id = %s",
    ],
)
def test_postgres_refuses_update_and_delete_of_ledger_rows(account, sql):
    entry = ledger.post_entry(
        account=account, entry_type=EntryType.BILL_CHARGE, amount="100.00", description="bill", due_date=date.today()
    )
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cur:
        cur.execute(sql, [entry.pk])
    assert LedgerEntry.objects.get(pk=entry.pk).amount == Decimal("100.00")


@postgres_only
def test_postgres_truncate_still_empties_the_ledger(account):
    """Test teardown (flush) and bench resets TRUNCATE the table: a row trigger does not block it."""
    ledger.post_entry(account=account, entry_type=EntryType.BILL_CHARGE, amount="10.00", description="bill")
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute("SET CONSTRAINTS ALL IMMEDIATE")  # the test's own deferred FK checks, not the trigger
        cur.execute("TRUNCATE billing_ledgerentry CASCADE")
        cur.execute("SELECT count(*) FROM billing_ledgerentry")
        assert cur.fetchone()[0] == 0
        transaction.set_rollback(True)


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_postgres_flush_after_a_transactional_test_still_works(offices):
    """pytest-django flushes (TRUNCATE) after a transactional test; the trigger must not break it —
    this test's own teardown is the check, and the next test starts with an empty ledger."""
    account = domestic_account(offices["section1"], mobile="9437000502")
    ledger.post_entry(account=account, entry_type=EntryType.BILL_CHARGE, amount="10.00", description="bill")
    assert LedgerEntry.objects.count() == 1
