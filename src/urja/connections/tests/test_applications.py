"""New-connection applications end to end: registration with its checks, inspection, demand note,
payment through payments on any channel, energization; rejection at any step; bad input changes nothing."""

from decimal import Decimal

import pytest

from urja.billing import deposits
from urja.billing import ledger as billing_ledger
from urja.billing.models import LedgerEntry
from urja.connections import selectors, services
from urja.connections.models import Application, ApplicationStatus, DemandNote
from urja.core import ids
from urja.core.errors import DomainError, NotFound, TransitionNotAllowed
from urja.core.models import AuditEvent
from urja.customers.models import Account, Consumer, KycDocument
from urja.demo.testing import domestic_account
from urja.metering import services as metering
from urja.metering.models import Installation
from urja.notifications.models import OutboxMessage
from urja.payments import services as payments


def _counts():
    return (
        Application.objects.count(),
        Consumer.objects.count(),
        KycDocument.objects.count(),
        Account.objects.count(),
        AuditEvent.objects.count(),
    )


def test_registration_gives_a_checked_number_the_fee_and_the_dn_due_date(apply, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        app = apply()
    assert ids.has_valid_check(app.number) and app.number.startswith("NC")
    assert app.status == ApplicationStatus.REGISTERED
    assert app.application_fee == Decimal("50.00")  # OERC order [fees] application_lt
    assert app.fee_order.startswith("oerc")
    assert app.fast_track and app.area == "urban"
    assert app.dn_due_at > app.registered_at
    assert sorted(app.documents.values_list("document_code", flat=True)) == [
        "identity_proof",
        "ownership_proof",
        "photograph",
    ]
    assert app.consumer.applicant_type == "owner"
    [sms] = OutboxMessage.objects.filter(idempotency_key__startswith=f"connection.registered:{app.number}")
    assert app.number in sms.body


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"documents": []}, "documents_missing"),
        ({"applicant_type": "tenant"}, "documents_missing"),  # tenancy proof and owner NOC missing
        ({"load": "7"}, "load_out_of_range"),  # LT single phase is up to 5 kW
        ({"latitude": "28.6139", "longitude": "77.2090"}, "outside_service_area"),  # Delhi
        ({"latitude": "२१.४९"}, "invalid_location"),
        ({"applicant_type": "astronaut"}, "unknown_applicant_type"),
        ({"supply_type": "temporary"}, "temporary_end_required"),
        ({"category": "casino"}, "unknown_category"),
        ({"mobile": "12345"}, "invalid_mobile"),
    ],
)
def test_bad_applications_are_refused_with_a_code_and_change_nothing(apply, change, code):
    before = _counts()
    with pytest.raises(DomainError) as err:
        apply(**change)
    assert err.value.code == code
    assert _counts() == before


def test_a_document_given_with_the_wrong_proof_is_refused(apply, owner_documents):
    docs = [services.DocumentIn("identity_proof", "library_card", "1"), *owner_documents[1:]]
    with pytest.raises(DomainError) as err:
        apply(documents=docs)
    assert err.value.code == "proof_type_not_accepted"


def test_arrears_on_an_earlier_connection_refuse_the_application(apply, offices):
    old = domestic_account(offices["section1"], mobile="9861012345")
    billing_ledger.post_entry(account=old, entry_type="bill_charge", amount="1200.00", description="unpaid bill")
    before = _counts()
    with pytest.raises(DomainError) as err:
        apply()
    assert err.value.code == "arrears"
    assert err.value.details["accounts"] == [{"consumer_number": old.consumer_number, "dues": "1200.00"}]
    assert _counts() == before


def _through_dn(apply, engineer, **inspection):
    app = apply()
    args = dict(feasible=True, distance_m=20)
    args.update(inspection)
    services.record_inspection(actor=engineer, channel="section_office", application=app, **args)
    note = services.issue_demand_note(actor=engineer, channel="section_office", application=app)
    app.refresh_from_db()
    return app, note


def test_demand_note_lines_deposit_and_pending_account(apply, engineer):
    app, note = _through_dn(apply, engineer)
    assert app.status == ApplicationStatus.DN_ISSUED
    account = app.account
    assert account.status == "pending" and account.connected_on is None
    codes = [line["code"] for line in note.lines]
    assert codes == ["application_fee", "security_deposit"]
    # deposit = billing.deposits months x estimated bill
    months = Decimal(str(deposits.rules()["months"]))
    assert note.deposit == (note.estimated_monthly_bill * months).quantize(Decimal("0.01"))
    assert note.total == Decimal("50.00") + note.deposit
    assert billing_ledger.balance(account=account) == note.total
    assert selectors.outstanding(app) == note.total


def test_meter_purchase_and_extension_go_on_the_demand_note(apply, engineer):
    app = apply(meter_option="purchase")
    services.record_inspection(
        actor=engineer, channel="section_office", application=app, feasible=True, distance_m=130, extension_needed=True
    )
    note = services.issue_demand_note(actor=engineer, channel="section_office", application=app)
    lines = {line["code"]: Decimal(line["amount"]) for line in note.lines}
    assert lines["meter_cost"] == Decimal("1500.00")
    assert lines["extension"] == Decimal("45000.00")  # (130 - 30) m x Rs 450
    app.refresh_from_db()
    assert not app.fast_track and "more than 30 m" in app.fast_track_note


