"""Load limiters on the smart meters' command path (issue 12 part 5).

A load limiter has no energy register but its controller takes a load limit and supply hours over
MQTT like a smart meter (the mini-grid's per-customer limiter). It takes exactly those two commands
— the package's watts and windows — and nothing else (no remote disconnect: a limiter is not a
relay the utility switches for dues). Everything after the command is queued is the smart meters'
own path: the gateway publishes it (`services.claim_commands`), the ack is recorded against the
meter (`services.record_ack` sets `Meter.load_limit_kw` / `supply_hours`), a silent device times out
and is retried (`services.sweep_command_timeouts`, `services.retry_command`).

    send_command(command=, meter=|account=, params=, actor=, channel=, ...)  # smart meter or limiter
    programmable_meter(account)  # the installed meter that takes package commands, or None
"""

from __future__ import annotations

from django.db import transaction

from urja.core import boundary
from urja.core.errors import DomainError
from urja.customers.models import Account

from . import selectors, services
from .models import REGISTERLESS_TYPES, CommandKind, Meter, MeterCommand
from .services import commands

# What a load limiter's controller understands (the mini-grid package's limit and windows).
LIMITER_COMMANDS = frozenset({CommandKind.SET_LOAD_LIMIT, CommandKind.SET_SUPPLY_HOURS})


def takes(meter: Meter, command: str) -> bool:
    """Can `meter` take `command` remotely: a smart meter any command, a load limiter its two."""
    if meter.meter_type in selectors.meters_config()["commands"]["allowed_meter_types"]:
        return True
    return meter.meter_type in REGISTERLESS_TYPES and command in LIMITER_COMMANDS


def programmable_meter(account: Account) -> Meter | None:
    """The account's installed meter when it takes a load limit and supply hours (smart or limiter)."""
    inst = selectors.current_installation(account)
    if inst is not None and takes(inst.meter, CommandKind.SET_LOAD_LIMIT):
        return inst.meter
    return None


def _params(command: str, params: dict) -> dict:
    """The limiter's parameters, in the form the smart meters' commands carry them."""
    if command == CommandKind.SET_LOAD_LIMIT:
        try:  # the boundary's rule, as for a meter's kW: ASCII digits, no exponent, no NaN
            kw = boundary.parse_decimal(params.get("kw"), name="kw", code="invalid_command_params")
        except boundary.InvalidInput as exc:
            raise DomainError(exc.message, code="invalid_command_params", details=exc.details) from exc
        if kw <= 0 or kw > 1000:
            raise DomainError("load limit must be above zero and at most 1000 kW", code="invalid_command_params")
        return {"kw": str(kw)}
    return commands.supply_windows(params)


@transaction.atomic
def send_command(
    *,
    command: str,
    actor,
    channel: str,
    meter: Meter | None = None,
    account: Account | None = None,
    params: dict | None = None,
    idempotency_key: str | None = None,
    timeout_seconds: int | None = None,
    max_attempts: int | None = None,
) -> MeterCommand:
    """Queue `command` for a smart meter (metering.services.send_command, unchanged) or a load
    limiter (its two commands only, queued by the same services.commands.queue_command): one
    MeterCommand on the one command path, tracked to its ack. The same idempotency_key returns the
    same command."""
    meter, account = commands.command_target(meter=meter, account=account)
    if meter.meter_type not in REGISTERLESS_TYPES:
        return services.send_command(
            command=command, actor=actor, channel=channel, meter=meter, account=account, params=params,
            idempotency_key=idempotency_key, timeout_seconds=timeout_seconds, max_attempts=max_attempts,
        )  # fmt: skip
    if command not in LIMITER_COMMANDS:
        raise DomainError(
            f"load limiter {meter.serial} takes only a load limit and supply hours",
            code="meter_not_smart",
            details={"allowed": sorted(LIMITER_COMMANDS)},
        )
    existing = commands.existing_command(command=command, idempotency_key=idempotency_key)
    if existing:
        return existing
    return commands.queue_command(
        command=command, meter=meter, account=account, params=_params(command, params or {}), actor=actor,
        channel=channel, idempotency_key=idempotency_key, timeout_seconds=timeout_seconds, max_attempts=max_attempts,
        device="load_limiter",
    )  # fmt: skip
