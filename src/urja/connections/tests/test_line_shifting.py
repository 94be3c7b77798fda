"""Shifting of LT, 11 kV and 33 kV lines and DT structures on request (issue 12; seed 003 "Shifting": 30,
60, 90 and 90 days): the meter-shifting machine and module by kind — request on the meter-shifting
channel row by the consumer or a builder through their connection, the engineer's inspection naming the
feeder or DT with the route length and structures, the demand note at estimate paid by the ledger rule,
the field work recorded (a DT structure's geo point moved on the network), compensation when late,
every bad input a 4xx with nothing changed."""

from datetime import time, timedelta
from decimal import Decimal

import pytest
from django.test import Client
from django.utils import timezone

from urja.billing.models import LedgerEntry
from urja.connections import changes, shifting
from urja.connections.models import (
    SHIFTING_KINDS,
    SHIFTING_STATUS,
    ChangeInspection,
    ChangeRequest,
    ChangeStatus,
    machine_for,
)
from urja.core.calendars import IST
from urja.core.errors import DomainError
from urja.core.models import ApiToken, AuditEvent
from urja.demo.testing import domestic_account, staff_user
from urja.network.models import DistributionTransformer, Feeder
from urja.payments import services as payments
from urja.servicedesk import clock as sd_clock


@pytest.fixture
def grid(offices, loaded):
    """Section 1's 11 kV feeder and its DT, a 33 kV feeder kept by the sub-division above it, and a DT of
    the other division (out of the account's section)."""
    f11 = Feeder.objects.create(code="F-T-11", name="Motiganj 11 kV", office=offices["section1"], voltage_kv=11)
    f33 = Feeder.objects.create(code="F-T-33", name="Balasore 33 kV", office=offices["subdivision1"], voltage_kv=33)
    dt = DistributionTransformer.objects.create(code="DT-T-1", feeder=f11, capacity_kva=100, latitude="21.494500",
                                                longitude="86.933200")  # fmt: skip
    far = Feeder.objects.create(code="F-T-X", name="Elsewhere 11 kV", office=offices["section2"], voltage_kv=11)
    other = DistributionTransformer.objects.create(code="DT-T-X", feeder=far, capacity_kva=63)
    account = domestic_account(offices["section1"], mobile="9437055601")
    return {"f11": f11, "f33": f33, "dt": dt, "other_dt": other, "account": account}


def _ask(grid, cre, kind, channel="care_centre", **details):
    details.setdefault("location", "the line over plot 12 to the road edge")
    return changes.request_change(actor=cre, channel=channel, account=grid["account"], kind=kind, details=details)


def _state(change):
    change.refresh_from_db()
    return (change.status, change.charge, LedgerEntry.objects.filter(account=change.account).count(),
            ChangeInspection.objects.filter(change_request=change).count())  # fmt: skip


@pytest.mark.parametrize(
    "kind,days", [("lt_line_shifting", 30), ("11kv_line_shifting", 60), ("33kv_line_shifting", 90), ("dt_shifting", 90)]
)
def test_each_kind_is_a_shifting_due_on_its_sop_timeline(grid, cre, kind, days):
    assert kind in SHIFTING_KINDS and machine_for(kind) is SHIFTING_STATUS
    change = _ask(grid, cre, kind)
    due, asked = timezone.localtime(change.due_at, IST), timezone.localtime(change.requested_at, IST)
    assert (due.date() - asked.date(), due.time()) == (timedelta(days=days + 1), time(0, 0))
    assert change.details["requester"] == "consumer" and change.details["requested_by"] == grid["account"].consumer.name


