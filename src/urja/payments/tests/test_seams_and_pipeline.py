"""No made-up price, no swallowed exception, no by-name lookups in payments' seams; the bulk
allocation splits like the one-by-one allocation."""

import inspect
import re
from datetime import date
from decimal import Decimal as D

import pytest

from urja.billing import ledger
from urja.core.models import AuditEvent
from urja.payments import seams, selectors, services
from urja.payments.models import PrepaidCharge
from urja.payments.services import prepaid

pytestmark = pytest.mark.django_db


def test_no_tariff_is_an_explicit_skip_never_a_made_up_price(prepaid_account):
    """No tariff loaded: the day used to be charged at ₹4.70/kWh; now it is skipped with a reason."""
    with pytest.raises(seams.NoTariff, match=prepaid_account.consumer_number):
        seams.price_energy(account=prepaid_account, day=date(2025, 6, 10), kwh=D("5"))
    with pytest.raises(seams.NoTariff):
        services.charge_prepaid_day(account=prepaid_account, day=date(2025, 6, 10), kwh="5")
    assert not PrepaidCharge.objects.exists() and ledger.balance(account=prepaid_account) == 0


def test_daily_job_lists_and_audits_the_days_it_could_not_price(prepaid_account, monkeypatch):
    monkeypatch.setattr(seams, "day_consumption", lambda **kw: D("5"))
    monkeypatch.setattr(prepaid, "evaluate_wallet", lambda **kw: None)  # what run_prepaid_day calls
    counts = services.run_prepaid_day(day=date(2025, 6, 10))
    assert counts["charged"] == 0 and counts["no_tariff"] == 1
    assert counts["skipped"] == [
        {"consumer_number": prepaid_account.consumer_number, "day": "2025-06-10", "reason": "no_tariff"}
    ]
    assert AuditEvent.objects.filter(action="prepaid.day_not_charged", object_id=str(prepaid_account.pk)).exists()
    assert ledger.balance(account=prepaid_account) == 0


def test_with_the_tariff_the_day_is_priced_by_the_engine(prepaid_account, tariffs_loaded):
    price = seams.price_energy(account=prepaid_account, day=date(2025, 6, 10), kwh=D("5"))
    assert price.source == "tariff" and price.amount > 0


def test_seams_call_their_apps_directly():
    source = inspect.getsource(seams)
    assert "4.70" not in source and "fallback" not in source.lower()
    assert not re.search(r"getattr\((?!settings,)", source)  # no probing a module for a function by name
    assert "except Exception:\n            pass" not in source


def test_a_failing_meter_service_is_not_swallowed(prepaid_account, monkeypatch):
    from urja.metering import selectors as metering

    def broken(**kw):
        raise RuntimeError("metering is broken")

    monkeypatch.setattr(metering, "day_consumption", broken)
    with pytest.raises(RuntimeError):  # used to be logged and read as "no data"
        seams.day_consumption(account=prepaid_account, day=date(2025, 6, 10))


def test_bulk_allocation_matches_one_by_one(account_with_bills):
    account, payments_ = account_with_bills
    day = date(2025, 7, 5)
    balance = ledger.balance(account=account)
    bulk = selectors.allocate_payments(
        payments=[(account.pk, amount, day) for amount in payments_], balances={account.pk: balance}
    )
    # one by one: each payment allocated over the ledger after the ones before it were posted
    for amount, split in zip(payments_, bulk, strict=True):
        assert selectors.allocate_on_ledger(account=account, amount=amount, today=day) == split
        ledger.post_entry(account=account, entry_type="payment", amount=-amount, description="p")


@pytest.fixture
def account_with_bills(offices):
    from urja.demo.testing import domestic_account

    account = domestic_account(offices["section1"], mobile="9437000777")
    for i, (amount, due) in enumerate([("300.00", date(2025, 5, 10)), ("450.00", date(2025, 7, 10))]):
        ledger.post_entry(
            account=account, entry_type="bill_charge", amount=amount, description=f"bill {i}", due_date=due
        )
    ledger.post_entry(account=account, entry_type="dps", amount="12.00", description="dps", due_date=date(2025, 6, 1))
    return account, [D("100.00"), D("250.00"), D("500.00"), D("20.00")]
