"""The mini-grid site's services (seed 001, 2.2; issue 12 part 5, issue 15 part 7).

Add a customer (per-site customer ID, deposit from the estimated monthly bill); package change
(request → approve / reject → payment → now or next period → smart meter or load limiter
reprogrammed over MQTT with the ack tracked, retried by a periodic job); flag and deactivate
customers past the site's credit limit; recharges at the site's counter; the water unit's day;
appliance sales paid in instalments.

Money goes through payments (take_payment) and billing (ledger, deposits); meter commands through
metering (limiters.send_command for smart meters and load limiters alike, retry_command); account
status through customers. Nothing here writes their tables.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

from django.db import transaction
from django.utils import timezone

from urja.billing import deposits
from urja.billing import ledger as billing_ledger
from urja.billing.models import EntryType
from urja.core import regdata
from urja.core.errors import Conflict, DomainError, NotFound
from urja.core.money import MoneyError, paise, to_decimal
from urja.core.services import allocate_numbers, record_audit
from urja.core.states import transition
from urja.customers import services as customers
from urja.customers.models import Account, AccountStatus
from urja.metering import limiters
from urja.metering import services as metering
from urja.metering.models import CommandStatus, MeterCommand
from urja.metering.selectors import current_installation, meters_config
from urja.network import services as network
from urja.network.models import MiniGridSite
from urja.payments import services as payments
from urja.payments.models import PaymentChannel, PaymentMethod

from .models import (
    CHANGE_STATUS,
    INSTALMENT_STATUS,
    PLAN_STATUS,
    ChangeStatus,
    Instalment,
    InstalmentPlan,
    InstalmentStatus,
    PackageChange,
    PlanStatus,
    SiteCustomer,
    WaterDay,
)

FINISHED_BAD = (CommandStatus.FAILED, CommandStatus.TIMED_OUT, CommandStatus.CANCELLED)


def rules() -> dict:
    return regdata.load("minigrid/rules.toml")


# --- packages (data/tariffs/minigrid_packages_<site>.toml) ---------------------------------------


def packages(site: MiniGridSite) -> dict[str, dict]:
    """The site's packages by code: the package file of data/tariffs whose [package_set] site is the
    site's code; a site without its own file uses the package files there are (the example list)."""
    from django.conf import settings

    found: dict[str, dict] = {}
    own: dict[str, dict] = {}
    for path in sorted((Path(settings.DATA_DIR) / "tariffs").glob("minigrid_packages_*.toml")):
        doc = regdata.load(f"tariffs/{path.name}")
        rows = {p["code"]: p for p in doc.get("package", [])}
        found.update(rows)
        if doc.get("package_set", {}).get("site") == site.code:
            own.update(rows)
    return own or found


def package_of(site: MiniGridSite, code: str) -> dict:
    found = packages(site).get(code)
    if found is None:
        raise DomainError(
            f"no package {code!r} at site {site.code}",
            code="unknown_package",
            details={"allowed": sorted(packages(site))},
        )
    return found


def hours_per_day(package: dict) -> Decimal:
    total = 0
    for window in package["windows"]:
        a, b = window.split("-")
        s = int(a[:2]) * 60 + int(a[3:5])
        e = 24 * 60 if b == "24:00" else int(b[:2]) * 60 + int(b[3:5])
        total += (e - s) if e > s else (24 * 60 - s + e)
    return Decimal(total) / 60


def estimated_monthly_bill(package: dict) -> Decimal:
    """Seed 001, 2.2.8: the deposit comes from the estimated monthly bill. Fixed-monthly: the price;
    per-unit: price × (load × hours × 30 days × the share of use from data/minigrid/rules.toml)."""
    price = Decimal(str(package["price"]))
    if package["pricing"] == "fixed_monthly":
        return paise(price)
    share = Decimal(rules()["deposit"]["estimated_hours_use_share"])
    kwh = Decimal(package["max_load_w"]) / 1000 * hours_per_day(package) * 30 * share
    return paise(price * kwh)


def deposit_for(package: dict) -> Decimal:
    return paise(estimated_monthly_bill(package) * Decimal(str(package.get("deposit_months", 1))))


