"""Migration 0005: restored outages from before OutageAccount get their rows from the network as it is, at
the outage's times, judged already (nothing paid again), so the reliability indices count them."""

import importlib
from datetime import timedelta
from decimal import Decimal
from types import SimpleNamespace

from django.apps import apps
from django.db import connection
from django.utils import timezone

from urja.billing.models import LedgerEntry
from urja.customers.models import Account
from urja.network.models import Feeder
from urja.reports import operations as ops
from urja.reports import outages
from urja.reports.models import OutageAward
from urja.reports.tests import factories as f
from urja.servicedesk import catalogue
from urja.servicedesk.models import Outage, OutageAccount

migration = importlib.import_module("urja.servicedesk.migrations.0005_backfill_restored_outage_accounts")


def _backfill():
    migration.backfill_restored_outages(apps, SimpleNamespace(connection=connection))


def _outage(number, fd, *, start, end=None, dt=None, kind="unplanned", status="restored"):
    return Outage.objects.create(number=number, kind=kind, status=status, feeder=fd, transformer=dt,
                                 office=fd.office, reason="old fault", starts_at=start, restored_at=end)  # fmt: skip


def test_old_restored_outages_get_their_rows_judged_and_counted(offices):
    catalogue.load_file("servicedesk/oerc_sop.toml")
    sec = offices["section1"]
    fd = f.feeder(sec)
    dt, other_dt = f.dt(fd), f.dt(fd)
    on_dt = [f.account(sec, transformer=dt) for _ in range(3)]
    cut_off, later = f.account(sec, transformer=dt), f.account(sec, transformer=dt)
    elsewhere = f.account(sec, transformer=other_dt)
    moved = f.account(sec, transformer=other_dt)  # paid for the DT outage, on another DT now
    start = timezone.now() - timedelta(days=3)
    Account.objects.exclude(pk=later.pk).update(created_at=start - timedelta(days=400))
    Account.objects.filter(pk=cut_off.pk).update(status="temp_disconnected")  # had no supply to lose
    old = _outage("OLD1", fd, start=start, end=start + timedelta(hours=6), dt=dt)
    OutageAward.objects.create(outage=old, account=on_dt[0], amount=Decimal("100.00"), units_late=2,
                               basis="per_hour", ledger_entry_id=1)  # fmt: skip
    OutageAward.objects.create(outage=old, account=moved, amount=Decimal("100.00"), units_late=2,
                               basis="per_hour", ledger_entry_id=2)  # fmt: skip
    planned = _outage("OLD2", fd, start=start + timedelta(days=1), end=start + timedelta(days=1, hours=2),
                      kind="planned")  # the whole feeder, a shutdown  # fmt: skip
    cancelled = _outage("OLD3", fd, start=start, kind="planned", status="cancelled")
    kept = _outage("NEW1", fd, start=start, end=start + timedelta(hours=1), dt=dt)
    OutageAccount.objects.create(outage=kept, account_id=on_dt[1].pk, failed_at=start, restored_at=start,
                                 judged_at=start)  # fmt: skip
    entries = LedgerEntry.objects.count()

    _backfill()

    rows = {r.account_id: r for r in OutageAccount.objects.filter(outage=old)}
    assert set(rows) == {*(a.pk for a in on_dt), moved.pk}  # not the disconnected, the newer, the other DT's
    assert {(r.failed_at, r.restored_at, r.fail_reported, r.restore_reported, r.supplied) for r in rows.values()} == {
        (old.starts_at, old.restored_at, False, False, False)
    }
    assert rows[moved.pk].transformer_id == other_dt.pk
    assert (rows[on_dt[0].pk].award, rows[on_dt[0].pk].units_late) == (Decimal("100.00"), 2)
    assert (rows[on_dt[1].pk].award, rows[on_dt[1].pk].units_late) == (Decimal("0.00"), None)
    assert all(r.judged_at is not None for r in rows.values())  # judged already: never paid again
    feeder_rows = OutageAccount.objects.filter(outage=planned)
    assert set(feeder_rows.values_list("account_id", flat=True)) == {*(a.pk for a in on_dt), elsewhere.pk, moved.pk}
    assert not feeder_rows.filter(judged_at__isnull=False).exists()  # a shutdown is not compensated
    assert not OutageAccount.objects.filter(outage=cancelled).exists()
    assert list(OutageAccount.objects.filter(outage=kept).values_list("account_id", flat=True)) == [on_dt[1].pk]

    assert outages.compensate_due(now=timezone.now()) == 0
    assert LedgerEntry.objects.count() == entries
    before = OutageAccount.objects.count()
    _backfill()  # again: adds nothing
    assert OutageAccount.objects.count() == before
    # the indices count them: 4 + 5 interruptions (360 and 120 min) over the feeder's 6 served (the newer
    # account is served today; NEW1's row lasted no time)
    (r,) = ops.feeder_reliability(feeders=Feeder.objects.filter(pk=fd.pk), since=start - timedelta(days=1),
                                  until=timezone.now())  # fmt: skip
    assert (r["consumers"], r["interrupted"], r["customer_minutes"]) == (6, 9, Decimal("2040.0"))
