"""Settlement-file import: per-row report, idempotent re-import, suspense, no half-posting.
Runs the COPY + set-based path on PostgreSQL and the chunked path on SQLite."""

import io
from decimal import Decimal

import pytest
from django.utils import timezone

from urja.billing import ledger
from urja.billing.models import EntryType, LedgerEntry
from urja.core.errors import DomainError
from urja.customers import services as customers
from urja.demo.testing import domestic_account
from urja.payments import selectors, services
from urja.payments.models import Payment, PaymentStatus

pytestmark = pytest.mark.django_db


@pytest.fixture
def accounts(offices):
    a = domestic_account(offices["section1"], mobile="9437000011")
    b = domestic_account(offices["section1"], mobile="9437000012")
    closed = domestic_account(offices["section1"], mobile="9437000013")
    customers.change_account_status(
        actor=None, channel="system", account=closed, status="perm_disconnected", reason="x"
    )
    return a, b, closed


def csv_file(a, b, closed) -> bytes:
    rows = [
        "paid_at,amount,consumer_number,row_key,reference",  # any column order
        f"2025-03-01 10:15,500.00,{a.consumer_number},T1,UTR1",
        f"2025-03-01,250.5,{b.consumer_number.lower()},T2,",
        f"2025-03-01,100.00,{a.consumer_number},T1,UTR-dup",  # same key again in the file
        f"2025-03-01,12.345,{a.consumer_number},T3,",  # three decimals
        f"2025-03-01,-5,{a.consumer_number},T4,",
        f"2025-03-01,0,{a.consumer_number},T5,",
        f"not-a-date,10,{a.consumer_number},T6,",
        "2025-03-01,10,ZZ0000000,T7,",  # unknown account
        f"2025-03-01,10,{a.consumer_number},,",  # no key
        f"2025-03-01,75.00,{closed.consumer_number},T8,",  # closed → suspense
        f"2025-03-01,10,{a.consumer_number}",  # short row
    ]
    return ("\n".join(rows) + "\n").encode()


def test_import_reports_every_row_and_posts_once(accounts, admin_user):
    a, b, closed = accounts
    data = csv_file(a, b, closed)
    batch = services.import_settlement(
        actor=admin_user, source="SBI-AGENCY", filename="mar01.csv", stream=io.BytesIO(data)
    )
    assert (batch.rows, batch.posted, batch.suspense, batch.duplicates, batch.errors) == (11, 2, 1, 1, 7)
    codes = {item["line"]: item["code"] for item in batch.report}
    assert codes == {
        4: "duplicate_in_file",
        5: "invalid_amount",
        6: "invalid_amount",
        7: "invalid_amount",
        8: "invalid_date",
        9: "unknown_account",
        10: "missing_key",
        12: "malformed_row",
    }
    assert batch.total_posted == Decimal("750.50")
    assert ledger.balance(account=a) == Decimal("-500.00")
    assert ledger.balance(account=b) == Decimal("-250.50")
    assert ledger.balance(account=closed) == 0
    suspense = Payment.objects.get(account=closed)
    assert suspense.status == PaymentStatus.IN_SUSPENSE and suspense.ledger_entry is None
    posted = Payment.objects.get(idempotency_key="SBI-AGENCY:T1")
    assert posted.ledger_entry.amount == Decimal("-500.00") and posted.reference == "UTR1"
    assert timezone.localtime(posted.received_at).isoformat().startswith("2025-03-01T10:15:00+05:30")

    # the same file again: nothing new, every good row reported as a duplicate
    again = services.import_settlement(
        actor=admin_user, source="SBI-AGENCY", filename="mar01.csv", stream=io.BytesIO(data)
    )
    assert (again.posted, again.suspense, again.duplicates) == (0, 0, 4)
    assert LedgerEntry.objects.filter(entry_type=EntryType.PAYMENT).count() == 2
    # another agency may reuse the same row keys
    other = services.import_settlement(actor=admin_user, source="HDFC", filename="x.csv", stream=io.BytesIO(data))
    assert other.posted == 2


def test_prepaid_account_paid_by_file_gets_its_rebate(offices, admin_user):
    prepaid = domestic_account(offices["section1"], mobile="9437000021", is_prepaid=True)
    data = f"row_key,consumer_number,amount,paid_at\nP1,{prepaid.consumer_number},100.00,2025-03-01\n".encode()
    services.import_settlement(actor=admin_user, source="ATP", filename="p.csv", stream=io.BytesIO(data))
    assert selectors.wallet_balance(account=prepaid) == Decimal("104.00")


@pytest.mark.parametrize(
    "content, message",
    [(b"", "empty"), (b"consumer_number,amount\nX,1\n", "missing column")],
)
def test_bad_files_are_refused_whole(content, message, admin_user, accounts):
    with pytest.raises(DomainError) as exc:
        services.import_settlement(actor=admin_user, source="SBI", filename="bad.csv", stream=io.BytesIO(content))
    assert exc.value.code == "invalid_file" and message in exc.value.message
    assert not Payment.objects.exists()


