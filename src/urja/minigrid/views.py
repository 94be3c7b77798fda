"""The operator's site console (/minigrid/): thin views over services and selectors."""

import uuid
from datetime import date
from decimal import Decimal

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
from .models import ChangeStatus, InstalmentStatus, PlanStatus

CONSOLE_ROWS = 10  # the newest package changes and sales on the console; every one on their list pages


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
        "changes": selectors.site_package_changes(site)[:CONSOLE_ROWS],
        "meters": selectors.meters(site),
        "revenue": selectors.revenue(site),
        "agents": selectors.agents(site),
        "water": selectors.water_days(site),
        "plans": selectors.plans(site)[:CONSOLE_ROWS],
        "key": uuid.uuid4().hex,
        "today": date.today(),
    }
    return render(request, "minigrid/console.html", ctx)


def _listed_site(request):
    """The user's site for a list page: a user with no site answers like a page that does not exist."""
    try:
        return _site(request)
    except NotFound as exc:
        raise Http404(str(exc)) from exc


CHANGE_SEARCH = ("number__iexact", "customer__customer_id__iexact", "customer__account__consumer_number__iexact",
                 "customer__account__consumer__name__icontains")  # fmt: skip
CHANGE_HEADER = ["Number", "Requested", "Customer ID", "Consumer number", "Name", "From package", "To package",
                 "When", "Channel", "Status", "Charge", "Effective on", "Decided", "In force", "Reason"]  # fmt: skip


def _change_cells(ch) -> list:
    account = ch.customer.account
    return [ch.number, ch.requested_at, ch.customer.customer_id, account.consumer_number, account.consumer.name,
            ch.from_package, ch.to_package, ch.get_when_display(), ch.channel, ch.get_status_display(), ch.charge,
            ch.effective_on, ch.decided_at, ch.in_force_at, ch.reason]  # fmt: skip


def _site_list(request, *, rows, statuses, search, date_field, export, header, cells, template, name):
    """One of the site's list pages: a status, the shared search and from–to filters, 50 a page, the
    filtered list as CSV / Excel. `rows(site)` is the site's queryset (the site is the user's: no office
    filter)."""
    site = _listed_site(request)
    status = request.GET.get("status", "")
    filters = listing.read_filters(request)
    qs = rows(site)
    if status in statuses.values:
        qs = qs.filter(status=status)
    qs = listing.by_dates(listing.by_search(qs, filters, *search), filters, date_field)
    if listing.wants_export(request):
        out = (cells(row) for row in qs.iterator(chunk_size=2000))
        return listing.export_response(request, f"minigrid-{site.code}-{export}", header, out)
    pager = listing.pager(request, qs)
    return render(
        request,
        template,
        {**pager, "site": site, name: pager["page"].object_list, "filters": filters, "status": status,
         "statuses": statuses.choices},
    )  # fmt: skip


@login_required
def package_change_list(request):
    """Every package change of the site: status, number / customer id / consumer number / name, requested
    from–to."""
    return _site_list(
        request, rows=selectors.site_package_changes, statuses=ChangeStatus, search=CHANGE_SEARCH,
        date_field="requested_at", export="package-changes", header=CHANGE_HEADER, cells=_change_cells,
        template="minigrid/package_changes.html", name="changes",
    )  # fmt: skip


PLAN_SEARCH = ("customer__customer_id__iexact", "customer__account__consumer_number__iexact",
               "customer__account__consumer__name__icontains", "appliance__icontains")  # fmt: skip
PLAN_HEADER = ["Sold", "Customer ID", "Consumer number", "Name", "Appliance", "Price", "Down payment", "Instalments",
               "First due", "Status", "Missed", "Instalments settled", "Still to pay"]  # fmt: skip
SETTLED = (InstalmentStatus.CHARGED, InstalmentStatus.PAID)


def _plan_cells(p) -> list:
    account = p.customer.account
    lines = list(p.lines.all())
    settled = sum(1 for line in lines if line.status in SETTLED)
    owed = sum((line.amount for line in lines if line.status not in SETTLED), Decimal("0.00"))
    return [p.sold_at, p.customer.customer_id, account.consumer_number, account.consumer.name, p.appliance, p.price,
            p.down_payment, p.instalments, p.first_due, p.get_status_display(), p.missed, settled, owed]  # fmt: skip


@login_required
def plan_list(request):
    """Every appliance sale on instalments of the site: status, customer id / consumer number / name /
    appliance, sold from–to."""
    return _site_list(
        request, rows=selectors.plans, statuses=PlanStatus, search=PLAN_SEARCH, date_field="sold_at",
        export="appliance-sales", header=PLAN_HEADER, cells=_plan_cells, template="minigrid/plans.html",
        name="plans",
    )  # fmt: skip


def _act(request, fn):
    try:
        fn()
    except NotFound as exc:
        raise Http404(str(exc)) from exc
    except Forbidden as exc:
        raise PermissionDenied(str(exc)) from exc
    except DomainError as exc:
        messages.error(request, f"{exc} ({exc.code})")
    return listing.back_to_list(request, "minigrid:console")


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
