"""Smart-meter commands: sending, claiming for the MQTT gateway, acknowledgements, timeouts,
retry and cancel (each through the command's state machine)."""

from __future__ import annotations

import uuid
from datetime import datetime, time, timedelta
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from urja.core.errors import Conflict, DomainError, NotFound
from urja.core.models import Channel
from urja.core.services import record_audit
from urja.core.states import transition
from urja.customers.models import Account
from urja.metering.models import (
    COMMAND_STATUS,
    CommandKind,
    CommandStatus,
    Installation,
    Meter,
    MeterCommand,
)
from urja.metering.selectors import (
    current_installation,
    meters_config,
)
from urja.metering.services._base import (
    _decimal,
)


def supply_windows(params: dict) -> dict:
    """`{"windows": [["18:00", "23:00"], ...]}` as a meter or a load limiter takes it (HH:MM pairs)."""
    windows = params.get("windows")
    if not isinstance(windows, list) or not windows:
        raise DomainError('supply hours need "windows": [["18:00", "23:00"], ...]', code="invalid_command_params")
    clean = []
    for w in windows:
        try:
            a, b = (time.fromisoformat(str(x)) for x in w)
        except (TypeError, ValueError) as exc:
            raise DomainError(f"bad supply window {w!r}", code="invalid_command_params") from exc
        clean.append([a.strftime("%H:%M"), b.strftime("%H:%M")])
    return {"windows": clean}


def _command_params(command: str, params: dict) -> dict:
    params = dict(params or {})
    if command == CommandKind.SET_LOAD_LIMIT:
        kw = _decimal("kw", params.get("kw"), required=True)
        if kw <= 0:
            raise DomainError("load limit must be above zero", code="invalid_command_params")
        return {"kw": str(kw)}
    if command == CommandKind.SET_SUPPLY_HOURS:
        return supply_windows(params)
    if command in (CommandKind.DISCONNECT, CommandKind.RECONNECT):
        return {"reason": str(params.get("reason", ""))[:120]}
    return {}


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
    """Queue a command for a smart meter; the MQTT gateway publishes it and tracks the acknowledgement.

    Returns the MeterCommand (status queued → sent → acknowledged / failed / timed_out). The same
    idempotency_key returns the same command (safe to retry from a payment callback).
    """
    if command not in CommandKind.values:
        raise DomainError(
            f"unknown command {command!r}", code="invalid_command", details={"allowed": CommandKind.values}
        )
    existing = existing_command(command=command, idempotency_key=idempotency_key)
    if existing:
        return existing
    meter, account = command_target(meter=meter, account=account)
    if meter.meter_type not in meters_config()["commands"]["allowed_meter_types"]:
        raise DomainError(
            f"meter {meter.serial} ({meter.meter_type}) cannot take remote commands", code="meter_not_smart"
        )
    return queue_command(
        command=command, meter=meter, account=account, params=_command_params(command, params or {}), actor=actor,
        channel=channel, idempotency_key=idempotency_key, timeout_seconds=timeout_seconds, max_attempts=max_attempts,
    )  # fmt: skip


def existing_command(*, command: str, idempotency_key: str | None) -> MeterCommand | None:
    """The command already queued under `idempotency_key` (a retried callback gets it back); the key
    used for another command is a conflict."""
    if not idempotency_key:
        return None
    existing = MeterCommand.objects.filter(idempotency_key=idempotency_key).first()
    if existing and existing.command != command:
        raise Conflict("idempotency key already used for another command", code="idempotency_conflict")
    return existing


def command_target(*, meter: Meter | None, account: Account | None) -> tuple[Meter, Account | None]:
    """The meter a command goes to (the account's installed one when only the account is given) and
    the account it serves (the meter's current installation when only the meter is given)."""
    if meter is None:
        if account is None:
            raise DomainError("give a meter or an account", code="meter_required")
        inst = current_installation(account)
        if inst is None:
            raise NotFound("the account has no meter installed", code="no_meter")
        return inst.meter, account
    if account is None:
        inst = Installation.objects.filter(meter=meter, removed_at__isnull=True).select_related("account").first()
        account = inst.account if inst else None
    return meter, account


