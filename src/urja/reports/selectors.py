"""Reads of the reports app (no writes). Every read is scoped by office: a division's staff see their
division and what is under it; a node outside the scope answers like a nonexistent one."""

from __future__ import annotations

from decimal import Decimal

from django.db.models import QuerySet
from django.utils import timezone

from urja.core.scope import not_found, scope_offices

from .models import AccountingRun, EnergyBalance, Level
from .services import parse_period, previous_period

CHILD_LEVEL = {
    Level.UTILITY: (Level.CIRCLE, Level.DIVISION),
    Level.CIRCLE: (Level.DIVISION,),
    Level.DIVISION: (Level.SUBDIVISION, Level.FEEDER),
    Level.SUBDIVISION: (Level.SECTION, Level.FEEDER),
    Level.SECTION: (Level.FEEDER,),
    Level.FEEDER: (Level.DT,),
    Level.DT: (),
}


def current_period() -> str:
    today = timezone.localdate()
    return previous_period(f"{today.year:04d}-{today.month:02d}")


def latest_period() -> str:
    run = AccountingRun.objects.order_by("-period").first()
    return run.period if run else current_period()


def balances(user, *, period: str) -> QuerySet:
    parse_period(period)
    return scope_offices(user, EnergyBalance.objects.filter(period=period), "office_path")


def top_nodes(user, *, period: str) -> list[EnergyBalance]:
    """The highest nodes the user may see: the utility for head office, else their own office."""
    rows = balances(user, period=period).filter(category="").exclude(level__in=(Level.DT, Level.FEEDER))
    rows = list(rows.order_by("office_path"))
    if not rows:
        return []
    shortest = min(len(r.office_path) for r in rows)
    return [r for r in rows if len(r.office_path) == shortest]


def node(user, *, period: str, level: str, node_id: int) -> EnergyBalance:
    if level not in Level.values:
        raise not_found("node", f"{level}/{node_id}")
    row = balances(user, period=period).filter(level=level, node_id=node_id, category="").first()
    if row is None:
        raise not_found("node", f"{level}/{node_id}")
    return row


def children(user, *, period: str, parent: EnergyBalance) -> list[EnergyBalance]:
    """Offices below an office, its feeders (feeders of the office itself: a feeder's parent is its
    office), a feeder's DTs; worst AT&C loss first (unknown last)."""
    rows = balances(user, period=period).filter(
        category="", parent_level=parent.level, parent_id=parent.node_id, level__in=CHILD_LEVEL[parent.level]
    )
    return sorted(rows, key=lambda r: (r.atc_loss is None, -(r.atc_loss or 0), r.code))


def categories(user, *, period: str, parent: EnergyBalance) -> list[EnergyBalance]:
    return list(
        balances(user, period=period)
        .filter(level=parent.level, node_id=parent.node_id)
        .exclude(category="")
        .order_by("category")
    )


def trend(user, *, period: str, level: str, node_id: int, months: int = 12) -> list[dict]:
    """The node's last `months` periods up to `period` (missing months as empty rows)."""
    periods = [previous_period(period, k) if k else period for k in range(months - 1, -1, -1)]
    found = {
        r.period: r
        for r in scope_offices(
            user,
            EnergyBalance.objects.filter(level=level, node_id=node_id, category="", period__in=periods),
            "office_path",
        )
    }
    return [{"period": p, "row": found.get(p)} for p in periods]


def ranked_dts(user, *, period: str, limit: int = 50) -> list[EnergyBalance]:
    """DTs by AT&C loss, worst first (only DTs whose loss is known)."""
    return list(
        balances(user, period=period)
        .filter(level=Level.DT, category="", atc_loss__isnull=False)
        .order_by("-atc_loss", "code")[:limit]
    )


def flagged(user, *, period: str, limit: int = 200) -> list[EnergyBalance]:
    return list(
        balances(user, period=period)
        .filter(category="", input_status__in=("estimated", "missing"), level__in=(Level.DT, Level.FEEDER))
        .order_by("level", "code")[:limit]
    )


