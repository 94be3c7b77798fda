"""Metering services: the only code that changes meters, installations, readings and commands.

What other apps call:

* `billing_consumption(account=, period_start=, period_end=)` → `BillingConsumption` (billing).
* `send_command(meter=|account=, command=, params=, actor=, channel=)` → `MeterCommand`
  (payments: prepaid disconnect/reconnect; service desk; mini-grid package changes).
* `meter_rent_applies(account)` → bool (billing: no rent for consumer-owned meters).
* meter-side actions for service requests: `record_meter_test`, `replace_meter`, `change_seals`, `shift_meter`.
"""

from __future__ import annotations

import itertools
import json
import logging
import uuid
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation

from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from urja.core import boundary, regdata
from urja.core.calendars import IST
from urja.core.errors import Conflict, DomainError, NotFound
from urja.core.models import Channel
from urja.core.services import record_audit
from urja.core.states import transition
from urja.customers.models import Account, AccountStatus

from . import consumption as calc
from . import schedule, vee
from .models import (
    COMMAND_STATUS,
    METER_STATUS,
    REGISTER_STATUSES,
    USABLE_VEE,
    CommandKind,
    CommandStatus,
    DeadLetter,
    Installation,
    IntervalReading,
    Meter,
    MeterCommand,
    MeterStatus,
    MeterTest,
    MeterType,
    Ownership,
    ReadCycle,
    Reading,
    ReadingSource,
    ReadingStatus,
    SheetEntry,
    SmartMeterEvent,
    VeeStatus,
)

log = logging.getLogger(__name__)
CLOCK_SKEW = timedelta(minutes=5)
MAX_REGISTER = Decimal("99999999999.999")


# --- configuration (data/metering/*.toml) ------------------------------------------------


def vee_config() -> dict:
    return regdata.load("metering/vee.toml")


def vee_rules() -> vee.Rules:
    return vee.Rules(vee_config()["rules"])


def rollover_margin() -> Decimal:
    return Decimal(str(vee_config()["register"]["rollover_margin"]))


def meters_config() -> dict:
    return regdata.load("metering/meters.toml")


def reading_config() -> dict:
    return regdata.load("metering/reading.toml")


# --- small helpers ---------------------------------------------------------------------


def _actor_name(actor) -> str:
    if actor is None:
        return "system"
    return actor.get_full_name() or actor.get_username()


def _decimal(name: str, value, *, required: bool = False, allow_none: bool = True) -> Decimal | None:
    if value is None or value == "":
        if required or not allow_none:
            raise DomainError(f"{name} is required", code="missing_register", details={"field": name})
        return None
    if isinstance(value, bool):
        raise DomainError(f"{name} must be a number", code="non_numeric_register", details={"field": name})
    try:  # the boundary's rule: ASCII digits, no exponent ("१००", "1e3" refused)
        number = boundary.parse_decimal(value, name=name, code="non_numeric_register")
    except boundary.InvalidInput as exc:
        raise DomainError(exc.message, code="non_numeric_register", details={"field": name}) from exc
    if not number.is_finite():
        raise DomainError(f"{name} {value!r} is not a number", code="non_numeric_register", details={"field": name})
    if number < 0:
        raise DomainError(f"{name} must not be negative", code="negative_register", details={"field": name})
    if number > MAX_REGISTER:
        raise DomainError(f"{name} {value} is too large", code="register_out_of_range", details={"field": name})
    return number.quantize(Decimal("0.001"))


def _coord(name: str, value, bound: int) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        number = boundary.parse_decimal(value, name=name, code="invalid_gps")
    except boundary.InvalidInput as exc:
        raise DomainError(f"{name} is not a number: {exc.message}", code="invalid_gps") from exc
    if not number.is_finite() or abs(number) > bound:
        raise DomainError(f"{name} out of range", code="invalid_gps")
    return number.quantize(Decimal("0.000001"))


def _tod(value) -> dict | None:
    if value in (None, {}, ""):
        return None
    if not isinstance(value, dict):
        raise DomainError("tod must be an object {zone: kWh}", code="invalid_tod")
    return {str(zone): str(_decimal(f"tod.{zone}", v, required=True)) for zone, v in value.items()}


def _local_date(moment: datetime) -> date:
    return moment.astimezone(IST).date()


def _day_end(day: date) -> datetime:
    return datetime.combine(day + timedelta(days=1), time(0), IST)


def _sheet(
    *,
    meter: Meter,
    kind: str,
    summary: str,
    actor,
    channel: str,
    account: Account | None = None,
    at: datetime | None = None,
    details: dict | None = None,
    acknowledged_by: str = "",
) -> SheetEntry:
    return SheetEntry.objects.create(
        meter=meter,
        account=account,
        kind=kind,
        at=at or timezone.now(),
        summary=summary[:240],
        details=json.loads(json.dumps(details or {}, cls=DjangoJSONEncoder)),
        performed_by=actor if getattr(actor, "pk", None) else None,
        performed_by_name=_actor_name(actor),
        channel=channel,
        consumer_acknowledged=bool(acknowledged_by),
        acknowledged_by=acknowledged_by,
    )


def get_meter(*, serial: str) -> Meter:
    try:
        return Meter.objects.get(serial=str(serial).strip().upper())
    except Meter.DoesNotExist as exc:
        raise NotFound(f"no meter with serial {serial}", code="unknown_meter") from exc


def current_installation(account: Account) -> Installation | None:
    return Installation.objects.select_related("meter").filter(account=account, removed_at__isnull=True).first()


def installation_at(meter: Meter, at: datetime) -> Installation | None:
    return (
        Installation.objects.select_related("account")
        .filter(meter=meter, installed_at__lte=at)
        .filter(Q(removed_at__isnull=True) | Q(removed_at__gte=at))
        .order_by("-installed_at")
        .first()
    )


def meter_rent_applies(account: Account) -> bool:
    """False when the account's meter is consumer-owned (OERC Supply Code reg. 102(ii)) or it has none."""
    inst = current_installation(account)
    return bool(inst and inst.meter.ownership == Ownership.UTILITY)


# --- meter registry ------------------------------------------------------------------------


@transaction.atomic
def register_meter(
    *,
    serial: str,
    make: str,
    meter_type: str,
    actor,
    channel: str,
    model: str = "",
    phase: int = 1,
    multiplying_factor: object = 1,
    register_digits: int = 6,
    ownership: str = Ownership.UTILITY,
    seals: list[str] | None = None,
    store_office=None,
) -> Meter:
    serial = str(serial).strip().upper()
    if not serial or not serial.replace("-", "").isalnum():
        raise DomainError(f"meter serial {serial!r} is not valid", code="invalid_serial")
    if meter_type not in MeterType.values:
        raise DomainError(f"unknown meter type {meter_type!r}", code="invalid_meter_type")
    if ownership not in Ownership.values:
        raise DomainError(f"unknown ownership {ownership!r}", code="invalid_ownership")
    if phase not in (1, 3):
        raise DomainError("phase must be 1 or 3", code="invalid_phase")
    if not 3 <= int(register_digits) <= 11:
        raise DomainError("register digits must be 3–11", code="invalid_register_digits")
    mf = _decimal("multiplying_factor", multiplying_factor, required=True)
    if mf == 0:
        raise DomainError("multiplying factor must be above zero", code="invalid_multiplying_factor")
    if Meter.objects.filter(serial=serial).exists():
        raise Conflict(f"meter {serial} is already registered", code="duplicate_meter")
    meter = Meter.objects.create(
        serial=serial,
        make=make,
        model=model,
        meter_type=meter_type,
        phase=phase,
        multiplying_factor=mf,
        register_digits=register_digits,
        ownership=ownership,
        seals=list(seals or []),
        store_office=store_office,
    )
    _sheet(
        meter=meter, kind=SheetEntry.Kind.REGISTERED, summary=f"{make} {model} registered", actor=actor, channel=channel
    )
    record_audit(actor=actor, channel=channel, action="meter.registered", obj=meter, changes={"serial": serial})
    return meter


def _set_status(meter: Meter, status: str, *, actor, channel: str, reason: str) -> None:
    transition(meter, METER_STATUS, status, actor=actor, channel=channel, reason=reason, action="meter.status")


