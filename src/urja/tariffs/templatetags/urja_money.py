from django import template

from urja.core.money import format_inr

register = template.Library()


@register.filter
def inr(value) -> str:
    """Rupees with Indian digit grouping: 123456.5 → 1,23,456.50."""
    if value is None or value == "":
        return ""
    return format_inr(value)
