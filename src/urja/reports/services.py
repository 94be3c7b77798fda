"""Energy accounting per month (issue 14.2): the only writer of EnergyBalance / AccountingRun.

`compute_period(period="2026-11")` reduces the month's bills and payments to atoms with two GROUP BY
queries (the same on PostgreSQL and SQLite), reads the boundary meters' openings and closings with
one correlated query per side, rolls everything up the network (`accounting.rollup`) and replaces the
period's rows in one transaction: idempotent, so the job may rerun it at any time.
"""

from __future__ import annotations

import calendar
import re
import time as _time
from collections import defaultdict
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from django.db import transaction
from django.db.models import Count, DecimalField, F, OuterRef, Q, Subquery, Sum, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from urja.billing.models import Bill
from urja.core import regdata
from urja.core.calendars import IST
from urja.core.errors import DomainError
from urja.metering.models import BoundaryInstallation, BoundaryReading
from urja.network.models import DistributionTransformer, Feeder, Office
from urja.payments.models import Payment, PaymentStatus

from . import accounting, assessment
from .accounting import ZERO, Atom, Input
from .models import AccountingRun, EnergyBalance, InputStatus, Level

PERIOD_RE = re.compile(r"^(20[0-9]{2})-(0[1-9]|1[0-2])$")
KWH = Decimal("0.001")
MONEY = Decimal("0.01")


def config() -> dict:
    return regdata.load("reports/energy.toml")


def parse_period(period: str) -> tuple[date, date]:
    m = PERIOD_RE.match(period or "")
    if not m:
        raise DomainError("period must be YYYY-MM", code="invalid_period", details={"period": period})
    y, mo = int(m.group(1)), int(m.group(2))
    return date(y, mo, 1), date(y, mo, calendar.monthrange(y, mo)[1])


def previous_period(period: str, back: int = 1) -> str:
    first, _ = parse_period(period)
    y, m = first.year, first.month - back
    while m < 1:
        y, m = y - 1, m + 12
    return f"{y:04d}-{m:02d}"


def month_bounds(period: str) -> tuple[datetime, datetime]:
    """[start, end) of the month in IST as aware datetimes."""
    first, last = parse_period(period)
    return datetime.combine(first, time(), IST), datetime.combine(last + timedelta(days=1), time(), IST)


# --- atoms: the month's bills and payments per (DT, feeder, section, category) -------------------

KEYS = ("account__transformer_id", "account__feeder_id", "account__section_id", "account__category")
DEC = DecimalField(max_digits=18, decimal_places=3)


def _s(expr_filter: Q):
    return Coalesce(Sum("units", filter=expr_filter), Value(ZERO), output_field=DEC)


def bill_atoms(period: str) -> list[dict]:
    """One GROUP BY over the month's bills (period ending in the month). Unmetered bills without
    units are grouped further by package and load unit so they can be assessed (`assessment`)."""
    first, last = parse_period(period)
    bills = Bill.objects.filter(period_end__gte=first, period_end__lte=last)
    prepaid = Q(prepaid=True) | Q(kind=Bill.Kind.STATEMENT)
    unmetered = ~prepaid & (Q(metered=False) | Q(units_status="unmetered"))
    estimated = ~prepaid & ~unmetered & Q(units_status__in=("estimated", "provisional"))
    metered = ~prepaid & ~unmetered & ~Q(units_status__in=("estimated", "provisional"))
    return list(
        bills.values(*KEYS)
        .annotate(
            prepaid_kwh=_s(prepaid),
            assessed_billed=_s(unmetered & Q(units__gt=0)),
            estimated_kwh=_s(estimated),
            metered_kwh=_s(metered),
            billed_amount=Coalesce(Sum("total"), Value(ZERO), output_field=DEC),
            accounts=Count("id"),
        )
        .order_by()
    )


def unassessed_groups(period: str) -> list[dict]:
    """Unmetered bills with no units: the sanctioned load and count per atom, package and load unit."""
    first, last = parse_period(period)
    return list(
        Bill.objects.filter(period_end__gte=first, period_end__lte=last, units=0)
        .filter(Q(metered=False) | Q(units_status="unmetered"))
        .exclude(Q(prepaid=True) | Q(kind=Bill.Kind.STATEMENT))
        .values(*KEYS, "account__package_code", "load_unit")
        .annotate(load=Sum("sanctioned_load"), n=Count("id"))
        .order_by()
    )


