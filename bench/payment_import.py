"""Bank / collection-agency settlement import: a CSV of n payments over n/5 accounts.

Setup (untimed): empty payment tables, an office tree and n/5 accounts (bulk), the CSV written to a temporary file with
a few bad rows mixed in (unknown account, three-decimal amount, duplicate key). Timed:
`payments.services.import_settlement` on the open file — streamed parse and validation (in a
reading thread, ahead of the posting), each chunk's lookups a chunk ahead on a connection of their
own, then per chunk of 10,000 rows the post-payment pipeline (receipt numbers in blocks, allocation,
rebates, collection cases) and its writes behind in a thread (billing's checked ledger entries and
the payments, each by one COPY), in one transaction. Also reported: the re-import of the same file
(idempotency: nothing posted, every row reported as a duplicate), and a raw COPY of the same file into an indexed
table right after, in the same process (`raw_copy_per_s`, `ratio_to_raw_copy`). The target of issue 11 is stated
against reading_import's raw COPY in the same `make bench` run (docs/benchmarks.md); this one is its same-rows twin.
"""

import os
import tempfile
import uuid
from pathlib import Path

from common import bulk_accounts, raw_copy, timer

NAME = "payment_import"
DEFAULT_N = 1_000_000
PER_ACCOUNT = 5


def _setup(n: int, tag: str):
    from django.db import connection

    # Start from empty payment tables: the billrun bench truncates the ledger and restarts its ids,
    # and payments (no database FK to the ledger, on purpose) would then point at reused entry ids.
    with connection.cursor() as cur:
        cur.execute(
            "TRUNCATE payments_payment, payments_importbatch, payments_gatewayorder, payments_gatewayevent,"
            " payments_paygtoken"
        )
    accounts_n = max(1, n // PER_ACCOUNT)
    _section, accounts = bulk_accounts(
        accounts_n, office_prefix=f"P{tag[:4]}", number_prefix=f"P{tag}", name="Bench payer"
    )
    # connected years ago: the file's payments (March 2025) are not before the accounts existed
    with connection.cursor() as cur:
        cur.execute(
            "UPDATE customers_account SET connected_on = DATE '2020-01-01' WHERE id = ANY(%s)",
            [[a.pk for a in accounts]],
        )
    numbers = [a.consumer_number for a in accounts]
    path = Path(tempfile.mkstemp(prefix="settle-", suffix=".csv")[1])
    bad = 0
    with open(path, "w", buffering=1 << 20) as fh:
        fh.write("row_key,consumer_number,amount,paid_at,reference\n")
        lines = []
        for i in range(n):
            if i % 10_000 == 9_999:  # one bad row in 10,000, of three kinds
                kind = (i // 10_000) % 3
                bad += 1
                if kind == 0:
                    lines.append(f"K{i:09d},ZZ{i:09d},100.00,2025-03-01 10:00,\n")
                elif kind == 1:
                    lines.append(f"K{i:09d},{numbers[i % accounts_n]},100.005,2025-03-01 10:00,\n")
                else:
                    lines.append(f"K{i - 1:09d},{numbers[i % accounts_n]},100.00,2025-03-01 10:00,\n")
            else:
                amount = 100 + (i * 37) % 4900 + (i % 100) / 100
                lines.append(f"K{i:09d},{numbers[i % accounts_n]},{amount:.2f},2025-03-01 10:{i % 60:02d},U{i}\n")
            if len(lines) >= 50_000:
                fh.writelines(lines)
                lines = []
        fh.writelines(lines)
    return path, bad


def run(n: int) -> dict:
    from django.db import connection

    from urja.payments import services

    tag = uuid.uuid4().hex[:6].upper()
    path, bad = _setup(n, tag)
    result: dict = {"n": n, "accounts": max(1, n // PER_ACCOUNT), "database": connection.vendor}
    try:
        with open(path, "rb") as fh, timer(result):
            batch = services.import_settlement(actor=None, source=f"BENCH{tag}", filename=path.name, stream=fh)
        assert batch.posted + batch.errors + batch.duplicates == n, (batch.posted, batch.errors, batch.duplicates)
        result.update(posted=batch.posted, errors=batch.errors, duplicates=batch.duplicates, bad_rows_written=bad)
        again: dict = {}
        with open(path, "rb") as fh, timer(again):
            second = services.import_settlement(actor=None, source=f"BENCH{tag}", filename=path.name, stream=fh)
        assert second.posted == 0
        result["reimport_seconds"] = round(again["seconds"], 3)
        result["reimport_duplicates"] = second.duplicates
        # the same ceiling as reading_import's; not unique: the file repeats a key on purpose
        raw = raw_copy(
            path,
            columns="row_key text, consumer_number text, amount numeric, paid_at timestamptz, reference text",
            index="row_key",
        )
        result["raw_copy_seconds"] = round(raw, 3)
        result["raw_copy_per_s"] = round(n / raw, 1)
        result["ratio_to_raw_copy"] = round(raw / result["seconds"], 4)
    finally:
        os.unlink(path)
    return result
