"""Staff web pages of metering (HTMX fragments where useful). Staff only, scoped by office."""

import datetime

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse, HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from urja.core import listing
from urja.core.errors import DomainError
from urja.core.models import Channel
from urja.core.permissions import ALL_STAFF_ROLES, office_path_of, role_of
from urja.core.scope import scope_accounts
from urja.customers.models import Account

from . import charts, selectors, services
from .api import COMMAND_ROLES, METER_ROLES, REVIEW_ROLES
from .models import Installation, Meter, MeterCommand, Reading, SheetEntry, VeeStatus


def _staff(request, roles=ALL_STAFF_ROLES):
    role = role_of(request.user)
    if role is None or role == "consumer" or (role not in roles and role != "admin"):
        raise PermissionDenied("staff only")


def _account(request, consumer_number: str) -> Account:
    qs = scope_accounts(request.user, Account.objects.select_related("consumer", "section"))
    account = qs.filter(consumer_number=consumer_number.strip().upper()).first()
    if account is None:
        raise Http404("no such account")
    return account


def _account_context(account: Account, months: int = 12) -> dict:
    inst = selectors.current_installation(account)
    readings = list(Reading.objects.filter(account=account).select_related("meter").order_by("-read_at", "-id")[:12])
    series = selectors.consumption_series(account, months=months)
    return {
        "account": account,
        "installation": inst,
        "meter": inst.meter if inst else None,
        "readings": readings,
        "chart": charts.monthly_bars(series, title=_("Consumption, last %(n)s months (kWh)") % {"n": months}),
        "series": series,
        "rent": selectors.meter_rent_applies(account),
    }


@login_required
def account_panel(request, consumer_number: str):
    """HTMX fragment for the CRE's 360° page: the meter, its last readings and a 12-month chart."""
    _staff(request)
    return render(request, "metering/_account_panel.html", _account_context(_account(request, consumer_number)))


@login_required
def account_page(request, consumer_number: str):
    _staff(request)
    account = _account(request, consumer_number)
    context = _account_context(account)
    context["installations"] = Installation.objects.filter(account=account).select_related("meter")
    context["all_readings"] = Reading.objects.filter(account=account).select_related("meter").order_by("-read_at")[:100]
    return render(request, "metering/account.html", context)


@login_required
def meter_list(request):
    _staff(request)
    q = request.GET.get("q", "").strip().upper()
    meters = Meter.objects.order_by("serial")
    if q:
        meters = meters.filter(serial__startswith=q)
    role = role_of(request.user)
    context = {"meters": meters[:200], "q": q, "can_review": role in (*REVIEW_ROLES, "admin")}
    context["can_work"] = role in (*METER_ROLES, "admin")
    return render(request, "metering/meters.html", context)


def _meter(request, serial: str) -> Meter:
    meter = Meter.objects.filter(serial=serial.upper()).first()
    if meter is None:
        raise Http404("no such meter")
    inst = Installation.objects.filter(meter=meter, removed_at__isnull=True).first()
    if inst and not scope_accounts(request.user, Account.objects.filter(pk=inst.account_id)).exists():
        raise Http404("no such meter")
    return meter


@login_required
def meter_detail(request, serial: str):
    _staff(request)
    meter = _meter(request, serial)
    return render(
        request,
        "metering/meter.html",
        {
            "meter": meter,
            "installations": Installation.objects.filter(meter=meter).select_related("account"),
            "sheet": SheetEntry.objects.filter(meter=meter).select_related("account"),
            "commands": MeterCommand.objects.filter(meter=meter)[:20],
            "tests": meter.tests.order_by("-tested_on")[:10],
            "can_work": role_of(request.user) in (*METER_ROLES, "admin"),
        },
    )


@login_required
def particulars_sheet(request, serial: str):
    """Printable meter particulars sheet (OERC Supply Code reg. 102(vii)(c))."""
    _staff(request)
    meter = _meter(request, serial)
    inst = (
        Installation.objects.filter(meter=meter).select_related("account__consumer").order_by("-installed_at").first()
    )
    return render(
        request,
        "metering/sheet.html",
        {"meter": meter, "installation": inst, "sheet": SheetEntry.objects.filter(meter=meter), "now": timezone.now()},
    )


@login_required
def review_queue(request):
    _staff(request, REVIEW_ROLES)
    accounts = scope_accounts(request.user, Account.objects.all())
    waiting = Reading.objects.filter(vee_status=VeeStatus.REVIEW, account__in=accounts)
    readings = waiting.select_related("meter", "account__consumer").order_by("read_at")[:200]
    return render(request, "metering/review.html", {"readings": readings, "total": waiting.count()})


@login_required
@require_POST
def review_action(request, reading_id: int):
    _staff(request, REVIEW_ROLES)
    accounts = scope_accounts(request.user, Account.objects.all())
    reading = Reading.objects.filter(pk=reading_id, account__in=accounts).first()
    if reading is None:
        raise Http404("no such reading")
    error = None
    try:
        reading = services.review_reading(
            reading=reading,
            action=request.POST.get("action", ""),
            reason=request.POST.get("reason", ""),
            kwh=request.POST.get("kwh") or None,
            actor=request.user,
            channel=Channel.BACKOFFICE,
        )
    except DomainError as exc:
        error = exc.message
    if request.headers.get("HX-Request"):
        reading = Reading.objects.select_related("meter", "account__consumer").get(pk=reading.pk)
        return render(request, "metering/_review_row.html", {"r": reading, "error": error})
    if error:  # without JavaScript: the queue again, the reason in words
        from django.contrib import messages

        messages.error(request, f"{reading.account.consumer_number}: {error}")
    return redirect("metering:review")


