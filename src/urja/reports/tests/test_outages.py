"""Outage detection from smart meters over MQTT (issue 14.4) and compensation of every affected
consumer (issue 14.5), against the real broker (Mosquitto in CI; skipped when none is reachable)."""

import os
import time
import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone

from urja.billing.models import LedgerEntry
from urja.customers.services import ContactInput
from urja.metering import mqtt
from urja.metering import services as metering
from urja.metering.gateway import Gateway
from urja.metering.models import DeadLetter, Meter, SmartMeterEvent
from urja.metering.simulator import Simulator
from urja.notifications.models import OutboxMessage
from urja.reports import outages
from urja.reports.models import DetectedOutage, EventCursor, OutageAward
from urja.reports.tests import factories as f
from urja.servicedesk import catalogue, clock
from urja.servicedesk import services as desk
from urja.servicedesk.models import CompensationAward, Outage, OutageAccount

URL = os.environ.get("URJA_TEST_MQTT_URL", "mqtt://127.0.0.1:1883")
BROKER = mqtt.port_open(URL)


def _account(section, dt, n, language="en"):
    from urja.customers import services as customers

    consumer = customers.register_consumer(
        actor=None, channel="system", name=f"Consumer {n}", contacts=[ContactInput("mobile", f"94380{n:05d}", True)],
        preferred_language=language,
    )  # fmt: skip
    return customers.open_account(
        actor=None, channel="system", consumer=consumer, section=section, premises_address="Station Road",
        category="domestic", supply_type="lt_1ph", sanctioned_load="2", feeder=dt.feeder, transformer=dt,
    )  # fmt: skip


@pytest.fixture
def dt_with_smart_meters(offices):
    catalogue.load_file("servicedesk/oerc_sop.toml")
    feeder = f.feeder(offices["section1"])
    dt, quiet = f.dt(feeder), f.dt(feeder)
    tag = uuid.uuid4().hex[:6].upper()
    serials, accounts = [], []
    for i, (node, lang) in enumerate([(dt, "en"), (dt, "hi"), (dt, "or"), (dt, "en"), (quiet, "en")]):
        account = _account(offices["section1"], node, i + 1, lang)
        serial = f"OD{tag}{i}"
        meter = metering.register_meter(serial=serial, make="Genus", meter_type="smart", actor=None, channel="system")
        metering.install_meter(account=account, meter=meter, actor=None, channel="system",
                               installed_at=timezone.now() - timedelta(days=30))  # fmt: skip
        serials.append(serial)
        accounts.append(account)
    clock.reset()
    yield {"dt": dt, "quiet": quiet, "serials": serials, "accounts": accounts}
    clock.reset()


