"""Managers' operations figures (issue 14.6), read-only: reliability indices per feeder from the outages'
stored accounts, compensation paid, arrears ageing on payments' open items. Pure helpers are separate
from the queries so they can be tested exhaustively.

* Reliability indices as IEEE Std 1366-2012 (IEEE Guide for Electric Power Distribution Reliability
  Indices) defines them, per feeder and for the whole office in scope:
  SAIFI = Σ Nᵢ / N_T (customers interrupted by sustained interruptions ÷ customers served) and
  SAIDI = Σ rᵢ·Nᵢ / N_T (customer minutes of interruption ÷ customers served). Nᵢ and rᵢ come from
  `servicedesk.OutageAccount` — the accounts an outage stored when it was declared, each with its own
  loss of supply (its meter's last gasp, else the outage's start) and its own restoration (its meter's
  restore, else the outage's end); rows whose meter proved supply throughout ("never out") are not
  interrupted. A customer interruption counts when it is sustained: longer than `[reliability]
  sustained_minutes` (IEEE 1366: more than 5 minutes; shorter ones are momentary). Outages count in the
  range their start falls in, once restored. N_T: the feeder's accounts with a supply (not pending or
  disconnected) today. A feeder serving nobody has no index (never ÷ 0).
* Arrears ageing: one definition — payments' `open_items` (the allocation rule that splits every
  payment) replayed per account, the open items aged by their due date into billing's buckets.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from django.db.models import Count, DurationField, ExpressionWrapper, F, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from urja.billing.models import LedgerEntry
from urja.core import regdata
from urja.customers.models import Account
from urja.network.models import Feeder
from urja.payments import ageing
from urja.servicedesk.models import CompensationAward, OutageAccount
from urja.servicedesk.selectors import NO_SUPPLY_STATUSES

from .models import OutageAward

SUSTAINED_MINUTES = 5
MICROSECONDS_A_MINUTE = 60_000_000


@dataclass(frozen=True)
class Interruption:
    """One customer's interruption: the feeder and outage it belongs to, how long it lasted."""

    feeder_id: int
    outage_id: int
    duration: timedelta


@dataclass(frozen=True)
class Totals:
    """A feeder's (or the scope's) sustained interruptions: events, customers interrupted (Σ Nᵢ) and
    customer interruption duration (Σ rᵢ·Nᵢ, exact)."""

    events: int = 0
    interrupted: int = 0
    duration: timedelta = timedelta(0)


def saifi(interrupted: int, served: int) -> Decimal | None:
    return None if served <= 0 else (Decimal(interrupted) / served).quantize(Decimal("0.001"), ROUND_HALF_UP)


