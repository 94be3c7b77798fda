"""API of tariffs: the public bill calculator and the tariff browser (read-only)."""

from datetime import date
from decimal import Decimal

from ninja import Router, Schema

from . import services
from .models import TariffVersion

router = Router(tags=["tariffs"])


class CalculateIn(Schema):
    period_start: date
    period_end: date
    units: Decimal = Decimal(0)
    category: str = "domestic"
    sub_category: str = "general"
    area: str = "urban"
    supply_type: str = ""
    schedule: str = ""
    package_code: str = ""
    sanctioned_load: Decimal = Decimal(1)
    load_unit: str = "kW"
    recorded_md: Decimal | None = None
    tod_units: dict[str, Decimal] = {}
    meter_type: str = "static"
    meter_owner: str = "utility"
    metered: bool = True
    e_bill: bool = False
    prepaid: bool = False
    overdue_principal: Decimal = Decimal(0)
    overdue_days: int = 0


class LineOut(Schema):
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
    lines: list[LineOut]
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
