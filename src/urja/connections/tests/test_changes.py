"""Change requests on an account (load, category, name), disconnection and reconnection orders,
permanent disconnection with the final bill."""

from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from urja.billing import deposits
from urja.billing import ledger as billing_ledger
from urja.billing.models import Bill, LedgerEntry
from urja.connections import changes
from urja.connections.models import ChangeRequest, Order
from urja.core.errors import Conflict, DomainError
from urja.customers.models import Account
from urja.demo.testing import domestic_account
from urja.metering import services as metering
from urja.metering.models import Installation, MeterCommand
from urja.payments import services as payments
from urja.servicedesk import clock


def photo():
    return SimpleUploadedFile("proof.jpg", b"\xff\xd8\xff\xe0 jpeg", content_type="image/jpeg")


@pytest.fixture
def account(offices, loaded):
    acc = domestic_account(offices["section1"], load="2")
    meter = metering.register_meter(
        serial=f"CH{acc.pk:05d}", make="Genus", meter_type="static", actor=None, channel="system"
    )
    metering.install_meter(account=acc, meter=meter, actor=None, channel="system", initial_kwh="100")
    return acc


def pay(account, amount):
    order = payments.create_order(consumer_number=account.consumer_number, amount=amount)
    payments.simulate_gateway(order=order, outcome="success")


def test_load_enhancement_across_the_range_tops_up_the_deposit_and_applies_next_month(account, cre):
    change = changes.request_change(actor=cre, channel="care_centre", account=account, kind="load_change",
                                    details={"load": "8", "unit": "kW"})  # fmt: skip
    assert change.details["supply_type"] == "lt_3ph" and change.details["meter_change"] is True
    assert change.effective_on.day == 1 and change.effective_on > change.requested_at.date()
    change = changes.decide(actor=cre, channel="care_centre", change=change, approve=True)
    assert change.status == "approved" and change.charge > 0  # waiting for the deposit top-up
    assert change.charge == Decimal(change.outcome["deposit_required"]) - Decimal("0.00")
    # the deposit record follows the demand (billing.deposits owns it), as after an annual review
    from urja.billing.models import SecurityDeposit

    record = SecurityDeposit.objects.get(account=account)
    assert record.required == Decimal(change.outcome["deposit_required"]) and record.held == change.charge
    pay(account, change.charge)
    change = changes.apply_if_due(change=change)
    assert change.status == "scheduled"  # paid; applies from the 1st of next month
    assert Account.objects.get(pk=account.pk).sanctioned_load == Decimal("2.000")
    clock.advance(days=32)
    assert changes.run_due_work()["changes"] == 1
    change.refresh_from_db()
    account.refresh_from_db()
    assert change.status == "applied" and change.outcome["meter_change_needed"] is True
    assert (account.sanctioned_load, account.supply_type) == (Decimal("8.000"), "lt_3ph")
    assert deposits.held(account) == Decimal(change.outcome["deposit_required"])


def test_a_load_no_supply_type_takes_is_refused(account, cre):
    with pytest.raises(DomainError) as err:
        changes.request_change(actor=cre, channel="care_centre", account=account, kind="load_change",
                               details={"load": "-3"})  # fmt: skip
    assert err.value.code == "invalid_load"
    assert not ChangeRequest.objects.exists()


def test_category_change_is_scheduled_then_applied(account, cre):
    change = changes.request_change(actor=cre, channel="care_centre", account=account, kind="category_change",
                                    details={"category": "general_purpose"})  # fmt: skip
    change = changes.decide(actor=cre, channel="care_centre", change=change, approve=True)
    assert change.status == "scheduled"
    clock.advance(days=32)
    changes.run_due_work()
    account.refresh_from_db()
    assert account.category == "general_purpose"
    with pytest.raises(Conflict):
        changes.decide(actor=cre, channel="care_centre", change=change, approve=True)


def test_name_change_needs_dues_settled_or_carried(account, cre):
    billing_ledger.post_entry(account=account, entry_type="bill_charge", amount="500.00", description="bill")
    change = changes.request_change(actor=cre, channel="care_centre", account=account, kind="name_change",
                                    details={"name": "Rakesh Behera"})  # fmt: skip
    with pytest.raises(DomainError) as err:
        changes.decide(actor=cre, channel="care_centre", change=change, approve=True)
    assert err.value.code == "dues_unsettled"
    assert ChangeRequest.objects.get(pk=change.pk).status == "requested"
    changes.decide(actor=cre, channel="care_centre", change=change, approve=False, reason="dues")
    carried = changes.request_change(actor=cre, channel="care_centre", account=account, kind="name_change",
                                     details={"name": "Rakesh Behera", "carry_dues": True})  # fmt: skip
    carried = changes.decide(actor=cre, channel="care_centre", change=carried, approve=True)
    account.refresh_from_db()
    assert carried.status == "applied" and account.consumer.name == "Rakesh Behera"
    assert carried.outcome["dues_carried"] == "500.00"


