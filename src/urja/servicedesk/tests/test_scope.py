"""Service-desk scope (issue 11, part 1): registration and outages only in the caller's office,
requests assigned only to staff who work requests there; out of scope answers like nonexistent."""

import json

import pytest
from django.test import Client

from urja.core.errors import DomainError
from urja.demo import testing
from urja.servicedesk import services
from urja.servicedesk.models import Outage, ServiceRequest


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def post(client, url, body):
    return client.post(url, json.dumps(body), content_type="application/json")


@pytest.fixture
def far_cre(offices):
    return testing.staff_user("cre", offices["division2"])


def test_cre_cannot_register_a_complaint_on_another_divisions_account(sop, sd_account, far_cre):
    body = {"type": "no_power_supply", "subtype": "no_power_supply", "channel": "care_centre"}
    far = post(
        client_for(far_cre), "/api/v1/servicedesk/requests", {**body, "consumer_number": sd_account.consumer_number}
    )
    none = post(client_for(far_cre), "/api/v1/servicedesk/requests", {**body, "consumer_number": "9999999999999"})
    assert far.status_code == 404, far.json()
    assert (far.status_code, far.json()["code"]) == (none.status_code, none.json()["code"])
    assert far.json()["message"].replace(sd_account.consumer_number, "N") == none.json()["message"].replace(
        "9999999999999", "N"
    )
    assert not ServiceRequest.objects.exists()
    # the desk page refuses it the same way
    form = {"consumer_number": sd_account.consumer_number, "kind": "no_power_supply/no_power_supply"}
    page = client_for(far_cre).post("/servicedesk/desk/", {**form, "channel": "care_centre"})
    assert not ServiceRequest.objects.exists() and page.status_code in (200, 400)


def test_engineer_cannot_declare_or_restore_an_outage_in_another_division(sop, offices, network, engineer):
    far_engineer = testing.staff_user("engineer", offices["division2"])
    body = {"kind": "unplanned", "reason": "tripped", "feeder": network["feeder"].code}
    far = post(client_for(far_engineer), "/api/v1/servicedesk/outages", body)
    none = post(client_for(far_engineer), "/api/v1/servicedesk/outages", {**body, "feeder": "NOFEEDER"})
    assert far.status_code == none.status_code == 404
    assert far.json()["code"] == none.json()["code"] == "feeder_not_found"
    dt = post(
        client_for(far_engineer),
        "/api/v1/servicedesk/outages",
        {**body, "feeder": None, "transformer": network["dt"].code},
    )
    assert dt.status_code == 404 and dt.json()["code"] == "transformer_not_found"
    assert not Outage.objects.exists()
    mine = post(client_for(engineer), "/api/v1/servicedesk/outages", body)
    assert mine.status_code == 201, mine.json()
    number = mine.json()["number"]
    far = client_for(far_engineer).post(f"/api/v1/servicedesk/outages/{number}/restore")
    none = client_for(far_engineer).post("/api/v1/servicedesk/outages/OUT-NONE/restore")
    assert far.status_code == none.status_code == 404
    assert far.json()["code"] == none.json()["code"] == "outage_not_found"
    assert Outage.objects.get(number=number).status == "active"
    # nor through the page
    client_for(far_engineer).post("/servicedesk/outages/", {"action": "restore", "number": number})
    assert Outage.objects.get(number=number).status == "active"


def test_requests_are_assigned_only_to_staff_who_work_them_in_scope(sop, offices, sd_account, cre, far_cre):
    sr = services.register_request(
        actor=cre,
        channel="care_centre",
        type_code="no_power_supply",
        subtype_code="no_power_supply",
        account=sd_account,
    ).request
    consumer_login = testing.staff_user("consumer", None, username="sunita")
    for user in (consumer_login, far_cre):
        with pytest.raises(DomainError):
            services.assign(actor=cre, channel="api", request=sr, user=user)
        answer = post(client_for(cre), f"/api/v1/servicedesk/requests/{sr.number}/assign", {"username": user.username})
        none = post(client_for(cre), f"/api/v1/servicedesk/requests/{sr.number}/assign", {"username": "nobody-here"})
        assert answer.status_code == none.status_code == 400
        assert answer.json()["code"] == none.json()["code"] == "unknown_user"
    sr.refresh_from_db()
    assert sr.assigned_to is None
    agent = testing.staff_user("field_agent", offices["section1"])
    ok = post(client_for(cre), f"/api/v1/servicedesk/requests/{sr.number}/assign", {"username": agent.username})
    assert ok.status_code == 200, ok.json()


def test_out_of_scope_request_is_the_nonexistent_answer(sop, sd_account, cre, far_cre):
    sr = services.register_request(
        actor=cre,
        channel="care_centre",
        type_code="no_power_supply",
        subtype_code="no_power_supply",
        account=sd_account,
    ).request
    far = client_for(far_cre).get(f"/api/v1/servicedesk/requests/{sr.number}")
    missing = sr.number[:-4] + "0000"
    none = client_for(far_cre).get(f"/api/v1/servicedesk/requests/{missing}")
    assert far.status_code == none.status_code == 404
    assert far.json()["message"].replace(sr.number, "N") == none.json()["message"].replace(missing, "N")
    assert "scope" not in far.json()["message"]
    assert client_for(far_cre).get(f"/servicedesk/requests/{sr.number}/").status_code == 404
