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

import calendar
import json
import logging
import os
import socket
import time as time_mod
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal

import numpy as np
from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from urja.core import regdata
from urja.core.errors import DomainError
from urja.core.services import allocate_numbers
from urja.core.states import transition, transition_set
from urja.tariffs import engine, vector
from urja.tariffs import services as tariffs

from . import trueup
from .bulk import Column, select_in
from .bulk import insert as _insert
from .ledger import post_entries
from .models import (
    PARTITION_STATUS,
    RUN_STATUS,
    Bill,
    BillException,
    BillRun,
    BillRunPartition,
    EntryType,
    InstalmentPlan,
    PartitionStatus,
    RunStatus,
)

log = logging.getLogger(__name__)
# Seconds per phase in this process (bench figures): wall time, and as "<phase>_py" this process's
# CPU time; the difference is mostly waiting on the database.
TIMING: dict[str, float] = defaultdict(float)


class _timed:
    def __init__(self, name: str):
        self.name = name

    def __enter__(self):
        self.start = time_mod.perf_counter()
        self.cpu = time_mod.process_time()

    def __exit__(self, *exc):
        TIMING[self.name] += time_mod.perf_counter() - self.start
        TIMING[self.name + "_py"] += time_mod.process_time() - self.cpu


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
        self.version_ids: dict[tuple, int] = {}
        self.earlier: list | None = None  # versions in force in the previous period too (first bills from it)
        self.previous_run = previous_period_run(run)  # billing_start: first bills from the previous period

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

    def starting(self, key: tuple, start: date):
        """The segments of a bill of this run that begins on `start` (`segments_from`)."""
        return segments_from(
            lambda day: self.get(key) if day == self.start else self._split(key, day), self.start, self.end, start
        )

    def _split(self, key: tuple, start: date):
        if (key, start) not in self.cache:
            if self.earlier is None:
                self.earlier = list(tariffs.versions_in_force(previous_start(self.start, self.end), self.end))
            category, sub, area, supply, package = key
            versions = tariffs.matching_versions(
                category=category, sub_category=sub, area=area, supply_type=supply, package_code=package,
                start=start, end=self.end, candidates=self.earlier,
            )  # fmt: skip
            try:
                self.cache[(key, start)] = tariffs.segments(
                    versions=versions, start=start, end=self.end, what="/".join(key)
                )
            except DomainError as exc:
                self.cache[(key, start)] = exc
        return self.cache[(key, start)]


def segments_from(split, period_start: date, period_end: date, start: date):
    """The tariff segments of a bill of the run's period that begins on `start`, from `split(day)` (the
    segments of [day, period end], or the DomainError of a day no tariff covers): the period's, cut to a
    new connection's day inside it; or — a first bill from a connection day in the cycle's previous period —
    the split of [previous period's first day, period end] cut to that day, so the versions in force before
    the period are billed for the days they cover. When the two periods' tariffs have a gap (a tariff that
    began inside the previous period), [start, period end] is split on its own (a gap in it: DomainError)."""
    if start >= period_start:
        segs = split(period_start)
        return segs if start == period_start or isinstance(segs, DomainError) else from_day(segs, start)
    window = split(previous_start(period_start, period_end))
    return split(start) if isinstance(window, DomainError) else from_day(window, start)


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
# Accounts of a chunk (raw SQL: ints and strings only, no per-row ORM conversion)

A_ID, A_CONSUMER, A_CATEGORY, A_SUB, A_AREA, A_SUPPLY, A_LOAD, A_UNIT, A_PREPAID, A_PACKAGE, A_LANG, A_CONNECTED = (
    range(12)
)


def fetch_accounts(run: BillRun, division_path: str | None, after: int, limit: int) -> tuple[list[tuple], int | None]:
    """The next `limit` due accounts after id `after`, less those already billed for the period.

    Returns the rows and the last account id looked at (the new cursor; None when none was left)."""
    ops = connection.ops
    sql = [
        "SELECT a.id, a.consumer_id, a.category, a.sub_category, a.area, a.supply_type,",
        " CAST(ROUND(a.sanctioned_load * 1000) AS BIGINT), a.load_unit, a.is_prepaid, a.package_code,",
        " c.preferred_language, a.connected_on",
        " FROM customers_account a JOIN customers_consumer c ON c.id = a.consumer_id",
        " WHERE a.bill_cycle = %s AND a.id > %s AND (a.connected_on IS NULL OR a.connected_on <= %s)",
    ]
    params: list = [run.cycle.code, after, ops.adapt_datefield_value(run.period_end)]
    statuses = config()["bill"]["billable_statuses"]
    sql.append(f" AND a.status IN ({', '.join(['%s'] * len(statuses))})")
    params += statuses
    if division_path is not None:
        sql.append(" AND a.office_path LIKE %s")
        params.append(division_path + "%")
    if run.cycle.routes:
        sql.append(f" AND a.route IN ({', '.join(['%s'] * len(run.cycle.routes))})")
        params += list(run.cycle.routes)
    sql.append(" ORDER BY a.id LIMIT %s")
    params.append(limit)
    with connection.cursor() as c:
        c.execute("".join(sql), params)
        rows = c.fetchall()
        if not rows:
            return [], None
        # Accounts billed already (a resumed or re-billed run) are dropped here, by index probes on the
        # chunk's ids: as a NOT EXISTS in the query above, PostgreSQL may merge against the whole
        # bills index for every chunk, which grows with the run.
        ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        where, params = id_filter("account_id", ids)
        # any bill with a day of the period: a new connection's first bill starts on its connection day, inside
        # the period or in the previous one (billing_start); a rebill of the previous period finds it too
        c.execute(
            f"SELECT DISTINCT account_id FROM billing_bill WHERE {where} AND period_start <= %s AND period_end >= %s",
            [*params, ops.adapt_datefield_value(run.period_end), ops.adapt_datefield_value(run.period_start)],
        )
        billed = {a for (a,) in c.fetchall()}
    return [(*r[:8], bool(r[8]), r[9], r[10], _date(r[11])) for r in rows if r[0] not in billed], rows[-1][0]


def _date(value) -> date | None:
    """A DATE column read by a raw query (SQLite gives text)."""
    return date.fromisoformat(str(value)[:10]) if value is not None and not isinstance(value, date) else value


def billing_start(
    run: BillRun, connected_on: date | None, *, billed_before: bool = True, previous_run: bool = False
) -> date:
    """The first day an account's bill of this run covers: the run's period, or the connection day of a new
    connection, so that its first bill's fixed charges and slab widths are pro-rated to the days from
    energization (the engine's month factor of the bill's own period):

    * energized inside the period (after its first day): from the connection day;
    * energized in the cycle's previous period (from its first day to the day before this period), never
      billed (`billed_before` False: no bill of an earlier period), and the cycle's run for that period went
      (`previous_run`: started, not a dry run) without billing it — pending when it ran, or energization
      recorded late: from the connection day, the bill covering the rest of the previous period and the whole
      of this one (21 June – 31 July: month factor 10/30 + 31/31);
    * otherwise the whole period: billed before, no connection day, connected before the previous period
      (old accounts of bulk and demo data never billed here), or no run of the previous period (the first run
      of a cycle at go-live: those days are the earlier system's; a previous period not yet run bills them
      itself, from the connection day).
    """
    if connected_on is None or connected_on == run.period_start:
        return run.period_start
    if connected_on > run.period_start:
        return connected_on
    if previous_run and not billed_before and connected_on >= previous_start(run.period_start, run.period_end):
        return connected_on
    return run.period_start


