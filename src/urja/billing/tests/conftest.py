from datetime import date, datetime

import pytest

from urja.core.calendars import IST
from urja.customers.models import Account
from urja.demo.testing import domestic_account
from urja.metering import services as metering
from urja.tariffs import services as tariffs


def local(y, m, d, h=12) -> datetime:
    return datetime(y, m, d, h, tzinfo=IST)


@pytest.fixture
def tariffs_loaded(db):
    tariffs.load_all()


_serial = iter(range(1, 100_000))


def metered_account(section, *, start_kwh="1000", readings=(), mobile=None, **kw):
    """An account with a static meter installed on 1 Jan 2025 and readings [(datetime, kwh), ...]."""
    account = domestic_account(section, mobile=mobile, **kw)
    Account.objects.filter(pk=account.pk).update(connected_on=date(2025, 1, 1))
    account.refresh_from_db()
    meter = metering.register_meter(
        serial=f"BM{next(_serial):06d}", make="Genus", meter_type="static", actor=None, channel="system"
    )
    metering.install_meter(
        account=account,
        meter=meter,
        actor=None,
        channel="system",
        installed_at=local(2025, 1, 1),
        initial_kwh=start_kwh,
    )
    for when, kwh in readings:
        metering.record_reading(actor=None, channel="system", source="amr", account=account, read_at=when, kwh=kwh)
    return account


MONTH_ENDS = [(1, 31), (2, 28), (3, 31), (4, 30), (5, 31), (6, 30), (7, 31)]


def steady(per_month, *, start=1000, months=6, last=None):
    """Readings at each month end Jan..: `per_month` units a month; `last` overrides the final one."""
    values = [start + per_month * (i + 1) for i in range(months)]
    if last is not None:
        values[-1] = last
    return [(local(2025, m, d), str(v)) for (m, d), v in zip(MONTH_ENDS, values, strict=False)]


@pytest.fixture
def make_account(offices, tariffs_loaded):
    def make(**kw):
        kw.setdefault("readings", steady(250))
        return metered_account(offices[kw.pop("section", "section1")], **kw)

    return make
