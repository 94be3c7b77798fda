"""Tracking (service, API, public page), feedback and reopen, API endpoints, staff pages, catalogue loader."""

from datetime import timedelta

import pytest
from django.test import Client

from urja.core.errors import Conflict, DomainError, NotFound
from urja.core.models import ApiToken
from urja.demo import testing
from urja.servicedesk import catalogue, clock, services
from urja.servicedesk.models import Feedback, ServiceRequest, SopSchedule


@pytest.fixture
def sr(sop, sd_account, cre):
    return services.register_request(
        actor=cre, channel="call_centre", type_code="meter_faulty", subtype_code="meter_stuck", account=sd_account
    ).request


def test_track_by_mobile_or_consumer_number(sr, sd_account):
    view = services.track(number=sr.number, mobile="94370 12345")
    assert view["number"] == sr.number and view["status"] == "registered" and view["sla_status"] == "on_track"
    assert services.track(number=sr.number.lower(), consumer_number=sd_account.consumer_number)["number"] == sr.number
    with pytest.raises(DomainError) as err:
        services.track(number=sr.number)
    assert err.value.code == "verification_required"


def test_track_does_not_leak_existence(sr):
    with pytest.raises(NotFound) as wrong_mobile:
        services.track(number=sr.number, mobile="9000000001")
    with pytest.raises(NotFound) as no_such:
        services.track(number="SR2600000000X", mobile="9437012345")
    assert wrong_mobile.value.message == no_such.value.message and wrong_mobile.value.code == no_such.value.code


def test_track_api_is_public_and_uniform(sr, client):
    ok = client.get("/api/v1/servicedesk/track", {"number": sr.number, "mobile": "9437012345"})
    assert ok.status_code == 200 and ok.json()["number"] == sr.number
    a = client.get("/api/v1/servicedesk/track", {"number": sr.number, "mobile": "9000000001"})
    b = client.get("/api/v1/servicedesk/track", {"number": "SR99999999999", "mobile": "9000000001"})
    assert a.status_code == b.status_code == 404 and a.json() == b.json()


def test_public_track_page(sr, client):
    page = client.get("/servicedesk/track/", {"number": sr.number, "who": "9437012345"})
    assert page.status_code == 200 and sr.number in page.content.decode() and "track-result" in page.content.decode()
    miss = client.get("/servicedesk/track/", {"number": sr.number, "who": "9000000001"})
    assert miss.status_code == 404 and "track-result" not in miss.content.decode()


def test_feedback_link_rating_and_reopen(sr, cre, client, settings):
    settings.URJA_PUBLIC_URL = "https://care.example.in"
    sr = services.close_request(actor=cre, channel="backoffice", request=sr, resolution_notes="meter replaced")
    token = services.feedback_token(sr)
    # the link sent on WhatsApp / e-mail is absolute, so a phone can open it
    assert services.feedback_url(sr) == f"https://care.example.in/servicedesk/feedback/{token}/"
    with pytest.raises(NotFound):
        services.submit_feedback(token=token + "x", rating=5)
    with pytest.raises(DomainError):
        services.submit_feedback(token=token, rating=9)
    page = client.get(f"/servicedesk/feedback/{token}/")
    assert page.status_code == 200 and sr.number in page.content.decode()
    response = client.post(f"/servicedesk/feedback/{token}/", {"rating": "1", "comment": "still stuck", "reopen": "1"})
    assert response.status_code == 200 and "Ombudsman" in response.content.decode()
    sr.refresh_from_db()
    assert sr.status == "reopened" and sr.reopen_count == 1 and sr.due_at > sr.registered_at
    assert Feedback.objects.get(request=sr).rating == 1
    with pytest.raises(Conflict):  # the old link is stale now
        services.submit_feedback(token=token, rating=2)


def test_feedback_satisfied_cannot_reopen_and_link_expires(sr, cre):
    sr = services.close_request(actor=cre, channel="backoffice", request=sr, resolution_notes="fixed")
    token = services.feedback_token(sr)
    with pytest.raises(DomainError):
        services.submit_feedback(token=token, rating=5, reopen=True)
    assert not Feedback.objects.exists()
    clock.advance(days=31)
    with pytest.raises(Conflict) as err:
        services.submit_feedback(token=token, rating=4)
    assert err.value.code == "feedback_link_expired"


def _token_client(user) -> Client:
    _, raw = ApiToken.issue(user=user, name="test")
    return Client(HTTP_AUTHORIZATION=f"Bearer {raw}")


