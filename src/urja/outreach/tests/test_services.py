"""Outreach services (issue 15.8): events with attendance, issues with owner / due date / status,
requests registered on the spot through the service desk (channel `camp`), and bad input."""

from datetime import timedelta

import pytest
from django.utils import timezone

from urja.core.errors import Conflict, DomainError, Forbidden, NotFound, TransitionNotAllowed
from urja.core.models import AuditEvent
from urja.demo import testing
from urja.outreach import selectors, services
from urja.outreach.models import EventIssue, EventRequest, OutreachEvent
from urja.servicedesk.models import ServiceRequest

pytestmark = pytest.mark.django_db


def test_an_event_is_planned_held_and_closed_with_audit(cre1, camp):
    assert camp.status == "planned" and camp.office_path.startswith(cre1.staff.office.path)
    held = services.record_attendance(actor=cre1, channel="backoffice", event=camp, attendance=42, notes="Good turnout")
    assert held.status == "held" and held.attendance == 42
    corrected = services.record_attendance(actor=cre1, channel="backoffice", event=held, attendance="45")
    assert corrected.status == "held" and corrected.attendance == 45 and corrected.notes == "Good turnout"
    closed = services.close_event(actor=cre1, channel="backoffice", event=corrected, note="done")
    assert closed.status == "closed"
    actions = set(AuditEvent.objects.filter(object_id=str(camp.pk)).values_list("action", flat=True))
    assert {"outreach.event_planned", "outreachevent.status", "outreach.attendance"} <= actions


def test_bad_attendance_changes_nothing(cre1, camp, offices):
    for bad in (-1, "-3", "many", 10**6):
        with pytest.raises(DomainError) as err:
            services.record_attendance(actor=cre1, channel="backoffice", event=camp, attendance=bad)
        assert err.value.code == "invalid_attendance"
    future = services.plan_event(
        actor=cre1,
        channel="backoffice",
        kind="rwa_meeting",
        office=offices["section1"],
        held_on=timezone.localdate() + timedelta(days=5),
        venue="Community hall",
    )
    with pytest.raises(DomainError) as early:
        services.record_attendance(actor=cre1, channel="backoffice", event=future, attendance=10)
    assert early.value.code == "event_in_future"
    camp.refresh_from_db()
    assert camp.status == "planned" and camp.attendance is None


def test_bad_events_are_refused(cre1, cre2, offices):
    with pytest.raises(DomainError) as kind:
        services.plan_event(
            actor=cre1,
            channel="api",
            kind="picnic",
            office=offices["section1"],
            held_on=timezone.localdate(),
            venue="x",
        )
    assert kind.value.code == "invalid_kind"
    with pytest.raises(DomainError) as venue:
        services.plan_event(
            actor=cre1,
            channel="api",
            kind="rwa_meeting",
            office=offices["section1"],
            held_on=timezone.localdate(),
            venue="   ",
        )
    assert venue.value.code == "venue_required"
    with pytest.raises(DomainError) as day:
        services.plan_event(
            actor=cre1,
            channel="api",
            kind="rwa_meeting",
            office=offices["section1"],
            held_on="2019-01-01",
            venue="Hall",
        )
    assert day.value.code == "invalid_held_on"
    # another division's office answers like an office that does not exist
    with pytest.raises(NotFound) as other:
        selectors.scoped_office(cre2, offices["section1"].code)
    with pytest.raises(NotFound) as unknown:
        selectors.scoped_office(cre2, "NOPE")
    assert other.value.message.replace(offices["section1"].code, "X") == unknown.value.message.replace("NOPE", "X")
    with pytest.raises(NotFound):
        services.plan_event(
            actor=cre2,
            channel="api",
            kind="rwa_meeting",
            office=offices["section1"],
            held_on=timezone.localdate(),
            venue="Hall",
        )
    with pytest.raises(Forbidden):
        services.plan_event(
            actor=testing.staff_user("billing_officer", offices["division1"]),
            channel="api",
            kind="rwa_meeting",
            office=offices["section1"],
            held_on=timezone.localdate(),
            venue="Hall",
        )
    assert not OutreachEvent.objects.exists()


def test_another_offices_event_answers_like_none(cre1, cre2, camp):
    with pytest.raises(NotFound) as other:
        selectors.scoped_event(cre2, camp.pk)
    with pytest.raises(NotFound) as missing:
        selectors.scoped_event(cre2, 987654)
    assert other.value.code == missing.value.code == "event_not_found"
    assert selectors.scoped_event(cre1, camp.pk) == camp


def test_issues_have_owner_due_date_and_status(cre1, engineer1, camp, offices):
    issue = services.raise_issue(
        actor=cre1,
        channel="backoffice",
        event=camp,
        text="Low voltage in ward 4 evenings",
        owner_username=engineer1.username,
        raised_by="Ward member",
    )
    assert issue.status == "open" and issue.owner == engineer1
    assert issue.due_on == camp.held_on + timedelta(days=selectors.rules()["followup_days"])
    with pytest.raises(DomainError) as no_note:
        services.set_issue_status(actor=engineer1, channel="backoffice", issue=issue, to_status="resolved")
    assert no_note.value.code == "note_required"
    services.set_issue_status(actor=engineer1, channel="backoffice", issue=issue, to_status="in_progress")
    done = services.set_issue_status(
        actor=engineer1, channel="backoffice", issue=issue, to_status="resolved", note="DT tap changed"
    )
    assert done.status == "resolved" and done.resolution == "DT tap changed" and done.resolved_at
    with pytest.raises(TransitionNotAllowed):
        services.set_issue_status(actor=engineer1, channel="backoffice", issue=done, to_status="in_progress")
    overdue = services.raise_issue(
        actor=cre1,
        channel="backoffice",
        event=camp,
        text="Streetlight pole leaning",
        owner_username=cre1.username,
        due_on=camp.held_on,
    )
    open_overdue = selectors.filter_issues(selectors.issues_in_scope(cre1), overdue_on=timezone.localdate())
    assert list(open_overdue) == [overdue]