def _until(gateway, condition, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        gateway.drain()
        if condition():
            return True
        time.sleep(0.05)
    return False


@pytest.mark.skipif(not BROKER, reason=f"MQTT broker not reachable at {URL}")
def test_last_gasp_declares_restore_closes_and_every_consumer_is_compensated(dt_with_smart_meters):
    net = dt_with_smart_meters
    dt, serials, accounts = net["dt"], net["serials"], net["accounts"]
    now = timezone.now()
    t0 = now - timedelta(hours=7)
    # a consumer complained an hour into the outage (before the detector saw it)
    clock.advance(hours=-6)
    complaint = desk.register_request(actor=None, channel="call_centre", type_code="no_power_supply",
                                      subtype_code="no_power_supply", account=accounts[2],
                                      description="No supply since morning").request  # fmt: skip
    clock.reset()

    gateway = Gateway(URL)
    gateway.start()
    assert gateway.wait_connected(10)
    sim = Simulator(URL, {s: Decimal(100) for s in serials}, seed=3)
    assert sim.start()
    time.sleep(0.3)
    try:
        # 3 of the DT's 4 meters send their last gasp (out of order: the latest first)
        for k, serial in enumerate(reversed(serials[:3])):
            sim.publish_event(serial, "power_fail", at=t0 + timedelta(seconds=20 - 5 * k))
        assert _until(gateway, lambda: SmartMeterEvent.objects.filter(kind="power_fail").count() == 3)
        result = outages.run_detector()
        assert len(result["declared"]) == 1
        outage = Outage.objects.get(number=result["declared"][0])
        assert (outage.transformer_id, outage.kind, outage.status) == (dt.pk, "unplanned", "active")
        assert outage.starts_at == t0 + timedelta(seconds=10)  # the earliest last gasp
        complaint.refresh_from_db()
        assert complaint.outage_id == outage.pk  # the complaint joined it
        told = OutboxMessage.objects.filter(event="outage.detected")
        assert sorted(told.values_list("account_id", flat=True)) == sorted(a.pk for a in accounts[:4])
        assert {m.language for m in told} == {"en", "hi", "or"}
        assert outages.run_detector()["declared"] == []  # no second outage for the same DT

        # supply back meter by meter: the first at t0 + 4 h 30, the second at 5 h 40; the 3rd at 6 h 30
        # decides (80% of 3 meters = 3)
        restores = [t0 + timedelta(hours=4, minutes=30), t0 + timedelta(hours=5, minutes=40),
                    t0 + timedelta(hours=6, minutes=30)]  # fmt: skip
        for serial, at in zip(serials[:2], restores, strict=False):
            sim.publish_event(serial, "power_restore", at=at)
        assert _until(gateway, lambda: SmartMeterEvent.objects.filter(kind="power_restore").count() == 2)
        assert outages.run_detector()["restored"] == []  # 2 of 3: still out, but their rows are closed
        rows = {r.account_id: r for r in OutageAccount.objects.filter(outage=outage)}
        assert [rows[a.pk].restored_at for a in accounts[:4]] == [*restores[:2], None, None]
        sim.publish_event(serials[2], "power_restore", at=restores[2])
        assert _until(gateway, lambda: SmartMeterEvent.objects.filter(kind="power_restore").count() == 3)
        result = outages.run_detector()
        assert result["restored"] == [outage.number]
        # the meters re-send their restores (QoS 1 redelivery) and the cursor is lost: nothing paid twice
        for serial, at in zip(serials[:3], restores, strict=True):
            sim.publish_event(serial, "power_restore", at=at)
        time.sleep(0.3)
        gateway.drain()
        EventCursor.objects.filter(name=outages.CURSOR).update(last_event_id=0)
        replay = outages.run_detector()
        assert (replay["declared"], replay["restored"], replay["compensated"]) == ([], [], 0)
    finally:
        sim.stop()
        gateway.stop()
    outage.refresh_from_db()
    assert outage.status == "restored" and outage.restored_at == t0 + timedelta(hours=6, minutes=30)
    detection = DetectedOutage.objects.get(outage=outage)
    assert (detection.meters_failed, detection.meters_restored, detection.measured_minutes) == (3, 3, 389)
    complaint.refresh_from_db()
    assert complaint.status == "closed"
    # every consumer of the DT is compensated for its OWN restoration, counted from the outage's start
    # (t0 + 10 s; 4 h standard, urban; Rs 50 a started hour late): 4 h 29 min 50 s → 1 hour, 5 h 39 min
    # 50 s → 2 hours, 6 h 29 min 50 s → 3 hours; the 4th meter reported nothing: the outage's restoration
    rows = {r.account_id: r for r in OutageAccount.objects.filter(outage=outage)}
    assert [rows[a.pk].restored_at for a in accounts[:4]] == [*restores, restores[2]]
    assert [rows[a.pk].restore_reported for a in accounts[:4]] == [True, True, True, False]
    assert [rows[a.pk].units_late for a in accounts[:4]] == [1, 2, 3, 3]
    by_request = CompensationAward.objects.filter(request=complaint).first()
    paid_for_request = by_request.amount if by_request else Decimal(0)
    expected = [Decimal("50.00"), Decimal("100.00"), Decimal("150.00") - paid_for_request, Decimal("150.00")]
    assert [rows[a.pk].award for a in accounts[:4]] == expected
    awards = {a.account_id: a for a in OutageAward.objects.filter(outage=outage)}
    assert {k: v.amount for k, v in awards.items()} == {
        a.pk: amount for a, amount in zip(accounts[:4], expected, strict=True) if amount > 0
    }
    assert accounts[4].pk not in rows  # the quiet DT was not out
    credits = LedgerEntry.objects.filter(entry_type="compensation", reference_type="outage")
    assert sorted(credits.values_list("account_id", "amount")) == sorted(
        (k, -v.amount) for k, v in awards.items()
    )  # one credit each, replays included
    credit = LedgerEntry.objects.get(account=accounts[1], entry_type="compensation")
    assert outage.number in credit.description and "2 hours of delay" in credit.description
    assert OutboxMessage.objects.filter(event="outage.compensation_credited", account=accounts[1]).exists()
    assert OutboxMessage.objects.filter(event="outage.restored").count() == 4
    assert outages.compensate_outage(outage=outage) == 0  # idempotent
    assert outages.compensate_due() == 0


def test_below_threshold_or_future_events_declare_nothing(dt_with_smart_meters):
    net = dt_with_smart_meters
    meters = {m.serial: m for m in Meter.objects.filter(serial__in=net["serials"])}
    now = timezone.now()
    # two of four meters fail (threshold: 3 meters and half the DT) — no outage
    for serial in net["serials"][:2]:
        SmartMeterEvent.objects.create(meter=meters[serial], at=now - timedelta(minutes=5), kind="power_fail")
    # one stamped an hour in the future: not used, reported
    SmartMeterEvent.objects.create(meter=meters[net["serials"][2]], at=now + timedelta(hours=1), kind="power_fail")
    result = outages.run_detector(now=now)
    assert (result["declared"], result["future"]) == ([], 1)
    assert DeadLetter.objects.filter(code="timestamp_in_future").count() == 1
    assert not Outage.objects.exists()
    # a third meter's failure arrives later: together they pass the threshold (the window joins them)
    SmartMeterEvent.objects.create(meter=meters[net["serials"][3]], at=now - timedelta(minutes=4), kind="power_fail")
    result = outages.run_detector(now=now)
    assert len(result["declared"]) == 1
    assert Outage.objects.get().transformer_id == net["dt"].pk


def test_many_dts_of_a_feeder_make_one_feeder_outage(offices):
    catalogue.load_file("servicedesk/oerc_sop.toml")
    feeder = f.feeder(offices["section1"])
    now = timezone.now()
    n = 0
    for _ in range(3):
        dt = f.dt(feeder)
        for _ in range(3):
            n += 1
            account = f.account(offices["section1"], transformer=dt)
            meter = metering.register_meter(serial=f"FD{uuid.uuid4().hex[:8]}", make="G", meter_type="smart",
                                            actor=None, channel="system")  # fmt: skip
            metering.install_meter(account=account, meter=meter, actor=None, channel="system",
                                   installed_at=now - timedelta(days=3))  # fmt: skip
            SmartMeterEvent.objects.create(meter=meter, at=now - timedelta(seconds=n), kind="power_fail")
    result = outages.run_detector(now=now)
    assert len(result["declared"]) == 1
    outage = Outage.objects.get()
    assert (outage.feeder_id, outage.transformer_id, outage.affected_accounts) == (feeder.pk, None, 9)


def _feeder_with_failing_dts(offices, dts=3, meters=3, now=None):
    feeder = f.feeder(offices["section1"])
    made = []
    for _ in range(dts):
        dt = f.dt(feeder)
        for _ in range(meters):
            account = f.account(offices["section1"], transformer=dt)
            meter = metering.register_meter(serial=f"RP{uuid.uuid4().hex[:8]}", make="G", meter_type="smart",
                                            actor=None, channel="system")  # fmt: skip
            metering.install_meter(account=account, meter=meter, actor=None, channel="system",
                                   installed_at=now - timedelta(days=3))  # fmt: skip
            made.append(meter)
    return feeder, made


def test_replayed_events_declare_nothing_twice_and_tell_no_one_twice(offices, django_assert_max_num_queries):
    catalogue.load_file("servicedesk/oerc_sop.toml")
    now = timezone.now()
    feeder, meters = _feeder_with_failing_dts(offices, now=now)
    other, more = _feeder_with_failing_dts(offices, dts=1, now=now)  # a DT outage on another feeder
    for n, meter in enumerate(meters + more):
        SmartMeterEvent.objects.create(meter=meter, at=now - timedelta(seconds=30 - n), kind="power_fail")
    # set-based: a fixed number of queries, whatever the number of events, meters or consumers
    # on PostgreSQL the detector also switches JIT off for its pass and the bulk insert (a few SETs);
    # the affected accounts: one INSERT … SELECT for both outages, their counts, and the pass's sweeps
    with django_assert_max_num_queries(63 if connection.vendor == "sqlite" else 69):
        result = outages.run_detector(now=now)
    assert len(result["declared"]) == 2 and result["events"] == 12
    by_place = {(o.feeder_id, o.transformer_id): o for o in Outage.objects.all()}
    assert set(by_place) == {(feeder.pk, None), (other.pk, more[0].installations.get().account.transformer_id)}
    assert by_place[(feeder.pk, None)].affected_accounts == 9
    assert by_place[(feeder.pk, None)].detection.meters_failed == 9
    told = OutboxMessage.objects.filter(event="outage.detected").count()
    assert told == 12  # one SMS per consumer (none opted in to WhatsApp)
    # the same events replayed (the cursor lost): nothing declared, nobody told again
    EventCursor.objects.filter(name=outages.CURSOR).update(last_event_id=0)
    assert outages.run_detector(now=now)["declared"] == []
    assert Outage.objects.count() == 2 and OutboxMessage.objects.filter(event="outage.detected").count() == told
    # a late last gasp on the out feeder joins its outage's detection; no second outage, no new message
    extra = f.account(offices["section1"], transformer=feeder.transformers.first())
    meter = metering.register_meter(serial=f"RP{uuid.uuid4().hex[:8]}", make="G", meter_type="smart", actor=None,
                                    channel="system")  # fmt: skip
    metering.install_meter(
        account=extra, meter=meter, actor=None, channel="system", installed_at=now - timedelta(days=3)
    )
    SmartMeterEvent.objects.create(meter=meter, at=now - timedelta(seconds=2), kind="power_fail")
    assert outages.run_detector(now=now)["declared"] == []
    detection = DetectedOutage.objects.get(outage=by_place[(feeder.pk, None)])
    assert detection.meters_failed == 10 and meter.pk in detection.failed_meter_ids
    assert OutboxMessage.objects.filter(event="outage.detected").count() == told
