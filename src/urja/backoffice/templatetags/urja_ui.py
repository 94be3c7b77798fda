"""Template tags of the staff shell: `{% load urja_ui %}`."""

from django import template
from django.conf import settings
from django.utils.translation import gettext_lazy as _

from urja.backoffice import navigation
from urja.core.permissions import role_of

register = template.Library()

ROLE_LABELS = {
    "consumer": _("Consumer"),
    "field_agent": _("Field agent"),
    "cre": _("Customer relationship executive"),
    "engineer": _("Engineer"),
    "billing_officer": _("Billing officer"),
    "manager": _("Manager"),
    "key_account_manager": _("Key account manager"),
    "admin": _("Administrator"),
}

STATUS_LABELS = {
    "active": _("Active"),
    "temp_disconnected": _("Temporarily disconnected"),
    "perm_disconnected": _("Permanently disconnected"),
    "banned": _("Banned"),
}


@register.simple_tag
def role_label(user) -> str:
    role = role_of(user)
    return str(ROLE_LABELS.get(role, role or ""))


@register.filter
def status_label(status: str) -> str:
    return str(STATUS_LABELS.get(status, status))


@register.filter
def mobile_display(value: str) -> str:
    """'+919437012345' → '94370 12345' (Indian numbers); anything else unchanged."""
    if value and value.startswith("+91") and len(value) == 13:
        return f"{value[3:8]} {value[8:]}"
    return value


@register.inclusion_tag("backoffice/_header.html", takes_context=True)
def staff_header(context):
    request = context.get("request")
    user = getattr(request, "user", None)
    staff = getattr(user, "staff", None) if user is not None and user.is_authenticated else None
    return {
        "request": request,
        "user": user,
        "role": role_label(user) if user is not None else "",
        "office": staff.office if staff is not None and staff.office_id else None,
        "nav_links": navigation.nav_links(user) if user is not None and user.is_authenticated else [],
        "current_path": request.path if request else "",
        "LANGUAGES": settings.LANGUAGES,
        "LANGUAGE_CODE": context.get("LANGUAGE_CODE", "en"),
    }


@register.inclusion_tag("backoffice/_language.html", takes_context=True)
def language_switcher(context):
    request = context.get("request")
    return {
        "LANGUAGES": settings.LANGUAGES,
        "LANGUAGE_CODE": context.get("LANGUAGE_CODE", "en"),
        "next": request.get_full_path() if request else "/",
        "csrf_token": context.get("csrf_token"),
    }
