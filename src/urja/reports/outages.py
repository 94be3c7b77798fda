"""Outage detection from smart meters (issue 14.4) and automatic compensation (issue 14.5).

`run_detector()` (the periodic job, every 15 s) reads the power-fail (last gasp) and power-restore
events stored since its cursor and:

1. groups the meters whose *latest* power event is a failure by DT (consumers' smart meters through
   their open installation; a DT's own boundary meter counts for the whole DT) within the window;
   a DT is out when at least `dt_min_meters` meters and `dt_min_share` of its smart meters failed,
   or its boundary meter did; `feeder_min_dts` DTs of one feeder out (or the feeder-head meter) make
   one outage on the feeder (thresholds in data/reports/energy.toml [outage_detection]);
2. declares each through the service desk (`servicedesk.services.declare_outages`: numbered, audited,
   waiting complaints linked, its affected accounts stored with each meter's own last gasp — one
   INSERT … SELECT) unless one is already active there, and tells every stored account at once
   (`outage.detected`, en/hi/or, queued in bulk);
3. closes each account's row at its own meter's restore, and an outage when `restore_share` of its
   failed meters sent a restore (`servicedesk.services.restore_outage`, which closes linked complaints
   and the rows with nothing of their own to wait for), at the moment the share was reached — the
   duration is measured from the meters — tells the consumers (`outage.restored`) and compensates
   *every* stored account (`compensate_outage`) for its own restoration, not only those who complained;
4. on every pass, closes the rows whose restore never came after the grace and compensates the rows
   closed since (`compensate_due`) — once each.

Events are taken by their time (`at`), not their arrival order: a restore that arrives before its
failure is still the later event. An event stamped in the future (beyond the gateway's clock skew) is
not used and is reported as a dead letter with the reason; nothing is dropped silently.
"""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.db import transaction
from django.db.models import Count, Max, Min, Q
from django.utils import timezone

from urja.core import regdata
from urja.core.models import Channel
from urja.metering import mqtt
from urja.metering.models import SMART_TYPES, BoundaryInstallation, Installation, SmartMeterEvent
from urja.metering.services import dead_letter
from urja.notifications.bulk import AreaMessage, notify_accounts, notify_areas
from urja.servicedesk import catalogue
from urja.servicedesk import compensation as comp
from urja.servicedesk import services as desk
from urja.servicedesk.models import CompensationAward, Outage, OutageAccount
from urja.servicedesk.selectors import accounts_of_outage, outage_area, setting
from urja.servicedesk.services.outage_accounts import (
    close_overdue_accounts,
    close_reported_restorations,
    record_outage_awards,
)
from urja.servicedesk.services.outages import NewOutage, declare_outages

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
    """{meter: its first power failure in [since, now + skew]} (a few boundary meters)."""
    return dict(
        SmartMeterEvent.objects.filter(
            meter_id__in=list(meter_ids), kind=FAIL, at__gte=since, at__lte=now + mqtt.CLOCK_SKEW
        )
        .values_list("meter_id")
        .annotate(first=Min("at"))
        .order_by()
    )


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


@dataclass
class Batch:
    """The power events of one pass: ids (first_id, last_id], counted in SQL, not fetched one by one."""

    first_id: int
    last_id: int
    fails: int = 0
    restores: int = 0
    first_fail_at: datetime | None = None
    future: int = 0

    def events(self, *kinds: str):
        return SmartMeterEvent.objects.filter(id__gt=self.first_id, id__lte=self.last_id, kind__in=kinds)


def _new_events(cursor: EventCursor, now: datetime) -> Batch | None:
    """The next batch after the cursor (at most BATCH power events): its bounds, the usable failures and
    restores counted per kind, and the events stamped in the future sent to the dead letters."""
    power = SmartMeterEvent.objects.filter(id__gt=cursor.last_event_id, kind__in=(FAIL, RESTORE))
    last = list(power.order_by("id").values_list("id", flat=True)[BATCH - 1 : BATCH])
    last_id = last[0] if last else power.aggregate(m=Max("id"))["m"]
    if last_id is None:
        return None
    batch = Batch(cursor.last_event_id, last_id)
    limit = now + mqtt.CLOCK_SKEW
    for event_id, meter_id, kind, at in (
        batch.events(FAIL, RESTORE).filter(at__gt=limit).values_list("id", "meter_id", "kind", "at")
    ):
        batch.future += 1
        dead_letter(
            topic=f"detector/meter/{meter_id}",
            payload=f'{{"event_id": {event_id}, "kind": "{kind}", "at": "{at.isoformat()}"}}',
            code="timestamp_in_future",
            reason="a power event stamped in the future is not used for outage detection",
        )
    for kind, n, first in (
        batch.events(FAIL, RESTORE).filter(at__lte=limit).values_list("kind").annotate(n=Count("id"), first=Min("at"))
        .order_by()
    ):  # fmt: skip
        if kind == FAIL:
            batch.fails, batch.first_fail_at = n, first
        else:
            batch.restores = n
    return batch