def test_an_11kv_line_shifting_for_a_builder_from_request_to_field_work(grid, cre, engineer):
    # the charter's matrix: the meter-shifting row (no website, no WhatsApp)
    with pytest.raises(DomainError) as err:
        _ask(grid, cre, "11kv_line_shifting", channel="website")
    assert err.value.code == "channel_not_allowed" and not ChangeRequest.objects.exists()
    change = _ask(grid, cre, "11kv_line_shifting", channel="app", requester="builder",
                  requested_by="Sai Constructions", reason="apartment block", element="f-t-11")  # fmt: skip
    assert change.details["requester"] == "builder" and change.details["element"] == "F-T-11"
    due = change.due_at
    change = shifting.inspect(actor=engineer, channel="section_office", change=change, feasible=True,
                              new_location="along the service road", route_length_m="180", structures="4",
                              estimate="85000")  # fmt: skip
    inspection = change.inspection
    assert (inspection.feeder, inspection.transformer, inspection.route_length_m, inspection.structures) == (
        grid["f11"], None, 180, 4)  # fmt: skip
    change = shifting.issue_demand_note(actor=engineer, channel="section_office", change=change)
    note = change.outcome["demand_note"]
    assert change.status == ChangeStatus.APPROVED and change.charge == Decimal("85000.00")
    assert [(line["code"], line["label"]) for line in note["lines"]] == [
        ("shifting_estimate", "Shifting of an 11 kV line: material and labour (estimate)")]  # fmt: skip
    sd_clock.advance(days=5)  # the note waits five days: the clock is stopped
    payments.open_session(actor=cre, opening_balance="0")
    change = shifting.pay_demand_note(actor=cre, channel="counter", change=change, idempotency_key="11kv-1")
    assert change.status == ChangeStatus.FIELD_WORK and timedelta(days=5) <= change.due_at - due < timedelta(
        days=5, minutes=5
    )
    with pytest.raises(DomainError) as err:  # the work must be recorded
        shifting.complete(actor=engineer, channel="section_office", change=change)
    assert err.value.code == "work_required" and _state(change)[0] == ChangeStatus.FIELD_WORK
    change = shifting.complete(actor=engineer, channel="section_office", change=change, route_length_m="185",
                               notes="4 poles re-erected along the road; conductor re-strung")  # fmt: skip
    assert change.status == ChangeStatus.APPLIED
    out = change.outcome
    assert (out["element"], out["route_length_m"], out["structures"]) == ("F-T-11", 185, 4)
    assert out["work"].startswith("4 poles") and "compensation" not in out


def test_a_dt_structure_shifting_moves_the_dt_on_the_network(grid, cre, engineer):
    change = _ask(grid, cre, "dt_shifting", location="DT in front of the gate, to the corner plot")
    with pytest.raises(DomainError) as err:  # a DT structure's new place is a geo point
        shifting.inspect(actor=engineer, channel="section_office", change=change, feasible=True, element="DT-T-1")
    assert err.value.code == "geo_point_required" and _state(change)[3] == 0
    change = shifting.inspect(actor=engineer, channel="section_office", change=change, feasible=True,
                              element="DT-T-1", latitude="21.4951", longitude="86.9340", estimate="0")  # fmt: skip
    assert change.inspection.transformer == grid["dt"] and change.inspection.structures == 1
    change = shifting.issue_demand_note(actor=engineer, channel="section_office", change=change)
    assert change.status == ChangeStatus.FIELD_WORK  # nothing to charge
    sd_clock.advance(days=92)  # two days past the 90
    change = shifting.complete(actor=engineer, channel="section_office", change=change,
                               notes="plinth and structure rebuilt at the corner plot")  # fmt: skip
    dt = DistributionTransformer.objects.get(pk=grid["dt"].pk)
    assert (dt.latitude, dt.longitude) == (Decimal("21.495100"), Decimal("86.934000"))
    moved = AuditEvent.objects.get(action="network.transformer_moved")
    assert moved.changes["from"] == {"latitude": "21.494500", "longitude": "86.933200"}
    assert change.outcome["from_geo"] == ["21.494500", "86.933200"]
    award = LedgerEntry.objects.get(account=grid["account"], entry_type="compensation")
    assert Decimal(change.outcome["compensation"]) == -award.amount > 0