def test_api_register_duplicate_refusal_and_workflow(sop, sd_account, cre):
    api = _token_client(cre)
    body = {
        "type": "no_power_supply",
        "subtype": "no_power_supply",
        "channel": "call_centre",
        "consumer_number": sd_account.consumer_number,
    }
    first = api.post("/api/v1/servicedesk/requests", body, content_type="application/json")
    assert first.status_code == 201, first.content
    number = first.json()["number"]
    again = api.post("/api/v1/servicedesk/requests", body, content_type="application/json")
    assert again.status_code == 200 and again.json()["duplicate"] and again.json()["number"] == number
    refused = api.post(
        "/api/v1/servicedesk/requests",
        {**body, "type": "bill_revision", "subtype": "disputed_bill", "channel": "website"},
        content_type="application/json",
    )
    assert refused.status_code == 400 and refused.json()["code"] == "channel_not_allowed"
    bad = api.post(
        f"/api/v1/servicedesk/requests/{number}/transition", {"to": "heard"}, content_type="application/json"
    )
    assert bad.status_code == 409 and bad.json()["code"] == "transition_not_allowed"
    close = api.post(
        f"/api/v1/servicedesk/requests/{number}/close", {"resolution_notes": ""}, content_type="application/json"
    )
    assert close.status_code == 400 and close.json()["code"] == "resolution_required"
    closed = api.post(
        f"/api/v1/servicedesk/requests/{number}/close",
        {"resolution_notes": "restored"},
        content_type="application/json",
    )
    assert closed.status_code == 200 and closed.json()["status"] == "closed"
    timeline = api.get(f"/api/v1/servicedesk/requests/{number}/timeline").json()
    assert timeline[0]["kind"] == "registered" and any(i["kind"] == "repeat" for i in timeline)
    assert Client().post("/api/v1/servicedesk/requests", body, content_type="application/json").status_code == 401


def test_api_scope_hides_other_divisions(sop, sd_account, cre, offices):
    number = services.register_request(
        actor=cre, channel="call_centre", type_code="meter_reading", account=sd_account
    ).request.number
    outsider = testing.staff_user("cre", offices["division2"])
    assert _token_client(outsider).get(f"/api/v1/servicedesk/requests/{number}").status_code == 404
    assert _token_client(cre).get(f"/api/v1/servicedesk/requests/{number}").status_code == 200


def test_catalogue_api_is_public(sop, client):
    rows = client.get("/api/v1/servicedesk/catalogue").json()
    assert any(r["subtype"] == "reconnection" and r["unit"] == "working_hours" and r["value"] == 4 for r in rows)


def test_staff_pages(sop, sd_account, cre, engineer, client):
    client.force_login(cre)
    desk = client.post(
        "/servicedesk/desk/",
        {
            "consumer_number": sd_account.consumer_number,
            "kind": "no_power_supply/no_power_supply",
            "channel": "care_centre",
            "description": "no supply since morning",
        },
    )
    assert desk.status_code == 302
    sr = ServiceRequest.objects.get()
    assert desk["Location"] == f"/servicedesk/r/{sr.number}/"
    refused = client.post(
        "/servicedesk/desk/",
        {"consumer_number": sd_account.consumer_number, "kind": "bill_revision/disputed_bill", "channel": "whatsapp"},
    )
    assert refused.status_code == 400 and "customer care centre" in refused.content.decode()
    queue = client.get("/servicedesk/")
    assert queue.status_code == 200 and sr.number in queue.content.decode() and "sla-green" in queue.content.decode()
    page = client.get(f"/servicedesk/r/{sr.number}/")
    assert page.status_code == 200 and "no supply since morning" in page.content.decode()
    client.post(f"/servicedesk/r/{sr.number}/action/", {"action": "note", "text": "crew on the way"})
    assert "crew on the way" in client.get(f"/servicedesk/r/{sr.number}/").content.decode()
    # back to the queue page it came from, never to another site named by the form's `next`
    assigned = client.post(
        "/servicedesk/bulk-assign/",
        {"numbers": [sr.number], "assignee": engineer.username, "next": "https://evil.example/"},
    )
    assert assigned.status_code == 302 and assigned["Location"] == "/servicedesk/"
    sr.refresh_from_db()
    assert sr.assigned_to == engineer
    again = client.post(
        "/servicedesk/bulk-assign/", {"numbers": [sr.number], "assignee": "nobody", "next": "/servicedesk/?status=open"}
    )
    assert again["Location"] == "/servicedesk/?status=open"
    assert "Choose whom to assign to." in client.get("/servicedesk/").content.decode()
    panel = client.get(f"/servicedesk/accounts/{sd_account.consumer_number}/panel/")
    assert panel.status_code == 200 and sr.number in panel.content.decode()
    assert client.get("/servicedesk/compliance/").status_code == 200
    assert client.get("/servicedesk/compensation/").status_code == 200
    assert client.get("/servicedesk/outages/").status_code == 200
    clock.advance(hours=5)
    assert "sla-red" in client.get("/servicedesk/").content.decode()


