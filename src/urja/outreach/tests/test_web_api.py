"""Outreach pages and API: roles, scope (another office's event answers 404 like a missing one),
filters, pagination and CSV, bad input answered {code, message, details} with nothing changed."""

import csv
import io
import json
import re
from datetime import timedelta

import pytest
from django.utils import timezone

from urja.demo import testing
from urja.outreach import services
from urja.outreach.models import EventIssue, OutreachEvent
from urja.servicedesk.models import ServiceRequest

pytestmark = pytest.mark.django_db


def _post(client, url, body):
    return client.post(url, json.dumps(body), content_type="application/json")


def test_pages_for_the_roles_that_run_events(client, offices, camp):
    for role in ("cre", "engineer", "manager"):
        client.force_login(testing.staff_user(role, offices["division1"]))
        assert client.get("/outreach/").status_code == 200
        assert client.get(f"/outreach/events/{camp.pk}/").status_code == 200
        assert client.get("/outreach/issues/").status_code == 200
    for role in ("billing_officer", "field_agent"):
        client.force_login(testing.staff_user(role, offices["division1"]))
        assert client.get("/outreach/").status_code == 403


def test_another_offices_event_page_is_404_like_a_missing_one(client, cre2, camp):
    client.force_login(cre2)
    assert client.get(f"/outreach/events/{camp.pk}/").status_code == 404
    assert client.get("/outreach/events/987654/").status_code == 404
    assert client.post(f"/outreach/events/{camp.pk}/", {"action": "attendance", "attendance": "5"}).status_code == 404
    assert str(camp.held_on.strftime("%d-%m-%Y")) not in client.get("/outreach/").content.decode()
    camp.refresh_from_db()
    assert camp.attendance is None


def test_plan_record_raise_register_and_close_on_the_pages(client, sop, cre1, engineer1, offices, account):
    client.force_login(cre1)
    day = timezone.localdate() - timedelta(days=2)
    made = client.post(
        "/outreach/",
        {
            "kind": "rwa_meeting",
            "office": offices["section1"].code,
            "held_on": day.isoformat(),
            "venue": "Community hall, Sector 2",
            "partner": "Sector 2 RWA",
        },
    )
    event = OutreachEvent.objects.get()
    assert made.status_code == 302 and made.url == f"/outreach/events/{event.pk}/"
    url = made.url
    negative = client.post(url, {"action": "attendance", "attendance": "-4"})
    assert negative.status_code == 400 and "between 0 and" in negative.content.decode()
    assert client.post(url, {"action": "attendance", "attendance": "37"}).status_code == 302
    assert (
        client.post(
            url,
            {
                "action": "issue",
                "text": "Frequent tripping on feeder 3",
                "owner": engineer1.username,
                "raised_by": "RWA secretary",
            },
        ).status_code
        == 302
    )
    reg = client.post(
        url,
        {
            "action": "request",
            "type": "bill_revision/disputed_bill",
            "consumer_number": account.consumer_number,
            "description": "High bill",
        },
    )
    assert reg.status_code == 302
    page = client.get(url).content.decode()
    assert "Frequent tripping" in page and ServiceRequest.objects.get().number in page and "37" in page
    assert client.post(url, {"action": "close", "note": "minutes sent"}).status_code == 302
    closed = client.post(
        url, {"action": "request", "type": "bill_revision/disputed_bill", "consumer_number": account.consumer_number}
    )
    assert closed.status_code == 400 and ServiceRequest.objects.count() == 1
    issue = EventIssue.objects.get()
    client.force_login(engineer1)
    done = client.post(f"/outreach/issues/{issue.pk}/status/", {"status": "resolved", "note": "Jumper replaced"})
    assert done.status_code == 302
    issue.refresh_from_db()
    assert issue.status == "resolved" and issue.resolution == "Jumper replaced"
    client.force_login(testing.staff_user("cre", offices["division2"]))
    assert client.post(f"/outreach/issues/{issue.pk}/status/", {"status": "open"}).status_code == 404
    issue.refresh_from_db()
    assert issue.status == "resolved"


def test_plan_in_another_office_is_refused_like_an_unknown_office(client, cre2, offices):
    client.force_login(cre2)
    other = client.post(
        "/outreach/",
        {
            "kind": "rwa_meeting",
            "office": offices["section1"].code,
            "held_on": timezone.localdate().isoformat(),
            "venue": "Hall",
        },
    )
    assert other.status_code == 400 and not OutreachEvent.objects.exists()