@login_required
def commands(request):
    _staff(request)
    qs = scope_accounts(request.user, MeterCommand.objects.select_related("meter", "account"), "account__")
    status = request.GET.get("status")
    if status:
        qs = qs.filter(status=status)
    return render(request, "metering/commands.html", {"commands": qs[:200], "status": status})


@login_required
@require_POST
def command_retry(request, command_id: str):
    _staff(request, COMMAND_ROLES)
    cmd = scope_accounts(request.user, MeterCommand.objects.all(), "account__").filter(command_id=command_id).first()
    if cmd is None:
        raise Http404("no such command")  # out of scope too
    try:
        services.retry_command(command=cmd, actor=request.user, channel=Channel.BACKOFFICE)
    except DomainError as exc:
        return HttpResponse(exc.message, status=409)
    return redirect("metering:commands")


def _cycles_in_scope(request) -> list[str]:
    """The bill cycles of the accounts the user may read, most accounts first (the default first)."""
    from django.db.models import Count

    rows = (
        scope_accounts(request.user, Account.objects.filter(status="active"))
        .values("bill_cycle")
        .annotate(n=Count("id"))
        .order_by("-n", "bill_cycle")
    )
    return [row["bill_cycle"] for row in rows if row["bill_cycle"]]


def _beat(request) -> list[str]:
    from urja.core.scope import account_rule

    profile = getattr(request.user, "staff", None)
    return profile.route_codes if profile is not None and account_rule(request.user) == "routes" else []


ALL_CYCLES = "all"
ROUTE_BOOK_HEADER = ["Route", "Bill cycle", "Consumer number", "Name", "Address", "Meter", "Meter location",
                     "Last reading (kWh)", "Last read", "Read from", "Scheduled", "Read by"]  # fmt: skip


def _route_book_cells(row: dict) -> list:
    window = row["window"]
    return [row["route"], row["bill_cycle"], row["consumer_number"], row["name"], row["address"], row["meter"] or "",
            row["location"], row["last_kwh"], row["last_read_at"], window["earliest"], window["scheduled"],
            window["latest"]]  # fmt: skip


@login_required
def route_book(request):
    """The readers' book of the user's scope (a field agent's beat), with a reading form per meter:
    phone-friendly, labelled, the photo taken with the phone's camera. One cycle (the most common by
    default) or every cycle (?cycle=all: a route mixing cycles), each account with its own reading
    window; 50 accounts a page, the whole book as CSV / Excel."""
    _staff(request)
    today = timezone.localdate()
    cycles = _cycles_in_scope(request)
    cycle = request.GET.get("cycle") or (cycles[0] if cycles else "")
    beat = _beat(request)
    route = request.GET.get("route", "").strip()
    try:
        year = int(request.GET.get("year", today.year))
        month = int(request.GET.get("month", today.month))
        datetime.date(year, month, 1)  # a real month, whether or not a cycle is chosen
    except (ValueError, OverflowError):
        return HttpResponseBadRequest(_("Year and month must be numbers of a real month."))
    accounts = selectors.route_book_accounts(
        office_path=office_path_of(request.user) or "",
        bill_cycle=None if cycle == ALL_CYCLES else cycle,
        route=route or None,
        routes=beat or None,
    ) if cycle else Account.objects.none()  # fmt: skip
    if listing.wants_export(request):
        rows = (
            cells
            for chunk in _chunks(accounts.iterator(chunk_size=500), 500)
            for cells in map(_route_book_cells, selectors.route_book_rows(chunk, year=year, month=month))
        )
        return listing.export_response(request, f"route-book-{cycle}-{year}-{month:02d}", ROUTE_BOOK_HEADER, rows)
    pager = listing.pager(request, accounts)
    rows = selectors.route_book_rows(pager["page"].object_list, year=year, month=month)
    windows = {(r["window"]["earliest"], r["window"]["scheduled"], r["window"]["latest"]) for r in rows}
    context = {
        **pager,
        "rows": rows,
        "one_window": rows[0]["window"] if len(windows) == 1 else None,
        "tolerance": selectors.reading_config()["tolerance_working_days"],  # data/metering/reading.toml
        "cycle": cycle,
        "all_cycles": ALL_CYCLES,
        "cycles": cycles,
        "year": year,
        "month": month,
        "route": route,
        "beat": beat,
        "statuses": [
            ("actual", _("Meter read")),
            ("door_locked", _("Door locked")),
            ("meter_defective", _("Meter defective")),
        ],
    }
    return render(request, "metering/route_book.html", context)


def _chunks(items, size: int):
    chunk = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


@login_required
@require_POST
def route_reading(request):
    """One reading from the route book (HTMX: the row's reading cell is replaced by the outcome)."""
    from urja.core.models import Role

    _staff(request)
    account = _account(request, request.POST.get("consumer_number", ""))
    field = role_of(request.user) == Role.FIELD_AGENT
    status = request.POST.get("status", "actual")
    error, reading = None, None
    try:
        reading = services.record_reading(
            actor=request.user,
            channel=Channel.FIELD_AGENT if field else Channel.BACKOFFICE,
            source="field_agent" if field else "staff",
            account=account,
            read_at=timezone.now(),
            kwh=request.POST.get("kwh") or None if status == "actual" else None,
            status=status,
            photo=request.FILES.get("photo"),
            latitude=request.POST.get("latitude") or None,
            longitude=request.POST.get("longitude") or None,
        )
    except DomainError as exc:
        error = exc.message
    context = {"reading": reading, "error": error, "consumer_number": account.consumer_number}
    if request.headers.get("HX-Request"):
        return render(request, "metering/_route_reading.html", context)  # htmx swaps 2xx only
    if error:
        from django.contrib import messages

        messages.error(request, f"{account.consumer_number}: {error}")
    return redirect(f"{request.META.get('HTTP_REFERER') or '/metering/route-book/'}")
