"""Estimate true-up: an actual reading below what the estimates billed withdraws the surplus."""

from datetime import date
from decimal import Decimal as D

from urja.billing import ledger, services
from urja.billing.models import Bill, EntryType, LedgerEntry
from urja.metering import services as metering

from .conftest import local, steady


def bill_month(period: str, bill_date: date):
    return services.start_run(run=services.create_run(cycle="C01", period=period, bill_date=bill_date))


def test_over_estimate_is_withdrawn_not_billed_as_negative_units(make_account):
    # 250 units a month Jan..May, then no reading in June (estimated), then July's actual reading
    # shows only 50 units since May: the June estimate ran 200+ units ahead of the register.
    account = make_account(readings=steady(250, months=5))
    bill_month("2025-06", date(2025, 7, 2))
    june = Bill.objects.get(account=account, period_start=date(2025, 6, 1))
    assert june.units_status == "estimated" and june.units > 200
    metering.record_reading(
        actor=None, channel="system", source="amr", account=account, read_at=local(2025, 7, 31), kwh="2300"
    )
    before = ledger.balance(account=account)
    bill_month("2025-07", date(2025, 8, 2))
    july = Bill.objects.get(account=account, period_start=date(2025, 7, 1))
    # never negative units, no positive rebate
    assert july.units == 0 and july.rebate <= 0 and july.rebate_by_due_date <= 0
    # the estimated months' units less the withdrawn ones equal the register advance (2250 → 2300)
    assert june.units + july.units - july.units_withdrawn == D("50.000")
    # the credit is exactly the June bill recomputed on its corrected units
    corrected = services.bill_lines(june, units=june.units - july.units_withdrawn)
    credit = LedgerEntry.objects.get(account=account, entry_type=EntryType.ESTIMATE_WITHDRAWAL)
    assert credit.amount == corrected.total - june.total < 0
    assert credit.reference_id == july.bill_number
    assert ledger.balance(account=account) == before + july.total + credit.amount
    assert july.net_payable == july.arrears + july.total + credit.amount


def test_under_estimate_bills_the_rest(make_account):
    account = make_account(readings=steady(250, months=5))
    bill_month("2025-06", date(2025, 7, 2))
    june = Bill.objects.get(account=account, period_start=date(2025, 6, 1))
    metering.record_reading(
        actor=None, channel="system", source="amr", account=account, read_at=local(2025, 7, 31), kwh="2900"
    )
    bill_month("2025-07", date(2025, 8, 2))
    july = Bill.objects.get(account=account, period_start=date(2025, 7, 1))
    assert july.units_withdrawn == 0 and june.units + july.units == D("650.000")
    assert not LedgerEntry.objects.filter(account=account, entry_type=EntryType.ESTIMATE_WITHDRAWAL).exists()
