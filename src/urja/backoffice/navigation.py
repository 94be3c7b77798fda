"""Links between the back office and the other apps, resolved safely.

Apps plug into the back-office shell by URL name only (no imports of their views):
    <app>:home                    main staff page of the app → a link in the top navigation
    <app>:account_panel  (number) fragment shown on the 360° account page, loaded lazily by HTMX
    <app>:home_panel              fragment shown on /backoffice/ (quick figures of the user's scope)
An app may instead list its navigation entries in its urls module:
    BACKOFFICE_NAV = [(gettext_lazy("Service requests"), "servicedesk:queue"), ...]
Entries whose URL name does not resolve are simply left out, so the shell works whatever is installed.
"""

from dataclasses import dataclass
from importlib import import_module

from django.urls import NoReverseMatch, reverse
from django.utils.translation import gettext_lazy as _

# Apps that can contribute pages and panels, in display order.
PANEL_APPS = ("metering", "billing", "payments", "servicedesk", "notifications")
NAV_APPS = ("servicedesk", "billing", "payments", "metering", "tariffs", "notifications", "customers")
APP_LABELS = {
    "metering": _("Meter"),
    "billing": _("Bills"),
    "payments": _("Payments"),
    "servicedesk": _("Requests & complaints"),
    "notifications": _("Messages"),
    "tariffs": _("Tariffs"),
    "customers": _("Customers"),
}


def safe_reverse(name: str, args=None, kwargs=None) -> str | None:
    """`reverse(name)` or None when the URL name (or its namespace) does not exist."""
    try:
        return reverse(name, args=args, kwargs=kwargs)
    except NoReverseMatch:
        return None


@dataclass(frozen=True)
class Link:
    label: str
    url: str
    app: str = ""


def _declared_nav(app: str) -> list[tuple]:
    try:
        module = import_module(f"urja.{app}.urls")
    except ImportError:
        return []
    return list(getattr(module, "BACKOFFICE_NAV", []))


def nav_links() -> list[Link]:
    """Top-navigation links of the other apps that are present (Find consumer comes first, added by the shell)."""
    links: list[Link] = []
    for app in NAV_APPS:
        declared = _declared_nav(app)
        if declared:
            for label, name, *_rest in declared:
                url = safe_reverse(name)
                if url:
                    links.append(Link(str(label), url, app))
            continue
        url = safe_reverse(f"{app}:home")
        if url:
            links.append(Link(str(APP_LABELS.get(app, app.title())), url, app))
    return links


def account_panels(consumer_number: str) -> list[Link]:
    """Lazy panels of the 360° page: one per app that has an `account_panel` view."""
    panels = []
    for app in PANEL_APPS:
        url = safe_reverse(f"{app}:account_panel", args=[consumer_number])
        if url:
            panels.append(Link(str(APP_LABELS[app]), url, app))
    return panels


def home_panels() -> list[Link]:
    panels = []
    for app in PANEL_APPS:
        url = safe_reverse(f"{app}:home_panel")
        if url:
            panels.append(Link(str(APP_LABELS[app]), url, app))
    return panels
