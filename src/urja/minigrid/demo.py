"""Demo data of the mini-grid site console (a hook of `urja demo`, after connections): the site's
accounts get their per-site customer IDs, the operator's login (`mgoperator`, password as every
demo login), package changes at each step, a week of the water unit, an appliance sold on
instalments and the credit-limit sweep. Everything through the services; a rerun adds nothing."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.utils import timezone

from urja.core.errors import DomainError

from . import services
from .models import PackageChange, WaterDay

log = logging.getLogger("urja.demo")

OPERATOR = ("mgoperator", "Jagannath Hembram", "+919437100009")


def _operator(site):
    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import make_password

    from urja.core.models import StaffProfile
    from urja.demo.staff import DEMO_PASSWORD

    User = get_user_model()
    username, full_name, mobile = OPERATOR
    user = User.objects.filter(username=username).first()
    if user is None:
        first, _, last = full_name.rpartition(" ")
        user = User.objects.create(
            username=username,
            password=make_password(DEMO_PASSWORD),
            first_name=first,
            last_name=last,
            email=f"{username}@urja.example",
        )
        StaffProfile.objects.create(user=user, role="mgoperator", office=site.office, mobile=mobile)
    return user


def populate(*, accounts, site, rng) -> None:
    if site is None:
        return
    operator = _operator(site)
    for account in accounts:
        if account.minigrid_site_id == site.pk:
            services.enrol_account(account=account)
    customers = list(site.customers.select_related("account").order_by("customer_id"))
    if not customers or PackageChange.objects.filter(customer__site=site).exists():
        return
    names = list(services.packages(site))
    today = timezone.localdate()
    for i, customer in enumerate(customers[:4]):
        if customer.account.status != "active":
            continue
        target = next((p for p in names if p != customer.package_code), None)
        if target is None:
            continue
        try:
            ch = services.request_package_change(
                actor=operator,
                channel="field_agent",
                customer=customer,
                to_package=target,
                when="now" if i % 2 == 0 else "next_period",
            )
            if i >= 1:
                services.recharge(
                    actor=operator,
                    customer=customer,
                    amount=str(rng.choice([300, 500, 1000])),
                    mode="cash" if i % 2 else "mobile_wallet",
                    reference=f"PTM{rng.randint(10**8, 10**9)}",
                    idempotency_key=f"demo-minigrid-recharge-{customer.pk}",
                )
                services.decide(
                    actor=operator,
                    channel="backoffice",
                    change=ch,
                    approve=i != 3,
                    reason="" if i != 3 else "the feeder is at capacity in the evening",
                )
        except DomainError as exc:
            log.info("minigrid demo: %s: %s", customer.customer_id, exc)
    for d in range(7):
        day = today - timedelta(days=d + 1)
        if not WaterDay.objects.filter(site=site, day=day).exists():
            produced = rng.randint(800, 1200)
            sold = produced - rng.randint(50, 200)
            services.record_water_day(
                actor=operator,
                site=site,
                day=day,
                litres_produced=produced,
                litres_sold=sold,
                kwh_used=f"{produced * 0.004:.3f}",
                revenue=str(sold // 20),
            )
    buyer = customers[-1]
    services.sell_appliance(
        actor=operator,
        channel="backoffice",
        customer=buyer,
        appliance="BLDC ceiling fan",
        price="2400",
        down_payment="400",
        instalments=8,
        first_due=today - timedelta(days=40),
    )
    services.charge_instalments(today=today)
    services.flag_for_deactivation(site=site)
