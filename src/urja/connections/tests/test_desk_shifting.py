"""A shifting lodged at the service desk is the connections change request (servicedesk.handover): one
shifting, one clock, compensation once. The call centre gets the change request's number, the consumer
one acknowledgement; a repeat call links to the open request; a late shifting is credited and told
once, and nothing on the service desk's side (no service request, no escalation, no award) can pay it
again. Runs on SQLite and PostgreSQL."""

from decimal import Decimal

import pytest
from django.test import Client

from urja.billing.models import EntryType, LedgerEntry
from urja.connections import shifting
from urja.connections.models import ChangeRequest, ChangeStatus
from urja.core.errors import DomainError
from urja.core.models import ApiToken, AuditEvent
from urja.demo.simulation.invariants import Scope, compensation_once
from urja.demo.testing import domestic_account
from urja.metering import services as metering
from urja.notifications.models import OutboxMessage
from urja.servicedesk import clock, escalation, handover, selectors, services
from urja.servicedesk.models import CompensationAward, ServiceRequest

METER = dict(type_code="shifting", subtype_code="meter_shifting")


@pytest.fixture
def sop(loaded):
    """The SoP schedule (and the tariff orders) loaded; the service desk's clock back to real time after."""
    yield
    clock.reset()


@pytest.fixture
def metered(offices, sop):
    account = domestic_account(offices["section1"], mobile="9437055501")
    meter = metering.register_meter(serial="SD0001", make="Genus", meter_type="static", actor=None, channel="system")
    metering.install_meter(account=account, meter=meter, actor=None, channel="system", location="outside the gate")
    return account


def _messages(account, event):
    return OutboxMessage.objects.filter(account=account, event=event)


def test_the_shifting_type_is_handed_to_connections_and_no_other_is():
    assert handover.handed_over_types() == {"shifting"}
    assert handover.handler_for("no_power_supply") is None


def test_a_meter_shifting_lodged_at_the_call_centre_opens_the_change_request_once(sop, metered, cre):
    reg = services.register_request(
        actor=cre, channel="call_centre", account=metered, description="Meter to the verandah, east wall", **METER
    )
    change = ChangeRequest.objects.get(account=metered)
    assert reg.created and reg.request is None and reg.number == change.number == reg.handed_over.number
    assert (change.kind, change.status, change.channel) == ("meter_shifting", ChangeStatus.REQUESTED, "call_centre")
    assert change.details["location"] == "Meter to the verandah, east wall" and change.details["meter"] == "SD0001"
    assert reg.handed_over.due_at == change.due_at and change.due_at is not None  # the SoP's 15 days, its clock
    assert not ServiceRequest.objects.exists()  # no second clock
    sms = _messages(metered, "request.registered").get(channel="sms")  # acknowledged once, with that number
    assert change.number in sms.body and sms.idempotency_key.startswith(f"registered:{change.number}")
    told = _messages(metered, "request.registered").count()

    again = services.register_request(
        actor=cre, channel="care_centre", account=metered, description="Calling again about the meter", **METER
    )
    assert not again.created and again.number == change.number and again.request is None
    assert ChangeRequest.objects.filter(account=metered).count() == 1 and not ServiceRequest.objects.exists()
    assert _messages(metered, "request.registered").count() == told  # no second message
    contact = AuditEvent.objects.get(action="connection.change_contact", object_id=str(change.pk))
    assert contact.changes["text"] == "Calling again about the meter"


@pytest.mark.parametrize(
    ("kw", "code"),
    [
        (dict(channel="whatsapp"), "channel_not_allowed"),  # the charter's meter-shifting row
        (dict(account=None), "account_required"),
        (dict(description=""), "location_required"),  # what is to move, where to
        (dict(mobile="12345"), "invalid_mobile"),
    ],
)
def test_refusals_change_nothing(sop, metered, cre, kw, code):
    args = dict(actor=cre, channel="call_centre", account=metered, description="Meter to the verandah", **METER)
    args.update(kw)
    if kw.get("account", metered) is None:
        args["office"] = metered.section
    with pytest.raises(DomainError) as err:
        services.register_request(**args)
    assert err.value.code == code
    assert not ChangeRequest.objects.exists() and not ServiceRequest.objects.exists()
    assert not OutboxMessage.objects.exists()


def test_a_late_shifting_lodged_at_the_desk_is_compensated_once(
    sop, metered, cre, engineer, django_capture_on_commit_callbacks
):
    reg = services.register_request(
        actor=cre, channel="call_centre", account=metered, description="Meter to the verandah, east wall", **METER
    )
    change = ChangeRequest.objects.get(number=reg.number)
    change = shifting.inspect(actor=engineer, channel="section_office", change=change, feasible=True,
                              new_location="verandah, east wall", estimate="0")  # fmt: skip
    change = shifting.issue_demand_note(actor=engineer, channel="section_office", change=change)
    assert change.status == ChangeStatus.FIELD_WORK  # nothing to charge: the work is due at once
    clock.advance(days=20)  # the SoP gives 15 days
    escalation.sweep(now=clock.now())  # nothing of the service desk's is running late
    with django_capture_on_commit_callbacks(execute=True):
        change = shifting.complete(actor=engineer, channel="section_office", change=change, acknowledged_by="consumer")
    assert change.status == ChangeStatus.APPLIED and change.applied_at > change.due_at

    credits = LedgerEntry.objects.filter(account=metered, entry_type=EntryType.COMPENSATION)
    credit = credits.get()  # exactly one credit …
    assert (credit.reference_type, credit.reference_id) == ("change_request", change.number)
    days_late = (change.applied_at - change.due_at).days + 1  # started days: the due day's end + 4 days and more
    assert days_late >= 5 and credit.amount == -Decimal(50 * days_late)  # service_per_day: Rs 50 a day up to 7
    assert change.outcome["compensation"] == str(-credit.amount)
    told = _messages(metered, "request.compensation_credited")
    sms = told.get(channel="sms")  # … and one message, on the change request's number
    assert change.number in sms.body and str(-credit.amount).split(".")[0] in sms.body.replace(",", "")
    assert not CompensationAward.objects.exists() and not ServiceRequest.objects.exists()

    # the consumer calls again after the work: a new shifting would be a new request, this one is done;
    # the jobs and the sweep run again: nothing more is credited or told
    with django_capture_on_commit_callbacks(execute=True):
        escalation.sweep(now=clock.now())
        shifting.settle_payments()
        with pytest.raises(DomainError):
            shifting.complete(actor=engineer, channel="section_office", change=change)
    assert credits.count() == 1 and told.filter(channel="sms").count() == 1
    assert compensation_once(Scope(month="x")) == []


