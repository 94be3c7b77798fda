"""API of payments (mounted at /api/v1/payments/ by core.api). Thin: validation in schemas,
decisions in services."""

from datetime import date, datetime
from decimal import Decimal

from django.db.models import Q
from django.shortcuts import get_object_or_404
from ninja import Field, File, Form, Router, Schema
from ninja.files import UploadedFile

from urja.core import boundary
from urja.core.boundary import Amount, AmountOrZero, ColumnText, Limit, PastMoment, Text, cap_limit
from urja.core.errors import DomainError, Forbidden, NotFound
from urja.core.models import Role
from urja.core.permissions import require_role, role_of, scope_by_office
from urja.core.scope import (
    account_q,
    collect_channels,
    get_scoped,
    office_q,
    scope_accounts,
    scope_by_creator,
    staff_in_scope,
)
from urja.customers.models import Account

from . import selectors, services
from .models import CashierSession, CollectionCase, ImportBatch, PaygDevice, Payment, PaymentChannel

router = Router(tags=["payments"])

STAFF = (Role.CRE, Role.BILLING_OFFICER, Role.MANAGER, Role.FIELD_AGENT, Role.KEY_ACCOUNT_MANAGER)
BACKOFFICE = (Role.BILLING_OFFICER, Role.MANAGER)
# channels whose payments staff or devices post directly (the rest arrive by gateway or file)
DIRECT_CHANNELS = {PaymentChannel.COUNTER, PaymentChannel.FIELD_AGENT, PaymentChannel.CARD, PaymentChannel.ATP}


ConsumerNumber = Text(40)  # a lookup key: longer than any consumer number, no control characters


class PaymentIn(Schema):
    consumer_number: ConsumerNumber
    amount: Amount
    idempotency_key: ColumnText(Payment, "idempotency_key")
    channel: Text(40) = PaymentChannel.COUNTER
    method: Text(40) = "cash"
    reference: ColumnText(Payment, "reference") = ""
    instrument_number: ColumnText(Payment, "instrument_number") = ""
    instrument_bank: ColumnText(Payment, "instrument_bank") = ""
    instrument_date: boundary.Day | None = None
    received_at: PastMoment | None = None


def _check_received_at(item: "PaymentIn") -> None:
    """Not before the account existed (the schema already refused the future and absurd years)."""
    if item.received_at is not None:
        account = selectors.find_account(item.consumer_number)
        boundary.check_moment(item.received_at, not_before=boundary.account_floor(account))


class PaymentOut(Schema):
    id: int
    channel: str
    method: str
    consumer_number: str
    amount: Decimal
    status: str
    received_at: datetime
    receipt_number: str | None
    verification_code: str
    balance_after: Decimal | None
    allocation: dict
    suspense_reason: str
    payg_token: str
    reference: str


class AgentPaymentIn(PaymentIn):
    # amount and time checked per item (by the service and _check_received_at): one bad item is that
    # item's error, not a 422 for the whole offline batch
    amount: Text(32)
    received_at: datetime | None = None


class AgentBatchIn(Schema):
    payments: list[AgentPaymentIn]


class AgentItemOut(Schema):
    idempotency_key: str
    ok: bool
    payment: PaymentOut | None = None
    code: str = ""
    message: str = ""


def payments_in_scope(user):
    """Payments of the accounts in the user's scope; a collector also sees the payments taken at its
    offices (a counter takes money for any account of the utility and prints its receipt)."""
    q = account_q(user, "account__")
    if collect_channels(user):
        q |= office_q(user, "office__path") | Q(collected_by=user)
    return Payment.objects.filter(q)


def _scoped_payment(request, payment_id: int) -> Payment:
    require_role(request.user, *STAFF)
    missing = NotFound("no such payment", code="payment_not_found")
    return get_scoped(payments_in_scope(request.user), missing, pk=payment_id)


def _scoped_account(request, consumer_number: str) -> Account:
    """The account in the caller's scope; out of scope answers exactly like an unknown number."""
    number = (consumer_number or "").strip().upper()
    accounts = scope_accounts(request.user, Account.objects.select_related("consumer", "section"))
    return get_scoped(accounts, selectors.unknown_account(number), consumer_number=number)