def command_windows(package: dict) -> list[list[str]]:
    """Package windows as set_supply_hours takes them ("24:00" is midnight, "00:00")."""
    out = []
    for window in package["windows"]:
        a, b = window.split("-")
        out.append([a, "00:00" if b == "24:00" else b])
    return out


def credit_limit(site: MiniGridSite) -> Decimal:
    table = rules()["credit"]
    return Decimal(str(table.get(site.code, table["default"])))


# --- customers -----------------------------------------------------------------------------------


@transaction.atomic
def add_customer(
    *,
    actor,
    channel: str,
    site: MiniGridSite,
    name: str,
    mobile: str,
    address: str,
    package_code: str,
    sub_category: str = "household",
) -> SiteCustomer:
    """Seed 001, 2.2.2: register the customer, open the account on the site's section with the
    package — on the site's node of the network (its DT) and in the site's bill cycle and book — give the
    per-site customer ID and demand the deposit (2.2.8)."""
    package = package_of(site, package_code)
    node = network.site_transformer(site=site)
    where = rules()["network"]
    consumer = customers.register_consumer(
        actor=actor,
        channel=channel,
        name=name,
        contacts=[customers.ContactInput("mobile", mobile, True)] if mobile else [],
    )
    account = customers.open_account(
        actor=actor,
        channel=channel,
        consumer=consumer,
        section=site.office,
        premises_address=address or f"{site.village}, {site.district}",
        category="minigrid",
        sub_category=sub_category,
        supply_type="lt_1ph",
        sanctioned_load=str(Decimal(package["max_load_w"]) / 1000),
        area="rural",
        is_prepaid=package["mode"] == "prepaid",
        minigrid_site=site,
        package_code=package_code,
        transformer=node,
        bill_cycle=where["bill_cycle"],
        route=where["route"].format(site=site.code),
    )
    cfg = rules()["customer_id"]
    customer_id = allocate_numbers(
        key=f"minigrid:customer:{site.code}", template=cfg["template"], fields={"site": site.code}
    )[0]
    monthly = estimated_monthly_bill(package)
    customer = SiteCustomer.objects.create(
        account=account, site=site, customer_id=customer_id, estimated_monthly_bill=monthly
    )
    deposits.demand_initial(account=account, estimated_monthly_bill=monthly, actor=actor, channel=channel)
    record_audit(
        actor=actor,
        channel=channel,
        action="minigrid.customer_added",
        obj=customer,
        changes={"customer_id": customer_id, "package": package_code, "consumer_number": account.consumer_number},
    )
    return customer


def place_on_site(*, account: Account, actor=None, channel: str = "system") -> Account:
    """Put a mini-grid account opened without a DT on its site's node (customers.place_account: the DT
    and its feeder; the bill cycle and book it has, or the site's). Idempotent."""
    if account.minigrid_site_id is None:
        raise DomainError("the account is not on a mini-grid site", code="not_minigrid")
    site = account.minigrid_site
    node = network.site_transformer(site=site)
    if account.transformer_id == node.pk:
        return account
    where = rules()["network"]
    return customers.place_account(
        actor=actor,
        channel=channel,
        account=account,
        transformer=node,
        bill_cycle=account.bill_cycle or where["bill_cycle"],
        route=account.route or where["route"].format(site=site.code),
    )


def enrol_account(*, account: Account, actor=None, channel: str = "system") -> SiteCustomer:
    """Give an existing mini-grid account (demo, migration) its per-site customer ID, and place it on the
    site's node when it has no DT. Idempotent."""
    if account.minigrid_site_id is None:
        raise DomainError("the account is not on a mini-grid site", code="not_minigrid")
    if account.transformer_id is None:
        account = place_on_site(account=account, actor=actor, channel=channel)
    existing = SiteCustomer.objects.filter(account=account).first()
    if existing:
        return existing
    site = account.minigrid_site
    package = packages(site).get(account.package_code)
    customer_id = allocate_numbers(
        key=f"minigrid:customer:{site.code}", template=rules()["customer_id"]["template"], fields={"site": site.code}
    )[0]
    customer = SiteCustomer.objects.create(
        account=account,
        site=site,
        customer_id=customer_id,
        estimated_monthly_bill=estimated_monthly_bill(package) if package else Decimal(0),
    )
    record_audit(
        actor=actor,
        channel=channel,
        action="minigrid.customer_enrolled",
        obj=customer,
        changes={"customer_id": customer_id},
    )
    return customer


