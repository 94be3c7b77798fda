"""Seams to the apps payments depends on but does not own.

Each function has a fixed contract and calls the owning app's service directly (payments sits above
notifications, metering and tariffs in the layers): a renamed function fails loudly at import, never
silently turns a behaviour off.

* `notify_consumer(...)`     → urja.notifications.services.notify, after commit.
* `notify_consumers(...)`    → the same for many consumers, queued together and sent by one task.
* `send_meter_command(...)`  → urja.metering.services.send_command, published by the metering MQTT
                               gateway; NoSmartMeter when the account has no smart meter.
* `day_consumption(...)`     → urja.metering.selectors.day_consumption (kWh of one day; None: no data).
* `price_energy(...)`        → urja.tariffs.services.calculate; NoTariff when no tariff prices the
                               account (never a made-up price: the day is skipped with that reason).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from urllib.parse import urlparse

from django.conf import settings
from django.db import transaction

log = logging.getLogger(__name__)


# --- notifications ---------------------------------------------------------------------------


def notify_consumer(*, event: str, consumer, context: dict, idempotency_key: str) -> None:
    """Queue a consumer message after the current transaction commits (never inside it)."""
    from urja.notifications import services as notifications

    def send():
        try:
            notifications.notify(event=event, consumer=consumer, context=context, idempotency_key=idempotency_key)
        except Exception:  # after commit: a failed message must not undo a posted payment; logged with its trace
            log.exception("notify(%s) failed for consumer %s", event, consumer.pk)

    transaction.on_commit(send)


def notify_consumers(*, event: str, notices: list[tuple[object, dict, str]]) -> None:
    """`notify_consumer` for many consumers at once — (consumer, context, idempotency key) each —
    after the current transaction commits: the messages are queued in one transaction and sent by one
    task (notifications.batched_delivery) instead of a commit and a task each. One that fails to
    queue is logged and rolled back alone (its savepoint); the others still go."""
    from urja.notifications import services as notifications

    def send():
        with transaction.atomic(), notifications.batched_delivery():
            for consumer, context, key in notices:
                try:
                    with transaction.atomic():
                        notifications.notify(event=event, consumer=consumer, context=context, idempotency_key=key)
                except Exception:  # as notify_consumer: a failed message must not undo what committed
                    log.exception("notify(%s) failed for consumer %s", event, consumer.pk)

    if notices:
        transaction.on_commit(send)


# --- meter commands ----------------------------------------------------------------------------

COMMAND_TOPIC = "urja/meters/{target}/cmd"


@dataclass(frozen=True)
class CommandSent:
    command_id: str
    via: str  # "metering" or "mqtt"


class NoSmartMeter(LookupError):
    """The account has no installed meter that takes remote commands."""


def send_meter_command(*, account, command: str, idempotency_key: str, reason: str, actor=None) -> CommandSent:
    """Ask the account's smart meter to 'disconnect' or 'reconnect'. Idempotent by key.

    The command is queued by metering (its MQTT gateway publishes it, tracks the acknowledgement and
    retries); raises NoSmartMeter when the account has none installed.
    """
    from urja.core.errors import DomainError
    from urja.metering import services as metering

    try:
        cmd = metering.send_command(
            command=command,
            actor=actor,
            channel="system",
            account=account,
            params={"reason": reason},
            idempotency_key=idempotency_key,
        )
    except DomainError as exc:
        if exc.code in ("no_meter", "meter_not_smart"):
            raise NoSmartMeter(exc.message) from exc
        raise
    return CommandSent(str(cmd.command_id), "metering")


def mqtt_address() -> tuple[str, int]:
    url = getattr(settings, "URJA_MQTT_URL", "") or "mqtt://127.0.0.1:1883"
    parsed = urlparse(url)
    return parsed.hostname or "127.0.0.1", parsed.port or 1883


# --- consumption and prices ---------------------------------------------------------------------


def day_consumption(*, account, day: date) -> Decimal | None:
    """kWh the account's meter recorded on `day` (None: no data yet)."""
    from urja.metering import selectors as metering

    value = metering.day_consumption(account=account, day=day)
    return None if value is None else Decimal(str(value))


@dataclass(frozen=True)
class DayPrice:
    amount: Decimal
    source: str


class NoTariff(LookupError):
    """No tariff prices this account's day: the day is not charged (never at a made-up price)."""


def price_energy(*, account, day: date, kwh: Decimal) -> DayPrice:
    """What `kwh` consumed on `day` costs this account: the tariff engine's bill for a one-day period
    (fixed charges and slab widths pro-rated by the engine's month factor). The prepaid rebate is
    not taken here: it is credited on each recharge. Raises NoTariff (with the tariff app's reason)
    when no tariff schedule matches the account."""
    from urja.core.errors import DomainError
    from urja.tariffs import services as tariffs

    try:
        bill = tariffs.calculate(
            period_start=day,
            period_end=day,
            units=kwh,
            category=account.category,
            sub_category=account.sub_category,
            area=account.area,
            supply_type=account.supply_type,
            package_code=account.package_code,
            sanctioned_load=account.sanctioned_load,
            load_unit=account.load_unit,
            meter_type="smart",
        )
    except DomainError as exc:
        raise NoTariff(f"no tariff prices {account.consumer_number} on {day}: {exc.message}") from exc
    return DayPrice(Decimal(bill.total), "tariff")


def prepaid_rebate_percent(*, account) -> Decimal:
    """The prepaid rebate on each recharge (OERC: 4% of the prepaid amount), data/payments/prepaid.toml."""
    from urja.core import regdata

    return Decimal(regdata.load("payments/prepaid.toml")["rebate"]["percent"])
