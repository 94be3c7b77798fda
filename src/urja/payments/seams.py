"""Seams to the apps payments depends on but does not own.

Each function has a fixed contract; it calls the owning app when its API is there and falls back
to a minimal, documented behaviour otherwise (so payments works and is tested on its own):

* `notify_consumer(...)`     → urja.notifications.services.notify (fallback: log only).
* `send_meter_command(...)`  → urja.metering.services.send_command, published by the metering MQTT
                               gateway (fallback without metering: publish straight to the broker on
                               `urja/meters/<consumer number>/cmd`).
* `day_consumption(...)`     → urja.metering (kWh of one day for an account; fallback: None).
* `price_energy(...)`        → urja.tariffs engine (fallback: flat rate from data/payments/prepaid.toml).
"""

from __future__ import annotations

import json
import logging
import uuid
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

    def send():
        try:
            from urja.notifications import services as notifications
        except ImportError:  # pragma: no cover
            notifications = None
        notify = getattr(notifications, "notify", None)
        if notify is None:
            log.info("notify(%s) for consumer %s: notifications not available yet", event, consumer.pk)
            return
        try:
            notify(event=event, consumer=consumer, context=context, idempotency_key=idempotency_key)
        except Exception:  # a message must never undo or block a posted payment
            log.exception("notify(%s) failed for consumer %s", event, consumer.pk)

    transaction.on_commit(send)


# --- meter commands ----------------------------------------------------------------------------

COMMAND_TOPIC = "urja/meters/{target}/cmd"


@dataclass(frozen=True)
class CommandSent:
    command_id: str
    via: str  # "metering" or "mqtt"


def _metering_send_command():
    try:
        from urja.metering import services as metering
    except ImportError:
        return None
    return getattr(metering, "send_command", None)


class NoSmartMeter(LookupError):
    """The account has no installed meter that takes remote commands."""


def send_meter_command(*, account, command: str, idempotency_key: str, reason: str, actor=None) -> CommandSent:
    """Ask the account's smart meter to 'disconnect' or 'reconnect'. Idempotent by key.

    With urja.metering present the command is queued there (its MQTT gateway publishes it, tracks
    the acknowledgement and retries); raises NoSmartMeter when the account has none installed.
    """
    send_command = _metering_send_command()
    if send_command is None:
        return _publish_direct(account=account, command=command, idempotency_key=idempotency_key, reason=reason)
    from urja.core.errors import DomainError

    try:
        cmd = send_command(
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


def _publish_direct(*, account, command: str, idempotency_key: str, reason: str) -> CommandSent:
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    command_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"urja:{idempotency_key}"))
    payload = json.dumps(
        {"command_id": command_id, "command": command, "consumer_number": account.consumer_number, "reason": reason}
    )
    host, port = mqtt_address()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"urja-pay-{uuid.uuid4().hex[:8]}")
    client.connect(host, port, keepalive=10)
    client.loop_start()
    try:
        info = client.publish(COMMAND_TOPIC.format(target=account.consumer_number), payload, qos=1)
        info.wait_for_publish(timeout=5)
    finally:
        client.loop_stop()
        client.disconnect()
    return CommandSent(command_id, "mqtt")


# --- consumption and prices ---------------------------------------------------------------------


def day_consumption(*, account, day: date) -> Decimal | None:
    """kWh the account's meter recorded on `day` (None: no data yet)."""
    try:
        from urja.metering import services as metering
    except ImportError:
        return None
    fn = getattr(metering, "day_consumption", None)
    if fn is None:
        return None
    try:
        value = fn(account=account, day=day)
    except Exception:
        log.exception("day consumption of %s on %s failed", account.pk, day)
        return None
    return None if value is None else Decimal(str(value))


@dataclass(frozen=True)
class DayPrice:
    amount: Decimal
    source: str


def price_energy(*, account, day: date, kwh: Decimal) -> DayPrice:
    """What `kwh` consumed on `day` costs this account: the tariff engine's bill for a one-day period
    (fixed charges and slab widths pro-rated by the engine's month factor). The prepaid rebate is
    not taken here: it is credited on each recharge. Falls back to a flat rate from data when no
    tariff schedule is loaded for the account."""
    from urja.core.errors import DomainError

    try:
        from urja.tariffs import services as tariffs
    except ImportError:
        tariffs = None
    calculate = getattr(tariffs, "calculate", None) if tariffs else None
    if calculate is not None:
        try:
            bill = calculate(
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
            return DayPrice(Decimal(bill.total), "tariff")
        except DomainError as exc:
            log.info("no tariff for prepaid day of %s: %s", account.pk, exc)
    from urja.core import regdata
    from urja.core.money import paise

    rate = Decimal(regdata.load("payments/prepaid.toml").get("fallback", {}).get("rate_per_kwh", "4.70"))
    return DayPrice(paise(kwh * rate), "fallback")


def prepaid_rebate_percent(*, account) -> Decimal:
    """The prepaid rebate of the account's tariff (OERC: 4% of the prepaid amount)."""
    try:
        from urja.tariffs import services as tariffs
    except ImportError:
        tariffs = None
    fn = getattr(tariffs, "prepaid_rebate_percent", None) if tariffs else None
    if fn is not None:
        value = fn(account=account)
        if value is not None:
            return Decimal(str(value))
    from urja.core import regdata

    return Decimal(regdata.load("payments/prepaid.toml")["rebate"]["percent"])
