"""Bill runs: set-based, chunked, partitioned by cycle × division, resumable.

    run = create_run(cycle="C01", period="2025-05")      # validates tariffs before writing anything
    process_run(run=run)                                  # or one Celery task per partition

A partition (cycle × division) is claimed by one worker (conditional update + heartbeat) and
processed in chunks of accounts in id order. Each chunk is one transaction: bills, ledger entries,
exceptions and the partition's cursor (last account id done) commit together, so a run killed at
any point resumes from the cursor with no duplicate and no missing bill; the unique constraint
(account, period, kind) guards it too. On PostgreSQL rows are written with COPY.

Readings are read in bulk (one query per chunk on the readings table); the accounts the fast path
cannot settle exactly (no reading, estimates to reconcile, meter change, rollover, time-of-day
registers, readings waiting for VEE) go through metering.services.billing_consumption one by one.
"""

from __future__ import annotations

import io
import logging
import os
import socket
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

import numpy as np
from django.db import connection, transaction
from django.db.models import BigIntegerField, F, Max, Q, Sum
from django.db.models.functions import Cast
from django.utils import timezone

from urja.core import regdata
from urja.core.errors import DomainError
from urja.core.services import allocate_numbers, record_audit
from urja.tariffs import engine, vector
from urja.tariffs import services as tariffs

from .models import (
    Bill,
    BillException,
    BillRun,
    BillRunPartition,
    EntryType,
    InstalmentPlan,
    LedgerEntry,
    PartitionStatus,
    RunStatus,
)

log = logging.getLogger(__name__)
IST = timezone.get_fixed_timezone(330)
GROUP_FIELDS = {
    "energy": "energy",
    "tod": "tod",
    "fixed": "fixed",
    "monthly": "monthly",
    "minimum": "minimum",
    "rider": "riders",
    "subsidy": "subsidy",
    "rebate": "rebate",
    "dps": "dps",
    "extra": "extra",
    "rounding": "rounding",
}


def config() -> dict:
    return regdata.load("billing/billing.toml")


def day_start(d: date) -> datetime:
    return datetime.combine(d, time(0), IST)


# ---------------------------------------------------------------------------------------
# Accounts due


ACCOUNT_FIELDS = (
    "id",
    "consumer_id",
    "category",
    "sub_category",
    "area",
    "supply_type",
    "sanctioned_load",
    "load_unit",
    "is_prepaid",
    "package_code",
    "consumer__preferred_language",
)


def due_accounts(run: BillRun, division_path: str | None = None):
    from urja.customers.models import Account

    qs = Account.objects.filter(bill_cycle=run.cycle.code, status__in=config()["bill"]["billable_statuses"])
    qs = qs.filter(Q(connected_on__isnull=True) | Q(connected_on__lte=run.period_end))
    if run.cycle.routes:
        qs = qs.filter(route__in=run.cycle.routes)
    if division_path is not None:
        qs = qs.filter(office_path__startswith=division_path)
    return qs


def tariff_key(row) -> tuple:
    return (row["category"], row["sub_category"], row["area"], row["supply_type"], row["package_code"] or "")


class SegmentCache:
    """Tariff segments per (category, sub-category, area, supply type, package) for one run."""

    def __init__(self, run: BillRun):
        self.start, self.end = run.period_start, run.period_end
        self.candidates = list(tariffs.versions_in_force(self.start, self.end))
        self.cache: dict[tuple, list[engine.Segment] | DomainError] = {}

    def get(self, key: tuple):
        if key not in self.cache:
            category, sub, area, supply, package = key
            versions = tariffs.matching_versions(
                category=category,
                sub_category=sub,
                area=area,
                supply_type=supply,
                package_code=package,
                start=self.start,
                end=self.end,
                candidates=self.candidates,
            )
            try:
                self.cache[key] = tariffs.segments(
                    versions=versions, start=self.start, end=self.end, what="/".join(key)
                )
            except DomainError as exc:
                self.cache[key] = exc
        return self.cache[key]


