"""Web views of payments: the cashier screen, receipts, public verification, the development
gateway, quick pay, reconciliation, prepaid and collection pages. Thin: services decide."""

import uuid
from datetime import date
from decimal import Decimal

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from urja.billing import ledger
from urja.core.errors import DomainError
from urja.core.links import public_url
from urja.core.models import Role
from urja.core.money import amount_in_words
from urja.core.permissions import office_path_of, role_of, scope_by_office
from urja.core.scope import collect_channels, collect_scope, scope_accounts, scope_by_creator
from urja.customers.models import Account

from . import selectors, services
from .api import payments_in_scope
from .models import CashierSession, CollectionCase, GatewayOrder, ImportBatch, PaygToken, Payment, PaymentChannel

STAFF = {Role.CRE, Role.BILLING_OFFICER, Role.MANAGER, Role.FIELD_AGENT, Role.KEY_ACCOUNT_MANAGER, Role.ADMIN}


def _staff(request):
    if role_of(request.user) not in STAFF:
        raise PermissionDenied
    return request.user


def _scoped_account(request, consumer_number: str) -> Account:
    qs = scope_accounts(request.user, Account.objects.select_related("consumer"))
    account = qs.filter(consumer_number=consumer_number.strip().upper()).first()
    if account is None:
        raise Http404
    return account


def _counter_account(request, consumer_number: str) -> tuple[Account, bool]:
    """The account a counter takes money for, and whether the cashier sees only what a receipt needs:
    a consumer may pay at any counter of the utility when the counter scope is utility-wide
    (data/core/permissions.toml), but the cashier sees another office's account no further."""
    try:
        return _scoped_account(request, consumer_number), False
    except Http404:
        if PaymentChannel.COUNTER not in collect_channels(request.user) or collect_scope("counter") != "utility":
            raise
    account = Account.objects.select_related("consumer").filter(consumer_number=consumer_number.strip().upper()).first()
    if account is None:
        raise Http404
    return account, True


# --- cashier screen ------------------------------------------------------------------------------


@login_required
def cashier(request):
    user = _staff(request)
    session = CashierSession.objects.filter(cashier=user, status=CashierSession.Status.OPEN).first()
    # ?consumer=<number> (the 360° page's "Take payment") opens the payment form at once
    prefill = request.GET.get("consumer", "").strip().upper()
    context = {
        "session": session,
        "totals": selectors.session_totals(session) if session else None,
        "prefill": prefill if prefill.isalnum() and len(prefill) <= 30 else "",
    }
    return render(request, "payments/cashier.html", context)


@login_required
def cashier_lookup(request):
    _staff(request)
    from urja.customers.services import search_accounts

    query = request.GET.get("q", "").strip()
    accounts = []
    if len(query) >= 3:
        qs = scope_accounts(request.user, Account.objects.select_related("consumer"))
        accounts = list(search_accounts(queryset=qs, query=query, limit=8))
        if not accounts:  # another office's consumer paying here: by the exact number only
            try:
                return _pay_form(request, *_counter_account(request, query))
            except Http404:
                pass
    if len(accounts) == 1:
        return _pay_form(request, accounts[0])
    return render(request, "payments/_lookup.html", {"accounts": accounts, "query": query})


@login_required
def cashier_form(request, consumer_number: str):
    _staff(request)
    return _pay_form(request, *_counter_account(request, consumer_number))


def _pay_form(request, account, limited: bool = False, *, error=None, values=None):
    balance = None if limited else ledger.balance(account=account)
    context = {
        "account": account,
        "balance": balance,
        "credit": -balance if balance is not None and balance < 0 else None,
        "key": uuid.uuid4().hex,
        "error": error,
        "values": values or {},
        "recent": [] if limited else account.payments.all()[:3],
    }
    return render(request, "payments/_pay_form.html", context)


@login_required
@require_POST
def cashier_pay(request):
    user = _staff(request)
    post = request.POST
    account, limited = _counter_account(request, post.get("consumer_number", ""))
    try:
        payment = services.take_payment(
            actor=user,
            channel=PaymentChannel.COUNTER,
            consumer_number=account.consumer_number,
            amount=post.get("amount", ""),
            idempotency_key=post.get("key", ""),
            method=post.get("method", "cash"),
            instrument_number=post.get("instrument_number", ""),
            instrument_bank=post.get("instrument_bank", ""),
        )
    except DomainError as exc:
        return _pay_form(request, account, limited, error=exc.message, values=post)
    # the session's totals in the page header are swapped in with the receipt (out of band)
    session = CashierSession.objects.filter(cashier=user, status=CashierSession.Status.OPEN).first()
    totals = selectors.session_totals(session) if session else None
    return render(request, "payments/_paid.html", {"payment": payment, "session": session, "totals": totals})


