"""Workflow transitions, pause/resume, transfer, the escalation sweep (idempotent), consumer escalation."""

from datetime import timedelta

import pytest

from urja.core.errors import Conflict, DomainError, TransitionNotAllowed
from urja.servicedesk import clock, escalation, services
from urja.servicedesk.models import Escalation, EscalationClock, RequestPause, StaffNotice


def next_ts(request):
    return EscalationClock.objects.get(request=request).next_escalation_ts


def nps(account, actor, channel="call_centre", subtype="no_power_supply"):
    return services.register_request(
        actor=actor, channel=channel, type_code="no_power_supply", subtype_code=subtype, account=account
    ).request


def test_transition_not_in_workflow_is_refused_and_changes_nothing(sop, sd_account, cre):
    sr = nps(sd_account, cre)
    with pytest.raises(TransitionNotAllowed):
        services.transition(actor=cre, channel="backoffice", request=sr, to_status="hearing_scheduled")
    with pytest.raises(DomainError) as err:
        services.transition(actor=cre, channel="backoffice", request=sr, to_status="closed")
    assert err.value.code == "use_close"
    with pytest.raises(DomainError) as err:
        services.close_request(actor=cre, channel="backoffice", request=sr, resolution_notes="  ")
    assert err.value.code == "resolution_required"
    sr.refresh_from_db()
    assert sr.status == "registered" and sr.closed_at is None


def test_close_then_closed_cannot_progress(sop, sd_account, cre):
    sr = nps(sd_account, cre)
    services.transition(actor=cre, channel="backoffice", request=sr, to_status="in_progress")
    sr = services.close_request(actor=cre, channel="backoffice", request=sr, resolution_notes="fuse replaced")
    assert sr.status == "closed" and sr.breached is False and next_ts(sr) is None
    with pytest.raises(TransitionNotAllowed):
        services.transition(actor=cre, channel="backoffice", request=sr, to_status="in_progress")


def test_pause_and_resume_move_the_due_moment(sop, sd_account, cre):
    sr = nps(sd_account, cre)
    due = sr.due_at
    services.pause_clock(actor=cre, channel="backoffice", request=sr, reason="premises locked, consumer away")
    sr.refresh_from_db()
    assert sr.status == "on_hold" and sr.due_at is None and next_ts(sr) is None
    clock.advance(hours=3)
    sr = services.resume_clock(actor=cre, channel="backoffice", request=sr)
    assert sr.status == "in_progress"
    assert abs((sr.due_at - due) - timedelta(hours=3)) < timedelta(seconds=2)
    assert RequestPause.objects.get(request=sr).ended_at is not None
    with pytest.raises(Conflict):
        services.resume_clock(actor=cre, channel="backoffice", request=sr)
    with pytest.raises(DomainError):
        services.pause_clock(actor=cre, channel="backoffice", request=sr, reason="")


def test_paused_request_is_not_escalated(sop, sd_account, cre, managers):
    sr = nps(sd_account, cre)
    services.pause_clock(actor=cre, channel="backoffice", request=sr, reason="consumer asked to come tomorrow")
    result = escalation.sweep(now=clock.now() + timedelta(days=3))
    assert result["escalated"] == 0


def test_sweep_escalates_by_fraction_once_per_level_and_is_idempotent(sop, sd_account, rural_account, cre, managers):
    a = nps(sd_account, cre)  # urban 4 h; supply tiers at 0.5, 1.0, 1.25, 1.5
    b = nps(rural_account, cre)  # rural 18 h
    start = a.registered_at
    assert escalation.sweep(now=start + timedelta(hours=1))["escalated"] == 0
    first = escalation.sweep(now=start + timedelta(hours=2, minutes=1))
    assert first["escalated"] == 1
    assert escalation.sweep(now=start + timedelta(hours=2, minutes=1))["escalated"] == 0  # same moment again
    a.refresh_from_db()
    assert a.escalation_level == 1
    # jump past 1.5 × the SLA: the remaining three tiers in one sweep, none twice
    third = escalation.sweep(now=start + timedelta(hours=6, minutes=5))
    assert third["escalated"] == 3
    assert list(Escalation.objects.filter(request=a).values_list("level", flat=True)) == [1, 2, 3, 4]
    a.refresh_from_db()
    assert a.escalation_level == 4 and next_ts(a) is None
    escalation.sweep(now=start + timedelta(days=5))  # the rural request catches up its tiers
    for _ in range(2):  # the same moment again: nothing left to escalate
        assert escalation.sweep(now=start + timedelta(days=5))["escalated"] == 0
    assert Escalation.objects.filter(request=a).count() == 4
    # the rural one reached every tier too by day 5, exactly once each
    assert list(Escalation.objects.filter(request=b).values_list("level", flat=True)) == [1, 2, 3, 4]
    # holders were told: the sub-division manager got a notice for level 1, the utility for level 4
    assert StaffNotice.objects.filter(user=managers["subdivision"], text__contains="level 1").exists()
    assert StaffNotice.objects.filter(user=managers["utility"], text__contains="level 4").exists()


