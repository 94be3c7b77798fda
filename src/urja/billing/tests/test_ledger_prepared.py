"""billing.ledger.prepare_new_entries / post_prepared, the bulk post built ahead (PostgreSQL: COPY
text with ids the caller drew): every row checked as post_entries checks it before anything is
written; keys must be new."""

from decimal import Decimal

import numpy as np
import pytest
from django.db import connection, transaction
from django.utils import timezone

from urja.billing import bulk, ledger
from urja.billing.bulk import Column
from urja.billing.models import EntryType, LedgerEntry
from urja.core.errors import DomainError
from urja.demo.testing import domestic_account

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="COPY text is PostgreSQL's"),
]


@pytest.fixture
def account(db, offices):
    return domestic_account(offices["section1"], mobile="9437000561")


def prepare(account, rows, **kw):
    """rows: (entry type, amount, key)."""
    return ledger.prepare_new_entries(
        [
            (
                len(rows),
                [
                    Column("account_id", account.pk),
                    Column("entry_type", [kind for kind, _, _ in rows]),
                    Column("amount", [amount for _, amount, _ in rows]),
                    Column("posted_at", timezone.now()),
                    Column("description", [f"row {key}" for _, _, key in rows]),
                    Column("idempotency_key", [f"prepared:{key}" for _, _, key in rows]),
                ],
            )
        ],
        ids=bulk.reserve_ids(LedgerEntry, len(rows)),
        **kw,
    )


@pytest.mark.parametrize(
    "kind, amount, code",
    [
        (EntryType.PAYMENT, "5.00", "wrong_sign"),  # a credit posted positive
        (EntryType.BILL_CHARGE, "-1.00", "wrong_sign"),  # a debit posted negative
        (EntryType.DPS, "0", "zero_amount"),
        ("no_such_type", "1.00", "unknown_entry_type"),
        (EntryType.REVERSAL, "-1.00", "reversal_not_bulk"),
    ],
)
def test_one_bad_row_refuses_the_whole_post_before_anything_is_built(account, kind, amount, code):
    with pytest.raises(DomainError) as err:
        prepare(account, [(EntryType.PAYMENT, "-10.00", "a"), (kind, amount, "b")])
    assert err.value.code == code
    assert not LedgerEntry.objects.filter(account=account).exists()


def test_posts_the_rows_with_the_ids_drawn_and_refuses_a_key_used_before(account):
    prepared = prepare(account, [(EntryType.PAYMENT, "-10.00", "a"), (EntryType.DPS, "2.50", "b")], channel="import")
    assert not LedgerEntry.objects.filter(account=account).exists()  # built, not written
    assert ledger.post_prepared(prepared) == 2
    entry = LedgerEntry.objects.get(idempotency_key="prepared:b")
    assert (entry.entry_type, entry.amount, entry.description, entry.channel) == (
        "dps",
        Decimal("2.50"),
        "row b",
        "import",
    )
    ids = list(LedgerEntry.objects.filter(account=account).order_by("id").values_list("id", flat=True))
    assert ids == sorted(ids) and ids[1] == ids[0] + 1  # the ids drawn, in the order given
    assert ledger.balance(account=account) == Decimal("-7.50")
    again = prepare(account, [(EntryType.PAYMENT, "-1.00", "c"), (EntryType.PAYMENT, "-1.00", "a")])
    with transaction.atomic(), pytest.raises(DomainError) as err:
        ledger.post_prepared(again)
    assert err.value.code == "idempotency_key_reused"
    assert ledger.balance(account=account) == Decimal("-7.50")  # nothing of the refused post
    assert not LedgerEntry.objects.filter(idempotency_key="prepared:c").exists()


def test_the_ids_must_match_the_rows(account):
    with pytest.raises(ValueError, match="1 ids for 2 rows"):
        ledger.prepare_new_entries(
            [
                (
                    2,
                    [
                        Column("account_id", account.pk),
                        Column("entry_type", EntryType.PAYMENT),
                        Column("amount", np.array([-100, -200], dtype=np.int64), 2),
                        Column("posted_at", timezone.now()),
                        Column("description", "x"),
                    ],
                )
            ],
            ids=[1],
        )
    assert ledger.post_prepared(ledger.prepare_new_entries([], ids=[])) == 0