def run_detector(*, now: datetime | None = None) -> dict:
    """One pass, one transaction: declare what the new failures show, close what the restores show,
    move the cursor. The cursor row is locked for the pass, so two passes never read the same events
    (a slow pass makes the next wait); a replayed batch declares and tells nothing twice."""
    from django.db import connection

    now = now or timezone.now()
    cfg = config()
    window = timedelta(seconds=int(cfg["window_seconds"]))
    EventCursor.objects.get_or_create(name=CURSOR)
    with transaction.atomic():
        if connection.vendor == "postgresql":
            # short queries over tens of thousands of rows: PostgreSQL's JIT would compile each for
            # longer than it runs (seconds per pass on a loaded server)
            with connection.cursor() as c:
                c.execute("SELECT set_config('jit', 'off', true)")
        cursor = EventCursor.objects.select_for_update().get(name=CURSOR)
        batch = _new_events(cursor, now)
        result = {"events": 0, "future": 0, "declared": [], "restored": [], "compensated": 0}
        if batch is not None:
            result.update(events=batch.fails + batch.restores, future=batch.future)
            declared: list[Outage] = []
            if batch.fails:
                declared = _declare(batch, cfg, window, now)
                result["declared"] = [o.number for o in declared]
            if batch.restores or declared:
                # each affected account's row closes at its own meter's restore, then the outages
                touched = close_reported_restorations(until=now + mqtt.CLOCK_SKEW)
                result["restored"] = _restore(cfg, now, batch, declared)
                result["restored"] += _restore_by_accounts(cfg, now, touched)
            cursor.last_event_id = batch.last_id
            cursor.save(update_fields=["last_event_id", "updated_at"])
        # a restore that never came: the row takes the outage's restoration after the grace
        close_overdue_accounts(now=now, grace=timedelta(minutes=int(cfg.get("account_restore_grace_minutes", 360))))
        # rows closed after their outage (late restores, the grace, an engineer's restoration): compensated
        result["compensated"] = compensate_due(now=now)
    return result


