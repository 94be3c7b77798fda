"""billing.ledger.post_staged, the set-based bulk post (PostgreSQL: INSERT … SELECT from a staging
table): every row checked as post_entries checks it before anything is written; keys must be new."""

from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone

from urja.billing import ledger
from urja.billing.models import EntryType, LedgerEntry
from urja.core.errors import DomainError
from urja.demo.testing import domestic_account

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="a staging table is PostgreSQL's"),
]


@pytest.fixture
def account(db, offices):
    return domestic_account(offices["section1"], mobile="9437000561")


def stage(rows) -> None:
    with connection.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS pg_temp.t_stage")
        cur.execute("CREATE TEMPORARY TABLE t_stage (account_id bigint, kind text, amount numeric, k text)")
        for row in rows:
            cur.execute("INSERT INTO t_stage VALUES (%s, %s, %s, %s)", list(row))


def post(**kw):
    return ledger.post_staged(
        "t_stage",
        columns={
            "account_id": "account_id",
            "entry_type": "kind",
            "amount": "amount",
            "posted_at": "%(at)s",
            "description": "'row ' || k",
            "idempotency_key": "%(prefix)s || k",
        },
        params={"at": timezone.now(), "prefix": "staged:"},
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
        (EntryType.PAYMENT, "-1.005", "invalid_amount"),  # would be rounded by the column
    ],
)
def test_one_bad_row_refuses_the_whole_post(account, kind, amount, code):
    stage([(account.pk, EntryType.PAYMENT, "-10.00", "a"), (account.pk, kind, amount, "b")])
    with pytest.raises(DomainError) as err:
        post()
    assert err.value.code == code
    assert not LedgerEntry.objects.filter(account=account).exists()


def test_posts_every_row_matching_and_refuses_a_key_used_before(account):
    stage([(account.pk, EntryType.PAYMENT, "-10.00", "a"), (account.pk, EntryType.DPS, "2.50", "b")])
    assert post(channel="import") == 2
    entry = LedgerEntry.objects.get(idempotency_key="staged:b")
    assert (entry.entry_type, entry.amount, entry.description, entry.channel) == (
        "dps",
        Decimal("2.50"),
        "row b",
        "import",
    )
    assert ledger.balance(account=account) == Decimal("-7.50")
    with pytest.raises(DomainError) as err:
        post()
    assert err.value.code == "idempotency_key_reused"
    assert ledger.balance(account=account) == Decimal("-7.50")  # nothing more
    stage([(account.pk, EntryType.PAYMENT, "-1.00", "c"), (account.pk, EntryType.PAYMENT, "-1.00", "d")])
    assert post(where="k = 'd'") == 1  # only the rows matching
    assert not LedgerEntry.objects.filter(idempotency_key="staged:c").exists()
