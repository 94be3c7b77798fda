from datetime import date, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from urja.billing import ledger
from urja.core.errors import Conflict, DomainError
from urja.customers.models import AccountStatus
from urja.minigrid import services
from urja.minigrid.models import ChangeStatus, InstalmentStatus, PlanStatus

pytestmark = pytest.mark.django_db


def test_add_customer_gives_site_id_and_deposit(customer, site):
    assert customer.customer_id == "MG01-00001"
    assert customer.account.minigrid_site == site and customer.account.is_prepaid
    # seed 001 2.2.8: deposit from the estimated monthly bill (fixed Rs 100, 1 month in billing rules)
    assert customer.estimated_monthly_bill == Decimal("100.00")
    assert ledger.balance(account=customer.account) > 0


def test_unknown_package_changes_nothing(site, operator):
    with pytest.raises(DomainError) as exc:
        services.add_customer(
            actor=operator, channel="backoffice", site=site, name="X", mobile="", address="", package_code="NOPE"
        )
    assert exc.value.code == "unknown_package"
    assert not site.customers.exists()


def test_package_change_without_smart_meter_goes_in_force_when_paid(customer, operator):
    ch = services.request_package_change(
        actor=operator, channel="backoffice", customer=customer, to_package="MG-SOLAR-100W"
    )
    with pytest.raises(Conflict):
        services.request_package_change(
            actor=operator, channel="backoffice", customer=customer, to_package="MG-SOLAR-100W"
        )
    ch = services.decide(actor=operator, channel="backoffice", change=ch, approve=True)
    assert ch.charge > 0 and ch.status == ChangeStatus.APPROVED  # larger deposit to pay
    services.recharge(actor=operator, customer=customer, amount="500", mode="cash", idempotency_key="k1")
    services.run_package_changes()
    ch.refresh_from_db()
    customer.refresh_from_db()
    assert ch.status == ChangeStatus.IN_FORCE and customer.package_code == "MG-SOLAR-100W"
    # the account carries the package (what the prepaid charges and the bill run read), audited
    from urja.core.models import AuditEvent
    from urja.customers.models import Account

    assert Account.objects.get(pk=customer.account_id).package_code == "MG-SOLAR-100W"
    event = AuditEvent.objects.filter(action="account.package_changed").get()
    assert event.changes == {"from": "MG-SOLAR-50W", "to": "MG-SOLAR-100W"}


def test_reject_needs_reason(customer, operator):
    ch = services.request_package_change(actor=operator, channel="app", customer=customer, to_package="MG-SOLAR-100W")
    with pytest.raises(DomainError):
        services.decide(actor=operator, channel="backoffice", change=ch, approve=False)
    ch = services.decide(actor=operator, channel="backoffice", change=ch, approve=False, reason="site full")
    assert ch.status == ChangeStatus.REJECTED


def test_credit_limit_flags_and_operator_deactivates(customer, operator):
    # the unpaid deposit is below the limit: not flagged
    assert services.flag_for_deactivation()["flagged"] == 0
    ledger.post_entry(account=customer.account, entry_type="charge", amount="400", description="test dues")
    assert services.flag_for_deactivation()["flagged"] == 1
    assert services.flag_for_deactivation()["flagged"] == 0  # idempotent
    services.deactivate(actor=operator, channel="backoffice", customer=customer, reason="credit limit")
    customer.account.refresh_from_db()
    assert customer.account.status == AccountStatus.BANNED


def test_recharge_bad_mode_changes_nothing(customer, operator):
    before = ledger.balance(account=customer.account)
    with pytest.raises(DomainError):
        services.recharge(actor=operator, customer=customer, amount="100", mode="bitcoin", idempotency_key="x")
    assert ledger.balance(account=customer.account) == before


def test_instalments_prepaid_missed_then_defaulted(customer, operator):
    plan = services.sell_appliance(
        actor=operator,
        channel="backoffice",
        customer=customer,
        appliance="Fan",
        price="1200",
        instalments=4,
        first_due=date.today() - timedelta(days=100),
    )
    services.charge_instalments()  # wallet owes the deposit: every due instalment is missed
    plan.refresh_from_db()
    assert plan.missed == 4 and plan.status == PlanStatus.DEFAULTED


def test_instalment_taken_from_prepaid_balance(customer, operator):
    services.recharge(actor=operator, customer=customer, amount="1000", mode="cash", idempotency_key="k2")
    plan = services.sell_appliance(
        actor=operator,
        channel="backoffice",
        customer=customer,
        appliance="TV",
        price="900",
        instalments=3,
        first_due=date.today(),
    )
    before = ledger.balance(account=customer.account)
    services.charge_instalments()
    line = plan.lines.get(seq=1)
    assert line.status == InstalmentStatus.PAID
    assert ledger.balance(account=customer.account) == before + Decimal("300.00")


@given(financed=st.integers(min_value=1, max_value=10_000_000), count=st.integers(min_value=1, max_value=36))
def test_schedule_sums_exactly(financed, count):
    amount = Decimal(financed) / 100
    rows = services.schedule(amount, count, date(2026, 1, 31))
    assert sum(a for _, a in rows) == amount and len(rows) == count
    assert all(rows[i][0] < rows[i + 1][0] for i in range(count - 1))


def test_a_water_day_with_words_for_numbers_is_refused_and_not_stored(site, operator):
    from datetime import date

    from urja.core.errors import DomainError
    from urja.minigrid.models import WaterDay

    for kwh_used, revenue in (("abc", "10"), ("1", "ten")):
        with pytest.raises(DomainError) as refused:
            services.record_water_day(
                actor=operator, site=site, day=date(2026, 12, 1), litres_produced=100, litres_sold=50,
                kwh_used=kwh_used, revenue=revenue,
            )  # fmt: skip
        assert refused.value.code == "invalid_amount"
    assert not WaterDay.objects.exists()
