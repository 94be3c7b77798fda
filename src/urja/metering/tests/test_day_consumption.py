"""One day's consumption for prepaid charging: from midnight registers, else from complete interval data."""

from datetime import date, datetime, time, timedelta
from decimal import Decimal

from urja.core.calendars import IST
from urja.metering import selectors, services
from urja.metering.models import IntervalReading

DAY = date(2025, 3, 10)
MIDNIGHT = datetime.combine(DAY, time(0), IST)


def read(account, at, kwh):
    return services.record_reading(
        actor=None, channel="system", source="smart_meter", read_at=at, kwh=kwh, account=account
    )


def test_registers_at_the_two_midnights(installed):
    account = installed.account
    read(account, MIDNIGHT - timedelta(minutes=2), "1200.5")
    read(account, MIDNIGHT + timedelta(hours=12), "1203")  # midday read: not a boundary
    read(account, MIDNIGHT + timedelta(days=1, minutes=3), "1207.25")
    assert selectors.day_consumption(account=account, day=DAY) == Decimal("6.75")


def test_day_not_complete_gives_none(installed):
    account = installed.account
    read(account, MIDNIGHT, "1200")
    assert selectors.day_consumption(account=account, day=DAY) is None  # no closing register yet
    read(account, MIDNIGHT + timedelta(days=1, hours=3), "1210")  # too far after midnight to bound the day
    assert selectors.day_consumption(account=account, day=DAY) is None


def test_intervals_when_they_cover_the_whole_day(installed):
    account, meter = installed.account, installed.meter
    rows = [
        IntervalReading(meter=meter, ts=MIDNIGHT + timedelta(minutes=30 * (i + 1)), minutes=30, kwh=Decimal("0.125"))
        for i in range(47)
    ]
    IntervalReading.objects.bulk_create(rows)
    assert selectors.day_consumption(account=account, day=DAY) is None  # 47 of 48 half-hours
    IntervalReading.objects.create(meter=meter, ts=MIDNIGHT + timedelta(days=1), minutes=30, kwh=Decimal("0.5"))
    IntervalReading.objects.create(meter=meter, ts=MIDNIGHT + timedelta(days=1, minutes=30), minutes=30, kwh=9)
    assert selectors.day_consumption(account=account, day=DAY) == Decimal("6.375")  # 47 × 0.125 + 0.5