def test_dn_paid_at_the_counter_then_energized_with_meter_account_deposit_and_welcome(
    apply, engineer, cre, django_capture_on_commit_callbacks
):
    app, note = _through_dn(apply, engineer)
    with pytest.raises(DomainError) as err:  # an unpaid DN cannot be energized
        services.energize(actor=engineer, channel="section_office", application=app, meter_serial="X1")
    assert err.value.code in ("transition_not_allowed",)
    payments.open_session(actor=cre, opening_balance="0")
    services.pay_demand_note(actor=cre, channel="counter", application=app, idempotency_key="dn-1")
    app.refresh_from_db()
    assert app.status == ApplicationStatus.DN_PAID and app.connection_due_at is not None
    assert DemandNote.objects.get(pk=note.pk).status == "paid"
    with pytest.raises(DomainError) as err:
        services.energize(actor=engineer, channel="section_office", application=app, meter_serial="")
    assert err.value.code == "meter_required"
    meter = metering.register_meter(serial="NC0001", make="Genus", meter_type="static", actor=None, channel="system")
    with django_capture_on_commit_callbacks(execute=True):
        services.energize(actor=engineer, channel="section_office", application=app, meter_serial=meter.serial)
    app.refresh_from_db()
    account = Account.objects.get(pk=app.account_id)
    assert app.status == ApplicationStatus.ENERGIZED
    assert account.status == "active" and account.connected_on is not None
    assert Installation.objects.filter(account=account, meter=meter, removed_at__isnull=True).exists()
    assert deposits.held(account) == note.deposit
    assert billing_ledger.balance(account=account) == Decimal("0.00")
    assert OutboxMessage.objects.filter(idempotency_key__startswith=f"connection.welcome:{app.number}").exists()


def test_dn_paid_online_is_picked_up_by_the_sweep(apply, engineer):
    app, note = _through_dn(apply, engineer)
    order = payments.create_order(consumer_number=app.account.consumer_number, amount=note.total)
    payments.simulate_gateway(order=order, outcome="success")
    assert services.sweep_paid_demand_notes() == 1
    app.refresh_from_db()
    assert app.status == ApplicationStatus.DN_PAID
    assert services.sweep_paid_demand_notes() == 0


def test_a_part_payment_leaves_the_dn_unpaid(apply, engineer):
    app, note = _through_dn(apply, engineer)
    order = payments.create_order(consumer_number=app.account.consumer_number, amount="10.00")
    payments.simulate_gateway(order=order, outcome="success")
    assert services.sweep_paid_demand_notes() == 0
    assert selectors.outstanding(app) == note.total - Decimal("10.00")


def test_rejection_after_payment_reverses_the_dn_refunds_and_closes_the_account(apply, engineer, cre):
    app, note = _through_dn(apply, engineer)
    payments.open_session(actor=cre, opening_balance="0")
    services.pay_demand_note(actor=cre, channel="counter", application=app, idempotency_key="dn-2")
    services.reject(
        actor=engineer, channel="section_office", application=app, code="row", reason="owner refused right of way"
    )
    app.refresh_from_db()
    assert app.status == ApplicationStatus.REJECTED and app.rejection_code == "row"
    account = Account.objects.get(pk=app.account_id)
    assert account.status == "perm_disconnected"
    assert billing_ledger.balance(account=account) == Decimal("0.00")
    refund = LedgerEntry.objects.get(account=account, entry_type="refund")
    assert refund.amount == note.total  # what was paid goes back through payments.refund


def test_not_feasible_inspection_rejects_with_the_notes(apply, engineer):
    app = apply()
    services.record_inspection(
        actor=engineer,
        channel="section_office",
        application=app,
        feasible=False,
        distance_m=900,
        notes="no LT line within 900 m",
    )
    app.refresh_from_db()
    assert app.status == ApplicationStatus.REJECTED and app.rejection_reason == "no LT line within 900 m"


def test_a_step_the_workflow_does_not_allow_is_a_conflict_and_changes_nothing(apply, engineer):
    app = apply()
    before = _counts()
    with pytest.raises(TransitionNotAllowed):
        services.issue_demand_note(actor=engineer, channel="section_office", application=app)
    assert _counts() == before
    services.reject(actor=engineer, channel="section_office", application=app, code="docs", reason="forged deed")
    with pytest.raises(TransitionNotAllowed):
        services.record_inspection(
            actor=engineer, channel="section_office", application=app, feasible=True, distance_m=5
        )


def test_tracking_needs_number_and_mobile_and_answers_alike(apply):
    app = apply()
    assert selectors.track(number=app.number, mobile="+919861012345") == app
    assert selectors.track(number=app.number.lower(), mobile="9861012345") == app
    errors = []
    for number, mobile in [(app.number, "9861099999"), ("NC260000000X", "9861012345"), ("garbage", "")]:
        with pytest.raises(NotFound) as err:
            selectors.track(number=number, mobile=mobile)
        errors.append((err.value.code, err.value.message))
    assert len(set(errors)) == 1