def payment_atoms(period: str) -> list[dict]:
    start, end = month_bounds(period)
    return list(
        Payment.objects.filter(
            status=PaymentStatus.POSTED, received_at__gte=start, received_at__lt=end, account__isnull=False
        )
        .values(*KEYS)
        .annotate(collected=Coalesce(Sum("amount"), Value(ZERO), output_field=DEC))
        .order_by()
    )


def _packages(period: str) -> dict:
    from urja.tariffs.services import schedule_of, versions_in_force

    first, last = parse_period(period)
    found = {}
    for version in versions_in_force(first, last):
        try:
            package = schedule_of(version).package
        except Exception:  # a schedule that fails to parse is the tariffs app's error, not ours
            continue
        if package is not None:
            found[package.code] = found[package.package_id] = package
    return found


def atoms(period: str) -> list[Atom]:
    first, last = parse_period(period)
    days = (last - first).days + 1
    table, units = assessment.norms(config())
    packages = None
    sums: dict[tuple, dict] = defaultdict(lambda: defaultdict(lambda: ZERO))
    for row in bill_atoms(period):
        s = sums[tuple(row[k] for k in KEYS)]
        for f in ("prepaid_kwh", "estimated_kwh", "metered_kwh", "billed_amount"):
            s[f] += row[f]
        s["assessed_kwh"] += row["assessed_billed"]
        s["accounts"] += row["accounts"]
    for row in unassessed_groups(period):
        key = tuple(row[k] for k in KEYS)
        code = row["account__package_code"] or ""
        if code:
            packages = packages if packages is not None else _packages(period)
        package = packages.get(code) if code and packages else None
        if package is not None:
            kwh = assessment.package_kwh(
                max_load_w=package.max_load_w, hours_per_day=package.hours_per_day, days=days, count=row["n"]
            )
        else:
            kwh = assessment.category_kwh(
                load=row["load"] or ZERO,
                load_unit=row["load_unit"],
                category=key[3],
                days=days,
                table=table,
                units=units,
            )
        sums[key]["assessed_kwh"] += kwh
    for row in payment_atoms(period):
        sums[tuple(row[k] for k in KEYS)]["collected_amount"] += row["collected"]
    out = []
    for (dt, feeder, section, category), s in sums.items():
        out.append(
            Atom(
                transformer_id=dt,
                feeder_id=feeder,
                section_id=section,
                category=category,
                metered_kwh=s["metered_kwh"],
                estimated_kwh=s["estimated_kwh"],
                assessed_kwh=s["assessed_kwh"],
                prepaid_kwh=s["prepaid_kwh"],
                billed_amount=s["billed_amount"],
                collected_amount=s["collected_amount"],
                accounts=int(s["accounts"]),
            )
        )
    return out


# --- inputs: boundary meters ----------------------------------------------------------------------


def boundary_inputs(period: str) -> tuple[dict[int, Input], dict[int, Input]]:
    """Measured inputs of DTs and feeders with a boundary meter in the month: (closing − opening) ×
    the meter's multiplying factor, the opening being the last reading before the month (or the
    installation's initial register when installed during it), the closing the last reading in it.
    A node whose meter has no closing is absent here (then estimated or missing)."""
    start, end = month_bounds(period)
    readings = BoundaryReading.objects.filter(installation=OuterRef("pk")).order_by("-read_at").values("kwh")
    insts = (
        BoundaryInstallation.objects.filter(installed_at__lt=end)
        .filter(Q(removed_at__isnull=True) | Q(removed_at__gte=start))
        .annotate(
            opening=Subquery(readings.filter(read_at__lte=start)[:1]),
            closing=Subquery(readings.filter(read_at__gt=start, read_at__lte=end)[:1]),
            mf=F("meter__multiplying_factor"),
            digits=F("meter__register_digits"),
        )
        .values("transformer_id", "feeder_id", "installed_at", "initial_kwh", "opening", "closing", "mf", "digits")
    )
    per_node: dict[tuple[str, int], list] = defaultdict(list)
    for i in insts:
        key = ("dt", i["transformer_id"]) if i["transformer_id"] else ("feeder", i["feeder_id"])
        per_node[key].append(i)
    dts, feeders = {}, {}
    for (kind, node_id), items in per_node.items():
        total, flags, complete = ZERO, [], True
        for i in items:
            opening = i["opening"] if i["opening"] is not None and i["installed_at"] < start else i["initial_kwh"]
            if i["closing"] is None:
                complete = False
                break
            delta = i["closing"] - opening
            if delta < 0:  # the register wrapped
                delta += Decimal(10) ** i["digits"]
                flags.append({"code": "register_rollover", "message": "the meter's register wrapped in the month"})
            total += delta * i["mf"]
        if complete:
            (dts if kind == "dt" else feeders)[node_id] = Input(total.quantize(KWH), InputStatus.MEASURED, tuple(flags))
    return dts, feeders