@router.post("/payments", response=PaymentOut)
def take_payment(request, body: PaymentIn):
    """Counter, card, ATP and field-agent payments (the key makes a retry safe)."""
    require_role(request.user, *STAFF)
    if body.channel not in DIRECT_CHANNELS:
        raise Forbidden(
            "online, UPI and wallet payments come through /orders and the gateway; files through /imports",
            code="channel_not_direct",
        )
    _check_received_at(body)
    return services.take_payment(actor=request.user, **body.dict())


@router.post("/agent/sync", response=list[AgentItemOut])
def agent_sync(request, body: AgentBatchIn):
    """Field-agent app: upload payments taken offline. Each item has its client-generated key; items
    already uploaded return the stored payment; one bad item does not stop the others."""
    require_role(request.user, Role.FIELD_AGENT)
    out = []
    for item in body.payments:
        data = item.dict() | {"channel": PaymentChannel.FIELD_AGENT}
        try:
            _check_received_at(item)
            payment = services.take_payment(actor=request.user, **data)
            out.append({"idempotency_key": item.idempotency_key, "ok": True, "payment": payment})
        except DomainError as exc:
            out.append({"idempotency_key": item.idempotency_key, "ok": False, "code": exc.code, "message": exc.message})
    return out


@router.get("/payments/{payment_id}", response=PaymentOut)
def get_payment(request, payment_id: int):
    return _scoped_payment(request, payment_id)


@router.get("/accounts/{consumer_number}/payments", response=list[PaymentOut])
def account_payments(request, consumer_number: str, limit: int = Limit(50)):
    require_role(request.user, *STAFF)
    account = _scoped_account(request, consumer_number)
    return account.payments.all()[: cap_limit(limit)]


class PaymentReasonIn(Schema):
    reason: Text(multiline=True)


@router.post("/payments/{payment_id}/bounce", response=PaymentOut)
def bounce(request, payment_id: int, body: PaymentReasonIn):
    require_role(request.user, *BACKOFFICE, Role.CRE)
    return services.bounce_cheque(actor=request.user, payment=_scoped_payment(request, payment_id), reason=body.reason)


class SuspenseResolveIn(Schema):
    consumer_number: ConsumerNumber
    reason: Text(multiline=True)


@router.post("/payments/{payment_id}/resolve", response=PaymentOut)
def resolve_suspense(request, payment_id: int, body: SuspenseResolveIn):
    require_role(request.user, *BACKOFFICE)
    _scoped_account(request, body.consumer_number)  # money goes only to an account in scope
    return services.resolve_suspense(
        actor=request.user,
        payment=_scoped_payment(request, payment_id),
        consumer_number=body.consumer_number,
        reason=body.reason,
    )


@router.post("/payments/{payment_id}/refund-suspense", response=PaymentOut)
def refund_suspense(request, payment_id: int, body: PaymentReasonIn):
    require_role(request.user, *BACKOFFICE)
    return services.refund_suspense(
        actor=request.user, payment=_scoped_payment(request, payment_id), reason=body.reason
    )


@router.get("/suspense", response=list[PaymentOut])
def suspense(request):
    require_role(request.user, *BACKOFFICE)
    return scope_by_office(request.user, Payment.objects.filter(status="in_suspense"), "office__path")[:500]


class RefundIn(Schema):
    consumer_number: ConsumerNumber
    amount: Amount
    reason: Text(multiline=True)
    idempotency_key: ColumnText(Payment, "idempotency_key")


class EntryOut(Schema):
    id: int
    entry_type: str
    amount: Decimal
    posted_at: datetime
    description: str


@router.post("/refunds", response=EntryOut)
def refund(request, body: RefundIn):
    require_role(request.user, *BACKOFFICE)
    _scoped_account(request, body.consumer_number)  # another office's account answers like an unknown one
    return services.refund(actor=request.user, **body.dict())