def check_tariffs(run: BillRun) -> list[dict]:
    """Every tariff combination of the cycle's accounts, and the days no tariff covers."""
    cache = SegmentCache(run)
    missing = []
    combos = (
        due_accounts(run)
        .values("category", "sub_category", "area", "supply_type", "package_code")
        .distinct()
        .order_by()
    )
    for row in combos:
        result = cache.get(tariff_key(row))
        if isinstance(result, DomainError):
            missing.append({"tariff": "/".join(k for k in tariff_key(row) if k), **result.details})
    return missing


# ---------------------------------------------------------------------------------------
# Consumption in bulk


@dataclass
class Usage:
    units_m: int = 0  # milli-kWh
    status: str = "actual"
    opening_m: int | None = None
    closing_m: int | None = None
    md_m: int = -1
    tod: dict = field(default_factory=dict)
    metered: bool = True
    meter_type: str = "static"
    consumer_meter: bool = False
    exception: tuple[str, str, dict] | None = None  # (kind, message, details)


def bulk_usage(run: BillRun, rows: list[dict], *, dry_run: bool) -> dict[int, Usage]:
    """Units for every account of a chunk: one query for readings, one for installations."""
    from urja.metering.models import REGISTER_STATUSES, USABLE_VEE, Installation, MeterType, Ownership, Reading

    ids = [r["id"] for r in rows]
    lo, hi = ids[0], ids[-1]
    start, end = day_start(run.period_start), day_start(run.period_end + timedelta(days=1))
    lookback = start - timedelta(days=93)
    installs: dict[int, list] = defaultdict(list)
    for inst in (
        Installation.objects.filter(account_id__gte=lo, account_id__lte=hi, installed_at__lt=end)
        .filter(Q(removed_at__isnull=True) | Q(removed_at__gte=lookback))
        .values_list(
            "account_id", "id", "removed_at", "meter__meter_type", "meter__ownership", "meter__multiplying_factor"
        )
    ):
        installs[inst[0]].append(inst)
    readings: dict[int, list] = defaultdict(list)
    usable_vee, register_statuses = set(USABLE_VEE), set(REGISTER_STATUSES)
    for r in (
        Reading.objects.filter(account_id__gte=lo, account_id__lte=hi, read_at__gte=lookback, read_at__lt=end)
        .annotate(kwh_m=Cast(F("kwh") * 1000, BigIntegerField()), md_m=Cast(F("md_kw") * 1000, BigIntegerField()))
        .order_by("account_id", "read_at", "id")
        .values_list("account_id", "read_at", "kwh_m", "md_m", "status", "vee_status", "installation_id", "tod")
    ):
        readings[r[0]].append(r)
    any_install = (
        set(
            Installation.objects.filter(account_id__gte=lo, account_id__lte=hi)
            .values_list("account_id", flat=True)
            .distinct()
        )
        if len(installs) < len(ids)
        else set(installs)
    )
    smart = {MeterType.SMART, MeterType.SMART_PREPAID}
    result: dict[int, Usage] = {}
    slow: list[int] = []
    for acc in ids:
        inst = installs.get(acc)
        if not inst:
            if acc not in any_install:
                result[acc] = Usage(metered=False, status="unmetered")
            else:
                result[acc] = Usage(exception=("no_reading", "no meter installed in the period", {}))
            continue
        current = inst[-1]
        if current[3] == MeterType.LOAD_LIMITER:
            result[acc] = Usage(metered=False, status="unmetered", meter_type="static")
            continue
        usage = Usage(
            meter_type="smart" if current[3] in smart else "static",
            consumer_meter=current[4] != Ownership.UTILITY,
        )
        rs = readings.get(acc, [])
        opening = closing = None
        blocked = False
        md = -1
        for r in rs:
            usable = r[5] in usable_vee and r[4] in register_statuses and r[2] is not None
            if r[1] < start:
                if usable:
                    opening = r
            else:
                if not usable:
                    blocked = True  # pending or under review: the slow path validates / reports it
                elif r[3] is not None:
                    md = max(md, r[3])
                if usable:
                    closing = r
        mf = current[5]
        simple = (
            opening is not None
            and closing is not None
            and not blocked
            and len(inst) == 1
            and opening[6] == closing[6]
            and opening[4] == "actual"
            and closing[2] >= opening[2]
            and not closing[7]
        )
        if not simple:
            slow.append(acc)
            result[acc] = usage
            continue
        delta = closing[2] - opening[2]
        if mf != 1:
            delta = int((Decimal(delta) * mf).to_integral_value())
            md = int((Decimal(md) * mf).to_integral_value()) if md >= 0 else md
        usage.units_m, usage.opening_m, usage.closing_m, usage.md_m = delta, opening[2], closing[2], md
        usage.status = (
            "actual" if closing[4] == "actual" else ("provisional" if closing[4] == "provisional" else "estimated")
        )
        result[acc] = usage
    if slow:
        _slow_path(run, slow, result, dry_run=dry_run)
    return result


