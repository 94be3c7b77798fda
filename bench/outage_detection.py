"""Outage detection at scale (issue 14): N smart meters (default 100,000) on N/100 DTs of N/1000 feeders,
one consumer each with a verified mobile; N/2 last-gasp events arrive within one minute — every meter of
half the DTs (5 of the 10 DTs of every feeder → one outage per feeder).

Setup (not timed): rows created set-based on the server; the SoP catalogue loaded.
Timed: one `reports.outages.run_detector()` pass — events read, DTs and feeders found, outages declared
through the service desk, every affected consumer's `outage.detected` SMS queued in the outbox.
Baseline in the same run: one hand-written statement over the same rows (the failing meters' feeders from
the events, and the very outbox rows queued for their accounts copied into a logged copy of the outbox
with its indexes), committed — printed as `ratio_to_raw_query`. Then the same events are replayed (the cursor
reset): nothing is declared and nobody is told twice (asserted).
Target: ≤ 10 s at 50,000 events from 100,000 meters.
"""

import time
from datetime import timedelta

from common import timer
from energy_accounting import _exec, _insert_select

NAME = "outage_detection"
DEFAULT_N = 100_000


def setup(n: int) -> None:
    from django.db import connection
    from django.utils import timezone

    from urja.customers.models import Account, Consumer, Contact
    from urja.metering.models import Installation, Meter, SmartMeterEvent
    from urja.network.models import DistributionTransformer, Feeder, Office
    from urja.network.services import create_office
    from urja.servicedesk import catalogue

    dts, feeders = max(n // 100, 1), max(n // 1000, 1)
    _exec(
        "TRUNCATE reports_detectedoutage, reports_outageaward, reports_eventcursor, servicedesk_outage,"
        " notifications_outboxmessage, metering_smartmeterevent, metering_reading, metering_installation,"
        " metering_boundaryreading, metering_boundaryinstallation, metering_meter, customers_contact,"
        " customers_account, customers_consumer, network_distributiontransformer, network_feeder"
        " RESTART IDENTITY CASCADE"
    )
    catalogue.load_file("servicedesk/oerc_sop.toml")
    root = Office.objects.filter(code="ODU").first() or create_office(code="ODU", name="Bench utility", level="utility")
    sec = Office.objects.filter(code="ODX").first() or create_office(
        code="ODX", name="Bench section", level="section", parent=root
    )
    _insert_select(Feeder, f"generate_series(1, {feeders}::bigint) g",
                   {"id": "g", "code": "'F' || g", "name": "'Feeder ' || g", "office_id": str(sec.pk),
                    "voltage_kv": "11"})  # fmt: skip
    _insert_select(DistributionTransformer, f"generate_series(1, {dts}::bigint) g",
                   {"id": "g", "code": "'DT' || g", "feeder_id": "1 + (g - 1) / 10", "capacity_kva": "100"})  # fmt: skip
    _insert_select(Consumer, f"generate_series(1, {n}::bigint) g",
                   {"id": "g", "name": "'Consumer ' || g", "kind": "'person'",
                    "preferred_language": "(ARRAY['en','hi','or'])[1 + g % 3]"})  # fmt: skip
    _insert_select(Contact, f"generate_series(1, {n}::bigint) g",
                   {"consumer_id": "g", "kind": "'mobile'", "value": "'+9194' || lpad(g::text, 8, '0')",
                    "is_primary": "true", "verified": "true"})  # fmt: skip
    dt_of = "(1 + (g - 1) / 100)"
    _insert_select(
        Account,
        f"generate_series(1, {n}::bigint) g",
        {
            "id": "g", "consumer_number": "'OD' || lpad(g::text, 10, '0')", "consumer_id": "g",
            "premises_address": "'House ' || g", "category": "'domestic'", "sub_category": "'general'",
            "supply_type": "'lt_1ph'", "sanctioned_load": "2", "load_unit": "'kW'", "area": "'urban'",
            "section_id": str(sec.pk), "office_path": f"'{sec.path}'", "transformer_id": dt_of,
            "feeder_id": f"1 + ({dt_of} - 1) / 10", "bill_cycle": "'C01'", "status": "'active'",
        },
    )  # fmt: skip
    _insert_select(Meter, f"generate_series(1, {n}::bigint) g",
                   {"id": "g", "serial": "'SM' || g", "make": "'Genus'", "meter_type": "'smart'", "phase": "1",
                    "multiplying_factor": "1", "register_digits": "6", "ownership": "'utility'",
                    "status": "'installed'", "relay_connected": "true", "seals": "'[]'", "supply_hours": "'[]'"})  # fmt: skip
    _insert_select(Installation, f"generate_series(1, {n}::bigint) g",
                   {"meter_id": "g", "account_id": "g", "installed_at": "TIMESTAMPTZ '2026-01-01 00:00+05:30'",
                    "initial_kwh": "0", "initial_tod": "'{}'", "final_tod": "'{}'"})  # fmt: skip
    # every meter of DTs 1–5 of each feeder's ten (dt % 10 in 1..5): n / 2 last gasps within the last minute
    start = timezone.now() - timedelta(seconds=60)
    _insert_select(
        SmartMeterEvent,
        f"generate_series(1, {n}::bigint) g WHERE (({dt_of} - 1) % 10) < 5",
        {"meter_id": "g", "at": f"TIMESTAMPTZ '{start.isoformat()}' + (g % 60) * INTERVAL '1 second'",
         "kind": "'power_fail'", "details": "'{}'", "received_at": "now()"},
    )  # fmt: skip
    with connection.cursor() as c:
        for table in ("customers_account", "metering_installation", "metering_smartmeterevent", "customers_contact"):
            c.execute(f"ANALYZE {table}")


def raw_query_seconds() -> tuple[float, int]:
    """The same rows by one hand-written statement, committed: the failing meters' feeders found from the
    events (events → installations → accounts), and the very outbox rows the detector queued for the
    accounts on them (same keys, texts, sizes) written into a copy of the outbox with the same indexes (a
    logged table, as the real one). The floor the detector is measured against: (seconds, rows)."""
    from django.db import connection, transaction

    from urja.notifications.models import OutboxMessage

    q = connection.ops.quote_name
    columns = ", ".join(q(f.column) for f in OutboxMessage._meta.concrete_fields if not f.primary_key)
    with connection.cursor() as c:
        c.execute("DROP TABLE IF EXISTS bench_outbox")
        c.execute("CREATE TABLE bench_outbox (LIKE notifications_outboxmessage INCLUDING ALL)")
    start = time.perf_counter()
    with transaction.atomic(), connection.cursor() as c:
        c.execute("SET LOCAL jit = off")
        c.execute(
            f"INSERT INTO bench_outbox ({columns}) SELECT {columns} FROM notifications_outboxmessage"
            " WHERE event = 'outage.detected' AND account_id IN (SELECT a.id FROM customers_account a"
            " WHERE a.feeder_id IN (SELECT DISTINCT f.feeder_id FROM metering_smartmeterevent e"
            " JOIN metering_installation i ON i.meter_id = e.meter_id AND i.removed_at IS NULL"
            " JOIN customers_account f ON f.id = i.account_id WHERE e.kind = 'power_fail'))"
        )
        rows = c.rowcount
    seconds = time.perf_counter() - start
    with connection.cursor() as c:
        c.execute("DROP TABLE bench_outbox")
    return seconds, rows


def run(n: int) -> dict:
    from urja.metering.models import SmartMeterEvent
    from urja.notifications.models import OutboxMessage
    from urja.reports import outages
    from urja.reports.models import EventCursor
    from urja.servicedesk.models import Outage, OutageAccount

    t0 = time.perf_counter()
    setup(n)
    setup_seconds = time.perf_counter() - t0
    events = SmartMeterEvent.objects.count()
    result: dict = {"n": events}
    with timer(result):
        detected = outages.run_detector()
    queued = OutboxMessage.objects.filter(event="outage.detected").count()
    replay = {}
    with timer(replay):  # the same events again: nothing declared, nobody told twice
        EventCursor.objects.filter(name=outages.CURSOR).update(last_event_id=0)
        again = outages.run_detector()
    assert again["declared"] == [] and OutboxMessage.objects.filter(event="outage.detected").count() == queued
    raw, raw_rows = raw_query_seconds()
    result.update(
        {
            "meters": n,
            "events": events,
            "outages_declared": len(detected["declared"]),
            "feeder_outages": Outage.objects.filter(transformer__isnull=True).count(),
            "notifications_queued": queued,
            # each outage's affected accounts, stored by one INSERT … SELECT with each meter's last gasp
            "accounts_stored": OutageAccount.objects.count(),
            "raw_query_seconds": round(raw, 3),
            "raw_query_rows": raw_rows,
            "ratio_to_raw_query": round(result["seconds"] / raw, 2) if raw else None,
            "replay_seconds": round(replay["seconds"], 3),
            "setup_seconds": round(setup_seconds, 1),
            "target_seconds": 10,
        }
    )
    return result