def test_events_list_is_paged_filtered_and_exported(client, cre1, offices):
    today = timezone.localdate()
    for i in range(55):
        services.plan_event(
            actor=cre1,
            channel="backoffice",
            kind="nishta_camp" if i % 5 else "iwa_meeting",
            office=offices["section1"],
            held_on=today - timedelta(days=i),
            venue=f"Venue {i}",
        )
    client.force_login(cre1)
    first = client.get("/outreach/").content.decode()
    assert "55 rows" in first and "page 1 of 2" in first and first.count('href="/outreach/events/') == 50
    second = client.get("/outreach/", {"page": 2}).content.decode()
    assert second.count('href="/outreach/events/') == 5
    iwa = client.get("/outreach/", {"kind": "iwa_meeting"}).content.decode()
    assert "11 rows" in iwa
    since = client.get("/outreach/", {"from": (today - timedelta(days=9)).isoformat()}).content.decode()
    assert "10 rows" in since
    exported = client.get("/outreach/", {"kind": "iwa_meeting", "format": "csv"})
    rows = list(csv.reader(io.StringIO(b"".join(exported.streaming_content).decode("utf-8-sig"))))
    assert rows[0][:3] == ["id", "kind", "office"] and len(rows) == 12 and rows[1][1] == "IWA meeting"


def test_issues_list_is_paged_filtered_and_exported(client, cre1, engineer1, camp):
    for i in range(52):
        services.raise_issue(
            actor=cre1,
            channel="backoffice",
            event=camp,
            text=f"Issue {i}",
            owner_username=engineer1.username if i % 2 else cre1.username,
            due_on=camp.held_on + timedelta(days=i),
        )
    client.force_login(cre1)
    page = client.get("/outreach/issues/").content.decode()
    assert "52 rows" in page and "page 1 of 2" in page
    mine = client.get("/outreach/issues/", {"owner": engineer1.pk}).content.decode()
    assert "26 rows" in mine
    overdue = client.get("/outreach/issues/", {"overdue": "1"}).content.decode()
    assert re.search(r"\b1 row\b", overdue)  # due the day of the camp (yesterday): the only one overdue
    exported = client.get("/outreach/issues/", {"format": "csv", "owner": engineer1.pk})
    rows = list(csv.reader(io.StringIO(b"".join(exported.streaming_content).decode("utf-8-sig"))))
    assert len(rows) == 27 and rows[0][4] == "issue"


def test_api(client, sop, cre1, cre2, engineer1, offices, account):
    client.force_login(cre1)
    day = (timezone.localdate() - timedelta(days=1)).isoformat()
    made = _post(
        client,
        "/api/v1/outreach/events",
        {"kind": "customer_meet", "office": offices["division1"].code, "held_on": day, "venue": "Town hall"},
    )
    assert made.status_code == 201, made.content
    eid = made.json()["id"]
    bad = _post(client, f"/api/v1/outreach/events/{eid}/attendance", {"attendance": -1})
    assert bad.status_code == 400 and bad.json()["code"] == "invalid_attendance" and "details" in bad.json()
    assert _post(client, f"/api/v1/outreach/events/{eid}/attendance", {"attendance": 120}).json()["status"] == "held"
    issue = _post(
        client,
        f"/api/v1/outreach/events/{eid}/issues",
        {"text": "Meter replacement delays", "owner": engineer1.username},
    )
    assert issue.status_code == 201 and issue.json()["owner"] == engineer1.username
    req = _post(
        client,
        f"/api/v1/outreach/events/{eid}/requests",
        {"type_code": "bill_revision", "subtype_code": "disputed_bill", "consumer_number": account.consumer_number},
    )
    assert req.status_code == 201 and req.json()["channel"] == "camp"
    detail = client.get(f"/api/v1/outreach/events/{eid}").json()
    assert detail["attendance"] == 120 and len(detail["issues"]) == 1 and detail["requests"] == [req.json()["number"]]
    followed = _post(
        client,
        f"/api/v1/outreach/issues/{issue.json()['id']}/status",
        {"status": "resolved", "note": "Meters received"},
    )
    assert followed.json()["status"] == "resolved"
    assert client.get("/api/v1/outreach/issues", {"status": "resolved"}).json()[0]["resolution"] == "Meters received"
    assert _post(client, f"/api/v1/outreach/events/{eid}/close", {"note": ""}).json()["status"] == "closed"
    late = _post(
        client,
        f"/api/v1/outreach/events/{eid}/requests",
        {"type_code": "bill_revision", "subtype_code": "disputed_bill", "consumer_number": account.consumer_number},
    )
    assert late.status_code == 409 and late.json()["code"] == "event_closed"
    # another office's event: exactly like a missing one
    client.force_login(cre2)
    other = client.get(f"/api/v1/outreach/events/{eid}")
    missing = client.get("/api/v1/outreach/events/987654")
    assert other.status_code == missing.status_code == 404
    assert other.json()["code"] == missing.json()["code"] == "event_not_found"
    assert _post(client, f"/api/v1/outreach/events/{eid}/attendance", {"attendance": 1}).status_code == 404
    elsewhere = _post(
        client,
        "/api/v1/outreach/events",
        {"kind": "rwa_meeting", "office": offices["section1"].code, "held_on": day, "venue": "x"},
    )
    assert elsewhere.status_code == 404 and OutreachEvent.objects.count() == 1
    client.force_login(testing.staff_user("billing_officer", offices["division1"]))
    assert client.get("/api/v1/outreach/events").status_code == 403
