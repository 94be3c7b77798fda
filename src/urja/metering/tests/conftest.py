from datetime import datetime, timedelta

import pytest
from django.utils import timezone

from urja.core.calendars import IST
from urja.demo.testing import staff_user
from urja.metering import services


def days_ago(n: float) -> datetime:
    return timezone.now() - timedelta(days=n)


def local(y, m, d, h=12) -> datetime:
    return datetime(y, m, d, h, tzinfo=IST)


@pytest.fixture
def engineer(offices):
    return staff_user("engineer", offices["division1"])


@pytest.fixture
def billing_officer(offices):
    return staff_user("billing_officer", offices["division1"])


@pytest.fixture
def make_meter(db):
    counter = iter(range(1, 10_000))

    def make(serial=None, meter_type="static", **kw):
        return services.register_meter(
            serial=serial or f"TM{next(counter):06d}",
            make="Genus",
            meter_type=meter_type,
            actor=None,
            channel="system",
            **kw,
        )

    return make


@pytest.fixture
def installed(account, make_meter):
    """The account with a static meter installed on 1 Jan 2025 at register 1000."""
    meter = make_meter()
    inst = services.install_meter(
        account=account, meter=meter, actor=None, channel="system", installed_at=local(2025, 1, 1), initial_kwh="1000"
    )
    return inst


@pytest.fixture
def smart(account, make_meter):
    """The account with a smart prepaid meter installed three days ago (it takes remote commands)."""
    meter = make_meter(meter_type="smart_prepaid")
    services.install_meter(
        account=account, meter=meter, actor=None, channel="system", installed_at=timezone.now() - timedelta(days=3)
    )
    return meter
