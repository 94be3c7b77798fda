"""The operator's site console (/minigrid/): thin views over services and selectors."""

import uuid
from datetime import date

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from urja.core import listing
from urja.core.errors import DomainError, Forbidden, NotFound
from urja.payments.models import Payment

from . import selectors, services


def _site(request, act: str = "field"):
    try:
        return services.site_of(request.user, act=act)
    except Forbidden as exc:
        raise PermissionDenied(str(exc)) from exc


@login_required
def console(request):
    try:
        site = _site(request)
    except NotFound:
        return render(request, "minigrid/console.html", {"site": None})
    status = request.GET.get("status", "")
    # the site's customers: status, a customer id / consumer number / name word; 50 a page; CSV / Excel
    rows = selectors.customer_rows(site, status=status)
    q = listing.read_filters(request).q.casefold()
    if q:
        rows = [r for r in rows if q in r["name"].casefold() or str(r["customer_id"]).casefold() == q
                or r["consumer_number"].startswith(q.upper())]  # fmt: skip
    if listing.wants_export(request):
        header = ["Customer ID", "Consumer number", "Name", "Status", "Package", "Prepaid", "Owed", "Flagged"]
        cells = ([r["customer_id"], r["consumer_number"], r["name"], r["status"], r["package_code"], r["prepaid"],
                  r["owed"], r["flagged"]] for r in rows)  # fmt: skip
        return listing.export_response(request, f"minigrid-{site.pk}-customers", header, cells)
    pager = listing.pager(request, rows)
    ctx = {
        **pager,
        "site": site,
        "summary": selectors.site_summary(site),
        "status": status,
        "q": q,
        "rows": pager["page"].object_list,
        "to_deactivate": selectors.customer_rows(site, to_deactivate=True),
        "packages": services.packages(site).values(),
        "changes": selectors.package_changes(site)[:30],
        "meters": selectors.meters(site),
        "revenue": selectors.revenue(site),
        "agents": selectors.agents(site),
        "water": selectors.water_days(site),
        "plans": selectors.plans(site)[:30],
        "key": uuid.uuid4().hex,
        "today": date.today(),
    }
    return render(request, "minigrid/console.html", ctx)


def _act(request, fn):
    try:
        fn()
    except NotFound as exc:
        raise Http404(str(exc)) from exc
    except Forbidden as exc:
        raise PermissionDenied(str(exc)) from exc
    except DomainError as exc:
        messages.error(request, f"{exc} ({exc.code})")
    return redirect("minigrid:console")


@login_required
@require_POST
def recharge(request):
    site = _site(request)
    p = request.POST
    try:
        customer = services.find_customer(site=site, customer_id=p.get("customer_id", ""))
        payment = services.recharge(
            actor=request.user,
            customer=customer,
            amount=p.get("amount"),
            mode=p.get("mode", ""),
            idempotency_key=p.get("key", ""),
            reference=p.get("reference", ""),
        )
    except NotFound:
        messages.error(request, _("No such customer at this site."))
        return redirect("minigrid:console")
    except DomainError as exc:
        messages.error(request, f"{exc} ({exc.code})")
        return redirect("minigrid:console")
    return redirect("minigrid:receipt", number=payment.receipt_number)


@login_required
def receipt(request, number: str):
    """A screenshot-friendly receipt (seed 001, 2.2.5): print it, or the customer photographs it; the
    SMS confirmation goes out from payments with every recharge."""
    site = _site(request)
    payment = (
        Payment.objects.filter(receipt_number=number, account__minigrid__site=site)
        .select_related("account__consumer", "account__minigrid")
        .first()
    )
    if payment is None:
        raise Http404("no such receipt")
    customer = payment.account.minigrid
    return render(
        request,
        "minigrid/receipt.html",
        {"payment": payment, "customer": customer, "site": site, "balance": -services.credit_of(customer)},
    )


@login_required
@require_POST
def add_customer(request):
    site = _site(request)
    p = request.POST
    return _act(
        request,
        lambda: services.add_customer(
            actor=request.user,
            channel="backoffice",
            site=site,
            name=p.get("name", ""),
            mobile=p.get("mobile", ""),
            address=p.get("address", ""),
            package_code=p.get("package_code", ""),
        ),
    )


@login_required
@require_POST
def request_change(request):
    site = _site(request)
    p = request.POST

    def do():
        c = services.find_customer(site=site, customer_id=p.get("customer_id", ""))
        services.request_package_change(
            actor=request.user,
            channel="backoffice",
            customer=c,
            to_package=p.get("to_package", ""),
            when=p.get("when", "now"),
        )

    return _act(request, do)


@login_required
@require_POST
def decide(request, number: str):
    site = _site(request, act="operate")
    try:
        change = selectors.package_change(site, number)
    except NotFound as exc:
        raise Http404(str(exc)) from exc
    p = request.POST
    return _act(
        request,
        lambda: services.decide(
            actor=request.user,
            channel="backoffice",
            change=change,
            approve=p.get("approve") == "1",
            reason=p.get("reason", ""),
        ),
    )


@login_required
@require_POST
def deactivate(request):
    site = _site(request, act="operate")
    p = request.POST

    def do():
        c = services.find_customer(site=site, customer_id=p.get("customer_id", ""))
        services.deactivate(actor=request.user, channel="backoffice", customer=c, reason=p.get("reason", ""))

    return _act(request, do)


@login_required
@require_POST
def water(request):
    site = _site(request, act="operate")
    p = request.POST

    def do():
        try:
            day = date.fromisoformat(p.get("day", ""))
            produced, sold = int(p.get("litres_produced", "")), int(p.get("litres_sold", ""))
        except ValueError as exc:
            raise DomainError("day and litres are required", code="invalid_input") from exc
        services.record_water_day(
            actor=request.user,
            site=site,
            day=day,
            litres_produced=produced,
            litres_sold=sold,
            kwh_used=p.get("kwh_used") or "0",
            revenue=p.get("revenue") or "0",
        )

    return _act(request, do)


@login_required
@require_POST
def sell(request):
    site = _site(request, act="operate")
    p = request.POST

    def do():
        c = services.find_customer(site=site, customer_id=p.get("customer_id", ""))
        try:
            first_due, count = date.fromisoformat(p.get("first_due", "")), int(p.get("instalments", ""))
        except ValueError as exc:
            raise DomainError("first due date and number of instalments are required", code="invalid_input") from exc
        services.sell_appliance(
            actor=request.user,
            channel="backoffice",
            customer=c,
            appliance=p.get("appliance", ""),
            price=p.get("price") or "0",
            down_payment=p.get("down_payment") or "0",
            instalments=count,
            first_due=first_due,
        )

    return _act(request, do)
