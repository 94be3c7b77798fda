"""The /api/v1/connections/ operations: a whole application through the API, 4xx codes, scope."""

from django.test import Client

from urja.connections.models import Application
from urja.core.models import ApiToken
from urja.demo.testing import staff_user
from urja.metering import services as metering

from .conftest import BALASORE


def bearer(user) -> dict:
    _, raw = ApiToken.issue(user=user, name="test")
    return {"HTTP_AUTHORIZATION": f"Bearer {raw}"}


def body(offices, **kw):
    data = {
        "name": "Laxmi Das",
        "mobile": "9437998877",
        "applicant_type": "owner",
        "premises_address": "Near Chandipur Road, Balasore",
        "latitude": BALASORE[0],
        "longitude": BALASORE[1],
        "area_class": "rural",
        "section": offices["section1"].code,
        "supply_type": "lt_1ph",
        "load": "3",
        "category": "domestic",
        "documents": [
            {"code": "identity_proof", "proof_type": "voter_id", "number": "OR/12/345/678"},
            {"code": "photograph"},
            {"code": "ownership_proof", "proof_type": "land_record", "number": "KH-22"},
        ],
    }
    data.update(kw)
    return data


def test_checklist_is_public():
    c = Client()
    r = c.get("/api/v1/connections/checklist?applicant_type=tenant")
    assert r.status_code == 200
    assert {line["code"] for line in r.json()} == {
        "identity_proof",
        "photograph",
        "ownership_proof",
        "tenancy_proof",
        "owner_noc",
    }
    assert c.get("/api/v1/connections/checklist?applicant_type=x").json()["code"] == "unknown_applicant_type"


def test_an_application_through_the_api_from_registration_to_consumer_number(offices, loaded, cre, engineer):
    c = Client()
    r = c.post("/api/v1/connections/applications", body(offices), content_type="application/json", **bearer(cre))
    assert r.status_code == 201, r.json()
    number = r.json()["number"]
    assert r.json()["application_fee"] == "50.00" and r.json()["sla"] in ("green", "amber")
    eng = bearer(engineer)
    url = f"/api/v1/connections/applications/{number}"
    r = c.post(f"{url}/inspection", {"feasible": True, "distance_m": 12}, content_type="application/json", **eng)
    assert r.json()["status"] == "inspected"
    r = c.post(f"{url}/demand-note", content_type="application/json", **eng)
    note = r.json()["demand_note"]
    assert r.json()["status"] == "dn_issued" and note["outstanding"] == note["total"]
    # energizing before payment: 409, nothing changed
    r = c.post(f"{url}/energize", {"meter_serial": "M-1"}, content_type="application/json", **eng)
    assert r.status_code == 409 and r.json()["code"] == "transition_not_allowed"
    from urja.payments import services as payments

    payments.open_session(actor=cre, opening_balance="0")
    r = c.post(f"{url}/demand-note/payment", {"idempotency_key": "k1"}, content_type="application/json", **bearer(cre))
    assert r.status_code == 200 and r.json()["status"] == "dn_paid", r.json()
    metering.register_meter(serial="APIM1", make="HPL", meter_type="static", actor=None, channel="system")
    r = c.post(f"{url}/energize", {"meter_serial": "APIM1"}, content_type="application/json", **eng)
    assert r.status_code == 200, r.json()
    assert r.json()["status"] == "energized" and r.json()["account_status"] == "active"
    consumer_number = r.json()["consumer_number"]
    # tracking by number + mobile, public
    t = c.post("/api/v1/connections/track", {"number": number, "mobile": "9437998877"}, content_type="application/json")
    assert t.status_code == 200 and t.json()["consumer_number"] == consumer_number


def test_bad_input_answers_4xx_with_codes(offices, loaded, cre):
    c = Client()
    h = bearer(cre)
    cases = [
        (body(offices, documents=[]), 400, "documents_missing"),
        (body(offices, load="9"), 400, "load_out_of_range"),
        (body(offices, latitude="19.07", longitude="72.87"), 400, "outside_service_area"),  # Mumbai
        (body(offices, load="1e3"), 422, "invalid_number"),
    ]
    for data, status, code in cases:
        r = c.post("/api/v1/connections/applications", data, content_type="application/json", **h)
        assert (r.status_code, r.json()["code"]) == (status, code), r.json()
    assert not Application.objects.exists()


def test_another_offices_application_answers_like_a_missing_one(offices, loaded, cre):
    c = Client()
    r = c.post("/api/v1/connections/applications", body(offices), content_type="application/json", **bearer(cre))
    number = r.json()["number"]
    other = staff_user("cre", offices["division2"])
    theirs = c.get(f"/api/v1/connections/applications/{number}", **bearer(other))
    missing = c.get("/api/v1/connections/applications/NC2600000000", **bearer(other))
    assert theirs.status_code == missing.status_code == 404
    assert theirs.json()["code"] == missing.json()["code"] == "application_not_found"
    assert c.get(f"/api/v1/connections/applications/{number}", **bearer(cre)).status_code == 200
    assert c.post("/api/v1/connections/applications", body(offices), content_type="application/json").status_code == 401


def test_change_request_and_order_through_the_api(offices, loaded, cre, engineer):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from urja.demo.testing import domestic_account

    account = domestic_account(offices["section1"], mobile="9437055555")
    c = Client()
    r = c.post(
        "/api/v1/connections/changes",
        {"consumer_number": account.consumer_number, "kind": "temp_disconnection"},
        content_type="application/json",
        **bearer(cre),
    )
    assert r.status_code == 201 and r.json()["status"] == "approved", r.json()
    [order] = c.get("/api/v1/connections/orders?kind=disconnect", **bearer(engineer)).json()
    url = f"/api/v1/connections/orders/{order['number']}/complete"
    r = c.post(url, {}, **bearer(engineer))
    assert (r.status_code, r.json()["code"]) == (400, "photo_required")
    r = c.post(
        url, {"photo": SimpleUploadedFile("p.jpg", b"\xff\xd8\xff", content_type="image/jpeg")}, **bearer(engineer)
    )
    assert r.status_code == 200 and r.json()["status"] == "done", r.json()
    r = c.post(f"/api/v1/connections/accounts/{account.consumer_number}/reconnection", **bearer(cre))
    assert r.status_code == 201 and r.json()["kind"] == "reconnect"  # nothing due: the order is opened
    other = staff_user("cre", offices["division2"])
    r = c.get(f"/api/v1/connections/orders/{order['number']}", **bearer(other))
    assert r.status_code == 404