# --- receipts (public) -------------------------------------------------------------------------


class VerifyOut(Schema):
    valid: bool
    reason: str
    receipt_number: str
    consumer_number: str = ""
    amount: Decimal | None = None
    day: date | None = None
    status: str = ""


@router.get("/receipts/verify", response=VerifyOut, auth=None)
def verify_receipt(request, number: str, code: str, amount: str | None = None):
    """Anyone can check a receipt: its number, the printed verification code and (optionally) amount."""
    return selectors.verify_receipt(receipt_number=number, code=code, amount=amount).__dict__


# --- online gateway and UPI ----------------------------------------------------------------------


class OrderIn(Schema):
    consumer_number: ConsumerNumber
    amount: Amount
    channel: str = PaymentChannel.ONLINE


class GatewayOrderOut(Schema):
    reference: str
    amount: Decimal
    status: str
    channel: str
    pay_url: str
    upi_intent: str


def _order_out(order) -> dict:
    return {
        "reference": order.reference,
        "amount": order.amount,
        "status": order.status,
        "channel": order.channel,
        "pay_url": f"/payments/gateway/dev/{order.reference}/",
        "upi_intent": selectors.upi_intent(order),
    }


@router.post("/orders", response=GatewayOrderOut, auth=None)
def create_order(request, body: OrderIn):
    """Start an online / UPI payment for a consumer number (quick pay; no login needed)."""
    # the same answer whether or not the number exists or its connection is closed (no existence oracle)
    order = services.create_order(
        consumer_number=body.consumer_number, amount=body.amount, channel=body.channel, anonymous=True
    )
    return _order_out(order)


@router.get("/orders/{reference}", response=GatewayOrderOut, auth=None)
def get_order(request, reference: str):
    from .models import GatewayOrder

    return _order_out(get_object_or_404(GatewayOrder, reference=reference.upper()))


class WebhookOut(Schema):
    event_id: str
    outcome: str
    payment_id: int | None
    replay: bool


@router.post("/gateway/{gateway}/webhook", response=WebhookOut, auth=None)
def gateway_webhook(request, gateway: str):
    """Gateway callback: header `X-Urja-Signature: t=<unix>,v1=<hex hmac-sha256(secret, "t.body")>`."""
    result = services.handle_webhook(
        gateway=gateway, body=request.body, signature=request.headers.get("X-Urja-Signature", "")
    )
    return result.__dict__


class UpiIn(Schema):
    reference: Text(64)
    amount: Amount
    utr: Text(64)


@router.post("/upi/reconcile", response=PaymentOut)
def upi_reconcile(request, body: UpiIn):
    require_role(request.user, *BACKOFFICE)
    return services.reconcile_upi(actor=request.user, **body.dict())


# --- settlement files ----------------------------------------------------------------------------


class PaymentFileOut(Schema):
    id: int
    source: str
    filename: str
    sha256: str
    imported_at: datetime
    rows: int
    posted: int
    duplicates: int
    suspense: int
    errors: int
    total_posted: Decimal
    report: list


@router.post("/imports", response=PaymentFileOut)
def import_file(request, source: Form[str], file: File[UploadedFile]):
    """Upload a bank / agency settlement CSV (row_key, consumer_number, amount, paid_at[, reference, method])."""
    require_role(request.user, *BACKOFFICE)
    return services.import_settlement(
        actor=request.user, source=source, filename=file.name or "upload.csv", stream=file.chunks()
    )


@router.get("/imports/{batch_id}", response=PaymentFileOut)
def get_import(request, batch_id: int):
    require_role(request.user, *BACKOFFICE)
    batches = scope_by_creator(request.user, ImportBatch.objects.all(), "imported_by")
    return get_scoped(batches, NotFound("no such import", code="import_not_found"), pk=batch_id)


# --- cashier sessions, deposits, reconciliation ---------------------------------------------------


class SessionIn(Schema):
    opening_balance: AmountOrZero


class SessionCloseIn(Schema):
    counted_cash: AmountOrZero