@pytest.mark.parametrize(
    "kind,args,code",
    [
        ("33kv_line_shifting", {"element": "F-T-11", "route_length_m": "50"}, "unknown_element"),  # an 11 kV feeder
        ("lt_line_shifting", {"element": "DT-T-X", "route_length_m": "50"}, "unknown_element"),  # another section's
        ("lt_line_shifting", {"element": "F-T-11", "route_length_m": "50"}, "unknown_element"),  # a feeder, not a DT
        ("lt_line_shifting", {"route_length_m": "50"}, "element_required"),
        ("lt_line_shifting", {"element": "DT-T-1"}, "route_length_required"),
        ("lt_line_shifting", {"element": "DT-T-1", "route_length_m": "0"}, "invalid_route_length"),
        ("lt_line_shifting", {"element": "DT-T-1", "route_length_m": "12.5"}, "invalid_route_length"),
        ("lt_line_shifting", {"element": "DT-T-1", "route_length_m": "50", "structures": "-1"}, "invalid_structures"),
        ("dt_shifting", {"element": "DT-T-1", "latitude": "21.49"}, "invalid_geo_point"),
    ],
)
def test_bad_inspections_are_refused_and_change_nothing(grid, cre, engineer, kind, args, code):
    change = _ask(grid, cre, kind)
    before = _state(change)
    with pytest.raises(DomainError) as err:
        shifting.inspect(actor=engineer, channel="section_office", change=change, feasible=True, **args)
    assert err.value.code == code and err.value.status == 400 and err.value.message
    assert _state(change) == before


@pytest.mark.parametrize(
    "details,code",
    [
        ({"location": ""}, "location_required"),
        ({"requester": "neighbour's cousin"}, "unknown_requester"),
        ({"element": "DT-T-X"}, "unknown_element"),
    ],
)
def test_bad_requests_are_refused_and_create_nothing(grid, cre, details, code):
    with pytest.raises(DomainError) as err:
        _ask(grid, cre, "lt_line_shifting", **details)
    assert err.value.code == code and not ChangeRequest.objects.exists()


def test_not_feasible_rejects_and_a_generic_approval_is_refused(grid, cre, engineer):
    change = _ask(grid, cre, "lt_line_shifting")
    with pytest.raises(DomainError) as err:
        changes.decide(actor=engineer, channel="backoffice", change=change, approve=True)
    assert err.value.code == "shifting_needs_inspection" and _state(change)[0] == ChangeStatus.REQUESTED
    change = shifting.inspect(actor=engineer, channel="section_office", change=change, feasible=False,
                              notes="the new route crosses a private pond: no right of way")  # fmt: skip
    assert change.status == ChangeStatus.REJECTED and "right of way" in change.reason


def test_a_line_shifting_through_the_api_with_its_4xx(grid, cre, engineer, offices):
    c = Client()
    _, raw = ApiToken.issue(user=cre, name="t")
    front = {"HTTP_AUTHORIZATION": f"Bearer {raw}"}
    _, raw = ApiToken.issue(user=engineer, name="t")
    eng = {"HTTP_AUTHORIZATION": f"Bearer {raw}"}
    r = c.post("/api/v1/connections/changes", {"consumer_number": grid["account"].consumer_number,
               "kind": "33kv_line_shifting", "details": {"location": "33 kV line over the school ground",
               "requester": "affected_party", "requested_by": "Headmaster"}}, content_type="application/json",
               **front)  # fmt: skip
    assert r.status_code == 201, r.content
    url = f"/api/v1/connections/changes/{r.json()['number']}"
    bad = c.post(f"{url}/inspection", {"feasible": True, "element": "F-T-11", "route_length_m": "300"},
                 content_type="application/json", **eng)  # fmt: skip
    assert bad.status_code == 400 and bad.json()["code"] == "unknown_element"
    r = c.post(f"{url}/inspection", {"feasible": True, "element": "F-T-33", "route_length_m": "300", "structures": "3",
               "estimate": "240000"}, content_type="application/json", **eng)  # fmt: skip
    assert r.status_code == 200 and r.json()["inspection"]["element"] == "F-T-33"
    assert r.json()["inspection"]["route_length_m"] == 300
    r = c.post(f"{url}/demand-note", **eng)
    assert r.json()["still_to_pay"] == "240000.00"
    payments.open_session(actor=cre, opening_balance="0")
    r = c.post(f"{url}/demand-note/payment", {"idempotency_key": "api-33"}, content_type="application/json", **front)
    assert r.json()["status"] == "field_work"
    r = c.post(f"{url}/field-work", {}, content_type="application/json", **eng)
    assert r.status_code == 400 and r.json()["code"] == "work_required"
    r = c.post(f"{url}/field-work", {"notes": "3 towers shifted to the boundary"}, content_type="application/json",
               **eng)  # fmt: skip
    assert r.status_code == 200 and r.json()["status"] == "applied"
    other = staff_user("engineer", offices["division2"])
    _, raw = ApiToken.issue(user=other, name="t")
    assert c.get(url, HTTP_AUTHORIZATION=f"Bearer {raw}").status_code == 404


