"""The back office's navigation, from one table of roles (data, issue 15 part 1).

Every app contributes its rows in `data/<app>/navigation.toml` (apps taken from
`urja.apps_registry.URJA_APPS`, so a new app needs no edit here):

    [[link]]                         # a top-navigation link
    url = "payments:cashier"         # URL name (no arguments)
    label = { en = "Cashier", hi = "कैशियर", or = "କ୍ୟାସିଅର" }
    roles = ["cre", "billing_officer", "manager"]   # or ["staff"]: every staff role
    order = 300                      # position in the bar (lower first)

    [[home_panel]]                   # a fragment on /backoffice/ (URL name, no arguments)
    [[account_panel]]                # a fragment on the 360° page (URL name taking the consumer number)

A row is shown only to the roles it names — where the role may act — and only when its URL name
resolves (an app that is not installed simply contributes nothing). The administrator (a superuser,
with or without a staff profile) sees every row. Consumers have no back office: they land on the
portal (`landing_url`).

Legacy: an app without a navigation.toml may still declare `BACKOFFICE_NAV = [(label, url_name)]` in
its urls.py; those links are shown to every staff role (the every-link test then tells whether that
holds).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import lru_cache
from importlib import import_module
from pathlib import Path

from django.conf import settings
from django.urls import NoReverseMatch, reverse
from django.utils.translation import get_language

from urja.apps_registry import URJA_APPS
from urja.core.models import Role
from urja.core.permissions import ALL_STAFF_ROLES, role_of

KINDS = ("link", "home_panel", "account_panel")
STAFF = "staff"


def safe_reverse(name: str, args=None, kwargs=None) -> str | None:
    """`reverse(name)` or None when the URL name (or its namespace) does not exist."""
    try:
        return reverse(name, args=args, kwargs=kwargs)
    except NoReverseMatch:
        return None


@dataclass(frozen=True)
class Row:
    kind: str
    app: str
    url_name: str
    labels: tuple[tuple[str, str], ...]
    roles: frozenset[str]
    order: int

    def label(self, language: str | None = None) -> str:
        labels = dict(self.labels)
        language = (language or get_language() or "en").split("-")[0]
        return labels.get(language) or labels.get("en") or self.url_name

    def allows(self, role: str | None) -> bool:
        if role is None or role == Role.CONSUMER:
            return False
        return role == Role.ADMIN or role in self.roles


@dataclass(frozen=True)
class Link:
    label: str
    url: str
    app: str = ""


class NavigationDataError(ValueError):
    pass


def _roles(value, where: str) -> frozenset[str]:
    roles = set()
    for role in value:
        if role == STAFF:
            roles |= set(ALL_STAFF_ROLES)
        elif role in Role.values and role != Role.CONSUMER:
            roles.add(role)
        else:
            raise NavigationDataError(f"{where}: unknown role {role!r}")
    return frozenset(roles)


def _rows_of(app: str, document: dict, where: str) -> list[Row]:
    rows = []
    for kind in KINDS:
        for i, item in enumerate(document.get(kind, [])):
            spot = f"{where} [[{kind}]] #{i + 1}"
            try:
                url_name, label, roles = item["url"], item["label"], item["roles"]
            except KeyError as exc:
                raise NavigationDataError(f"{spot}: missing {exc.args[0]!r}") from exc
            labels = {"en": label} if isinstance(label, str) else dict(label)
            if "en" not in labels:
                raise NavigationDataError(f"{spot}: the label needs an English text")
            order = int(item.get("order", 500))
            rows.append(Row(kind, app, url_name, tuple(sorted(labels.items())), _roles(roles, spot), order))
    return rows


def _legacy_rows(app: str) -> list[Row]:
    try:
        module = import_module(f"urja.{app}.urls")
    except ImportError:
        return []
    return [
        Row("link", app, name, (("en", str(label)),), frozenset(ALL_STAFF_ROLES), 900)
        for label, name, *_rest in getattr(module, "BACKOFFICE_NAV", [])
    ]


@lru_cache(maxsize=1)
def table() -> tuple[Row, ...]:
    """Every row of every app's navigation.toml, in display order (order, then app layer)."""
    rows: list[Row] = []
    for layer, app in enumerate(URJA_APPS):
        file = Path(settings.DATA_DIR) / app / "navigation.toml"
        if file.exists():
            try:
                document = tomllib.loads(file.read_text(encoding="utf-8"))
            except tomllib.TOMLDecodeError as exc:
                raise NavigationDataError(f"{file}: {exc}") from exc
            rows += [(row, layer) for row in _rows_of(app, document, str(file))]
        else:
            rows += [(row, layer) for row in _legacy_rows(app)]
    rows.sort(key=lambda pair: (pair[0].order, pair[1]))
    return tuple(row for row, _layer in rows)


def rows_for(user, kind: str) -> list[Row]:
    role = role_of(user)
    return [row for row in table() if row.kind == kind and row.allows(role)]


def roles_for(url_name: str) -> frozenset[str]:
    """The roles (besides admin) that the table lets see `url_name`: for the views that want to ask."""
    found = [row.roles for row in table() if row.url_name == url_name]
    return frozenset().union(*found) if found else frozenset()


def nav_links(user) -> list[Link]:
    """Top-navigation links for `user` whose pages exist."""
    links = []
    for row in rows_for(user, "link"):
        url = safe_reverse(row.url_name)
        if url:
            links.append(Link(row.label(), url, row.app))
    return links


def account_panels(consumer_number: str, user) -> list[Link]:
    """Lazy panels of the 360° page that `user` may load."""
    panels = []
    for row in rows_for(user, "account_panel"):
        url = safe_reverse(row.url_name, args=[consumer_number])
        if url:
            panels.append(Link(row.label(), url, row.app))
    return panels


def home_panels(user) -> list[Link]:
    panels = []
    for row in rows_for(user, "home_panel"):
        url = safe_reverse(row.url_name)
        if url:
            panels.append(Link(row.label(), url, row.app))
    return panels


def landing_url(user) -> str:
    """Where a logged-in user belongs: consumers on the portal, staff in the back office."""
    if role_of(user) == Role.CONSUMER:
        return safe_reverse("portal:home") or "/"
    return reverse("backoffice:home")