class SessionOut(Schema):
    id: int
    status: str
    opened_at: datetime
    opening_balance: Decimal
    closed_at: datetime | None
    expected_cash: Decimal | None
    counted_cash: Decimal | None
    shortage: Decimal | None


@router.post("/sessions", response=SessionOut)
def open_session(request, body: SessionIn):
    return services.open_session(actor=request.user, opening_balance=body.opening_balance)


@router.post("/sessions/{session_id}/close", response=SessionOut)
def close_session(request, session_id: int, body: SessionCloseIn):
    sessions = CashierSession.objects.filter(Q(cashier=request.user) | office_q(request.user, "office__path"))
    session = get_scoped(sessions, NotFound("no such session", code="session_not_found"), pk=session_id)
    return services.close_session(actor=request.user, session=session, counted_cash=body.counted_cash)


class DepositIn(Schema):
    agent_id: int = Field(..., ge=1, le=2**31 - 1)
    amount: Amount
    reference: Text(64)


class DepositOut(Schema):
    id: int
    amount: Decimal
    reference: str
    deposited_at: datetime
    in_hand: Decimal


@router.post("/deposits", response=DepositOut)
def deposit(request, body: DepositIn):
    from django.contrib.auth import get_user_model

    require_role(request.user, *BACKOFFICE, Role.CRE)
    agents = staff_in_scope(request.user, get_user_model().objects.all())
    agent = get_scoped(agents, NotFound("no such agent", code="agent_not_found"), pk=body.agent_id)
    record = services.record_deposit(actor=request.user, agent=agent, amount=body.amount, reference=body.reference)
    return {
        "id": record.pk,
        "amount": record.amount,
        "reference": record.reference,
        "deposited_at": record.deposited_at,
        "in_hand": selectors.cash_in_hand(agent=agent),
    }


@router.get("/agents/me/cash")
def my_cash(request):
    require_role(request.user, Role.FIELD_AGENT)
    limit = request.user.staff.cash_limit
    return {"in_hand": str(selectors.cash_in_hand(agent=request.user)), "limit": str(limit) if limit else None}


@router.get("/reports/handover")
def handover(request, day: boundary.Day):
    require_role(request.user, *BACKOFFICE, Role.CRE)
    from urja.core.permissions import office_path_of

    report = selectors.handover_report(day=day, office_path=office_path_of(request.user) or "")
    return _jsonable(report)


def _jsonable(value):
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, Decimal | date):
        return str(value)
    return value


# --- prepaid -----------------------------------------------------------------------------------


class TokenOut(Schema):
    count: int
    kind: str
    days: int
    token: str
    issued_at: datetime


class PrepaidOut(Schema):
    consumer_number: str
    balance: Decimal
    supply: str
    charged_through: date | None
    tokens: list[TokenOut]


@router.get("/prepaid/{consumer_number}", response=PrepaidOut)
def prepaid(request, consumer_number: str):
    """A prepaid wallet: the consumer's own, or one in the staff member's scope. Reading it creates nothing."""
    if role_of(request.user) != Role.CONSUMER:
        require_role(request.user, *STAFF)
    account = _scoped_account(request, consumer_number)
    if not account.is_prepaid:
        raise DomainError("the account is not prepaid", code="not_prepaid")
    from .models import PaygToken, PrepaidWallet

    wallet = PrepaidWallet.objects.filter(account=account).first() or PrepaidWallet(account=account)

    tokens = PaygToken.objects.filter(device__account=account).order_by("-issued_at")[:50]
    return {
        "consumer_number": account.consumer_number,
        "balance": selectors.wallet_balance(account=account),
        "supply": wallet.supply,
        "charged_through": wallet.charged_through,
        "tokens": list(tokens),
    }


class DeviceIn(Schema):
    consumer_number: ConsumerNumber
    serial: ColumnText(PaygDevice, "serial")
    secret_hex: Text(128)
    starting_code: int | None = Field(None, ge=0, le=2**31 - 1)
    token_count: int = Field(1, ge=0, le=2**31 - 1)


