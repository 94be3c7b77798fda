"""The meter registry: registering meters, their status, installing, removing, replacing,
shifting and testing meters, seals (each audited and entered on the meter's sheet)."""

from __future__ import annotations

from datetime import date, datetime, time
from decimal import Decimal, InvalidOperation

from django.db import transaction
from django.utils import timezone

from urja.core import boundary
from urja.core.calendars import IST
from urja.core.errors import Conflict, DomainError, NotFound
from urja.core.services import record_audit
from urja.core.states import transition
from urja.customers.models import Account, AccountStatus
from urja.metering import consumption as calc
from urja.metering.models import (
    METER_STATUS,
    Installation,
    Meter,
    MeterStatus,
    MeterTest,
    MeterType,
    Ownership,
    Reading,
    ReadingSource,
    ReadingStatus,
    SheetEntry,
    VeeStatus,
)
from urja.metering.selectors import (
    meters_config,
    rollover_margin,
)
from urja.metering.services._base import (
    CLOCK_SKEW,
    _decimal,
    _sheet,
    _tod,
)


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


def _installed_for_update(account: Account) -> Installation:
    """The account's open installation, locked (removal, replacement and shifting change it)."""
    inst = (
        Installation.objects.select_for_update()
        .select_related("meter")
        .filter(account=account, removed_at__isnull=True)
        .first()
    )
    if inst is None:
        raise NotFound("the account has no meter installed", code="no_meter")
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
    inst = _installed_for_update(account)
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
    old = _installed_for_update(account)
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
