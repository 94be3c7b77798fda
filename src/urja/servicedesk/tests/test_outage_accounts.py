"""Each outage stores its affected accounts when it is declared (servicedesk.OutageAccount): one
INSERT … SELECT for any number of consumers, each smart meter's own last gasp and restore, the rest
closed with the outage; the network changing afterwards changes nothing."""

from datetime import timedelta
from decimal import Decimal

from django.utils import timezone

from urja.customers import services as customers
from urja.demo import testing
from urja.metering import services as metering
from urja.metering.models import IntervalReading, SmartMeterEvent
from urja.network.models import DistributionTransformer
from urja.servicedesk import services
from urja.servicedesk.models import OutageAccount
from urja.servicedesk.selectors import accounts_of_outage, outage_account_counts
from urja.servicedesk.services.outage_accounts import close_overdue_accounts, close_reported_restorations
from urja.servicedesk.services.outages import NewOutage, declare_outages


def _consumers(section, network, n, *, start=0):
    return [
        testing.domestic_account(
            section, name=f"C {i}", mobile=f"9437{i:06d}", feeder=network["feeder"], transformer=network["dt"]
        )
        for i in range(start, start + n)
    ]


def _smart(account, serial):
    meter = metering.register_meter(serial=serial, make="Genus", meter_type="smart", actor=None, channel="system")
    metering.install_meter(account=account, meter=meter, actor=None, channel="system",
                           installed_at=timezone.now() - timedelta(days=30))  # fmt: skip
    return meter


def _rows(outage):
    return {r.account_id: r for r in OutageAccount.objects.filter(outage=outage)}


def test_the_affected_accounts_are_stored_with_each_meters_own_last_gasp(sop, offices, network):
    sec = offices["section1"]
    a, b, c, off, closed = _consumers(sec, network, 5)
    ma, mb = _smart(a, "SA1"), _smart(b, "SB1")  # c has no smart meter
    customers.change_account_status(actor=None, channel="system", account=off, status="temp_disconnected",
                                    reason="arrears")  # fmt: skip
    customers.change_account_status(actor=None, channel="system", account=closed, status="perm_disconnected",
                                     reason="left")  # fmt: skip
    start = timezone.now() - timedelta(hours=2)
    SmartMeterEvent.objects.create(meter=ma, kind="power_fail", at=start + timedelta(seconds=40))
    SmartMeterEvent.objects.create(meter=ma, kind="power_fail", at=start - timedelta(days=3))  # an older outage
    (outage,) = declare_outages(
        actor=None, channel="system", outages=[NewOutage(transformer_id=network["dt"].pk, starts_at=start,
                                                         reason="Detected")]
    )  # fmt: skip
    rows = _rows(outage)
    assert set(rows) == {a.pk, b.pk, c.pk}  # disconnected accounts have no supply to lose
    assert outage.affected_accounts == 3 and outage_account_counts([outage.pk])[outage.pk]["affected"] == 3
    assert (rows[a.pk].meter_id, rows[a.pk].failed_at, rows[a.pk].fail_reported) == (ma.pk, start + timedelta(
        seconds=40), True)  # fmt: skip
    assert (rows[b.pk].meter_id, rows[b.pk].failed_at, rows[b.pk].fail_reported) == (mb.pk, start, False)
    assert (rows[c.pk].meter_id, rows[c.pk].failed_at) == (None, start)
    assert all(r.transformer_id == network["dt"].pk and r.restored_at is None for r in rows.values())
    # the network changes after the declaration: the outage keeps its accounts
    other = DistributionTransformer.objects.create(code="DT-OTHER", feeder=network["feeder"], capacity_kva=63)
    a.transformer = other
    a.save(update_fields=["transformer"])
    (late,) = _consumers(sec, network, 1, start=10)
    assert set(accounts_of_outage(outage).values_list("pk", flat=True)) == {a.pk, b.pk, c.pk}
    assert late.pk not in _rows(outage)


