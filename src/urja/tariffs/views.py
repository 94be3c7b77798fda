"""Tariff pages: the bill calculator (consumers and CREs) and the tariff browser."""

from datetime import date

from django.shortcuts import get_object_or_404, render
from django.utils import timezone

from urja.core.errors import DomainError

from . import services
from .models import TariffOrder, TariffVersion

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
    return render(request, template, {"data": data, "bill": bill, "error": error, "schedules": categories})


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise DomainError(f"{text!r} is not a date (YYYY-MM-DD)", code="invalid_date") from exc


def browser(request):
    orders = TariffOrder.objects.prefetch_related("versions").all()
    return render(request, "tariffs/browser.html", {"orders": orders})


def version_detail(request, pk: int):
    version = get_object_or_404(TariffVersion.objects.select_related("order"), pk=pk)
    return render(request, "tariffs/version.html", {"v": version, "s": version.schedule()})
