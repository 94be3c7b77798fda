"""Batch VEE: validate many pending readings with the per-reading rules, loading once per chunk
what each reading's validation would query (its previous and next actual readings, thirteen
months of history, the account's installations, the reading window), then writing the outcomes
in bulk.

The rules are not restated here: `services.validate_reading` runs unchanged, with `Preloaded`
answering its questions (`services.VeeLookups`) from memory. Readings are validated in the
order given, and each one that becomes usable joins the rows the next ones see, exactly as the
per-reading path would find it in the database. `test_vee_batch.py` compares the two paths over
random reading histories (hypothesis).
"""

from __future__ import annotations

import bisect
import logging
from collections import defaultdict
from datetime import date, datetime, timedelta
from decimal import Decimal

from django.db import transaction

from urja.customers.models import Account

from . import selectors, services, vee
from .models import REGISTER_STATUSES, USABLE_VEE, Installation, Reading, ReadingStatus, VeeStatus

log = logging.getLogger(__name__)

CHUNK = 500  # readings per transaction
# monthly_history looks back 31 × (13 + 1) days before each reading
HISTORY_DAYS = 31 * (13 + 1)


def _usable(r: Reading) -> bool:
    return r.vee_status in USABLE_VEE and r.status in REGISTER_STATUSES and r.kwh is not None


def _key(r: Reading) -> tuple[datetime, int]:
    return (r.read_at, r.pk)


class Preloaded(services.VeeLookups):
    """`VeeLookups` answered from rows loaded once for the accounts of a chunk of readings."""

    def __init__(self, readings: list[Reading]):
        accounts = {r.account_id for r in readings}
        lo = min(r.read_at for r in readings) - timedelta(days=HISTORY_DAYS)
        self.lo = lo
        # usable readings of the accounts from the earliest history window on, ordered (read_at, id)
        self.usable: dict[int, list[Reading]] = defaultdict(list)
        for r in (
            Reading.objects.select_related("installation", "meter")
            .filter(
                account_id__in=accounts,
                vee_status__in=USABLE_VEE,
                status__in=REGISTER_STATUSES,
                kwh__isnull=False,
                read_at__gte=lo,
            )
            .order_by("read_at", "id")
        ):
            self.usable[r.account_id].append(r)
        self.keys = {a: [_key(r) for r in rows] for a, rows in self.usable.items()}
        self.installations: dict[int, list[Installation]] = defaultdict(list)
        for inst in (
            Installation.objects.select_related("meter").filter(account_id__in=accounts).order_by("installed_at", "id")
        ):
            self.installations[inst.account_id].append(inst)
        # estimated / provisional readings not yet settled by an actual one (any date)
        self.unsettled: dict[int, list[Reading]] = defaultdict(list)
        for r in Reading.objects.filter(
            account_id__in=accounts,
            status__in=(ReadingStatus.ESTIMATED, ReadingStatus.PROVISIONAL),
            reconciled_by__isnull=True,
        ).only("id", "account_id", "read_at"):
            self.unsettled[r.account_id].append(r)
        self.windows: dict[tuple, bool] = {}
        self.saved: list[Reading] = []
        self.settled: dict[int, list[int]] = defaultdict(list)  # actual reading id -> settled ids

    # -- reads ------------------------------------------------------------------------------

    def _rows(self, account_id: int) -> tuple[list[Reading], list[tuple]]:
        return self.usable.get(account_id, []), self.keys.get(account_id, [])

    def _last_actual_before(self, reading: Reading) -> Reading | None:
        rows, keys = self._rows(reading.account_id)
        i = bisect.bisect_left(keys, (reading.read_at, -1))  # rows with read_at < reading.read_at
        for r in reversed(rows[:i]):
            if r.status == ReadingStatus.ACTUAL and r.pk != reading.pk:
                return r
        return None

    def previous_actual(self, reading: Reading) -> Reading | None:
        found = self._last_actual_before(reading)
        if found is not None:
            return found
        # none since the loaded window began: an older one is in the database, untouched by this batch
        return selectors.previous_reading(reading, actual_only=True)

    def next_actual(self, reading: Reading) -> Reading | None:
        rows, keys = self._rows(reading.account_id)
        i = bisect.bisect_right(keys, (reading.read_at, float("inf")))  # rows with read_at > reading.read_at
        for r in rows[i:]:
            if r.status == ReadingStatus.ACTUAL and r.pk != reading.pk:
                return r
        return None

    def consumption(self, opening: Reading, closing: Reading) -> Decimal:
        return selectors.consumption_between(
            opening, closing, installations=self.installations.get(closing.account_id, [])
        )

    def history(self, account: Account, before: datetime) -> list[vee.MonthUse]:
        since = before - timedelta(days=HISTORY_DAYS)
        rows, keys = self._rows(account.pk)
        lo = bisect.bisect_left(keys, (since, -1))
        hi = bisect.bisect_left(keys, (before, -1))
        return selectors.history_of(rows[lo:hi], consumption=self.consumption)

    def in_window(self, account: Account, day: date) -> bool:
        key = (account.section_id, account.bill_cycle, day)
        if key not in self.windows:
            self.windows[key] = selectors._in_window(account, day)
        return self.windows[key]

    # -- writes ----------------------------------------------------------------------------

    def save(self, reading: Reading) -> None:
        self.saved.append(reading)
        if _usable(reading):  # the next readings of the batch see it, as they would in the database
            rows = self.usable[reading.account_id]
            keys = self.keys.setdefault(reading.account_id, [])
            i = bisect.bisect_left(keys, _key(reading))
            rows.insert(i, reading)
            keys.insert(i, _key(reading))

    def reconcile(self, reading: Reading) -> None:
        last = self._last_actual_before(reading)
        if last is None:
            last = selectors.previous_reading(reading, actual_only=True)
        left = []
        for r in self.unsettled.get(reading.account_id, []):
            if r.read_at < reading.read_at and (last is None or r.read_at > last.read_at):
                self.settled[reading.pk].append(r.pk)
            else:
                left.append(r)
        self.unsettled[reading.account_id] = left

    def flush(self) -> None:
        Reading.objects.bulk_update(self.saved, ["exceptions", "vee_status"], batch_size=500)
        for actual_id, ids in self.settled.items():
            Reading.objects.filter(pk__in=ids, reconciled_by__isnull=True).update(reconciled_by_id=actual_id)
        self.saved, self.settled = [], defaultdict(list)


def validate_batch(ids: list[int], *, chunk: int = CHUNK) -> int:
    """Validate the pending readings among `ids`, in that order; returns how many were validated.
    One transaction per chunk; a chunk that fails is validated again one reading at a time."""
    order = list(dict.fromkeys(ids))
    done = 0
    for start in range(0, len(order), chunk):
        part = order[start : start + chunk]
        try:
            with transaction.atomic():
                found = {
                    r.pk: r
                    for r in Reading.objects.select_for_update(of=("self",))
                    .select_related("account", "account__section", "meter", "installation")
                    .filter(pk__in=part, vee_status=VeeStatus.PENDING)
                }
                readings = [found[pk] for pk in part if pk in found]
                if not readings:
                    continue
                lookups = Preloaded(readings)
                for reading in readings:
                    services.validate_reading(reading, lookups=lookups)
                lookups.flush()
                done += len(readings)
        except Exception:
            log.exception("batch VEE failed for %d readings: validating them one by one", len(part))
            done += services.validate_one_by_one(part)
    return done
