"""Read-only queries of the site console."""

from datetime import timedelta
from decimal import Decimal

from django.db.models import OuterRef, Subquery, Sum
from django.utils import timezone

from urja.billing.models import LedgerEntry
from urja.core.errors import NotFound
from urja.core.models import StaffProfile
from urja.metering.models import Installation, MeterCommand
from urja.payments import selectors as payments
from urja.payments.models import Payment, PaymentStatus

from . import services
from .models import ChangeStatus, InstalmentPlan, PackageChange, SiteCustomer, WaterDay

OPEN = [ChangeStatus.REQUESTED, ChangeStatus.APPROVED, ChangeStatus.SCHEDULED, ChangeStatus.PROGRAMMING]


def _balances(customers: list[SiteCustomer]) -> dict[int, Decimal]:
    rows = (
        LedgerEntry.objects.filter(account_id__in=[c.account_id for c in customers])
        .values("account_id")
        .annotate(total=Sum("amount"))
    )
    return {r["account_id"]: r["total"] or Decimal(0) for r in rows}


def customer_row(c: SiteCustomer, owed: Decimal | None = None) -> dict:
    owed = services.credit_of(c) if owed is None else owed
    return {
        "balance": -owed,
        "customer_id": c.customer_id,
        "consumer_number": c.account.consumer_number,
        "name": c.account.consumer.name,
        "status": c.account.status,
        "package_code": c.package_code,
        "prepaid": c.account.is_prepaid,
        "owed": owed,
        "flagged": c.flagged_at is not None,
    }


def customers(site, *, status: str = "", to_deactivate: bool = False) -> list[dict] | list:
    qs = SiteCustomer.objects.filter(site=site).select_related("account__consumer", "site")
    if status == "inactive":
        qs = qs.exclude(account__status__in=["active", "banned"])
    elif status:
        qs = qs.filter(account__status=status)
    if to_deactivate:
        qs = qs.filter(flagged_at__isnull=False, account__status="active")
    return list(qs)


def customer_rows(site, **kw) -> list[dict]:
    found = customers(site, **kw)
    owed = _balances(found)
    return [customer_row(c, owed.get(c.account_id, Decimal(0))) for c in found]


def site_summary(site) -> dict:
    counts = {"active": 0, "inactive": 0, "banned": 0}
    for status in SiteCustomer.objects.filter(site=site).values_list("account__status", flat=True):
        key = status if status in ("active", "banned") else "inactive"
        counts[key] += 1
    return {
        "code": site.code,
        "name": site.name,
        "credit_limit": services.credit_limit(site),
        "customers": counts,
        "to_deactivate": SiteCustomer.objects.filter(
            site=site, flagged_at__isnull=False, account__status="active"
        ).count(),
        "open_package_changes": PackageChange.objects.filter(customer__site=site, status__in=OPEN).count(),
    }


def site_package_changes(site):
    """Every package change of the site's customers, newest first (a queryset: the console's list pages it)."""
    return PackageChange.objects.filter(customer__site=site).select_related(
        "customer__account__consumer", "load_command", "hours_command"
    )


def package_changes(site, *, status: str = ""):
    qs = site_package_changes(site)
    return qs.filter(status=status) if status else qs[:200]


def package_change(site, number: str) -> PackageChange:
    found = PackageChange.objects.filter(customer__site=site, number=number).select_related("customer").first()
    if found is None:
        raise NotFound(f"no package change {number}", code="package_change_not_found")
    return found


def plan_row(plan: InstalmentPlan) -> dict:
    return {
        "id": plan.pk,
        "appliance": plan.appliance,
        "price": plan.price,
        "status": plan.status,
        "missed": plan.missed,
        "instalments": [
            {"seq": i.seq, "due_on": str(i.due_on), "amount": str(i.amount), "status": i.status}
            for i in plan.lines.all()
        ],
    }


def plans(site):
    """The site's appliance sales on instalments, newest first (a queryset: the console's list pages it)."""
    return (
        InstalmentPlan.objects.filter(customer__site=site)
        .select_related("customer__account__consumer")
        .prefetch_related("lines")
    )


def meters(site) -> list[dict]:
    """Smart meters / load limiters of the site's customers with their state and last commands."""
    out = []
    last = MeterCommand.objects.filter(meter=OuterRef("meter")).order_by("-created_at", "-id")
    installs = (
        Installation.objects.filter(account__minigrid__site=site, removed_at__isnull=True)
        .select_related("meter", "account__minigrid")
        .annotate(  # the last command of each meter in the same query (not one query a meter)
            last_command=Subquery(last.values("command")[:1]), last_status=Subquery(last.values("status")[:1])
        )
    )
    for inst in installs:
        m = inst.meter
        out.append(
            {
                "customer_id": inst.account.minigrid.customer_id,
                "serial": m.serial,
                "type": m.meter_type,
                "relay_connected": m.relay_connected,
                "load_limit_kw": m.load_limit_kw,
                "supply_hours": m.supply_hours,
                "last_command": f"{inst.last_command} [{inst.last_status}]" if inst.last_command else "",
            }
        )
    return out


def revenue(site, *, days: int = 30) -> dict:
    since = timezone.now() - timedelta(days=days)
    paid = Payment.objects.filter(
        account__minigrid__site=site, received_at__gte=since, status=PaymentStatus.POSTED
    ).aggregate(total=Sum("amount"))["total"] or Decimal(0)
    water = WaterDay.objects.filter(site=site, day__gte=since.date()).aggregate(
        revenue=Sum("revenue"), sold=Sum("litres_sold"), produced=Sum("litres_produced"), kwh=Sum("kwh_used")
    )
    return {
        "electricity": paid,
        "water": water["revenue"] or Decimal(0),
        "water_sold": water["sold"] or 0,
        "water_produced": water["produced"] or 0,
        "water_kwh": water["kwh"] or Decimal(0),
        "days": days,
    }


def agents(site) -> list[dict]:
    """The site's staff with their cash in hand: three queries whatever their number."""
    profiles = list(StaffProfile.objects.filter(office__path__startswith=site.office.path).select_related("user"))
    in_hand = payments.cash_in_hand_of([p.user_id for p in profiles])
    return [
        {
            "name": p.user.get_full_name() or p.user.get_username(),
            "role": p.role,
            "cash_in_hand": in_hand[p.user_id],
            "cash_limit": p.cash_limit,
        }
        for p in profiles
    ]


def water_days(site):
    return WaterDay.objects.filter(site=site)[:14]
