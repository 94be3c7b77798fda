"""Demo data: meters and 12 months of readings for demo accounts (bulk; called by `urja demo`)."""

from __future__ import annotations

import random
from datetime import date, datetime, time
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from urja.core.calendars import IST

from . import schedule, selectors
from .models import (
    Installation,
    Meter,
    MeterStatus,
    MeterType,
    Ownership,
    Reading,
    ReadingSource,
    ReadingStatus,
    SheetEntry,
    VeeStatus,
)

# Seasonal factor by month (Odisha: summer peak, mild winter).
SEASON = {1: 0.8, 2: 0.85, 3: 1.0, 4: 1.25, 5: 1.4, 6: 1.3, 7: 1.1, 8: 1.05, 9: 1.05, 10: 0.95, 11: 0.85, 12: 0.8}


def _meter_type(account, i: int) -> str:
    load_kw = float(account.sanctioned_load)
    if account.supply_type.startswith("ht"):
        return MeterType.CT_PT_HT
    if account.is_prepaid:
        return MeterType.SMART_PREPAID
    if load_kw > 11:
        return MeterType.AMR  # seed 000: AMR for consumers above 11 kW
    return MeterType.SMART if i % 5 == 0 else MeterType.STATIC


@transaction.atomic
def populate(accounts: list, months: int = 12, *, seed: int = 42) -> dict:
    """Give each account without a meter a meter and `months` months of monthly readings
    (some smart meters; a door-locked month and an MD above sanctioned load among them)."""
    rng = random.Random(seed)
    today = timezone.localdate()
    have = set(Installation.objects.filter(account__in=accounts).values_list("account_id", flat=True))
    todo = [a for a in accounts if a.pk not in have]
    if not todo:
        return {"meters": 0, "readings": 0}
    keys = schedule.months_back(today, months)
    start = datetime.combine(date(keys[0][0], keys[0][1], 1), time(10), IST)
    meters = []
    for i, account in enumerate(todo):
        kind = _meter_type(account, i)
        prefix = {"smart": "SM", "smart_prepaid": "SP", "amr": "AM", "ct_pt_ht": "HT"}.get(kind, "ST")
        meters.append(
            Meter(
                serial=f"{prefix}{account.pk:08d}",
                make=rng.choice(["Genus", "Secure", "HPL", "L&T", "Landis+Gyr"]),
                model=rng.choice(["G1", "Sprint 350", "Apex 100", "E150"]),
                meter_type=kind,
                phase=3 if account.supply_type.endswith("3ph") or kind in (MeterType.AMR, MeterType.CT_PT_HT) else 1,
                multiplying_factor=Decimal(40) if kind == MeterType.CT_PT_HT else Decimal(1),
                register_digits=6,
                ownership=Ownership.CONSUMER_BOUGHT if i % 17 == 3 else Ownership.UTILITY,
                seals=[f"S{account.pk:07d}A", f"S{account.pk:07d}B"],
                status=MeterStatus.INSTALLED,
            )
        )
    Meter.objects.bulk_create(meters, batch_size=2000)
    meters = {m.serial: m for m in Meter.objects.filter(serial__in=[m.serial for m in meters])}
    insts = []
    for account in todo:
        serial = next(s for s in (f"{p}{account.pk:08d}" for p in ("SM", "SP", "AM", "HT", "ST")) if s in meters)
        insts.append(
            Installation(
                meter=meters[serial],
                account=account,
                installed_at=start,
                initial_kwh=Decimal(rng.randint(0, 9000)),
                location="meter box at the gate",
                reason="new installation",
            )
        )
    Installation.objects.bulk_create(insts, batch_size=2000)
    insts = list(
        Installation.objects.filter(account__in=todo, removed_at__isnull=True).select_related("meter", "account")
    )
    readings, sheet = [], []
    now = timezone.now()
    for n, inst in enumerate(insts):
        account, meter = inst.account, inst.meter
        sheet.append(
            SheetEntry(
                meter=meter,
                account=account,
                kind=SheetEntry.Kind.INSTALLATION,
                at=start,
                summary=f"Installed at {account.consumer_number}, initial reading {inst.initial_kwh} kWh",
                details={"initial_kwh": str(inst.initial_kwh), "seals": meter.seals},
                performed_by_name="demo",
                channel="system",
                consumer_acknowledged=True,
                acknowledged_by=account.consumer.name,
            )
        )
        readings.append(
            Reading(
                meter=meter,
                account=account,
                installation=inst,
                read_at=start,
                source=ReadingSource.INSTALLATION,
                kwh=inst.initial_kwh,
                tod={"solar": "0.000"} if meter.is_smart else None,
                vee_status=VeeStatus.PASSED,
            )
        )
        load = float(account.sanctioned_load) * (0.8 if account.load_unit == "kVA" else 1)
        monthly = max(30.0, load * rng.uniform(45, 110))
        register = inst.initial_kwh
        solar_register = Decimal(0)  # TOD registers are cumulative, like the main register
        day = selectors.read_day(account.bill_cycle)
        source = {
            MeterType.SMART: ReadingSource.SMART_METER,
            MeterType.SMART_PREPAID: ReadingSource.SMART_METER,
            MeterType.AMR: ReadingSource.AMR,
            MeterType.CT_PT_HT: ReadingSource.AMR,
        }.get(meter.meter_type, ReadingSource.FIELD_AGENT)
        door_locked_month = keys[-3] if n % 23 == 7 else None
        for y, m in keys[1:]:
            at = datetime.combine(date(y, m, min(day, 28)), time(10 + n % 7, (n * 7) % 60), IST)
            if at >= now:
                break
            if (y, m) == door_locked_month:
                readings.append(
                    Reading(
                        meter=meter,
                        account=account,
                        installation=inst,
                        read_at=at,
                        source=source,
                        status=ReadingStatus.DOOR_LOCKED,
                        vee_status=VeeStatus.PASSED,
                    )
                )
                continue
            units = Decimal(str(round(monthly * SEASON[m] * rng.uniform(0.85, 1.15), 1)))
            register = (register + units / meter.multiplying_factor) % Decimal(10**meter.register_digits)
            md = Decimal(str(round(load * rng.uniform(0.3, 0.9), 2)))
            kva = account.load_unit == "kVA"
            flags = None
            if n % 29 == 11 and (y, m) == keys[-2]:
                md = Decimal(str(round(load * 1.3, 2)))  # one consumer above sanctioned load
                flags = [{"rule": "md_exceeded", "severity": "flag", "message": "maximum demand above sanctioned load"}]
            solar_register += (units * Decimal("0.3")).quantize(Decimal("0.001"))
            readings.append(
                Reading(
                    meter=meter,
                    account=account,
                    installation=inst,
                    read_at=at,
                    source=source,
                    kwh=register.quantize(Decimal("0.001")),
                    kvah=(register * Decimal("1.04")).quantize(Decimal("0.001")),
                    # the register records demand on the meter's side: the primary demand ÷ MF
                    md_kw=(md / meter.multiplying_factor * (Decimal("0.9") if kva else 1)).quantize(Decimal("0.001")),
                    md_kva=(md / meter.multiplying_factor).quantize(Decimal("0.001")) if kva else None,
                    tod={"solar": str(solar_register)} if meter.is_smart else None,
                    vee_status=VeeStatus.FLAGGED if flags else VeeStatus.PASSED,
                    exceptions=flags,
                )
            )
    Reading.objects.bulk_create(readings, batch_size=5000)
    SheetEntry.objects.bulk_create(sheet, batch_size=5000)
    return {"meters": len(meters), "readings": len(readings)}