def test_sweep_twice_concurrently_computed_never_doubles(sop, sd_account, cre):
    """Two sweeps at the same moment (e.g. a retried task): the second finds nothing to claim."""
    sr = nps(sd_account, cre)
    moment = sr.registered_at + timedelta(hours=10)
    assert escalation.sweep(now=moment)["escalated"] == 4
    EscalationClock.objects.filter(request=sr).update(escalation_level=0, next_escalation_ts=0)  # a stale pointer
    escalation.sweep(now=moment)
    assert Escalation.objects.filter(request=sr).count() == 4  # unique (request, level) held


def test_closed_requests_are_not_escalated(sop, sd_account, cre):
    sr = nps(sd_account, cre)
    services.close_request(actor=cre, channel="backoffice", request=sr, resolution_notes="restored")
    assert escalation.sweep(now=sr.registered_at + timedelta(days=2))["escalated"] == 0


def test_consumer_escalates_after_n_days(sop, sd_account, cre, managers):
    sr = services.register_request(
        actor=cre, channel="call_centre", type_code="meter_faulty", subtype_code="meter_stuck", account=sd_account
    ).request
    with pytest.raises(Conflict) as err:
        services.consumer_escalate(number=sr.number, mobile="9437012345")
    assert err.value.code == "too_early_to_escalate"
    clock.advance(days=3, minutes=1)
    esc = services.consumer_escalate(number=sr.number, mobile="+919437012345")
    assert esc.level == 1 and esc.reason == "consumer"
    esc2 = services.consumer_escalate(number=sr.number, consumer_number=sd_account.consumer_number)
    assert esc2.level == 2
    with pytest.raises(DomainError):
        services.consumer_escalate(number=sr.number, mobile="9999999999")
    assert StaffNotice.objects.filter(user=managers["division"]).exists()


def test_transfer_and_assignment(sop, sd_account, cre, engineer, offices):
    sr = nps(sd_account, cre)
    sr = services.assign(actor=cre, channel="backoffice", request=sr, user=engineer)
    assert sr.status == "assigned" and sr.assigned_to == engineer
    with pytest.raises(DomainError) as err:
        services.transfer(actor=cre, channel="backoffice", request=sr, office=offices["section2"], reason="")
    assert err.value.code == "reason_required"
    sr = services.transfer(
        actor=cre, channel="backoffice", request=sr, office=offices["section2"].code, reason="wrong section"
    )
    assert sr.office == offices["section2"] and sr.office_path == offices["section2"].path and sr.assigned_to is None


def test_bulk_assign_all_or_nothing(sop, sd_account, rural_account, cre, engineer):
    a = nps(sd_account, cre)
    b = services.register_request(
        actor=cre, channel="call_centre", type_code="meter_reading", account=rural_account
    ).request
    with pytest.raises(DomainError):
        services.bulk_assign(actor=cre, channel="backoffice", numbers=[a.number, "SR00NOPE"], user=engineer)
    a.refresh_from_db()
    assert a.assigned_to is None
    done = services.bulk_assign(actor=cre, channel="backoffice", numbers=[a.number, b.number], user=engineer)
    assert {r.assigned_to_id for r in done} == {engineer.pk}


def test_reopen_window(sop, sd_account, cre):
    sr = nps(sd_account, cre)
    sr = services.close_request(actor=cre, channel="backoffice", request=sr, resolution_notes="done")
    clock.advance(days=8)
    with pytest.raises(Conflict) as err:
        services.reopen_request(actor=cre, channel="backoffice", request=sr, reason="not fixed")
    assert err.value.code == "reopen_window_passed"


def test_periodic_task_is_declared():
    from urja.core.scheduler import collect

    tasks = collect()
    assert tasks["servicedesk-escalation-sweep"]["task"] == "urja.servicedesk.tasks.escalation_sweep"


def test_staff_escalation_moves_the_pointer_with_tiers_from_the_loaded_catalogue(sop, sd_account, cre, managers):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    sr = nps(sd_account, cre)
    tiers = list(sr.request_type.tiers.order_by("level"))
    with CaptureQueriesContext(connection) as queries:
        esc = services.staff_escalate(actor=cre, channel="backoffice", request=sr, note="feeder still down")
    assert esc.level == tiers[0].level and esc.reason == Escalation.Reason.MANUAL
    # the tiers come from the process's catalogue, not from a query per escalation
    assert not any("escalationtier" in q["sql"] for q in queries.captured_queries)
    pointer = EscalationClock.objects.get(request=sr)
    assert pointer.escalation_level == tiers[0].level
    expected = pointer.clock_start_ts + pointer.paused_seconds + tiers[1].fraction * pointer.span_seconds
    assert pointer.next_escalation_ts == int(-(-expected // 1))