def credit_of(customer: SiteCustomer) -> Decimal:
    """What the customer owes (ledger balance; negative = money in hand)."""
    return billing_ledger.balance(account=customer.account)


def _smart_meter(account: Account):
    inst = current_installation(account)
    if inst and inst.meter.meter_type in meters_config()["commands"]["allowed_meter_types"]:
        return inst.meter
    return None


def flag_for_deactivation(*, site: MiniGridSite | None = None, now: datetime | None = None) -> dict:
    """Seed 001, 2.2.3: active customers whose credit passes the site's limit are flagged; a smart
    meter is deactivated at once (remote disconnect, the account banned when the ack comes: see
    `follow_deactivations`); without one the operator deactivates from the list. Flags clear when
    the credit comes back under the limit. Idempotent."""
    now = now or timezone.now()
    flagged = cleared = commands = 0
    qs = SiteCustomer.objects.select_related("account", "site")
    if site is not None:
        qs = qs.filter(site=site)
    for customer in qs:
        owed = credit_of(customer)
        limit = credit_limit(customer.site)
        if customer.account.status == AccountStatus.ACTIVE and owed > limit:
            if customer.flagged_at is None:
                customer.flagged_at = now
                customer.flag_reason = f"credit Rs {owed} past the site's limit Rs {limit}"
                customer.save(update_fields=["flagged_at", "flag_reason"])
                record_audit(
                    actor=None,
                    channel="system",
                    action="minigrid.flagged",
                    obj=customer,
                    changes={"owed": str(owed), "limit": str(limit)},
                )
                flagged += 1
            meter = _smart_meter(customer.account)
            if meter is not None and customer.deactivation_command_id is None:
                cmd = metering.send_command(
                    command="disconnect",
                    meter=meter,
                    account=customer.account,
                    actor=None,
                    channel="system",
                    params={"reason": "minigrid_credit_limit"},
                    idempotency_key=f"minigrid:deactivate:{customer.pk}:{customer.flagged_at.isoformat()}",
                )
                customer.deactivation_command = cmd
                customer.save(update_fields=["deactivation_command"])
                commands += 1
        elif customer.flagged_at is not None and owed <= limit:
            customer.flagged_at = None
            customer.flag_reason = ""
            customer.deactivation_command = None
            customer.save(update_fields=["flagged_at", "flag_reason", "deactivation_command"])
            cleared += 1
    return {"flagged": flagged, "cleared": cleared, "commands": commands}


def follow_deactivations() -> int:
    """Flagged customers whose remote disconnect was acknowledged become inactive (banned)."""
    done = 0
    for customer in SiteCustomer.objects.select_related("account", "deactivation_command").filter(
        deactivation_command__status=CommandStatus.ACKNOWLEDGED, account__status=AccountStatus.ACTIVE
    ):
        customers.change_account_status(
            actor=None,
            channel="system",
            account=customer.account,
            status=AccountStatus.BANNED,
            reason=customer.flag_reason or "credit limit",
        )
        done += 1
    return done


def deactivate(*, actor, channel: str, customer: SiteCustomer, reason: str) -> SiteCustomer:
    """The operator deactivates a customer from the list (a connection without a smart meter)."""
    reason = (reason or "").strip()[:200]
    if not reason:
        raise DomainError("a deactivation needs its reason", code="reason_required")
    if customer.account.status != AccountStatus.ACTIVE:
        raise Conflict("the customer is not active", code="not_active")
    customers.change_account_status(
        actor=actor, channel=channel, account=customer.account, status=AccountStatus.BANNED, reason=reason
    )
    return customer


# --- package change --------------------------------------------------------------------------------


