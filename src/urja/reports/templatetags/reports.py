from django import template

from urja.reports.selectors import percent

register = template.Library()


@register.filter
def pct(value):
    """A ratio as a percentage with two decimals; '—' when undefined."""
    return percent(value)
