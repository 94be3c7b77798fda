"""Demo data: some payments through each channel and prepaid recharges.

    payments.demo.populate(accounts=[...], staff=[...], rng=random.Random(7))

`staff` is an iterable of users with staff profiles (a cashier-capable one is used for the counter,
a field agent if there is one). Idempotent: keys are derived from the account, so a second call
returns the payments already made.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from datetime import timedelta
from decimal import Decimal

from django.utils import timezone

from urja.core.errors import DomainError
from urja.core.models import Role
from urja.core.money import paise
from urja.core.permissions import role_of

from . import services
from .models import CashierSession, PaymentChannel


def _amount(rng: random.Random, low: int, high: int) -> Decimal:
    return Decimal(rng.randint(low * 100, high * 100)) / 100


def populate(*, accounts: Iterable, staff: Iterable, rng: random.Random) -> dict[str, int]:
    accounts = list(accounts)
    staff = list(staff)
    counts = {"payments": 0, "prepaid_recharges": 0, "suspense": 0}
    cashier = next((u for u in staff if role_of(u) in (Role.CRE, Role.BILLING_OFFICER, Role.MANAGER)), None)
    agent = next((u for u in staff if role_of(u) == Role.FIELD_AGENT), None)
    if cashier is not None and not CashierSession.objects.filter(cashier=cashier, status="open").exists():
        if getattr(getattr(cashier, "staff", None), "office", None) is not None:
            services.open_session(actor=cashier, opening_balance="1000.00")
        else:
            cashier = None
    now = timezone.now()
    for i, account in enumerate(accounts):
        if account.status == "perm_disconnected":
            continue
        # draw every random value up front, so a second run makes the same choices
        when = now - timedelta(days=rng.randint(0, 20), hours=rng.randint(0, 8))
        amount = _amount(rng, 150, 2500)
        online = rng.random() < 0.5
        succeeds = rng.random() < 0.9
        key = f"demo:{account.consumer_number}"
        if account.is_prepaid:
            if cashier is not None:
                services.take_payment(
                    actor=cashier,
                    channel=PaymentChannel.COUNTER,
                    consumer_number=account.consumer_number,
                    amount=amount,
                    idempotency_key=key,
                    notify=False,
                )
                counts["prepaid_recharges"] += 1
            continue
        kind = i % 4
        if kind == 0 and cashier is not None:
            services.take_payment(
                actor=cashier,
                channel=PaymentChannel.COUNTER,
                consumer_number=account.consumer_number,
                amount=amount,
                idempotency_key=key,
                received_at=when,
                notify=False,
            )
        elif kind == 1 and agent is not None:
            try:
                services.take_payment(
                    actor=agent,
                    channel=PaymentChannel.FIELD_AGENT,
                    consumer_number=account.consumer_number,
                    amount=paise(amount / 3),
                    idempotency_key=key,
                    received_at=when,
                    notify=False,
                )
            except DomainError:  # cash limit reached: the agent deposits first
                continue
        elif kind == 2:
            if account.gateway_orders.exists():
                continue
            order = services.create_order(
                consumer_number=account.consumer_number,
                amount=amount,
                channel=PaymentChannel.UPI if online else PaymentChannel.ONLINE,
            )
            services.simulate_gateway(order=order, outcome="success" if succeeds else "failure")
        else:
            continue
        counts["payments"] += 1
    return counts
