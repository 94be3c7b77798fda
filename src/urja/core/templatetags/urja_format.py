"""One way to show money, numbers, dates and codes on every page (issue 15 part 5).

Loaded into every template as a builtin (settings.TEMPLATES), so no `{% load %}` is needed:

    {{ amount|rupees }}      ₹4,684.74   (Indian grouping: ₹12,34,56,789.00; negative: -₹5.00)
    {{ amount|inr }}         4,684.74    (without the symbol, for columns headed ₹)
    {{ amount|rupees_short }} ₹4.68 lakh / ₹1.23 crore (cards and headlines; exact below 1 lakh)
    {{ n|indian }}           1,23,456    ({{ x|indian:3 }}: three decimals)
    {{ d|day }}              04-12-2026  (dd-mm-yyyy; a datetime is taken in IST first)
    {{ t|when }}             04-12-2026 17:05 (IST)
    {{ code|label }}         "on_track" → "On track" in the active language (data/core/labels.toml)
"""

from datetime import date, datetime
from decimal import Decimal, InvalidOperation

from django import template
from django.utils import timezone

from urja.core.labels import label as code_label
from urja.core.money import format_inr, group_indian

register = template.Library()

DATE = "%d-%m-%Y"
DATETIME = "%d-%m-%Y %H:%M"
LAKH, CRORE = Decimal(100_000), Decimal(10_000_000)


def _decimal(value) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None


@register.filter
def inr(value) -> str:
    """4684.74 → '4,684.74' (two decimals, Indian grouping); empty for None."""
    amount = _decimal(value)
    return "" if amount is None else format_inr(amount)


@register.filter
def rupees(value) -> str:
    """4684.74 → '₹4,684.74'; -5 → '-₹5.00'; empty for None."""
    amount = _decimal(value)
    if amount is None:
        return ""
    text = format_inr(abs(amount), symbol=True)
    return f"-{text}" if amount < 0 else text


@register.filter
def rupees_short(value) -> str:
    """Large amounts in lakh and crore (two decimals): ₹4.68 lakh, ₹1.23 crore; exact below a lakh."""
    amount = _decimal(value)
    if amount is None:
        return ""
    size = abs(amount)
    sign = "-" if amount < 0 else ""
    for unit, name in ((CRORE, "crore"), (LAKH, "lakh")):
        if size >= unit:
            whole, _dot, frac = str((size / unit).quantize(Decimal("0.01"))).partition(".")
            return f"{sign}₹{group_indian(whole)}.{frac} {name}"
    return rupees(amount)


@register.filter
def indian(value, places=0) -> str:
    """A number with Indian grouping and `places` decimals: 123456 → '1,23,456'."""
    number = _decimal(value)
    if number is None:
        return "" if value in (None, "") else str(value)
    places = int(places)
    text = f"{abs(number):.{places}f}"
    whole, _dot, frac = text.partition(".")
    sign = "-" if number < 0 and number.quantize(Decimal(1).scaleb(-places)) != 0 else ""
    return f"{sign}{group_indian(whole)}{'.' + frac if frac else ''}"


def _local(value):
    if isinstance(value, datetime):
        return timezone.localtime(value) if timezone.is_aware(value) else value
    return value


@register.filter
def day(value) -> str:
    """dd-mm-yyyy; a datetime in IST first. Empty for None."""
    if not isinstance(value, date):
        return "" if value in (None, "") else str(value)
    return _local(value).strftime(DATE)


@register.filter
def when(value) -> str:
    """dd-mm-yyyy HH:MM in IST; a plain date as dd-mm-yyyy."""
    if isinstance(value, datetime):
        return _local(value).strftime(DATETIME)
    return day(value)


@register.filter
def label(value) -> str:
    """A code in words in the active language ('on_track' → 'On track')."""
    return code_label(value)
