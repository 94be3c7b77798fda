"""The demo hook: applications at every stage through the services, change requests and orders; a
rerun adds nothing."""

import random
from decimal import Decimal

from urja.connections import demo
from urja.connections.models import Application, ChangeRequest, Escalation, Order
from urja.demo.testing import domestic_account


def test_the_demo_hook_builds_every_stage_once(offices, loaded, cre, engineer):
    from urja.network.models import DistributionTransformer, Feeder

    feeder = Feeder.objects.create(code="F-DEMO", name="Demo 11 kV", office=offices["section1"])
    dt = DistributionTransformer.objects.create(
        code="DT-DEMO", feeder=feeder, capacity_kva=100, latitude="21.49", longitude="86.93"
    )
    accounts = [
        domestic_account(offices["section1"], name=f"Demo {i}", mobile=f"94370{i:05d}", bill_cycle="C02",
                         route="DEMO-R03", transformer=dt, latitude="21.4945", longitude="86.9332")
        for i in range(6)
    ]  # fmt: skip
    from urja.metering import services as metering

    for i, account in enumerate(accounts[4:]):  # the meter-shifting demo needs meters
        meter = metering.register_meter(serial=f"DEMOSH{i}", make="Genus", meter_type="static", actor=None,
                                        channel="system")  # fmt: skip
        metering.install_meter(account=account, meter=meter, actor=None, channel="system", location="gate")
    counts = demo.populate(accounts=accounts, staff={"cre": cre, "engineer": engineer}, rng=random.Random(6))
    statuses = set(Application.objects.values_list("status", flat=True))
    assert statuses == {"registered", "inspected", "dn_issued", "dn_paid", "energized", "rejected", "withdrawn"}
    fast = Application.objects.get(fast_track=True, status="energized")
    # energized connections are on the network and in their section's cycle and route
    for app in Application.objects.filter(status="energized").select_related("account"):
        placed = app.account
        assert (placed.transformer_id, placed.feeder_id, placed.bill_cycle, placed.route) == (
            dt.pk,
            feeder.pk,
            "C02",
            "DEMO-R03",
        )
    assert fast.energized_at - fast.dn_paid_at < fast.connection_due_at - fast.dn_paid_at
    assert Application.objects.filter(kind="temporary").exists()
    assert counts["escalations"] >= 2 and Escalation.objects.exists()
    assert ChangeRequest.objects.filter(kind="load_change", status="requested").exists()
    assert ChangeRequest.objects.filter(kind="category_change", status="scheduled").exists()
    assert Order.objects.filter(kind="disconnect", status="done", reason="non_payment").exists()
    assert Order.objects.filter(kind="reconnect", status="open").exists()
    assert counts["meter_shifting_awaiting_payment"] == 1 and counts["meter_shifted"] == 1
    assert set(ChangeRequest.objects.filter(kind="meter_shifting").values_list("status", flat=True)) == {
        "approved",
        "applied",
    }
    # one shifting of each network kind, at its stage; the DT structure moved on the network
    network = ChangeRequest.objects.exclude(kind="meter_shifting").filter(kind__contains="shifting")
    assert dict(network.values_list("kind", "status")) == {
        "lt_line_shifting": "applied",
        "11kv_line_shifting": "approved",
        "33kv_line_shifting": "requested",
        "dt_shifting": "applied",
    }
    assert ChangeRequest.objects.get(kind="11kv_line_shifting").details["requester"] == "builder"
    dt.refresh_from_db()
    assert (dt.latitude, dt.longitude) == (Decimal("21.490400"), Decimal("86.930400"))
    before = (Application.objects.count(), ChangeRequest.objects.count(), Order.objects.count())
    assert demo.populate(accounts=accounts, staff={"cre": cre, "engineer": engineer}, rng=random.Random(6))["skipped"]
    assert (Application.objects.count(), ChangeRequest.objects.count(), Order.objects.count()) == before