def _declare(batch: Batch, cfg, window: timedelta, now: datetime) -> list[Outage]:
    """The failures of this pass → outages, set-based: one query per step, never one per event or
    consumer (100,000 meters' last gasps in a minute are one pass)."""
    from urja.network.models import DistributionTransformer

    limit = now + mqtt.CLOCK_SKEW
    since = batch.first_fail_at - window
    new_fails = batch.events(FAIL).filter(at__lte=limit)
    # 1. the DTs the new failures stand for: consumers' meters (open installation) and boundary meters
    dts = set(
        Installation.objects.filter(removed_at__isnull=True, meter_id__in=new_fails.values("meter_id"))
        .exclude(account__transformer_id=None)
        .values_list("account__transformer_id", flat=True)
        .order_by()
        .distinct()
    )
    boundary = {
        m: (dt, fd)
        for m, dt, fd in BoundaryInstallation.objects.filter(
            removed_at__isnull=True, meter_id__in=new_fails.values("meter_id")
        ).values_list("meter_id", "transformer_id", "feeder_id")
    }
    dts |= {dt for dt, _ in boundary.values() if dt}
    if not dts and not any(fd for _, fd in boundary.values()):
        return []
    # 2. how many smart meters each of those DTs has
    smart = dict(
        Installation.objects.filter(
            removed_at__isnull=True, account__transformer_id__in=dts, meter__meter_type__in=list(SMART_TYPES)
        )
        .values_list("account__transformer_id")
        .annotate(n=Count("id"))
        .order_by()
    )
    # 3. failures an outage already restored on the DT or its feeder accounts for do not count again
    closed_until = _restored_until(dts, since)
    # 4. every failure in the window of those DTs' smart meters: a meter counts as failed from its first
    # last gasp after the DT's last restoration, even when its restore came in the same batch (a detector
    # that lags must still declare — and at once close — the outage)
    # (one row per failed meter: its DT and first failure; on the DTs an outage was restored on lately,
    # each failure, so those before the restoration are left out)
    fails = SmartMeterEvent.objects.filter(
        kind=FAIL,
        at__gte=since,
        at__lte=limit,
        meter__meter_type__in=list(SMART_TYPES),
        meter__installations__removed_at__isnull=True,
        meter__installations__account__transformer_id__in=dts,
    ).order_by()
    dt_col = "meter__installations__account__transformer_id"
    plain = [dt for dt in dts if dt not in closed_until]
    failed: dict[int, set[int]] = defaultdict(set)  # {dt: meters down}
    first_at: dict[int, datetime] = {}  # {dt: its first failure}
    rows = list(fails.filter(**{f"{dt_col}__in": plain}).values_list(dt_col, "meter_id").annotate(at=Min("at")))
    rows += [
        row
        for row in fails.filter(**{f"{dt_col}__in": list(closed_until)}).values_list(dt_col, "meter_id", "at")
        if row[2] > closed_until[row[0]]
    ]
    for dt, meter_id, at in rows:
        failed[dt].add(meter_id)
        if dt not in first_at or at < first_at[dt]:
            first_at[dt] = at
    boundary_first = _first_fails(set(boundary), since, now)

    def boundary_down(meter_id: int) -> datetime | None:
        at = boundary_first.get(meter_id)
        dt = boundary[meter_id][0]
        cut = closed_until.get(dt) if dt else None
        return at if at is not None and (cut is None or at > cut) else None

    dt_meter = {dt: m for m, (dt, _) in boundary.items() if dt}
    feeder_meter = {fd: m for m, (_, fd) in boundary.items() if fd}
    out_dts: dict[int, tuple[datetime, list[int]]] = {}
    min_meters, min_share = int(cfg["dt_min_meters"]), Decimal(str(cfg["dt_min_share"]))
    for dt in dts:
        down = failed.get(dt, set())
        own = dt_meter.get(dt)
        if own and boundary_down(own):
            out_dts[dt] = (min(boundary_down(own), first_at.get(dt, now)), [own, *sorted(down)])
        elif smart.get(dt) and len(down) >= min_meters and Decimal(len(down)) >= min_share * smart[dt]:
            out_dts[dt] = (first_at[dt], sorted(down))
    # 5. a feeder with enough DTs out (or its head meter down) is one outage on the feeder
    dt_feeder = dict(DistributionTransformer.objects.filter(pk__in=out_dts).values_list("pk", "feeder_id"))
    by_feeder: dict[int, list[int]] = defaultdict(list)
    for dt in out_dts:
        by_feeder[dt_feeder[dt]].append(dt)
    for fd, m in feeder_meter.items():
        if boundary_down(m):
            by_feeder.setdefault(fd, [])
    wanted: list[tuple[int | None, int | None, datetime, list[int]]] = []  # (feeder, dt, start, meters)
    feeder_min = int(cfg["feeder_min_dts"])
    for feeder_id, feeder_dts in sorted(by_feeder.items()):
        head = feeder_meter.get(feeder_id)
        head_down = boundary_down(head) if head else None
        if head_down or len(feeder_dts) >= feeder_min:
            meters = [m for dt in feeder_dts for m in out_dts[dt][1]]
            starts = [out_dts[dt][0] for dt in feeder_dts]
            if head_down:
                meters.append(head)
                starts.append(head_down)
            wanted.append((feeder_id, None, min(starts), meters))
        else:
            wanted.extend((None, dt, *out_dts[dt]) for dt in sorted(feeder_dts))
    return _declare_all(wanted, dt_feeder, now)


