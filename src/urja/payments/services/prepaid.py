"""Prepaid: wallets after a recharge, the daily charge, alerts, disconnection and reconnection
through the wallet's machine; OpenPAYGO devices and tokens."""

from __future__ import annotations

import logging
from datetime import date, datetime
from decimal import ROUND_FLOOR, Decimal

from django.db import IntegrityError, transaction
from django.utils import timezone

from urja.billing import ledger
from urja.billing.models import EntryType
from urja.core.errors import Conflict, DomainError
from urja.core.money import paise
from urja.core.services import record_audit
from urja.core.states import transition
from urja.customers.models import Account
from urja.payments import prepaid_rules, seams, signing
from urja.payments.models import (
    WALLET_SUPPLY,
    PaygDevice,
    PaygToken,
    Payment,
    PrepaidCharge,
    PrepaidWallet,
)
from urja.payments.selectors import (
    AUDIT_CHANNEL,
    SUSPENSE_STATUSES,
    _office_holidays,
    day_price_for,
    device_secret,
    prepaid_rules_data,
    wallet_balance,
)

log = logging.getLogger(__name__)


def ensure_wallet(*, account: Account) -> PrepaidWallet:
    if not account.is_prepaid:
        raise DomainError("the account is not prepaid", code="not_prepaid")
    wallet, _ = PrepaidWallet.objects.get_or_create(account=account)
    return wallet


def _after_prepaid_recharge(payment: Payment, *, account: Account, actor) -> None:
    if account.status in SUSPENSE_STATUSES:  # final dues of a closed wallet: no rebate, token or switching
        return
    device = account.payg_devices.filter(active=True).first()
    if device is not None:
        _buy_payg_days(payment, account=account, device=device, actor=actor)
        return
    percent = seams.prepaid_rebate_percent(account=account)
    rebate = paise(payment.amount * percent / 100)
    if rebate > 0:
        ledger.post_entry(
            account=account,
            entry_type=EntryType.REBATE,
            amount=-rebate,
            description=f"Prepaid rebate {percent}% on recharge {payment.receipt_number}",
            actor=actor,
            channel=AUDIT_CHANNEL[payment.channel],
            reference_type="payment",
            reference_id=str(payment.pk),
            idempotency_key=f"prepaid-rebate:{payment.pk}",
            posted_at=payment.received_at,
        )
    ensure_wallet(account=account)
    evaluate_wallet(account=account, locked=True)


def _buy_payg_days(payment: Payment, *, account: Account, device: PaygDevice, actor) -> None:
    from openpaygo.token_shared import OpenPAYGOTokenShared

    price = day_price_for(account)
    available = -ledger.balance(account=account)
    days = int((available / price).to_integral_value(rounding=ROUND_FLOOR)) if available > 0 else 0
    days = min(days, OpenPAYGOTokenShared.MAX_ACTIVATION_VALUE)
    if days < 1:
        return
    ledger.post_entry(
        account=account,
        entry_type=EntryType.BILL_CHARGE,
        amount=price * days,
        description=f"{days} days of service on {device.serial} at {price}/day",
        actor=actor,
        channel="system",
        reference_type="payg_token",
        reference_id=str(payment.pk),
        idempotency_key=f"payg:{payment.pk}",
        posted_at=payment.received_at,
        due_date=timezone.localdate(payment.received_at),
    )
    token = issue_payg_token(actor=actor, device=device, days=days, payment=payment)
    payment.payg_token = token.token