def previous_period_run(run: BillRun) -> bool:
    """Whether the cycle's run for the period before the run's has gone (started; dry runs bill nothing)."""
    return BillRun.objects.filter(
        cycle_id=run.cycle_id, dry_run=False, period_end=run.period_start - timedelta(days=1), started_at__isnull=False
    ).exists()


def previous_start(start: date, end: date) -> date:
    """First day of the cycle's previous period: as many months before the period [start, end] as it spans
    (a month for a monthly cycle, two for a bimonthly one)."""
    months = (end.year - start.year) * 12 + end.month - start.month + 1
    y, m = divmod(start.year * 12 + start.month - 1 - months, 12)
    return date(y, m + 1, min(start.day, calendar.monthrange(y, m + 1)[1]))


def from_day(segments: list[engine.Segment], start: date) -> list[engine.Segment]:
    """The run's tariff segments cut to begin on `start` (as engine.segments_for would split [start, end])."""
    return [engine.Segment(s.schedule, max(s.start, start), s.end) for s in segments if s.end >= start]


# ---------------------------------------------------------------------------------------
# Consumption in bulk

STATUS_NAMES = {0: "actual", 1: "estimated", 2: "provisional", 3: "unmetered"}


@dataclass
class UsageArrays:
    units: np.ndarray  # milli-kWh
    opening: np.ndarray  # milli-kWh, -1 unknown
    closing: np.ndarray
    md: np.ndarray  # milli, -1 none
    status: np.ndarray  # STATUS_NAMES codes
    metered: np.ndarray
    meter_type: np.ndarray  # vector.METER_TYPES codes
    consumer_meter: np.ndarray
    tod: dict[int, dict[str, int]] = field(default_factory=dict)  # row index → zone → milli-kWh
    exceptions: dict[int, tuple[str, str, dict]] = field(default_factory=dict)
    withdrawn: dict[int, trueup.Withdrawal] = field(default_factory=dict)  # row index → estimate true-up
    billed_at: dict[int, datetime] = field(default_factory=dict)  # account id → when last billed
    # row index → first day billed, for a first bill from a connection day before the period (billing_start)
    first_day: dict[int, date] = field(default_factory=dict)


@dataclass
class PreviousBills:
    """Per account of a chunk, from its bills of earlier periods: the latest due date of a bill
    (surcharge) and when it was last billed (`billed_at`: the opening is a reading known by then)."""

    due: dict[int, date] = field(default_factory=dict)
    billed_at: dict[int, datetime] = field(default_factory=dict)
    billed: set[int] = field(default_factory=set)  # accounts with a bill of an earlier period (any kind)


def previous_bills(run: BillRun, ids: np.ndarray) -> PreviousBills:
    """One query on the bills of the chunk's accounts for periods before the run's."""
    from django.utils.dateparse import parse_date, parse_datetime

    ops = connection.ops
    where, params = id_filter("account_id", ids)
    out = PreviousBills()
    for acc, due, made in _sql_rows(
        f"SELECT account_id, MAX(CASE WHEN kind = %s THEN due_date END), MAX(created_at) FROM billing_bill"
        f" WHERE {where} AND period_start < %s GROUP BY account_id",
        [Bill.Kind.BILL, *params, ops.adapt_datefield_value(run.period_start)],
    ):
        k = int(np.searchsorted(ids, acc))
        if k >= len(ids) or ids[k] != acc:
            continue
        out.billed.add(int(acc))
        if due is not None:
            out.due[int(acc)] = due if isinstance(due, date) else parse_date(str(due)[:10])
        if made is not None:  # SQLite returns an aggregate of datetimes as text (UTC)
            made = made if isinstance(made, datetime) else parse_datetime(str(made))
            out.billed_at[int(acc)] = made if timezone.is_aware(made) else timezone.make_aware(made, UTC)
    return out


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _epoch_us(column: str) -> str:
    """SQL for a timestamp column as microseconds since 1970 (UTC), exact: PostgreSQL's EXTRACT gives a
    numeric; SQLite keeps the UTC time as text 'YYYY-MM-DD HH:MM:SS[.ffffff]' (no fraction on a whole second)."""
    if connection.vendor == "postgresql":
        return f"CAST(FLOOR(EXTRACT(EPOCH FROM {column}) * 1000000) AS BIGINT)"
    return (
        f"(CAST(strftime('%%s', {column}) AS INTEGER) * 1000000 + CAST(substr({column} || '000000', 21, 6) AS INTEGER))"
    )


def id_filter(column: str, ids: np.ndarray) -> tuple[str, list]:
    """SQL condition for `column` in a sorted id array: exact on PostgreSQL (= ANY, one index probe per id);
    the id range on SQLite (its bound-parameter limit), which the caller narrows with np.isin."""
    if connection.vendor == "postgresql":  # as one array literal: psycopg adapts a list element by element
        return f"{column} = ANY(%s::bigint[])", ["{" + ",".join(map(str, ids.tolist())) + "}"]
    return f"{column} >= %s AND {column} <= %s", [int(ids[0]), int(ids[-1])]


