"""Demo data for reports (called by `urja demo` through the hook contract of core.demo):

* a boundary meter on every DT of the demo accounts and on every feeder head, with month-end
  readings for the last four months: a DT's input is its billed energy plus a plausible loss
  (6–14 %), a few "theft" DTs lose 35–50 %; a feeder's is its DTs' plus 4 % (HT losses). One DT's
  last reading is left out, so a flagged (estimated) input shows on the dashboard;
* the energy accounting of the last three months (the job keeps it fresh afterwards) and the
  inspection list of the worst DTs;
* a past outage on one DT, detected from its smart meters' last-gasp events seven hours ago and
  restored one hour ago (so every consumer of that DT has an automatic compensation credit);
* a marker for `reports.runtime`: while `urja run` runs (outside production), the smart meters of one
  demo DT lose supply every half hour for four minutes over MQTT, so an outage appears by itself
  on the outage pages and closes again.
"""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from django.db.models import Count, Sum
from django.utils import timezone

from urja.billing.models import Bill
from urja.core.calendars import IST
from urja.metering import boundary
from urja.metering import services as metering
from urja.metering.models import SMART_TYPES, BoundaryInstallation, BoundaryReading, Installation, SmartMeterEvent
from urja.network.models import DistributionTransformer

from . import losses, outages, services
from .models import EventCursor

THEFT_DTS = 3
MARKER = "demo:outage_scenario"


