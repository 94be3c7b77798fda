"""Meter shifting within the premises as a change request (issue 12): request → site inspection →
demand note (the estimate; the tariff order's [fees] line when an order names one) → paid → the meter
shifted through metering (location and geo point; the meter's sheet keeps its history) → applied on
the SoP's 15-day timeline; rejection with reasons; every bad input a 4xx with nothing changed."""

from datetime import time, timedelta
from decimal import Decimal

import pytest
from django.test import Client
from django.utils import timezone

from urja.billing import ledger as billing_ledger
from urja.billing.models import LedgerEntry
from urja.connections import changes, shifting
from urja.connections.models import (
    CHANGE_STATUS,
    REQUEST_STATUS,
    SHIFTING_STATUS,
    ChangeInspection,
    ChangeRequest,
    ChangeStatus,
)
from urja.core.calendars import IST
from urja.core.errors import DomainError
from urja.core.models import ApiToken, AuditEvent
from urja.demo.testing import domestic_account, staff_user
from urja.metering import services as metering
from urja.metering.models import Installation, SheetEntry
from urja.notifications.models import OutboxMessage
from urja.payments import services as payments
from urja.servicedesk import clock as sd_clock

KIND = "meter_shifting"


@pytest.fixture
def metered(offices, loaded):
    account = domestic_account(offices["section1"], mobile="9437055501")
    meter = metering.register_meter(serial="SH0001", make="Genus", meter_type="static", actor=None, channel="system")
    metering.install_meter(account=account, meter=meter, actor=None, channel="system", location="outside the gate")
    return account


def _request(account, actor, channel="care_centre", **details):
    details.setdefault("location", "inside the verandah, east wall")
    return changes.request_change(actor=actor, channel=channel, account=account, kind=KIND, details=details)


def _inspected(account, cre, engineer, estimate="750", **kw):
    change = _request(account, cre)
    args = dict(feasible=True, new_location="verandah, east wall", latitude="21.494600", longitude="86.933300")
    args.update(kw)
    return shifting.inspect(actor=engineer, channel="section_office", change=change, estimate=estimate, **args)


def _state(change):
    change.refresh_from_db()
    return (
        change.status,
        change.charge,
        LedgerEntry.objects.filter(account=change.account).count(),
        Installation.objects.get(account=change.account, removed_at__isnull=True).location,
        SheetEntry.objects.filter(kind="shift").count(),
    )


def test_the_shifting_machine_is_its_own_and_the_field_allows_exactly_both():
    assert SHIFTING_STATUS.allowed(ChangeStatus.REQUESTED) == {ChangeStatus.INSPECTED, ChangeStatus.REJECTED}
    assert SHIFTING_STATUS.allowed(ChangeStatus.FIELD_WORK) == {ChangeStatus.APPLIED}  # paid: no rejection
    assert ChangeStatus.INSPECTED not in REQUEST_STATUS.states and ChangeStatus.FIELD_WORK not in REQUEST_STATUS.states
    for state in CHANGE_STATUS.states:
        assert CHANGE_STATUS.allowed(state) == REQUEST_STATUS.allowed(state) | SHIFTING_STATUS.allowed(state)


