"""Bill run at DISCOM scale: N accounts with meters and two readings each, billed end to end.

Setup (not timed): consumers, accounts, meters, installations and 2 readings per account are
created set-based on the server (INSERT … SELECT generate_series), spread over 4 divisions and
the shipped OERC tariffs (domestic general / BPL, irrigation; urban and rural; 2% prepaid).
Timed: `create_run` (tariff check, partitions) and the run itself — 2 worker processes claiming
the division partitions, like 2 Celery workers — through to bills, ledger entries and numbers.
Baseline: a raw COPY of the same bill and ledger rows into clone tables; `ratio_to_copy` is
run seconds / COPY seconds. Peak memory is reported for the parent and for the workers.
"""

import multiprocessing
import os
import resource
import time
from datetime import date

from common import timer

NAME = "billrun"
DEFAULT_N = 2_000_000
WORKERS = int(os.environ.get("BILLRUN_WORKERS", "2"))
PERIOD = "2025-06"


def _exec(sql: str, params=None) -> None:
    from django.db import connection

    with connection.cursor() as c:
        c.execute(sql, params)


def setup(n: int) -> list:
    from django.db import connection

    from urja.network.models import Office
    from urja.network.services import create_office
    from urja.tariffs import services as tariffs

    _exec(
        "TRUNCATE billing_billexception, billing_billrunpartition, billing_bill, billing_billrun, billing_ledgerentry,"
        " billing_instalmentplan, metering_reading, metering_installation, metering_meter, customers_contact,"
        " customers_account, customers_consumer, tariffs_tariffversion, tariffs_tarifforder RESTART IDENTITY CASCADE"
    )
    _exec("DELETE FROM core_numberseries WHERE key LIKE 'bill:%%' OR key LIKE 'statement:%%'")
    root = Office.objects.filter(code="BNU").first() or create_office(code="BNU", name="Bench utility", level="utility")
    circle = Office.objects.filter(code="BNC").first() or create_office(
        code="BNC", name="Bench circle", level="circle", parent=root
    )
    sections = []
    for i in range(4):
        div = Office.objects.filter(code=f"BND{i}").first() or create_office(
            code=f"BND{i}", name=f"Bench division {i}", level="division", parent=circle
        )
        sub = Office.objects.filter(code=f"BNS{i}").first() or create_office(
            code=f"BNS{i}", name=f"Bench sub-division {i}", level="subdivision", parent=div
        )
        sec = Office.objects.filter(code=f"BNX{i}").first() or create_office(
            code=f"BNX{i}", name=f"Bench section {i}", level="section", parent=sub
        )
        sections.append(sec)
    tariffs.load_all()
    ids = "ARRAY[" + ",".join(str(s.pk) for s in sections) + "]"
    paths = "ARRAY[" + ",".join(f"'{s.path}'" for s in sections) + "]"
    _exec(
        "INSERT INTO customers_consumer (name, kind, applicant_type, guardian_name, aadhaar_masked,"
        " preferred_language, created_at) SELECT 'Consumer ' || g, 'person', 'owner', '', '',"
        " (ARRAY['en','hi','or'])[1 + g %% 3], now() FROM generate_series(1, %s::bigint) g",
        [n],
    )
    _exec(
        "INSERT INTO customers_account (consumer_number, consumer_id, premises_address, pincode, category,"
        " sub_category, supply_type, sanctioned_load, load_unit, area, section_id, office_path, package_code,"
        " bill_cycle, route, status, is_prepaid, connected_on, created_at)"
        " SELECT 'BN' || lpad(g::text, 10, '0'), g, 'House ' || g, '756001',"
        "  CASE WHEN g %% 20 = 7 THEN 'irrigation' ELSE 'domestic' END,"
        "  CASE WHEN g %% 20 = 3 THEN 'bpl_kutir_jyoti' ELSE 'general' END,"
        "  'lt_1ph', 1 + (g %% 5), 'kW', CASE WHEN g %% 5 < 2 THEN 'rural' ELSE 'urban' END,"
        f"  ({ids})[1 + (g / 7) %% 4], ({paths})[1 + (g / 7) %% 4], '', 'C01', 'R' || (g %% 50), 'active',"
        "  g %% 50 = 11, DATE '2025-01-01', now()"
        " FROM generate_series(1, %s::bigint) g",
        [n],
    )
    _exec(
        "INSERT INTO metering_meter (serial, make, model, meter_type, phase, multiplying_factor, register_digits,"
        " ownership, seals, status, relay_connected, supply_hours, created_at)"
        " SELECT 'BM' || g, 'Genus', '', CASE WHEN g %% 10 = 0 THEN 'smart' ELSE 'static' END, 1, 1, 6, 'utility',"
        " '[]', 'installed', true, '[]', now() FROM generate_series(1, %s::bigint) g",
        [n],
    )
    _exec(
        "INSERT INTO metering_installation (meter_id, account_id, installed_at, initial_kwh, initial_tod, final_tod,"
        " location, reason, removal_reason)"
        " SELECT g, g, TIMESTAMPTZ '2025-01-01 12:00+05:30', 1000, '{}', '{}', '', 'new connection', ''"
        " FROM generate_series(1, %s::bigint) g",
        [n],
    )
    for day, kwh in (("2025-05-31", "1000 + (g %% 997)"), ("2025-06-30", "1000 + (g %% 997) + (g * 7919) %% 600")):
        _exec(
            "INSERT INTO metering_reading (meter_id, account_id, installation_id, read_at, source, status, kwh, photo,"
            " vee_status, estimation_method, review_reason, created_at)"
            f" SELECT g, g, g, TIMESTAMPTZ '{day} 12:00+05:30', 'amr', 'actual', {kwh}, '', 'passed', '', '', now()"
            " FROM generate_series(1, %s::bigint) g",
            [n],
        )
    with connection.cursor() as c:
        c.execute("ANALYZE customers_account; ANALYZE metering_reading; ANALYZE metering_installation")
    return sections