def _slow_path(run: BillRun, ids: list[int], result: dict[int, Usage], *, dry_run: bool) -> None:
    from urja.customers.models import Account
    from urja.metering import services as metering

    for account in Account.objects.filter(pk__in=ids).select_related("consumer"):
        usage = result[account.pk]
        try:
            c = metering.billing_consumption(
                account=account,
                period_start=run.period_start - timedelta(days=1),
                period_end=run.period_end,
                estimate_missing=not dry_run,
            )
        except DomainError as exc:
            kind = {"no_reading": "no_reading", "no_meter": "no_reading"}.get(exc.code, "meter_error")
            usage.exception = (kind, exc.message[:240], {"code": exc.code})
            continue
        if c.held:
            usage.exception = (
                "vee_failed",
                "a reading of the period waits for VEE review",
                {"exceptions": c.exceptions},
            )
            continue
        md = c.md_kva if account.load_unit == "kVA" else c.md_kw
        usage.units_m = int(c.kwh * 1000)
        usage.status = c.status
        usage.md_m = int(md * 1000) if md is not None else -1
        usage.tod = {k: int(v * 1000) for k, v in c.tod.items()}
        usage.opening_m = int(c.opening["kwh"] * 1000) if c.opening and c.opening.get("kwh") is not None else None
        usage.closing_m = int(c.closing["kwh"] * 1000) if c.closing and c.closing.get("kwh") is not None else None
        usage.consumer_meter = not c.meter_rent_applies


# ---------------------------------------------------------------------------------------
# One chunk


@dataclass
class ChunkResult:
    bills: list[tuple] = field(default_factory=list)
    ledger: list[tuple] = field(default_factory=list)
    exceptions: list[tuple] = field(default_factory=list)  # (account_id, kind, message, details)
    totals: dict[str, int] = field(default_factory=lambda: defaultdict(int))  # paise
    statements: int = 0
    plans: list[int] = field(default_factory=list)


BILL_COLUMNS = [
    "account_id", "run_id", "kind", "bill_number", "period_start", "period_end", "bill_date", "due_date",
    "tariff_versions", "units", "units_status", "opening_kwh", "closing_kwh", "recorded_md", "tod_units",
    "sanctioned_load", "load_unit", "area", "metered", "meter_type", "consumer_meter", "e_bill", "prepaid",
    "overdue_principal", "overdue_days", "energy", "tod", "fixed", "monthly", "minimum", "riders", "subsidy",
    "rebate", "dps", "extra", "rounding", "total", "rebate_by_due_date", "rebate_digital", "arrears",
    "net_payable", "language", "created_at",
]  # fmt: skip
LEDGER_COLUMNS = [
    "account_id", "entry_type", "amount", "posted_at", "due_date", "description", "reference_type", "reference_id",
    "idempotency_key", "channel",
]  # fmt: skip


def _milli(v: int | None) -> str | None:
    return None if v is None else f"{v // 1000}.{v % 1000:03d}" if v >= 0 else "-" + _milli(-v)


def _rs(p: int) -> str:
    return f"{p // 100}.{p % 100:02d}" if p >= 0 else "-" + _rs(-p)


