"""A connection is opened on the network and in a bill cycle and route of its section (issue 12): its DT
(and the DT's feeder) must be the section's, so that it is billed and counted in energy accounting;
anything else is a 4xx with nothing saved."""

import pytest
from django.test import Client

from urja.core.models import ApiToken, AuditEvent
from urja.customers import services
from urja.customers.models import Account
from urja.demo import testing
from urja.network.models import DistributionTransformer, Feeder

pytestmark = pytest.mark.django_db


@pytest.fixture
def net(offices):
    f1 = Feeder.objects.create(code="F-S1", name="Station Road 11 kV", office=offices["section1"])
    f2 = Feeder.objects.create(code="F-S2", name="Bhadrak 11 kV", office=offices["section2"])
    f_div = Feeder.objects.create(code="F-D1", name="Division 11 kV", office=offices["division1"])
    return {
        "dt1": DistributionTransformer.objects.create(code="DT-S1", feeder=f1, capacity_kva=100),
        "dt2": DistributionTransformer.objects.create(code="DT-S2", feeder=f2, capacity_kva=100),
        "dt_div": DistributionTransformer.objects.create(code="DT-D1", feeder=f_div, capacity_kva=63),
        "f1": f1,
        "f2": f2,
    }


def _consumer(actor=None, name="Sunita Behera"):
    return services.register_consumer(actor=actor, channel="care_centre", name=name)


def _open(section, **kw):
    kw.setdefault("bill_cycle", "C01")
    kw.setdefault("route", f"{section.code}-R01")
    return services.open_account(
        actor=None,
        channel="care_centre",
        consumer=_consumer(),
        section=section,
        premises_address="Plot 12, Station Road",
        category="domestic",
        supply_type="lt_1ph",
        sanctioned_load="2",
        **kw,
    )


def test_the_section_s_dts_place_the_account_with_their_feeder(offices, net):
    account = _open(offices["section1"], transformer="DT-S1", placement_required=True)
    assert (account.transformer, account.feeder) == (net["dt1"], net["f1"])
    # a DT of a feeder kept by an office above the section serves it too
    above = _open(offices["section1"], transformer=net["dt_div"], placement_required=True)
    assert above.feeder.code == "F-D1"
    assert set(services.section_transformers(offices["section1"])) == {net["dt1"], net["dt_div"]}
    assert set(services.section_transformers(offices["section2"])) == {net["dt2"]}


@pytest.mark.parametrize(
    ("kw", "code"),
    [
        ({"transformer": "DT-S2"}, "transformer_not_in_section"),
        ({"transformer": "DT-NOWHERE"}, "unknown_transformer"),
        ({"transformer": "DT-S1", "feeder": "F-D1"}, "feeder_mismatch"),
        ({"feeder": "F-S2"}, "feeder_not_in_section"),
        ({"transformer": "DT-S1", "bill_cycle": "C99"}, "unknown_cycle"),
        ({"transformer": "DT-S1", "route": ""}, "route_required"),
        ({"transformer": ""}, "transformer_required"),
    ],
)
def test_a_wrong_placement_is_refused_and_nothing_is_saved(offices, net, kw, code):
    before = Account.objects.count()
    with pytest.raises(services.DomainError) as err:
        _open(offices["section1"], placement_required=True, **kw)
    assert err.value.code == code and err.value.status == 400
    assert Account.objects.count() == before


def test_the_dt_of_another_section_is_refused_even_without_the_page_s_checks(offices, net):
    with pytest.raises(services.DomainError) as err:
        _open(offices["section1"], transformer=net["dt2"])
    assert err.value.code == "transformer_not_in_section"
    assert err.value.details == {"transformer": "DT-S2", "section": offices["section1"].code}