def queue_command(
    *,
    command: str,
    meter: Meter,
    account: Account | None,
    params: dict,
    actor,
    channel: str,
    idempotency_key: str | None = None,
    timeout_seconds: int | None = None,
    max_attempts: int | None = None,
    device: str = "",
) -> MeterCommand:
    """The one way a command is queued, for smart meters and load limiters alike, once the device's
    rules have allowed it and cleaned its params: the row (timeout and attempts from meters.toml unless
    given) and its audit. The MQTT gateway publishes it and tracks the acknowledgement."""
    cfg = meters_config()["commands"]
    cmd = MeterCommand.objects.create(
        command_id=str(uuid.uuid4()),
        meter=meter,
        account=account,
        command=command,
        params=params,
        idempotency_key=idempotency_key or None,
        timeout_seconds=int(timeout_seconds or cfg["timeout_seconds"]),
        max_attempts=int(max_attempts or cfg["max_attempts"]),
        requested_by=actor if getattr(actor, "pk", None) else None,
        channel=channel,
    )
    changes = {"command": command, "meter": meter.serial, "params": cmd.params}
    record_audit(
        actor=actor,
        channel=channel,
        action="meter.command",
        obj=cmd,
        changes=changes | ({"device": device} if device else {}),
    )
    return cmd


def command_payload(cmd: MeterCommand) -> dict:
    params = dict(cmd.params)
    if cmd.command == CommandKind.TIME_SYNC:
        params["utc"] = timezone.now().isoformat()
    return {
        "command_id": cmd.command_id,
        "command": cmd.command,
        "params": params,
        "attempt": cmd.attempts,
        "issued_at": cmd.sent_at.isoformat() if cmd.sent_at else None,
        "expires_at": cmd.deadline_at.isoformat() if cmd.deadline_at else None,
    }


def claim_commands(*, limit: int = 200) -> list[tuple[str, dict]]:
    """Mark queued commands as sent and return (serial, payload) to publish. At-least-once: a
    publish lost after this point times out and is retried with the same command id."""
    out = []
    with transaction.atomic():
        cmds = list(
            MeterCommand.objects.select_for_update(skip_locked=True)
            .select_related("meter")
            .filter(status=CommandStatus.QUEUED)
            .order_by("created_at", "id")[:limit]
        )
        now = timezone.now()
        for cmd in cmds:
            cmd.attempts += 1
            cmd.sent_at = now
            cmd.deadline_at = now + timedelta(seconds=cmd.timeout_seconds)
            transition(
                cmd,
                COMMAND_STATUS,
                CommandStatus.SENT,
                actor=None,
                channel=Channel.SYSTEM,
                extra_fields=("attempts", "sent_at", "deadline_at"),
                action="meter.command.sent",
                changes={"attempt": cmd.attempts},
            )
            out.append((cmd.meter.serial, command_payload(cmd)))
    return out