def _estimate_missing(period: str, network: accounting.Network, dts: dict, feeders: dict) -> None:
    """Nodes with a boundary meter but no usable reading this month: the last measured input within
    `estimate_from_months_back` months, flagged. Nodes never metered stay missing."""
    back = int(config()["input"]["estimate_from_months_back"])
    metered = BoundaryInstallation.objects.filter(
        Q(removed_at__isnull=True) | Q(removed_at__gte=month_bounds(period)[0])
    )
    metered_dts = set(metered.exclude(transformer_id=None).values_list("transformer_id", flat=True))
    metered_feeders = set(metered.exclude(feeder_id=None).values_list("feeder_id", flat=True))
    wanted = {("dt", i) for i in metered_dts - set(dts)} | {("feeder", i) for i in metered_feeders - set(feeders)}
    if not wanted:
        return
    periods = [previous_period(period, k) for k in range(1, back + 1)]
    earlier = (
        EnergyBalance.objects.filter(
            period__in=periods, category="", input_status=InputStatus.MEASURED, level__in=("dt", "feeder")
        )
        .values_list("level", "node_id", "period", "input_kwh")
        .order_by("-period")
    )
    for level, node_id, p, kwh in earlier:
        key = (level, node_id)
        if key in wanted:
            wanted.discard(key)
            note = {
                "code": "estimated_previous",
                "message": f"no reading this month: the measured input of {p} is used",
            }
            (dts if level == "dt" else feeders)[node_id] = Input(kwh, InputStatus.ESTIMATED, (note,))
    for level, node_id in wanted:
        note = {
            "code": "no_input_reading",
            "message": f"the boundary meter has no reading this month nor a measured month in the last {back}",
        }
        (dts if level == "dt" else feeders)[node_id] = Input(None, InputStatus.MISSING, (note,))


def network() -> tuple[accounting.Network, dict, dict, dict]:
    dts = {d["id"]: d for d in DistributionTransformer.objects.values("id", "code", "feeder_id")}
    fds = {f["id"]: f for f in Feeder.objects.values("id", "code", "name", "office_id")}
    offices = {o["id"]: o for o in Office.objects.values("id", "code", "name", "level", "parent_id", "path")}
    net = accounting.Network(
        dt_feeder={i: d["feeder_id"] for i, d in dts.items()},
        feeder_office={i: f["office_id"] for i, f in fds.items()},
        office_parent={i: o["parent_id"] for i, o in offices.items()},
        office_level={i: o["level"] for i, o in offices.items()},
    )
    return net, dts, fds, offices


# --- the job --------------------------------------------------------------------------------------


def _row(period, node, sums, category, names, now) -> EnergyBalance:
    level, node_id = node.level, node.node_id
    code, name, path = names(level, node_id)
    total = category == ""
    inp = node.input if total else Input(None, InputStatus.NOT_APPLICABLE)
    be, ce, loss = accounting.ratios(sums.billed_kwh, inp.kwh, sums.billed_amount, sums.collected_amount)
    return EnergyBalance(
        period=period,
        level=level,
        node_id=node_id,
        code=code,
        name=name[:120],
        parent_level=node.parent[0] if node.parent else "",
        parent_id=node.parent[1] if node.parent else None,
        office_path=path,
        category=category,
        input_kwh=inp.kwh,
        input_status=inp.status,
        flags=list(inp.flags),
        metered_kwh=sums.metered_kwh.quantize(KWH),
        estimated_kwh=sums.estimated_kwh.quantize(KWH),
        assessed_kwh=sums.assessed_kwh.quantize(KWH),
        prepaid_kwh=sums.prepaid_kwh.quantize(KWH),
        billed_kwh=sums.billed_kwh.quantize(KWH),
        billed_amount=sums.billed_amount.quantize(MONEY),
        collected_amount=sums.collected_amount.quantize(MONEY),
        accounts=sums.accounts,
        billing_efficiency=be if total else None,
        collection_efficiency=ce,
        atc_loss=loss if total else None,
        computed_at=now,
    )