def test_restores_close_each_row_and_the_rest_close_with_the_outage(sop, offices, network, engineer):
    sec = offices["section1"]
    a, b, c, d, e = _consumers(sec, network, 5)
    ma, mb, md, _ = _smart(a, "RA"), _smart(b, "RB"), _smart(d, "RD"), _smart(e, "RE")
    start = timezone.now() - timedelta(hours=10)
    for m in (ma, mb):
        SmartMeterEvent.objects.create(meter=m, kind="power_fail", at=start + timedelta(seconds=5))
    outage = services.declare_outage(actor=engineer, channel="backoffice", kind="unplanned", reason="DT fuse",
                                     starts_at=start, transformer=network["dt"])  # fmt: skip
    assert outage.affected_accounts == 5
    # a's meter is back after 3 h; a restore of a meter that is not in the outage changes nothing
    SmartMeterEvent.objects.create(meter=ma, kind="power_restore", at=start + timedelta(hours=3))
    assert close_reported_restorations(until=timezone.now()) == {outage.pk}
    assert close_reported_restorations(until=timezone.now()) == set()  # a replay closes nothing again
    # d's meter recorded energy all along and never reported a failure: it never lost supply
    for h in range(1, 8):
        IntervalReading.objects.create(meter=md, ts=start + timedelta(hours=h), kwh=Decimal("0.4"))
    back = start + timedelta(hours=8)
    services.restore_outage(actor=engineer, channel="backoffice", outage=outage, restored_at=back)
    rows = _rows(outage)
    assert (rows[a.pk].restored_at, rows[a.pk].restore_reported) == (start + timedelta(hours=3), True)
    assert rows[b.pk].restored_at is None  # its failure was reported: it waits for its own restore
    assert (rows[c.pk].restored_at, rows[c.pk].restore_reported) == (back, False)  # no meter: the outage's
    assert (rows[d.pk].supplied, rows[d.pk].restored_at) == (True, start)
    assert (rows[e.pk].supplied, rows[e.pk].restored_at) == (False, back)  # a silent meter: benefit of doubt
    assert outage_account_counts([outage.pk])[outage.pk]["restored"] == 4
    # b's restore never comes: the grace closes it at the outage's restoration
    assert close_overdue_accounts(now=back + timedelta(hours=1), grace=timedelta(hours=6)) == 0
    assert close_overdue_accounts(now=back + timedelta(hours=7), grace=timedelta(hours=6)) == 1
    assert _rows(outage)[b.pk].restored_at == back


def test_declaring_costs_the_same_queries_for_any_number_of_consumers(sop, offices, network):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from urja.network.models import Feeder

    sec = offices["section1"]
    # warm up (the number counter's first row, the catalogue's cache): then only the consumers differ
    warm = NewOutage(transformer_id=network["dt"].pk, starts_at=timezone.now(), reason="x")
    declare_outages(actor=None, channel="system", outages=[warm])
    spent = {}
    for n in (3, 30):
        feeder = Feeder.objects.create(code=f"FQ{n}", name=f"Q{n} 11 kV", office=sec)
        dt = DistributionTransformer.objects.create(code=f"DTQ{n}", feeder=feeder, capacity_kva=100)
        for i, account in enumerate(_consumers(sec, {"feeder": feeder, "dt": dt}, n, start=100 * n)):
            if i % 2:
                _smart(account, f"Q{n}-{i}")
        with CaptureQueriesContext(connection) as queries:
            (outage,) = declare_outages(actor=None, channel="system",
                                        outages=[NewOutage(feeder_id=feeder.pk, starts_at=timezone.now(),
                                                           reason="Detected")])  # fmt: skip
        spent[n] = len(queries)
        assert outage.affected_accounts == n == OutageAccount.objects.filter(outage=outage).count()
        assert OutageAccount.objects.filter(outage=outage, meter__isnull=False).count() == n // 2
    assert spent[3] == spent[30]  # one INSERT … SELECT, not a statement per consumer
