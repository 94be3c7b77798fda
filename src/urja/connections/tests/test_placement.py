"""Energization places the new account on the network (a DT of its section → its feeder) and in a bill
cycle and route of its section, so that it is billed and counted in energy accounting (issue 12)."""

from decimal import Decimal

import pytest
from django.test import Client

from urja.connections import selectors, services
from urja.connections.models import ApplicationStatus
from urja.core.errors import DomainError
from urja.core.models import ApiToken
from urja.customers.models import Account
from urja.demo.testing import domestic_account
from urja.metering import services as metering
from urja.metering.models import Installation
from urja.network.models import DistributionTransformer, Feeder
from urja.payments import services as payments

from .conftest import BALASORE


@pytest.fixture
def net(offices):
    lat, lon = Decimal(BALASORE[0]), Decimal(BALASORE[1])
    f1 = Feeder.objects.create(code="F-MOTI", name="Motiganj 11 kV", office=offices["section1"])
    f2 = Feeder.objects.create(code="F-BHD", name="Bhadrak 11 kV", office=offices["section2"])
    return {
        # 'near' is ~100 m from the premises, 'far' ~2 km
        "near": DistributionTransformer.objects.create(
            code="DT-NEAR", feeder=f1, capacity_kva=100, latitude=lat + Decimal("0.0009"), longitude=lon
        ),
        "far": DistributionTransformer.objects.create(
            code="DT-FAR", feeder=f1, capacity_kva=100, latitude=lat + Decimal("0.018"), longitude=lon
        ),
        "unmapped": DistributionTransformer.objects.create(code="DT-NOGEO", feeder=f1, capacity_kva=63),
        "other": DistributionTransformer.objects.create(code="DT-OTHER", feeder=f2, capacity_kva=100),
        "f1": f1,
    }


def _to_paid(apply, engineer, cre, **inspection):
    app = apply()
    services.record_inspection(
        actor=engineer, channel="section_office", application=app, feasible=True, distance_m=20, **inspection
    )
    services.issue_demand_note(actor=engineer, channel="section_office", application=app)
    payments.open_session(actor=cre, opening_balance="0")
    app.refresh_from_db()
    services.pay_demand_note(actor=cre, channel="counter", application=app, idempotency_key=f"dn-{app.number}")
    app.refresh_from_db()
    assert app.status == ApplicationStatus.DN_PAID
    return app


def _meter(serial):
    return metering.register_meter(serial=serial, make="Genus", meter_type="static", actor=None, channel="system")


def test_inspection_defaults_to_the_nearest_dt_and_energization_places_the_account(apply, engineer, cre, offices, net):
    # the section reads most of its accounts in C03, route R07
    for i in range(2):
        domestic_account(offices["section1"], mobile=f"94370000{i:02d}", bill_cycle="C03", route="MOTI-R07")
    domestic_account(offices["section1"], mobile="9437000099", bill_cycle="C02", route="MOTI-R02")
    app = _to_paid(apply, engineer, cre)
    assert app.inspection.transformer == net["near"]
    assert selectors.default_placement(app) == {"transformer": net["near"], "bill_cycle": "C03", "route": "MOTI-R07"}
    # an HT connection is read in the HT cycle's route; an LT one never on it
    for i in range(3):  # more than any LT route, so only keeping HT apart keeps an LT connection off it
        domestic_account(offices["section1"], mobile=f"94370001{i:02d}", bill_cycle="HT", route="MOTI-H01")
    app.supply_type, lt = "ht", app.supply_type
    assert {k: v for k, v in selectors.default_placement(app).items() if k != "transformer"} == {
        "bill_cycle": "HT", "route": "MOTI-H01"}  # fmt: skip
    app.supply_type = lt
    assert selectors.default_placement(app)["route"] == "MOTI-R07"  # the HT route stays apart
    services.energize(actor=engineer, channel="section_office", application=app, meter_serial=_meter("P1").serial)
    account = Account.objects.get(pk=app.account_id)
    assert account.status == "active"
    assert (account.transformer, account.feeder, account.bill_cycle, account.route) == (
        net["near"],
        net["f1"],
        "C03",
        "MOTI-R07",
    )


def test_the_engineer_may_choose_another_dt_of_the_section_but_not_of_another(apply, engineer, cre, offices, net):
    app = apply()
    with pytest.raises(DomainError) as err:
        services.record_inspection(
            actor=engineer, channel="section_office", application=app, feasible=True, distance_m=20,
            transformer="DT-OTHER",
        )  # fmt: skip
    assert err.value.code == "transformer_not_in_section" and err.value.status == 400
    app.refresh_from_db()
    assert app.status == ApplicationStatus.REGISTERED and not hasattr(app, "inspection")

    app = _to_paid(apply, engineer, cre, transformer="DT-FAR")
    assert app.inspection.transformer == net["far"]
    meter = _meter("P2")
    with pytest.raises(DomainError) as err:
        services.energize(
            actor=engineer, channel="section_office", application=app, meter_serial=meter.serial, transformer="DT-OTHER"
        )
    assert err.value.code == "transformer_not_in_section"
    app.refresh_from_db()
    account = Account.objects.get(pk=app.account_id)
    assert app.status == ApplicationStatus.DN_PAID and account.status == "pending" and account.transformer is None
    assert not Installation.objects.filter(meter=meter).exists()  # nothing changed
    with pytest.raises(DomainError) as err:
        services.energize(
            actor=engineer, channel="section_office", application=app, meter_serial=meter.serial, bill_cycle="X9"
        )
    assert err.value.code == "unknown_cycle"
    services.energize(
        actor=engineer, channel="section_office", application=app, meter_serial=meter.serial,
        transformer="DT-NOGEO", route="moti-r11",
    )  # fmt: skip
    account.refresh_from_db()
    assert (account.transformer.code, account.route, account.bill_cycle) == ("DT-NOGEO", "MOTI-R11", "C01")


def test_a_section_with_no_route_yet_starts_the_data_file_s_route(apply, engineer, cre, offices):
    app = _to_paid(apply, engineer, cre)  # no DT registered in the section: none is demanded
    assert app.inspection.transformer is None
    services.energize(actor=engineer, channel="section_office", application=app, meter_serial=_meter("P3").serial)
    account = Account.objects.get(pk=app.account_id)
    assert (account.bill_cycle, account.route) == ("C01", f"{offices['section1'].code}-R01")


def test_energize_through_the_api_answers_the_placement(apply, engineer, cre, offices, net):
    app = _to_paid(apply, engineer, cre)
    _, raw = ApiToken.issue(user=engineer, name="t")
    headers = {"HTTP_AUTHORIZATION": f"Bearer {raw}"}
    url = f"/api/v1/connections/applications/{app.number}/energize"
    bad = Client().post(
        url, {"meter_serial": _meter("P4").serial, "transformer": "DT-OTHER"}, content_type="application/json",
        **headers,
    )  # fmt: skip
    assert bad.status_code == 400 and bad.json()["code"] == "transformer_not_in_section"
    assert bad.json()["details"] == {"transformer": "DT-OTHER", "section": offices["section1"].code}
    ok = Client().post(
        url, {"meter_serial": "P4", "bill_cycle": "C02", "route": "MOTI-R02"}, content_type="application/json",
        **headers,
    )  # fmt: skip
    assert ok.status_code == 200, ok.content
    assert ok.json()["placement"] == {
        "transformer": "DT-NEAR",
        "feeder": "F-MOTI",
        "bill_cycle": "C02",
        "route": "MOTI-R02",
    }