def test_the_api_answers_with_the_change_request_and_keeps_its_4xx(sop, metered, cre):
    _, raw = ApiToken.issue(user=cre, name="test")
    client = Client(HTTP_AUTHORIZATION=f"Bearer {raw}")
    body = {"type": "shifting", "subtype": "meter_shifting", "channel": "call_centre",
            "consumer_number": metered.consumer_number, "description": "Meter to the verandah"}  # fmt: skip
    first = client.post("/api/v1/servicedesk/requests", body, content_type="application/json")
    assert first.status_code == 201, first.content
    change = ChangeRequest.objects.get(account=metered)
    out = first.json()
    assert (out["number"], out["handed_over_to"], out["status"]) == (change.number, "connections", "requested")
    assert (out["type"], out["subtype"], out["duplicate"], out["consumer_number"]) == (
        "shifting", "meter_shifting", False, metered.consumer_number)  # fmt: skip
    again = client.post("/api/v1/servicedesk/requests", body, content_type="application/json")
    assert again.status_code == 200 and again.json()["number"] == change.number and again.json()["duplicate"]
    bad = client.post("/api/v1/servicedesk/requests", {**body, "channel": "whatsapp"}, content_type="application/json")
    assert bad.status_code in (400, 422) and bad.json()["code"] == "channel_not_allowed"
    assert {"code", "message", "details"} <= set(bad.json())
    assert ChangeRequest.objects.count() == 1 and not ServiceRequest.objects.exists()


def test_the_desk_page_takes_the_agent_to_the_change_request(sop, metered, cre):
    client = Client()
    client.force_login(cre)
    page = client.post(
        "/servicedesk/desk/",
        {
            "consumer_number": metered.consumer_number,
            "kind": "shifting/meter_shifting",
            "channel": "call_centre",
            "description": "Meter to the verandah",
        },
    )
    change = ChangeRequest.objects.get(account=metered)
    assert page.status_code == 302 and page["Location"] == f"/connections/changes/{change.number}/"
    shown = client.get(page["Location"])
    assert shown.status_code == 200 and change.number in shown.content.decode()
    assert not ServiceRequest.objects.exists()


def test_demo_files_the_shiftings_as_change_requests(sop, metered, cre, engineer):
    from urja.servicedesk import demo

    counts = demo.populate([metered], [cre, engineer])
    assert counts["shiftings"] == 2  # the meter and the LT line: change requests, on their SoP clocks
    changes = ChangeRequest.objects.filter(account=metered)
    assert {c.kind for c in changes} == {"meter_shifting", "lt_line_shifting"}
    assert all(c.status == ChangeStatus.REQUESTED and c.due_at for c in changes)
    assert not ServiceRequest.objects.filter(type_code="shifting").exists()


def test_the_consumer_tracks_the_number_they_were_told_with_the_same_rule(sop, metered, cre, engineer):
    reg = services.register_request(
        actor=cre, channel="call_centre", account=metered, description="Meter to the verandah", **METER
    )
    change = ChangeRequest.objects.get(number=reg.number)
    shifting.inspect(
        actor=engineer, channel="section_office", change=change, feasible=True, new_location="verandah", estimate="500"
    )
    shifting.issue_demand_note(actor=engineer, channel="section_office", change=change)
    seen = selectors.track(number=reg.number.lower(), mobile="9437055501")
    assert (seen["number"], seen["type"], seen["subtype"]) == (change.number, "Shifting", "Meter shifting")
    assert seen["status"] == ChangeStatus.APPROVED and seen["paused"]  # the demand note waits for the consumer
    assert [h["status"] for h in seen["history"]] == ["requested", "inspected", "approved"]
    assert selectors.track(number=reg.number, consumer_number=metered.consumer_number)["number"] == change.number
    page = Client().get("/servicedesk/track/", {"number": reg.number, "who": metered.consumer_number})
    assert page.status_code == 200 and change.number in page.content.decode()
    api = Client().get("/api/v1/servicedesk/track", {"number": reg.number, "mobile": "9437055501"})
    assert api.status_code == 200 and api.json()["status"] == "approved"
    # a wrong pairing answers like a number that does not exist
    for wrong in (dict(mobile="9437000999"), dict(consumer_number="003999999999")):
        with pytest.raises(DomainError) as err:
            selectors.track(number=reg.number, **wrong)
        assert err.value.code == "request_not_found"
    bad = Client().get("/api/v1/servicedesk/track", {"number": reg.number, "mobile": "9437000999"})
    assert bad.status_code == 404 and bad.json()["code"] == "request_not_found"
