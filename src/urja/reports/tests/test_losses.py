"""Loss hunting (issue 14.3): suspects per DT, the inspection list, outcomes through billing and connections."""

from datetime import datetime
from decimal import Decimal as D

import pytest

from urja.billing.models import Bill, LedgerEntry
from urja.connections.models import ChangeRequest
from urja.core.calendars import IST
from urja.core.errors import Conflict, DomainError
from urja.demo import testing
from urja.metering import services as metering
from urja.metering.models import SmartMeterEvent
from urja.reports import losses, services
from urja.reports.models import Inspection
from urja.reports.tests import factories as f

P = "2026-10"


@pytest.fixture
def dt_network(offices):
    from urja.servicedesk import catalogue

    catalogue.load_file("servicedesk/oerc_sop.toml")
    sec = offices["section1"]
    fd = f.feeder(sec)
    dt = f.dt(fd)
    f.boundary_meter(node_dt=dt, installed_at=datetime(2026, 1, 1, tzinfo=IST),
                     readings=[(datetime(2026, 9, 30, 23, tzinfo=IST), "0"),
                               (datetime(2026, 10, 31, 23, tzinfo=IST), "2500")])  # fmt: skip
    acc = {k: f.account(sec, transformer=dt) for k in ("drop", "a", "b", "c", "zero", "tamper", "md")}
    for month in range(4, 10):  # April–September: 200 kWh each
        for k, a in acc.items():
            f.bill(a, period=f"2026-{month:02d}", units="0" if k == "zero" and month >= 8 else "200", total="1200")
    units = {"drop": "40", "zero": "0"}  # the DT's median is 200: a quarter is 50
    for k, a in acc.items():
        f.bill(a, period=P, units=units.get(k, "200"), total="1200")
    # MD above the 2 kW sanctioned load on three bills this financial year
    Bill.objects.filter(account=acc["md"], period_start__month__in=(5, 7, 10)).update(recorded_md=D("3.4"))
    meter = metering.register_meter(serial="TMP1", make="G", meter_type="smart", actor=None, channel="system")
    metering.install_meter(account=acc["tamper"], meter=meter, actor=None, channel="system",
                           installed_at=datetime(2026, 1, 1, tzinfo=IST))  # fmt: skip
    SmartMeterEvent.objects.create(meter=meter, at=datetime(2026, 10, 12, tzinfo=IST), kind="magnet")
    SmartMeterEvent.objects.create(meter=meter, at=datetime(2026, 10, 13, tzinfo=IST), kind="cover_open")
    services.compute_period(period=P)
    return dt, acc


def test_suspects_by_every_rule(dt_network):
    dt, acc = dt_network
    found = losses.suspects(period=P, transformer_id=dt.pk)
    codes = {k: sorted(r["code"] for r in found.get(a.pk, [])) for k, a in acc.items()}
    assert codes == {
        "drop": ["drop_own", "drop_peers"],
        "a": [], "b": [], "c": [],
        "zero": ["drop_own", "drop_peers", "zero"],
        "tamper": ["tamper", "tamper"],
        "md": ["md_over_load"],
    }  # fmt: skip


def test_inspection_list_and_outcomes(dt_network):
    dt, acc = dt_network
    assert losses.build_inspections(period=P, worst_dts=5) == 4
    assert losses.build_inspections(period=P, worst_dts=5) == 0  # idempotent
    engineer = testing.staff_user("engineer", dt.feeder.office)
    theft = Inspection.objects.get(account=acc["drop"])
    with pytest.raises(DomainError) as e:
        losses.record_outcome(inspection=theft, outcome="theft", actor=engineer, channel="field_agent")
    assert e.value.code == "assessment_required"
    losses.record_outcome(inspection=theft, outcome="theft", actor=engineer, channel="field_agent",
                          assessed_kwh=D("900"), rate=D("6.10"), remarks="hooking on the LT line")  # fmt: skip
    entry = LedgerEntry.objects.get(account=acc["drop"], entry_type="debit_note")
    assert entry.amount == D("5490.00") and "900" in entry.description
    with pytest.raises(Conflict):
        losses.record_outcome(inspection=theft, outcome="no_issue", actor=engineer, channel="field_agent")
    md = Inspection.objects.get(account=acc["md"])
    losses.record_outcome(inspection=md, outcome="load_exceeded", actor=engineer, channel="section_office")
    change = ChangeRequest.objects.get(account=acc["md"], kind="load_change")
    assert change.details["load"] == "4"


def test_inspection_api_scoped(client, dt_network, offices):
    from urja.core.models import ApiToken

    def bearer(user):
        _, raw = ApiToken.issue(user=user, name="t")
        return {"HTTP_AUTHORIZATION": f"Bearer {raw}"}

    _dt, acc = dt_network
    manager = testing.staff_user("manager", offices["division1"])
    res = client.post("/api/v1/reports/inspections/build", {"period": P, "worst_dts": 5},
                      content_type="application/json", **bearer(manager))  # fmt: skip
    assert res.status_code == 201 and res.json() == {"created": 4}
    rows = client.get("/api/v1/reports/inspections", {"period": P}, **bearer(manager)).json()
    assert len(rows) == 4 and {r["consumer_number"] for r in rows} >= {acc["drop"].consumer_number}
    other = testing.staff_user("engineer", offices["division2"])
    assert client.get("/api/v1/reports/inspections", {"period": P}, **bearer(other)).json() == []
    target = next(r for r in rows if r["consumer_number"] == acc["drop"].consumer_number)
    url = f"/api/v1/reports/inspections/{target['id']}/outcome"
    body = {"outcome": "theft", "assessed_kwh": "100", "rate": "5.5"}
    res = client.post(url, body, content_type="application/json", **bearer(other))
    assert res.status_code == 404  # out of scope: like nonexistent
    res = client.post(url, body, content_type="application/json", **bearer(manager))
    assert res.status_code == 200 and res.json()["assessed_amount"] == "550.00"