def _last_per_account(acc: np.ndarray, mask: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Row index of the last masked reading of each account (rows sorted by account, time); -1 if none."""
    out = np.full(len(ids), -1, dtype=np.int64)
    idx = np.flatnonzero(mask)
    if len(idx):
        a = acc[idx]
        last = idx[np.r_[a[1:] != a[:-1], True]]
        out[np.searchsorted(ids, acc[last])] = last
    return out


def bulk_usage(
    run: BillRun,
    rows: list[tuple],
    *,
    dry_run: bool,
    previous: PreviousBills | None = None,
    first_day: dict[int, date] | None = None,
) -> UsageArrays:
    """Units for every account of a chunk: one query on readings, one on installations, numpy for the rest.

    `previous`: the chunk's `previous_bills` (queried here when not given). `first_day`: row index → the first
    day billed of an account whose first bill starts before the period (billing_start): its units are
    metering's from that day (the installation reading), not from the last reading before the period, so it
    takes the slow path."""
    from urja.metering.models import REGISTER_STATUSES, USABLE_VEE, MeterType, Ownership, VeeStatus

    ops = connection.ops
    ids = np.fromiter((r[A_ID] for r in rows), dtype=np.int64, count=len(rows))
    n = len(ids)
    if previous is None:
        previous = previous_bills(run, ids)
    start, end = day_start(run.period_start), day_start(run.period_end + timedelta(days=1))
    lookback = start - timedelta(days=93)
    smart = (MeterType.SMART, MeterType.SMART_PREPAID)
    with connection.cursor() as c, _timed("installations"):
        where, params = id_filter("i.account_id", ids)
        c.execute(
            f"SELECT i.account_id, i.id, i.meter_id FROM metering_installation i WHERE {where}"
            " AND i.installed_at < %s AND (i.removed_at IS NULL OR i.removed_at >= %s)"
            " ORDER BY i.account_id, i.installed_at, i.id",
            [*params, ops.adapt_datetimefield_value(end), ops.adapt_datetimefield_value(lookback)],
        )
        inst = np.array(c.fetchall(), dtype=np.int64).reshape(-1, 3)
        inst = inst[np.isin(inst[:, 0], ids)]
        # Meters by id in a query of their own: joined, PostgreSQL hashes the whole meter table per chunk.
        meter_ids = np.unique(inst[:, 2])
        meters = np.zeros((0, 6), dtype=np.int64)
        if len(meter_ids):
            where, params = id_filter("m.id", meter_ids)
            c.execute(
                "SELECT m.id, CASE WHEN m.meter_type IN (%s, %s) THEN 1 ELSE 0 END,"
                " CASE WHEN m.meter_type = %s THEN 1 ELSE 0 END, CASE WHEN m.ownership = %s THEN 0 ELSE 1 END,"
                " CAST(ROUND(m.multiplying_factor * 1000) AS BIGINT), m.register_digits"
                f" FROM metering_meter m WHERE {where}"
                " ORDER BY m.id",
                [*smart, MeterType.LOAD_LIMITER, Ownership.UTILITY, *params],
            )
            meters = np.array(c.fetchall(), dtype=np.int64).reshape(-1, 6)
            meters = meters[np.isin(meters[:, 0], meter_ids)]
        # account, installation, smart, load limiter, consumer-owned, multiplying factor (milli), register digits
        inst = np.column_stack([inst[:, :2], meters[np.searchsorted(meters[:, 0], inst[:, 2]), 1:]])
    with connection.cursor() as c, _timed("readings"):
        usable_vee, statuses = list(USABLE_VEE), list(REGISTER_STATUSES)
        where, params = id_filter("r.account_id", ids)
        c.execute(
            "SELECT r.account_id, CASE WHEN r.read_at >= %s THEN 1 ELSE 0 END,"
            f" CASE WHEN r.vee_status IN ({', '.join(['%s'] * len(usable_vee))})"
            f" AND r.status IN ({', '.join(['%s'] * len(statuses))}) AND r.kwh IS NOT NULL THEN 1 ELSE 0 END,"
            " COALESCE(CAST(ROUND(r.kwh * 1000) AS BIGINT), 0), COALESCE(CAST(ROUND(r.md_kw * 1000) AS BIGINT), -1),"
            " CASE WHEN r.status = 'actual' THEN 0 WHEN r.status = 'provisional' THEN 2 ELSE 1 END,"
            " r.installation_id, CASE WHEN r.tod IS NULL THEN 0 ELSE 1 END,"
            " COALESCE(CAST(ROUND(r.md_kva * 1000) AS BIGINT), -1), CASE WHEN r.vee_status = %s THEN 1 ELSE 0 END,"
            f" {_epoch_us('r.created_at')}, r.id"
            f" FROM metering_reading r WHERE {where}"
            " AND r.read_at >= %s AND r.read_at < %s ORDER BY r.account_id, r.read_at, r.id",
            [ops.adapt_datetimefield_value(start), *usable_vee, *statuses, VeeStatus.PENDING, *params,
             ops.adapt_datetimefield_value(lookback), ops.adapt_datetimefield_value(end)],
        )  # fmt: skip
        rd = np.array(c.fetchall(), dtype=np.int64).reshape(-1, 12)
    # the last installation of an account is its current meter
    n_inst = np.zeros(n, dtype=np.int64)
    np.add.at(n_inst, np.searchsorted(ids, inst[:, 0]), 1)
    cur = _last_per_account(inst[:, 0], np.ones(len(inst), dtype=bool), ids)
    has_inst = cur >= 0
    pick = np.where(has_inst, cur, 0)
    col = (lambda k: np.where(has_inst, inst[pick, k], 0)) if len(inst) else (lambda k: np.zeros(n, dtype=np.int64))
    is_smart, is_limiter, consumer_owned, mf, digits = col(2), col(3), col(4), col(5), col(6)
    cur_inst = col(1)
    rd = rd[np.isin(rd[:, 0], ids)]
    acc, in_period, usable = rd[:, 0], rd[:, 1] == 1, rd[:, 2] == 1
    o = _last_per_account(acc, usable & ~in_period, ids)
    cl = _last_per_account(acc, usable & in_period, ids)
    blocked = np.zeros(n, dtype=bool)
    blocked[np.searchsorted(ids, acc[in_period & ~usable])] = True
    # a reading still waiting for VEE (before the period too) is validated by metering's rule first
    blocked[np.searchsorted(ids, acc[rd[:, 9] == 1])] = True
    # A reading dated before the period but recorded after the account was last billed (a late reading,
    # a backdated meter replacement): the opening is the reading that bill closed on, not the latest one.
    # Metering's rule settles it (`billed_at`: readings created at or before it are the ones it knew).
    if previous.billed_at and len(rd):
        billed_us = np.full(n, np.iinfo(np.int64).max, dtype=np.int64)
        for a, moment in previous.billed_at.items():
            billed_us[int(np.searchsorted(ids, a))] = (moment - EPOCH) // timedelta(microseconds=1)
        late = usable & ~in_period & (rd[:, 10] > billed_us[np.searchsorted(ids, acc)])
        blocked[np.searchsorted(ids, acc[late])] = True
    md = np.full(n, -1, dtype=np.int64)
    sel = in_period & usable
    # demand in the account's load unit: kVA accounts are billed on the kVA register (as metering does)
    kva = np.fromiter((r[A_UNIT] == "kVA" for r in rows), dtype=bool, count=n)
    md_read = np.where(kva[np.searchsorted(ids, acc)], rd[:, 8], rd[:, 4]) if len(rd) else rd[:, 4]
    np.maximum.at(md, np.searchsorted(ids, acc[sel]), md_read[sel])

    def at(idx, k, default):
        return np.where(idx >= 0, rd[np.where(idx >= 0, idx, 0), k], default) if len(rd) else np.full(n, default)

    o_kwh, c_kwh = at(o, 3, 0), at(cl, 3, 0)
    simple = (
        has_inst & (o >= 0) & (cl >= 0) & ~blocked & (n_inst == 1) & (at(o, 6, -1) == at(cl, 6, -2))
        & (at(o, 5, 1) == 0) & (c_kwh >= o_kwh) & (at(cl, 6, -1) == cur_inst)
    )  # fmt: skip
    if first_day:
        simple[list(first_day)] = False
    tod = _fast_tod(simple, at(o, 7, 0) == 1, at(cl, 7, 0) == 1, at(o, 11, 0), at(cl, 11, 0), mf, digits)
    delta = c_kwh - o_kwh
    units = np.where(mf == 1000, delta, vector.rhu(delta * mf, 1000))
    md = np.where((md >= 0) & (mf != 1000), vector.rhu(md * mf, 1000), md)
    unmetered = ~has_inst | (is_limiter == 1)
    status = np.where(unmetered, 3, at(cl, 5, 0))
    result = UsageArrays(
        units=np.where(simple, units, 0),
        opening=np.where(simple, o_kwh, -1),
        closing=np.where(simple, c_kwh, -1),
        md=np.where(simple, md, -1),
        status=status,
        metered=~unmetered,
        meter_type=np.where(is_smart == 1, vector.METER_TYPES["smart"], vector.METER_TYPES["static"]),
        consumer_meter=consumer_owned == 1,
        tod=tod,
        billed_at=previous.billed_at,
        first_day=dict(first_day or {}),
    )
    no_inst = np.flatnonzero(~has_inst)
    if len(no_inst):
        from urja.metering.models import Installation

        ever = set(
            Installation.objects.filter(account_id__in=[int(ids[i]) for i in no_inst]).values_list(
                "account_id", flat=True
            )
        )
        for i in no_inst:
            if int(ids[i]) in ever:
                result.exceptions[int(i)] = ("no_reading", "no meter installed in the period", {})
    slow = np.flatnonzero(~simple & ~unmetered)
    if len(slow):
        _slow_path(run, ids, slow, result, dry_run=dry_run)
    return result


def _fast_tod(simple, opening_tod, closing_tod, opening_id, closing_id, mf, digits) -> dict[int, dict[str, int]]:
    """Time-of-day units of the fast path's accounts whose opening and closing readings both carry
    zone registers (row index → zone → milli-kWh), as metering's `tod_consumption` gives them: per zone
    at both ends, the register advance × MF rounded half up. An account whose zones metering's rule
    must judge (a zone going down — rollover or a misread —, a value outside the register or finer
    than 0.001) is taken off the fast path (`simple` is updated). A closing with zones over an opening
    without them bills no zones, on either path."""
    both = np.flatnonzero(simple & opening_tod & closing_tod)
    if not len(both):
        return {}
    # a chunk's ToD readings can outnumber SQLite's bound parameters: select_in splits the list
    wanted = sorted({int(x) for x in opening_id[both]} | {int(x) for x in closing_id[both]})
    zones_of = {
        pk: json.loads(tod) if isinstance(tod, str) else tod
        for pk, tod in select_in("SELECT id, tod FROM metering_reading WHERE id {in}", wanted)
    }
    out: dict[int, dict[str, int]] = {}
    for i in both.tolist():
        advance = _tod_advance(zones_of[int(opening_id[i])], zones_of[int(closing_id[i])], int(digits[i]))
        if advance is None:
            simple[i] = False
            continue
        m = int(mf[i])
        out[i] = {z: d if m == 1000 else vector.rhu_int(d * m, 1000) for z, d in advance.items()}
    return out


def _tod_advance(start: dict, end: dict, digits: int) -> dict[str, int] | None:
    """Milli-units each zone register advanced (zones at both ends); None when it did not plainly
    advance within the register in whole milli-units."""
    size = 10**digits * 1000
    out: dict[str, int] = {}
    for zone in sorted(set(start) & set(end)):
        try:
            a, b = Decimal(str(start[zone])) * 1000, Decimal(str(end[zone])) * 1000
        except ArithmeticError:
            return None
        if not (a.is_finite() and b.is_finite()) or a % 1 or b % 1 or not 0 <= a <= b < size:
            return None
        out[zone] = int(b - a)
    return out


def _slow_path(run: BillRun, ids: np.ndarray, slow: np.ndarray, result: UsageArrays, *, dry_run: bool) -> None:
    from urja.customers.models import Account
    from urja.metering import services as metering

    position = {int(ids[i]): int(i) for i in slow}
    for account in Account.objects.filter(pk__in=list(position)).select_related("consumer"):
        i = position[account.pk]
        try:
            c = metering.billing_consumption(
                account=account,
                # (day before the first billed day, period end]: a first bill from a connection day before the
                # period opens on the installation reading
                period_start=result.first_day.get(i, run.period_start) - timedelta(days=1),
                period_end=run.period_end,
                estimate_missing=not dry_run,
                billed_at=result.billed_at.get(account.pk),
            )
        except DomainError as exc:
            kind = {"no_reading": "no_reading", "no_meter": "no_reading"}.get(exc.code, "meter_error")
            result.exceptions[i] = (kind, exc.message[:240], {"code": exc.code})
            continue
        except Exception as exc:  # a register error or bad data on one account must not stop the division
            log.warning("billing consumption of account %s failed: %s", account.pk, exc)
            result.exceptions[i] = ("meter_error", str(exc)[:240], {"code": getattr(exc, "code", type(exc).__name__)})
            continue
        if c.held:
            result.exceptions[i] = (
                "vee_failed",
                "a reading of the period waits for VEE review",
                {"exceptions": c.exceptions},
            )
            continue
        md = c.md_kva if account.load_unit == "kVA" else c.md_kw
        result.units[i] = int(c.kwh * 1000)
        result.status[i] = {"actual": 0, "provisional": 2}.get(c.status, 1)
        # half up to milli, as the fast path rounds MD × MF (vector.rhu)
        result.md[i] = int((md * 1000).to_integral_value(ROUND_HALF_UP)) if md is not None else -1
        if c.tod:
            result.tod[i] = {k: int(v * 1000) for k, v in c.tod.items()}
        result.opening[i] = int(c.opening["kwh"] * 1000) if c.opening and c.opening.get("kwh") is not None else -1
        result.closing[i] = int(c.closing["kwh"] * 1000) if c.closing and c.closing.get("kwh") is not None else -1
        result.consumer_meter[i] = not c.meter_rent_applies
        if c.withdrawn > 0:
            since = c.last_actual_at.astimezone(IST).date() if c.last_actual_at else run.period_start
            result.withdrawn[i] = trueup.withdraw(
                bills=trueup.estimated_bills_since(account_id=account.pk, since=since, before=run.period_start),
                units=c.withdrawn,
            )


# ---------------------------------------------------------------------------------------
# One chunk


@dataclass
class ChunkResult:
    rows: list[tuple]
    usage: UsageArrays
    groups: dict[str, np.ndarray]  # paise per account, by bill group
    total: np.ndarray
    due_reb: np.ndarray
    dig_reb: np.ndarray
    arrears: np.ndarray
    overdue: np.ndarray
    overdue_days: np.ndarray
    e_bill: np.ndarray
    versions: list[str]
    period_start: list[date]  # per account: billing_start (the run's period start, or a new connection's day)
    tod_units: list[dict | None]  # per account: kWh by the tariff's ToD window code, as the bill stores them
    good: np.ndarray  # bool: billed (bill or statement)
    exceptions: list[tuple]  # (account_id, kind, message, details)
    totals: dict[str, int]
    statements: int = 0


def _rs(p: int) -> str:
    return f"{p // 100}.{p % 100:02d}" if p >= 0 else "-" + _rs(-p)


def _milli(v: int | None) -> str | None:
    return None if v is None else f"{v // 1000}.{v % 1000:03d}" if v >= 0 else "-" + _milli(-v)


def _sql_rows(sql: str, params: list) -> list[tuple]:
    with connection.cursor() as c:
        c.execute(sql, params)
        return c.fetchall()


def compute_chunk(run: BillRun, rows: list[tuple], segcache: SegmentCache, *, dry_run: bool) -> ChunkResult:
    """Compute bills for a chunk of accounts (no writes, except estimated readings made by metering)."""
    n = len(rows)
    ids = np.fromiter((r[A_ID] for r in rows), dtype=np.int64, count=n)
    lo, hi = int(ids[0]), int(ids[-1])
    with _timed("account_queries"):
        previous = previous_bills(run, ids)
    starts = [
        billing_start(run, r[A_CONNECTED], billed_before=r[A_ID] in previous.billed, previous_run=segcache.previous_run)
        for r in rows
    ]
    with _timed("usage"):
        usage = bulk_usage(
            run, rows, dry_run=dry_run, previous=previous,
            first_day={i: d for i, d in enumerate(starts) if d < run.period_start},
        )  # fmt: skip
    arrears = np.zeros(n, dtype=np.int64)
    principal = np.zeros(n, dtype=np.int64)
    with _timed("account_queries"):  # balances, overdue principal, e-bill contacts
        where, params = id_filter("account_id", ids)
        for acc, t, p in _sql_rows(
            # summed in integer paise: SQLite keeps decimals as floats, and a float sum read back
            # as Decimal and truncated could show arrears a paisa short of the ledger
            "SELECT account_id, SUM(CAST(ROUND(amount * 100) AS BIGINT)),"
            " SUM(CASE WHEN entry_type = %s THEN 0 ELSE CAST(ROUND(amount * 100) AS BIGINT) END)"
            f" FROM billing_ledgerentry WHERE {where} GROUP BY account_id",
            [EntryType.DPS, *params],
        ):
            k = int(np.searchsorted(ids, acc))
            if k < n and ids[k] == acc:
                arrears[k], principal[k] = int(t), int(p)
        overdue = np.zeros(n, dtype=np.int64)
        overdue_days = np.zeros(n, dtype=np.int64)
        for acc, due in previous.due.items():
            k = int(np.searchsorted(ids, acc))
            if run.bill_date > due and principal[k] > 0:
                overdue[k], overdue_days[k] = principal[k], (run.bill_date - due).days
        consumers = [r[A_CONSUMER] for r in rows]
        cwhere, cparams = id_filter("consumer_id", np.unique(np.array(consumers, dtype=np.int64)))
        reachable = {
            c
            for (c,) in _sql_rows(
                "SELECT DISTINCT consumer_id FROM customers_contact WHERE verified = %s"
                f" AND (kind = 'email' OR whatsapp_opt_in = %s) AND {cwhere}",
                [True, True, *cparams],
            )
        }
    e_bill = np.fromiter((c in reachable for c in consumers), dtype=bool, count=n)
    extra = np.zeros(n, dtype=np.int64)
    for acc, amount in InstalmentPlan.objects.filter(
        account_id__gte=lo, account_id__lte=hi, billed__lt=F("instalments")
    ).values_list("account_id", "amount_per_bill"):
        k = int(np.searchsorted(ids, acc))
        if k < n and ids[k] == acc:
            extra[k] += int(amount * 100)

    exceptions: list[tuple] = []
    ok = np.ones(n, dtype=bool)
    for i, exc in usage.exceptions.items():
        ok[i] = False
        exceptions.append((rows[i][A_ID], *exc))
    _skip_resolved(run, rows, ok, exceptions)
    _hold_implausible_demand(rows, usage, ok, exceptions)
    by_key: dict[tuple, list[int]] = defaultdict(list)
    for i, r in enumerate(rows):
        if ok[i]:
            by_key[(r[A_CATEGORY], r[A_SUB], r[A_AREA], r[A_SUPPLY], r[A_PACKAGE] or "", starts[i])].append(i)
    groups = {name: np.zeros(n, dtype=np.int64) for name in GROUP_FIELDS}
    total, due_reb, dig_reb = (np.zeros(n, dtype=np.int64) for _ in range(3))
    versions = [""] * n
    tod_units: list[dict | None] = [None] * n
    prepaid = np.fromiter((r[A_PREPAID] for r in rows), dtype=bool, count=n)
    for (*key, start), members in by_key.items():
        segs = segcache.starting(tuple(key), start)
        idx = np.array(members, dtype=np.int64)
        if isinstance(segs, DomainError):
            ok[idx] = False
            exceptions += [(rows[i][A_ID], "missing_tariff", segs.message[:240], segs.details) for i in members]
            continue
        tod_codes = sorted({w.code for s in segs for w in s.schedule.tod})
        tod = {code: _tod_units(usage.tod, members, tod_zone(code)) for code in tod_codes}
        batch = vector.Batch(
            units=usage.units[idx],
            load=np.fromiter((rows[i][A_LOAD] for i in members), dtype=np.int64, count=len(members)),
            load_kva=np.fromiter((rows[i][A_UNIT] == "kVA" for i in members), dtype=bool, count=len(members)),
            md=usage.md[idx],
            tod=tod,
            rural=np.fromiter((rows[i][A_AREA] == "rural" for i in members), dtype=bool, count=len(members)),
            metered=usage.metered[idx],
            meter_type=usage.meter_type[idx],
            consumer_meter=usage.consumer_meter[idx],
            e_bill=e_bill[idx],
            prepaid=prepaid[idx],
            overdue=overdue[idx],
            overdue_days=overdue_days[idx],
            extra=extra[idx],
        )
        res = vector.calculate(segs, batch)
        for name in GROUP_FIELDS:
            groups[name][idx] = res.groups[name]
        total[idx] = res.total
        due_reb[idx] = res.conditional("by_due_date")
        dig_reb[idx] = res.conditional("digital")
        text = ",".join(str(tariff_version_id(s, segcache.version_ids)) for s in segs)
        for i in members:
            versions[i] = text
        # The ToD units the engine billed, stored on the bill (by window code, kWh) so that its printed
        # lines (services.bill_lines) are the ones billed: ToD lines, and riders on a base with ToD.
        for code, arr in tod.items():
            for k in np.flatnonzero(arr >= 0).tolist():
                i = members[k]
                tod_units[i] = {**(tod_units[i] or {}), code: _milli(int(arr[k]))}
    current = sum(groups[k] for k in ("energy", "tod", "fixed", "monthly", "minimum", "rider"))
    negative = ok & ~prepaid & ((total < 0) | (current < 0))
    for i in np.flatnonzero(negative):
        exceptions.append(
            (
                rows[i][A_ID],
                "negative_bill",
                f"bill of Rs {_rs(int(total[i]))} is negative",
                {"total": _rs(int(total[i]))},
            )
        )
    good = ok & ~negative
    totals = {name: int(groups[name][good].sum()) for name in GROUP_FIELDS}
    totals["total"] = int(total[good].sum())
    totals["units_m"] = int(usage.units[good].sum())
    return ChunkResult(
        rows=rows, usage=usage, groups=groups, total=total, due_reb=due_reb, dig_reb=dig_reb, arrears=arrears,
        overdue=overdue, overdue_days=overdue_days, e_bill=e_bill, versions=versions, period_start=starts,
        tod_units=tod_units, good=good, exceptions=exceptions, totals=totals,
    )  # fmt: skip


def _skip_resolved(run: BillRun, rows: list[tuple], ok: np.ndarray, exceptions: list) -> None:
    """Accounts whose exception in this run an officer resolved are not billed by it again (a rebill
    scans the run's accounts anew): resolved means dealt with outside the run."""
    if run.pk is None:
        return
    lo, hi = rows[0][A_ID], rows[-1][A_ID]
    resolved = set(
        BillException.objects.filter(run=run, resolved=True, account_id__gte=lo, account_id__lte=hi).values_list(
            "account_id", flat=True
        )
    )
    if not resolved:
        return
    for i, r in enumerate(rows):
        if r[A_ID] in resolved:
            ok[i] = False
    exceptions[:] = [e for e in exceptions if e[0] not in resolved]


def _hold_implausible_demand(rows: list[tuple], usage: UsageArrays, ok: np.ndarray, exceptions: list) -> None:
    """Hold (no bill) the accounts whose billed MD (recorded × multiplying factor) exceeds
    [demand] max_multiple_of_contract × their contract demand: a wrong MF or a bad register read,
    not consumption to bill."""
    multiple = Decimal(str(config()["demand"]["max_multiple_of_contract"]))
    load = np.fromiter((r[A_LOAD] for r in rows), dtype=np.int64, count=len(rows))  # milli, as usage.md
    # md and load in milli-units; the multiple in thousandths keeps the comparison in integers
    held = ok & (usage.md >= 0) & (load > 0) & (usage.md * 1000 > load * int(multiple * 1000))
    if not held.any():
        return
    from urja.metering.models import Installation

    ids = [int(rows[i][A_ID]) for i in np.flatnonzero(held)]
    mf = dict(  # the account's latest meter: the factor the MD was multiplied by (informative only)
        Installation.objects.filter(account_id__in=ids)
        .order_by("account_id", "installed_at", "id")
        .values_list("account_id", "meter__multiplying_factor")
    )

    def num(d: Decimal | None) -> str:
        return "?" if d is None else f"{d.normalize():f}"

    for i in np.flatnonzero(held).tolist():
        ok[i] = False
        unit, factor = rows[i][A_UNIT], mf.get(int(rows[i][A_ID]))
        md, contract = Decimal(int(usage.md[i])) / 1000, Decimal(int(load[i])) / 1000
        recorded = (md / factor).quantize(Decimal("0.001")) if factor else None
        exceptions.append((
            rows[i][A_ID], "implausible_demand",
            f"billed demand {num(md)} {unit} (recorded MD {num(recorded)} × MF {num(factor)}) is more than"
            f" {num(multiple)} × the contract demand of {num(contract)} {unit}"[:240],
            {"md": num(md), "recorded_md": num(recorded), "mf": num(factor), "contract_demand": num(contract),
             "unit": unit, "max_multiple": num(multiple)},
        ))  # fmt: skip


def _tod_units(tod: dict[int, dict[str, int]], members: list[int], zone: str) -> np.ndarray:
    """Milli-kWh of one time-of-day zone for the members (row indexes); -1 where none was read."""
    if not tod:  # no account of the chunk has time-of-day registers
        return np.full(len(members), -1, dtype=np.int64)
    return np.fromiter((tod.get(i, {}).get(zone, -1) for i in members), dtype=np.int64, count=len(members))


def tod_zone(code: str) -> str:
    """TOD window code in the tariff (TOD_PEAK) → register zone name from metering (peak)."""
    return code.lower().removeprefix("tod_")


def tariff_version_id(seg: engine.Segment, cache: dict | None = None) -> int:
    from urja.tariffs.models import TariffVersion

    key = (seg.schedule.order_code, seg.schedule.code)
    cache = {} if cache is None else cache
    if key not in cache:
        cache[key] = TariffVersion.objects.get(order__code=key[0], schedule_code=key[1]).pk
    return cache[key]


def write_chunk(run: BillRun, part: BillRunPartition, out: ChunkResult) -> None:
    """Numbers, bills, ledger entries (COPY on PostgreSQL), exceptions — inside the caller's transaction."""
    cfg = config()["bill"]
    now = timezone.now()
    rows, u, g = out.rows, out.usage, out.groups
    prepaid = np.fromiter((r[A_PREPAID] for r in rows), dtype=bool, count=len(rows))
    bill_idx = np.flatnonzero(out.good & ~prepaid)
    stmt_idx = np.flatnonzero(out.good & prepaid)
    fields = {"division": f"{part.division_id:03d}"}
    numbers = (
        allocate_numbers(key=f"bill:{part.division_id}", template=cfg["number_template"], count=len(bill_idx),
                         fields=fields, today=run.bill_date)
        if len(bill_idx) else []
    )  # fmt: skip
    snumbers = (
        allocate_numbers(key=f"statement:{part.division_id}", template=cfg["statement_template"],
                         count=len(stmt_idx), fields=fields, today=run.bill_date)
        if len(stmt_idx) else []
    )  # fmt: skip
    with _timed("build_rows"):
        account = np.fromiter((r[A_ID] for r in rows), dtype=np.int64, count=len(rows))
        load = np.fromiter((r[A_LOAD] for r in rows), dtype=np.int64, count=len(rows))
        unit, area = [r[A_UNIT] for r in rows], [r[A_AREA] for r in rows]
        language = [r[A_LANG] or "en" for r in rows]
        status_names = np.array([STATUS_NAMES[k] for k in range(len(STATUS_NAMES))], dtype=object)
        # estimate true-ups (rare: slow-path accounts only): units withdrawn and their credit
        withdrawn = np.zeros(len(rows), dtype=np.int64)
        credit = np.zeros(len(rows), dtype=np.int64)
        for i, w in u.withdrawn.items():
            withdrawn[i] = int(w.units * 1000)
            credit[i] = int(w.credit * 100) if not prepaid[i] else 0
        mtype_names = np.array(sorted(vector.METER_TYPES, key=vector.METER_TYPES.get), dtype=object)

        def bill_columns(idx: np.ndarray, kind: str, nums: list[str], due: date | None) -> list[Column]:
            pick = idx.tolist()
            return [
                Column("account_id", account[idx]), Column("run_id", run.pk),
                Column("period_start", [out.period_start[i] for i in pick]), Column("period_end", run.period_end),
                Column("bill_date", run.bill_date), Column("kind", kind), Column("bill_number", nums),
                Column("due_date", due), Column("tariff_versions", [out.versions[i] for i in pick]),
                Column("units", u.units[idx], 3), Column("units_status", status_names[u.status[idx]].tolist()),
                Column("units_withdrawn", withdrawn[idx], 3),
                Column("opening_kwh", u.opening[idx], 3, nullable=True),
                Column("closing_kwh", u.closing[idx], 3, nullable=True),
                Column("recorded_md", u.md[idx], 3, nullable=True),
                Column("tod_units", [out.tod_units[i] for i in pick]),
                Column("sanctioned_load", load[idx], 3), Column("load_unit", [unit[i] for i in pick]),
                Column("area", [area[i] for i in pick]), Column("metered", u.metered[idx]),
                Column("meter_type", mtype_names[u.meter_type[idx]].tolist()),
                Column("consumer_meter", u.consumer_meter[idx]), Column("e_bill", out.e_bill[idx]),
                Column("prepaid", kind == "statement"), Column("overdue_principal", out.overdue[idx], 2),
                Column("overdue_days", out.overdue_days[idx]),
                *(Column(field, g[group][idx], 2) for group, field in GROUP_FIELDS.items()),
                Column("total", out.total[idx], 2), Column("rebate_by_due_date", out.due_reb[idx], 2),
                Column("rebate_digital", out.dig_reb[idx], 2), Column("arrears", out.arrears[idx], 2),
                Column("net_payable", out.arrears[idx] + out.total[idx] + credit[idx], 2),
                Column("language", [language[i] for i in pick]), Column("created_at", now),
            ]  # fmt: skip

        bills = []
        if len(bill_idx):
            bills.append((len(bill_idx), bill_columns(bill_idx, Bill.Kind.BILL, numbers, run.due_date)))
        if len(stmt_idx):
            bills.append((len(stmt_idx), bill_columns(stmt_idx, Bill.Kind.STATEMENT, snumbers, None)))
        # Ledger entries of the bills (statements post none), one batch per entry type: an account's
        # entries keep the order charge, subsidy, rebate, surcharge, instalment.
        charge = sum(g[k][bill_idx] for k in ("energy", "tod", "fixed", "monthly", "minimum", "rider", "rounding"))
        ledger = []
        for etype, amount, text in (
            (EntryType.BILL_CHARGE, charge, "Bill"),
            (EntryType.SUBSIDY, g["subsidy"][bill_idx], "Subsidy on bill"),
            (EntryType.REBATE, g["rebate"][bill_idx], "Rebate on bill"),
            (EntryType.ESTIMATE_WITHDRAWAL, credit[bill_idx], "Over-estimated units withdrawn, bill"),
            (EntryType.DPS, g["dps"][bill_idx], "Delayed payment surcharge on bill"),
            (EntryType.INSTALMENT, g["extra"][bill_idx], "Appliance instalment on bill"),
        ):
            posted = np.flatnonzero(amount)
            if not len(posted):
                continue
            refs = [numbers[k] for k in posted.tolist()]
            ledger.append((len(posted), [
                Column("account_id", account[bill_idx[posted]]), Column("entry_type", etype),
                Column("amount", amount[posted], 2),
                Column("description", [f"{text} {number} ({run.period})"[:200] for number in refs]),
                Column("reference_id", refs), Column("posted_at", now), Column("due_date", run.due_date),
                Column("reference_type", "bill"), Column("idempotency_key", None), Column("channel", "system"),
            ]))  # fmt: skip
    # No idempotency key on the ledger rows: the bills' unique (account, period) in the same
    # transaction already makes a chunk all-or-nothing, and a key per row would cost an index entry each.
    with _timed("copy_bills"):
        _insert(Bill, bills)
    with _timed("copy_ledger"):  # billing's checked bulk post (types and signs), COPY on PostgreSQL
        post_entries(ledger)
    if out.exceptions:
        BillException.objects.bulk_create(
            [BillException(run=run, account_id=a, kind=k, message=m, details=d) for a, k, m, d in out.exceptions],
            ignore_conflicts=True,
        )
    plan_accounts = account[bill_idx[g["extra"][bill_idx] != 0]].tolist()
    if plan_accounts:
        InstalmentPlan.objects.filter(account_id__in=plan_accounts, billed__lt=F("instalments")).update(
            billed=F("billed") + 1
        )
    out.statements = len(stmt_idx)


# ---------------------------------------------------------------------------------------
# Partitions


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def heartbeat_expiry() -> timedelta:
    return timedelta(seconds=int(config()["bill"]["stale_partition_seconds"]))


def _expired(now: datetime) -> Q:
    """A running partition whose worker has not beaten within the expiry: presumed dead."""
    return Q(status=PartitionStatus.RUNNING) & (Q(heartbeat_at__lt=now - heartbeat_expiry()) | Q(heartbeat_at=None))


def claim_partition(partition_id: int, *, force: bool = False) -> bool:
    """Claim a pending or failed partition, or take over one whose claim has expired (its worker died).

    A conditional update: of two workers racing for the same partition, one wins. A live worker's
    claim is never taken (its heartbeat is fresh, and a chunk in progress holds the row locked until
    it commits a new heartbeat) unless `force` (an operator's --resume)."""
    me, now = worker_name(), timezone.now()
    qs = BillRunPartition.objects.filter(pk=partition_id)
    claim = {"claimed_by": me, "heartbeat_at": now, "error": ""}
    running = PartitionStatus.RUNNING
    # the WHERE comes from the machine: a fresh claim from any state that may go to running except
    # running itself (a live claim is only taken over below)
    fresh = PARTITION_STATUS.sources_of(running) - {running}
    common = {"actor": None, "channel": "system", "values": claim}
    if transition_set(qs, PARTITION_STATUS, running, sources=fresh, action="billrun.partition_claimed",
                      changes={"by": me}, **common):  # fmt: skip
        return True
    before = qs.values("claimed_by", "heartbeat_at", "cursor").first()
    takeover = Q(status=running) if force else _expired(now)
    changes = {"from_worker": before["claimed_by"], "last_heartbeat": before["heartbeat_at"],
               "cursor": before["cursor"], "by": me, "forced": force}  # fmt: skip
    if not transition_set(qs.filter(takeover), PARTITION_STATUS, running, sources={running},
                          action="billrun.partition_taken_over", changes=changes, **common):  # fmt: skip
        return False
    log.warning("bill run partition %s taken over by %s from %s", partition_id, me, before)
    return True


def _chunk_settings() -> None:
    """PostgreSQL settings for one chunk's transaction (SET LOCAL: they end with it)."""
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as c:
        # Durability of the last chunks may lag a server crash by a moment; consistency does not:
        # bills, ledger rows and the cursor commit together, so a lost chunk is simply billed again.
        c.execute("SET LOCAL synchronous_commit TO OFF")
        c.execute("SET LOCAL work_mem TO '64MB'")
        # A chunk's queries are index lookups of its accounts' rows by id (= ANY of an id array).
        # For a large array the planner prefers hashing the array and scanning the whole table
        # (installations, meters, ledger, contacts: millions of rows, per chunk); compiling the
        # queries (JIT) or handing them to parallel workers costs more than it saves, and a run
        # already has a worker per core.
        c.execute("SET LOCAL enable_seqscan TO OFF")
        c.execute("SET LOCAL jit TO OFF")
        c.execute("SET LOCAL max_parallel_workers_per_gather TO 0")


def process_partition(partition_id: int, *, force: bool = False, stop_after_chunks: int | None = None) -> str:
    """Claim and bill one partition chunk by chunk. Returns the partition's status afterwards."""
    if not claim_partition(partition_id, force=force):
        return BillRunPartition.objects.get(pk=partition_id).status
    me = worker_name()
    part = BillRunPartition.objects.select_related("run", "run__cycle").get(pk=partition_id)
    run = part.run
    segcache = SegmentCache(run)
    chunk = int(config()["bill"]["chunk_size"])
    done_chunks = 0
    try:
        while True:
            if stop_after_chunks is not None and done_chunks >= stop_after_chunks:
                return PartitionStatus.RUNNING
            with _timed("chunk"), transaction.atomic():  # "chunk" includes the commit
                _chunk_settings()
                part = BillRunPartition.objects.select_for_update().get(pk=partition_id)
                if part.claimed_by != me or part.status != PartitionStatus.RUNNING:
                    # our claim expired and another worker took the partition over: it goes on from
                    # the cursor, and this worker bills nothing more of it
                    log.warning("bill run partition %s: claim lost to %s", partition_id, part.claimed_by)
                    return part.status
                with _timed("fetch_accounts"):
                    rows, scanned_to = fetch_accounts(run, part.division_path, part.cursor, chunk)
                if scanned_to is None:
                    part.heartbeat_at = timezone.now()
                    transition(part, PARTITION_STATUS, PartitionStatus.DONE, actor=None, channel="system",
                               extra_fields=("heartbeat_at",), action="billrun.partition_done")  # fmt: skip
                    break
                part.cursor = scanned_to
                if not rows:  # every account of this stretch was billed already
                    part.heartbeat_at = timezone.now()
                    part.save(update_fields=["cursor", "heartbeat_at"])
                    continue
                lo, hi = rows[0][A_ID], rows[-1][A_ID]
                with _timed("compute"):
                    out = compute_chunk(run, rows, segcache, dry_run=False)
                with _timed("write"):
                    write_chunk(run, part, out)
                good = out.good.any()
                part.done += len(rows)
                part.bills += int(out.good.sum()) - out.statements
                part.statements += out.statements
                part.exceptions += len(out.exceptions)
                totals = {k: int(v) for k, v in part.totals.items()}
                for k, v in out.totals.items():
                    totals[k] = totals.get(k, 0) + v
                part.totals = totals
                part.heartbeat_at = timezone.now()
                part.save(
                    update_fields=["cursor", "done", "bills", "statements", "exceptions", "totals", "heartbeat_at"]
                )
                if good:
                    transaction.on_commit(lambda lo=lo, hi=hi: _enqueue_ebills(run.pk, lo, hi))
            done_chunks += 1
    except Exception as exc:
        log.exception("bill run partition %s failed", partition_id)
        # only while this worker still holds the claim: a partition taken over is the new worker's
        transition_set(BillRunPartition.objects.filter(pk=partition_id, claimed_by=me), PARTITION_STATUS,
                       PartitionStatus.FAILED, actor=None, channel="system", values={"error": str(exc)[:2000]},
                       action="billrun.partition_failed", reason=str(exc)[:200])  # fmt: skip
        raise
    finish_run_if_done(run.pk)
    return PartitionStatus.DONE


def _enqueue_ebills(run_id: int, lo: int, hi: int) -> None:
    from urja.core.jobs import send

    from .tasks import send_ebills

    send(send_ebills, run_id, lo, hi)  # a refused broker defers the call (core.jobs)


def sweep_partitions() -> dict:
    """Periodic job: re-enqueue the partitions of running runs whose heartbeat expired (the worker
    died; the task that takes them over resumes from the cursor), and finish the runs whose
    partitions are all done (a worker that died after its last chunk). Idempotent: a second task
    for the same partition finds it claimed and returns; bills are guarded by the cursor and the
    unique (account, period start, kind)."""
    from urja.core.jobs import enqueue_background

    from .tasks import process_partition as task

    stale = list(
        BillRunPartition.objects.filter(_expired(timezone.now()), run__status=RunStatus.RUNNING, run__dry_run=False)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    for pid in stale:
        enqueue_background(task, pid)  # deferred if the broker is down; off the scheduler thread otherwise
    open_statuses = [s for s in PartitionStatus.values if s != PartitionStatus.DONE]
    finished = []
    for run_id in (
        BillRun.objects.filter(status=RunStatus.RUNNING, dry_run=False)
        .exclude(partitions__status__in=open_statuses)
        .values_list("pk", flat=True)
    ):
        if finish_run_if_done(run_id).status != RunStatus.RUNNING:
            finished.append(run_id)
    return {"taken_over": stale, "finished": finished}


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
        run.statements = sum(p.statements for p in parts)
        run.exceptions = run.exception_rows.filter(resolved=False).count()
        run.totals = {k: (_milli(v) if k == "units_m" else _rs(v)) for k, v in totals.items()}
        run.finished_at = timezone.now()
        transition(
            run,
            RUN_STATUS,
            RunStatus.COMPLETED_WITH_EXCEPTIONS if run.exceptions else RunStatus.COMPLETED,
            actor=run.created_by,
            channel="system",
            extra_fields=("bills", "statements", "exceptions", "totals", "finished_at"),
            action="billrun.completed",
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
        with transaction.atomic():
            _chunk_settings()
            rows, scanned_to = fetch_accounts(run, None, cursor, chunk)
            out = compute_chunk(run, rows, segcache, dry_run=True) if rows else None
            transaction.set_rollback(True)  # nothing the computation touched is kept
        if scanned_to is None:
            break
        cursor = scanned_to
        if out is None:
            continue
        for k, v in out.totals.items():
            totals[k] += v
        counts["accounts"] += len(rows)
        prepaid = np.fromiter((r[A_PREPAID] for r in rows), dtype=bool, count=len(rows))
        counts["bills"] += int((out.good & ~prepaid).sum())
        counts["statements"] += int((out.good & prepaid).sum())
        counts["exceptions"] += len(out.exceptions)
        for a, k, m, _d in out.exceptions[: max(0, 500 - len(exceptions))]:
            exceptions.append({"account_id": a, "kind": k, "message": m})
    return {
        "counts": dict(counts),
        "totals": {k: (_milli(v) if k == "units_m" else _rs(v)) for k, v in totals.items()},
        "exceptions": exceptions,
    }
