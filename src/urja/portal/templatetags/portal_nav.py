"""`{% portal_url "bills" %}`: the portal's fixed addresses (navigation, forms) resolved once per process
and script prefix instead of by `{% url %}` on every page (a reverse() each: a dozen per page, about a
tenth of a page's CPU). Only for URL names without arguments."""

from functools import lru_cache

from django import template
from django.urls import get_script_prefix, reverse

register = template.Library()


@lru_cache(maxsize=256)
def _resolved(prefix: str, name: str) -> str:
    return reverse(f"portal:{name}")


@register.simple_tag
def portal_url(name: str) -> str:
    return _resolved(get_script_prefix(), name)
