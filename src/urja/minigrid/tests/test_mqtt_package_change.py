"""Package change round trip against the real MQTT broker, for a smart meter and for a load limiter
(no register: the same command path): command → ack → package in force; a silent device times out
and the request stays open and is retried."""

import os
import time
import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from urja.metering import mqtt
from urja.metering import services as metering
from urja.metering.gateway import Gateway
from urja.metering.simulator import Simulator
from urja.minigrid import services
from urja.minigrid.models import ChangeStatus

URL = os.environ.get("URJA_TEST_MQTT_URL", "mqtt://127.0.0.1:1883")
pytestmark = [pytest.mark.django_db(transaction=True)]
if not mqtt.port_open(URL):
    pytestmark.append(pytest.mark.skip(reason=f"MQTT broker not reachable at {URL}"))


@pytest.fixture(params=["smart", "load_limiter"])
def rig(request, customer):
    serial = f"MG{uuid.uuid4().hex[:10].upper()}"
    meter = metering.register_meter(serial=serial, make="Genus", meter_type=request.param, actor=None, channel="system")
    metering.install_meter(
        account=customer.account,
        meter=meter,
        actor=None,
        channel="system",
        installed_at=timezone.now() - timedelta(days=3),
        initial_kwh="0",
    )
    gateway = Gateway(URL)
    gateway.start()
    assert gateway.wait_connected(10)
    sim = Simulator(URL, {serial: Decimal(0)}, seed=3)
    assert sim.start()
    time.sleep(0.3)
    yield meter, gateway, sim
    sim.stop()
    gateway.stop()


def _approved_and_paid(customer, operator):
    ch = services.request_package_change(actor=operator, channel="app", customer=customer, to_package="MG-SOLAR-100W")
    services.recharge(actor=operator, customer=customer, amount="500", mode="cash", idempotency_key=uuid.uuid4().hex)
    return services.decide(actor=operator, channel="backoffice", change=ch, approve=True)


def test_command_ack_puts_package_in_force(rig, customer, operator):
    meter, gateway, _sim = rig
    ch = _approved_and_paid(customer, operator)
    assert ch.status == ChangeStatus.PROGRAMMING
    assert gateway.dispatch() >= 2
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and ch.status != ChangeStatus.IN_FORCE:
        gateway.drain()
        ch = services.advance(change=ch)
        time.sleep(0.05)
    assert ch.status == ChangeStatus.IN_FORCE
    meter.refresh_from_db()
    customer.refresh_from_db()
    assert meter.load_limit_kw == Decimal("0.1") and meter.supply_hours == [["18:00", "00:00"]]
    assert customer.package_code == "MG-SOLAR-100W"


def test_silent_meter_keeps_request_open_and_retries(rig, customer, operator, settings):
    meter, gateway, sim = rig
    sim.silent.add(meter.serial)
    ch = _approved_and_paid(customer, operator)
    for cmd in (ch.load_command, ch.hours_command):  # fast timeout for the test
        cmd.timeout_seconds, cmd.max_attempts = 1, 1
        cmd.save(update_fields=["timeout_seconds", "max_attempts"])
    gateway.dispatch()
    time.sleep(1.3)
    gateway.drain()
    gateway.sweep()
    ch = services.advance(change=ch)
    assert ch.status == ChangeStatus.PROGRAMMING and ch.rounds == 2  # open, sent again
    ch.load_command.refresh_from_db()
    assert ch.load_command.status == "queued"
    sim.silent.discard(meter.serial)
    gateway.dispatch()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and ch.status != ChangeStatus.IN_FORCE:
        gateway.drain()
        ch = services.advance(change=ch)
        time.sleep(0.05)
    assert ch.status == ChangeStatus.IN_FORCE