@transaction.atomic
def change_meter_status(*, meter: Meter, status: str, reason: str, actor, channel: str) -> Meter:
    meter = Meter.objects.select_for_update().get(pk=meter.pk)
    if status == MeterStatus.INSTALLED or meter.status == MeterStatus.INSTALLED:
        raise DomainError(
            "install, remove or replace the meter through an installation", code="use_installation_service"
        )
    if not reason.strip():
        raise DomainError("a reason is required", code="reason_required")
    _set_status(meter, status, actor=actor, channel=channel, reason=reason)
    _sheet(meter=meter, kind=SheetEntry.Kind.STATUS, summary=f"{status}: {reason}", actor=actor, channel=channel)
    return meter


def _install(
    *, account, meter, at, initial_kwh, initial_kvah, initial_tod, location, reason, actor, channel
) -> Installation:
    if meter.status not in (MeterStatus.IN_STORE, MeterStatus.UNDER_TEST):
        raise Conflict(f"meter {meter.serial} is {meter.status}, not in store", code="meter_not_available")
    if account.status == AccountStatus.PERMANENTLY_DISCONNECTED:
        raise Conflict("account is permanently disconnected", code="account_closed")
    if Installation.objects.filter(meter=meter, removed_at__isnull=True).exists():
        raise Conflict(f"meter {meter.serial} is installed elsewhere", code="meter_not_available")
    if Installation.objects.filter(account=account, removed_at__isnull=True).exists():
        raise Conflict("the account already has a meter; replace it instead", code="account_has_meter")
    last = Installation.objects.filter(account=account).order_by("-installed_at").first()
    if last and last.removed_at and at < last.removed_at:
        raise DomainError("installation before the previous meter was removed", code="installation_overlap")
    kwh = _decimal("initial_kwh", initial_kwh, required=meter.has_register) or Decimal(0)
    if kwh >= calc.register_size(meter.register_digits):
        raise DomainError("initial reading does not fit the register", code="register_out_of_range")
    kvah = _decimal("initial_kvah", initial_kvah)
    tod = _tod(initial_tod) or {}
    _set_status(meter, MeterStatus.INSTALLED, actor=actor, channel=channel, reason=reason or "installation")
    inst = Installation.objects.create(
        meter=meter,
        account=account,
        installed_at=at,
        initial_kwh=kwh,
        initial_kvah=kvah,
        initial_tod=tod,
        location=location,
        reason=reason,
    )
    if meter.has_register:
        Reading.objects.create(
            meter=meter,
            account=account,
            installation=inst,
            read_at=at,
            source=ReadingSource.INSTALLATION,
            status=ReadingStatus.ACTUAL,
            kwh=kwh,
            kvah=kvah,
            tod=tod or None,
            reader=actor if getattr(actor, "pk", None) else None,
            vee_status=VeeStatus.PASSED,
        )
    return inst


def _check_at(at: datetime | None) -> datetime:
    at = at or timezone.now()
    if timezone.is_naive(at):
        raise DomainError("timestamps must carry a time zone", code="naive_timestamp")
    if at > timezone.now() + CLOCK_SKEW:
        raise DomainError("timestamp is in the future", code="timestamp_in_future")
    if at.year < boundary.bounds().earliest_year:  # the boundary's floor (a year-1 reading was stored)
        raise DomainError(f"timestamp is before {boundary.bounds().earliest_year}", code="timestamp_too_early")
    return at


@transaction.atomic
def install_meter(
    *,
    account: Account,
    meter: Meter,
    actor,
    channel: str,
    installed_at: datetime | None = None,
    initial_kwh: object = 0,
    initial_kvah: object = None,
    initial_tod: dict | None = None,
    location: str = "",
    acknowledged_by: str = "",
) -> Installation:
    at = _check_at(installed_at)
    meter = Meter.objects.select_for_update().get(pk=meter.pk)
    inst = _install(
        account=account,
        meter=meter,
        at=at,
        initial_kwh=initial_kwh,
        initial_kvah=initial_kvah,
        initial_tod=initial_tod,
        location=location,
        reason="new installation",
        actor=actor,
        channel=channel,
    )
    _sheet(
        meter=meter,
        account=account,
        kind=SheetEntry.Kind.INSTALLATION,
        at=at,
        summary=f"Installed at {account.consumer_number}, initial reading {inst.initial_kwh} kWh",
        details={"initial_kwh": inst.initial_kwh, "location": location, "seals": meter.seals},
        actor=actor,
        channel=channel,
        acknowledged_by=acknowledged_by,
    )
    record_audit(actor=actor, channel=channel, action="meter.installed", obj=inst, changes={"meter": meter.serial})
    return inst


def _remove(*, inst: Installation, at, final_kwh, final_kvah, final_tod, reason, status, actor, channel) -> None:
    meter = inst.meter
    if at < inst.installed_at:
        raise DomainError("removal before installation", code="removal_before_installation")
    kwh = _decimal("final_kwh", final_kwh, required=meter.has_register)
    if kwh is not None:
        try:
            calc.register_delta(inst.initial_kwh, kwh, meter.register_digits, rollover_margin())
        except calc.RegisterError as exc:
            # The final register must be reachable from the last reading on this installation.
            raise DomainError(f"final reading: {exc}", code=exc.code) from exc
        last = (
            Reading.objects.filter(installation=inst, kwh__isnull=False, read_at__lte=at)
            .exclude(vee_status=VeeStatus.REPLACED)
            .order_by("-read_at")
            .first()
        )
        if last and last.read_at < at:
            try:
                calc.register_delta(last.kwh, kwh, meter.register_digits, rollover_margin())
            except calc.RegisterError as exc:
                raise DomainError(f"final reading {kwh} is below the last reading {last.kwh}", code=exc.code) from exc
    inst.removed_at = at
    inst.final_kwh = kwh
    inst.final_kvah = _decimal("final_kvah", final_kvah)
    inst.final_tod = _tod(final_tod) or {}
    inst.removal_reason = reason
    inst.save(update_fields=["removed_at", "final_kwh", "final_kvah", "final_tod", "removal_reason"])
    if kwh is not None:
        Reading.objects.update_or_create(
            meter=meter,
            read_at=at,
            source=ReadingSource.INSTALLATION,
            defaults=dict(
                account=inst.account,
                installation=inst,
                status=ReadingStatus.ACTUAL,
                kwh=kwh,
                kvah=inst.final_kvah,
                tod=inst.final_tod or None,
                vee_status=VeeStatus.PASSED,
            ),
        )
    # A meter already found defective/burnt (e.g. by a test) keeps that status when it comes out.
    if meter.status != status and not (status == MeterStatus.REMOVED and meter.status in _FAULTY):
        _set_status(meter, status, actor=actor, channel=channel, reason=reason)


_FAULTY = (MeterStatus.DEFECTIVE, MeterStatus.BURNT)


@transaction.atomic
def remove_meter(
    *,
    account: Account,
    actor,
    channel: str,
    final_kwh: object,
    reason: str,
    removed_at: datetime | None = None,
    final_kvah: object = None,
    final_tod: dict | None = None,
    meter_status: str = MeterStatus.REMOVED,
    acknowledged_by: str = "",
) -> Installation:
    at = _check_at(removed_at)
    inst = (
        Installation.objects.select_for_update()
        .select_related("meter")
        .filter(account=account, removed_at__isnull=True)
        .first()
    )
    if inst is None:
        raise NotFound("the account has no meter installed", code="no_meter")
    _remove(
        inst=inst,
        at=at,
        final_kwh=final_kwh,
        final_kvah=final_kvah,
        final_tod=final_tod,
        reason=reason,
        status=meter_status,
        actor=actor,
        channel=channel,
    )
    _sheet(
        meter=inst.meter,
        account=account,
        kind=SheetEntry.Kind.REMOVAL,
        at=at,
        summary=f"Removed ({reason}), final reading {inst.final_kwh} kWh",
        details={"final_kwh": inst.final_kwh, "reason": reason},
        actor=actor,
        channel=channel,
        acknowledged_by=acknowledged_by,
    )
    record_audit(actor=actor, channel=channel, action="meter.removed", obj=inst, changes={"reason": reason})
    return inst