class DeviceOut(Schema):
    id: int
    serial: str
    token_count: int
    active: bool


@router.post("/prepaid/devices", response=DeviceOut)
def register_device(request, body: DeviceIn):
    require_role(request.user, *BACKOFFICE)
    account = _scoped_account(request, body.consumer_number)
    return services.register_payg_device(
        actor=request.user,
        account=account,
        serial=body.serial,
        secret_hex=body.secret_hex,
        starting_code=body.starting_code,
        token_count=body.token_count,
    )


class TokenIn(Schema):
    days: int = Field(0, ge=0, le=boundary.bounds().max_window_days)
    kind: Text(40) = "add_time"


@router.post("/prepaid/devices/{serial}/tokens", response=TokenOut)
def issue_token(request, serial: str, body: TokenIn):
    """A manual token (set time / unlock) — normal tokens come with a payment."""
    require_role(request.user, Role.MANAGER)
    devices = scope_accounts(request.user, PaygDevice.objects.all(), "account__")
    device = get_scoped(devices, NotFound("no such device", code="device_not_found"), serial=serial)
    return services.issue_payg_token(actor=request.user, device=device, days=body.days, kind=body.kind)


# --- collections -------------------------------------------------------------------------------


class CaseOut(Schema):
    id: int
    consumer_number: str
    reason: str
    status: str
    amount_due: Decimal
    flagged_on: date
    notice_number: str
    notice_date: date | None
    pay_by: date | None


def _case_out(case) -> dict:
    return {
        **{
            f: getattr(case, f)
            for f in ("id", "reason", "status", "amount_due", "flagged_on", "notice_number", "notice_date", "pay_by")
        },
        "consumer_number": case.account.consumer_number,
    }


@router.get("/collections", response=list[CaseOut])
def collections(request, status: str | None = None):
    """Flagged accounts; `status=due` is the service desk's disconnection list."""
    require_role(request.user, *STAFF)
    qs = scope_accounts(request.user, CollectionCase.objects.select_related("account"), "account__")
    if status:
        qs = qs.filter(status=status)
    return [_case_out(c) for c in qs[:1000]]


class SweepIn(Schema):
    office: str | None = None  # an office code inside the caller's scope; default: the caller's office


class JobOut(Schema):
    id: int
    kind: str
    status: str
    stage: str
    done: int
    total: int
    percent: float
    result: dict
    error: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


@router.post("/collections/sweep", response={202: JobOut}, summary="Start the collections sweep (background job)")
def collections_sweep(request, body: SweepIn | None = None):
    """Flag overdue accounts, settle paid cases and send disconnection notices for the caller's office
    (or an office below it) as a background job: answers 202 at once with the job to poll. While a
    sweep of the same office is queued or running, that job is returned instead of a second one."""
    from urja.core import jobs
    from urja.core.permissions import office_path_of
    from urja.network.models import Office

    require_role(request.user, Role.MANAGER)
    scope = office_path_of(request.user) or ""
    if body and body.office:
        office = Office.objects.filter(code=body.office).first()
        # an office outside the caller's subtree answers like one that does not exist
        if office is None or not office.path.startswith(scope):
            raise NotFound("no such office", code="not_found")
        scope = office.path
    job, _ = services.start_collections_sweep(actor=request.user, office_path=scope)
    return 202, jobs.job_out(job)


@router.get("/collections/sweep/{job_id}", response=JobOut, summary="Progress and result of a collections sweep")
def collections_sweep_status(request, job_id: int):
    from urja.core import jobs

    require_role(request.user, Role.MANAGER)
    return jobs.job_out(jobs.visible_job(user=request.user, job_id=job_id, kind=services.COLLECTIONS_SWEEP))


# --- Bharat BillPay biller interface (payments.bbps) -------------------------------------------------
from .bbps import router as bbps_router  # noqa: E402

router.add_router("/bbps", bbps_router)

# --- group payments (payments.group, issue 15.6) -------------------------------------------------------
from .group_api import router as group_router  # noqa: E402

router.add_router("/groups", group_router)