def test_compliance_counts(sop, sd_account, rural_account, cre):
    a = services.register_request(
        actor=cre, channel="call_centre", type_code="meter_reading", account=sd_account
    ).request
    services.close_request(actor=cre, channel="backoffice", request=a, resolution_notes="read")
    services.register_request(actor=cre, channel="call_centre", type_code="meter_reading", account=rural_account)
    clock.advance(days=10)
    rows = services.sla_compliance(user=cre, since=clock.now() - timedelta(days=30), until=clock.now())
    (row,) = rows
    assert (row["total"], row["closed_in_time"], row["open_breached"], row["compliance_pct"]) == (2, 1, 1, 50.0)


def test_loader_versions_and_refuses_bad_files(db, tmp_path):
    schedule, created = catalogue.load_file("servicedesk/oerc_sop.toml")
    assert created and schedule.types.count() == 30
    assert catalogue.load_file("servicedesk/oerc_sop.toml") == (schedule, False)
    text = (catalogue.default_files()[0]).read_text()
    changed = tmp_path / "changed.toml"
    changed.write_text(text.replace("value = 7\n", "value = 8\n", 1))
    with pytest.raises(DomainError) as err:
        catalogue.load_file(changed)
    assert err.value.code == "catalogue_version_exists"
    other_state = tmp_path / "dl_sop.toml"
    other_state.write_text(
        text.replace('code = "OERC-SOP"', 'code = "DERC-SOP"').replace('state = "OD"', 'state = "DL"')
    )
    dl, created = catalogue.load_file(other_state)
    assert created and catalogue.active_schedule("DL") == dl and catalogue.active_schedule("OD") == schedule
    broken = tmp_path / "broken.toml"
    broken.write_text(text.replace('unit = "working_hours"', 'unit = "fortnights"'))
    with pytest.raises(DomainError, match="unit must be one of"):
        catalogue.load_file(broken)
    assert SopSchedule.objects.count() == 2


def test_load_command(db, capsys):
    from django.core.management import call_command

    call_command("servicedesk", "load")
    call_command("servicedesk", "load")
    out = capsys.readouterr().out
    assert "loaded: OERC-SOP v1" in out and "already loaded" in out


def test_demo_populate_registers_requests_that_escalate(db, offices, network, cre, engineer, managers):
    from urja.servicedesk import demo, escalation

    accounts = [
        testing.domestic_account(
            offices["section1"], mobile=f"94370{i:05d}", transformer=network["dt"], feeder=network["feeder"]
        )
        for i in range(8)
    ]
    counts = demo.populate(accounts, [cre, engineer, managers["division"]])
    assert counts["requests"] >= 20 and counts["outages"] == 1
    assert ServiceRequest.objects.filter(status="closed", breached=True).exists()
    assert escalation.sweep()["escalated"] > 0
    clock.advance(hours=1)
    assert escalation.sweep()["escalated"] > 0


def test_feedback_api_says_reopened_and_the_detail_page_offers_close_then_reopen(sr, cre, client):
    """The state names come from the workflow's roles in the catalogue, not from literals in the views."""
    client.force_login(cre)
    page = client.get(f"/servicedesk/r/{sr.number}/").content.decode()
    assert "Close request</button>" in page and "<summary>Reopen" not in page
    sr = services.close_request(actor=cre, channel="backoffice", request=sr, resolution_notes="meter replaced")
    page = client.get(f"/servicedesk/r/{sr.number}/").content.decode()
    assert "<summary>Reopen" in page
    answer = client.post(
        f"/api/v1/servicedesk/feedback/{services.feedback_token(sr)}",
        {"rating": 1, "comment": "still dark", "reopen": True},
        content_type="application/json",
    )
    assert answer.status_code == 201 and answer.json()["reopened"] is True