@transaction.atomic
def replace_meter(
    *,
    account: Account,
    new_meter: Meter,
    final_kwh: object,
    reason: str,
    actor,
    channel: str,
    replaced_at: datetime | None = None,
    initial_kwh: object = 0,
    final_kvah: object = None,
    initial_kvah: object = None,
    final_tod: dict | None = None,
    initial_tod: dict | None = None,
    old_meter_status: str = MeterStatus.DEFECTIVE,
    acknowledged_by: str = "",
) -> Installation:
    """Close the old register with its final reading and open the new one: consumption stays exact."""
    at = _check_at(replaced_at)
    if not reason.strip():
        raise DomainError("a reason is required", code="reason_required")
    if old_meter_status not in (MeterStatus.REMOVED, MeterStatus.DEFECTIVE, MeterStatus.BURNT):
        raise DomainError("old meter status must be removed, defective or burnt", code="invalid_meter_status")
    old = (
        Installation.objects.select_for_update()
        .select_related("meter")
        .filter(account=account, removed_at__isnull=True)
        .first()
    )
    if old is None:
        raise NotFound("the account has no meter installed", code="no_meter")
    new_meter = Meter.objects.select_for_update().get(pk=new_meter.pk)
    if new_meter.pk == old.meter_id:
        raise DomainError("the new meter is the installed meter", code="same_meter")
    _remove(
        inst=old,
        at=at,
        final_kwh=final_kwh,
        final_kvah=final_kvah,
        final_tod=final_tod,
        reason=reason,
        status=old_meter_status,
        actor=actor,
        channel=channel,
    )
    inst = _install(
        account=account,
        meter=new_meter,
        at=at,
        initial_kwh=initial_kwh,
        initial_kvah=initial_kvah,
        initial_tod=initial_tod,
        location=old.location,
        reason=f"replacement: {reason}",
        actor=actor,
        channel=channel,
    )
    details = {
        "old_meter": old.meter.serial,
        "final_kwh": old.final_kwh,
        "new_meter": new_meter.serial,
        "initial_kwh": inst.initial_kwh,
        "reason": reason,
    }
    summary = (
        f"Replaced {old.meter.serial} (final {old.final_kwh}) by {new_meter.serial} "
        f"(initial {inst.initial_kwh}): {reason}"
    )
    for meter in (old.meter, new_meter):
        _sheet(
            meter=meter,
            account=account,
            kind=SheetEntry.Kind.REPLACEMENT,
            at=at,
            summary=summary,
            details=details,
            actor=actor,
            channel=channel,
            acknowledged_by=acknowledged_by,
        )
    record_audit(actor=actor, channel=channel, action="meter.replaced", obj=inst, changes=details)
    return inst


@transaction.atomic
def change_seals(
    *, meter: Meter, seals: list[str], reason: str, actor, channel: str, acknowledged_by: str = ""
) -> Meter:
    meter = Meter.objects.select_for_update().get(pk=meter.pk)
    seals = [str(s).strip().upper() for s in seals if str(s).strip()]
    if not seals:
        raise DomainError("at least one seal number is required", code="seals_required")
    if not reason.strip():
        raise DomainError("a reason is required", code="reason_required")
    old = list(meter.seals)
    meter.seals = seals
    meter.save(update_fields=["seals"])
    inst = Installation.objects.filter(meter=meter, removed_at__isnull=True).first()
    _sheet(
        meter=meter,
        account=inst.account if inst else None,
        kind=SheetEntry.Kind.SEAL_CHANGE,
        summary=f"Seals {', '.join(old) or '—'} → {', '.join(seals)}: {reason}",
        details={"old": old, "new": seals, "reason": reason},
        actor=actor,
        channel=channel,
        acknowledged_by=acknowledged_by,
    )
    record_audit(actor=actor, channel=channel, action="meter.seals", obj=meter, changes={"old": old, "new": seals})
    return meter


@transaction.atomic
def shift_meter(
    *,
    account: Account,
    location: str,
    actor,
    channel: str,
    shifted_at: datetime | None = None,
    acknowledged_by: str = "",
) -> Installation:
    at = _check_at(shifted_at)
    if not location.strip():
        raise DomainError("the new location is required", code="location_required")
    inst = (
        Installation.objects.select_for_update()
        .select_related("meter")
        .filter(account=account, removed_at__isnull=True)
        .first()
    )
    if inst is None:
        raise NotFound("the account has no meter installed", code="no_meter")
    old = inst.location
    inst.location = location
    inst.save(update_fields=["location"])
    _sheet(
        meter=inst.meter,
        account=account,
        kind=SheetEntry.Kind.SHIFT,
        at=at,
        summary=f"Shifted from {old or '—'} to {location}",
        details={"from": old, "to": location},
        actor=actor,
        channel=channel,
        acknowledged_by=acknowledged_by,
    )
    record_audit(actor=actor, channel=channel, action="meter.shifted", obj=inst, changes={"from": old, "to": location})
    return inst


@transaction.atomic
def send_test_notice(*, meter: Meter, test_on: date, actor, channel: str) -> date:
    """Tell the consumer of the meter's account when the meter will be tested, at least the Supply
    Code's notice days ahead (data/metering/meters.toml `test_notice_days`), through the outbox
    (event `meter.test_notice`). Returns the notice date to record on the test."""
    notice_days = int(meters_config()["test_notice_days"])
    today = timezone.localdate()
    if (test_on - today).days < notice_days:
        raise DomainError(
            f"the test must be at least {notice_days} days after today's notice",
            code="insufficient_notice",
            details={"test_on": str(test_on), "required_days": notice_days},
        )
    inst = Installation.objects.filter(meter=meter, removed_at__isnull=True).select_related("account__consumer").first()
    if inst is None:
        raise NotFound("the meter is not installed on any account", code="not_installed")
    account = inst.account
    _sheet(
        meter=meter,
        account=account,
        kind=SheetEntry.Kind.TEST,
        summary=f"Test notice sent: test on {test_on}",
        details={"notice_given_on": today, "test_on": test_on},
        actor=actor,
        channel=channel,
    )
    record_audit(actor=actor, channel=channel, action="meter.test_notice", obj=meter, changes={"test_on": str(test_on)})

    def send():
        from urja.notifications import services as notifications

        notifications.notify(
            event="meter.test_notice",
            consumer=account.consumer,
            account=account,
            context={
                "consumer_number": account.consumer_number,
                "meter": meter.serial,
                "test_on": test_on.strftime("%d-%m-%Y"),
            },
            idempotency_key=f"meter.test_notice:{meter.pk}:{test_on}",
        )

    transaction.on_commit(send)
    return today


@transaction.atomic
def record_meter_test(
    *,
    meter: Meter,
    notice_given_on: date,
    tested_on: date,
    error_percent: object,
    actor,
    channel: str,
    result: str | None = None,
    remarks: str = "",
    acknowledged_by: str = "",
) -> MeterTest:
    """Record a meter test. The consumer must have had the notice days the Supply Code requires."""
    cfg = meters_config()
    notice_days = int(cfg["test_notice_days"])
    if tested_on > timezone.localdate():
        raise DomainError("test date is in the future", code="timestamp_in_future")
    if (tested_on - notice_given_on).days < notice_days:
        raise DomainError(
            f"the consumer must get {notice_days} days' notice before a meter test",
            code="insufficient_notice",
            details={
                "notice_given_on": str(notice_given_on),
                "tested_on": str(tested_on),
                "required_days": notice_days,
            },
        )
    try:
        error = Decimal(str(error_percent))
    except InvalidOperation as exc:
        raise DomainError("error percent is not a number", code="invalid_error_percent") from exc
    if not error.is_finite() or abs(error) > 100:
        raise DomainError("error percent must be between -100 and 100", code="invalid_error_percent")
    limit = Decimal(str(cfg["accuracy_limit_percent"]))
    if result is None:
        result = (
            MeterTest.Result.OK
            if abs(error) <= limit
            else (MeterTest.Result.FAST if error > 0 else MeterTest.Result.SLOW)
        )
    if result not in MeterTest.Result.values:
        raise DomainError(f"unknown test result {result!r}", code="invalid_test_result")
    meter = Meter.objects.select_for_update().get(pk=meter.pk)
    inst = Installation.objects.filter(meter=meter, removed_at__isnull=True).select_related("account").first()
    test = MeterTest.objects.create(
        meter=meter,
        account=inst.account if inst else None,
        notice_given_on=notice_given_on,
        tested_on=tested_on,
        error_percent=error,
        result=result,
        remarks=remarks,
        tested_by=actor if getattr(actor, "pk", None) else None,
    )
    if result != MeterTest.Result.OK and meter.status != MeterStatus.DEFECTIVE:
        _set_status(meter, MeterStatus.DEFECTIVE, actor=actor, channel=channel, reason=f"test: {result}")
    _sheet(
        meter=meter,
        account=test.account,
        kind=SheetEntry.Kind.TEST,
        at=datetime.combine(tested_on, time(12), IST),
        summary=f"Tested: {error:+}% ({MeterTest.Result(result).label}); notice given {notice_given_on}",
        details={"error_percent": error, "result": result, "notice_given_on": notice_given_on, "remarks": remarks},
        actor=actor,
        channel=channel,
        acknowledged_by=acknowledged_by,
    )
    record_audit(
        actor=actor, channel=channel, action="meter.tested", obj=test, changes={"result": result, "error": error}
    )
    return test


