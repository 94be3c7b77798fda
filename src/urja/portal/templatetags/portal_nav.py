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


# `{% portal_header %}`: the header of every portal page (brand, language switcher, navigation) is the
# same on every page but for the language, the page's address (the switcher's `next`) and the CSRF
# token, so it is rendered once per language, script prefix and kind of visitor (signed-in consumer,
# applicant, neither) with stand-ins for those two, and each page puts its own in: the template
# engine spent ~1,800 Python calls a page on it (eleven {% translate %}, two forms).
_TOKEN, _NEXT = "\x00portal-csrf\x00", "\x00portal-next\x00"


class _StandInRequest:
    def get_full_path(self) -> str:
        return _NEXT


@lru_cache(maxsize=64)
def _header(language: str, active: str, prefix: str, kind: str) -> str:
    """`language`: the page's LANGUAGE_CODE (the switcher's current one); `active`: the translation's."""
    from django.template.loader import get_template

    context = {"kind": kind, "csrf_token": _TOKEN, "request": _StandInRequest(), "LANGUAGE_CODE": language}
    return get_template("portal/_header.html").render(context)


@register.simple_tag(takes_context=True)
def portal_header(context) -> str:
    from django.utils.html import escape
    from django.utils.safestring import mark_safe
    from django.utils.translation import get_language

    kind = "account" if context.get("account") else "applicant" if context.get("applicant") else ""
    request, token = context.get("request"), str(context.get("csrf_token") or "")
    if request is None or not token or token == "NOTPROVIDED":
        from django.template.loader import get_template

        return get_template("portal/_header.html").render({**context.flatten(), "kind": kind})
    html = _header(context.get("LANGUAGE_CODE", "en"), get_language() or "", get_script_prefix(), kind)
    return mark_safe(html.replace(_TOKEN, token).replace(_NEXT, escape(request.get_full_path())))