def test_a_route_belongs_to_one_section_and_one_cycle(offices, net):
    _open(offices["section2"], transformer="DT-S2", route="BOOK-7", placement_required=True)
    with pytest.raises(services.DomainError) as err:
        _open(offices["section1"], transformer="DT-S1", route="book-7", placement_required=True)
    assert err.value.code == "route_of_another_section"
    _open(offices["section1"], transformer="DT-S1", route="S1-R05", bill_cycle="C02", placement_required=True)
    with pytest.raises(services.DomainError) as err:
        _open(offices["section1"], transformer="DT-S1", route="S1-R05", bill_cycle="C03", placement_required=True)
    assert (err.value.code, err.value.details["bill_cycle"]) == ("route_in_another_cycle", "C02")
    same = _open(offices["section1"], transformer="DT-S1", route=" s1-r05 ", bill_cycle="C02", placement_required=True)
    assert (same.route, same.bill_cycle) == ("S1-R05", "C02")


def test_place_account_moves_a_pending_account_onto_the_network_with_audit(offices, net):
    account = _open(offices["section1"], route="", pending=True)
    assert account.transformer is None
    placed = services.place_account(
        actor=None, channel="section_office", account=account, transformer="DT-S1", bill_cycle="C02", route="S1-R02"
    )
    placed.refresh_from_db()
    assert (placed.transformer_id, placed.feeder_id, placed.bill_cycle, placed.route) == (
        net["dt1"].pk,
        net["f1"].pk,
        "C02",
        "S1-R02",
    )
    event = AuditEvent.objects.get(action="account.placed")
    assert event.changes["transformer"] == "DT-S1" and event.changes["route"] == "S1-R02"
    with pytest.raises(services.DomainError):
        services.place_account(
            actor=None, channel="section_office", account=account, transformer="DT-S2", bill_cycle="C02", route="X"
        )
    placed.refresh_from_db()
    assert placed.transformer_id == net["dt1"].pk


def test_the_api_refuses_a_dt_of_another_section_with_code_message_details(offices, net):
    cre = testing.staff_user("cre", offices["division1"])
    _, raw = ApiToken.issue(user=cre, name="t")
    consumer = _consumer(cre)
    body = {
        "consumer_id": consumer.pk,
        "section": offices["section1"].code,
        "premises_address": "Sahadevkhunta",
        "category": "domestic",
        "supply_type": "lt_1ph",
        "sanctioned_load": "3",
    }
    headers = {"HTTP_AUTHORIZATION": f"Bearer {raw}", "content_type": "application/json"}
    refused = Client().post("/api/v1/customers/accounts", {**body, "transformer": "DT-S2"}, **headers)
    assert refused.status_code == 400
    assert refused.json()["code"] == "transformer_not_in_section" and refused.json()["message"]
    assert refused.json()["details"]["transformer"] == "DT-S2"
    assert not Account.objects.exists()
    ok = Client().post("/api/v1/customers/accounts", {**body, "transformer": "DT-S1"}, **headers)
    assert ok.status_code == 201, ok.content
    assert Account.objects.get().transformer == net["dt1"]


def test_the_open_account_page_offers_the_section_s_dts_and_needs_one(client, offices, net):
    cre = testing.staff_user("cre", offices["division1"])
    client.force_login(cre)
    from urja.customers.tests.test_pages import _consumer_with_documents, account_post

    consumer = _consumer_with_documents(cre)
    url = f"/customers/consumers/{consumer.pk}/accounts/new/"
    html = client.get(url).content.decode()
    assert "DT-S1" in html and "DT-D1" in html and "DT-S2" not in html  # own sections' DTs only
    missing = client.post(url, account_post(offices["section1"]))
    assert missing.status_code == 400 and 'id="id_transformer-error"' in missing.content.decode()
    assert not Account.objects.exists()
    wrong = client.post(url, account_post(offices["section1"], transformer="DT-S2"))
    assert wrong.status_code == 400 and not Account.objects.exists()
    ok = client.post(url, account_post(offices["section1"], transformer="DT-S1", route="s1-r03", bill_cycle="C03"))
    assert ok.status_code == 302, ok.content.decode()[:2000]
    account = Account.objects.get()
    assert (account.transformer.code, account.feeder.code, account.bill_cycle, account.route) == (
        "DT-S1",
        "F-S1",
        "C03",
        "S1-R03",
    )
    # the next connection of the section starts from its usual cycle and route
    again = client.get(f"/customers/consumers/{_consumer_with_documents(cre, name='Asha Das').pk}/accounts/new/")
    assert 'value="S1-R03"' in again.content.decode()