def evaluate_wallet(*, account: Account, now: datetime | None = None, locked: bool = False) -> PrepaidWallet:
    """Alerts at thresholds; disconnect after emergency credit (never in protected hours/days);
    reconnect once the debt is cleared. Sends at most one command per change of state."""
    rules = prepaid_rules_data()
    now = now or timezone.now()
    with transaction.atomic():
        if not locked:
            account = Account.objects.select_for_update().select_related("consumer", "section").get(pk=account.pk)
        wallet = PrepaidWallet.objects.select_for_update().get(pk=ensure_wallet(account=account).pk)
        balance = wallet_balance(account=account)
        already = Decimal(wallet.alerted_threshold) if wallet.alerted_threshold else None
        changed = []
        if already is not None and balance > already:
            crossed = [t for t in rules.thresholds if balance <= t]
            wallet.alerted_threshold = str(min(crossed)) if crossed else ""
            already = min(crossed) if crossed else None
            changed.append("alerted_threshold")
        due = prepaid_rules.alert_due(balance, rules.thresholds, already)
        if due is not None:
            wallet.alerted_threshold = str(due)
            changed.append("alerted_threshold")
            seams.notify_consumer(
                event="prepaid.low_balance",
                consumer=account.consumer,
                context={"consumer_number": account.consumer_number, "balance": balance, "threshold": due},
                idempotency_key=f"prepaid.low:{account.pk}:{due}:{wallet.commands_sent}:{timezone.localdate(now)}",
            )
        local = timezone.localtime(now)
        protected = prepaid_rules.in_protected_window(local, rules, _office_holidays(account))
        action = prepaid_rules.supply_action(
            balance=balance,
            connected=wallet.supply == PrepaidWallet.Supply.CONNECTED,
            rules=rules,
            protected=protected,
        )
        if action is not None and account.status in SUSPENSE_STATUSES:
            # a permanently disconnected connection is not switched by its wallet (the meter is gone)
            action = None
        if action is not None:
            try:
                sent = seams.send_meter_command(
                    account=account,
                    command=action,
                    idempotency_key=f"prepaid:{action}:{account.pk}:{wallet.commands_sent + 1}",
                    reason=f"prepaid balance {balance}",
                )
            except seams.NoSmartMeter as exc:
                # nothing to switch remotely: leave the state as it is (a field visit is needed)
                log.warning("prepaid %s of %s not sent: %s", action, account.consumer_number, exc)
                action = None
        if action is not None:
            wallet.commands_sent += 1
            wallet.last_command = action
            wallet.last_command_id = sent.command_id
            wallet.last_command_at = now
            changed += ["commands_sent", "last_command", "last_command_at", "last_command_id"]
            transition(
                wallet,
                WALLET_SUPPLY,
                PrepaidWallet.Supply.DISCONNECTED if action == "disconnect" else PrepaidWallet.Supply.CONNECTED,
                actor=None,
                channel="system",
                reason=f"prepaid balance {balance}",
                field="supply",
                extra_fields=sorted(set(changed)),
                action=f"prepaid.{action}",
                changes={"balance": balance, "command": sent.command_id},
            )
            changed = []  # saved with the transition
            if action == "disconnect":
                seams.notify_consumer(
                    event="prepaid.disconnected",
                    consumer=account.consumer,
                    context={"consumer_number": account.consumer_number, "balance": balance},
                    idempotency_key=f"prepaid.disconnected:{account.pk}:{wallet.commands_sent}",
                )
        if changed:
            wallet.save(update_fields=sorted(set(changed)))
    return wallet


def charge_prepaid_day(*, account: Account, day: date, kwh: object | None = None) -> PrepaidCharge | None:
    """Charge one day's consumption to a smart prepaid wallet (once per account and day). None: no
    consumption recorded yet. Raises seams.NoTariff when no tariff prices the day (nothing is
    charged: the caller reports the day as skipped with that reason)."""
    wallet = ensure_wallet(account=account)
    done = PrepaidCharge.objects.filter(wallet=wallet, day=day).first()
    if done is not None:
        return done
    consumption = seams.day_consumption(account=account, day=day) if kwh is None else Decimal(str(kwh))
    if consumption is None:
        return None
    if consumption < 0:
        raise DomainError("consumption cannot be negative", code="invalid_consumption")
    price = seams.price_energy(account=account, day=day, kwh=consumption)
    try:
        with transaction.atomic():
            account = Account.objects.select_for_update().select_related("consumer", "section").get(pk=account.pk)
            entry = None
            if price.amount > 0:
                entry = ledger.post_entry(
                    account=account,
                    entry_type=EntryType.BILL_CHARGE,
                    amount=price.amount,
                    description=f"Prepaid consumption {day:%d-%m-%Y}: {consumption} kWh",
                    channel="system",
                    reference_type="prepaid_day",
                    reference_id=day.isoformat(),
                    idempotency_key=f"prepaid:{account.pk}:{day.isoformat()}",
                    due_date=day,
                )
            charge = PrepaidCharge.objects.create(
                wallet=wallet, day=day, kwh=consumption, amount=price.amount, ledger_entry=entry, source=price.source
            )
            PrepaidWallet.objects.filter(pk=wallet.pk).update(charged_through=day)
    except IntegrityError:
        return PrepaidCharge.objects.get(wallet=wallet, day=day)
    return charge