def request_package_change(
    *, actor, channel: str, customer: SiteCustomer, to_package: str, when: str = "now"
) -> PackageChange:
    """Seed 001, 2.2.9, step 1: the request (customer app or field agent)."""
    package_of(customer.site, to_package)
    if when not in PackageChange.When.values:
        raise DomainError("when must be now or next_period", code="invalid_when")
    if to_package == customer.package_code:
        raise DomainError("the customer already has that package", code="no_change")
    if customer.account.status != AccountStatus.ACTIVE:
        raise Conflict("only an active customer can change package", code="not_active")
    if PackageChange.objects.filter(
        customer=customer,
        status__in=[
            ChangeStatus.REQUESTED,
            ChangeStatus.APPROVED,
            ChangeStatus.SCHEDULED,
            ChangeStatus.PROGRAMMING,
        ],
    ).exists():
        raise Conflict("a package change is already open for this customer", code="request_open")
    with transaction.atomic():
        change = PackageChange.objects.create(
            number=allocate_numbers(key="minigrid:change", template=rules()["customer_id"]["change_template"])[0],
            customer=customer,
            from_package=customer.package_code,
            to_package=to_package,
            when=when,
            channel=channel,
            office_path=customer.account.office_path,
            requested_by=actor if getattr(actor, "pk", None) else None,
        )
        record_audit(
            actor=actor,
            channel=channel,
            action="minigrid.package_change_requested",
            obj=change,
            changes={"from": change.from_package, "to": to_package, "when": when},
        )
    return change


def _move(change: PackageChange, to: str, *, actor, channel: str, reason: str = "", extra=()) -> None:
    transition(
        change,
        CHANGE_STATUS,
        to,
        actor=actor,
        channel=channel,
        reason=reason,
        extra_fields=extra,
        action="minigrid.package_change",
    )


def _first_of_next_month(day: date) -> date:
    return date(day.year + (day.month == 12), day.month % 12 + 1, 1)


def decide(*, actor, channel: str, change: PackageChange, approve: bool, reason: str = "") -> PackageChange:
    """Step 2: the operator approves (with the deposit top-up the new package needs: step 3) or rejects."""
    with transaction.atomic():
        change = (
            PackageChange.objects.select_for_update()
            .select_related("customer__account", "customer__site")
            .get(pk=change.pk)
        )
        change.decided_at = timezone.now()
        if not approve:
            reason = (reason or "").strip()[:500]
            if not reason:
                raise DomainError("a rejection needs its reason", code="reason_required")
            change.reason = reason
            _move(
                change,
                ChangeStatus.REJECTED,
                actor=actor,
                channel=channel,
                reason=reason,
                extra=["decided_at", "reason"],
            )
            return change
        CHANGE_STATUS.check(change.status, ChangeStatus.APPROVED)
        package = package_of(change.customer.site, change.to_package)
        _, demand = deposits.demand_top_up(
            account=change.customer.account,
            estimated_monthly_bill=estimated_monthly_bill(package),
            reference=f"package change {change.number}",
            actor=actor,
            channel=channel,
        )
        change.charge = demand.amount if demand else Decimal("0.00")
        today = timezone.localdate()
        change.effective_on = today if change.when == PackageChange.When.NOW else _first_of_next_month(today)
        _move(
            change,
            ChangeStatus.APPROVED,
            actor=actor,
            channel=channel,
            reason=reason or "approved",
            extra=["decided_at", "charge", "effective_on"],
        )
    return advance(change=change)


def _paid(change: PackageChange) -> bool:
    if change.charge <= 0:
        return True
    account = change.customer.account
    if account.is_prepaid:
        # the top-up is a debit on the wallet: paid when the wallet stays in credit
        return billing_ledger.balance(account=account) <= 0
    return billing_ledger.balance(account=account) <= 0


def _send_round(change: PackageChange, *, actor=None, channel: str = "system") -> None:
    """Both commands to the customer's smart meter or load limiter: one command path
    (metering.limiters.send_command), tracked to the device's ack."""
    cfg = rules()["package_change"]
    meter = limiters.programmable_meter(change.customer.account)
    package = package_of(change.customer.site, change.to_package)
    change.rounds += 1
    common = dict(
        meter=meter,
        account=change.customer.account,
        actor=actor,
        channel=channel,
        timeout_seconds=cfg["timeout_seconds"],
        max_attempts=cfg["max_attempts"],
    )
    change.load_command = limiters.send_command(
        command="set_load_limit",
        params={"kw": str(Decimal(package["max_load_w"]) / 1000)},
        idempotency_key=f"minigrid:{change.number}:load:{change.rounds}",
        **common,
    )
    change.hours_command = limiters.send_command(
        command="set_supply_hours",
        params={"windows": command_windows(package)},
        idempotency_key=f"minigrid:{change.number}:hours:{change.rounds}",
        **common,
    )
    change.save(update_fields=["rounds", "load_command", "hours_command"])