def percent(value: Decimal | None) -> str:
    return "—" if value is None else f"{value * 100:.2f}%"


def trend_chart(points: list[dict], width: int = 560, height: int = 180) -> dict:
    """AT&C loss, BE and CE over the months as SVG polylines (server-drawn, no JavaScript)."""
    n = len(points)
    step = (width - 40) / max(n - 1, 1)

    def line(attr: str) -> str:
        coords = []
        for i, p in enumerate(points):
            value = getattr(p["row"], attr) if p["row"] is not None else None
            if value is not None:
                v = max(min(float(value), 1.2), -0.2)
                coords.append(f"{30 + i * step:.1f},{height - 20 - (v + 0.2) / 1.4 * (height - 40):.1f}")
        return " ".join(coords)

    return {
        "width": width,
        "height": height,
        "loss": line("atc_loss"),
        "be": line("billing_efficiency"),
        "ce": line("collection_efficiency"),
        "labels": [{"x": round(30 + i * step, 1), "text": p["period"][2:]} for i, p in enumerate(points)],
    }


def trend_series(points: list[dict]) -> dict:
    """The same months as plain series for the vendored chart library (uPlot): percentages, None = unknown."""

    def series(attr: str) -> list[float | None]:
        out = []
        for p in points:
            value = getattr(p["row"], attr) if p["row"] is not None else None
            out.append(None if value is None else round(float(value) * 100, 2))
        return out

    return {
        "periods": [p["period"] for p in points],
        "atc_loss": series("atc_loss"),
        "billing_efficiency": series("billing_efficiency"),
        "collection_efficiency": series("collection_efficiency"),
    }


def inspections(user, *, period: str = "", status: str = "open") -> QuerySet:
    """The inspection list in the user's scope (by the account's office)."""
    from urja.core.scope import scope_accounts

    from .models import Inspection

    qs = scope_accounts(user, Inspection.objects.select_related("account", "transformer"), "account__")
    if period:
        qs = qs.filter(period=period)
    if status:
        qs = qs.filter(status=status)
    return qs.order_by("transformer__code", "account__consumer_number")


def inspection(user, pk: int):
    item = inspections(user, status="").filter(pk=pk).first()
    if item is None:
        raise not_found("inspection", pk)
    return item


def feeders_under(user, *, period: str, office: EnergyBalance, limit: int = 200) -> list[EnergyBalance]:
    """Every feeder in an office's subtree, worst AT&C loss first (the division → feeder drill-down)."""
    if office.level in (Level.DT, Level.FEEDER):
        return []
    rows = balances(user, period=period).filter(
        category="", level=Level.FEEDER, office_path__startswith=office.office_path
    )
    return sorted(rows, key=lambda r: (r.atc_loss is None, -(r.atc_loss or 0), r.code))[:limit]


# --- the outage board: current, planned and recent outages by feeder → DT -------------------------

OUTAGE_BOARD_DAYS = 7