def test_bad_issues_are_refused(cre1, cre2, camp, offices):
    stranger = testing.staff_user("engineer", offices["section2"])
    with pytest.raises(DomainError) as owner:  # staff of another division: like an unknown name
        services.raise_issue(actor=cre1, channel="api", event=camp, text="x", owner_username=stranger.username)
    assert owner.value.code == "owner_not_found"
    with pytest.raises(DomainError) as before:
        services.raise_issue(
            actor=cre1,
            channel="api",
            event=camp,
            text="x",
            owner_username=cre1.username,
            due_on=camp.held_on - timedelta(days=1),
        )
    assert before.value.code == "invalid_due_on"
    other_account = testing.domestic_account(offices["section2"], mobile="")
    with pytest.raises(NotFound):
        services.raise_issue(
            actor=cre1,
            channel="api",
            event=camp,
            text="x",
            owner_username=cre1.username,
            consumer_number=other_account.consumer_number,
        )
    assert not EventIssue.objects.exists()


def test_requests_registered_on_the_spot_go_through_the_service_desk(sop, cre1, camp, account):
    reg = services.register_request(
        actor=cre1,
        event=camp,
        type_code="bill_revision",
        subtype_code="disputed_bill",
        consumer_number=account.consumer_number,
        description="Bill too high",
    )
    assert reg.created and reg.request.channel == "camp" and reg.request.account == account
    assert EventRequest.objects.get(event=camp).request == reg.request
    again = services.register_request(
        actor=cre1,
        event=camp,
        type_code="bill_revision",
        subtype_code="disputed_bill",
        consumer_number=account.consumer_number,
    )
    assert not again.created and again.request == reg.request and EventRequest.objects.count() == 1
    theft = services.register_request(
        actor=cre1, event=camp, type_code="theft_report", name="Anonymous", description="Hooking near the pond"
    )
    # no account: lodged at the event's office, held by the office its type names (the sub-division)
    assert camp.office_path.startswith(theft.request.office.path) and theft.request.account is None


def test_anubhav_kendra_requests_use_its_own_channel(sop, cre1, offices, account):
    session = services.plan_event(
        actor=cre1,
        channel="backoffice",
        kind="anubhav_kendra",
        office=offices["section1"],
        held_on=timezone.localdate(),
        venue="Anubhav Kendra, Soro",
    )
    reg = services.register_request(
        actor=cre1,
        event=session,
        type_code="bill_revision",
        subtype_code="disputed_bill",
        consumer_number=account.consumer_number,
    )
    assert reg.request.channel == "anubhav_kendra"


def test_no_requests_or_issues_on_a_closed_event(sop, cre1, camp, account):
    services.record_attendance(actor=cre1, channel="backoffice", event=camp, attendance=0)
    services.close_event(actor=cre1, channel="backoffice", event=camp)
    with pytest.raises(Conflict) as closed:
        services.register_request(
            actor=cre1,
            event=camp,
            type_code="bill_revision",
            subtype_code="disputed_bill",
            consumer_number=account.consumer_number,
        )
    assert closed.value.code == "event_closed"
    with pytest.raises(Conflict):
        services.raise_issue(actor=cre1, channel="api", event=camp, text="late", owner_username=cre1.username)
    with pytest.raises(Conflict):
        services.record_attendance(actor=cre1, channel="api", event=camp, attendance=5)
    assert not ServiceRequest.objects.exists() and not EventIssue.objects.exists()


def test_out_of_scope_account_on_the_spot_answers_like_unknown(sop, cre1, camp, offices):
    other = testing.domestic_account(offices["section2"], mobile="")
    with pytest.raises(NotFound) as err:
        services.register_request(
            actor=cre1,
            event=camp,
            type_code="bill_revision",
            subtype_code="disputed_bill",
            consumer_number=other.consumer_number,
        )
    assert err.value.code == "account_not_found"
    assert not ServiceRequest.objects.exists()


def test_cancel_and_cadence(cre1, offices):
    today = timezone.localdate()
    rwa = services.plan_event(
        actor=cre1,
        channel="backoffice",
        kind="rwa_meeting",
        office=offices["section1"],
        held_on=today - timedelta(days=40),
        venue="Hall",
    )
    services.record_attendance(actor=cre1, channel="backoffice", event=rwa, attendance=12)
    rows = {r["kind"]: r for r in selectors.cadence(cre1, today=today)}
    assert rows["rwa_meeting"]["overdue"] and rows["rwa_meeting"]["last"] == rwa.held_on
    assert rows["iwa_meeting"]["last"] is None and "nishta_camp" not in rows
    planned = services.plan_event(
        actor=cre1,
        channel="backoffice",
        kind="iwa_meeting",
        office=offices["section1"],
        held_on=today + timedelta(days=3),
        venue="Industrial estate",
    )
    with pytest.raises(DomainError):
        services.cancel_event(actor=cre1, channel="backoffice", event=planned, reason="")
    assert services.cancel_event(actor=cre1, channel="backoffice", event=planned, reason="Rain").status == "cancelled"