def test_temporary_disconnection_at_request_is_a_field_order_closed_with_photo(account, cre, engineer):
    change = changes.request_change(actor=cre, channel="care_centre", account=account, kind="temp_disconnection",
                                    details={})  # fmt: skip
    order = Order.objects.get(change_request=change)
    assert order.status == "open" and order.account_status == "temp_disconnected"
    with pytest.raises(DomainError) as err:
        changes.complete_order(actor=engineer, channel="section_office", order=order)
    assert err.value.code == "photo_required"
    changes.complete_order(actor=engineer, channel="section_office", order=order, photo=photo())
    account.refresh_from_db()
    change.refresh_from_db()
    assert account.status == "temp_disconnected" and change.status == "applied"


def test_non_payment_disconnection_then_reconnection_after_dues_and_charge_within_4_working_hours(
    account, cre, engineer
):
    billing_ledger.post_entry(account=account, entry_type="bill_charge", amount="700.00", description="bill")
    order = changes.order_disconnection(actor=engineer, channel="section_office", account=account)
    changes.complete_order(actor=engineer, channel="section_office", order=order, photo=photo())
    account.refresh_from_db()
    assert account.status == "temp_disconnected"
    fee = changes.reconnection_fee(account)
    assert fee == Decimal("300.00")  # OERC [fees] reconnection_domestic_lt_1ph
    assert billing_ledger.balance(account=account) == Decimal("700.00") + fee
    with pytest.raises(DomainError) as err:  # reconnecting without payment
        changes.request_reconnection(actor=cre, channel="care_centre", account=account)
    assert err.value.code == "dues_unpaid"
    pay(account, Decimal("700.00") + fee)
    assert changes.reconnect_paid() == 1
    reconnect = Order.objects.get(account=account, kind="reconnect")
    assert reconnect.due_at is not None and reconnect.due_at > reconnect.created_at
    clock.advance(days=3)  # late by far more than 4 working hours
    changes.complete_order(actor=engineer, channel="section_office", order=reconnect, photo=photo())
    account.refresh_from_db()
    reconnect.refresh_from_db()
    assert account.status == "active"
    assert reconnect.compensation > 0
    assert LedgerEntry.objects.filter(
        account=account, entry_type="compensation", amount=-reconnect.compensation
    ).exists()


def test_permanent_disconnection_final_bill_deposit_set_off_refund_and_meter_removed(account, cre, engineer):
    deposits.demand_initial(account=account, estimated_monthly_bill="400.00")
    pay(account, Decimal("800.00"))  # deposit paid: held 800
    change = changes.request_change(actor=cre, channel="care_centre", account=account, kind="perm_disconnection",
                                    details={"final_kwh": "160"})  # fmt: skip
    assert change.status == "approved"  # acknowledged on the spot
    order = Order.objects.get(change_request=change)
    changes.complete_order(actor=engineer, channel="section_office", order=order, photo=photo())
    account.refresh_from_db()
    change.refresh_from_db()
    assert account.status == "perm_disconnected" and change.status == "applied"
    final = Bill.objects.get(account=account, kind="final")
    assert change.outcome["final_bill"] == final.bill_number and change.outcome["final_units"] == "60.000"
    assert not Installation.objects.filter(account=account, removed_at__isnull=True).exists()
    assert deposits.held(account) == Decimal("0.00")
    assert billing_ledger.balance(account=account) >= Decimal("0.00")
    if final.total < Decimal("800.00"):
        assert LedgerEntry.objects.filter(account=account, entry_type="refund").exists()
        assert billing_ledger.balance(account=account) == Decimal("0.00")


def test_a_smart_meter_is_disconnected_remotely(offices, loaded, cre):
    acc = domestic_account(offices["section1"], mobile="9437011111")
    meter = metering.register_meter(serial="SM0001", make="Genus", meter_type="smart", actor=None, channel="system")
    metering.install_meter(account=acc, meter=meter, actor=None, channel="system", initial_kwh="0")
    changes.request_change(actor=cre, channel="care_centre", account=acc, kind="temp_disconnection", details={})
    order = Order.objects.get(account=acc)
    assert order.status == "sent"
    assert MeterCommand.objects.get(command_id=order.command_id).command == "disconnect"


def test_no_request_on_a_closed_or_pending_account(account, cre):
    Account.objects.filter(pk=account.pk).update(status="pending")  # a test shortcut to a pending account
    account.refresh_from_db()
    with pytest.raises(Conflict) as err:
        changes.request_change(actor=cre, channel="care_centre", account=account, kind="category_change",
                               details={"category": "general_purpose"})  # fmt: skip
    assert err.value.code == "account_pending"