def _put_in_force(change: PackageChange, *, actor=None, channel: str = "system") -> None:
    customer = change.customer
    # the account's package is what the prepaid day price and the bill run read
    customers.change_package(actor=actor, channel=channel, account=customer.account, package_code=change.to_package)
    customer.estimated_monthly_bill = estimated_monthly_bill(package_of(customer.site, change.to_package))
    customer.save(update_fields=["estimated_monthly_bill"])
    change.in_force_at = timezone.now()
    _move(change, ChangeStatus.IN_FORCE, actor=actor, channel=channel, extra=["in_force_at"])


def advance(*, change: PackageChange, actor=None, channel: str = "system", today: date | None = None) -> PackageChange:
    """Steps 3–5, idempotent (called after each decision and by the periodic job): paid → from its
    date → reprogram the smart meter or the load limiter over MQTT (both commands acknowledged → the
    package is in force); a command that failed or timed out for good is sent again as a fresh round,
    the request staying open. A connection with neither (nothing to program) goes in force when paid."""
    today = today or timezone.localdate()
    with transaction.atomic():
        change = (
            PackageChange.objects.select_for_update()
            .select_related("customer__account", "customer__site")
            .get(pk=change.pk)
        )
        if change.status == ChangeStatus.APPROVED:
            if not _paid(change):
                return change
            if change.effective_on and change.effective_on > today:
                _move(
                    change, ChangeStatus.SCHEDULED, actor=actor, channel=channel, reason=f"from {change.effective_on}"
                )
                return change
        if change.status == ChangeStatus.SCHEDULED and (change.effective_on or today) > today:
            return change
        if change.status in (ChangeStatus.APPROVED, ChangeStatus.SCHEDULED):
            _move(change, ChangeStatus.PROGRAMMING, actor=actor, channel=channel)
            if limiters.programmable_meter(change.customer.account) is None:
                _put_in_force(change, actor=actor, channel=channel)
                return change
            _send_round(change, actor=actor, channel=channel)
            return change
        if change.status != ChangeStatus.PROGRAMMING:
            return change
        cmds = [MeterCommand.objects.get(pk=c) for c in (change.load_command_id, change.hours_command_id) if c]
        if cmds and all(c.status == CommandStatus.ACKNOWLEDGED for c in cmds):
            _put_in_force(change, actor=actor, channel=channel)
        elif any(c.status in FINISHED_BAD for c in cmds) and change.rounds < rules()["package_change"]["max_rounds"]:
            for c in cmds:
                if c.status in FINISHED_BAD:
                    metering.retry_command(command=c, actor=actor, channel=channel)
            change.rounds += 1
            change.save(update_fields=["rounds"])
            record_audit(
                actor=actor,
                channel=channel,
                action="minigrid.package_change_retry",
                obj=change,
                changes={"round": change.rounds},
            )
    return change


def run_package_changes() -> dict:
    """Periodic job: advance every open package change."""
    counts: dict[str, int] = {}
    open_states = [ChangeStatus.APPROVED, ChangeStatus.SCHEDULED, ChangeStatus.PROGRAMMING]
    for change in PackageChange.objects.filter(status__in=open_states).order_by("id"):
        after = advance(change=change)
        counts[after.status] = counts.get(after.status, 0) + 1
    return counts


# --- recharge and token counter ------------------------------------------------------------------

RECHARGE_MODES = {
    "cash": (PaymentChannel.FIELD_AGENT, PaymentMethod.CASH),
    "mobile_wallet": (PaymentChannel.WALLET, PaymentMethod.WALLET),
}


def recharge(*, actor, customer: SiteCustomer, amount: object, mode: str, idempotency_key: str, reference: str = ""):
    """A recharge at the site's counter, through payments' one posting pipeline (receipt, prepaid
    wallet, rebate, SMS confirmation). Cash is taken by the operator or agent as a collector; a
    mobile-wallet payment needs the wallet's transaction reference."""
    if mode not in RECHARGE_MODES:
        raise DomainError(
            "mode must be cash or mobile_wallet", code="invalid_mode", details={"allowed": list(RECHARGE_MODES)}
        )
    channel, method = RECHARGE_MODES[mode]
    if mode == "mobile_wallet" and not reference.strip():
        raise DomainError("the wallet's transaction reference is required", code="reference_required")
    return payments.take_payment(
        actor=actor,
        channel=channel,
        consumer_number=customer.account.consumer_number,
        amount=amount,
        idempotency_key=idempotency_key,
        method=method,
        reference=reference or f"minigrid {customer.customer_id}",
        office=customer.site.office,
    )


