"""Bulk reading import: an AMR CSV of n daily register reads (100 days × n/100 meters).

Setup (untimed): an office tree, n/100 accounts with installed AMR meters (bulk), and the CSV
written to a temporary file. Timed: `importer.import_file` (COPY into staging, set-based
validation, a plain INSERT into the indexed readings table; ON CONFLICT DO NOTHING only when the
file repeats readings already stored). Also reported:
a raw `COPY` of the same file into an indexed table with the same columns (the ceiling), and
the re-import of the same file (idempotency: nothing added). VEE runs afterwards as its own job
and is not part of the import figure.
"""

import os
import tempfile
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path

from common import bulk_accounts, raw_copy, timer

NAME = "reading_import"
DEFAULT_N = 1_000_000
DAYS = 100


def _setup(n: int, tag: str):
    from django.utils import timezone

    from urja.core.calendars import IST
    from urja.metering.models import Installation, Meter, MeterStatus, MeterType

    meters_n = max(1, n // DAYS)
    _section, accounts = bulk_accounts(
        meters_n, office_prefix=f"R{tag[:4]}", number_prefix=f"B{tag}", name="Bench consumer"
    )
    meters = Meter.objects.bulk_create(
        [
            Meter(serial=f"A{tag}{i:07d}", make="Secure", meter_type=MeterType.AMR, status=MeterStatus.INSTALLED)
            for i in range(meters_n)
        ],
        batch_size=5000,
    )
    start = datetime(2024, 1, 1, tzinfo=IST)
    Installation.objects.bulk_create(
        [Installation(meter=m, account=a, installed_at=start) for m, a in zip(meters, accounts, strict=True)],
        batch_size=5000,
    )
    path = Path(tempfile.mkstemp(prefix="amr-", suffix=".csv")[1])
    first = start + timedelta(days=1)
    stamps = [(first + timedelta(days=d)).isoformat() for d in range(DAYS)]
    assert first + timedelta(days=DAYS) < timezone.now()
    written = 0
    with open(path, "w", buffering=1 << 20) as fh:
        fh.write("meter_serial,read_at,kwh,kvah,md_kw\n")
        for i, m in enumerate(meters):
            base = 1000 + i % 5000
            lines = []
            for d, stamp in enumerate(stamps):
                if written >= n:
                    break
                kwh = base + d * 4.125
                lines.append(f"{m.serial},{stamp},{kwh:.3f},{kwh * 1.05:.3f},{1 + (d % 7) * 0.25:.2f}\n")
                written += 1
            fh.writelines(lines)
    return path, written, [a.pk for a in accounts], [m.pk for m in meters], [a.consumer_id for a in accounts]


def _cleanup(meter_ids, account_ids, consumer_ids) -> None:
    """Remove the bench's rows. Foreign-key triggers are skipped for the bulk delete (superuser bench
    database): checking 1M deleted readings against unindexed referencing columns would take minutes."""
    from django.db import connection, transaction

    with transaction.atomic(), connection.cursor() as cur:
        if connection.vendor == "postgresql":
            cur.execute("SET LOCAL session_replication_role = replica")
        cur.execute(
            "DELETE FROM metering_importrowerror WHERE batch_id IN "
            "(SELECT DISTINCT batch_id FROM metering_reading WHERE meter_id = ANY(%s))",
            [meter_ids],
        )
        cur.execute("DELETE FROM metering_reading WHERE meter_id = ANY(%s)", [meter_ids])
        cur.execute("DELETE FROM metering_installation WHERE meter_id = ANY(%s)", [meter_ids])
        cur.execute("DELETE FROM metering_sheetentry WHERE meter_id = ANY(%s)", [meter_ids])
        cur.execute("DELETE FROM metering_meter WHERE id = ANY(%s)", [meter_ids])
        cur.execute("DELETE FROM customers_account WHERE id = ANY(%s)", [account_ids])
        cur.execute("DELETE FROM customers_consumer WHERE id = ANY(%s)", [consumer_ids])


def run(n: int) -> dict:
    from django.db import connection

    from urja.metering import importer

    tag = uuid.uuid4().hex[:6].upper()
    path, written, account_ids, meter_ids, consumer_ids = _setup(n, tag)
    result: dict = {"n": written}
    try:
        with timer(result):
            batch = importer.import_file(path=path, actor=None, channel="import", enqueue_vee=False)
        assert batch.inserted == written, (batch.inserted, batch.rejected)
        result["readings_per_s"] = round(written / result["seconds"], 1)
        result["rejected"] = batch.rejected
        result["file_mb"] = round(os.path.getsize(path) / 1e6, 1)
        if connection.vendor == "postgresql":
            raw = raw_copy(
                path,
                columns="meter_serial text, read_at timestamptz, kwh numeric, kvah numeric, md_kw numeric",
                index="meter_serial, read_at",
                unique=True,
            )
            result["raw_copy_seconds"] = round(raw, 3)
            result["raw_copy_per_s"] = round(written / raw, 1)
            result["ratio_to_raw_copy"] = round(raw / result["seconds"], 3)
        started = time.perf_counter()
        again = importer.import_file(path=path, actor=None, channel="import", enqueue_vee=False)
        result["reimport_seconds"] = round(time.perf_counter() - started, 3)
        result["reimport_inserted"] = again.inserted
        result["reimport_duplicates"] = again.duplicates
    finally:
        path.unlink(missing_ok=True)
        _cleanup(meter_ids, account_ids, consumer_ids)
    return result
