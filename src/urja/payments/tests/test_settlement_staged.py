"""A settlement file written behind (PostgreSQL, `staged=True`: each chunk's ledger entries and
payments by COPY in a thread of their own while the next chunk is settled) gives exactly what the
generic writes give (billing's bulk post and bulk insert, one chunk after the other — the path
SQLite takes): for random files over billed, owing, paid-up, unbilled, prepaid, closed and unknown
accounts, with duplicates in the file and rows imported before, the same payments (status, receipt
numbers and codes, allocation, balance after, suspense reason and code, prepaid token), ledger
entries (payments and rebates, in (posted_at, id) order), collection cases and per-row report."""

import io
from datetime import date
from decimal import Decimal as D
from unittest import mock

import pytest
from django.db import DataError, connection, transaction
from django.db.models import Max
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from urja.billing import ledger
from urja.billing.models import LedgerEntry
from urja.billing.services import create_run, start_run

# billing's fixtures (payments is the layer above billing): accounts with a June bill of Rs 1,175.00
from urja.billing.tests.conftest import make_account, tariffs_loaded  # noqa: F401
from urja.billing.tests.test_documents_and_views import JUNE
from urja.customers import services as customers
from urja.demo.testing import domestic_account
from urja.payments import settlement
from urja.payments.models import CollectionCase, Payment

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="the staged writes are PostgreSQL's"),
]


@pytest.fixture
def numbers(make_account, offices):  # noqa: F811
    """Consumer numbers: three billed accounts (one with an open collection case, one paid up
    before the file), an unbilled one, a prepaid one, a closed one, and one that does not exist."""
    billed = [make_account(mobile=f"94370006{i:02d}") for i in range(3)]
    start_run(run=create_run(**JUNE))
    owed = ledger.balance(account=billed[0])
    CollectionCase.objects.create(account=billed[0], reason="overdue", flagged_on=date(2025, 7, 1), amount_due=owed)
    ledger.post_entry(
        account=billed[2], entry_type="payment", amount=-ledger.balance(account=billed[2]), description="paid before"
    )
    plain = domestic_account(offices["section2"], mobile="9437000651")
    prepaid = domestic_account(offices["section1"], mobile="9437000652", is_prepaid=True)
    closed = domestic_account(offices["section1"], mobile="9437000653")
    customers.change_account_status(
        actor=None, channel="system", account=closed, status="perm_disconnected", reason="x"
    )
    return [a.consumer_number for a in [*billed, plain, prepaid, closed]] + ["ZZ0000000"]


# amounts as a bank writes them: in full net of the digital rebate (1,175.00 − 47.00), in full, in
# part, above what is owed, without trailing zeros, with a thousands separator, and two bad ones
AMOUNTS = ["1128.00", "1175.00", "500.00", "1128", "0.5", "250.5", "1,000.00", "2000.00", "12.345", "-5"]
DAYS = ["2025-06-20 09:00", "2025-07-05 11:00", "2025-07-05 11:00", "2025-07-20 10:30", "2025-08-10"]
METHODS = ["upi", "cash", "bank", "cheque", "netbanking"]

row = st.tuples(
    st.integers(0, 14),  # row key: few, so that some repeat
    st.integers(0, 6),  # account
    st.sampled_from(AMOUNTS),
    st.sampled_from(DAYS),
    st.sampled_from(METHODS),
)


def csv_bytes(rows, numbers) -> bytes:
    lines = ["row_key,consumer_number,amount,paid_at,method,reference"]
    lines += [f'K{key},{numbers[acc]},"{amount}",{day},{method},R{key}\\x' for key, acc, amount, day, method in rows]
    return ("\n".join(lines) + "\n").encode()


