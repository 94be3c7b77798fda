"""Readings and VEE: recording, estimating and reviewing readings, and validating them."""

from __future__ import annotations

import logging
from datetime import date, datetime
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from urja.core.calendars import IST
from urja.core.errors import Conflict, DomainError
from urja.core.services import record_audit
from urja.customers.models import Account, AccountStatus
from urja.metering import consumption as calc
from urja.metering import vee
from urja.metering.models import (
    REGISTER_STATUSES,
    USABLE_VEE,
    Installation,
    Meter,
    Reading,
    ReadingSource,
    ReadingStatus,
    VeeStatus,
)
from urja.metering.selectors import (
    _in_window,
    _local_date,
    _usable,
    consumption_between,
    current_installation,
    get_meter,
    installation_at,
    monthly_history,
    next_reading,
    previous_reading,
    vee_config,
    vee_rules,
)
from urja.metering.services._base import (
    _coord,
    _decimal,
    _tod,
)
from urja.metering.services.registry import (
    _check_at,
)

log = logging.getLogger(__name__)


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
    from urja.metering.models import ImportBatch

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
    from urja.metering.vee_batch import validate_batch

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