def compute_chunk(
    run: BillRun, rows: list[dict], segcache: SegmentCache, *, dry_run: bool
) -> tuple[ChunkResult, list[dict]]:
    """Compute bills for a chunk of accounts (no writes except estimated readings by metering)."""
    from urja.customers.models import Contact

    out = ChunkResult()
    ids = [r["id"] for r in rows]
    lo, hi = ids[0], ids[-1]
    usage = bulk_usage(run, rows, dry_run=dry_run)
    # arrears and overdue principal (DPS never on DPS)
    balances = {
        a: (t or Decimal(0), p or Decimal(0))
        for a, t, p in LedgerEntry.objects.filter(account_id__gte=lo, account_id__lte=hi)
        .values("account_id")
        .annotate(t=Sum("amount"), p=Sum("amount", filter=~Q(entry_type=EntryType.DPS)))
        .values_list("account_id", "t", "p")
    }
    last_due = dict(
        Bill.objects.filter(
            account_id__gte=lo, account_id__lte=hi, kind=Bill.Kind.BILL, period_start__lt=run.period_start
        )
        .values("account_id")
        .annotate(d=Max("due_date"))
        .values_list("account_id", "d")
    )
    consumers = [r["consumer_id"] for r in rows]
    e_bill = (
        set(
            Contact.objects.filter(consumer_id__in=consumers, verified=True)
            .filter(Q(kind="email") | Q(whatsapp_opt_in=True))
            .values_list("consumer_id", flat=True)
        )
        if len(consumers) <= 30000
        else set()
    )
    plans = defaultdict(list)
    for pid, acc, amount in InstalmentPlan.objects.filter(
        account_id__gte=lo, account_id__lte=hi, billed__lt=F("instalments")
    ).values_list("id", "account_id", "amount_per_bill"):
        plans[acc].append((pid, int(amount * 100)))

    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in rows:
        u = usage[r["id"]]
        if u.exception:
            out.exceptions.append((r["id"], *u.exception))
            continue
        segs = segcache.get(tariff_key(r))
        if isinstance(segs, DomainError):
            out.exceptions.append((r["id"], "missing_tariff", segs.message[:240], segs.details))
            continue
        groups[tariff_key(r)].append(r)

    bill_rows: list[dict] = []
    for key, members in groups.items():
        segs = segcache.get(key)
        n = len(members)
        us = [usage[m["id"]] for m in members]
        tod_codes = {c for s in segs for c in (w.code for w in s.schedule.tod)}
        overdue = np.zeros(n, dtype=np.int64)
        overdue_days = np.zeros(n, dtype=np.int64)
        for i, m in enumerate(members):
            due = last_due.get(m["id"])
            principal = balances.get(m["id"], (0, 0))[1]
            if due is not None and run.bill_date > due and principal > 0:
                overdue[i] = int(principal * 100)
                overdue_days[i] = (run.bill_date - due).days
        batch = vector.Batch(
            units=np.fromiter((u.units_m for u in us), dtype=np.int64, count=n),
            load=np.fromiter((int(m["sanctioned_load"] * 1000) for m in members), dtype=np.int64, count=n),
            load_kva=np.fromiter((m["load_unit"] == "kVA" for m in members), dtype=bool, count=n),
            md=np.fromiter((u.md_m for u in us), dtype=np.int64, count=n),
            tod={c: np.fromiter((u.tod.get(_zone(c), -1) for u in us), dtype=np.int64, count=n) for c in tod_codes},
            rural=np.fromiter((m["area"] == "rural" for m in members), dtype=bool, count=n),
            metered=np.fromiter((u.metered for u in us), dtype=bool, count=n),
            meter_type=np.fromiter((vector.METER_TYPES[u.meter_type] for u in us), dtype=np.int64, count=n),
            consumer_meter=np.fromiter((u.consumer_meter for u in us), dtype=bool, count=n),
            e_bill=np.fromiter((m["consumer_id"] in e_bill for m in members), dtype=bool, count=n),
            prepaid=np.fromiter((m["is_prepaid"] for m in members), dtype=bool, count=n),
            overdue=overdue,
            overdue_days=overdue_days,
            extra=np.fromiter((sum(a for _, a in plans.get(m["id"], ())) for m in members), dtype=np.int64, count=n),
        )
        res = vector.calculate(segs, batch)
        g = {name: res.groups[name].tolist() for name in GROUP_FIELDS}
        total = res.total.tolist()
        due_reb = res.conditional("by_due_date").tolist()
        dig_reb = res.conditional("digital").tolist()
        versions = ",".join(str(tariff_version_id(s)) for s in segs)
        for i, m in enumerate(members):
            bill_rows.append(
                {
                    "row": m,
                    "usage": us[i],
                    "groups": {name: g[name][i] for name in GROUP_FIELDS},
                    "total": total[i],
                    "due_reb": due_reb[i],
                    "dig_reb": dig_reb[i],
                    "versions": versions,
                    "e_bill": bool(batch.e_bill[i]),
                    "overdue": int(overdue[i]),
                    "overdue_days": int(overdue_days[i]),
                    "arrears": int(balances.get(m["id"], (0, 0))[0] * 100),
                }
            )
    bill_rows.sort(key=lambda b: b["row"]["id"])
    good = []
    for b in bill_rows:
        current = sum(b["groups"][k] for k in ("energy", "tod", "fixed", "monthly", "minimum", "rider"))
        if (b["total"] < 0 or current < 0) and not b["row"]["is_prepaid"]:
            out.exceptions.append(
                (
                    b["row"]["id"],
                    "negative_bill",
                    f"bill of Rs {_rs(b['total'])} is negative",
                    {"total": _rs(b["total"])},
                )
            )
            continue
        good.append(b)
        for k, v in b["groups"].items():
            out.totals[k] += v
        out.totals["total"] += b["total"]
        out.totals["units_m"] += b["usage"].units_m
    return out, good


