"""Outage detection from smart meters (issue 14.4) and automatic compensation (issue 14.5).

`run_detector()` (the periodic job, every 15 s) reads the power-fail (last gasp) and power-restore
events stored since its cursor and:

1. groups the meters whose *latest* power event is a failure by DT (consumers' smart meters through
   their open installation; a DT's own boundary meter counts for the whole DT) within the window;
   a DT is out when at least `dt_min_meters` meters and `dt_min_share` of its smart meters failed,
   or its boundary meter did; `feeder_min_dts` DTs of one feeder out (or the feeder-head meter) make
   one outage on the feeder (thresholds in data/reports/energy.toml [outage_detection]);
2. declares each through the service desk (`servicedesk.services.declare_outage`: numbered, audited,
   waiting complaints linked) unless one is already active there, and tells every affected consumer
   at once (`outage.detected`, en/hi/or, queued in bulk);
3. closes an outage when `restore_share` of its failed meters sent a restore
   (`servicedesk.services.restore_outage`, which closes linked complaints), at the moment the share
   was reached — the duration is measured from the meters — tells the consumers (`outage.restored`)
   and compensates *every* affected consumer (`compensate_outage`), not only those who complained.

Events are taken by their time (`at`), not their arrival order: a restore that arrives before its
failure is still the later event. An event stamped in the future (beyond the gateway's clock skew) is
not used and is reported as a dead letter with the reason; nothing is dropped silently.
"""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from datetime import datetime, timedelta
from decimal import Decimal

from django.db import transaction
from django.db.models import Max, Min, Q
from django.utils import timezone

from urja.core import regdata
from urja.core.models import Channel
from urja.metering import mqtt
from urja.metering.models import SMART_TYPES, BoundaryInstallation, Installation, SmartMeterEvent
from urja.metering.services import dead_letter
from urja.notifications.bulk import notify_accounts
from urja.servicedesk import catalogue
from urja.servicedesk import compensation as comp
from urja.servicedesk import services as desk
from urja.servicedesk.models import CompensationAward, Outage
from urja.servicedesk.selectors import affected_accounts, outage_area, setting

from .models import DetectedOutage, EventCursor, OutageAward

log = logging.getLogger(__name__)
CURSOR = "outage_detector"
BATCH = 200_000
FAIL, RESTORE = SmartMeterEvent.Kind.POWER_FAIL, SmartMeterEvent.Kind.POWER_RESTORE


def config() -> dict:
    return regdata.load("reports/energy.toml")["outage_detection"]


def _latest_states(meter_ids, since: datetime, now: datetime) -> dict[int, tuple[str, datetime]]:
    """{meter: (kind, at)} of each meter's latest power event in [since, now + skew]."""
    state: dict[int, tuple[str, datetime]] = {}
    ids = list(meter_ids)
    for i in range(0, len(ids), 20_000):
        for meter_id, kind, at in (
            SmartMeterEvent.objects.filter(
                meter_id__in=ids[i : i + 20_000], kind__in=(FAIL, RESTORE), at__gte=since, at__lte=now + mqtt.CLOCK_SKEW
            )
            .values_list("meter_id", "kind", "at")
            .iterator(chunk_size=20_000)
        ):
            old = state.get(meter_id)
            if old is None or at > old[1] or (at == old[1] and kind == RESTORE):
                state[meter_id] = (kind, at)
    return state


def _first_fails(meter_ids, since: datetime, now: datetime) -> dict[int, datetime]:
    """{meter: its first power failure in [since, now + skew]}."""
    first: dict[int, datetime] = {}
    ids = list(meter_ids)
    for i in range(0, len(ids), 20_000):
        rows = (
            SmartMeterEvent.objects.filter(
                meter_id__in=ids[i : i + 20_000], kind=FAIL, at__gte=since, at__lte=now + mqtt.CLOCK_SKEW
            )
            .values_list("meter_id")
            .annotate(first=Min("at"))
        )
        first.update(rows)
    return first


def _restored_until(dts, since: datetime) -> dict[int, datetime]:
    """{DT: the latest restoration of an outage on it or its whole feeder since `since`}."""
    from urja.network.models import DistributionTransformer

    feeder_of = dict(DistributionTransformer.objects.filter(pk__in=dts).values_list("pk", "feeder_id"))
    until: dict[int, datetime] = {}
    for dt, feeder, restored in Outage.objects.filter(
        Q(transformer_id__in=dts) | Q(feeder_id__in=set(feeder_of.values()), transformer__isnull=True),
        restored_at__gte=since,
    ).values_list("transformer_id", "feeder_id", "restored_at"):
        for d in [dt] if dt else [d for d, fd in feeder_of.items() if fd == feeder]:
            if d in feeder_of and (d not in until or restored > until[d]):
                until[d] = restored
    return until


