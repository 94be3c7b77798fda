"""Managers' operations figures (issue 14.6), read-only: reliability indices per feeder from measured
outages, compensation paid, arrears ageing on payments' open items. Pure helpers are separate from
the queries so they can be tested exhaustively.

* SAIFI = Σ consumers interrupted / consumers served; SAIDI = Σ consumers interrupted × minutes /
  consumers served — per feeder, for outages that started in the range and lasted at least
  `sustained_minutes` (the duration measured from the meters where the detector saw the outage,
  otherwise start to restoration). A feeder serving no consumer has no index (never ÷ 0).
* Arrears ageing: one definition — payments' `open_items` (the allocation rule that splits every
  payment) replayed per account, the open items aged by their due date into billing's buckets.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db.models import Count, Sum
from django.utils import timezone

from urja.billing.models import LedgerEntry
from urja.core import regdata
from urja.customers.models import Account
from urja.network.models import Feeder
from urja.payments import ageing
from urja.servicedesk.models import CompensationAward, Outage

from .models import DetectedOutage, OutageAward

SUSTAINED_MINUTES = 5


@dataclass(frozen=True)
class Interruption:
    feeder_id: int
    consumers: int
    minutes: int


def reliability(served: dict[int, int], interruptions: Iterable[Interruption], sustained: int = SUSTAINED_MINUTES):
    """{feeder: (interruptions, SAIFI, SAIDI minutes)}; SAIFI/SAIDI None for a feeder serving nobody."""
    count: dict[int, int] = defaultdict(int)
    ci: dict[int, int] = defaultdict(int)
    cmi: dict[int, int] = defaultdict(int)
    for i in interruptions:
        if i.minutes < sustained:
            continue
        count[i.feeder_id] += 1
        ci[i.feeder_id] += i.consumers
        cmi[i.feeder_id] += i.consumers * i.minutes
    out = {}
    for feeder, n in served.items():
        if n <= 0:
            out[feeder] = (count[feeder], None, None)
        else:
            out[feeder] = (
                count[feeder],
                (Decimal(ci[feeder]) / n).quantize(Decimal("0.001")),
                (Decimal(cmi[feeder]) / n).quantize(Decimal("0.1")),
            )
    return out


def feeder_reliability(*, feeders, since: datetime, until: datetime) -> list[dict]:
    """Per feeder of `feeders` (a queryset): outages, SAIFI, SAIDI in [since, until)."""
    feeders = list(feeders.select_related("office"))
    ids = [f.pk for f in feeders]
    served = dict(
        Account.objects.filter(feeder_id__in=ids, status="active").values_list("feeder_id").annotate(n=Count("id"))
    )
    on_dt = dict(
        Account.objects.filter(feeder_id__in=ids, status="active", transformer__isnull=False)
        .values_list("transformer_id")
        .annotate(n=Count("id"))
    )
    measured = dict(DetectedOutage.objects.values_list("outage_id", "measured_minutes"))
    interruptions = []
    for o in Outage.objects.filter(
        feeder_id__in=ids, starts_at__gte=since, starts_at__lt=until, restored_at__isnull=False
    ).values("pk", "feeder_id", "transformer_id", "starts_at", "restored_at"):
        minutes = measured.get(o["pk"])
        if minutes is None:
            minutes = int((o["restored_at"] - o["starts_at"]).total_seconds() // 60)
        consumers = on_dt.get(o["transformer_id"], 0) if o["transformer_id"] else served.get(o["feeder_id"], 0)
        interruptions.append(Interruption(o["feeder_id"], consumers, minutes))
    sustained = int(
        regdata.load("reports/energy.toml").get("reliability", {}).get("sustained_minutes", SUSTAINED_MINUTES)
    )
    figures = reliability({f.pk: served.get(f.pk, 0) for f in feeders}, interruptions, sustained)
    return [
        {
            "feeder": f,
            "consumers": served.get(f.pk, 0),
            "interruptions": figures[f.pk][0],
            "saifi": figures[f.pk][1],
            "saidi": figures[f.pk][2],
        }
        for f in sorted(feeders, key=lambda f: f.code)
    ]


def compensation_paid(*, accounts, since: datetime, until: datetime) -> dict[str, Decimal]:
    """Compensation credited in the range to `accounts`: for late requests and for outages."""
    requests = CompensationAward.objects.filter(account__in=accounts, created_at__gte=since, created_at__lt=until)
    outages = OutageAward.objects.filter(account__in=accounts, created_at__gte=since, created_at__lt=until)
    a = requests.aggregate(s=Sum("amount"))["s"] or Decimal(0)
    b = outages.aggregate(s=Sum("amount"))["s"] or Decimal(0)
    return {"requests": a, "outages": b, "total": a + b, "outage_awards": outages.count()}


# arrears ageing: payments' one definition (open items aged by due date), re-exported for the pages
age_items = ageing.age_items
arrears_ageing = ageing.arrears_ageing


def feeders_in_scope(user):
    from urja.core.scope import scope_offices

    return scope_offices(user, Feeder.objects.all(), "office__path")


def connections_pending(*, user, now: datetime | None = None) -> dict:
    """Open new-connection applications in the user's scope against their timelines: by status, and how
    many are past the Standards' connection date or the Rules' cap (one grouped query)."""
    from django.db.models import Q

    from urja.connections.models import OPEN_APPLICATION, ApplicationStatus
    from urja.connections.selectors import applications_in_scope

    now = now or timezone.now()
    rows = (
        applications_in_scope(user)
        .filter(status__in=OPEN_APPLICATION)
        .order_by()
        .values("status")
        .annotate(
            n=Count("id"),
            late=Count("id", filter=Q(connection_due_at__lt=now)),
            past_cap=Count("id", filter=Q(cap_due_at__lt=now)),
        )
    )
    found = {r["status"]: r for r in rows}
    labels = dict(ApplicationStatus.choices)
    by_status = [
        {
            "status": s,
            "label": labels[s],
            "open": found.get(s, {}).get("n", 0),
            "late": found.get(s, {}).get("late", 0),
            "past_cap": found.get(s, {}).get("past_cap", 0),
        }
        for s in OPEN_APPLICATION
    ]
    total = sum(r["open"] for r in by_status)
    late = sum(r["late"] for r in by_status)
    return {
        "rows": by_status,
        "open": total,
        "late": late,
        "past_cap": sum(r["past_cap"] for r in by_status),
        "on_time_pct": round(100 * (total - late) / total, 1) if total else None,  # never ÷ 0
    }


def prepaid_summary(*, accounts, since: datetime, until: datetime) -> dict:
    """Prepaid wallets of `accounts`: money held (the ledger's credit), wallets in debt, supply state,
    and disconnections in the range (the wallets' remote commands and the field/remote orders)."""
    from urja.connections.models import Order, OrderKind, OrderStatus
    from urja.payments.models import PrepaidWallet

    wallets = PrepaidWallet.objects.filter(account__in=accounts)
    supply = dict(wallets.order_by().values_list("supply").annotate(n=Count("id")))
    owed = (
        LedgerEntry.objects.filter(account__wallet__in=wallets)
        .order_by()
        .values("account_id")
        .annotate(s=Sum("amount"))
        .values_list("s", flat=True)
    )
    held = in_debt = Decimal("0.00")
    debtors = 0
    for s in owed:  # one row per wallet with entries; s > 0: owes the utility, s < 0: money in the wallet
        if s < 0:
            held += -s
        elif s > 0:
            in_debt += s
            debtors += 1
    orders = Order.objects.filter(
        account__in=accounts, kind=OrderKind.DISCONNECT, status=OrderStatus.DONE, done_at__gte=since, done_at__lt=until
    )
    return {
        "wallets": sum(supply.values()),
        "connected": supply.get(PrepaidWallet.Supply.CONNECTED, 0),
        "disconnected": supply.get(PrepaidWallet.Supply.DISCONNECTED, 0),
        "balance_held": held,
        "debt": in_debt,
        "in_debt": debtors,
        "remote_disconnects": wallets.filter(
            last_command="disconnect", last_command_at__gte=since, last_command_at__lt=until
        ).count(),
        "disconnection_orders": orders.count(),
    }
