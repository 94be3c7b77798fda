"""API of billing: bills and their lines, bill runs (console), revisions (maker-checker)."""

from datetime import date, datetime
from decimal import Decimal

from django.shortcuts import get_object_or_404
from ninja import Query, Router, Schema

from urja.core.boundary import Amount, ColumnText, Day, Text
from urja.core.errors import NotFound
from urja.core.permissions import require_role
from urja.customers.models import Account

from . import selectors, services
from .models import Bill, BillException, BillRevision, BillRun

router = Router(tags=["billing"])
RUN_ROLES = ("billing_officer", "manager")


class BillOut(Schema):
    bill_number: str
    kind: str
    consumer_number: str
    period_start: date
    period_end: date
    bill_date: date
    due_date: date | None
    units: Decimal
    units_status: str
    current_charges: Decimal
    subsidy: Decimal
    rebate: Decimal
    dps: Decimal
    total: Decimal
    arrears: Decimal
    net_payable: Decimal
    rebate_by_due_date: Decimal
    rebate_digital: Decimal
    pdf_url: str


def _bill_out(b: Bill) -> dict:
    return {
        **{f: getattr(b, f) for f in BillOut.model_fields if hasattr(b, f)},
        "consumer_number": b.account.consumer_number,
        "current_charges": b.current_charges,
        "pdf_url": f"/billing/bills/{b.bill_number}/pdf/",
    }


def _account_for(request, consumer_number: str) -> Account:
    return selectors.scoped_account(request.user, consumer_number)


@router.get("/accounts/{consumer_number}/bills", response=list[BillOut], summary="Bill history of an account")
def account_bills(request, consumer_number: str, months: int = Query(12, ge=1, le=1200)):
    account = _account_for(request, consumer_number)
    return [_bill_out(b) for b in services.bill_history(account=account, months=min(months, 60))]


class BillLineOut(Schema):
    code: str
    description: str
    group: str
    base: str | None
    rate: str | None
    rate_unit: str
    amount: str
    explanation: str


class BillDetailOut(BillOut):
    lines: list[BillLineOut]
    verification_code: str


@router.get("/bills/{bill_number}", response=BillDetailOut, summary="A bill with its line-by-line computation")
def bill_detail(request, bill_number: str):
    bill = selectors.scoped_bill(request.user, bill_number)
    lines = [ln.as_dict() for ln in services.bill_lines(bill).lines]
    return {**_bill_out(bill), "lines": lines, "verification_code": services.verification_code(bill)}


class RunIn(Schema):
    cycle: Text(12)
    period: Text(10)
    dry_run: bool = False
    bill_date: Day | None = None


@router.post("/runs", summary="Plan and start a bill run (or a dry run)")
def create_run(request, body: RunIn):
    require_role(request.user, *RUN_ROLES)
    run = services.create_run(
        cycle=body.cycle, period=body.period, dry_run=body.dry_run, bill_date=body.bill_date, actor=request.user,
        channel="api",
    )  # fmt: skip
    if run.dry_run:
        run = services.dry_run_report(run=run)
        return {**services.run_progress(run), "report": run.report}
    run = services.start_run(run=run, actor=request.user, enqueue=True)
    return services.run_progress(run)


@router.get("/runs/{run_id}", summary="Progress and totals of a bill run")
def run_detail(request, run_id: int):
    require_role(request.user, "billing_officer", "manager", "cre", "key_account_manager")
    return services.run_progress(get_object_or_404(BillRun, pk=run_id))


class ExceptionOut(Schema):
    id: int
    consumer_number: str
    kind: str
    message: str
    details: dict
    resolved: bool
    resolved_at: datetime | None
    resolution: str


def _exc_out(e: BillException) -> dict:
    return {"id": e.pk, "consumer_number": e.account.consumer_number, "kind": e.kind, "message": e.message,
            "details": e.details, "resolved": e.resolved, "resolved_at": e.resolved_at,
            "resolution": e.details.get("resolution", "")}  # fmt: skip


def _exceptions_in_scope(request, run_id: int):
    run = get_object_or_404(BillRun, pk=run_id)
    return selectors.exceptions_in_scope(request.user, run)


@router.get("/runs/{run_id}/exceptions", response=list[ExceptionOut], summary="A bill run's exceptions in your office")
def run_exceptions(request, run_id: int, resolved: bool | None = None):
    require_role(request.user, *RUN_ROLES, "cre", "key_account_manager")
    qs = _exceptions_in_scope(request, run_id).select_related("account")
    if resolved is not None:
        qs = qs.filter(resolved=resolved)
    return [_exc_out(e) for e in qs[:1000]]


class ExceptionResolveIn(Schema):
    note: Text(multiline=True)


@router.post(
    "/runs/{run_id}/exceptions/{exception_id}/resolve", response=ExceptionOut, summary="Resolve a bill-run exception"
)
def resolve_exception(request, run_id: int, exception_id: int, body: ExceptionResolveIn):
    require_role(request.user, *RUN_ROLES)
    # outside the officer's office: the same 404 as an exception that does not exist
    exc = _exceptions_in_scope(request, run_id).select_related("account").filter(pk=exception_id).first()
    if exc is None:
        raise NotFound(f"no exception {exception_id} of run {run_id}", code="exception_not_found")
    return _exc_out(services.resolve_exception(exception=exc, actor=request.user, note=body.note, channel="api"))


@router.post("/runs/{run_id}/rebill", summary="Bill a run's open exceptions again (after the causes were fixed)")
def rebill_exceptions(request, run_id: int):
    require_role(request.user, *RUN_ROLES)
    run = services.rebill_exceptions(run=get_object_or_404(BillRun, pk=run_id), actor=request.user, channel="api")
    return services.run_progress(services.start_run(run=run, actor=request.user, enqueue=True))


class RevisionIn(Schema):
    bill_number: Text(40)
    kind: Text(20)
    amount: Amount
    reason: Text(multiline=True)


class RevisionOut(Schema):
    id: int
    bill_number: str
    kind: str
    amount: Decimal
    status: str
    note_number: str


def _rev_out(r: BillRevision) -> dict:
    return {"id": r.pk, "bill_number": r.bill.bill_number, "kind": r.kind, "amount": r.amount, "status": r.status,
            "note_number": r.note_number}  # fmt: skip


@router.post("/revisions", response=RevisionOut, summary="Propose a credit/debit note (maker)")
def propose_revision(request, body: RevisionIn):
    require_role(request.user, "billing_officer", "manager")
    bill = selectors.scoped_bill(request.user, body.bill_number)
    rev = services.propose_revision(bill=bill, kind=body.kind, amount=body.amount, reason=body.reason,
                                    actor=request.user, channel="api")  # fmt: skip
    return _rev_out(rev)


class RevisionDecisionIn(Schema):
    approve: bool
    note: ColumnText(BillRevision, "decision_note", multiline=True) = ""


@router.post("/revisions/{revision_id}/decide", response=RevisionOut, summary="Approve or reject (checker)")
def decide_revision(request, revision_id: int, body: RevisionDecisionIn):
    require_role(request.user, "billing_officer", "manager")
    rev = selectors.scoped_revision(request.user, revision_id)  # out of scope: the same 404 as none
    return _rev_out(services.decide_revision(revision=rev, approve=body.approve, actor=request.user, note=body.note,
                                             channel="api"))  # fmt: skip