def snapshot(batch, ledger_before: int) -> dict:
    batch.refresh_from_db()
    payments = [
        (*row[:-1], row[-1] is None)  # posted_at: when posted
        for row in Payment.objects.filter(batch=batch)
        .order_by("id")
        .values_list(
            "idempotency_key",
            "channel",
            "method",
            "account_id",
            "consumer_number",
            "amount",
            "status",
            "received_at",
            "reference",
            "office_id",
            "receipt_number",
            "verification_code",
            "allocation",
            "balance_after",
            "suspense_reason",
            "suspense_code",
            "payg_token",
            "ledger_entry__idempotency_key",
            "ledger_entry__amount",
            "posted_at",
        )
    ]
    # ids differ between the runs: the batch and the payments (a prepaid rebate's reference and key)
    payment_keys = dict(Payment.objects.filter(batch=batch).values_list("pk", "idempotency_key"))

    def by_key(text):  # "1538" or "prepaid-rebate:1538"
        head, sep, tail = (text or "").rpartition(":")
        return f"{head}{sep}{payment_keys[int(tail)]}" if tail.isdigit() and int(tail) in payment_keys else text

    entries = [
        # a rebate is posted at the time of posting; a payment's entry at the time paid
        (
            *row[:3],
            row[3] if row[1] == "payment" else None,
            row[4],
            "<batch>" if row[6] == "payment_file" and row[5] == str(batch.pk) else by_key(row[5]),
            row[6],
            by_key(row[7]),
            *row[8:],
        )
        # in the order statements and the allocation read them (the lookups ahead draw a chunk's
        # entry ids before the chunk before posts its rebates, which are posted at the time of posting)
        for row in LedgerEntry.objects.filter(id__gt=ledger_before)
        .order_by("posted_at", "id")
        .values_list(
            "account_id",
            "entry_type",
            "amount",
            "posted_at",
            "description",
            "reference_id",
            "reference_type",
            "idempotency_key",
            "channel",
            "created_by_id",
            "due_date",
        )
    ]
    return {
        "batch": (batch.rows, batch.posted, batch.suspense, batch.errors, batch.duplicates, batch.total_posted),
        "report": batch.report,
        "payments": payments,
        "entries": entries,
        "cases": sorted(CollectionCase.objects.values_list("account_id", "status", "closed_on")),
    }


def assert_same(staged: dict, generic: dict) -> None:
    for part in generic:
        if isinstance(generic[part], list) and len(staged[part]) == len(generic[part]):
            for i, (a, b) in enumerate(zip(staged[part], generic[part], strict=True)):
                assert a == b, f"{part}[{i}]: staged {a} != generic {b}"
        assert staged[part] == generic[part], part


def run(*, staged: bool, earlier: bytes, data: bytes, chunk: int) -> dict:
    """Import `earlier` then `data`, `staged` or not, and roll it all back: the result of the second."""
    sid = transaction.savepoint()
    try:
        with mock.patch.object(settlement, "CHUNK", chunk):
            if earlier:
                settlement.run_import(
                    actor=None, source="SBI", filename="e.csv", stream=io.BytesIO(earlier), staged=staged
                )
            before = LedgerEntry.objects.aggregate(m=Max("id"))["m"] or 0
            batch = settlement.run_import(
                actor=None, source="SBI", filename="f.csv", stream=io.BytesIO(data), staged=staged
            )
            return snapshot(batch, before)
    finally:
        transaction.savepoint_rollback(sid)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    rows=st.lists(row, min_size=1, max_size=25),
    earlier=st.integers(0, 5),
    chunk=st.sampled_from([1, 2, 3, 7, 10_000]),
)
def test_staged_writes_give_what_the_generic_writes_give(numbers, tariffs_loaded, rows, earlier, chunk):  # noqa: F811
    first = csv_bytes(rows[:earlier], numbers) if earlier else b""
    data = csv_bytes(rows, numbers)
    generic = run(staged=False, earlier=first, data=data, chunk=chunk)
    staged = run(staged=True, earlier=first, data=data, chunk=chunk)
    assert_same(staged, generic)


def test_the_comparison_sees_payments_rebates_suspense_and_cases(numbers, tariffs_loaded):  # noqa: F811
    # one file through both paths, with what each part of the comparison is about actually present
    rows = [(1, 0, "1128.00", DAYS[1], "upi"), (2, 5, "75.00", DAYS[1], "bank"), (3, 3, "250.5", DAYS[2], "cash")]
    rows += [(4, 1, "500.00", DAYS[1], "cash"), (5, 4, "100.00", DAYS[1], "upi"), (1, 6, "1.00", DAYS[1], "upi")]
    data = csv_bytes(rows, numbers)
    generic = run(staged=False, earlier=b"", data=data, chunk=10_000)
    staged = run(staged=True, earlier=b"", data=data, chunk=10_000)
    assert_same(staged, generic)
    statuses = [p[6] for p in staged["payments"]]
    assert statuses.count("posted") == 4 and statuses.count("in_suspense") == 1
    assert [e[1] for e in staged["entries"]].count("rebate") >= 1  # the in-full digital payment's
    assert ("closed" in str(staged["cases"])) or ("settled" in str(staged["cases"]))
    advance = next(p for p in staged["payments"] if p[5] == D("250.50"))[12]
    assert advance == {"parts": [], "advance": "250.5"}  # as the file wrote it, on both paths
    assert [item["code"] for item in staged["report"]] == ["duplicate_in_file"]