def test_staff_pages_take_a_dt_shifting_from_the_counter_to_the_field(client, grid, cre, engineer):
    client.force_login(cre)
    page = client.get("/connections/changes/").content.decode()
    assert 'id="request-line-shifting"' in page and 'value="dt_shifting"' in page
    r = client.post("/connections/changes/shifting/", {"kind": "dt_shifting", "consumer_number":
                    grid["account"].consumer_number, "location": "DT at the gate", "requester": "builder",
                    "requested_by": "Sai Constructions", "channel": "care_centre"})  # fmt: skip
    change = ChangeRequest.objects.get(kind="dt_shifting")
    assert r.status_code == 302 and change.details["requested_by"] == "Sai Constructions"
    client.force_login(engineer)
    page = client.get(f"/connections/changes/{change.number}/").content.decode()
    assert 'id="line-inspection"' in page and 'value="DT-T-1"' in page and "DT-T-X" not in page
    step = f"/connections/changes/{change.number}/step/"
    client.post(step, {"action": "inspection", "feasible": "yes", "element": "DT-T-1", "latitude": "21.4960",
                       "longitude": "86.9350", "estimate": "15000"})  # fmt: skip
    client.post(step, {"action": "demand_note"})
    assert ChangeRequest.objects.get(pk=change.pk).status == "approved"
    client.force_login(cre)
    payments.open_session(actor=cre, opening_balance="0")
    client.post(step, {"action": "pay", "method": "cash"})
    client.force_login(engineer)
    page = client.get(f"/connections/changes/{change.number}/").content.decode()
    assert 'id="line-done"' in page
    client.post(step, {"action": "field_work", "work": "structure re-erected"})
    change.refresh_from_db()
    assert change.status == "applied" and change.outcome["work"] == "structure re-erected"
    assert DistributionTransformer.objects.get(pk=grid["dt"].pk).latitude == Decimal("21.496000")
    # an unknown kind on the form creates nothing
    client.force_login(cre)
    client.post("/connections/changes/shifting/", {"kind": "pole_painting", "location": "x",
                "consumer_number": grid["account"].consumer_number})  # fmt: skip
    assert ChangeRequest.objects.count() == 1


def test_rejection_until_paid_reverses_the_note_and_none_after(grid, cre, engineer):
    from urja.billing import ledger as billing_ledger

    def noted(kind, **inspect):
        change = _ask(grid, cre, kind)
        change = shifting.inspect(actor=engineer, channel="section_office", change=change, feasible=True, **inspect)
        return shifting.issue_demand_note(actor=engineer, channel="section_office", change=change)

    change = noted("lt_line_shifting", element="DT-T-1", route_length_m="40", estimate="12000")
    assert billing_ledger.balance(account=grid["account"]) == Decimal("12000.00")
    change = changes.decide(actor=engineer, channel="backoffice", change=change, approve=False,
                            reason="the consumer withdrew: plot sold")  # fmt: skip
    assert change.status == ChangeStatus.REJECTED
    assert billing_ledger.balance(account=grid["account"]) == Decimal("0.00")  # the note's charge reversed
    change = noted("11kv_line_shifting", element="F-T-11", route_length_m="90", estimate="0")
    assert change.status == ChangeStatus.FIELD_WORK  # nothing to charge: the work is owed
    before = _state(change)
    with pytest.raises(DomainError) as err:
        changes.decide(actor=engineer, channel="backoffice", change=change, approve=False, reason="too late")
    assert err.value.code == "transition_not_allowed" and _state(change) == before