# --- consumption over a chain of readings ------------------------------------------------


def _segments(
    opening: Reading, closing: Reading, attr: str = "kwh", *, installations: list[Installation] | None = None
) -> list[calc.Segment]:
    """Register segments from `opening` to `closing`, one per meter that served the account.
    `installations`: the account's installations (meter selected, ordered by installed_at, id)
    already loaded (batch VEE); otherwise they are queried."""
    if opening.installation_id == closing.installation_id:
        meter = closing.meter
        return [
            calc.Segment(
                getattr(opening, attr), getattr(closing, attr), meter.register_digits, meter.multiplying_factor
            )
        ]
    lo, hi = opening.installation.installed_at, closing.installation.installed_at
    if installations is None:
        insts = list(
            Installation.objects.select_related("meter")
            .filter(account_id=closing.account_id, installed_at__gte=lo)
            .filter(installed_at__lte=hi)
            .order_by("installed_at", "id")
        )
    else:
        insts = [i for i in installations if i.account_id == closing.account_id and lo <= i.installed_at <= hi]
    segments = []
    for inst in insts:
        start = getattr(opening, attr) if inst.pk == opening.installation_id else getattr(inst, f"initial_{attr}")
        end = getattr(closing, attr) if inst.pk == closing.installation_id else getattr(inst, f"final_{attr}")
        if start is None or end is None:
            raise calc.RegisterError(f"{attr} missing at a replacement", code="missing_register")
        segments.append(calc.Segment(start, end, inst.meter.register_digits, inst.meter.multiplying_factor))
    return segments


def consumption_between(
    opening: Reading, closing: Reading, *, installations: list[Installation] | None = None
) -> Decimal:
    return calc.consumption(_segments(opening, closing, installations=installations), rollover_margin())


def day_consumption(*, account: Account, day: date) -> Decimal | None:
    """kWh the account used on one local day (IST midnight to midnight), for prepaid daily charging.

    From the register: the last usable reading at or before midnight opening the day and the first at
    or after the midnight closing it, when they are at most an hour off those midnights (a smart meter
    sends its daily register at midnight; exact across replacement and rollover). Otherwise from the
    day's interval energy when the intervals cover the whole day. None while the day is not complete.
    """
    start = datetime.combine(day, time(0), IST)
    end = _day_end(day)
    slack = timedelta(hours=1)
    usable = _usable(Reading.objects.select_related("installation", "meter").filter(account=account))
    opening = usable.filter(read_at__lte=start, read_at__gte=start - slack).order_by("-read_at", "-id").first()
    closing = usable.filter(read_at__gte=end, read_at__lte=end + slack).order_by("read_at", "id").first()
    if opening is not None and closing is not None:
        return consumption_between(opening, closing)
    insts = Installation.objects.select_related("meter").filter(
        Q(removed_at__isnull=True) | Q(removed_at__gt=start), account=account, installed_at__lt=end
    )
    total, minutes = Decimal(0), 0
    for inst in insts:
        lo, hi = max(start, inst.installed_at), min(end, inst.removed_at or end)
        for kwh, span in IntervalReading.objects.filter(meter=inst.meter, ts__gt=lo, ts__lte=hi).values_list(
            "kwh", "minutes"
        ):
            total += kwh * inst.meter.multiplying_factor
            minutes += span
    if minutes and minutes >= (end - start).total_seconds() / 60:
        return total
    return None


def _usable(qs):
    return qs.filter(vee_status__in=USABLE_VEE, status__in=REGISTER_STATUSES, kwh__isnull=False)


def previous_reading(reading: Reading, *, actual_only: bool = False) -> Reading | None:
    qs = _usable(Reading.objects.select_related("installation", "meter").filter(account_id=reading.account_id))
    if actual_only:
        qs = qs.filter(status=ReadingStatus.ACTUAL)
    return qs.filter(read_at__lt=reading.read_at).exclude(pk=reading.pk).order_by("-read_at", "-id").first()


def next_reading(reading: Reading) -> Reading | None:
    """The first usable actual reading after `reading`: a reading that arrives late (older than the
    latest one) has a true neighbour on each side, and must fit between them."""
    qs = _usable(Reading.objects.select_related("installation", "meter").filter(account_id=reading.account_id))
    qs = qs.filter(status=ReadingStatus.ACTUAL, read_at__gt=reading.read_at).exclude(pk=reading.pk)
    return qs.order_by("read_at", "id").first()


def monthly_history(account: Account, *, before: datetime, months: int = 13) -> list[vee.MonthUse]:
    """Monthly consumption, normalised to 30 days: each pair of consecutive usable readings gives
    units over days, attributed to the month of the later reading (several pairs in a month add up)."""
    since = before - timedelta(days=31 * (months + 1))
    readings = list(
        _usable(Reading.objects.select_related("installation", "meter").filter(account=account))
        .filter(read_at__gte=since, read_at__lt=before)
        .order_by("read_at", "id")
    )
    return history_of(readings)


def history_of(readings: list[Reading], *, consumption=consumption_between) -> list[vee.MonthUse]:
    """`monthly_history` of usable readings already selected (ordered by read_at, id)."""
    months_acc: dict[tuple[int, int], list] = {}
    for a, b in itertools.pairwise(readings):
        seconds = (b.read_at - a.read_at).total_seconds()
        if seconds < 3600:
            continue
        try:
            units = consumption(a, b)
        except calc.RegisterError:
            continue
        d = _local_date(b.read_at)
        acc = months_acc.setdefault((d.year, d.month), [Decimal(0), Decimal(0), True])
        acc[0] += units
        acc[1] += Decimal(seconds) / Decimal(86400)
        acc[2] = acc[2] and b.status == ReadingStatus.ACTUAL and a.status == ReadingStatus.ACTUAL
    return [
        vee.MonthUse(y, m, (units / days * 30).quantize(Decimal("0.001")), actual=actual)
        for (y, m), (units, days, actual) in sorted(months_acc.items())
        if days > 0
    ]


# --- reading schedule --------------------------------------------------------------------


def read_day(bill_cycle: str) -> int:
    row = ReadCycle.objects.filter(code=bill_cycle).first()
    if row:
        return row.read_day
    cycles = reading_config().get("cycles", {})
    if bill_cycle in cycles:
        return int(cycles[bill_cycle])
    digits = "".join(ch for ch in bill_cycle if ch.isdigit())
    return min(max(int(digits or 1), 1), 28)


def reading_window(*, account: Account, year: int, month: int) -> tuple[date, date, date]:
    tolerance = int(reading_config()["tolerance_working_days"])
    return schedule.reading_window(account.section.calendar(), year, month, read_day(account.bill_cycle), tolerance)


def _in_window(account: Account, day: date) -> bool:
    tolerance = int(reading_config()["tolerance_working_days"])
    return schedule.in_window(account.section.calendar(), day, read_day(account.bill_cycle), tolerance)