def _worker(run_id: int) -> None:
    import django
    from django.db import connections

    connections.close_all()
    django.setup()
    from urja.billing import services
    from urja.billing.models import BillRun

    t = time.perf_counter()
    services.start_run(run=BillRun.objects.get(pk=run_id))
    connections.close_all()
    from urja.billing.runs import TIMING

    if os.environ.get("BILLRUN_TIMING"):
        print(
            {k: round(v, 2) for k, v in TIMING.items()}, "worker total", round(time.perf_counter() - t, 2), flush=True
        )


def raw_copy_seconds() -> float:
    """COPY the bill and ledger rows the run wrote into empty clone tables (same indexes)."""
    import psycopg
    from django.db import connection

    dsn = connection.get_connection_params()
    seconds = 0.0
    for table in ("billing_bill", "billing_ledgerentry"):
        clone = f"bench_copy_{table}"
        with psycopg.connect(**dsn, autocommit=True) as src, psycopg.connect(**dsn, autocommit=True) as dst:
            dst.execute(f"DROP TABLE IF EXISTS {clone}")
            dst.execute(f"CREATE TABLE {clone} (LIKE {table} INCLUDING ALL)")
            cols = [r[0] for r in src.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = %s AND column_name <> 'id' "
                "ORDER BY ordinal_position", [table]
            )]  # fmt: skip
            collist = ", ".join(cols)
            start = time.perf_counter()
            with (
                src.cursor().copy(f"COPY (SELECT {collist} FROM {table}) TO STDOUT") as out,
                dst.cursor().copy(f"COPY {clone} ({collist}) FROM STDIN") as into,
            ):
                for data in out:
                    into.write(data)
            seconds += time.perf_counter() - start
            dst.execute(f"DROP TABLE {clone}")
    return seconds


def run(n: int) -> dict:
    from django.db import connections

    from urja.billing import services
    from urja.billing.models import Bill, BillRun, LedgerEntry

    t0 = time.perf_counter()
    setup(n)
    setup_seconds = time.perf_counter() - t0
    result: dict = {"n": n}
    with timer(result):
        run_obj = services.create_run(cycle="C01", period=PERIOD, bill_date=date(2025, 7, 2))
        connections.close_all()
        ctx = multiprocessing.get_context("fork")
        procs = [ctx.Process(target=_worker, args=(run_obj.pk,)) for _ in range(WORKERS)]
        for p in procs:
            p.start()
        for p in procs:
            p.join()
        run_obj = BillRun.objects.get(pk=run_obj.pk)
    bills = Bill.objects.filter(run=run_obj).count()
    if run_obj.status != "completed" or bills != n:
        raise RuntimeError(f"bill run did not complete: {run_obj.status}, {bills} of {n} accounts billed")
    copy_seconds = raw_copy_seconds()
    result.update(
        {
            "bills_and_statements": bills,
            "ledger_entries": LedgerEntry.objects.count(),
            "exceptions": run_obj.exceptions,
            "status": run_obj.status,
            "bills_per_s": round(bills / result["seconds"], 1),
            "raw_copy_seconds": round(copy_seconds, 3),
            "ratio_to_copy": round(result["seconds"] / copy_seconds, 2) if copy_seconds else None,
            "workers": WORKERS,
            "workers_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1),
            "setup_seconds": round(setup_seconds, 1),
            "total_billed": run_obj.totals.get("total"),
        }
    )
    return result