def _new_events(cursor: EventCursor, now: datetime) -> tuple[list[tuple[int, int, str, datetime]], int]:
    rows = list(
        SmartMeterEvent.objects.filter(id__gt=cursor.last_event_id, kind__in=(FAIL, RESTORE))
        .order_by("id")
        .values_list("id", "meter_id", "kind", "at")[:BATCH]
    )
    good, future = [], 0
    for row in rows:
        if row[3] > now + mqtt.CLOCK_SKEW:
            future += 1
            dead_letter(
                topic=f"detector/meter/{row[1]}",
                payload=f'{{"event_id": {row[0]}, "kind": "{row[2]}", "at": "{row[3].isoformat()}"}}',
                code="timestamp_in_future",
                reason="a power event stamped in the future is not used for outage detection",
            )
        else:
            good.append(row)
    return good, future


def run_detector(*, now: datetime | None = None) -> dict:
    """One pass: declare what the new failures show, close what the restores show. Resumable."""
    now = now or timezone.now()
    cfg = config()
    window = timedelta(seconds=int(cfg["window_seconds"]))
    cursor, _ = EventCursor.objects.get_or_create(name=CURSOR)
    events, future = _new_events(cursor, now)
    result = {"events": len(events), "future": future, "declared": [], "restored": []}
    if events:
        fails = [e for e in events if e[2] == FAIL]
        if fails:
            result["declared"] = _declare(fails, cfg, window, now)
    result["restored"] = _restore(cfg, now)
    if events:
        cursor.last_event_id = events[-1][0]
        cursor.save(update_fields=["last_event_id", "updated_at"])
    elif future:
        cursor.last_event_id = SmartMeterEvent.objects.aggregate(m=Max("id"))["m"] or cursor.last_event_id
        cursor.save(update_fields=["last_event_id", "updated_at"])
    return result


def _declare(fails, cfg, window: timedelta, now: datetime) -> list[str]:
    failed_meter_ids = {e[1] for e in fails}
    since = min(e[3] for e in fails) - window
    # which DT / feeder each failing meter stands for
    consumer = dict(
        Installation.objects.filter(meter_id__in=failed_meter_ids, removed_at__isnull=True)
        .exclude(account__transformer_id=None)
        .values_list("meter_id", "account__transformer_id")
    )
    boundary = {
        m: (dt, fd)
        for m, dt, fd in BoundaryInstallation.objects.filter(
            meter_id__in=failed_meter_ids, removed_at__isnull=True
        ).values_list("meter_id", "transformer_id", "feeder_id")
    }
    dts = set(consumer.values()) | {dt for dt, _ in boundary.values() if dt}
    if not dts and not any(fd for _, fd in boundary.values()):
        return []
    # every smart meter on those DTs, and the latest power event of each within the window
    on_dt: dict[int, list[int]] = defaultdict(list)
    for meter_id, dt in (
        Installation.objects.filter(
            removed_at__isnull=True, account__transformer_id__in=dts, meter__meter_type__in=list(SMART_TYPES)
        )
        .values_list("meter_id", "account__transformer_id")
        .iterator(chunk_size=20_000)
    ):
        on_dt[dt].append(meter_id)
    dt_meter = {dt: m for m, (dt, _) in boundary.items() if dt}
    feeder_meter = {fd: m for m, (_, fd) in boundary.items() if fd}
    # a meter counts as failed from its first last gasp in the window, even when its restore came in
    # the same batch (a detector that lags must still declare — and at once close — the outage), but
    # not for failures an outage already restored on its DT or feeder accounts for
    closed_until = _restored_until(dts, since)
    dt_of_meter = {m: dt for dt, ms in on_dt.items() for m in ms} | {m: dt for m, (dt, _) in boundary.items() if dt}
    fail_at = _first_fails({m for ms in on_dt.values() for m in ms} | set(boundary), since, now)

    def down(meter_id: int) -> datetime | None:
        at = fail_at.get(meter_id)
        limit = closed_until.get(dt_of_meter.get(meter_id))
        return at if at is not None and (limit is None or at > limit) else None

    out_dts: dict[int, tuple[datetime, list[int]]] = {}
    min_meters, min_share = int(cfg["dt_min_meters"]), Decimal(str(cfg["dt_min_share"]))
    for dt in dts:
        meters = on_dt.get(dt, [])
        failed = [m for m in meters if down(m)]
        own = dt_meter.get(dt)
        if own and down(own):
            out_dts[dt] = (min([down(own), *(down(m) for m in failed)]), [own, *failed])
        elif meters and len(failed) >= min_meters and Decimal(len(failed)) >= min_share * len(meters):
            out_dts[dt] = (min(down(m) for m in failed), failed)
    from urja.network.models import DistributionTransformer, Feeder

    dt_feeder = dict(DistributionTransformer.objects.filter(pk__in=out_dts).values_list("pk", "feeder_id"))
    by_feeder: dict[int, list[int]] = defaultdict(list)
    for dt in out_dts:
        by_feeder[dt_feeder[dt]].append(dt)
    for fd, m in feeder_meter.items():
        if down(m):
            by_feeder.setdefault(fd, [])
    declared = []
    feeder_min = int(cfg["feeder_min_dts"])
    for feeder_id, feeder_dts in sorted(by_feeder.items()):
        head_down = feeder_id in feeder_meter and down(feeder_meter[feeder_id])
        if head_down or len(feeder_dts) >= feeder_min:
            meters = [m for dt in feeder_dts for m in out_dts[dt][1]]
            starts = [out_dts[dt][0] for dt in feeder_dts]
            if head_down:
                meters.append(feeder_meter[feeder_id])
                starts.append(down(feeder_meter[feeder_id]))
            number = _declare_one(feeder=Feeder.objects.get(pk=feeder_id), transformer=None, start=min(starts),
                                  meters=meters, now=now)  # fmt: skip
            if number:
                declared.append(number)
        else:
            for dt in feeder_dts:
                start, meters = out_dts[dt]
                number = _declare_one(feeder=None, transformer=DistributionTransformer.objects.get(pk=dt),
                                      start=start, meters=meters, now=now)  # fmt: skip
                if number:
                    declared.append(number)
    return declared


