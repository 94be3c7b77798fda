"""Test factories of the reports app: a small network, bills and payments as stored rows."""

from __future__ import annotations

import calendar
from datetime import date, datetime
from decimal import Decimal
from itertools import count

from urja.billing.models import Bill
from urja.core.calendars import IST
from urja.demo import testing
from urja.metering import boundary
from urja.metering import services as metering
from urja.metering.models import BoundaryReading
from urja.network.models import DistributionTransformer, Feeder
from urja.payments.models import Payment, PaymentStatus

_n = count(1)


def feeder(office, code: str | None = None) -> Feeder:
    code = code or f"F{next(_n)}"
    return Feeder.objects.create(code=code, name=f"{code} feeder", office=office)


def dt(feeder_: Feeder, code: str | None = None, kva: int = 100) -> DistributionTransformer:
    return DistributionTransformer.objects.create(code=code or f"DT{next(_n)}", feeder=feeder_, capacity_kva=kva)


def account(section, *, transformer=None, feeder_=None, category="domestic", load="2", **kw):
    n = next(_n)
    if transformer is not None and feeder_ is None:
        feeder_ = transformer.feeder
    return testing.domestic_account(
        section,
        name=f"Consumer {n}",
        mobile=f"94370{n:05d}",
        load=load,
        category=category,
        feeder=feeder_,
        transformer=transformer,
        **kw,
    )


def bill(acc, *, period: str, units, total, status="actual", metered=True, prepaid=False, kind="bill", load=None):
    y, m = (int(x) for x in period.split("-"))
    start, end = date(y, m, 1), date(y, m, calendar.monthrange(y, m)[1])
    return Bill.objects.create(
        account=acc,
        kind=kind,
        bill_number=f"B{next(_n):08d}",
        period_start=start,
        period_end=end,
        bill_date=end,
        tariff_versions="1",
        units=Decimal(str(units)),
        units_status=status,
        metered=metered,
        prepaid=prepaid,
        sanctioned_load=Decimal(str(load if load is not None else acc.sanctioned_load)),
        load_unit=acc.load_unit,
        total=Decimal(str(total)),
        net_payable=Decimal(str(total)),
        created_at=datetime(y, m, 28, tzinfo=IST),
    )


def payment(acc, *, amount, at: datetime, status=PaymentStatus.POSTED) -> Payment:
    return Payment.objects.create(
        channel="counter",
        idempotency_key=f"P{next(_n)}",
        account=acc,
        consumer_number=acc.consumer_number,
        amount=Decimal(str(amount)),
        status=status,
        received_at=at,
    )


def boundary_meter(*, node_dt=None, node_feeder=None, installed_at, initial="0", mf="1", readings=()):
    meter = metering.register_meter(
        serial=f"BM{next(_n):06d}", make="Secure", meter_type="static", actor=None, channel="system"
    )
    if mf != "1":
        meter.multiplying_factor = Decimal(mf)
        meter.save(update_fields=["multiplying_factor"])
    inst = boundary.install_boundary_meter(
        meter=meter,
        transformer=node_dt,
        feeder=node_feeder,
        actor=None,
        channel="system",
        installed_at=installed_at,
        initial_kwh=initial,
    )
    BoundaryReading.objects.bulk_create(
        [
            BoundaryReading(meter=meter, installation=inst, read_at=at, source="amr", kwh=Decimal(str(kwh)))
            for at, kwh in readings
        ]
    )
    return inst