def _declare_all(wanted, dt_feeder: dict[int, int], now: datetime) -> list[Outage]:
    """Declare what is not known yet, in one transaction: an outage active on the DT or its whole feeder
    takes the new meters into its detection instead (a replay declares nothing twice); the rest are
    declared in bulk through the service desk, their detections inserted in bulk and every affected
    consumer told in one statement (keyed by the outage: nobody is told twice)."""
    if not wanted:
        return []
    feeders = {fd or dt_feeder[dt] for fd, dt, _, _ in wanted}
    active = list(
        Outage.objects.filter(status=Outage.Status.ACTIVE)
        .filter(
            Q(feeder_id__in=feeders, transformer__isnull=True)
            | Q(transformer_id__in=[dt for _, dt, _, _ in wanted if dt])
        )
        .select_related("detection")
    )
    on_feeder = {o.feeder_id: o for o in active if o.transformer_id is None}
    on_dt = {o.transformer_id: o for o in active if o.transformer_id}
    joined: dict[int, set[int]] = {}
    new: list[tuple[int | None, int | None, datetime, list[int]]] = []
    for fd, dt, start, meters in wanted:
        existing = on_feeder.get(fd or dt_feeder[dt]) or (on_dt.get(dt) if dt else None)
        if existing is None:
            new.append((fd, dt, start, meters))
        elif getattr(existing, "detection", None) is not None:  # already known: the new meters join it
            joined.setdefault(existing.pk, set(existing.detection.failed_meter_ids)).update(meters)
    with transaction.atomic():
        grown = []
        for outage in active:
            detection = getattr(outage, "detection", None)
            ids = joined.get(outage.pk)
            if detection is not None and ids is not None and len(ids) != len(detection.failed_meter_ids):
                detection.failed_meter_ids, detection.meters_failed = sorted(ids), len(ids)
                grown.append(detection)
        DetectedOutage.objects.bulk_update(grown, ["failed_meter_ids", "meters_failed"])
        if not new:
            return []
        made = declare_outages(
            actor=None,
            channel=Channel.SYSTEM,
            outages=[
                NewOutage(
                    feeder_id=fd,
                    transformer_id=dt,
                    starts_at=min(start, now),
                    reason=f"Detected: loss of supply reported by {len(set(meters))} smart meter(s)",
                )
                for fd, dt, start, meters in new
            ],
        )
        DetectedOutage.objects.bulk_create(
            DetectedOutage(
                outage=outage,
                first_event_at=start,
                meters_failed=len(set(meters)),
                failed_meter_ids=sorted(set(meters)),
            )
            for outage, (_, _, start, meters) in zip(made, new, strict=True)
        )
        names = _area_names(made)
        notify_areas(
            event="outage.detected",
            messages=[
                AreaMessage(
                    accounts=accounts_of_outage(o),
                    context={"area": names[o.pk], "outage": o.number, "start": o.starts_at},
                    key=f"outage_detected:{o.number}",
                )
                for o in made
            ],
        )
    log.info("%d outage(s) declared from smart meters", len(made))
    return made


def _area_names(outages: list[Outage]) -> dict[int, str]:
    """{outage: its area as `outage_area` words it}, with the DTs and feeders read in two queries."""
    from urja.network.models import DistributionTransformer, Feeder

    dts = {d.pk: d for d in DistributionTransformer.objects.filter(pk__in={o.transformer_id for o in outages})}
    feeders = {f.pk: f for f in Feeder.objects.filter(pk__in={o.feeder_id for o in outages})}
    for o in outages:
        if o.transformer_id:
            o.transformer = dts[o.transformer_id]
        o.feeder = feeders[o.feeder_id]
    return {o.pk: outage_area(o) for o in outages}


def _restore_by_accounts(cfg, now: datetime, touched: set[int]) -> list[str]:
    """An outage declared by hand (no detection) whose stored accounts' meters reported the failure is
    restored when `restore_share` of them reported their restore — at the moment that share was reached —
    as a detected one is; the engineer may still declare it restored before."""
    share = Decimal(str(cfg["restore_share"]))
    restored = []
    for outage in Outage.objects.filter(pk__in=touched, status=Outage.Status.ACTIVE, detection__isnull=True).order_by(
        "pk"
    ):
        reported = OutageAccount.objects.filter(outage=outage, fail_reported=True)
        back = sorted(reported.filter(restore_reported=True).values_list("restored_at", flat=True))
        need = max(1, math.ceil(share * reported.count()))
        if len(back) < need:
            continue
        with transaction.atomic():
            _close(outage, restored_at=back[need - 1], now=now)
        restored.append(outage.number)
    return restored


def _close(outage: Outage, *, restored_at: datetime, now: datetime) -> tuple[Outage, int]:
    """Restore the outage at the moment its meters' share was reached, tell its stored accounts and
    compensate those whose rows closed; returns the restored outage and the accounts credited."""
    outage = desk.restore_outage(actor=None, channel=Channel.SYSTEM, outage=outage, restored_at=restored_at)
    notify_accounts(
        event="outage.restored",
        accounts=accounts_of_outage(outage),
        context={"area": outage_area(outage), "restored_at": outage.restored_at},
        key=f"outage_restored:{outage.number}",
    )
    return outage, compensate_outage(outage=outage, now=now)


