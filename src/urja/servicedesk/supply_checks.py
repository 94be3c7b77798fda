"""Is the consumer's supply off for a reason no crew can fix? (metering and payments, asked directly)

A no-power-supply complaint first asks `check(account)`. When the account is prepaid with no
balance left, or its smart meter's relay was opened remotely (a disconnect command), the
consumer is told at once and no crew is sent.

The service desk sits above metering and payments in the layers, so it calls their services and
reads their models directly: a renamed function or field fails at import or in the tests, instead
of silently turning a check off (as looking them up by name used to).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from urja.metering import selectors as metering
from urja.payments import selectors as payments
from urja.payments.models import PrepaidWallet

PREPAID_NO_BALANCE = "prepaid_no_balance"
REMOTE_DISCONNECTED = "remote_disconnected"


@dataclass(frozen=True)
class SupplyCheck:
    reason: str
    message: str


def remote_disconnected(account) -> SupplyCheck | None:
    installation = metering.current_installation(account)
    if installation is None:
        return None
    meter = installation.meter
    if not meter.is_smart or meter.relay_connected:
        return None
    return SupplyCheck(
        REMOTE_DISCONNECTED,
        f"Your smart meter {meter.serial} was disconnected remotely; supply returns when the reason "
        "(payment or recharge) is cleared — no crew visit is needed.",
    )


def prepaid_state(account) -> tuple[Decimal, bool] | None:
    """(money in the wallet, supply switched off) for a prepaid account; None without a wallet.

    Payments keeps the wallet's money on the ledger (a credit is money in the wallet) and the
    supply state on PrepaidWallet."""
    wallet = PrepaidWallet.objects.filter(account=account).first()
    if wallet is None:
        return None
    money = payments.wallet_balance(account=account)
    return money, wallet.supply == PrepaidWallet.Supply.DISCONNECTED


def prepaid_no_balance(account) -> SupplyCheck | None:
    if not account.is_prepaid:
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
