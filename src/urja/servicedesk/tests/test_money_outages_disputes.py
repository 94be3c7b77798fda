"""Compensation (pure rules + ledger credit + monthly report), outages, supply checks, disputes."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.test import Client
from django.utils import timezone
from hypothesis import given
from hypothesis import strategies as st

from urja.billing.ledger import balance
from urja.billing.models import LedgerEntry
from urja.core.calendars import IST
from urja.core.errors import Conflict, DomainError
from urja.notifications.models import OutboxMessage
from urja.servicedesk import clock, services, supply_checks
from urja.servicedesk import compensation as comp
from urja.servicedesk.models import CompensationAward, Hearing, Outage, ServiceRequest

RULE = {"basis": "per_hour", "rate": 50, "higher_after": 6, "higher_rate": 100, "many_rate": 25, "cap_lt": 1500}


def test_compensation_rules():
    assert comp.compute(RULE, units_late=0).amount == 0
    assert comp.compute(RULE, units_late=3).amount == Decimal("150.00")
    assert comp.compute(RULE, units_late=8).amount == Decimal("500.00")  # 6×50 + 2×100
    assert comp.compute(RULE, units_late=3, many_affected=True).amount == Decimal("75.00")
    capped = comp.compute(RULE, units_late=100)
    assert capped.amount == Decimal("1500.00") and capped.capped
    assert comp.compute({**RULE, "cap_ht": 2500}, units_late=100, supply_class="ht").amount == Decimal("2500.00")
    assert comp.compute({"basis": "flat", "rate": 100}, units_late=9).amount == Decimal("100.00")
    with pytest.raises(ValueError):
        comp.validate_rule("x", {"basis": "per_week", "rate": 1})


@given(st.integers(0, 500), st.integers(0, 500), st.booleans())
def test_compensation_monotonic_and_capped(a, b, many):
    lo, hi = sorted((a, b))
    x = comp.compute(RULE, units_late=lo, many_affected=many).amount
    y = comp.compute(RULE, units_late=hi, many_affected=many).amount
    assert Decimal(0) <= x <= y <= Decimal(1500)


def test_breached_request_is_compensated_once_on_the_ledger(sop, sd_account, cre, offices):
    sr = services.register_request(
        actor=cre,
        channel="call_centre",
        type_code="no_power_supply",
        subtype_code="no_power_supply",
        account=sd_account,
    ).request
    clock.advance(hours=4 + 3, minutes=10)  # 3 h 10 min late → 4 started hours
    sr = services.close_request(actor=cre, channel="backoffice", request=sr, resolution_notes="jumper replaced")
    assert sr.breached
    award = CompensationAward.objects.get(request=sr)
    assert award.units_late == 4 and award.amount == Decimal("200.00")
    entry = LedgerEntry.objects.get(idempotency_key=f"compensation:{sr.pk}")
    assert entry.entry_type == "compensation" and entry.amount == Decimal("-200.00")
    assert entry.reference_type == "service_request" and entry.reference_id == str(sr.pk)
    assert balance(account=sd_account) == Decimal("-200.00")
    # computing again changes nothing
    services.award_compensation(request=sr)
    assert LedgerEntry.objects.filter(entry_type="compensation").count() == 1
    # the monthly report per division
    rows = services.compensation_report(month=award.month)
    assert rows == [
        {
            "division": offices["division1"].name,
            "division_code": offices["division1"].code,
            "type": "No power supply",
            "count": 1,
            "amount": Decimal("200.00"),
        }
    ]
    # the API's report is the page's: a manager of another division sees none of it, one of this division all
    from urja.core.models import ApiToken
    from urja.demo import testing

    month = award.month.strftime("%Y-%m")
    for office, expected in (("division2", []), ("division1", [{**rows[0], "amount": "200.00"}])):
        _, raw = ApiToken.issue(user=testing.staff_user("manager", offices[office]), name="test")
        answer = Client(HTTP_AUTHORIZATION=f"Bearer {raw}").get("/api/v1/servicedesk/reports/compensation",
                                                                {"month": month})  # fmt: skip
        assert answer.status_code == 200 and answer.json() == expected, office


def test_in_time_request_earns_nothing(sop, sd_account, cre):
    sr = services.register_request(
        actor=cre, channel="call_centre", type_code="meter_reading", account=sd_account
    ).request
    services.close_request(actor=cre, channel="backoffice", request=sr, resolution_notes="read")
    assert not CompensationAward.objects.exists() and not LedgerEntry.objects.exists()


def test_breached_working_days_request_compensated_per_day(sop, sd_account, cre):
    sr = services.register_request(
        actor=cre, channel="app", type_code="meter_testing", subtype_code="meter_running_fast", account=sd_account
    ).request
    clock.advance(days=20)
    sr = services.close_request(actor=cre, channel="backoffice", request=sr, resolution_notes="tested, 1.2% fast")
    award = CompensationAward.objects.get(request=sr)
    late_days = sr.closed_at - sr.due_at
    assert award.units_late == -(-late_days.total_seconds() // 86400)
    assert award.amount == Decimal(min(7, award.units_late) * 50 + max(0, award.units_late - 7) * 100)


def test_nps_links_to_known_outage_and_closing_outage_closes_complaints(sop, sd_account, network, cre, engineer):
    outage = services.declare_outage(
        actor=engineer,
        channel="backoffice",
        kind="unplanned",
        reason="33 kV feeder tripped",
        transformer=network["dt"],
        expected_restore_at=clock.now() + timedelta(hours=3),
    )
    assert outage.status == "active" and outage.affected_accounts == 1
    result = services.register_request(
        actor=cre, channel="whatsapp", type_code="no_power_supply", subtype_code="no_power_supply", account=sd_account
    )
    sr = result.request
    assert result.outage == outage and sr.status == "linked_to_outage" and sr.assigned_to is None
    clock.advance(hours=2)
    services.restore_outage(actor=engineer, channel="backoffice", outage=outage)
    sr.refresh_from_db()
    outage.refresh_from_db()
    assert outage.status == "restored" and sr.status == "closed" and sr.resolution_code == "outage_restored"
    assert not sr.breached
    with pytest.raises(Conflict):
        services.restore_outage(actor=engineer, channel="backoffice", outage=outage)


def test_unplanned_outage_picks_up_complaints_already_lodged(sop, sd_account, network, cre, engineer):
    sr = services.register_request(
        actor=cre,
        channel="call_centre",
        type_code="no_power_supply",
        subtype_code="no_power_supply",
        account=sd_account,
    ).request
    outage = services.declare_outage(
        actor=engineer, channel="backoffice", kind="unplanned", reason="DT burnt", feeder=network["feeder"]
    )
    sr.refresh_from_db()
    assert sr.outage == outage and sr.status == "linked_to_outage"


def test_planned_outage_announced_in_advance(sop, sd_account, network, engineer):
    with pytest.raises(DomainError) as err:
        services.declare_outage(
            actor=engineer, channel="backoffice", kind="planned", reason="maintenance", feeder=network["feeder"]
        )
    assert err.value.code == "planned_outage_in_past"
    start = clock.now() + timedelta(days=1)
    outage = services.declare_outage(
        actor=engineer,
        channel="backoffice",
        kind="planned",
        reason="tree cutting",
        feeder=network["feeder"],
        starts_at=start,
        expected_restore_at=start + timedelta(hours=4),
    )
    assert outage.status == "announced" and outage.announced_at is not None
    pytest.importorskip("urja.notifications.services")
    from urja.notifications.models import OutboxMessage

    assert OutboxMessage.objects.filter(event="outage.planned", account=sd_account).exists()
    assert services.activate_planned_outages(now=start - timedelta(minutes=1)) == 0
    assert services.activate_planned_outages(now=start) == 1
    assert Outage.objects.get(pk=outage.pk).status == "active"


def test_bad_outage_input(sop, network, engineer):
    with pytest.raises(DomainError) as err:
        services.declare_outage(actor=engineer, channel="backoffice", kind="unplanned", reason="x")
    assert err.value.code == "outage_location_required"
    with pytest.raises(DomainError):
        services.declare_outage(
            actor=engineer, channel="backoffice", kind="sometimes", reason="x", feeder=network["feeder"]
        )
    assert not Outage.objects.exists()


def test_smart_meter_disconnected_remotely_no_crew(sop, sd_account, cre):
    metering = pytest.importorskip("urja.metering.models")
    meter = metering.Meter.objects.create(
        serial="SM-0001", make="Genus", meter_type=next(iter(metering.SMART_TYPES)), relay_connected=False
    )
    metering.Installation.objects.create(meter=meter, account=sd_account, installed_at=clock.now() - timedelta(days=30))
    check = supply_checks.check(sd_account)
    assert check is not None and check.reason == supply_checks.REMOTE_DISCONNECTED
    result = services.register_request(
        actor=cre, channel="whatsapp", type_code="no_power_supply", subtype_code="no_power_supply", account=sd_account
    )
    sr = result.request
    assert result.supply_check.reason == "remote_disconnected"
    assert sr.status == "closed" and sr.resolution_code == "remote_disconnected" and sr.assigned_to is None
    # relay closed again: a normal complaint
    metering.Meter.objects.filter(pk=meter.pk).update(relay_connected=True)
    assert supply_checks.check(sd_account) is None


def test_prepaid_without_balance_no_crew(sop, offices, cre):
    payments = pytest.importorskip("urja.payments.models")
    from urja.demo import testing

    account = testing.domestic_account(offices["section1"], mobile="9437000222", is_prepaid=True)
    payments.PrepaidWallet.objects.create(account=account, supply="disconnected")
    assert supply_checks.check(account).reason == supply_checks.PREPAID_NO_BALANCE
    sr = services.register_request(
        actor=cre, channel="call_centre", type_code="no_power_supply", subtype_code="no_power_supply", account=account
    ).request
    assert sr.status == "closed" and sr.resolution_code == "prepaid_no_balance"
    # a postpaid account is never 'prepaid without balance'
    assert supply_checks.prepaid_no_balance(testing.domestic_account(offices["section1"], mobile="9437000333")) is None


def test_dispute_hearing_outcome_posts_credit_note(sop, sd_account, cre, managers):
    sr = services.register_request(
        actor=cre, channel="care_centre", type_code="bill_revision", subtype_code="arrear_dispute", account=sd_account
    ).request
    with pytest.raises(DomainError):
        services.schedule_hearing(
            actor=cre, channel="backoffice", request=sr, scheduled_for=clock.now() - timedelta(days=1), venue="cell"
        )
    hearing = services.schedule_hearing(
        actor=cre,
        channel="backoffice",
        request=sr,
        scheduled_for=clock.now() + timedelta(days=5),
        venue="Hearing & counselling cell, Balasore",
    )
    sr.refresh_from_db()
    assert sr.status == "hearing_scheduled"
    # the date goes into the message in the language-neutral d-m-Y H:M form, in Indian time
    when = timezone.localtime(hearing.scheduled_for, IST).strftime("%d-%m-%Y %H:%M")
    message = OutboxMessage.objects.filter(event="request.hearing_scheduled", consumer=sd_account.consumer).latest("id")
    assert when in message.body
    with pytest.raises(DomainError):
        services.record_hearing_outcome(
            actor=managers["division"], channel="backoffice", hearing=hearing, outcome="upheld", notes=""
        )
    hearing = services.record_hearing_outcome(
        actor=managers["division"],
        channel="backoffice",
        hearing=hearing,
        outcome=Hearing.Outcome.PARTLY,
        notes="arrears of 2019 not proven",
        revision_amount="-1250.50",
    )
    assert hearing.ledger_entry.entry_type == "credit_note" and hearing.ledger_entry.amount == Decimal("-1250.50")
    with pytest.raises(Conflict):
        services.record_hearing_outcome(
            actor=managers["division"], channel="backoffice", hearing=hearing, outcome="upheld", notes="again"
        )
    sr.refresh_from_db()
    assert sr.status == "heard"
    sr = services.close_request(actor=cre, channel="backoffice", request=sr, resolution_notes="bill revised")
    assert sr.status == "closed"


def test_hearing_only_for_disputes(sop, sd_account, cre):
    sr = services.register_request(
        actor=cre, channel="call_centre", type_code="meter_reading", account=sd_account
    ).request
    with pytest.raises(DomainError) as err:
        services.schedule_hearing(
            actor=cre, channel="backoffice", request=sr, scheduled_for=clock.now() + timedelta(days=1), venue="x"
        )
    assert err.value.code == "not_a_dispute"


def test_grievance_forums_from_data(sop, offices):
    forums = services.grievance_forums(division=offices["division1"])  # "Balasore Electrical Division"
    kinds = {f["kind"] for f in forums}
    assert kinds == {"ombudsman", "grf"}
    assert any("Balasore" in f["name"] for f in forums) and not any("Jajpur" in f["name"] for f in forums)
    assert all(f["phone"] for f in forums)


def test_request_counts_stay_consistent(sop):
    assert ServiceRequest.objects.count() == 0