# --- value-added services ------------------------------------------------------------------------


def record_water_day(
    *, actor, site: MiniGridSite, day: date, litres_produced: int, litres_sold: int, kwh_used: object, revenue: object
) -> WaterDay:
    """The water unit's day (seed 001, 2.2.10); a second entry for the day corrects the first."""
    if litres_produced < 0 or litres_sold < 0:
        raise DomainError("litres cannot be negative", code="invalid_litres")
    if litres_sold > litres_produced:
        raise DomainError("more litres sold than produced", code="sold_above_produced")
    try:
        kwh, money = to_decimal(kwh_used), paise(revenue)
    except MoneyError as exc:  # a form's "abc" is the operator's mistake, not a server error
        raise DomainError("energy and revenue must be numbers", code="invalid_amount") from exc
    if kwh < 0 or money < 0:
        raise DomainError("energy and revenue cannot be negative", code="invalid_amount")
    row, _ = WaterDay.objects.update_or_create(
        site=site,
        day=day,
        defaults=dict(
            litres_produced=litres_produced,
            litres_sold=litres_sold,
            kwh_used=kwh,
            revenue=money,
            recorded_by=actor if getattr(actor, "pk", None) else None,
        ),
    )
    record_audit(
        actor=actor,
        channel="backoffice",
        action="minigrid.water_day",
        obj=row,
        changes={"day": str(day), "sold": litres_sold},
    )
    return row


@transaction.atomic
def sell_appliance(
    *,
    actor,
    channel: str,
    customer: SiteCustomer,
    appliance: str,
    price: object,
    down_payment: object = 0,
    instalments: int,
    first_due: date,
) -> InstalmentPlan:
    """An appliance sold on instalments (seed 001, 2.2.10): the plan and its equal instalments
    (the last takes the paise left over)."""
    price_d, down = paise(price), paise(down_payment)
    appliance = (appliance or "").strip()[:80]
    if not appliance:
        raise DomainError("name the appliance", code="appliance_required")
    if price_d <= 0 or down < 0 or down >= price_d:
        raise DomainError("price must be above zero and above the down payment", code="invalid_amount")
    if not 1 <= int(instalments) <= 36:
        raise DomainError("1 to 36 instalments", code="invalid_instalments")
    plan = InstalmentPlan.objects.create(
        customer=customer,
        appliance=appliance,
        price=price_d,
        down_payment=down,
        instalments=instalments,
        first_due=first_due,
        sold_by=actor if getattr(actor, "pk", None) else None,
    )
    for seq, (due, amount) in enumerate(schedule(price_d - down, int(instalments), first_due), start=1):
        Instalment.objects.create(plan=plan, seq=seq, due_on=due, amount=amount)
    record_audit(
        actor=actor,
        channel=channel,
        action="minigrid.appliance_sold",
        obj=plan,
        changes={"appliance": appliance, "price": str(price_d), "instalments": instalments},
    )
    return plan