def route_book(*, office_path: str, bill_cycle: str, year: int, month: int, route: str | None = None) -> list[dict]:
    """The readers' book: accounts of a cycle (and route) under an office, with meter and last reading."""
    if not (1 <= month <= 12 and 1 <= year <= 9999):
        raise DomainError(f"no month {year}-{month}", code="invalid_period")
    accounts = Account.objects.filter(
        office_path__startswith=office_path, bill_cycle=bill_cycle, status=AccountStatus.ACTIVE
    ).select_related("consumer", "section")
    if route:
        accounts = accounts.filter(route=route)
    accounts = list(accounts.order_by("route", "consumer_number"))
    insts = {
        i.account_id: i
        for i in Installation.objects.select_related("meter").filter(account__in=accounts, removed_at__isnull=True)
    }
    rows = []
    window = None
    for acc in accounts:
        inst = insts.get(acc.pk)
        if window is None:
            window = reading_window(account=acc, year=year, month=month)
        last = (
            _usable(Reading.objects.filter(account=acc)).order_by("-read_at").values("read_at", "kwh").first()
            if inst
            else None
        )
        rows.append(
            {
                "route": acc.route,
                "consumer_number": acc.consumer_number,
                "name": acc.consumer.name,
                "address": acc.premises_address,
                "meter": inst.meter.serial if inst else None,
                "meter_type": inst.meter.meter_type if inst else None,
                "location": inst.location if inst else "",
                "last_read_at": last["read_at"] if last else None,
                "last_kwh": last["kwh"] if last else None,
                "window": {"earliest": window[0], "scheduled": window[1], "latest": window[2]},
            }
        )
    return rows


# --- readings and VEE ---------------------------------------------------------------------


def _resolve(meter: Meter | str | None, account: Account | None, at: datetime) -> tuple[Meter, Installation]:
    if meter is None and account is None:
        raise DomainError("give a meter or an account", code="meter_required")
    if meter is not None and not isinstance(meter, Meter):
        meter = get_meter(serial=meter)
    if meter is None:
        inst = (
            Installation.objects.select_related("meter", "account")
            .filter(account=account, installed_at__lte=at)
            .filter(Q(removed_at__isnull=True) | Q(removed_at__gte=at))
            .order_by("-installed_at")
            .first()
        )
        if inst is None:
            raise DomainError("the account had no meter at that time", code="meter_not_installed")
        return inst.meter, inst
    inst = installation_at(meter, at)
    if inst is None:
        raise DomainError(f"meter {meter.serial} was not installed at that time", code="meter_not_installed")
    if account is not None and inst.account_id != account.pk:
        raise DomainError(f"meter {meter.serial} is not the account's meter", code="meter_account_mismatch")
    return meter, inst


class VeeLookups:
    """What `validate_reading` reads and writes around the rules, one query each (the per-reading
    path). `metering.vee_batch.Preloaded` answers the same questions from rows loaded once per
    batch; the rules themselves are the same code either way."""

    def previous_actual(self, reading: Reading) -> Reading | None:
        return previous_reading(reading, actual_only=True)

    def next_actual(self, reading: Reading) -> Reading | None:
        return next_reading(reading)

    def consumption(self, opening: Reading, closing: Reading) -> Decimal:
        return consumption_between(opening, closing)

    def history(self, account: Account, before: datetime) -> list[vee.MonthUse]:
        return monthly_history(account, before=before)

    def in_window(self, account: Account, day: date) -> bool:
        return _in_window(account, day)

    def save(self, reading: Reading) -> None:
        reading.save(update_fields=["exceptions", "vee_status"])

    def reconcile(self, reading: Reading) -> None:
        _reconcile(reading)


_PER_READING = VeeLookups()


def validate_reading(reading: Reading, *, lookups: VeeLookups | None = None) -> list[vee.Failure]:
    """Run the VEE rules on a reading and store the outcome (status and every failed rule)."""
    lk = lookups or _PER_READING
    account = reading.account
    rules = vee_rules()
    failures: list[vee.Failure] = []
    md = None
    if reading.kwh is not None and reading.status in REGISTER_STATUSES:
        # Measured against the last measured reading: estimates are settled, not validated against.
        prev = lk.previous_actual(reading)
        units, backwards = None, None
        days = Decimal(30)
        if prev is not None:
            try:
                units = lk.consumption(prev, reading)
            except calc.RegisterError as exc:
                if exc.code == "negative_consumption":
                    backwards = (prev.kwh, reading.kwh)
                else:
                    failures.append(vee.Failure(exc.code, "review", str(exc)))
            days = Decimal(max((reading.read_at - prev.read_at).total_seconds(), 3600)) / Decimal(86400)
        nxt = lk.next_actual(reading) if backwards is None else None
        if nxt is not None:
            # Out of order: the register must also not go backwards from this reading to the next one.
            try:
                lk.consumption(reading, nxt)
            except calc.RegisterError as exc:
                if exc.code == "negative_consumption":
                    backwards = (reading.kwh, nxt.kwh)
        history = [h for h in lk.history(account, reading.read_at) if h.actual]
        n = int(vee_config()["estimation"]["average_months"])
        daily = None
        if len(history) >= 1:
            avg = vee.average_of_previous(history, 9999, 12, n)
            daily = avg / Decimal(30) if avg is not None else None
        window_rule = rules.get("outside_window")
        in_win = None
        if window_rule and reading.source in window_rule.get("applies_to", []):
            in_win = lk.in_window(account, _local_date(reading.read_at))
        load = account.sanctioned_load
        md = reading.md_kva if account.load_unit == "kVA" else reading.md_kw
        if md is not None:
            md = md * reading.meter.multiplying_factor
        check = vee.ReadingCheck(
            read_at=reading.read_at,
            consumption=units,
            negative=backwards is not None,
            backwards=backwards,
            days=days,
            daily_average=daily if prev is not None and units is not None else None,
            occupied=account.status == AccountStatus.ACTIVE and reading.status == ReadingStatus.ACTUAL,
            in_window=in_win,
            md=md,
            sanctioned_load=load,
            load_unit=account.load_unit,
        )
        if reading.status != ReadingStatus.ACTUAL:
            # Estimates are computed, not measured: only the register arithmetic is checked.
            failures = [f for f in failures if f.rule != "zero_consumption"]
        else:
            failures.extend(vee.validate(check, rules))
    reading.exceptions = [f.as_dict() for f in failures] or None
    reading.vee_status = vee.outcome(failures)
    lk.save(reading)
    if any(f.rule == "md_exceeded" for f in failures):
        _notify_md_exceeded(reading, md)
    if reading.vee_status in USABLE_VEE and reading.status == ReadingStatus.ACTUAL:
        lk.reconcile(reading)
    return failures


def _notify_md_exceeded(reading: Reading, md) -> None:
    account = reading.account

    def send():
        from urja.notifications import services as notifications

        notify = getattr(notifications, "notify", None)
        if notify is None:  # pragma: no cover - notifications not built yet
            log.warning("notify() missing: md_exceeded for %s not sent", account.consumer_number)
            return
        notify(
            event="reading.md_exceeded",
            consumer=account.consumer,
            context={
                "consumer_number": account.consumer_number,
                "meter": reading.meter.serial,
                "read_at": reading.read_at.astimezone(IST).strftime("%d-%m-%Y"),
                "md": str(md),
                "sanctioned_load": str(account.sanctioned_load),
                "unit": account.load_unit,
            },
            idempotency_key=f"reading.md_exceeded:{reading.pk}",
        )

    transaction.on_commit(send)


def _reconcile(actual: Reading) -> None:
    """Estimated/provisional readings since the previous actual are settled by this actual reading."""
    last_actual = (
        _usable(Reading.objects.filter(account_id=actual.account_id, status=ReadingStatus.ACTUAL))
        .filter(read_at__lt=actual.read_at)
        .exclude(pk=actual.pk)
        .order_by("-read_at")
        .first()
    )
    qs = Reading.objects.filter(
        account_id=actual.account_id,
        status__in=(ReadingStatus.ESTIMATED, ReadingStatus.PROVISIONAL),
        read_at__lt=actual.read_at,
        reconciled_by__isnull=True,
    )
    if last_actual:
        qs = qs.filter(read_at__gt=last_actual.read_at)
    qs.update(reconciled_by=actual)