def _zone(code: str) -> str:
    """TOD window code in the tariff (TOD_PEAK) → register zone name from metering (peak)."""
    return code.lower().removeprefix("tod_")


_version_ids: dict[tuple, int] = {}


def tariff_version_id(seg: engine.Segment) -> int:
    from urja.tariffs.models import TariffVersion

    key = (seg.schedule.order_code, seg.schedule.code)
    if key not in _version_ids:
        _version_ids[key] = TariffVersion.objects.get(order__code=key[0], schedule_code=key[1]).pk
    return _version_ids[key]


def write_chunk(run: BillRun, part: BillRunPartition, out: ChunkResult, good: list[dict]) -> None:
    """Numbers, bills, ledger entries (COPY on PostgreSQL), exceptions — inside the caller's transaction."""
    cfg = config()["bill"]
    now = timezone.now()
    bills = [b for b in good if not b["row"]["is_prepaid"]]
    statements = [b for b in good if b["row"]["is_prepaid"]]
    division = f"{part.division_id:03d}"
    numbers = (
        allocate_numbers(key=f"bill:{part.division_id}", template=cfg["number_template"], count=len(bills),
                         fields={"division": division}, today=run.bill_date)
        if bills else []
    )  # fmt: skip
    snumbers = (
        allocate_numbers(key=f"statement:{part.division_id}", template=cfg["statement_template"], count=len(statements),
                         fields={"division": division}, today=run.bill_date)
        if statements else []
    )  # fmt: skip
    bill_rows, ledger_rows = [], []
    for kind, items, nums in (("bill", bills, numbers), ("statement", statements, snumbers)):
        for b, number in zip(items, nums, strict=True):
            r, u, g = b["row"], b["usage"], b["groups"]
            acc = r["id"]
            arrears = b["arrears"]
            due = run.due_date if kind == "bill" else None
            bill_rows.append(
                (
                    acc, run.pk, kind, number, run.period_start, run.period_end, run.bill_date, due, b["versions"],
                    _milli(u.units_m), u.status, _milli(u.opening_m), _milli(u.closing_m),
                    _milli(u.md_m) if u.md_m >= 0 else None, None, str(r["sanctioned_load"]), r["load_unit"],
                    r["area"], u.metered, u.meter_type, u.consumer_meter, b["e_bill"], r["is_prepaid"],
                    _rs(b["overdue"]), b["overdue_days"], _rs(g["energy"]), _rs(g["tod"]), _rs(g["fixed"]),
                    _rs(g["monthly"]), _rs(g["minimum"]), _rs(g["rider"]), _rs(g["subsidy"]), _rs(g["rebate"]),
                    _rs(g["dps"]), _rs(g["extra"]), _rs(g["rounding"]), _rs(b["total"]), _rs(b["due_reb"]),
                    _rs(b["dig_reb"]), _rs(arrears), _rs(arrears + b["total"]),
                    r["consumer__preferred_language"] or "en", now,
                )
            )  # fmt: skip
            if kind != "bill":
                continue
            charge = sum(g[k] for k in ("energy", "tod", "fixed", "monthly", "minimum", "rider", "rounding"))
            for etype, amount, text in (
                (EntryType.BILL_CHARGE, charge, f"Bill {number} ({run.period})"),
                (EntryType.SUBSIDY, g["subsidy"], f"Subsidy on bill {number}"),
                (EntryType.REBATE, g["rebate"], f"Rebate on bill {number}"),
                (EntryType.DPS, g["dps"], f"Delayed payment surcharge on bill {number}"),
                (EntryType.INSTALMENT, g["extra"], f"Appliance instalment on bill {number}"),
            ):
                if amount:
                    ledger_rows.append(
                        (
                            acc,
                            etype,
                            _rs(amount),
                            now,
                            run.due_date,
                            text,
                            "bill",
                            number,
                            f"bill:{number}:{etype}",
                            "system",
                        )
                    )
    insert_rows(Bill._meta.db_table, BILL_COLUMNS, bill_rows)
    insert_rows(LedgerEntry._meta.db_table, LEDGER_COLUMNS, ledger_rows)
    if out.exceptions:
        BillException.objects.bulk_create(
            [BillException(run=run, account_id=a, kind=k, message=m, details=d) for a, k, m, d in out.exceptions],
            ignore_conflicts=True,
        )
    plan_accounts = [b["row"]["id"] for b in bills if b["groups"]["extra"]]
    if plan_accounts:
        InstalmentPlan.objects.filter(account_id__in=plan_accounts, billed__lt=F("instalments")).update(
            billed=F("billed") + 1
        )
    out.statements = len(statements)


