"""Smart-meter data in, called by the MQTT gateway with parsed messages: readings, intervals and
events stored in bulk, and messages that could not be used kept as dead letters."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from urja.metering.models import (
    DeadLetter,
    IntervalReading,
    Meter,
    Reading,
    ReadingSource,
    ReadingStatus,
    SmartMeterEvent,
    VeeStatus,
)
from urja.metering.selectors import (
    installation_at,
)


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