@transaction.atomic
def record_reading(
    *,
    actor,
    channel: str,
    source: str,
    read_at: datetime,
    kwh: object = None,
    meter: Meter | str | None = None,
    account: Account | None = None,
    kvah: object = None,
    md_kw: object = None,
    md_kva: object = None,
    tod: dict | None = None,
    status: str = ReadingStatus.ACTUAL,
    photo=None,
    latitude: object = None,
    longitude: object = None,
) -> Reading:
    """Record one register reading, validate it (VEE) and keep every failed rule on it.

    Door-locked and meter-defective visits carry no register value; a provisional (door locked)
    or estimated (defective) reading is added for billing and reconciled on the next actual.
    """
    if source not in ReadingSource.values or source in (ReadingSource.ESTIMATED, ReadingSource.INSTALLATION):
        raise DomainError(f"reading source {source!r} is not accepted here", code="invalid_source")
    if status not in (ReadingStatus.ACTUAL, ReadingStatus.DOOR_LOCKED, ReadingStatus.METER_DEFECTIVE):
        raise DomainError(f"reading status {status!r} is not accepted here", code="invalid_status")
    at = _check_at(read_at)
    meter_obj, inst = _resolve(meter, account, at)
    if not meter_obj.has_register:
        raise DomainError(f"meter {meter_obj.serial} has no register", code="meter_has_no_register")
    values = {
        "kwh": _decimal("kwh", kwh, required=status == ReadingStatus.ACTUAL),
        "kvah": _decimal("kvah", kvah),
        "md_kw": _decimal("md_kw", md_kw),
        "md_kva": _decimal("md_kva", md_kva),
    }
    if values["kwh"] is not None and values["kwh"] >= calc.register_size(meter_obj.register_digits):
        raise DomainError("kwh does not fit the meter's register", code="register_out_of_range")
    if source == ReadingSource.FIELD_AGENT and status == ReadingStatus.ACTUAL and not photo:
        raise DomainError("a field reading needs a photo of the meter", code="photo_required")
    lat, lon = _coord("latitude", latitude, 90), _coord("longitude", longitude, 180)
    if Reading.objects.filter(meter=meter_obj, read_at=at, source=source).exists():
        raise Conflict("this reading is already recorded", code="duplicate_reading")
    reading = Reading(
        meter=meter_obj,
        account=inst.account,
        installation=inst,
        read_at=at,
        source=source,
        status=status,
        tod=_tod(tod),
        latitude=lat,
        longitude=lon,
        reader=actor if getattr(actor, "pk", None) else None,
        **values,
    )
    if photo:
        reading.photo = photo
    try:
        with transaction.atomic():
            reading.save()
    except IntegrityError as exc:
        raise Conflict("this reading is already recorded", code="duplicate_reading") from exc
    reading.account = inst.account
    reading.meter = meter_obj
    reading.installation = inst
    validate_reading(reading)
    if status != ReadingStatus.ACTUAL:
        _estimate(
            account=inst.account, at=at, door_locked=status == ReadingStatus.DOOR_LOCKED, actor=actor, channel=channel
        )
    if meter_obj.is_smart:
        Meter.objects.filter(pk=meter_obj.pk).update(last_seen_at=timezone.now())
    record_audit(
        actor=actor,
        channel=channel,
        action="reading.recorded",
        obj=reading,
        changes={"kwh": reading.kwh, "status": status, "vee": reading.vee_status},
    )
    return reading


def _estimate(*, account: Account, at: datetime, door_locked: bool, actor, channel: str) -> Reading:
    cfg = vee_config()["estimation"]
    methods = cfg["door_locked_methods"] if door_locked else cfg["methods"]
    day = _local_date(at)
    history = monthly_history(account, before=at, months=int(cfg["history_months"]))
    prev = (
        _usable(Reading.objects.select_related("installation", "meter").filter(account=account))
        .filter(read_at__lt=at)
        .order_by("-read_at", "-id")
        .first()
    )
    if prev is None:
        raise DomainError("no earlier reading to estimate from", code="cannot_estimate")
    found = vee.estimate(history, day.year, day.month, methods=methods, n=int(cfg["average_months"]))
    units, method = found if found else (Decimal(0), "no_history")
    # Pro-rate the monthly figure to the days since the previous reading.
    days = Decimal((at - prev.read_at).total_seconds()) / Decimal(86400)
    units = (units * days / Decimal(30)).quantize(Decimal("0.001"))
    inst = current_installation(account) or prev.installation
    meter = inst.meter
    start = prev.kwh if prev.installation_id == inst.pk else inst.initial_kwh
    register = (start + units / meter.multiplying_factor) % calc.register_size(meter.register_digits)
    status = ReadingStatus.PROVISIONAL if door_locked else ReadingStatus.ESTIMATED
    reading, created = Reading.objects.get_or_create(
        meter=meter,
        read_at=at,
        source=ReadingSource.ESTIMATED,
        defaults=dict(
            account=account,
            installation=inst,
            status=status,
            kwh=register.quantize(Decimal("0.001")),
            vee_status=VeeStatus.PASSED,
            estimation_method=method,
        ),
    )
    if created:
        record_audit(
            actor=actor,
            channel=channel,
            action="reading.estimated",
            obj=reading,
            changes={"units": units, "method": method, "status": status},
        )
    return reading


@transaction.atomic
def estimate_reading(*, account: Account, at: datetime, actor, channel: str, door_locked: bool = False) -> Reading:
    return _estimate(account=account, at=_check_at(at), door_locked=door_locked, actor=actor, channel=channel)


def _check_between_neighbours(reading: Reading, value: Decimal, *, code: str) -> None:
    """`value` on `reading`'s register must not go backwards from the previous usable actual reading
    nor to the next one (exact across replacement and rollover)."""
    probe = Reading(
        pk=reading.pk,
        account_id=reading.account_id,
        installation=reading.installation,
        meter=reading.meter,
        read_at=reading.read_at,
        kwh=value,
    )
    prev, nxt = previous_reading(reading, actual_only=True), next_reading(reading)
    for opening, closing in ((prev, probe), (probe, nxt)):
        if opening is None or closing is None:
            continue
        try:
            consumption_between(opening, closing)
        except calc.RegisterError as exc:
            if exc.code == "negative_consumption":
                raise DomainError(
                    f"the register would go backwards from {opening.kwh} to {closing.kwh}: edit the value, "
                    "replace it by an estimate, or record the meter change",
                    code=code,
                ) from exc
            raise DomainError(str(exc), code=exc.code) from exc


@transaction.atomic
def review_reading(
    *, reading: Reading, action: str, actor, channel: str, reason: str = "", kwh: object = None
) -> Reading:
    """Billing officer's decision on a reading in the review queue: accept, edit (with reason) or estimate."""
    reading = Reading.objects.select_for_update().select_related("account", "meter", "installation").get(pk=reading.pk)
    if reading.vee_status != VeeStatus.REVIEW:
        raise Conflict("the reading is not waiting for review", code="not_in_review")
    if action not in ("accept", "edit", "estimate"):
        raise DomainError("action must be accept, edit or estimate", code="invalid_review_action")
    if action in ("edit", "estimate") and not reason.strip():
        raise DomainError("a reason is required", code="reason_required")
    reading.reviewed_by = actor if getattr(actor, "pk", None) else None
    reading.review_reason = reason[:240]
    changes = {"action": action, "reason": reason}
    if action == "accept":
        if reading.status == ReadingStatus.ACTUAL and reading.kwh is not None:
            # Accepting a register that went backwards would only move the failure to the bill run.
            _check_between_neighbours(reading, reading.kwh, code="cannot_accept")
        reading.vee_status = VeeStatus.ACCEPTED
    elif action == "edit":
        value = _decimal("kwh", kwh, required=True)
        if value >= calc.register_size(reading.meter.register_digits):
            raise DomainError("kwh does not fit the meter's register", code="register_out_of_range")
        # The edited value must fit between the readings on either side (a late reading has both).
        _check_between_neighbours(reading, value, code="negative_consumption")
        reading.original_kwh = reading.kwh
        reading.kwh = value
        reading.vee_status = VeeStatus.EDITED
        changes.update({"from": reading.original_kwh, "to": value})
    else:
        reading.vee_status = VeeStatus.REPLACED
    reading.save(update_fields=["vee_status", "kwh", "original_kwh", "reviewed_by", "review_reason"])
    if action == "estimate":
        est = _estimate(account=reading.account, at=reading.read_at, door_locked=False, actor=actor, channel=channel)
        changes["estimate"] = est.pk
    elif reading.status == ReadingStatus.ACTUAL:
        _reconcile(reading)
    record_audit(actor=actor, channel=channel, action="reading.reviewed", obj=reading, changes=changes)
    return reading