@transaction.atomic
def record_ack(*, serial: str, command_id: str, ok: bool, reason: str = "", at: datetime | None = None) -> MeterCommand:
    """The meter's acknowledgement. Duplicate acks (retries) change nothing."""
    try:
        cmd = MeterCommand.objects.select_for_update().select_related("meter").get(command_id=command_id)
    except MeterCommand.DoesNotExist as exc:
        raise NotFound(f"unknown command id {command_id}", code="unknown_command") from exc
    if cmd.meter.serial != serial.upper():
        raise DomainError("ack from another meter", code="meter_mismatch")
    if cmd.status in (CommandStatus.ACKNOWLEDGED, CommandStatus.CANCELLED) or (
        cmd.status == CommandStatus.FAILED and not ok
    ):
        return cmd
    target = CommandStatus.ACKNOWLEDGED if ok else CommandStatus.FAILED
    if cmd.status == CommandStatus.QUEUED and not cmd.attempts:  # never published: no meter can answer it
        raise Conflict("the command has not been sent yet", code="command_not_sent")
    # a queued command here is a retry waiting, acked for an earlier attempt: the machine allows
    # queued → acknowledged | failed directly (no pretend "sent" step)
    COMMAND_STATUS.check(cmd.status, target)
    cmd.finished_at = timezone.now()
    cmd.result = {"ok": ok, "reason": reason, "at": (at or timezone.now()).isoformat()}
    transition(
        cmd,
        COMMAND_STATUS,
        target,
        actor=None,
        channel=Channel.SYSTEM,
        reason=reason,
        extra_fields=("finished_at", "result"),
        action=f"meter.command.{target}",
    )
    meter = cmd.meter
    if ok:
        if cmd.command == CommandKind.DISCONNECT:
            meter.relay_connected = False
        elif cmd.command == CommandKind.RECONNECT:
            meter.relay_connected = True
        elif cmd.command == CommandKind.SET_LOAD_LIMIT:
            meter.load_limit_kw = Decimal(cmd.params["kw"])
        elif cmd.command == CommandKind.SET_SUPPLY_HOURS:
            meter.supply_hours = cmd.params["windows"]
    meter.last_seen_at = timezone.now()
    meter.save(update_fields=["relay_connected", "load_limit_kw", "supply_hours", "last_seen_at"])
    return cmd


def sweep_command_timeouts(*, now: datetime | None = None) -> dict:
    """Sent commands past their deadline go to timed_out; those with attempts left are queued again
    at once (timed_out → queued: the same command id, so a meter that did act answers the retry
    without acting twice). Both steps follow COMMAND_STATUS and are audited."""
    now = now or timezone.now()
    timed_out = retried = 0
    with transaction.atomic():
        for cmd in MeterCommand.objects.select_for_update(skip_locked=True).filter(
            status=CommandStatus.SENT, deadline_at__lt=now
        ):
            cmd.finished_at = now
            transition(
                cmd,
                COMMAND_STATUS,
                CommandStatus.TIMED_OUT,
                actor=None,
                channel=Channel.SYSTEM,
                extra_fields=("finished_at",),
                action="meter.command.timed_out",
                changes={"attempt": cmd.attempts},
            )
            if cmd.attempts < cmd.max_attempts:
                cmd.finished_at = None
                transition(
                    cmd,
                    COMMAND_STATUS,
                    CommandStatus.QUEUED,
                    actor=None,
                    channel=Channel.SYSTEM,
                    reason="automatic retry after a timeout",
                    extra_fields=("finished_at",),
                    action="meter.command.retry",
                )
                retried += 1
            else:
                timed_out += 1
    return {"timed_out": timed_out, "retried": retried}


@transaction.atomic
def retry_command(*, command: MeterCommand, actor, channel: str) -> MeterCommand:
    """An officer retries a failed or timed-out command: back to queued with one more attempt."""
    cmd = MeterCommand.objects.select_for_update().get(pk=command.pk)
    cmd.max_attempts = max(cmd.max_attempts, cmd.attempts + 1)
    cmd.finished_at = None
    transition(
        cmd,
        COMMAND_STATUS,
        CommandStatus.QUEUED,
        actor=actor,
        channel=channel,
        extra_fields=("max_attempts", "finished_at"),
        action="meter.command.retry",
    )
    return cmd


@transaction.atomic
def cancel_command(*, command: MeterCommand, actor, channel: str) -> MeterCommand:
    cmd = MeterCommand.objects.select_for_update().get(pk=command.pk)
    COMMAND_STATUS.check(cmd.status, CommandStatus.CANCELLED)
    cmd.finished_at = timezone.now()
    transition(
        cmd,
        COMMAND_STATUS,
        CommandStatus.CANCELLED,
        actor=actor,
        channel=channel,
        extra_fields=("finished_at",),
        action="meter.command.cancelled",
    )
    return cmd