def schedule(financed: Decimal, count: int, first_due: date) -> list[tuple[date, Decimal]]:
    """Pure: monthly due dates from `first_due` (day clamped to 28) and equal amounts summing exactly."""
    each = paise(financed / count)
    out = []
    for i in range(count):
        m = first_due.month - 1 + i
        due = date(first_due.year + m // 12, m % 12 + 1, min(first_due.day, 28))
        amount = each if i < count - 1 else financed - each * (count - 1)
        out.append((due, amount))
    return out


def charge_instalments(*, today: date | None = None) -> dict:
    """Periodic job: each due instalment is charged on the ledger (billing's INSTALMENT entry): with
    the bill for a post-paid customer, from the prepaid balance for a prepaid one — when the wallet
    does not hold it, the instalment is missed. A post-paid instalment still unpaid when the next
    falls due is missed too. A plan with `default_after_missed` missed instalments is defaulted."""
    today = today or timezone.localdate()
    limit = int(rules()["instalments"]["default_after_missed"])
    counts = {"charged": 0, "paid": 0, "missed": 0, "defaulted": 0, "completed": 0}
    due = (
        Instalment.objects.select_related("plan__customer__account")
        .filter(
            status=InstalmentStatus.DUE, due_on__lte=today, plan__status__in=[PlanStatus.ACTIVE, PlanStatus.DEFAULTED]
        )
        .order_by("plan_id", "seq")
    )
    for line in due:
        with transaction.atomic():
            plan = InstalmentPlan.objects.select_for_update().get(pk=line.plan_id)
            account = plan.customer.account
            owed = billing_ledger.balance(account=account)
            if account.is_prepaid and -owed < line.amount:
                to = InstalmentStatus.MISSED
            else:
                if not account.is_prepaid and owed > 0:
                    _miss_previous(plan)
                entry = billing_ledger.post_entry(
                    account=account,
                    entry_type=EntryType.INSTALMENT,
                    amount=line.amount,
                    description=f"{plan.appliance}: instalment {line.seq} of {plan.instalments}",
                    channel="system",
                    reference_type="minigrid_instalment",
                    reference_id=str(line.pk),
                    idempotency_key=f"minigrid:instalment:{line.pk}",
                    due_date=line.due_on,
                )
                line.ledger_entry = entry
                to = InstalmentStatus.PAID if account.is_prepaid else InstalmentStatus.CHARGED
            transition(line, INSTALMENT_STATUS, to, actor=None, channel="system", extra_fields=["ledger_entry"])
            counts["missed" if line.status == InstalmentStatus.MISSED else line.status] += 1
            for key, n in _settle_plan(plan, limit).items():
                counts[key] += n
    return counts


def _miss_previous(plan: InstalmentPlan) -> None:
    last = plan.lines.filter(status=InstalmentStatus.CHARGED).order_by("-seq").first()
    if last is not None:
        transition(last, INSTALMENT_STATUS, InstalmentStatus.MISSED, actor=None, channel="system",
                   reason="unpaid when the next instalment fell due")  # fmt: skip


def _settle_plan(plan: InstalmentPlan, limit: int) -> dict:
    missed = plan.lines.filter(status=InstalmentStatus.MISSED).count()
    out = {}
    if missed != plan.missed:
        plan.missed = missed
        plan.save(update_fields=["missed"])
    if plan.status == PlanStatus.ACTIVE and missed >= limit:
        transition(
            plan,
            PLAN_STATUS,
            PlanStatus.DEFAULTED,
            actor=None,
            channel="system",
            reason=f"{missed} instalments missed",
            action="minigrid.plan_defaulted",
        )
        out["defaulted"] = 1
    elif not plan.lines.filter(status__in=[InstalmentStatus.DUE, InstalmentStatus.MISSED]).exists():
        transition(
            plan, PLAN_STATUS, PlanStatus.COMPLETED, actor=None, channel="system", action="minigrid.plan_completed"
        )
        out["completed"] = 1
    return out


def site_for(user) -> MiniGridSite | None:
    """The mini-grid site of the user's office subtree (the operator's, the agent's), or None."""
    from urja.core.permissions import office_path_of

    path = office_path_of(user)
    if path is None:
        return None
    sites = MiniGridSite.objects.select_related("office").order_by("code")
    for site in sites:
        if site.office.path.startswith(path):
            return site
    return None


def find_customer(*, site: MiniGridSite, customer_id: str) -> SiteCustomer:
    found = (
        SiteCustomer.objects.select_related("account__consumer", "site")
        .filter(site=site, customer_id=(customer_id or "").strip().upper())
        .first()
    )
    if found is None:
        raise NotFound(f"no customer {customer_id}", code="customer_not_found")
    return found


def site_of(user, *, act: str = "field") -> MiniGridSite:
    """The user's site, for an act of data/minigrid/rules.toml [roles]; a user with no site (or a role
    that may not act) answers like a site that does not exist."""
    from urja.core.errors import Forbidden
    from urja.core.permissions import role_of

    role = role_of(user)
    if role not in rules()["roles"][act]:
        raise Forbidden(
            "your role may not do this", code="role_not_allowed", details={"required": rules()["roles"][act]}
        )
    site = site_for(user)
    if site is None:
        raise NotFound("no mini-grid site in your area", code="site_not_found")
    return site