def test_file_turning_bad_after_valid_rows_posts_nothing(admin_user, accounts):
    """Rows are staged while the file is still being read (a first COPY block on PostgreSQL, a first
    posted chunk elsewhere): a byte that is not UTF-8 further down still refuses the file whole."""
    a, _b, _closed = accounts
    n = 20_001  # more than one COPY block and several bulk chunks
    good = "".join(f"K{i},{a.consumer_number},10.00,2025-03-01\n" for i in range(n))
    # a stream of two chunks, as an upload arrives: the bad byte comes after every good row is read
    chunks = [f"row_key,consumer_number,amount,paid_at\n{good}".encode(), b"K-bad,\xff\xfe,10.00,2025-03-01\n"]
    with pytest.raises(DomainError) as exc:
        services.import_settlement(actor=admin_user, source="SBI", filename="bad.csv", stream=iter(chunks))
    assert exc.value.code == "invalid_file" and "UTF-8" in exc.value.message
    assert not Payment.objects.exists() and ledger.balance(account=a) == 0


def test_invalid_source(admin_user):
    with pytest.raises(DomainError) as exc:
        services.import_settlement(actor=admin_user, source="a b;", filename="x", stream=io.BytesIO(b""))
    assert exc.value.code == "invalid_source"


def test_upload_through_the_api(accounts, admin_user, client):
    from django.core.files.uploadedfile import SimpleUploadedFile

    a, b, closed = accounts
    client.force_login(admin_user)
    upload = SimpleUploadedFile("mar01.csv", csv_file(a, b, closed), content_type="text/csv")
    response = client.post("/api/v1/payments/imports", {"source": "SBI", "file": upload})
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["posted"] == 2 and body["errors"] == 7 and len(body["report"]) == 8


def test_file_overlapping_an_earlier_import_posts_only_the_new_rows(accounts, admin_user):
    """A second file that repeats some rows of the first: the repeated rows are reported as
    duplicates (also when their account is now unknown), the new rows post once."""
    a, b, _closed = accounts
    first = (
        "row_key,consumer_number,amount,paid_at\n"
        f"K1,{a.consumer_number},100.00,2025-03-01\n"
        f"K2,{b.consumer_number},200.00,2025-03-01\n"
    )
    services.import_settlement(actor=admin_user, source="AXIS", filename="1.csv", stream=io.BytesIO(first.encode()))
    second = (
        "row_key,consumer_number,amount,paid_at\n"
        f"K3,{a.consumer_number},30.00,2025-03-02\n"
        f"K2,{b.consumer_number},200.00,2025-03-01\n"  # imported before
        "K1,ZZ0000001,100.00,2025-03-01\n"  # imported before, now with an unknown account
        f"K4,{b.consumer_number},40.00,2025-03-02\n"
        f"K4,{a.consumer_number},41.00,2025-03-02\n"  # twice in this file
    )
    batch = services.import_settlement(
        actor=admin_user, source="AXIS", filename="2.csv", stream=io.BytesIO(second.encode())
    )
    assert (batch.rows, batch.posted, batch.duplicates, batch.errors) == (5, 2, 3, 0)
    assert {item["line"]: item["code"] for item in batch.report} == {
        3: "duplicate",
        4: "duplicate",
        6: "duplicate_in_file",
    }
    assert batch.total_posted == Decimal("70.00")
    assert ledger.balance(account=a) == Decimal("-130.00")
    assert ledger.balance(account=b) == Decimal("-240.00")
    assert Payment.objects.filter(idempotency_key__startswith="AXIS:").count() == 4
    posted = Payment.objects.get(idempotency_key="AXIS:K3")
    assert posted.batch_id == batch.pk and posted.ledger_entry.amount == -posted.amount
    # the entry is the payment's (one to one); the payment's unique key posts the row once
    assert (posted.ledger_entry.reference_type, posted.ledger_entry.reference_id) == ("payment_file", str(batch.pk))
    assert posted.ledger_entry.idempotency_key is None


def test_awkward_text_is_stored_as_given(accounts, admin_user):
    """Keys and references with tabs, backslashes, quotes and commas survive the COPY."""
    a, _b, _closed = accounts
    data = (
        "row_key,consumer_number,amount,paid_at,reference\n"
        f'"K\\1\t",{a.consumer_number},"1,000.00",2025-03-01 09:30,"UTR ""7"", a\\b"\n'
    )
    batch = services.import_settlement(
        actor=admin_user, source="ICICI", filename="x.csv", stream=io.BytesIO(data.encode())
    )
    assert batch.posted == 1, batch.report
    payment = Payment.objects.get(idempotency_key="ICICI:K\\1")
    assert payment.reference == 'UTR "7", a\\b' and payment.amount == Decimal("1000.00")
    assert payment.ledger_entry.description == f"Payment {payment.receipt_number} via ICICI (K\\1)"