def outage_board(user, *, now=None, days: int = OUTAGE_BOARD_DAYS) -> list[dict]:
    """Outages on the feeders of the user's office: in force, announced ahead (planned), and restored or
    cancelled in the last `days` days — grouped by feeder, then the feeder-wide ones and each DT's.
    Each row: the start and restoration as the meters measured them where the detector declared it
    (`DetectedOutage`), else as recorded; its duration (running for one in force); declared by the
    meters or by hand (who). Two queries: the outages with their detection, the network names."""
    from datetime import timedelta

    from django.db.models import Q

    from urja.servicedesk.models import Outage

    now = now or timezone.now()
    since = now - timedelta(days=days)
    S = Outage.Status
    outages = (
        scope_offices(user, Outage.objects.all(), "feeder__office__path")
        .filter(
            Q(status__in=[S.ACTIVE, S.ANNOUNCED])
            | Q(status=S.RESTORED, restored_at__gte=since)
            | Q(status=S.CANCELLED, starts_at__gte=since)
        )
        .select_related("feeder", "transformer", "created_by", "detection")
        .order_by("feeder__code", "transformer__code", "-starts_at")
    )
    outages = list(outages)
    from urja.servicedesk.selectors import outage_account_counts

    counts = outage_account_counts(o.pk for o in outages)
    feeders: dict[int, dict] = {}
    for o in outages:
        detection = getattr(o, "detection", None)
        start = detection.first_event_at if detection else o.starts_at
        restored = (detection.restored_at if detection and detection.restored_at else None) or o.restored_at
        if detection and detection.measured_minutes is not None:
            minutes = detection.measured_minutes
        elif restored:
            minutes = int((restored - start).total_seconds() // 60)
        elif o.status == S.ACTIVE:
            minutes = int((now - start).total_seconds() // 60)
        else:
            minutes = None
        row = {
            "outage": o,
            "start": start,
            "restored": restored,
            "minutes": minutes,
            "running": o.status == S.ACTIVE,
            "ahead": o.status == S.ANNOUNCED,
            "by_meters": detection is not None,
            "meters": detection.meters_failed if detection else None,
            "by": (o.created_by.get_username() if o.created_by else "") if detection is None else "",
            # the accounts stored at the declaration (an outage from before the table: its count only)
            "affected": counts[o.pk]["affected"] if o.pk in counts else o.affected_accounts,
            "restored_accounts": counts[o.pk]["restored"] if o.pk in counts else None,
        }
        group = feeders.setdefault(
            o.feeder_id, {"feeder": o.feeder, "whole": [], "dts": {}, "active": 0, "affected": 0}
        )
        if o.transformer_id:
            group["dts"].setdefault(o.transformer_id, {"dt": o.transformer, "rows": []})["rows"].append(row)
        else:
            group["whole"].append(row)
        if row["running"]:
            group["active"] += 1
            group["affected"] += o.affected_accounts
    for group in feeders.values():
        group["dts"] = list(group["dts"].values())
    return list(feeders.values())


# --- one outage: its stored accounts, their restoration and award, its complaints ----------------------


def outage(user, number: str):
    """The outage `number` on a feeder of the user's office (else not found, like a nonexistent one)."""
    from urja.servicedesk.models import Outage

    found = (
        scope_offices(user, Outage.objects.all(), "feeder__office__path")
        .select_related("feeder", "transformer", "created_by", "detection")
        .filter(number=number)
        .first()
    )
    if found is None:
        raise not_found("outage", number)
    return found


def outage_summary(outage) -> dict:
    """Affected, restored, never-out and compensated accounts (stored rows) and the compensation awarded."""
    from urja.servicedesk.selectors import outage_account_counts

    none = {"affected": 0, "restored": 0, "supplied": 0, "compensated": 0, "awarded": None}
    return outage_account_counts([outage.pk]).get(outage.pk, none)


def outage_complaints(outage):
    """The complaints linked to the outage (joined on lodging, or when it was declared)."""
    from urja.servicedesk.models import ServiceRequest

    return ServiceRequest.objects.filter(outage=outage).select_related("consumer", "account").order_by("registered_at")


def outage_account_rows(outage):
    """The outage's stored accounts, by consumer number (a page of them, or all for an export)."""
    from urja.servicedesk.selectors import outage_accounts

    return outage_accounts(outage).select_related("meter")


def outage_account_row(outage, row) -> dict:
    """One stored account as the page and the export show it: its own failure and restoration, the
    duration counted from the outage's start (what the compensation counts), the award."""
    minutes = int((row.restored_at - outage.starts_at).total_seconds() // 60) if row.restored_at else None
    return {
        "row": row,
        "consumer_number": row.account.consumer_number,
        "name": row.account.consumer.name,
        "dt": row.transformer.code if row.transformer_id else "",
        "meter": row.meter.serial if row.meter_id else "",
        "failed_at": row.failed_at,
        "restored_at": row.restored_at,
        "minutes": minutes,
        "award": row.award,
    }
