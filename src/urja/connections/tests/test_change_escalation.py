"""A late shifting climbs the SoP's escalation tiers as a late application does: once per tier, the
managers of the tier's office told once, nothing while the demand note waits for the consumer (the
waiting left out of the time used), nothing once done or rejected; a paper request keyed in later runs
from its receipt."""

from datetime import timedelta

import pytest
from django.test import Client

from urja.connections import changes, handover, shifting
from urja.connections.models import ChangeEscalation, ChangeStatus
from urja.connections.tasks import escalate_late as escalate_task
from urja.core.errors import DomainError
from urja.core.models import AuditEvent
from urja.demo.testing import domestic_account, staff_user
from urja.metering import services as metering
from urja.payments import services as payments
from urja.servicedesk import clock
from urja.servicedesk.models import StaffNotice

KIND = "meter_shifting"


@pytest.fixture
def metered(offices, loaded):
    account = domestic_account(offices["section1"], mobile="9437055601")
    meter = metering.register_meter(serial="SE0001", make="Genus", meter_type="static", actor=None, channel="system")
    metering.install_meter(account=account, meter=meter, actor=None, channel="system", location="outside the gate")
    return account


def _request(account, actor, **kw):
    return changes.request_change(
        actor=actor, channel="care_centre", account=account, kind=KIND,
        details={"location": "verandah, east wall"}, **kw,
    )  # fmt: skip


def _levels(change) -> list[int]:
    rows = ChangeEscalation.objects.filter(change_request=change).order_by("level")
    return list(rows.values_list("level", flat=True))


def test_a_late_shifting_climbs_the_tiers_once_each_and_tells_their_managers(metered, cre, offices):
    sub_manager = staff_user("manager", offices["subdivision1"])
    div_manager = staff_user("manager", offices["division1"])
    change = _request(metered, cre)
    # tier 1 at 3/4 of the time given, before the due moment
    assert change.requested_at < change.next_escalation_at < change.due_at
    assert shifting.escalate_late() == 0  # on time: nothing
    clock.advance(seconds=(change.due_at - clock.now()).total_seconds() + 3600)  # an hour late
    assert escalate_task() == 2  # the periodic task sweeps shiftings too
    change.refresh_from_db()
    assert _levels(change) == [1, 2] and change.escalation_level == 2
    assert StaffNotice.objects.filter(user=sub_manager, text__contains=change.number).count() == 1
    assert StaffNotice.objects.filter(user=div_manager, text__contains=change.number).count() == 1
    assert AuditEvent.objects.filter(action="connection.change_escalated", object_id=str(change.pk)).count() == 1
    assert change.next_escalation_at > change.due_at  # tier 3 at 1.5
    assert shifting.escalate_late() == 0  # a rerun adds nothing
    assert _levels(change) == [1, 2]
    # the consumer's tracker names the tier reached
    view = handover.track_for_consumer(number=change.number, consumer_number=metered.consumer_number)
    assert view["escalated_to"] == ChangeEscalation.objects.get(change_request=change, level=2).title


def test_nothing_climbs_while_the_demand_note_waits_and_the_wait_is_left_out(metered, cre, engineer):
    change = _request(metered, cre)
    change = shifting.inspect(actor=engineer, channel="section_office", change=change, feasible=True,
                              new_location="verandah", estimate="500")  # fmt: skip
    change = shifting.issue_demand_note(actor=engineer, channel="section_office", change=change)
    clock.advance(days=60)  # the consumer takes two months to pay
    assert shifting.escalate_late() == 0
    change.refresh_from_db()
    assert change.escalation_level == 0 and change.next_escalation_at is None  # the pointer waits too
    order = payments.create_order(consumer_number=metered.consumer_number, amount=change.charge)
    payments.simulate_gateway(order=order, outcome="success")
    assert shifting.settle_payments() == 1
    change.refresh_from_db()
    assert change.status == ChangeStatus.FIELD_WORK
    # the clock runs again: the next tier is after the payment, within the due moment moved on by the wait
    assert clock.now() < change.next_escalation_at < change.due_at
    assert shifting.escalate_late() == 0


def test_a_done_or_rejected_shifting_never_escalates(metered, cre, engineer):
    change = _request(metered, cre)
    changes.decide(actor=engineer, channel="section_office", change=change, approve=False, reason="no space")
    clock.advance(days=40)
    assert shifting.escalate_late() == 0
    assert not ChangeEscalation.objects.exists()


def test_a_paper_request_runs_from_its_receipt(metered, cre, client: Client):
    change = _request(metered, cre, received_at=clock.now() - timedelta(days=25))
    assert change.requested_at <= clock.now() - timedelta(days=25)
    assert change.next_escalation_at < clock.now()  # already late when keyed in
    made = shifting.escalate_late()  # 25 days on a 15-day timeline: every tier up to 1.5 at once
    change.refresh_from_db()
    assert made >= 2 and _levels(change) == list(range(1, made + 1)) and change.escalation_level == made
    client.force_login(cre)
    page = client.get(f"/connections/changes/{change.number}/").content.decode()
    assert 'id="escalations"' in page and f"L{made} " in page
    listing = client.get("/connections/changes/").content.decode()
    assert f'<span class="badge warn">L{made}</span>' in listing


@pytest.mark.parametrize("days", [31, -1])
def test_a_receipt_in_the_future_or_too_long_ago_is_refused(metered, cre, days):
    with pytest.raises(DomainError) as err:
        _request(metered, cre, received_at=clock.now() - timedelta(days=days))
    assert err.value.code == ("received_too_early" if days > 0 else "date_in_future")
    assert not metered.change_requests.exists()
