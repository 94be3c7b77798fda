"""Reports API (mounted at /api/v1/reports/): energy accounting per node and month, DTs by loss, the
recompute of a month. Reads are scoped by office (out of scope answers like nonexistent)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from ninja import Router, Schema, Status

from urja.core.boundary import Quantity, Text
from urja.core.models import Role
from urja.core.permissions import require_role

from . import losses, selectors, services

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


class InspectionOut(Schema):
    id: int
    period: str
    consumer_number: str
    transformer: str | None
    reasons: list[dict]
    status: str
    outcome: str
    assessed_kwh: Decimal | None
    assessed_amount: Decimal | None


class BuildIn(Schema):
    period: Text(7)
    worst_dts: int = 20


class OutcomeIn(Schema):
    outcome: Text(16)
    remarks: Text(2000, multiline=True) = ""
    assessed_kwh: Quantity() | None = None
    rate: Quantity() | None = None
    channel: Text(20) = "field_agent"


def _inspection_out(i) -> dict:
    return {
        "id": i.pk,
        "period": i.period,
        "consumer_number": i.account.consumer_number,
        "transformer": i.transformer.code if i.transformer_id else None,
        "reasons": i.reasons,
        "status": i.status,
        "outcome": i.outcome,
        "assessed_kwh": i.assessed_kwh,
        "assessed_amount": i.assessed_amount,
    }


@router.get("/inspections", response=list[InspectionOut], summary="The inspection list (suspect accounts)")
def list_inspections(request, period: Text(7) = "", status: Text(10) = "open", limit: int = 200):
    require_role(request.user, Role.MANAGER, Role.ENGINEER, Role.FIELD_AGENT)
    rows = selectors.inspections(request.user, period=period, status=status)[: max(1, min(limit, 1000))]
    return [_inspection_out(i) for i in rows]


@router.post("/inspections/build", response={201: dict}, summary="Suspects of the worst DTs onto the list")
def build_inspections(request, payload: BuildIn):
    require_role(request.user, Role.MANAGER)
    created = losses.build_inspections(period=payload.period, worst_dts=max(1, min(payload.worst_dts, 500)))
    return Status(201, {"created": created})


@router.post("/inspections/{inspection_id}/outcome", response=InspectionOut, summary="Record what the inspection found")
def inspection_outcome(request, inspection_id: int, payload: OutcomeIn):
    require_role(request.user, Role.ENGINEER, Role.FIELD_AGENT, Role.MANAGER)
    item = selectors.inspection(request.user, inspection_id)
    done = losses.record_outcome(
        inspection=item,
        outcome=payload.outcome,
        actor=request.user,
        channel=payload.channel,
        remarks=payload.remarks,
        assessed_kwh=payload.assessed_kwh,
        rate=payload.rate,
    )
    return _inspection_out(done)
