"""Boundary meters (issue 14.1): on a feeder head or a DT, read by file import and by the gateway."""

import json
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from urja.core.errors import DomainError
from urja.metering import boundary, services
from urja.metering.gateway import Gateway
from urja.metering.models import BoundaryInstallation, BoundaryReading, Installation, Reading
from urja.network.models import DistributionTransformer, Feeder


@pytest.fixture
def network(offices):
    feeder = Feeder.objects.create(code="F-BND-1", name="Station Road", office=offices["section1"])
    dt = DistributionTransformer.objects.create(code="DT-BND-1", feeder=feeder, capacity_kva=100)
    return feeder, dt


def test_install_on_a_node_and_refusals(network, make_meter, installed):
    feeder, dt = network
    m1, m2 = make_meter(), make_meter()
    at = timezone.now() - timedelta(days=10)
    inst = boundary.install_boundary_meter(meter=m1, transformer=dt, actor=None, channel="system", installed_at=at)
    m1.refresh_from_db()
    assert (inst.transformer_id, inst.feeder_id, m1.status) == (dt.pk, None, "installed")
    with pytest.raises(DomainError) as e:
        boundary.install_boundary_meter(meter=m2, transformer=dt, actor=None, channel="system")
    assert e.value.code == "node_has_meter"
    with pytest.raises(DomainError) as e:
        boundary.install_boundary_meter(meter=m2, actor=None, channel="system")
    assert e.value.code == "boundary_node_required"
    with pytest.raises(DomainError) as e:  # a consumer's meter cannot also be a boundary meter
        boundary.install_boundary_meter(meter=installed.meter, feeder=feeder, actor=None, channel="system")
    assert e.value.code == "meter_in_use"
    with pytest.raises(IntegrityError), transaction.atomic():  # the database says "one node" too
        BoundaryInstallation.objects.create(meter=m2, feeder=feeder, transformer=dt, installed_at=at)


def test_file_import_with_every_bad_row_reported(network, make_meter, tmp_path):
    feeder, dt = network
    at = timezone.now() - timedelta(days=40)
    m_dt, m_fd, _loose = make_meter("BDT1"), make_meter("BFD1"), make_meter("LOOSE1")
    boundary.install_boundary_meter(meter=m_dt, transformer=dt, actor=None, channel="system", installed_at=at)
    boundary.install_boundary_meter(meter=m_fd, feeder=feeder, actor=None, channel="system", installed_at=at)
    t1 = (at + timedelta(days=1)).isoformat()
    t2 = (at + timedelta(days=31)).isoformat()
    future = (timezone.now() + timedelta(days=2)).isoformat()
    text = boundary.csv_text(
        [
            ("dt:DT-BND-1", "BDT1", t1, "100.5"),
            ("dt:DT-BND-1", "BDT1", t2, "3100.5"),
            ("feeder:F-BND-1", "BFD1", t2, "52000"),
            ("dt:NOPE", "BDT1", t2, "1"),  # unknown node
            ("dt:DT-BND-1", "NOMETER", t2, "1"),  # unknown meter
            ("dt:DT-BND-1", "BDT1", "yesterday", "1"),  # bad timestamp
            ("dt:DT-BND-1", "BDT1", future, "1"),  # future
            ("dt:DT-BND-1", "BDT1", t1, "-4"),  # negative
            ("dt:DT-BND-1", "BDT1", t1, "12x"),  # not a number
            ("dt:DT-BND-1", "BDT1", t1, "1000000"),  # does not fit 6 digits
            ("feeder:F-BND-1", "BDT1", t2, "5"),  # meter is on the DT, not the feeder
            ("dt:DT-BND-1", "LOOSE1", t2, "5"),  # meter on no node
        ]
    )
    path = tmp_path / "boundary.csv"
    path.write_text(text)
    batch = boundary.import_file(path=path)
    assert (batch.rows, batch.inserted, batch.rejected, batch.duplicates) == (12, 3, 9, 0)
    codes = list(batch.errors.order_by("row_number").values_list("row_number", "code"))
    assert codes == [
        (4, "unknown_node"),
        (5, "unknown_meter"),
        (6, "invalid_timestamp"),
        (7, "timestamp_in_future"),
        (8, "negative_register"),
        (9, "non_numeric_register"),
        (10, "register_out_of_range"),
        (11, "meter_not_on_node"),
        (12, "meter_not_on_node"),
    ]
    assert sorted(BoundaryReading.objects.values_list("kwh", flat=True)) == [
        Decimal("100.500"),
        Decimal("3100.500"),
        Decimal("52000.000"),
    ]
    again = boundary.import_file(path=path)  # idempotent
    assert (again.inserted, again.duplicates) == (0, 3)
    assert BoundaryReading.objects.count() == 3


def test_gateway_stores_boundary_registers_apart_from_consumers(network, make_meter, account):
    """The MQTT path: the gateway's batch goes through boundary.take_boundary_readings first."""
    _feeder, dt = network
    at = timezone.now() - timedelta(days=2)
    dt_meter = make_meter("SMDT1", meter_type="smart")
    boundary.install_boundary_meter(meter=dt_meter, transformer=dt, actor=None, channel="system", installed_at=at)
    consumer_meter = make_meter("SMC1", meter_type="smart")
    services.install_meter(account=account, meter=consumer_meter, actor=None, channel="system", installed_at=at)
    gw = Gateway("mqtt://127.0.0.1:1")  # no connection: messages go straight into its inbox
    ts = (timezone.now() - timedelta(hours=1)).isoformat()
    for serial, kwh in (("SMDT1", 4321.5), ("SMC1", 12.25)):
        payload = json.dumps({"ts": ts, "registers": {"kwh": kwh}}).encode()
        gw.inbox.put((f"urja/meters/{serial}/readings", payload))
    gw.inbox.put(("urja/meters/SMDT1/events", json.dumps({"ts": ts, "event": "power_fail"}).encode()))
    result = gw.drain()
    assert result["messages"] == 3
    assert list(BoundaryReading.objects.values_list("meter__serial", "kwh")) == [("SMDT1", Decimal("4321.500"))]
    assert list(Reading.objects.filter(source="smart_meter").values_list("meter__serial", "kwh")) == [
        ("SMC1", Decimal("12.250"))
    ]
    assert dt_meter.events.filter(kind="power_fail").count() == 1
    assert not Installation.objects.filter(meter=dt_meter).exists()
