"""Lateness through the service desk's engines: escalation tiers (SoP schedule), compensation on a
late energization, pauses attributable to the applicant; temporary connections."""

from datetime import date, timedelta
from decimal import Decimal

import pytest

from urja.billing import ledger as billing_ledger
from urja.billing.models import LedgerEntry
from urja.connections import selectors, services
from urja.connections.models import Compensation, Escalation
from urja.core.errors import Conflict, DomainError
from urja.demo.testing import staff_user
from urja.metering import services as metering
from urja.payments import services as payments
from urja.servicedesk import clock
from urja.servicedesk.models import StaffNotice


def _pay_online(app):
    order = payments.create_order(consumer_number=app.account.consumer_number, amount=selectors.outstanding(app))
    payments.simulate_gateway(order=order, outcome="success")
    assert services.sweep_paid_demand_notes() == 1
    app.refresh_from_db()


def _to_paid(apply, engineer, **kw):
    app = apply(**kw)
    services.record_inspection(actor=engineer, channel="section_office", application=app, feasible=True, distance_m=10)
    services.issue_demand_note(actor=engineer, channel="section_office", application=app)
    app.refresh_from_db()
    _pay_online(app)
    return app


def test_a_late_application_climbs_the_sop_tiers_once_each_and_notifies_their_managers(apply, offices):
    sub_manager = staff_user("manager", offices["subdivision1"])
    div_manager = staff_user("manager", offices["division1"])
    app = apply()
    assert services.escalate_late() == 0  # on time: nothing
    clock.advance(days=9)  # 5 working days to the DN are long gone
    made = services.escalate_late()
    app.refresh_from_db()
    levels = list(Escalation.objects.filter(application=app).order_by("level").values_list("level", flat=True))
    assert made == len(levels) >= 2 and levels == list(range(1, len(levels) + 1))
    assert app.escalation_level == levels[-1]
    assert services.sla_colour(app) == "red"
    assert StaffNotice.objects.filter(user=sub_manager, text__contains=app.number).count() == 1
    assert StaffNotice.objects.filter(user=div_manager, text__contains=app.number).count() == 1
    assert services.escalate_late() == 0  # a rerun adds nothing
    assert Escalation.objects.filter(application=app).count() == len(levels)


def test_a_paused_application_does_not_escalate_and_its_due_date_moves(apply, cre):
    app = apply()
    due = app.dn_due_at
    services.pause_clock(actor=cre, channel="care_centre", application=app, reason="applicant to bring the sale deed")
    app.refresh_from_db()
    assert app.dn_due_at is None
    with pytest.raises(Conflict):
        services.pause_clock(actor=cre, channel="care_centre", application=app, reason="again")
    clock.advance(days=20)
    assert services.escalate_late() == 0
    services.resume_clock(actor=cre, channel="care_centre", application=app)
    app.refresh_from_db()
    assert app.dn_due_at > due + timedelta(days=14)
    with pytest.raises(DomainError) as err:
        services.pause_clock(actor=cre, channel="care_centre", application=app, reason="  ")
    assert err.value.code == "reason_required"


def test_a_late_energization_earns_the_sop_compensation_on_the_new_account(apply, engineer):
    app = _to_paid(apply, engineer)
    assert app.fast_track and app.connection_due_at == app.dn_paid_at + timedelta(hours=48)
    clock.advance(days=4, hours=23)  # 2 days 23 hours past the 48 hours: 3 started days
    metering.register_meter(serial="LATE1", make="Genus", meter_type="static", actor=None, channel="system")
    services.energize(actor=engineer, channel="section_office", application=app, meter_serial="LATE1")
    award = Compensation.objects.get(application=app)
    assert award.units_late == 3 and award.basis == "per_day"
    assert award.amount == Decimal("150.00")  # Rs 50 a day (SoP service_per_day)
    entry = LedgerEntry.objects.get(pk=award.ledger_entry_id)
    assert entry.entry_type == "compensation" and entry.amount == Decimal("-150.00")
    assert billing_ledger.balance(account=app.account) == Decimal("-150.00")


def test_an_on_time_energization_earns_nothing(apply, engineer):
    app = _to_paid(apply, engineer)
    clock.advance(hours=20)
    metering.register_meter(serial="ONTIME1", make="Genus", meter_type="static", actor=None, channel="system")
    services.energize(actor=engineer, channel="section_office", application=app, meter_serial="ONTIME1")
    assert not Compensation.objects.filter(application=app).exists()


def test_a_temporary_connection_pays_its_period_in_advance(apply, engineer):
    until = date.today() + timedelta(days=45)
    app = apply(supply_type="temporary", temporary_until=until, category="general_purpose", load="3")
    assert app.kind == "temporary" and app.temporary_until == until
    services.record_inspection(actor=engineer, channel="section_office", application=app, feasible=True, distance_m=10)
    note = services.issue_demand_note(actor=engineer, channel="section_office", application=app)
    lines = {line["code"]: Decimal(line["amount"]) for line in note.lines}
    assert lines["temporary_advance"] == (note.estimated_monthly_bill * 2).quantize(
        Decimal("0.01")
    )  # 46 days: 2 months
    with pytest.raises(DomainError) as err:
        apply(temporary_until=until)  # an end date on a permanent connection
    assert err.value.code == "not_temporary"


def test_the_channel_matrix_refuses_whatsapp_for_a_new_connection(apply):
    with pytest.raises(DomainError) as err:
        apply(channel="whatsapp")
    assert err.value.code == "channel_not_allowed"


def test_the_escalation_pointer_follows_the_stage(apply, engineer, cre):
    app = apply()
    assert app.registered_at < app.next_escalation_at < app.dn_due_at  # tier 1 at 3/4 of the time given
    services.pause_clock(actor=cre, channel="care_centre", application=app, reason="applicant away")
    app.refresh_from_db()
    assert app.next_escalation_at is None
    services.resume_clock(actor=cre, channel="care_centre", application=app)
    services.record_inspection(actor=engineer, channel="section_office", application=app, feasible=True, distance_m=10)
    services.issue_demand_note(actor=engineer, channel="section_office", application=app)
    app.refresh_from_db()
    assert app.next_escalation_at is None  # the applicant's turn to pay
    _pay_online(app)
    assert app.dn_paid_at < app.next_escalation_at < app.connection_due_at
    clock.advance(days=1, hours=13)  # 37 h of the 48: past 3/4
    assert services.escalate_late() == 1
    app.refresh_from_db()
    assert app.escalation_level == 1 and app.next_escalation_at == app.connection_due_at  # tier 2 at 1.0