@login_required
@require_POST
def cashier_session(request):
    user = _staff(request)
    try:
        if request.POST.get("action") == "close":
            session = get_object_or_404(CashierSession, pk=request.POST.get("session"), cashier=user)
            services.close_session(actor=user, session=session, counted_cash=request.POST.get("counted_cash", ""))
        else:
            services.open_session(actor=user, opening_balance=request.POST.get("opening_balance", "0"))
    except DomainError as exc:
        from django.contrib import messages

        messages.error(request, exc.message)
    return redirect("payments:cashier")


# --- 360° page panel ------------------------------------------------------------------------------


@login_required
def account_panel(request, consumer_number: str):
    _staff(request)
    account = _scoped_account(request, consumer_number)
    balance = ledger.balance(account=account)
    context = {
        "account": account,
        "balance": balance,
        "credit": -balance if balance < 0 else None,
        "payments": account.payments.all()[:20],
        "wallet": getattr(account, "wallet", None) if account.is_prepaid else None,
        "tokens": PaygToken.objects.filter(device__account=account)[:10],
        "case": account.collection_cases.filter(status__in=["flagged", "notice_sent", "due"]).first(),
    }
    return render(request, "payments/_account_panel.html", context)


@login_required
def home_panel(request):
    _staff(request)
    today = timezone.localdate()
    qs = scope_by_office(request.user, Payment.objects.filter(received_at__date=today), "office__path")
    from django.db.models import Count, Sum

    figures = qs.filter(status="posted").aggregate(n=Count("id"), total=Sum("amount"))
    suspense = scope_by_office(request.user, Payment.objects.filter(status="in_suspense"), "office__path").count()
    return render(request, "payments/_home_panel.html", {"figures": figures, "suspense": suspense})


# --- receipts ------------------------------------------------------------------------------------


def _receipt_context(payment: Payment) -> dict:
    return {
        "payment": payment,
        "words": amount_in_words(payment.amount, (get_language() or "en")[:2]),  # the receipt's language
        "utility": getattr(settings, "URJA_UTILITY_NAME", "Urja"),
        "verify_url": public_url(reverse("payments:verify")),
        "token": getattr(payment, "token", None),
    }


@login_required
def receipt(request, number: str):
    _staff(request)
    payment = get_object_or_404(
        payments_in_scope(request.user).select_related("account__consumer", "office"),
        receipt_number=number.upper(),
    )
    layout = "thermal" if request.GET.get("layout") == "thermal" else "a4"
    return render(request, f"payments/receipt_{layout}.html", _receipt_context(payment))


def verify(request):
    """Public page: anyone holding a receipt can check it (no login)."""
    check = None
    if request.GET.get("number"):
        check = selectors.verify_receipt(
            receipt_number=request.GET.get("number", ""),
            code=request.GET.get("code", ""),
            amount=request.GET.get("amount") or None,
        )
    return render(request, "payments/verify.html", {"check": check, "q": request.GET})


# --- quick pay and the development gateway -------------------------------------------------------------


def quick_pay(request):
    error = None
    if request.method == "POST":
        try:
            order = services.create_order(
                consumer_number=request.POST.get("consumer_number", ""),
                amount=request.POST.get("amount", ""),
                channel=request.POST.get("channel", PaymentChannel.ONLINE),
                anonymous=True,  # the page answers alike whether or not the number exists
            )
            return redirect("payments:dev_gateway", reference=order.reference)
        except DomainError as exc:
            error = exc.message
    return render(request, "payments/quick_pay.html", {"error": error, "values": request.POST})


def dev_gateway(request, reference: str):
    if getattr(settings, "PRODUCTION", False):
        raise Http404
    order = get_object_or_404(GatewayOrder.objects.select_related("account", "payment"), reference=reference.upper())
    result = None
    if request.method == "POST" and order.status == GatewayOrder.Status.CREATED:
        result = services.simulate_gateway(order=order, outcome=request.POST.get("outcome", ""))
        order.refresh_from_db()
    back = request.GET.get("next", "")  # the page to return to (the portal's order page): local paths only
    back = back if back.startswith("/") and not back.startswith("//") and "\\" not in back else ""
    return render(
        request,
        "payments/dev_gateway.html",
        {"order": order, "result": result, "upi_intent": selectors.upi_intent(order), "back": back},
    )


@csrf_exempt  # the aggregator's hosted page posts the payer back here; the HMAC signature is the check
def gateway_return(request, gateway: str):
    """The payer's return from a payment aggregator's hosted checkout: the signed payment is posted
    through the one pipeline (the same event as its webhook or status query), then shown."""
    from . import gateways

    params = request.POST if request.method == "POST" else request.GET
    try:
        adapter = gateways.get_gateway(gateway)
        order, status = adapter.verify_return(params)
        services.process_gateway_event(gateway=gateway, event=gateways.event_for(order, status))
    except DomainError as exc:
        return render(request, "payments/gateway_return.html", {"error": exc.message}, status=exc.status)
    order.refresh_from_db()
    return render(request, "payments/gateway_return.html", {"order": order})


# --- reports -------------------------------------------------------------------------------------


@login_required
def handover(request):
    _staff(request)
    try:
        day = date.fromisoformat(request.GET.get("day", ""))
    except ValueError:
        day = timezone.localdate()
    report = selectors.handover_report(day=day, office_path=office_path_of(request.user) or "")
    return render(request, "payments/handover.html", {"report": report, "day": day})