def _copy_value(v) -> str:
    if v is None:
        return "\\N"
    if isinstance(v, bool):
        return "t" if v else "f"
    if isinstance(v, datetime):
        return v.isoformat()
    s = str(v)
    if "\\" in s or "\t" in s or "\n" in s:
        s = s.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")
    return s


def insert_rows(table: str, columns: list[str], rows: list[tuple]) -> None:
    if not rows:
        return
    if connection.vendor == "postgresql":
        buf = io.StringIO()
        for row in rows:
            buf.write("\t".join(map(_copy_value, row)))
            buf.write("\n")
        sql = f"COPY {table} ({', '.join(columns)}) FROM STDIN"
        with connection.cursor() as cursor, cursor.cursor.copy(sql) as copy:
            copy.write(buf.getvalue())
        return
    placeholders = ", ".join(["%s"] * len(columns))
    sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({placeholders})"
    with connection.cursor() as cursor:
        cursor.executemany(sql, [tuple(_sqlite_value(v) for v in row) for row in rows])


def _sqlite_value(v):
    if isinstance(v, datetime):
        return v.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ")
    return v


# ---------------------------------------------------------------------------------------
# Partitions


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def claim_partition(partition_id: int, *, force: bool = False) -> bool:
    stale = timezone.now() - timedelta(seconds=config()["bill"]["stale_partition_seconds"])
    qs = BillRunPartition.objects.filter(pk=partition_id)
    claimable = Q(status__in=[PartitionStatus.PENDING, PartitionStatus.FAILED]) | Q(
        status=PartitionStatus.RUNNING, heartbeat_at__lt=stale
    )
    if force:
        claimable |= Q(status=PartitionStatus.RUNNING)
    return bool(
        qs.filter(claimable).update(
            status=PartitionStatus.RUNNING, claimed_by=worker_name(), heartbeat_at=timezone.now(), error=""
        )
    )


