"""Reports API (mounted at /api/v1/reports/): energy accounting per node and month, DTs by loss, the
recompute of a month. Reads are scoped by office (out of scope answers like nonexistent)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from ninja import Router, Schema, Status

from urja.core.boundary import Text
from urja.core.models import Role
from urja.core.permissions import require_role

from . import selectors, services

router = Router(tags=["reports"])

READERS = (Role.MANAGER, Role.ENGINEER, Role.BILLING_OFFICER)


class Flag(Schema):
    code: str
    message: str


class BalanceOut(Schema):
    period: str
    level: str
    node_id: int
    code: str
    name: str
    parent_level: str
    parent_id: int | None
    category: str
    input_kwh: Decimal | None
    input_status: str
    flags: list[Flag]
    metered_kwh: Decimal
    estimated_kwh: Decimal
    assessed_kwh: Decimal
    prepaid_kwh: Decimal
    billed_kwh: Decimal
    billed_amount: Decimal
    collected_amount: Decimal
    accounts: int
    billing_efficiency: Decimal | None
    collection_efficiency: Decimal | None
    atc_loss: Decimal | None


class NodeOut(Schema):
    node: BalanceOut
    children: list[BalanceOut]
    categories: list[BalanceOut]
    trend: list[BalanceOut]


class ComputeIn(Schema):
    period: Text(7)


class RunOut(Schema):
    period: str
    computed_at: datetime
    seconds: float
    rows: int
    flagged: int
    totals: dict


@router.get("/energy", response=list[BalanceOut], summary="The top nodes you may see for a month")
def energy_top(request, period: Text(7) = ""):
    require_role(request.user, *READERS)
    return selectors.top_nodes(request.user, period=period or selectors.latest_period())


@router.get("/energy/{level}/{node_id}", response=NodeOut, summary="A node's month, its children and 12-month trend")
def energy_node(request, level: str, node_id: int, period: Text(7) = ""):
    require_role(request.user, *READERS)
    period = period or selectors.latest_period()
    here = selectors.node(request.user, period=period, level=level, node_id=node_id)
    points = selectors.trend(request.user, period=period, level=level, node_id=node_id)
    return {
        "node": here,
        "children": selectors.children(request.user, period=period, parent=here),
        "categories": selectors.categories(request.user, period=period, parent=here),
        "trend": [p["row"] for p in points if p["row"] is not None],
    }


@router.get("/dt-losses", response=list[BalanceOut], summary="DTs by AT&C loss, worst first")
def dt_losses(request, period: Text(7) = "", limit: int = 50):
    require_role(request.user, *READERS)
    return selectors.ranked_dts(request.user, period=period or selectors.latest_period(), limit=max(1, min(limit, 500)))


@router.post("/energy/compute", response={201: RunOut}, summary="Recompute a month's energy accounting (idempotent)")
def compute(request, payload: ComputeIn):
    require_role(request.user, Role.MANAGER)
    return Status(201, services.compute_period(period=payload.period))