def _declare_one(*, feeder, transformer, start: datetime, meters: list[int], now: datetime) -> str | None:
    feeder_id = feeder.pk if feeder else transformer.feeder_id
    where = Q(feeder_id=feeder_id, transformer__isnull=True)  # the whole feeder is out already
    if transformer is not None:
        where |= Q(transformer=transformer)
    active = Outage.objects.filter(status=Outage.Status.ACTIVE).filter(where)
    existing = active.select_related("detection").first()
    if existing is not None:  # already known: the new meters join its detection
        detection = getattr(existing, "detection", None)
        if detection is not None:
            ids = sorted(set(detection.failed_meter_ids) | set(meters))
            if len(ids) != len(detection.failed_meter_ids):
                detection.failed_meter_ids, detection.meters_failed = ids, len(ids)
                detection.save(update_fields=["failed_meter_ids", "meters_failed"])
        return None
    with transaction.atomic():
        outage = desk.declare_outage(
            actor=None,
            channel=Channel.SYSTEM,
            kind=Outage.Kind.UNPLANNED,
            reason=f"Detected: loss of supply reported by {len(meters)} smart meter(s)",
            starts_at=min(start, now),
            feeder=feeder if feeder else transformer.feeder,
            transformer=transformer,
        )
        DetectedOutage.objects.create(
            outage=outage, first_event_at=start, meters_failed=len(set(meters)), failed_meter_ids=sorted(set(meters))
        )
        accounts = affected_accounts(feeder=outage.feeder, transformer=outage.transformer)
        notify_accounts(
            event="outage.detected",
            accounts=accounts,
            context={"area": outage_area(outage), "outage": outage.number, "start": outage.starts_at},
            key=f"outage_detected:{outage.number}",
        )
    log.info("outage %s declared from %d meters", outage.number, len(meters))
    return outage.number