def test_request_inspection_demand_note_payment_and_field_work(
    metered, cre, engineer, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        change = _request(metered, cre, reason="house extension")
    assert change.status == ChangeStatus.REQUESTED
    assert change.details == {
        "location": "inside the verandah, east wall",
        "reason": "house extension",
        "from": "outside the gate",
        "meter": "SH0001",
    }
    # the SoP schedule's meter-shifting timeline: 15 calendar days from the request (to the day's end, IST)
    due_ist, asked_ist = timezone.localtime(change.due_at, IST), timezone.localtime(change.requested_at, IST)
    assert (due_ist.date() - asked_ist.date(), due_ist.time()) == (timedelta(days=16), time(0, 0))
    due = change.due_at

    change = shifting.inspect(
        actor=engineer, channel="section_office", change=change, feasible=True, new_location="verandah, east wall",
        latitude="21.4946", longitude="86.9333", estimate="750", notes="cable 6 m",
    )  # fmt: skip
    assert change.status == ChangeStatus.INSPECTED
    inspection = ChangeInspection.objects.get(change_request=change)
    assert (inspection.estimate, inspection.latitude) == (Decimal("750.00"), Decimal("21.494600"))

    with django_capture_on_commit_callbacks(execute=True):
        change = shifting.issue_demand_note(actor=engineer, channel="section_office", change=change)
    assert change.status == ChangeStatus.APPROVED and change.charge == Decimal("750.00")
    note = change.outcome["demand_note"]
    assert note["total"] == "750.00" and [line["code"] for line in note["lines"]] == ["shifting_estimate"]
    entry = LedgerEntry.objects.get(account=metered, reference_type="change_request", reference_id=change.number)
    assert entry.amount == Decimal("750.00") and note["number"] in entry.description
    assert shifting.still_to_pay(change) == Decimal("750.00")
    assert OutboxMessage.objects.filter(idempotency_key__startswith=f"change:{change.number}:approved").exists()

    # nothing paid: the job leaves it; 2 days pass while the consumer has not paid (the clock stops)
    assert shifting.settle_payments() == 0
    sd_clock.advance(days=2)
    payments.open_session(actor=cre, opening_balance="0")
    change = shifting.pay_demand_note(actor=cre, channel="counter", change=change, idempotency_key="sh-1")
    assert change.status == ChangeStatus.FIELD_WORK and shifting.still_to_pay(change) == 0
    assert billing_ledger.balance(account=metered) == Decimal("0.00")
    assert timedelta(days=2) <= change.due_at - due < timedelta(days=2, minutes=5)  # + the test's own seconds

    inst_before = Installation.objects.get(account=metered, removed_at__isnull=True)
    with django_capture_on_commit_callbacks(execute=True):
        change = shifting.complete(
            actor=engineer, channel="section_office", change=change, acknowledged_by="Sunita Behera"
        )
    assert change.status == ChangeStatus.APPLIED and change.applied_at is not None
    inst = Installation.objects.get(account=metered, removed_at__isnull=True)
    assert inst.pk == inst_before.pk and inst.meter.serial == "SH0001"  # same meter, same installation
    assert inst.location == "verandah, east wall"
    kinds = list(SheetEntry.objects.filter(meter=inst.meter).values_list("kind", flat=True))
    assert kinds[-1] == "shift" and "installation" in kinds  # the sheet keeps the history
    shift = SheetEntry.objects.filter(meter=inst.meter, kind="shift").get()
    assert shift.details["from"] == "outside the gate" and shift.details["reference"] == change.number
    assert (shift.details["latitude"], shift.details["longitude"]) == ("21.494600", "86.933300")
    assert shift.acknowledged_by == "Sunita Behera" and shift.consumer_acknowledged
    assert change.outcome["shifted_to"] == "verandah, east wall" and "compensation" not in change.outcome
    moves = list(
        AuditEvent.objects.filter(
            object_type="connections.changerequest", object_id=str(change.pk), action="change.status"
        )
        .order_by("at", "pk")
        .values_list("changes__to", flat=True)
    )
    assert moves == ["inspected", "approved", "field_work", "applied"]
    assert OutboxMessage.objects.filter(idempotency_key__startswith=f"change:{change.number}:applied").exists()


def test_a_late_shifting_is_compensated_once_on_the_account(metered, cre, engineer):
    change = _inspected(metered, cre, engineer, estimate="0")
    change = shifting.issue_demand_note(actor=engineer, channel="section_office", change=change)
    assert change.status == ChangeStatus.FIELD_WORK and change.charge == 0  # nothing to charge
    assert change.outcome["demand_note"] is None
    sd_clock.advance(days=17)  # 2 days past the 15
    change = shifting.complete(actor=engineer, channel="section_office", change=change)
    award = LedgerEntry.objects.get(account=metered, entry_type="compensation")
    assert award.amount < 0 and Decimal(change.outcome["compensation"]) == -award.amount
    assert award.idempotency_key == f"compensation:change:{change.pk}"


def test_a_payment_on_another_channel_is_picked_up_by_the_job(metered, cre, engineer):
    change = shifting.issue_demand_note(
        actor=engineer, channel="section_office", change=_inspected(metered, cre, engineer, estimate="400")
    )
    payments.open_session(actor=cre, opening_balance="0")
    payments.take_payment(actor=cre, channel="counter", consumer_number=metered.consumer_number, amount="399",
                          idempotency_key="part")  # fmt: skip
    assert changes.run_due_work()["shifting_paid"] == 0  # a part payment is not enough
    assert shifting.still_to_pay(ChangeRequest.objects.get(pk=change.pk)) == Decimal("1.00")
    payments.take_payment(actor=cre, channel="counter", consumer_number=metered.consumer_number, amount="1",
                          idempotency_key="rest")  # fmt: skip
    assert changes.run_due_work()["shifting_paid"] == 1
    assert ChangeRequest.objects.get(pk=change.pk).status == ChangeStatus.FIELD_WORK
    assert changes.run_due_work()["shifting_paid"] == 0  # rerun-safe


def test_not_feasible_rejects_with_the_engineer_s_notes(metered, cre, engineer):
    change = _request(metered, cre)
    with pytest.raises(DomainError) as err:
        shifting.inspect(actor=engineer, channel="section_office", change=change, feasible=False)
    assert err.value.code == "reason_required"
    assert not ChangeInspection.objects.exists()
    change = shifting.inspect(actor=engineer, channel="section_office", change=change, feasible=False,
                              notes="no wall within the premises takes the meter board")  # fmt: skip
    assert change.status == ChangeStatus.REJECTED and change.reason.startswith("no wall")
    # a new request may follow a closed one
    assert _request(metered, cre).status == ChangeStatus.REQUESTED


def test_rejection_after_the_demand_note_reverses_its_charge(metered, cre, engineer):
    change = shifting.issue_demand_note(
        actor=engineer, channel="section_office", change=_inspected(metered, cre, engineer)
    )
    assert billing_ledger.balance(account=metered) == Decimal("750.00")
    with pytest.raises(DomainError) as err:
        changes.decide(actor=engineer, channel="backoffice", change=change, approve=False, reason="")
    assert err.value.code == "reason_required"
    change = changes.decide(actor=engineer, channel="backoffice", change=change, approve=False,
                            reason="consumer withdrew")  # fmt: skip
    assert change.status == ChangeStatus.REJECTED
    assert billing_ledger.balance(account=metered) == Decimal("0.00")
    # rejecting twice reverses nothing twice
    with pytest.raises(DomainError):
        changes.decide(actor=engineer, channel="backoffice", change=change, approve=False, reason="again")
    assert LedgerEntry.objects.filter(account=metered, entry_type="reversal").count() == 1


@pytest.mark.parametrize(
    ("channel", "details", "code"),
    [
        ("website", {}, "channel_not_allowed"),  # the charter's matrix: not on the website
        ("care_centre", {"location": "   "}, "location_required"),
        ("care_centre", {"location": "x" * 201}, "invalid_text"),
    ],
)
def test_bad_requests_are_refused_and_change_nothing(metered, cre, channel, details, code):
    before = (ChangeRequest.objects.count(), AuditEvent.objects.count())
    with pytest.raises(DomainError) as err:
        _request(metered, cre, channel=channel, **details)
    assert err.value.code == code and 400 <= err.value.status < 500
    assert (ChangeRequest.objects.count(), AuditEvent.objects.count()) == before


def test_no_meter_a_pending_account_and_a_second_open_request_are_refused(offices, loaded, cre, metered):
    bare = domestic_account(offices["section1"], mobile="9437055502")
    with pytest.raises(DomainError) as err:
        _request(bare, cre)
    assert (err.value.code, err.value.status) == ("no_meter", 409)
    _request(metered, cre)
    with pytest.raises(DomainError) as err:
        _request(metered, cre)
    assert err.value.code == "request_open"
    assert ChangeRequest.objects.count() == 1


def test_steps_out_of_order_and_bad_values_change_nothing(metered, cre, engineer):
    change = _request(metered, cre)
    snapshot = _state(change)
    for attempt, code in [
        (lambda: changes.decide(actor=engineer, channel="backoffice", change=change, approve=True),
         "shifting_needs_inspection"),
        (lambda: shifting.issue_demand_note(actor=engineer, channel="section_office", change=change),
         "transition_not_allowed"),
        (lambda: shifting.complete(actor=engineer, channel="section_office", change=change), "transition_not_allowed"),
        (lambda: shifting.inspect(actor=engineer, channel="section_office", change=change, feasible=True,
                                  estimate="-5"), "invalid_estimate"),
        (lambda: shifting.inspect(actor=engineer, channel="section_office", change=change, feasible=True,
                                  estimate="1e3"), "invalid_estimate"),
        (lambda: shifting.inspect(actor=engineer, channel="section_office", change=change, feasible=True,
                                  latitude="21.5"), "invalid_geo_point"),
        (lambda: shifting.inspect(actor=engineer, channel="section_office", change=change, feasible=True,
                                  latitude="95", longitude="86.9"), "invalid_geo_point"),
    ]:  # fmt: skip
        with pytest.raises(DomainError) as err:
            attempt()
        assert err.value.code == code and 400 <= err.value.status < 500
        assert _state(change) == snapshot
    assert not ChangeInspection.objects.exists()
    # paid: the field work is owed, no rejection any more, and the field work needs a place
    change = shifting.issue_demand_note(
        actor=engineer, channel="section_office",
        change=shifting.inspect(actor=engineer, channel="section_office", change=change, feasible=True,
                                new_location="east wall", estimate="0"),
    )  # fmt: skip
    with pytest.raises(DomainError) as err:
        changes.decide(actor=engineer, channel="backoffice", change=change, approve=False, reason="late idea")
    assert err.value.status == 409
    snapshot = _state(change)
    with pytest.raises(DomainError) as err:
        shifting.complete(actor=engineer, channel="section_office", change=change, latitude="abc", longitude="1")
    assert err.value.code == "invalid_geo_point" and _state(change) == snapshot
    # another kind of request is not worked as a shifting
    load = changes.request_change(actor=cre, channel="care_centre", account=metered, kind="load_change",
                                  details={"load": "4"})  # fmt: skip
    with pytest.raises(DomainError) as err:
        shifting.issue_demand_note(actor=engineer, channel="section_office", change=load)
    assert err.value.code == "not_a_shifting"


def test_the_tariff_order_s_shifting_fee_goes_on_the_demand_note_when_an_order_names_one(
    metered, cre, engineer, monkeypatch
):
    assert shifting.fee_line() is None  # the Odisha orders name no shifting fee: charged at estimate
    monkeypatch.setattr(shifting, "fee_line", lambda kind=KIND: ("oerc_test", Decimal("200.00")))
    change = shifting.issue_demand_note(
        actor=engineer, channel="section_office", change=_inspected(metered, cre, engineer, estimate="300")
    )
    assert [(line["code"], line["amount"]) for line in change.outcome["demand_note"]["lines"]] == [
        ("shifting_fee", "200.00"),
        ("shifting_estimate", "300.00"),
    ]
    assert change.charge == Decimal("500.00")


# --- API and pages ----------------------------------------------------------------------------------


def _bearer(user) -> dict:
    _, raw = ApiToken.issue(user=user, name="t")
    return {"HTTP_AUTHORIZATION": f"Bearer {raw}"}


def test_the_whole_shifting_through_the_api(metered, cre, engineer, offices):
    c = Client()
    r = c.post("/api/v1/connections/changes", {"consumer_number": metered.consumer_number, "kind": KIND,
               "details": {"location": "east wall"}}, content_type="application/json", **_bearer(cre))  # fmt: skip
    assert r.status_code == 201, r.content
    number = r.json()["number"]
    url = f"/api/v1/connections/changes/{number}"
    eng = _bearer(engineer)
    bad = c.post(f"{url}/inspection", {"feasible": True, "estimate": "abc"}, content_type="application/json", **eng)
    assert bad.status_code == 400 and bad.json()["code"] == "invalid_estimate" and bad.json()["message"]
    early = c.post(f"{url}/field-work", {}, content_type="application/json", **eng)
    assert early.status_code == 409 and early.json()["code"] == "transition_not_allowed"
    r = c.post(f"{url}/inspection", {"feasible": True, "new_location": "east wall", "estimate": "500",
               "latitude": "21.4946", "longitude": "86.9333"}, content_type="application/json", **eng)  # fmt: skip
    assert r.status_code == 200 and r.json()["status"] == "inspected" and r.json()["inspection"]["estimate"] == "500.00"
    r = c.post(f"{url}/demand-note", **eng)
    assert r.json()["status"] == "approved" and r.json()["still_to_pay"] == "500.00"
    payments.open_session(actor=cre, opening_balance="0")
    r = c.post(f"{url}/demand-note/payment", {"idempotency_key": "api-sh"}, content_type="application/json",
               **_bearer(cre))  # fmt: skip
    assert r.status_code == 200 and r.json()["status"] == "field_work"
    r = c.post(f"{url}/field-work", {"acknowledged_by": "S. Behera"}, content_type="application/json", **eng)
    assert r.status_code == 200 and r.json()["status"] == "applied"
    assert r.json()["outcome"]["shifted_to"] == "east wall"
    # out of scope answers like a missing request
    other = staff_user("engineer", offices["division2"])
    assert c.get(url, **_bearer(other)).status_code == 404
    assert c.post(f"{url}/demand-note", **_bearer(other)).status_code == 404
    missing = "CR2600000000"
    for path in ("", "/demand-note"):
        theirs = (c.get if not path else c.post)(f"{url}{path}", **_bearer(other)).json()
        absent = (c.get if not path else c.post)(f"/api/v1/connections/changes/{missing}{path}", **_bearer(other))
        assert theirs == {k: v.replace(missing, number) if isinstance(v, str) else v for k, v in absent.json().items()}


def test_staff_pages_take_a_shifting_from_the_counter_to_the_field(client, metered, cre, engineer):
    client.force_login(cre)
    assert "request-shifting" in client.get("/connections/changes/").content.decode()
    r = client.post("/connections/changes/shifting/", {"consumer_number": metered.consumer_number,
                    "location": "east wall", "channel": "care_centre"})  # fmt: skip
    change = ChangeRequest.objects.get(kind=KIND)
    assert r.status_code == 302 and r["Location"] == f"/connections/changes/{change.number}/"
    page = client.get(r["Location"]).content.decode()
    assert change.number in page and 'id="shifting-inspection"' in page
    # the CRE may not inspect: refused, nothing changed
    client.post(f"/connections/changes/{change.number}/step/", {"action": "inspection", "feasible": "yes",
                "new_location": "east wall", "estimate": "300"})  # fmt: skip
    assert ChangeRequest.objects.get(pk=change.pk).status == "requested"
    client.force_login(engineer)
    step = f"/connections/changes/{change.number}/step/"
    client.post(step, {"action": "inspection", "feasible": "yes", "new_location": "east wall", "estimate": "300"})
    client.post(step, {"action": "demand_note"})
    assert ChangeRequest.objects.get(pk=change.pk).status == "approved"
    client.force_login(cre)
    payments.open_session(actor=cre, opening_balance="0")
    page = client.get(f"/connections/changes/{change.number}/").content.decode()
    assert 'id="take-payment"' in page and "300.00" in page
    client.post(step, {"action": "pay", "method": "cash"})
    assert ChangeRequest.objects.get(pk=change.pk).status == "field_work"
    client.force_login(engineer)
    client.post(step, {"action": "field_work", "acknowledged_by": "Sunita"})
    assert ChangeRequest.objects.get(pk=change.pk).status == "applied"
    assert Installation.objects.get(account=metered, removed_at__isnull=True).location == "east wall"
    # an unknown request number is a 404; a bad consumer number on the form changes nothing
    assert client.get("/connections/changes/CR2600000000/").status_code == 404
    client.force_login(cre)
    client.post("/connections/changes/shifting/", {"consumer_number": "NOPE", "location": "x"})
    assert ChangeRequest.objects.filter(kind=KIND).count() == 1


def test_long_not_feasible_notes_reject_the_request_in_one_step(metered, cre, engineer):
    # the inspection takes notes up to 2,000 characters, a rejection reason 500: the inspection and its
    # rejection stand or fall together, and a not-feasible inspection never leaves the request open
    change = _request(metered, cre)
    notes = "the only wall that takes the meter board is the neighbour's; " * 20
    change = shifting.inspect(actor=engineer, channel="section_office", change=change, feasible=False, notes=notes)
    change.refresh_from_db()
    assert change.status == ChangeStatus.REJECTED and change.reason and notes.startswith(change.reason[:60])
    assert change.inspection.notes == notes.strip()


def test_paying_the_monthly_bill_does_not_pay_the_demand_note(metered, cre, engineer):
    """The note's charge is settled in the ledger's allocation order (the bill first), so a payment
    the size of the note that goes to an unpaid bill leaves the note unpaid — and the counter is asked
    for the bill and the note together."""
    billing_ledger.post_entry(account=metered, entry_type="bill_charge", amount=Decimal("620.00"),
                              description="bill", due_date=timezone.localdate() + timedelta(days=10))  # fmt: skip
    change = shifting.issue_demand_note(
        actor=engineer, channel="section_office", change=_inspected(metered, cre, engineer, estimate="400")
    )
    assert shifting.still_to_pay(change) == Decimal("1020.00")
    payments.open_session(actor=cre, opening_balance="0")
    payments.take_payment(actor=cre, channel="counter", consumer_number=metered.consumer_number, amount="400",
                          idempotency_key="bill-sized")  # fmt: skip
    assert changes.run_due_work()["shifting_paid"] == 0
    change = ChangeRequest.objects.get(pk=change.pk)
    assert change.status == ChangeStatus.APPROVED and shifting.still_to_pay(change) == Decimal("620.00")
    change = shifting.pay_demand_note(actor=cre, channel="counter", change=change, idempotency_key="the-rest")
    assert change.status == ChangeStatus.FIELD_WORK and shifting.still_to_pay(change) == 0
    assert billing_ledger.balance(account=metered) == 0


def test_a_shifting_asked_at_the_counter_is_acknowledged_once_with_its_number_and_due_date(metered, cre):
    """The consumer is told the request's number and its SoP due moment when it is registered, wherever
    it was asked (the service desk's hand-over goes through the same registration), and only once."""
    change = _request(metered, cre)
    sent = list(OutboxMessage.objects.filter(event="request.registered", account=metered))
    assert len(sent) == 1 and change.number in sent[0].body and change.due_at is not None