@pytest.mark.parametrize("chunk", [1, 2])
def test_an_owing_account_paid_in_consecutive_chunks_is_allocated_after_its_first_payment(
    numbers,
    tariffs_loaded,  # noqa: F811
    chunk,
):
    # The rows of a chunk are written while the next chunk is settled; the allocation of an account that
    # still owes reads its ledger history, so its payment in the chunk before must be written by then
    # (hypothesis found this: the second payment was split over the whole bill again): the second pays
    # what the first left owing, the rest is advance.
    rows = [(1, 0, "1000.00", DAYS[3], "bank"), (2, 0, "1128.00", DAYS[3], "bank"), (3, 0, "10.00", DAYS[3], "bank")]
    data = csv_bytes(rows, numbers)
    generic = run(staged=False, earlier=b"", data=data, chunk=chunk)
    staged = run(staged=True, earlier=b"", data=data, chunk=chunk)
    assert_same(staged, generic)
    owed_after_first = staged["payments"][0][13]  # balance after the first payment
    second = staged["payments"][1][12]
    assert owed_after_first > 0 and sum(D(part["amount"]) for part in second["parts"]) == owed_after_first
    assert D(second["advance"]) == D("1128.00") - owed_after_first


def _went_away():
    raise RuntimeError("the server went away")


def _refused():
    with connection.cursor() as cur:  # the server refuses: the transaction is aborted
        cur.execute("SELECT 1 / 0")


@pytest.mark.parametrize(
    "failure, error, message", [(_went_away, RuntimeError, "went away"), (_refused, DataError, "division by zero")]
)
def test_a_write_failing_in_the_writing_thread_fails_the_import_and_writes_nothing(
    numbers,
    tariffs_loaded,  # noqa: F811
    failure,
    error,
    message,
):
    # the writes of a chunk run in a thread of their own while the next chunk is settled
    # (settlement._Writer): a failure there reaches the import as itself — not as an "aborted
    # transaction" error from a statement sent after a refusal — and the whole file rolls back
    rows = [(k, k % 3, "100.00", DAYS[1], "bank") for k in range(7)]
    data = csv_bytes(rows, numbers)
    entries_before, payments_before = LedgerEntry.objects.count(), Payment.objects.count()
    calls = []
    original = settlement._write_behind

    def fail_second(*args, **kwargs):
        calls.append(args)
        if len(calls) == 2:
            failure()
        return original(*args, **kwargs)

    sid = transaction.savepoint()
    with (
        mock.patch.object(settlement, "CHUNK", 2),
        mock.patch.object(settlement, "_write_behind", fail_second),
        pytest.raises(error, match=message),
    ):
        settlement.run_import(actor=None, source="SBI", filename="f.csv", stream=io.BytesIO(data), staged=True)
    transaction.savepoint_rollback(sid)
    assert len(calls) == 2  # the first chunk was written, the third was never sent
    assert (LedgerEntry.objects.count(), Payment.objects.count()) == (entries_before, payments_before)
    assert not connection.allow_thread_sharing  # the connection is this thread's alone again


def test_foreign_keys_are_deferred_again_after_an_import(numbers, tariffs_loaded):  # noqa: F811
    # the import checks foreign keys as each chunk is written (not all at its commit); a caller's
    # transaction goes on with them deferred, as Django declares them
    data = csv_bytes([(1, 3, "100.00", DAYS[1], "bank")], numbers)
    settlement.run_import(actor=None, source="SBI", filename="f.csv", stream=io.BytesIO(data), staged=True)
    sid = transaction.savepoint()
    with connection.cursor() as cur:  # an entry of no account: refused only at commit when deferred
        cur.execute(
            "INSERT INTO billing_ledgerentry (id, entry_type, amount, posted_at, description, reference_type,"
            " reference_id, channel, account_id) VALUES (nextval(pg_get_serial_sequence('billing_ledgerentry', 'id')),"
            " 'dps', 1, now(), 'x', '', '', 'system', -1)"
        )
    transaction.savepoint_rollback(sid)