def _restore(cfg, now: datetime, batch: Batch, declared: list[Outage]) -> list[str]:
    share = Decimal(str(cfg["restore_share"]))
    restored = []
    active = list(
        DetectedOutage.objects.filter(outage__status=Outage.Status.ACTIVE).select_related(
            "outage", "outage__feeder", "outage__transformer"
        )
    )
    if not active:
        return restored
    # only a restore can close an outage: the meters that sent one in this batch, and — for the outages
    # declared in this pass — restores stored before their failures arrived (events out of order)
    limit = now + mqtt.CLOCK_SKEW
    restoring = set(batch.events(RESTORE).filter(at__lte=limit).values_list("meter_id", flat=True).order_by())
    fresh = [d for d in active if d.outage_id in {o.pk for o in declared}]
    if fresh:
        earliest = min(d.first_event_at for d in fresh)
        dts = [d.outage.transformer_id for d in fresh if d.outage.transformer_id]
        feeders = [d.outage.feeder_id for d in fresh if not d.outage.transformer_id]
        earlier = SmartMeterEvent.objects.filter(kind=RESTORE, at__gte=earliest, at__lte=limit, id__lte=batch.first_id)
        restoring.update(
            earlier.filter(
                Q(meter__installations__account__transformer_id__in=dts)
                | Q(meter__installations__account__feeder_id__in=feeders),
                meter__installations__removed_at__isnull=True,
            )
            .values_list("meter_id", flat=True)
            .order_by()
        )
        boundary = BoundaryInstallation.objects.filter(
            Q(transformer_id__in=dts) | Q(feeder_id__in=feeders) | Q(transformer__feeder_id__in=feeders),
            removed_at__isnull=True,
        )
        restoring.update(
            earlier.filter(meter_id__in=boundary.values("meter_id")).values_list("meter_id", flat=True).order_by()
        )
    if not restoring:
        return restored
    for detection in active:
        failed = detection.failed_meter_ids
        # a restore of one of its meters in this batch: count them all (earlier passes' restores too —
        # the restores of one outage come over many passes)
        if not restoring.intersection(failed):
            continue
        state = _latest_states(failed, detection.first_event_at, now)
        back = sorted(at for kind, at in state.values() if kind == RESTORE and at >= detection.first_event_at)
        need = max(1, math.ceil(share * len(failed)))
        if len(back) < need:
            continue
        at = back[need - 1]
        with transaction.atomic():
            outage, credited = _close(detection.outage, restored_at=max(at, detection.outage.starts_at), now=now)
            detection.meters_restored = len(back)
            detection.restored_at = outage.restored_at
            detection.measured_minutes = int((outage.restored_at - outage.starts_at).total_seconds() // 60)
            detection.compensated = credited
            detection.save(update_fields=["meters_restored", "restored_at", "measured_minutes", "compensated"])
        restored.append(outage.number)
    return restored


# --- compensation without a complaint ---------------------------------------------------------------


def compensate_due(*, now: datetime | None = None) -> int:
    """Compensate the stored accounts of restored unplanned outages that are closed and not judged yet
    (restores that came after the outage closed, rows closed after the grace, outages restored by the
    engineer); one query finds the outages (the unjudged rows' partial index). Idempotent."""
    outages = (
        Outage.objects.filter(
            kind=Outage.Kind.UNPLANNED,
            status=Outage.Status.RESTORED,
            pk__in=OutageAccount.objects.filter(judged_at__isnull=True, restored_at__isnull=False).values("outage_id"),
        )
        .select_related("feeder", "transformer")
        .order_by("pk")
    )
    credited = 0
    for outage in outages:
        with transaction.atomic():
            credited += compensate_outage(outage=outage, now=now)
    return credited


def compensate_outage(*, outage: Outage, now: datetime | None = None) -> int:
    """Credit every account stored as affected by a restored outage whose row is closed: the
    supply-restoration standard's rule, the delay counted from the **outage's start** (the Rules) to the
    account's **own** restoration (its meter's restore, else the outage's). A row whose meter proved
    supply throughout gets nothing; a consumer whose linked complaint was compensated already gets only
    the difference. Each row is judged once (`judged_at`), the ledger credit keyed per (outage,
    account): replays never pay twice. Returns the accounts credited."""
    if outage.restored_at is None:
        return 0
    now = now or timezone.now()
    rows = list(
        OutageAccount.objects.filter(outage=outage, judged_at__isnull=True, restored_at__isnull=False)
        # what the rule reads of each account (a feeder outage has 10,000+ rows: no consumer joined)
        .select_related("account")
        .only("outage_id", "account_id", "supplied", "restored_at", "account__area", "account__supply_type")
        .order_by("pk")
    )
    if not rows:
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
        record_outage_awards(judged=[(row.pk, Decimal(0), 0) for row in rows], at=now)
        return 0
    rule = comp.for_subtype(rule, subtype)
    many = outage.affected_accounts >= int(setting(schedule, "many_affected_threshold", 50))
    per = "hour" if rule["basis"] == "per_hour" else "day"
    from urja.servicedesk import sla

    request_amounts: dict[int, Decimal] = defaultdict(Decimal)
    for account_id, amount in CompensationAward.objects.filter(request__outage=outage).values_list(
        "account_id", "amount"
    ):
        request_amounts[account_id] += amount
    done = set(OutageAward.objects.filter(outage=outage).values_list("account_id", flat=True))
    judged: list[tuple[int, Decimal, int]] = []
    pay: list[tuple[OutageAccount, Decimal, int, comp.Award]] = []
    for row in rows:
        account = row.account
        if row.supplied:
            judged.append((row.pk, Decimal(0), 0))
            continue
        due = outage.starts_at + timedelta(hours=rt.timeline_value(account.area))
        late = sla.units_late(due=due, closed_at=row.restored_at, per=per)
        award = comp.compute(
            rule, units_late=late, supply_class=comp.supply_class_of(account.supply_type), many_affected=many
        )
        amount = max(award.amount - request_amounts.get(account.pk, Decimal(0)), Decimal(0))
        judged.append((row.pk, amount, late))
        if amount > 0 and account.pk not in done:
            pay.append((row, amount, late, award))
    if pay:
        _credit(outage, pay, per)
    record_outage_awards(judged=judged, at=now)
    return len(pay)


def _credit(outage: Outage, pay: list, per: str) -> None:
    """The credits of one judgement in bulk (a feeder outage pays 10,000+ accounts): ONE ledger post
    (billing's `post_entries`, the idempotency key `outage_compensation:{outage}:{account}` per entry: a
    repeat posts nothing again) with one audit event, one insert of the `OutageAward`s, and the messages
    queued set-based (`notify_areas`), one area per (amount, delay) — keyed per account as before."""
    from urja.billing.bulk import Column
    from urja.billing.ledger import post_entries
    from urja.core.services import record_audit
    from urja.customers.models import Account

    accounts = [row.account_id for row, *_ in pay]
    entry_ids = post_entries(
        [
            (
                len(pay),
                [
                    Column("account_id", accounts),
                    Column("entry_type", "compensation"),
                    Column("amount", [-amount for _, amount, _, _ in pay]),
                    Column("posted_at", timezone.now()),
                    Column(
                        "description",
                        [
                            f"Compensation: outage {outage.number}, supply restored late: {comp.describe(award)}"
                            for *_, award in pay
                        ],
                    ),
                    Column("reference_type", "outage"),
                    Column("reference_id", str(outage.pk)),
                    Column("idempotency_key", [f"outage_compensation:{outage.pk}:{a}" for a in accounts]),
                ],
            )
        ],
        channel="system",
        return_ids=True,
    )
    record_audit(actor=None, channel="system", action="ledger.compensation", obj=outage,
                 changes={"accounts": len(pay), "amount": sum(amount for _, amount, _, _ in pay),
                          "reference": f"outage:{outage.pk}"})  # fmt: skip
    made = OutageAward.objects.bulk_create(
        OutageAward(outage=outage, account_id=row.account_id, amount=amount, units_late=late, basis=award.basis,
                    many_affected=award.many_affected, capped=award.capped, ledger_entry_id=entry_id)
        for (row, amount, late, award), entry_id in zip(pay, entry_ids, strict=True)
    )  # fmt: skip
    # the accounts of this judgement, by the awards just made (a subquery: no list of 10,000 ids as parameters)
    new = OutageAward.objects.filter(outage=outage, pk__range=(min(a.pk for a in made), max(a.pk for a in made)))
    groups = sorted({(amount, late) for _, amount, late, _ in pay})
    notify_areas(
        event="outage.compensation_credited",
        messages=[
            AreaMessage(
                accounts=Account.objects.filter(pk__in=new.filter(amount=amount, units_late=late).values("account_id")),
                context={"amount": str(amount), "outage": outage.number, "units_late": late, "per": per},
                key=f"servicedesk:outage_compensation:{outage.pk}",
            )
            for amount, late in groups
        ],
    )
