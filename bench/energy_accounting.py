"""Energy accounting of one month at DISCOM scale (issue 14): N accounts (default 2,000,000) on 20,000
DTs of 500 feeders in 4 divisions, a bill and (for 9 in 10) a payment each, a boundary meter on every DT
and feeder with readings around the month (1 DT in 100 without its closing reading: estimated/missing).

Setup (not timed): rows created set-based on the server (INSERT … SELECT generate_series).
Timed: `reports.services.compute_period` — atoms, boundary inputs, roll-up, replace the period's rows.
Baseline, in the same run: a raw `GROUP BY` of the same bill and payment rows by (DT, feeder, section,
category) — the least any accounting must read; `ratio_to_group_by` = compute seconds / raw seconds.
Scale the network with N (DTs = N / 100, feeders = DTs / 40) so `make bench B=energy_accounting N=…`
stays a like-for-like test. Target: ≤ 30 s at 2,000,000 on PostgreSQL.
"""

import time

from common import timer

NAME = "energy_accounting"
DEFAULT_N = 2_000_000
PERIOD = "2026-10"


def _exec(sql: str, params=None) -> None:
    from django.db import connection

    with connection.cursor() as c:
        c.execute(sql, params)


def _insert_select(model, n_sql: str, values: dict[str, str]) -> None:
    """INSERT INTO model's table every concrete column: `values` for those given, else a neutral value
    by type (0, '', false, '{}', NULL when nullable) — so a new NOT NULL column does not break the bench."""
    from django.db import models

    cols, exprs = [], []
    for field in model._meta.concrete_fields:
        if field.primary_key and field.column not in values:
            continue
        cols.append(field.column)
        if field.column in values:
            exprs.append(values[field.column])
        elif field.null:
            exprs.append("NULL")
        elif isinstance(field, models.BooleanField):
            exprs.append("false")
        elif isinstance(field, models.JSONField):
            exprs.append("'{}'")
        elif isinstance(field, models.DateTimeField):
            exprs.append("now()")
        elif isinstance(field, models.DateField):
            exprs.append("current_date")
        elif isinstance(field, models.CharField | models.TextField | models.FileField):
            exprs.append("''")
        else:
            exprs.append("0")
    _exec(f"INSERT INTO {model._meta.db_table} ({', '.join(cols)}) SELECT {', '.join(exprs)} FROM {n_sql}")