def saidi(duration: timedelta, served: int) -> Decimal | None:
    """Customer minutes of interruption ÷ customers served, to 0.1 minute (from exact microseconds)."""
    if served <= 0:
        return None
    return (Decimal(duration // timedelta(microseconds=1)) / MICROSECONDS_A_MINUTE / served).quantize(
        Decimal("0.1"), ROUND_HALF_UP
    )


def customer_minutes(duration: timedelta) -> Decimal:
    return (Decimal(duration // timedelta(microseconds=1)) / MICROSECONDS_A_MINUTE).quantize(
        Decimal("0.1"), ROUND_HALF_UP
    )


def sustained_minutes() -> int:
    return int(regdata.load("reports/energy.toml").get("reliability", {}).get("sustained_minutes", SUSTAINED_MINUTES))


def reliability(interruptions: Iterable[Interruption], sustained: int = SUSTAINED_MINUTES) -> dict[int, Totals]:
    """{feeder: Totals} of the sustained customer interruptions (pure: the reference the set-based
    `interruption_totals` is proven equal to)."""
    events: dict[int, set[int]] = defaultdict(set)
    ci: dict[int, int] = defaultdict(int)
    cmi: dict[int, timedelta] = defaultdict(timedelta)
    limit = timedelta(minutes=sustained)
    for i in interruptions:
        if i.duration <= limit:  # momentary (IEEE 1366: five minutes or less)
            continue
        events[i.feeder_id].add(i.outage_id)
        ci[i.feeder_id] += 1
        cmi[i.feeder_id] += i.duration
    return {fd: Totals(len(events[fd]), ci[fd], cmi[fd]) for fd in events}


def interruption_totals(*, feeders, since: datetime, until: datetime, sustained: int) -> dict[int, Totals]:
    """{feeder: Totals} from the stored rows, ONE grouped query: the rows of the restored outages of
    `feeders` (a queryset) that started in [since, until), not never-out, each lasting from its own
    failure to its own restoration (else the outage's) longer than `sustained` minutes."""
    lasted = ExpressionWrapper(
        Coalesce(F("restored_at"), F("outage__restored_at")) - F("failed_at"), output_field=DurationField()
    )
    rows = (
        OutageAccount.objects.filter(
            outage__feeder__in=feeders,
            outage__starts_at__gte=since,
            outage__starts_at__lt=until,
            outage__restored_at__isnull=False,
            supplied=False,
        )
        .annotate(lasted=lasted)
        .filter(lasted__gt=timedelta(minutes=sustained))
        .order_by()
        .values("outage__feeder_id")
        .annotate(events=Count("outage_id", distinct=True), interrupted=Count("id"), duration=Sum("lasted"))
    )
    return {r["outage__feeder_id"]: Totals(r["events"], r["interrupted"], r["duration"] or timedelta(0)) for r in rows}


def consumers_served(feeders) -> dict[int, int]:
    """{feeder: accounts with a supply to lose} (one grouped query)."""
    return dict(
        Account.objects.filter(feeder__in=feeders)
        .exclude(status__in=sorted(NO_SUPPLY_STATUSES))
        .order_by()
        .values_list("feeder_id")
        .annotate(n=Count("id"))
    )


def _figures(served: int, t: Totals) -> dict:
    return {
        "consumers": served,
        "interruptions": t.events,
        "interrupted": t.interrupted,
        "duration": t.duration,
        "customer_minutes": customer_minutes(t.duration),
        "saifi": saifi(t.interrupted, served),
        "saidi": saidi(t.duration, served),
    }


def feeder_reliability(*, feeders, since: datetime, until: datetime) -> list[dict]:
    """Per feeder of `feeders` (a queryset): consumers served, sustained outages, consumers interrupted,
    customer minutes, SAIFI, SAIDI in [since, until) — three queries whatever the number of feeders."""
    found = interruption_totals(feeders=feeders, since=since, until=until, sustained=sustained_minutes())
    served = consumers_served(feeders)
    return [
        {"feeder": f, **_figures(served.get(f.pk, 0), found.get(f.pk, Totals()))}
        for f in feeders.select_related("office").order_by("code")
    ]


def scope_reliability(rows: list[dict]) -> dict:
    """The office in scope as one system: Σ Nᵢ and Σ rᵢ·Nᵢ of its feeders over all the consumers they serve
    (not an average of the feeders' indices)."""
    served = sum(r["consumers"] for r in rows)
    interrupted = sum(r["interrupted"] for r in rows)
    duration = sum((r["duration"] for r in rows), timedelta(0))
    return {
        "consumers": served,
        "interruptions": sum(r["interruptions"] for r in rows),
        "interrupted": interrupted,
        "duration": duration,
        "customer_minutes": customer_minutes(duration),
        "saifi": saifi(interrupted, served),
        "saidi": saidi(duration, served),
        "sustained_minutes": sustained_minutes(),
    }


RELIABILITY_HEADER = ["Feeder", "Name", "Consumers", "Interruptions", "Consumers interrupted",
                      "Consumer minutes", "SAIFI", "SAIDI (min)"]  # fmt: skip


def reliability_export(rows: list[dict]) -> tuple[list[str], list[list]]:
    """The CSV / Excel table: one line per feeder and the scope's total."""
    total = scope_reliability(rows)
    lines = [
        [r["feeder"].code, r["feeder"].name, r["consumers"], r["interruptions"], r["interrupted"],
         r["customer_minutes"], r["saifi"], r["saidi"]]
        for r in rows
    ]  # fmt: skip
    lines.append(["Total", "", total["consumers"], total["interruptions"], total["interrupted"],
                  total["customer_minutes"], total["saifi"], total["saidi"]])  # fmt: skip
    return RELIABILITY_HEADER, lines


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