def process_partition(partition_id: int, *, force: bool = False, stop_after_chunks: int | None = None) -> str:
    """Claim and bill one partition chunk by chunk. Returns the partition's status afterwards."""
    if not claim_partition(partition_id, force=force):
        return BillRunPartition.objects.get(pk=partition_id).status
    part = BillRunPartition.objects.select_related("run", "run__cycle").get(pk=partition_id)
    run = part.run
    segcache = SegmentCache(run)
    chunk = int(config()["bill"]["chunk_size"])
    done_chunks = 0
    try:
        while True:
            if stop_after_chunks is not None and done_chunks >= stop_after_chunks:
                return PartitionStatus.RUNNING
            with transaction.atomic():
                part = BillRunPartition.objects.select_for_update().get(pk=partition_id)
                rows = list(
                    due_accounts(run, part.division_path)
                    .filter(id__gt=part.cursor)
                    .exclude(bills__period_start=run.period_start)
                    .order_by("id")
                    .values(*ACCOUNT_FIELDS)[:chunk]
                )
                if not rows:
                    part.status = PartitionStatus.DONE
                    part.heartbeat_at = timezone.now()
                    part.save(update_fields=["status", "heartbeat_at"])
                    break
                lo, hi = rows[0]["id"], rows[-1]["id"]
                out, good = compute_chunk(run, rows, segcache, dry_run=False)
                write_chunk(run, part, out, good)
                part.cursor = hi
                part.done += len(rows)
                part.bills += len(good) - out.statements
                part.exceptions += len(out.exceptions)
                totals = {k: int(v) for k, v in part.totals.items()}
                for k, v in out.totals.items():
                    totals[k] = totals.get(k, 0) + v
                part.totals = totals
                part.heartbeat_at = timezone.now()
                part.save(update_fields=["cursor", "done", "bills", "exceptions", "totals", "heartbeat_at"])
                BillRun.objects.filter(pk=run.pk).update(statements=F("statements") + out.statements)
                if good:
                    transaction.on_commit(lambda lo=lo, hi=hi: _enqueue_ebills(run.pk, lo, hi))
            done_chunks += 1
    except Exception as exc:
        log.exception("bill run partition %s failed", partition_id)
        BillRunPartition.objects.filter(pk=partition_id).update(status=PartitionStatus.FAILED, error=str(exc)[:2000])
        raise
    finish_run_if_done(run.pk)
    return PartitionStatus.DONE


def _enqueue_ebills(run_id: int, lo: int, hi: int) -> None:
    from .tasks import send_ebills

    send_ebills.delay(run_id, lo, hi)


def finish_run_if_done(run_id: int) -> BillRun:
    with transaction.atomic():
        run = BillRun.objects.select_for_update().get(pk=run_id)
        parts = list(run.partitions.all())
        if run.status != RunStatus.RUNNING or any(p.status != PartitionStatus.DONE for p in parts):
            return run
        totals: dict[str, int] = defaultdict(int)
        for p in parts:
            for k, v in p.totals.items():
                totals[k] += int(v)
        run.bills = sum(p.bills for p in parts)
        run.exceptions = run.exception_rows.filter(resolved=False).count()
        run.totals = {k: (_milli(v) if k == "units_m" else _rs(v)) for k, v in totals.items()}
        run.status = RunStatus.COMPLETED_WITH_EXCEPTIONS if run.exceptions else RunStatus.COMPLETED
        run.finished_at = timezone.now()
        run.save()
        record_audit(
            actor=run.created_by,
            channel="system",
            action="billrun.completed",
            obj=run,
            changes={"bills": run.bills, "statements": run.statements, "exceptions": run.exceptions, **run.totals},
        )
    return run


def dry_run(run: BillRun) -> dict:
    """Compute the whole run without writing bills or ledger entries; totals and exceptions."""
    segcache = SegmentCache(run)
    chunk = int(config()["bill"]["chunk_size"])
    totals: dict[str, int] = defaultdict(int)
    exceptions: list[dict] = []
    counts = defaultdict(int)
    cursor = 0
    while True:
        rows = list(
            due_accounts(run)
            .filter(id__gt=cursor)
            .exclude(bills__period_start=run.period_start)
            .order_by("id")
            .values(*ACCOUNT_FIELDS)[:chunk]
        )
        if not rows:
            break
        cursor = rows[-1]["id"]
        with transaction.atomic():
            out, good = compute_chunk(run, rows, segcache, dry_run=True)
            transaction.set_rollback(True)  # nothing the computation touched is kept
        for k, v in out.totals.items():
            totals[k] += v
        counts["accounts"] += len(rows)
        counts["bills"] += sum(1 for b in good if not b["row"]["is_prepaid"])
        counts["statements"] += sum(1 for b in good if b["row"]["is_prepaid"])
        counts["exceptions"] += len(out.exceptions)
        for a, k, m, _d in out.exceptions[: max(0, 500 - len(exceptions))]:
            exceptions.append({"account_id": a, "kind": k, "message": m})
    return {
        "counts": dict(counts),
        "totals": {k: (_milli(v) if k == "units_m" else _rs(v)) for k, v in totals.items()},
        "exceptions": exceptions,
    }
