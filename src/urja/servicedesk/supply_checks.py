"""Seam to metering and payments: is the consumer's supply off for a reason no crew can fix?

A no-power-supply complaint first asks `check(account)`. When the account is prepaid with no
balance left, or its smart meter's relay was opened remotely (a disconnect command), the
consumer is told at once and no crew is sent.

The checks use the metering models (Installation → Meter.relay_connected, as last acknowledged by
the meter) and the payments prepaid wallet (PrepaidWallet.supply, ledger balance) when those apps
provide them; each check is skipped when its model is not there, so the service desk runs without them.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.apps import apps
from django.core.exceptions import FieldError

PREPAID_NO_BALANCE = "prepaid_no_balance"
REMOTE_DISCONNECTED = "remote_disconnected"


@dataclass(frozen=True)
class SupplyCheck:
    reason: str
    message: str


def _model(app_label: str, *names: str):
    for name in names:
        try:
            return apps.get_model(app_label, name)
        except LookupError:
            continue
    return None


def remote_disconnected(account) -> SupplyCheck | None:
    installation_model = _model("metering", "Installation")
    if installation_model is None:
        return None
    installation = (
        installation_model.objects.select_related("meter")
        .filter(account=account, removed_at__isnull=True)
        .order_by("-installed_at")
        .first()
    )
    meter = getattr(installation, "meter", None)
    if meter is None or not getattr(meter, "is_smart", False):
        return None
    if getattr(meter, "relay_connected", True):
        return None
    return SupplyCheck(
        REMOTE_DISCONNECTED,
        f"Your smart meter {meter.serial} was disconnected remotely; supply returns when the reason "
        "(payment or recharge) is cleared — no crew visit is needed.",
    )


def prepaid_state(account) -> tuple[Decimal, bool] | None:
    """(money in the wallet, supply switched off) for a prepaid account; None without a wallet.

    The payments app keeps the wallet's money on the ledger (a credit is money in the wallet) and
    the supply state on PrepaidWallet."""
    wallet_model = _model("payments", "PrepaidWallet")
    if wallet_model is None:
        return None
    try:
        wallet = wallet_model.objects.filter(account=account).first()
    except FieldError:
        return None
    if wallet is None:
        return None
    from urja.billing.ledger import balance

    money = -balance(account=account)
    switched_off = getattr(wallet, "supply", "") == "disconnected"
    return money, switched_off


def prepaid_no_balance(account) -> SupplyCheck | None:
    if not getattr(account, "is_prepaid", False):
        return None
    state = prepaid_state(account)
    if state is None:
        return None
    money, switched_off = state
    if money > 0 and not switched_off:
        return None
    return SupplyCheck(
        PREPAID_NO_BALANCE,
        "Your prepaid balance is used up, so supply was switched off. Recharge to restore it at once; "
        "no crew visit is needed.",
    )


def check(account) -> SupplyCheck | None:
    """The first reason the account's supply is off without a fault, or None."""
    if account is None:
        return None
    return prepaid_no_balance(account) or remote_disconnected(account)