def setup(n: int) -> None:
    from django.db import connection

    from urja.billing.models import Bill
    from urja.customers.models import Account, Consumer
    from urja.metering.models import BoundaryInstallation, BoundaryReading, Meter
    from urja.network.models import DistributionTransformer, Feeder, Office
    from urja.network.services import create_office
    from urja.payments.models import Payment

    dts, feeders = max(n // 100, 1), max(n // 4000, 1)
    _exec(
        "TRUNCATE reports_energybalance, reports_accountingrun, metering_boundaryreading,"
        " metering_boundaryinstallation, billing_bill, billing_billrun, billing_ledgerentry, payments_payment,"
        " metering_reading, metering_installation, metering_meter, customers_contact, customers_account,"
        " customers_consumer, network_distributiontransformer, network_feeder RESTART IDENTITY CASCADE"
    )
    root = Office.objects.filter(code="EAU").first() or create_office(code="EAU", name="Bench utility", level="utility")
    sections = []
    for i in range(4):
        div = Office.objects.filter(code=f"EAD{i}").first() or create_office(
            code=f"EAD{i}", name=f"Bench division {i}", level="division", parent=root
        )
        sub = Office.objects.filter(code=f"EAS{i}").first() or create_office(
            code=f"EAS{i}", name=f"Bench sub-division {i}", level="subdivision", parent=div
        )
        sec = Office.objects.filter(code=f"EAX{i}").first() or create_office(
            code=f"EAX{i}", name=f"Bench section {i}", level="section", parent=sub
        )
        sections.append(sec)
    ids = "ARRAY[" + ",".join(str(s.pk) for s in sections) + "]"
    paths = "ARRAY[" + ",".join(f"'{s.path}'" for s in sections) + "]"
    # feeder f in section (f % 4); DT d on feeder 1 + (d - 1) % feeders; account g on DT 1 + (g - 1) % dts
    _insert_select(Feeder, f"generate_series(1, {feeders}) g",
                   {"id": "g", "code": "'F' || g", "name": "'Feeder ' || g", "office_id": f"({ids})[1 + g % 4]",
                    "voltage_kv": "11"})  # fmt: skip
    _insert_select(DistributionTransformer, f"generate_series(1, {dts}::bigint) g",
                   {"id": "g", "code": "'DT' || g", "feeder_id": f"1 + (g - 1) % {feeders}", "capacity_kva": "100"})  # fmt: skip
    _insert_select(Consumer, f"generate_series(1, {n}::bigint) g", {"id": "g", "name": "'Consumer ' || g", "kind": "'person'",
                   "preferred_language": "'en'"})  # fmt: skip
    dt_of = f"(1 + (g - 1) % {dts})"
    feeder_of = f"(1 + ({dt_of} - 1) % {feeders})"
    _insert_select(
        Account,
        f"generate_series(1, {n}::bigint) g",
        {
            "id": "g",
            "consumer_number": "'EA' || lpad(g::text, 10, '0')",
            "consumer_id": "g",
            "premises_address": "'House ' || g",
            "category": "CASE WHEN g % 20 = 7 THEN 'irrigation' WHEN g % 20 = 9 THEN 'general_purpose' ELSE 'domestic' END",
            "sub_category": "'general'",
            "supply_type": "'lt_1ph'",
            "sanctioned_load": "1 + (g % 5)",
            "load_unit": "'kW'",
            "area": "'urban'",
            "section_id": f"({ids})[1 + {feeder_of} % 4]",
            "office_path": f"({paths})[1 + {feeder_of} % 4]",
            "feeder_id": feeder_of,
            "transformer_id": dt_of,
            "bill_cycle": "'C01'",
            "status": "'active'",
            "is_prepaid": "g % 50 = 11",
        },
    )
    _insert_select(
        Bill,
        f"generate_series(1, {n}::bigint) g",
        {
            "account_id": "g",
            "kind": "CASE WHEN g % 50 = 11 THEN 'statement' ELSE 'bill' END",
            "bill_number": "'EB' || g",
            "period_start": "DATE '2026-10-01'",
            "period_end": "DATE '2026-10-31'",
            "bill_date": "DATE '2026-11-02'",
            "tariff_versions": "'1'",
            "units": "CASE WHEN g % 100 = 5 THEN 0 ELSE 50 + (g * 7919) % 250 END",
            "units_status": "CASE WHEN g % 100 = 5 THEN 'unmetered' WHEN g % 10 = 3 THEN 'estimated' ELSE 'actual' END",
            "metered": "g % 100 <> 5",
            "prepaid": "g % 50 = 11",
            "sanctioned_load": "1 + (g % 5)",
            "load_unit": "'kW'",
            "area": "'urban'",
            "meter_type": "'static'",
            "total": "(50 + (g * 7919) % 250) * 6.5",
            "net_payable": "(50 + (g * 7919) % 250) * 6.5",
            "language": "'en'",
        },
    )
    _insert_select(
        Payment,
        f"generate_series(1, {n}::bigint) g WHERE g % 10 <> 0",
        {
            "channel": "'counter'",
            "method": "'cash'",
            "idempotency_key": "'EP' || g",
            "account_id": "g",
            "consumer_number": "'EA' || lpad(g::text, 10, '0')",
            "amount": "(50 + (g * 7919) % 250) * 6.5 * CASE WHEN g % 7 = 0 THEN 0.5 ELSE 1 END",
            "status": "'posted'",
            "received_at": "TIMESTAMPTZ '2026-10-05 12:00+05:30' + (g % 20) * INTERVAL '1 day'",
        },
    )
    meters = dts + feeders
    _insert_select(Meter, f"generate_series(1, {meters}) g",
                   {"id": "g", "serial": "'EM' || g", "make": "'Secure'", "meter_type": "'static'", "phase": "3",
                    "multiplying_factor": "1", "register_digits": "8", "ownership": "'utility'", "status": "'installed'",
                    "relay_connected": "true", "seals": "'[]'", "supply_hours": "'[]'"})  # fmt: skip
    _insert_select(
        BoundaryInstallation,
        f"generate_series(1, {meters}) g",
        {
            "id": "g",
            "meter_id": "g",
            "transformer_id": f"CASE WHEN g <= {dts} THEN g END",
            "feeder_id": f"CASE WHEN g > {dts} THEN g - {dts} END",
            "installed_at": "TIMESTAMPTZ '2026-01-01 00:00+05:30'",
            "initial_kwh": "0",
        },
    )
    # DT input ≈ its billed energy / (1 − loss), loss 10–40 %; feeders 5 % above the sum of their DTs
    per_dt_kwh = f"({n} / {dts}) * 175"
    for when, expr, where in (
        ("2026-09-30 23:00", "100000", ""),
        ("2026-10-31 23:00", f"100000 + {per_dt_kwh} / (0.9 - (g % 31) * 0.01)", "AND g % 100 <> 42"),
    ):
        _insert_select(
            BoundaryReading,
            f"generate_series(1, {dts}::bigint) g WHERE true {where}",
            {"meter_id": "g", "installation_id": "g", "read_at": f"TIMESTAMPTZ '{when}+05:30'", "source": "'amr'",
             "kwh": expr},
        )  # fmt: skip
    per_feeder = f"{per_dt_kwh} * {dts} / {feeders} * 1.05 / 0.75"
    for when, expr in (("2026-09-30 23:00", "1000000"), ("2026-10-31 23:00", f"1000000 + {per_feeder}")):
        _insert_select(
            BoundaryReading,
            f"generate_series({dts + 1}, {meters}) g",
            {"meter_id": "g", "installation_id": "g", "read_at": f"TIMESTAMPTZ '{when}+05:30'", "source": "'amr'",
             "kwh": expr},
        )  # fmt: skip
    with connection.cursor() as c:
        for table in ("customers_account", "billing_bill", "payments_payment", "metering_boundaryreading"):
            c.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")
            c.execute(f"ANALYZE {table}")


def raw_group_by_seconds() -> float:
    from django.db import connection

    start = time.perf_counter()
    with connection.cursor() as c:
        c.execute(
            "SELECT a.transformer_id, a.feeder_id, a.section_id, a.category, sum(b.units), sum(b.total), count(*)"
            " FROM billing_bill b JOIN customers_account a ON a.id = b.account_id"
            " WHERE b.period_end BETWEEN DATE '2026-10-01' AND DATE '2026-10-31' GROUP BY 1, 2, 3, 4"
        )
        c.fetchall()
        c.execute(
            "SELECT a.transformer_id, a.feeder_id, a.section_id, a.category, sum(p.amount)"
            " FROM payments_payment p JOIN customers_account a ON a.id = p.account_id"
            " WHERE p.status = 'posted' AND p.received_at >= TIMESTAMPTZ '2026-10-01 00:00+05:30'"
            " AND p.received_at < TIMESTAMPTZ '2026-11-01 00:00+05:30' GROUP BY 1, 2, 3, 4"
        )
        c.fetchall()
    return time.perf_counter() - start


def run(n: int) -> dict:
    from urja.reports import services
    from urja.reports.models import EnergyBalance

    t0 = time.perf_counter()
    setup(n)
    setup_seconds = time.perf_counter() - t0
    raw_group_by_seconds()  # warm the cache for both (the same rows are read by each)
    result: dict = {"n": n}
    with timer(result):
        run_obj = services.compute_period(period=PERIOD)
    raw = raw_group_by_seconds()
    utility = EnergyBalance.objects.get(period=PERIOD, level="utility", category="")
    result.update(
        {
            "dts": n // 100,
            "feeders": max(n // 4000, 1),
            "rows_stored": run_obj.rows,
            "flagged_nodes": run_obj.flagged,
            "raw_group_by_seconds": round(raw, 3),
            "ratio_to_group_by": round(result["seconds"] / raw, 2) if raw else None,
            "utility_atc_loss": str(utility.atc_loss),
            "utility_billing_efficiency": str(utility.billing_efficiency),
            "utility_collection_efficiency": str(utility.collection_efficiency),
            "setup_seconds": round(setup_seconds, 1),
            "target_seconds": 30,
        }
    )
    return result
