"""Tariff pages: the bill calculator (consumers and CREs) and the tariff browser."""

from datetime import date

from django.shortcuts import get_object_or_404, render
from django.utils import timezone, translation

from urja.core import listing
from urja.core.errors import DomainError

from . import services, wording
from .models import TariffVersion

FIELDS = [
    "period_start",
    "period_end",
    "units",
    "category",
    "sub_category",
    "area",
    "schedule",
    "package_code",
    "sanctioned_load",
    "load_unit",
    "meter_type",
]


def calculator(request):
    today = timezone.localdate()
    first = today.replace(day=1)
    data = {
        "period_start": first.isoformat(),
        "period_end": today.isoformat(),
        "units": "100",
        "category": "domestic",
        "sub_category": "general",
        "area": "urban",
        "schedule": "",
        "package_code": "",
        "sanctioned_load": "1",
        "load_unit": "kW",
        "meter_type": "static",
    }
    bill = error = None
    if "units" in request.GET:
        data.update({k: request.GET.get(k, v) for k, v in data.items()})
        try:
            bill = services.calculate(
                period_start=_date(data["period_start"]),
                period_end=_date(data["period_end"]),
                units=data["units"] or 0,
                category=data["category"],
                sub_category=data["sub_category"],
                area=data["area"],
                schedule=data["schedule"],
                package_code=data["package_code"],
                sanctioned_load=data["sanctioned_load"] or 1,
                load_unit=data["load_unit"],
                meter_type=data["meter_type"],
                e_bill=request.GET.get("e_bill") == "on",
                prepaid=request.GET.get("prepaid") == "on",
            )
        except DomainError as exc:
            error = exc.message
    categories = sorted({(v.category, v.schedule_code, v.name) for v in TariffVersion.objects.all()})
    template = "tariffs/_result.html" if request.headers.get("HX-Request") else "tariffs/calculator.html"
    # the lines as a bill prints them: in the page's language, figures grouped the Indian way
    lines = wording.printed_lines(bill.lines, (translation.get_language() or "en").split("-")[0]) if bill else []
    context = {"data": data, "bill": bill, "lines": lines, "error": error, "schedules": categories}
    return render(request, template, context)


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise DomainError(f"{text!r} is not a date (YYYY-MM-DD)", code="invalid_date") from exc


TARIFF_SEARCH = ("schedule_code__icontains", "name__icontains", "package_id__iexact", "order__code__iexact",
                 "order__reference__icontains")  # fmt: skip
TARIFF_HEADER = ["Order", "Regulator", "Order reference", "Order date", "Schedule code", "Name", "Category",
                 "Sub-categories", "Areas", "Supply types", "Package", "In force from", "In force until",
                 "Unconfirmed values"]  # fmt: skip


def _tariff_cells(v: TariffVersion) -> list:
    o = v.order
    return [o.code, o.regulator, o.reference, o.order_date, v.schedule_code, v.name, v.category,
            ", ".join(v.sub_categories), ", ".join(v.areas), ", ".join(v.supply_types), v.package_id,
            v.effective_from, v.effective_to, ", ".join(v.unconfirmed)]  # fmt: skip


def browser(request):
    """The tariff schedules of every loaded order (public, like the orders): category, the shared search
    (schedule code or name, order code or reference, package) and in-force-from dates; 50 schedules a page
    grouped by order; the filtered list as CSV / Excel. Tariffs belong to no office: no office filter."""
    filters = listing.read_filters(request)
    category = request.GET.get("category", "")
    categories = sorted(set(TariffVersion.objects.values_list("category", flat=True)))
    qs = TariffVersion.objects.select_related("order")
    if category in categories:
        qs = qs.filter(category=category)
    qs = listing.by_search(qs, filters, *TARIFF_SEARCH)
    qs = listing.by_dates(qs, filters, "effective_from", moments=False)
    qs = qs.order_by("order__regulator", "-order__effective_from", "order__code", "category", "schedule_code", "pk")
    if listing.wants_export(request):
        rows = (_tariff_cells(v) for v in qs.iterator(chunk_size=2000))
        return listing.export_response(request, f"tariffs-{category or 'all'}", TARIFF_HEADER, rows)
    context = {**listing.pager(request, qs), "filters": filters, "category": category, "categories": categories}
    return render(request, "tariffs/browser.html", context)


def version_detail(request, pk: int):
    version = get_object_or_404(TariffVersion.objects.select_related("order"), pk=pk)
    return render(request, "tariffs/version.html", {"v": version, "s": version.schedule()})