def run_vee_pending(*, limit: int = 5000) -> int:
    """Validate imported readings waiting for VEE, batch by batch (found by their id range, oldest
    readings first within a batch), then smart-meter readings the gateway stored but did not validate.
    Idempotent: a reading is validated once; a batch is done when none of its readings is pending."""
    from .models import ImportBatch

    done = 0
    for batch in ImportBatch.objects.filter(vee_done=False, state=ImportBatch.State.DONE).order_by("pk"):
        if batch.first_reading_id is None:
            ImportBatch.objects.filter(pk=batch.pk).update(vee_done=True)
            continue
        in_batch = Reading.objects.filter(
            pk__gte=batch.first_reading_id, pk__lte=batch.last_reading_id, vee_status=VeeStatus.PENDING
        )
        ids = list(in_batch.order_by("read_at", "id").values_list("id", flat=True)[: limit - done])
        done += validate_many(ids)
        if not in_batch.exists():
            ImportBatch.objects.filter(pk=batch.pk).update(vee_done=True)
        if done >= limit:
            break
    if done < limit:
        # Left pending by a gateway error or restart: without this they would wait for the bill run,
        # and a register that went backwards would not reach the review queue until then.
        unbatched = Reading.objects.filter(vee_status=VeeStatus.PENDING, batch__isnull=True).order_by("read_at", "id")
        done += validate_many(list(unbatched.values_list("id", flat=True)[: limit - done]))
    return done


def validate_many(ids: list[int]) -> int:
    """Validate pending readings in the order given, per batch (`metering.vee_batch`: the same
    rules, their neighbours and history loaded once per chunk of readings)."""
    from .vee_batch import validate_batch

    return validate_batch(ids)


def validate_one_by_one(ids: list[int]) -> int:
    """The per-reading path of `validate_many`: a transaction and the queries of each reading."""
    done = 0
    for pk in ids:
        with transaction.atomic():
            reading = (
                Reading.objects.select_for_update()
                .select_related("account", "meter", "installation")
                .filter(pk=pk, vee_status=VeeStatus.PENDING)
                .first()
            )
            if reading is None:
                continue
            validate_reading(reading)
            done += 1
    return done


# --- what billing calls --------------------------------------------------------------------


@dataclass
class BillingConsumption:
    """Energy for one account and billing period. Decimals; kWh to 3 places; MD already × MF."""

    consumer_number: str
    period_start: date
    period_end: date
    kwh: Decimal  # units to bill for the period, never negative
    kvah: Decimal | None
    md_kw: Decimal | None
    md_kva: Decimal | None
    tod: dict[str, Decimal]
    status: str  # "actual" | "estimated" | "provisional"
    exceptions: list[dict] = field(default_factory=list)
    held: bool = False  # a reading of the period waits in the VEE review queue
    md_exceeded: bool = False  # bill this cycle on the actual MD (Rights of Consumers Rules)
    estimation_method: str = ""
    opening: dict | None = None
    closing: dict | None = None
    reconciliation: dict | None = None  # when an actual reading settles earlier estimates
    meter_serial: str | None = None
    meter_rent_applies: bool = False
    meters: list[str] = field(default_factory=list)
    # Over-estimated units the actual reading withdraws from the estimates since the last actual
    # reading (≥ 0; `kwh` is then 0): billing credits their charges back (billing/trueup.py).
    withdrawn: Decimal = Decimal(0)
    last_actual_at: datetime | None = None

    def as_dict(self) -> dict:
        return asdict(self)


def _reading_brief(r: Reading) -> dict:
    return {
        "id": r.pk,
        "read_at": r.read_at.isoformat(),
        "kwh": r.kwh,
        "status": r.status,
        "source": r.source,
        "meter": r.meter.serial,
    }


def billing_consumption(
    *,
    account: Account,
    period_start: date,
    period_end: date,
    estimate_missing: bool = True,
    billed_at: datetime | None = None,
) -> BillingConsumption:
    """Units to bill for (period_start, period_end] (local dates, Asia/Kolkata).

    Opening reading: the last usable reading read on or before period_start (or the first of the
    period, e.g. the installation reading of a new connection). Closing: the last usable reading of
    the period; when there is none, an estimated reading is made at period_end (estimate_missing).
    Exact across meter replacements and register rollover. Raises DomainError `no_meter`,
    `no_reading`, or a register error code (e.g. `negative_consumption`).

    `billed_at`: when the account was last billed (billing passes its previous bill's `created_at`).
    The previous bill closed on the last usable reading recorded by then, so the opening (and the
    last actual reading that anchors a true-up of estimates) is chosen among those. A reading dated
    before the period but recorded after that bill — a late reading, a meter replacement recorded
    after the fact and backdated into a period billed on an estimate — is not an opening: its units
    are reached through the register chain from the true opening (old meter to its final reading,
    new meter from its installation reading), so nothing between the two is lost or billed twice.
    None: every reading counts (no earlier bill, or a preview).
    """
    if period_end <= period_start:
        raise DomainError("period_end must be after period_start", code="invalid_period")
    start_dt, end_dt = _day_end(period_start), _day_end(period_end)
    pending = Reading.objects.filter(account=account, vee_status=VeeStatus.PENDING, read_at__lt=end_dt)
    if pending.exists():
        for r in pending.select_related("account", "meter", "installation").order_by("read_at", "id"):
            with transaction.atomic():
                validate_reading(r)
    base = _usable(Reading.objects.select_related("installation", "meter").filter(account=account))
    # the readings the previous bill saw (every reading when there is none)
    known = base.filter(created_at__lte=billed_at) if billed_at is not None else base
    opening = known.filter(read_at__lt=start_dt).order_by("-read_at", "-id").first()
    if opening is None and billed_at is not None:
        opening = base.filter(read_at__lt=start_dt).order_by("-read_at", "-id").first()
    if opening is None:
        opening = base.filter(read_at__lt=end_dt).order_by("read_at", "id").first()
    if opening is None:
        if not Installation.objects.filter(account=account).exists():
            raise NotFound("the account has no meter", code="no_meter")
        raise DomainError("no reading to start the period from", code="no_reading")
    closing = base.filter(read_at__gte=start_dt, read_at__lt=end_dt).order_by("-read_at", "-id").first()
    if closing is None or closing.pk == opening.pk:
        if not estimate_missing:
            raise DomainError("no reading in the period", code="no_reading")
        at = min(datetime.combine(period_end, time(12), IST), timezone.now())
        with transaction.atomic():
            closing = _estimate(account=account, at=at, door_locked=False, actor=None, channel=Channel.SYSTEM)
        closing = Reading.objects.select_related("installation", "meter").get(pk=closing.pk)
    margin = rollover_margin()
    reconciliation = None
    last_actual = None
    withdrawn = Decimal(0)
    if opening.status != ReadingStatus.ACTUAL:
        last_actual = (
            known.filter(status=ReadingStatus.ACTUAL, read_at__lt=opening.read_at).order_by("-read_at", "-id").first()
        )
    if last_actual is not None:
        # Settling estimates: units since the last measured reading, less what the estimates billed.
        actual_units = calc.consumption(_segments(last_actual, closing), margin)
        billed = calc.consumption(_segments(last_actual, opening), margin)
        kwh = actual_units - billed
        if closing.status == ReadingStatus.ACTUAL:
            reconciliation = {
                "last_actual_reading": last_actual.pk,
                "actual_kwh_since_last_actual": actual_units,
                "estimated_kwh_already_billed": billed,
            }
        # Estimates above what the register later showed are withdrawn, never billed as negative
        # units: the period bills 0 and the surplus goes back to the estimated bills' charges.
        if kwh < 0:
            withdrawn, kwh = -kwh, Decimal(0)
            if reconciliation is not None:
                reconciliation["estimated_kwh_withdrawn"] = withdrawn
    else:
        kwh = calc.consumption(_segments(opening, closing, "kwh"), margin)
    try:
        kvah = calc.consumption(_segments(opening, closing, "kvah"), margin) if closing.kvah is not None else None
    except (calc.RegisterError, TypeError):
        kvah = None
    tod: dict[str, Decimal] = {}
    if opening.tod and closing.tod and opening.installation_id == closing.installation_id:
        tod = calc.tod_consumption(
            [(opening.tod, closing.tod, closing.meter.register_digits, closing.meter.multiplying_factor)], margin
        )
    period = Reading.objects.filter(account=account, read_at__gte=start_dt, read_at__lt=end_dt).select_related("meter")
    md_kw = md_kva = None
    exceptions: list[dict] = []
    held = False
    for r in period:
        if r.vee_status == VeeStatus.REVIEW:
            held = True
            exceptions.append(
                {"rule": "under_review", "severity": "review", "message": f"reading {r.pk} waits for review"}
            )
        if r.vee_status not in USABLE_VEE:
            continue
        for ex in r.exceptions or []:
            exceptions.append(ex)
        mf = r.meter.multiplying_factor
        if r.md_kw is not None:
            md_kw = max(md_kw or Decimal(0), r.md_kw * mf)
        if r.md_kva is not None:
            md_kva = max(md_kva or Decimal(0), r.md_kva * mf)
    meters = list(
        Installation.objects.filter(account=account, installed_at__lt=end_dt)
        .filter(Q(removed_at__isnull=True) | Q(removed_at__gte=start_dt))
        .order_by("installed_at")
        .values_list("meter__serial", flat=True)
    )
    status = {ReadingStatus.ACTUAL: "actual", ReadingStatus.PROVISIONAL: "provisional"}.get(closing.status, "estimated")
    return BillingConsumption(
        consumer_number=account.consumer_number,
        period_start=period_start,
        period_end=period_end,
        kwh=kwh.quantize(Decimal("0.001")),
        kvah=kvah.quantize(Decimal("0.001")) if kvah is not None else None,
        md_kw=md_kw,
        md_kva=md_kva,
        tod={k: v.quantize(Decimal("0.001")) for k, v in tod.items()},
        status=status,
        exceptions=exceptions,
        held=held,
        md_exceeded=any(e.get("rule") == "md_exceeded" for e in exceptions),
        estimation_method=closing.estimation_method,
        opening=_reading_brief(opening),
        closing=_reading_brief(closing),
        reconciliation=reconciliation,
        meter_serial=closing.meter.serial,
        meter_rent_applies=meter_rent_applies(account),
        meters=meters,
        withdrawn=withdrawn.quantize(Decimal("0.001")),
        last_actual_at=last_actual.read_at if last_actual is not None else None,
    )


