"""The mini-grid site's API (/api/v1/minigrid/): the console's reads and the operator's and agent's
actions, calling the same services as the pages."""

from datetime import date
from decimal import Decimal

from ninja import Router, Schema, Status

from urja.core.boundary import Text

from . import selectors, services
from .models import PackageChange

router = Router(tags=["minigrid"])


class CustomerOut(Schema):
    customer_id: str
    consumer_number: str
    name: str
    status: str
    package_code: str
    prepaid: bool
    owed: Decimal
    flagged: bool


class SiteOut(Schema):
    code: str
    name: str
    credit_limit: Decimal
    customers: dict[str, int]
    to_deactivate: int
    open_package_changes: int


class AddCustomerIn(Schema):
    name: Text(160)
    mobile: Text(16) = ""
    address: Text(300) = ""
    package_code: Text(24)
    sub_category: Text(24) = "household"


class PackageChangeIn(Schema):
    to_package: Text(24)
    when: Text(12) = "now"


class PackageDecisionIn(Schema):
    approve: bool
    reason: Text(500) = ""


class PackageChangeOut(Schema):
    number: str
    customer_id: str
    from_package: str
    to_package: str
    status: str
    charge: Decimal
    effective_on: date | None
    rounds: int
    load_command: str | None
    hours_command: str | None


class RechargeIn(Schema):
    amount: Decimal
    mode: Text(16)
    idempotency_key: Text(100)
    reference: Text(64) = ""


class RechargeOut(Schema):
    receipt_number: str
    amount: Decimal
    balance: Decimal
    customer_id: str


class WaterIn(Schema):
    day: date
    litres_produced: int
    litres_sold: int
    kwh_used: Decimal
    revenue: Decimal


class SaleIn(Schema):
    appliance: Text(80)
    price: Decimal
    down_payment: Decimal = Decimal(0)
    instalments: int
    first_due: date


class PlanOut(Schema):
    id: int
    appliance: str
    price: Decimal
    status: str
    missed: int
    instalments: list[dict]


def _customer(c) -> dict:
    return selectors.customer_row(c)


def _change(ch: PackageChange) -> dict:
    return {
        "number": ch.number,
        "customer_id": ch.customer.customer_id,
        "from_package": ch.from_package,
        "to_package": ch.to_package,
        "status": ch.status,
        "charge": ch.charge,
        "effective_on": ch.effective_on,
        "rounds": ch.rounds,
        "load_command": ch.load_command.status if ch.load_command_id else None,
        "hours_command": ch.hours_command.status if ch.hours_command_id else None,
    }


@router.get("/site", response=SiteOut, summary="The site's console summary")
def site(request):
    s = services.site_of(request.user)
    return selectors.site_summary(s)


@router.get("/customers", response=list[CustomerOut], summary="Customers by status (active, inactive, banned)")
def customers(request, status: Text(20) = "", to_deactivate: bool = False):
    s = services.site_of(request.user)
    return [_customer(c) for c in selectors.customers(s, status=status, to_deactivate=to_deactivate)]


@router.post("/customers", response={201: CustomerOut}, summary="Add a customer (per-site ID, deposit)")
def add_customer(request, payload: AddCustomerIn):
    s = services.site_of(request.user)
    c = services.add_customer(actor=request.user, channel="api", site=s, **payload.dict())
    return Status(201, _customer(c))


@router.post(
    "/customers/{customer_id}/package-changes", response={201: PackageChangeOut}, summary="Request a package change"
)
def request_change(request, customer_id: str, payload: PackageChangeIn):
    s = services.site_of(request.user)
    c = services.find_customer(site=s, customer_id=customer_id)
    ch = services.request_package_change(actor=request.user, channel="api", customer=c, **payload.dict())
    return Status(201, _change(ch))


@router.get("/package-changes", response=list[PackageChangeOut], summary="The site's package changes")
def list_changes(request, status: Text(12) = ""):
    s = services.site_of(request.user)
    return [_change(ch) for ch in selectors.package_changes(s, status=status)]


@router.post(
    "/package-changes/{number}/decision", response=PackageChangeOut, summary="Approve or reject a package change"
)
def decide(request, number: str, payload: PackageDecisionIn):
    s = services.site_of(request.user, act="operate")
    ch = selectors.package_change(s, number)
    ch = services.decide(actor=request.user, channel="api", change=ch, approve=payload.approve, reason=payload.reason)
    return _change(ch)


@router.post("/customers/{customer_id}/recharge", response={201: RechargeOut}, summary="Recharge (cash, mobile wallet)")
def recharge(request, customer_id: str, payload: RechargeIn):
    s = services.site_of(request.user)
    c = services.find_customer(site=s, customer_id=customer_id)
    p = services.recharge(actor=request.user, customer=c, **payload.dict())
    return Status(
        201,
        {
            "receipt_number": p.receipt_number,
            "amount": p.amount,
            "customer_id": c.customer_id,
            "balance": -services.credit_of(c),
        },
    )


@router.post("/water", response={201: dict}, summary="Record the water unit's day")
def water(request, payload: WaterIn):
    s = services.site_of(request.user, act="operate")
    row = services.record_water_day(actor=request.user, site=s, **payload.dict())
    return Status(201, {"day": str(row.day), "litres_sold": row.litres_sold, "revenue": str(row.revenue)})


@router.post("/customers/{customer_id}/appliances", response={201: PlanOut}, summary="Sell an appliance on instalments")
def sell(request, customer_id: str, payload: SaleIn):
    s = services.site_of(request.user, act="operate")
    c = services.find_customer(site=s, customer_id=customer_id)
    plan = services.sell_appliance(actor=request.user, channel="api", customer=c, **payload.dict())
    return Status(201, selectors.plan_row(plan))
