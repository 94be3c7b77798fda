"""The prepaid day's charge reads its kWh from metering (payments.seams calls metering directly)."""

from datetime import date, datetime, time, timedelta
from decimal import Decimal

from urja.core.calendars import IST
from urja.metering import services as metering
from urja.metering.tests.conftest import installed, make_meter  # noqa: F401 (metering's fixtures)
from urja.payments import seams

DAY = date(2025, 3, 10)
MIDNIGHT = datetime.combine(DAY, time(0), IST)


def read(account, at, kwh):
    return metering.record_reading(
        actor=None, channel="system", source="smart_meter", read_at=at, kwh=kwh, account=account
    )


def test_prepaid_seam_reads_metering(installed):  # noqa: F811
    account = installed.account
    read(account, MIDNIGHT, "1200")
    read(account, MIDNIGHT + timedelta(days=1), "1204.5")
    assert seams.day_consumption(account=account, day=DAY) == Decimal("4.5")
