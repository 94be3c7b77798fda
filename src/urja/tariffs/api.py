"""API of tariffs: the public bill calculator and the tariff browser (read-only)."""

from datetime import date
from decimal import Decimal

from ninja import Field, Router, Schema

from urja.core.boundary import AmountOrZero, Day, Quantity, Text, bounds

from . import services
from .models import TariffVersion

router = Router(tags=["tariffs"])


Units = Quantity(places=3)  # kWh / kW / kVA: ASCII digits, bounded ("1e30" was a 500 here)
Code = Text(40)


class CalculateIn(Schema):
    period_start: Day
    period_end: Day
    units: Units = Decimal(0)
    category: Code = "domestic"
    sub_category: Code = "general"
    area: Code = "urban"
    supply_type: Code = ""
    schedule: Code = ""
    package_code: Code = ""
    sanctioned_load: Units = Decimal(1)
    load_unit: Code = "kW"
    recorded_md: Units | None = None
    tod_units: dict[Code, Units] = Field({}, max_length=12)
    meter_type: Code = "static"
    meter_owner: Code = "utility"
    metered: bool = True
    e_bill: bool = False
    prepaid: bool = False
    overdue_principal: AmountOrZero = Decimal(0)
    overdue_days: int = Field(0, ge=0, le=bounds().max_integer)


class TariffLineOut(Schema):
    code: str
    description: str
    group: str
    base: str | None
    base_unit: str
    rate: str | None
    rate_unit: str
    amount: str
    explanation: str
    segment: int


class CalculateOut(Schema):
    segments: list[dict]
    lines: list[TariffLineOut]
    totals: dict[str, str]
    total: str
    payable_by_due_date: str
    if_paid_digitally: str


@router.post("/calculate", response=CalculateOut, auth=None, summary="Bill calculator (public)")
def calculate(request, body: CalculateIn):
    """Line-by-line bill for a category (or schedule / mini-grid package), load, period and units."""
    bill = services.calculate(**body.dict())
    return services.bill_as_dict(bill)


class VersionOut(Schema):
    id: int
    schedule_code: str
    name: str
    category: str
    sub_categories: list[str]
    areas: list[str]
    effective_from: date
    effective_to: date | None
    package_id: str
    order: str
    regulator: str
    unconfirmed: list[str]


@router.get("/versions", response=list[VersionOut], auth=None, summary="Tariff versions (public)")
def versions(request, category: str = "", on: date | None = None):
    qs = TariffVersion.objects.select_related("order")
    if category:
        qs = qs.filter(category=category)
    if on:
        qs = services.versions_in_force(on, on).filter(pk__in=qs.values("pk"))
    return [
        {
            **{f: getattr(v, f) for f in ("id", "schedule_code", "name", "category", "sub_categories", "areas")},
            "effective_from": v.effective_from,
            "effective_to": v.effective_to,
            "package_id": v.package_id,
            "order": v.order.code,
            "regulator": v.order.regulator,
            "unconfirmed": v.unconfirmed,
        }
        for v in qs
    ]
