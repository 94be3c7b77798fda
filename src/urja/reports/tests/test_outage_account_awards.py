"""Compensation from the outage's stored accounts (issue 14.5): who was affected is who was stored at the
declaration, each account's delay runs from the outage's start to its own restoration, and an award is
made once whatever is replayed."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from urja.billing.models import LedgerEntry
from urja.metering import services as metering
from urja.metering.models import SmartMeterEvent
from urja.reports import outages
from urja.reports.models import OutageAward
from urja.reports.tests import factories as f
from urja.servicedesk import catalogue
from urja.servicedesk import services as desk
from urja.servicedesk.models import OutageAccount


@pytest.fixture
def dt_outage(offices):
    catalogue.load_file("servicedesk/oerc_sop.toml")
    dt = f.dt(f.feeder(offices["section1"]))
    moved, plain, metered = (f.account(offices["section1"], transformer=dt) for _ in range(3))
    meter = metering.register_meter(serial="AW-1", make="Genus", meter_type="smart", actor=None, channel="system")
    metering.install_meter(account=metered, meter=meter, actor=None, channel="system",
                           installed_at=timezone.now() - timedelta(days=30))  # fmt: skip
    start = timezone.now() - timedelta(hours=20)
    SmartMeterEvent.objects.create(meter=meter, kind="power_fail", at=start + timedelta(minutes=1))
    outage = desk.declare_outage(actor=None, channel="system", kind="unplanned", reason="DT fuse blown",
                                 starts_at=start, transformer=dt)  # fmt: skip
    return {"dt": dt, "moved": moved, "plain": plain, "metered": metered, "meter": meter, "start": start,
            "outage": outage, "section": offices["section1"]}  # fmt: skip


def _credits(outage):
    return sorted(
        LedgerEntry.objects.filter(reference_type="outage", reference_id=str(outage.pk)).values_list(
            "account_id", "amount"
        )
    )


def test_the_stored_accounts_are_compensated_once_each_for_their_own_restoration(dt_outage):
    d = dt_outage
    outage, start = d["outage"], d["start"]
    # after the declaration: a consumer moves to another DT, another opens an account on this one
    d["moved"].transformer = f.dt(d["dt"].feeder)
    d["moved"].save(update_fields=["transformer"])
    newcomer = f.account(d["section"], transformer=d["dt"])
    # the engineer declares supply back after 7 h; the metered consumer's restore comes at 9 h
    outage = desk.restore_outage(actor=None, channel="system", outage=outage, restored_at=start + timedelta(hours=7))
    assert outages.compensate_due(now=start + timedelta(hours=8)) == 2  # the rows closed with the outage
    SmartMeterEvent.objects.create(meter=d["meter"], kind="power_restore", at=start + timedelta(hours=9))
    result = outages.run_detector(now=start + timedelta(hours=10))
    assert result["compensated"] == 1  # its own restore closed its row, then it was judged
    # 4 h standard (urban), Rs 50 a started hour: 7 h → 3 hours; the metered one 9 h → 5 hours
    rows = {r.account_id: r for r in OutageAccount.objects.filter(outage=outage)}
    assert set(rows) == {d["moved"].pk, d["plain"].pk, d["metered"].pk}  # not the newcomer
    assert {k: (r.units_late, r.award) for k, r in rows.items()} == {
        d["moved"].pk: (3, Decimal("150.00")),
        d["plain"].pk: (3, Decimal("150.00")),
        d["metered"].pk: (5, Decimal("250.00")),
    }
    expected = sorted([(d["moved"].pk, Decimal("-150.00")), (d["plain"].pk, Decimal("-150.00")),
                       (d["metered"].pk, Decimal("-250.00"))])  # fmt: skip
    assert _credits(outage) == expected
    assert not OutageAward.objects.filter(account=newcomer).exists()
    # replays: the job again, the restore again (a later duplicate at another time), the engine again
    SmartMeterEvent.objects.create(meter=d["meter"], kind="power_restore", at=start + timedelta(hours=9, seconds=1))
    assert outages.run_detector(now=start + timedelta(hours=11))["compensated"] == 0
    assert outages.compensate_due(now=start + timedelta(hours=12)) == 0
    assert outages.compensate_outage(outage=outage) == 0
    assert _credits(outage) == expected and OutageAward.objects.filter(outage=outage).count() == 3


def test_a_restore_that_never_comes_is_compensated_after_the_grace(dt_outage):
    d = dt_outage
    outage, start = d["outage"], d["start"]
    outage = desk.restore_outage(actor=None, channel="system", outage=outage, restored_at=start + timedelta(hours=5))
    assert outages.run_detector(now=start + timedelta(hours=6))["compensated"] == 2
    assert OutageAccount.objects.get(outage=outage, account=d["metered"]).restored_at is None
    grace = int(outages.config()["account_restore_grace_minutes"])
    result = outages.run_detector(now=start + timedelta(hours=5, minutes=grace + 1))
    assert result["compensated"] == 1
    row = OutageAccount.objects.get(outage=outage, account=d["metered"])
    assert (row.restored_at, row.units_late, row.award) == (start + timedelta(hours=5), 1, Decimal("50.00"))


def test_an_outage_declared_by_hand_is_restored_by_its_accounts_meters(offices):
    catalogue.load_file("servicedesk/oerc_sop.toml")
    dt = f.dt(f.feeder(offices["section1"]))
    start = timezone.now() - timedelta(hours=9)
    meters = []
    for i in range(3):
        account = f.account(offices["section1"], transformer=dt)
        meter = metering.register_meter(serial=f"HB-{i}", make="Genus", meter_type="smart", actor=None,
                                        channel="system")  # fmt: skip
        metering.install_meter(account=account, meter=meter, actor=None, channel="system",
                               installed_at=start - timedelta(days=30))  # fmt: skip
        SmartMeterEvent.objects.create(meter=meter, kind="power_fail", at=start + timedelta(seconds=i))
        meters.append(meter)
    outage = desk.declare_outage(actor=None, channel="system", kind="unplanned", reason="Pole fire",
                                 starts_at=start, transformer=dt)  # fmt: skip
    # 80 % of 3 reported failures = 3 restores: two do not restore it, the third does, at its time
    for i, meter in enumerate(meters[:2]):
        SmartMeterEvent.objects.create(meter=meter, kind="power_restore", at=start + timedelta(hours=5 + i))
    assert outages.run_detector(now=start + timedelta(hours=7))["restored"] == []
    SmartMeterEvent.objects.create(meter=meters[2], kind="power_restore", at=start + timedelta(hours=8))
    assert outages.run_detector(now=start + timedelta(hours=8, minutes=5))["restored"] == [outage.number]
    outage.refresh_from_db()
    assert (outage.status, outage.restored_at) == ("restored", start + timedelta(hours=8))
    awards = sorted(OutageAccount.objects.filter(outage=outage).values_list("units_late", "award"))
    assert awards == [(1, Decimal("50.00")), (2, Decimal("100.00")), (4, Decimal("200.00"))]


def test_compensating_costs_the_same_queries_for_3_or_30_accounts(offices):
    """The credits of a judgement are posted in bulk: ledger entries, awards and messages in a few
    statements whatever the number of accounts (a feeder outage pays 10,000+), each still keyed per account."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from urja.notifications.models import OutboxMessage

    catalogue.load_file("servicedesk/oerc_sop.toml")
    spent = {}
    for n in (3, 30):
        dt = f.dt(f.feeder(offices["section1"]))
        accounts = [f.account(offices["section1"], transformer=dt) for _ in range(n)]
        start = timezone.now() - timedelta(hours=20)
        outage = desk.declare_outage(actor=None, channel="system", kind="unplanned", reason="DT fuse blown",
                                     starts_at=start, transformer=dt)  # fmt: skip
        outage = desk.restore_outage(
            actor=None, channel="system", outage=outage, restored_at=start + timedelta(hours=7)
        )
        with CaptureQueriesContext(connection) as queries:
            assert outages.compensate_outage(outage=outage, now=start + timedelta(hours=8)) == n
        spent[n] = len(queries)
        # 7 h against the 4 h standard: 3 started hours at Rs 50
        assert _credits(outage) == sorted((a.pk, Decimal("-150.00")) for a in accounts)
        awards = OutageAward.objects.filter(outage=outage)
        assert awards.count() == n and {a.amount for a in awards} == {Decimal("150.00")}
        assert set(awards.values_list("ledger_entry_id", flat=True)) == set(
            LedgerEntry.objects.filter(reference_type="outage", reference_id=str(outage.pk)).values_list(
                "pk", flat=True
            )
        )
        told = OutboxMessage.objects.filter(event="outage.compensation_credited", channel="sms", account__in=accounts)
        assert sorted(told.values_list("idempotency_key", flat=True)) == sorted(
            f"servicedesk:outage_compensation:{outage.pk}:{a.pk}:sms" for a in accounts
        )
        assert outages.compensate_outage(outage=outage) == 0  # judged once
    assert spent[3] == spent[30]