OPEN_CASES = ("flagged", "notice_sent", "due")


@login_required
def collections(request):
    """The collection work list: filtered (status, reason, office, a word of the name or the number,
    amount at least), 50 a page, and the same rows as CSV (?format=csv) or Excel (?format=xlsx)."""
    from django.db.models import Q

    from urja.core import listing
    from urja.core.scope import scope_offices
    from urja.network.models import Office

    _staff(request)
    get = request.GET
    status, reason, office_code = get.get("status", "open"), get.get("reason", ""), get.get("office", "")
    q, min_amount = get.get("q", "").strip()[:60], get.get("min", "").strip()
    qs = scope_accounts(request.user, CollectionCase.objects.select_related("account__consumer"), "account__")
    if status == "open":
        qs = qs.filter(status__in=OPEN_CASES)
    elif status in CollectionCase.Status.values:
        qs = qs.filter(status=status)
    if reason in CollectionCase.Reason.values:
        qs = qs.filter(reason=reason)
    offices = scope_offices(request.user, Office.objects.exclude(level="utility"), "path").order_by("path")
    office = offices.filter(code=office_code).first() if office_code else None
    if office is not None:
        qs = qs.filter(account__office_path__startswith=office.path)
    if q:
        words = Q()
        for word in q.split()[:4]:
            words &= Q(account__consumer__name__icontains=word)
        qs = qs.filter(words | Q(account__consumer_number__startswith=q.upper()))
    try:
        if min_amount:
            qs = qs.filter(amount_due__gte=Decimal(min_amount))
    except (ArithmeticError, ValueError):
        min_amount = ""
    qs = qs.order_by("-amount_due", "id")
    if listing.wants_export(request):
        header = ["consumer_number", "name", "reason", "amount_due", "flagged_on", "notice", "pay_by", "status"]
        rows = (
            [c.account.consumer_number, c.account.consumer.name, c.get_reason_display(), c.amount_due,
             c.flagged_on, c.notice_number, c.pay_by, c.get_status_display()]
            for c in qs.iterator(chunk_size=2000)
        )  # fmt: skip
        return listing.export_response(request, "collections", header, rows)
    return render(
        request,
        "payments/collections.html",
        {
            **listing.pager(request, qs),
            "status": status,
            "statuses": [("open", _("Open")), *CollectionCase.Status.choices],
            "reason": reason,
            "reasons": CollectionCase.Reason.choices,
            "offices": offices,
            "office": office_code,
            "q": q,
            "min": min_amount,
        },
    )


@login_required
def imports(request):
    user = _staff(request)
    if role_of(user) not in (Role.BILLING_OFFICER, Role.MANAGER, Role.ADMIN):
        raise PermissionDenied
    batch, error = None, None
    if request.method == "POST" and request.FILES.get("file"):
        upload = request.FILES["file"]
        try:
            batch = services.import_settlement(
                actor=user, source=request.POST.get("source", ""), filename=upload.name, stream=upload.chunks()
            )
        except DomainError as exc:
            error = exc.message
    return render(
        request,
        "payments/imports.html",
        {"batch": batch, "error": error, "batches": scope_by_creator(user, ImportBatch.objects, "imported_by")[:20]},
    )


@login_required
def import_report_csv(request, batch_id: int):
    _staff(request)
    import csv

    batch = get_object_or_404(scope_by_creator(request.user, ImportBatch.objects.all(), "imported_by"), pk=batch_id)
    response = HttpResponse(content_type="text/csv")
    response["Content-Disposition"] = f'attachment; filename="import-{batch.pk}-report.csv"'
    writer = csv.writer(response)
    writer.writerow(["line", "row_key", "code", "message"])
    for item in batch.report:
        writer.writerow([item["line"], item["key"], item["code"], item["message"]])
    return response


def prepaid(request, consumer_number: str):
    """Prepaid balance and token history: staff in scope, or the consumer who owns the account."""
    # anonymous: the login page whether or not the number exists; then the consumer's own account or
    # one in the staff member's scope (else 404 like an unknown number); reading creates no wallet row
    if not request.user.is_authenticated:
        return redirect(f"{settings.LOGIN_URL}?next={request.path}")
    if role_of(request.user) != Role.CONSUMER:
        _staff(request)
    account = _scoped_account(request, consumer_number)
    if not account.is_prepaid:
        raise Http404
    from .models import PrepaidWallet

    wallet = PrepaidWallet.objects.filter(account=account).first() or PrepaidWallet(account=account)
    context = {
        "account": account,
        "wallet": wallet,
        "balance": selectors.wallet_balance(account=account),
        "charges": wallet.charges.all()[:31] if wallet.pk else [],
        "tokens": PaygToken.objects.filter(device__account=account)[:50],
        "payments": account.payments.all()[:20],
        "title": _("Prepaid balance"),
    }
    return render(request, "payments/prepaid.html", context)