def _month_end(d: date) -> datetime:
    first_next = date(d.year + d.month // 12, d.month % 12 + 1, 1)
    return datetime.combine(first_next, time(), IST) - timedelta(hours=1)


def _months(n: int) -> list[str]:
    today = timezone.localdate()
    current = f"{today.year:04d}-{today.month:02d}"
    return [services.previous_period(current, k) for k in range(n, 0, -1)]


def populate(*, accounts, rng: random.Random, stdout=print) -> None:
    dt_ids = sorted({a.transformer_id for a in accounts if a.transformer_id})
    if not dt_ids:
        stdout("reports: no demo account on a DT; nothing to meter")
        return
    dts = list(DistributionTransformer.objects.filter(pk__in=dt_ids).select_related("feeder"))
    periods = _months(4)
    first, _ = services.parse_period(periods[0])
    installed_at = datetime.combine(first, time(), IST) - timedelta(days=2)
    # billed energy per DT per month (every account of the DT, not only the sample)
    billed: dict[tuple[int, str], Decimal] = defaultdict(Decimal)
    for dt, end, units in (
        Bill.objects.filter(account__transformer_id__in=dt_ids, period_end__gte=first)
        .values_list("account__transformer_id", "period_end")
        .annotate(u=Sum("units"))
    ):
        billed[(dt, f"{end.year:04d}-{end.month:02d}")] += units
    counts = dict(
        DistributionTransformer.objects.filter(pk__in=dt_ids).annotate(n=Count("account")).values_list("pk", "n")
    )
    theft = set(rng.sample(dt_ids, min(THEFT_DTS, len(dt_ids))))
    skipped = rng.choice(dt_ids)
    existing = set(BoundaryInstallation.objects.values_list("transformer_id", "feeder_id"))
    feeder_input: dict[tuple[int, str], Decimal] = defaultdict(Decimal)
    feeders = {}
    for dt in dts:
        feeders[dt.feeder_id] = dt.feeder
        if (dt.pk, None) in existing:
            continue
        inst = boundary.install_boundary_meter(
            meter=_meter(f"DTM{dt.pk:06d}"), transformer=dt, actor=None, channel="system", installed_at=installed_at,
            initial_kwh=Decimal(rng.randint(1000, 90000)),
        )  # fmt: skip
        register = inst.initial_kwh
        rows = []
        loss = Decimal(str(rng.uniform(0.35, 0.5) if dt.pk in theft else rng.uniform(0.06, 0.14)))
        for p in periods:
            units = billed.get((dt.pk, p)) or Decimal(150 * max(counts.get(dt.pk, 1), 1))
            delta = (units / (1 - loss)).quantize(Decimal("0.001"))
            register += delta
            feeder_input[(dt.feeder_id, p)] += delta
            if dt.pk == skipped and p == periods[-1]:
                continue  # no reading: the accounting estimates it and says so
            rows.append(BoundaryReading(meter_id=inst.meter_id, installation=inst, read_at=_month_end(
                services.parse_period(p)[0]), source="amr", kwh=register))  # fmt: skip
        BoundaryReading.objects.bulk_create(rows, ignore_conflicts=True)
    for feeder_id, feeder in feeders.items():
        if (None, feeder_id) in existing:
            continue
        inst = boundary.install_boundary_meter(
            meter=_meter(f"FDM{feeder_id:06d}"), feeder=feeder, actor=None, channel="system",
            installed_at=installed_at, initial_kwh=Decimal(rng.randint(100000, 900000)),
        )  # fmt: skip
        register, rows = inst.initial_kwh, []
        for p in periods:
            register += (feeder_input[(feeder_id, p)] * Decimal("1.04")).quantize(Decimal("0.001"))
            at = _month_end(services.parse_period(p)[0])
            rows.append(
                BoundaryReading(meter_id=inst.meter_id, installation=inst, read_at=at, source="amr", kwh=register)
            )
        BoundaryReading.objects.bulk_create(rows, ignore_conflicts=True)
    for p in periods[1:]:
        services.compute_period(period=p)
    inspections = losses.build_inspections(period=periods[-1], worst_dts=10)
    past = _past_outage(dt_ids, rng)
    _mark_scenario(dt_ids, exclude=past)
    stdout(
        f"reports: boundary meters on {len(dts)} DTs and {len(feeders)} feeders ({len(theft)} DTs with theft), "
        f"energy accounting {periods[1]}..{periods[-1]}, {inspections} inspections, past outage: {past or 'none'}"
    )


def _meter(serial: str):
    from urja.metering.models import Meter

    found = Meter.objects.filter(serial=serial).first()
    return found or metering.register_meter(
        serial=serial,
        make="Secure",
        model="Apex 150",
        meter_type="ct_pt_ht",
        phase=3,
        register_digits=8,
        actor=None,
        channel="system",
    )


def _smart_meters_by_dt(dt_ids) -> dict[int, list[int]]:
    found: dict[int, list[int]] = defaultdict(list)
    for meter_id, dt in Installation.objects.filter(
        removed_at__isnull=True, account__transformer_id__in=dt_ids, meter__meter_type__in=list(SMART_TYPES)
    ).values_list("meter_id", "account__transformer_id"):
        found[dt].append(meter_id)
    return found


def _past_outage(dt_ids, rng) -> str | None:
    """Last gasps seven hours ago, restores one hour ago, on the DT with the most smart meters."""
    by_dt = _smart_meters_by_dt(dt_ids)
    candidates = sorted((len(m), dt) for dt, m in by_dt.items() if len(m) >= 3)
    if not candidates:
        return None
    dt = candidates[-1][1]
    now = timezone.now()
    start = now - timedelta(hours=7)
    events = []
    for i, meter_id in enumerate(by_dt[dt]):
        events.append(SmartMeterEvent(meter_id=meter_id, at=start + timedelta(seconds=i), kind="power_fail"))
        events.append(SmartMeterEvent(meter_id=meter_id, at=now - timedelta(hours=1, seconds=-i), kind="power_restore"))
    SmartMeterEvent.objects.bulk_create(events, ignore_conflicts=True)
    result = outages.run_detector(now=now)
    return ", ".join(result["declared"]) or None


def _mark_scenario(dt_ids, *, exclude) -> None:
    by_dt = _smart_meters_by_dt(dt_ids)
    ranked = sorted((len(m), dt) for dt, m in by_dt.items() if len(m) >= 3)
    if len(ranked) >= 2 or (ranked and not exclude):
        dt = ranked[-2][1] if exclude and len(ranked) >= 2 else ranked[-1][1]
        EventCursor.objects.update_or_create(name=MARKER, defaults={"last_event_id": dt})