def run_prepaid_day(*, day: date, now: datetime | None = None) -> dict:
    """The daily job: charge yesterday's consumption of every smart prepaid account, then evaluate.
    A day no tariff prices is not charged: it is logged, audited on the account and listed under
    "skipped" with its reason."""
    counts: dict = {"charged": 0, "no_data": 0, "no_tariff": 0, "evaluated": 0, "skipped": []}
    accounts = (
        Account.objects.filter(is_prepaid=True)
        .exclude(payg_devices__active=True)
        .exclude(status__in=SUSPENSE_STATUSES)  # closed: no supply, nothing to charge or switch
        .select_related("consumer", "section")
    )
    for account in accounts.iterator(chunk_size=500):
        try:
            charge = charge_prepaid_day(account=account, day=day)
        except seams.NoTariff as exc:
            log.warning("prepaid day %s of %s not charged: %s", day, account.consumer_number, exc)
            record_audit(
                actor=None,
                channel="system",
                action="prepaid.day_not_charged",
                obj=account,
                changes={"day": day, "reason": "no_tariff", "message": str(exc)},
            )
            counts["no_tariff"] += 1
            counts["skipped"].append(
                {"consumer_number": account.consumer_number, "day": day.isoformat(), "reason": "no_tariff"}
            )
        else:
            counts["charged" if charge is not None else "no_data"] += 1
        evaluate_wallet(account=account, now=now)
        counts["evaluated"] += 1
    return counts


def sweep_prepaid_supply(*, now: datetime | None = None) -> int:
    """Re-evaluate every wallet that needs a command (e.g. protected hours have ended)."""
    count = 0
    for wallet in PrepaidWallet.objects.exclude(account__status__in=SUSPENSE_STATUSES).select_related("account"):
        before = wallet.commands_sent
        after = evaluate_wallet(account=wallet.account, now=now)
        count += after.commands_sent - before
    return count


def register_payg_device(
    *,
    actor,
    account: Account,
    serial: str,
    secret_hex: str,
    starting_code: int | None = None,
    token_count: int = 1,
    restricted_digit_set: bool = False,
) -> PaygDevice:
    from openpaygo.token_shared import OpenPAYGOTokenShared

    secret = (secret_hex or "").strip().lower()
    if len(secret) != 32 or any(c not in "0123456789abcdef" for c in secret):
        raise DomainError("the device secret must be 32 hexadecimal characters", code="invalid_secret")
    if not account.is_prepaid:
        raise DomainError("PAYG devices belong to prepaid accounts", code="not_prepaid")
    if starting_code is None:
        starting_code = OpenPAYGOTokenShared.generate_starting_code(bytes.fromhex(secret))
    with transaction.atomic():
        if PaygDevice.objects.filter(serial=serial).exists():
            raise Conflict(f"device {serial} is already registered", code="device_exists")
        device = PaygDevice.objects.create(
            account=account,
            serial=serial,
            secret_encrypted=signing.device_fernet().encrypt(secret.encode()),
            starting_code=starting_code,
            token_count=token_count,
            restricted_digit_set=restricted_digit_set,
        )
        ensure_wallet(account=account)
        record_audit(
            actor=actor,
            channel="backoffice",
            action="payg.device_registered",
            obj=device,
            changes={"serial": serial, "account": account.consumer_number},
        )
    return device


def issue_payg_token(
    *, actor, device: PaygDevice, days: int, kind: str = PaygToken.Kind.ADD_TIME, payment: Payment | None = None
) -> PaygToken:
    """Generate the next OpenPAYGO token. The device row is locked, the counter only moves forward,
    and (device, count) is unique: no token is ever issued twice."""
    from openpaygo import TokenType, generate_token

    token_type = {
        PaygToken.Kind.ADD_TIME: TokenType.ADD_TIME,
        PaygToken.Kind.SET_TIME: TokenType.SET_TIME,
        PaygToken.Kind.DISABLE: TokenType.DISABLE_PAYG,
    }.get(kind)
    if token_type is None:
        raise DomainError(f"unknown token kind {kind!r}", code="invalid_token_kind")
    if kind != PaygToken.Kind.DISABLE and not (0 <= days <= 995):
        raise DomainError("days must be between 0 and 995", code="invalid_days")
    with transaction.atomic():
        device = PaygDevice.objects.select_for_update().get(pk=device.pk)
        if not device.active:
            raise DomainError("the device is not active", code="device_inactive")
        new_count, token = generate_token(
            secret_key=device_secret(device),
            count=device.token_count,
            value=None if kind == PaygToken.Kind.DISABLE else days,
            token_type=token_type,
            starting_code=device.starting_code,
            restricted_digit_set=device.restricted_digit_set,
        )
        device.token_count = new_count
        device.save(update_fields=["token_count"])
        record = PaygToken.objects.create(
            device=device,
            count=new_count,
            kind=kind,
            days=days,
            token=str(token),
            payment=payment,
            issued_by=actor if getattr(actor, "pk", None) else None,
        )
        record_audit(
            actor=actor,
            channel="system",
            action="payg.token_issued",
            obj=device,
            changes={"count": new_count, "kind": kind, "days": days},
        )
    return record