# --- smart-meter commands ----------------------------------------------------------------


def _command_params(command: str, params: dict) -> dict:
    params = dict(params or {})
    if command == CommandKind.SET_LOAD_LIMIT:
        kw = _decimal("kw", params.get("kw"), required=True)
        if kw <= 0:
            raise DomainError("load limit must be above zero", code="invalid_command_params")
        return {"kw": str(kw)}
    if command == CommandKind.SET_SUPPLY_HOURS:
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
    if idempotency_key:
        existing = MeterCommand.objects.filter(idempotency_key=idempotency_key).first()
        if existing:
            if existing.command != command:
                raise Conflict("idempotency key already used for another command", code="idempotency_conflict")
            return existing
    if meter is None:
        if account is None:
            raise DomainError("give a meter or an account", code="meter_required")
        inst = current_installation(account)
        if inst is None:
            raise NotFound("the account has no meter installed", code="no_meter")
        meter = inst.meter
    elif account is None:
        inst = Installation.objects.filter(meter=meter, removed_at__isnull=True).select_related("account").first()
        account = inst.account if inst else None
    cfg = meters_config()["commands"]
    if meter.meter_type not in cfg["allowed_meter_types"]:
        raise DomainError(
            f"meter {meter.serial} ({meter.meter_type}) cannot take remote commands", code="meter_not_smart"
        )
    cmd = MeterCommand.objects.create(
        command_id=str(uuid.uuid4()),
        meter=meter,
        account=account,
        command=command,
        params=_command_params(command, params or {}),
        idempotency_key=idempotency_key or None,
        timeout_seconds=int(timeout_seconds or cfg["timeout_seconds"]),
        max_attempts=int(max_attempts or cfg["max_attempts"]),
        requested_by=actor if getattr(actor, "pk", None) else None,
        channel=channel,
    )
    record_audit(
        actor=actor,
        channel=channel,
        action="meter.command",
        obj=cmd,
        changes={"command": command, "meter": meter.serial, "params": cmd.params},
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


# --- smart-meter data in (called by the MQTT gateway with parsed messages) ------------------------


def dead_letter(*, topic: str, payload: bytes | str, code: str, reason: str) -> DeadLetter:
    text = payload.decode("utf-8", errors="replace") if isinstance(payload, bytes) else payload
    return DeadLetter.objects.create(topic=topic[:200], payload=text[:10000], code=code[:40], reason=reason[:400])


def store_smart_batch(*, readings: list[dict], intervals: list[dict], events: list[dict]) -> dict:
    """Store parsed smart-meter data in bulk. Items carry 'serial' already checked to exist.

    readings: {serial, ts, kwh, kvah, md_kw, md_kva, tod}; intervals: {serial, ts, minutes, kwh, kvah};
    events: {serial, ts, event, details}. Duplicates (re-sent messages) are ignored.
    """
    serials = {i["serial"] for i in (*readings, *intervals, *events)}
    meters = {m.serial: m for m in Meter.objects.filter(serial__in=serials)}
    new_readings = []
    skipped = 0
    for item in readings:
        meter = meters[item["serial"]]
        inst = installation_at(meter, item["ts"])
        if inst is None:
            skipped += 1
            continue
        new_readings.append(
            Reading(
                meter=meter,
                account_id=inst.account_id,
                installation=inst,
                read_at=item["ts"],
                source=ReadingSource.SMART_METER,
                status=ReadingStatus.ACTUAL,
                kwh=item["kwh"],
                kvah=item.get("kvah"),
                md_kw=item.get("md_kw"),
                md_kva=item.get("md_kva"),
                tod=item.get("tod"),
                vee_status=VeeStatus.PENDING,
            )
        )
    with transaction.atomic():
        Reading.objects.bulk_create(new_readings, ignore_conflicts=True, batch_size=1000)
        IntervalReading.objects.bulk_create(
            [
                IntervalReading(
                    meter=meters[i["serial"]],
                    ts=i["ts"],
                    minutes=i.get("minutes", 30),
                    kwh=i["kwh"],
                    kvah=i.get("kvah"),
                )
                for i in intervals
            ],
            ignore_conflicts=True,
            batch_size=2000,
        )
        SmartMeterEvent.objects.bulk_create(
            [
                SmartMeterEvent(meter=meters[e["serial"]], at=e["ts"], kind=e["event"], details=e.get("details") or {})
                for e in events
            ],
            ignore_conflicts=True,
        )
        Meter.objects.filter(serial__in=serials).update(last_seen_at=timezone.now())
    return {"readings": len(new_readings), "intervals": len(intervals), "events": len(events), "not_installed": skipped}


# --- views of the data (read-only) ----------------------------------------------------------


def consumption_series(account: Account, *, months: int = 12, today: date | None = None) -> list[dict]:
    """Units per calendar month for the last `months` months: between the last usable readings of
    consecutive months (exact across replacements). Months without a reading have kwh None."""
    keys = schedule.months_back(today or timezone.localdate(), months)
    since = datetime(keys[0][0], keys[0][1], 1, tzinfo=IST)
    last: dict[tuple[int, int], Reading] = {}
    for r in (
        _usable(Reading.objects.select_related("installation", "meter").filter(account=account))
        .filter(read_at__gte=since)
        .order_by("read_at", "id")
    ):
        d = _local_date(r.read_at)
        last[(d.year, d.month)] = r
    opening = (
        _usable(Reading.objects.select_related("installation", "meter").filter(account=account))
        .filter(read_at__lt=since)
        .order_by("-read_at")
        .first()
    )
    series = []
    prev = opening
    for key in keys:
        r = last.get(key)
        row = {"year": key[0], "month": key[1], "kwh": None, "status": None}
        if r is not None and prev is not None:
            try:
                row["kwh"] = consumption_between(prev, r)
                row["status"] = r.status
            except calc.RegisterError:
                row["status"] = "error"
        if r is not None:
            prev = r
        series.append(row)
    return series[1:]