def _store(rows: list[EnergyBalance]) -> None:
    """Insert the period's rows: COPY on PostgreSQL (tens of thousands of rows), bulk_create elsewhere."""
    from django.db import connection

    if connection.vendor != "postgresql":
        EnergyBalance.objects.bulk_create(rows, batch_size=2000)
        return
    import json

    fields = [f for f in EnergyBalance._meta.concrete_fields if not f.primary_key]
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    sql = f"COPY {EnergyBalance._meta.db_table} ({columns}) FROM STDIN"
    with connection.cursor() as cursor, cursor.cursor.copy(sql) as copy:
        for row in rows:
            copy.write_row(
                [
                    json.dumps(getattr(row, f.attname)) if f.attname == "flags" else getattr(row, f.attname)
                    for f in fields
                ]
            )


def compute_period(*, period: str) -> AccountingRun:
    """Compute and store the month's energy accounting (replaces the period's rows)."""
    parse_period(period)
    started = _time.monotonic()
    net, dts, fds, offices = network()
    the_atoms = atoms(period)
    dt_in, fd_in = boundary_inputs(period)
    _estimate_missing(period, net, dt_in, fd_in)
    nodes = accounting.rollup(the_atoms, net, dt_in, fd_in)

    def names(level: str, node_id: int) -> tuple[str, str, str]:
        if level == Level.DT:
            d = dts[node_id]
            f = fds[d["feeder_id"]]
            return d["code"], d["code"], offices[f["office_id"]]["path"]
        if level == Level.FEEDER:
            f = fds[node_id]
            return f["code"], f["name"], offices[f["office_id"]]["path"]
        o = offices[node_id]
        return o["code"], o["name"], o["path"]

    now = timezone.now()
    rows = []
    for node in nodes.values():
        rows.append(_row(period, node, node.total, "", names, now))
        for category, sums in sorted(node.by_category.items()):
            rows.append(_row(period, node, sums, category, names, now))
    flagged = sum(
        1 for r in rows if r.category == "" and r.input_status in (InputStatus.ESTIMATED, InputStatus.MISSING)
    )
    utility = [n for n in nodes.values() if n.parent is None and n.level not in ("dt", "feeder")]
    totals = {}
    if utility:
        u = utility[0]
        be, ce, loss = accounting.ratios(
            u.total.billed_kwh, u.input.kwh, u.total.billed_amount, u.total.collected_amount
        )
        totals = {
            "input_kwh": str(u.input.kwh) if u.input.kwh is not None else None,
            "billed_kwh": str(u.total.billed_kwh),
            "billed_amount": str(u.total.billed_amount),
            "collected_amount": str(u.total.collected_amount),
            "billing_efficiency": str(be) if be is not None else None,
            "collection_efficiency": str(ce) if ce is not None else None,
            "atc_loss": str(loss) if loss is not None else None,
        }
    with transaction.atomic():
        EnergyBalance.objects.filter(period=period).delete()
        _store(rows)
        run, _ = AccountingRun.objects.update_or_create(
            period=period,
            defaults={
                "computed_at": now,
                "seconds": _time.monotonic() - started,
                "rows": len(rows),
                "flagged": flagged,
                "totals": totals,
            },
        )
    return run


def recompute_recent(*, months: int = 2, today: date | None = None) -> list[str]:
    """The job: this month so far and the previous month(s) (late bills and payments change them)."""
    today = today or timezone.localdate()
    current = f"{today.year:04d}-{today.month:02d}"
    done = []
    for k in range(months - 1, -1, -1):
        p = previous_period(current, k) if k else current
        compute_period(period=p)
        done.append(p)
    return done
