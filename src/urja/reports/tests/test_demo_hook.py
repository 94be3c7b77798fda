"""The demo hook (reports.demo.populate): boundary meters with plausible losses, accounting, a past
outage with compensation, the runtime scenario's marker; idempotent."""

import random
from datetime import timedelta

from django.utils import timezone

from urja.metering import services as metering
from urja.metering.models import BoundaryInstallation
from urja.reports import demo, runtime, services
from urja.reports.models import EnergyBalance, EventCursor, OutageAward
from urja.reports.tests import factories as f
from urja.servicedesk import catalogue
from urja.servicedesk.models import Outage


def test_demo_hook_meters_the_network_and_shows_an_outage(offices):
    catalogue.load_file("servicedesk/oerc_sop.toml")
    sec = offices["section1"]
    fd = f.feeder(sec)
    dts = [f.dt(fd) for _ in range(4)]
    accounts = []
    periods = demo._months(4)
    for i in range(24):
        a = f.account(sec, transformer=dts[i % 4])
        accounts.append(a)
        for p in periods:
            f.bill(a, period=p, units=str(100 + i), total=str(700 + i))
        if i % 4 in (0, 1):  # smart meters on two DTs
            m = metering.register_meter(
                serial=f"DSM{i:04d}", make="G", meter_type="smart", actor=None, channel="system"
            )
            metering.install_meter(account=a, meter=m, actor=None, channel="system",
                                   installed_at=timezone.now() - timedelta(days=200))  # fmt: skip
    lines = []
    demo.populate(accounts=accounts, rng=random.Random(7), stdout=lines.append)
    assert BoundaryInstallation.objects.filter(transformer__isnull=False).count() == 4
    assert BoundaryInstallation.objects.filter(feeder=fd).count() == 1
    last = periods[-1]
    dt_rows = EnergyBalance.objects.filter(period=last, level="dt", category="")
    known = [r.atc_loss for r in dt_rows if r.atc_loss is not None]
    assert known and all(r > 0 for r in known)  # input above billed: a loss on every measured DT
    assert dt_rows.filter(input_status="estimated").count() == 1  # the DT left without its last reading
    outage = Outage.objects.get()
    assert outage.status == "restored" and OutageAward.objects.filter(outage=outage).count() == 6
    marker = EventCursor.objects.get(name=demo.MARKER)
    assert marker.last_event_id in {dts[0].pk, dts[1].pk} and marker.last_event_id != outage.transformer_id
    assert len(runtime._serials()) == 6
    assert "boundary meters on 4 DTs" in lines[0]
    demo.populate(accounts=accounts, rng=random.Random(7), stdout=lines.append)  # a rerun adds no meter
    assert BoundaryInstallation.objects.count() == 5 and Outage.objects.count() == 1
    assert services.parse_period(last)