def _restore(cfg, now: datetime) -> list[str]:
    share = Decimal(str(cfg["restore_share"]))
    restored = []
    active = list(
        DetectedOutage.objects.filter(outage__status=Outage.Status.ACTIVE).select_related(
            "outage", "outage__feeder", "outage__transformer"
        )
    )
    if not active:
        return restored
    # one read of the restores of every active detection's meters (most passes find none)
    earliest = min(d.first_event_at for d in active)
    meters = sorted({m for d in active for m in d.failed_meter_ids})
    restoring: set[int] = set()
    for i in range(0, len(meters), 20_000):  # SQLite's limit of bound variables
        restoring.update(
            SmartMeterEvent.objects.filter(
                meter_id__in=meters[i : i + 20_000], kind=RESTORE, at__gte=earliest
            ).values_list("meter_id", flat=True)
        )
    for detection in active:
        failed = detection.failed_meter_ids
        need = max(1, math.ceil(share * len(failed)))
        if len(restoring.intersection(failed)) < need:
            continue
        state = _latest_states(failed, detection.first_event_at, now)
        back = sorted(at for kind, at in state.values() if kind == RESTORE and at >= detection.first_event_at)
        need = max(1, math.ceil(share * len(failed)))
        if len(back) < need:
            continue
        at = back[need - 1]
        with transaction.atomic():
            outage = desk.restore_outage(
                actor=None,
                channel=Channel.SYSTEM,
                outage=detection.outage,
                restored_at=max(at, detection.outage.starts_at),
            )
            detection.meters_restored = len(back)
            detection.restored_at = outage.restored_at
            detection.measured_minutes = int((outage.restored_at - outage.starts_at).total_seconds() // 60)
            detection.save(update_fields=["meters_restored", "restored_at", "measured_minutes"])
            accounts = affected_accounts(feeder=outage.feeder, transformer=outage.transformer)
            notify_accounts(
                event="outage.restored",
                accounts=accounts,
                context={"area": outage_area(outage), "restored_at": outage.restored_at},
                key=f"outage_restored:{outage.number}",
            )
            detection.compensated = compensate_outage(outage=outage)
            detection.save(update_fields=["compensated"])
        restored.append(outage.number)
    return restored


# --- compensation without a complaint ---------------------------------------------------------------


def compensate_outage(*, outage: Outage) -> int:
    """Credit every consumer affected by a restored outage: the supply-restoration standard's rule,
    the delay counted from the outage's start (not from a complaint). A consumer whose linked complaint
    was compensated already gets only the difference. Idempotent per (outage, account)."""
    if outage.restored_at is None:
        return 0
    schedule = catalogue.active_schedule()
    cfg = regdata.load("reports/energy.toml").get("outage_compensation", {})
    subtype = (
        cfg.get("feeder_subtype", "line_breakdown")
        if outage.transformer_id is None
        else cfg.get("dt_subtype", "no_power_supply")
    )
    rt = catalogue.find_type(type_code="no_power_supply", subtype_code=subtype, schedule=schedule)
    rule = schedule.document.get("compensation", {}).get(rt.compensation_key)
    if not rule:
        return 0
    rule = comp.for_subtype(rule, subtype)
    many = outage.affected_accounts >= int(setting(schedule, "many_affected_threshold", 50))
    per = "hour" if rule["basis"] == "per_hour" else "day"
    from urja.billing.ledger import post_entry
    from urja.servicedesk import sla

    request_amounts: dict[int, Decimal] = defaultdict(Decimal)
    for account_id, amount in CompensationAward.objects.filter(request__outage=outage).values_list(
        "account_id", "amount"
    ):
        request_amounts[account_id] += amount
    done = set(OutageAward.objects.filter(outage=outage).values_list("account_id", flat=True))
    credited = 0
    accounts = affected_accounts(feeder=outage.feeder, transformer=outage.transformer).exclude(pk__in=done)
    for account in accounts.select_related("consumer").iterator(chunk_size=2000):
        due = outage.starts_at + timedelta(hours=rt.timeline_value(account.area))
        late = sla.units_late(due=due, closed_at=outage.restored_at, per=per)
        award = comp.compute(
            rule, units_late=late, supply_class=comp.supply_class_of(account.supply_type), many_affected=many
        )
        amount = award.amount - request_amounts.get(account.pk, Decimal(0))
        if amount <= 0:
            continue
        entry = post_entry(
            account=account,
            entry_type="compensation",
            amount=-amount,
            description=f"Compensation: outage {outage.number}, supply restored late: {comp.describe(award)}",
            channel="system",
            reference_type="outage",
            reference_id=str(outage.pk),
            idempotency_key=f"outage_compensation:{outage.pk}:{account.pk}",
        )
        OutageAward.objects.create(
            outage=outage,
            account=account,
            amount=amount,
            units_late=late,
            basis=award.basis,
            many_affected=award.many_affected,
            capped=award.capped,
            ledger_entry_id=entry.pk,
        )
        desk.send(
            event="outage.compensation_credited",
            consumer=account.consumer,
            account=account,
            context={"amount": str(amount), "outage": outage.number, "units_late": late, "per": per},
            key=f"outage_compensation:{outage.pk}:{account.pk}",
        )
        credited += 1
    return credited
