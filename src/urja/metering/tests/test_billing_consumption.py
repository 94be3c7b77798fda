from datetime import date
from decimal import Decimal

import pytest

from urja.core.errors import DomainError
from urja.metering import selectors, services
from urja.metering.models import Reading, ReadingSource, ReadingStatus

from .conftest import days_ago, local


def read(account, kwh, when, **kw):
    kw.setdefault("source", "amr")
    return services.record_reading(actor=None, channel="system", account=account, read_at=when, kwh=kwh, **kw)


def test_actual_consumption_for_a_period(account, make_meter):
    services.install_meter(
        account=account, meter=make_meter(), actor=None, channel="system", installed_at=days_ago(93), initial_kwh="1000"
    )
    read(account, "1100", days_ago(62))
    read(account, "1220", days_ago(31), md_kw="1.5")
    result = services.billing_consumption(
        account=account, period_start=days_ago(45).date(), period_end=days_ago(20).date()
    )
    assert result.kwh == Decimal("120.000")
    assert result.status == "actual"
    assert result.md_kw == Decimal("1.5")
    assert result.held is False and result.exceptions == []
    assert result.meter_rent_applies is True


def test_spike_goes_to_review_and_holds_the_bill(installed):
    account = installed.account
    read(account, "1100", local(2025, 2, 15))
    read(account, "1200", local(2025, 3, 15))
    spike = read(account, "1900", local(2025, 4, 15))
    assert spike.vee_status == "review"
    assert [e["rule"] for e in spike.exceptions] == ["spike"]
    result = services.billing_consumption(account=account, period_start=date(2025, 3, 15), period_end=date(2025, 4, 30))
    assert result.held is True
    assert result.status == "estimated"


def test_missing_reading_is_estimated_and_reconciled(installed):
    account = installed.account
    for month, kwh in [(2, "1100"), (3, "1200"), (4, "1300"), (5, "1400")]:
        read(account, kwh, local(2025, month, 15))
    # No reading in the period: average of the previous 3 actual months (normalised to 30 days),
    # pro-rated to the 31 days since the last reading.
    result = services.billing_consumption(account=account, period_start=date(2025, 5, 15), period_end=date(2025, 6, 15))
    assert result.status == "estimated"
    assert result.estimation_method == "average"
    est = Reading.objects.get(pk=result.closing["id"])
    assert est.source == ReadingSource.ESTIMATED
    march, april, may = Decimal(100) / 28 * 30, Decimal(100) / 31 * 30, Decimal(100)
    monthly = sum(m.quantize(Decimal("0.001")) for m in (march, april, may)) / 3
    assert result.kwh == (monthly.quantize(Decimal("0.001")) * 31 / 30).quantize(Decimal("0.001"))
    assert est.kwh == 1400 + result.kwh
    actual = read(account, "1450", local(2025, 6, 20))
    est.refresh_from_db()
    assert est.reconciled_by_id == actual.pk
    nxt = services.billing_consumption(account=account, period_start=date(2025, 6, 15), period_end=date(2025, 7, 15))
    assert nxt.status == "actual"
    # 1450 actual vs the estimated register: never negative units — 0 to bill, the surplus withdrawn
    assert nxt.kwh == 0 and nxt.withdrawn == result.kwh - Decimal("50.000") > 0
    assert nxt.reconciliation["estimated_kwh_withdrawn"] == nxt.withdrawn
    assert nxt.reconciliation["actual_kwh_since_last_actual"] == Decimal("50.000")
    assert nxt.reconciliation["estimated_kwh_already_billed"] == result.kwh


def test_door_locked_is_provisional_last_month(installed):
    account = installed.account
    read(account, "1100", local(2025, 3, 15))
    read(account, "1180", local(2025, 4, 15))
    read(account, "1220", local(2025, 5, 15))
    r = services.record_reading(
        actor=None,
        channel="system",
        account=account,
        read_at=local(2025, 6, 15),
        source="staff",
        status=ReadingStatus.DOOR_LOCKED,
    )
    assert r.kwh is None
    result = services.billing_consumption(account=account, period_start=date(2025, 5, 31), period_end=date(2025, 6, 30))
    assert result.status == "provisional"
    assert result.estimation_method == "last_month"
    assert result.kwh == Decimal("41.333")  # May: 40 units in 30 days, pro-rated to the 31 days since


def test_no_meter_is_a_clear_error(account):
    with pytest.raises(DomainError) as err:
        services.billing_consumption(account=account, period_start=days_ago(30).date(), period_end=days_ago(1).date())
    assert err.value.code == "no_meter"


def test_meter_rent_not_applied_to_consumer_owned_meter(account, make_meter):
    meter = make_meter(ownership="consumer_bought")
    services.install_meter(account=account, meter=meter, actor=None, channel="system", installed_at=days_ago(5))
    assert selectors.meter_rent_applies(account) is False
