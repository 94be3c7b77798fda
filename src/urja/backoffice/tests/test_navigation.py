"""Issue 15 part 1: navigation from one table of roles — every link and panel a role is shown answers
200 for that role (no 403, no 500); consumers land on the portal; the administrator sees every row."""

import re

import pytest
from django.core.cache import cache
from django.urls import NoReverseMatch, reverse

from urja.backoffice import navigation
from urja.core.models import Role
from urja.core.scope import collect_channels
from urja.demo import testing

ROLES = [
    "cre",
    "billing_officer",
    "engineer",
    "manager",
    "key_account_manager",
    "field_agent",
    "mgagent",
    "mgoperator",
    "superuser",
]


@pytest.fixture(autouse=True)
def _clear_cache():
    cache.clear()


@pytest.fixture
def sop(db):
    from urja.servicedesk import catalogue

    return catalogue.load_file("servicedesk/oerc_sop.toml")[0]


def _user(role, offices):
    from django.contrib.auth import get_user_model

    if role == "superuser":  # an administrator without a staff profile
        return get_user_model().objects.create_superuser(username="root", password="root-pass-1")
    if role == "mgagent":  # the mini-grid's agent: a field agent of the mini-grid's section
        return testing.staff_user("field_agent", offices["section2"], username="mgagent")
    if role == "mgoperator":  # the mini-grid operator: staff of the site's section
        return testing.staff_user("mgoperator", offices["section2"], username="mgoperator")
    division_roles = ("manager", "billing_officer", "key_account_manager")
    office = offices["division1"] if role in division_roles else offices["section1"]
    return testing.staff_user(role, office)


def _links(html: str) -> list[str]:
    nav = re.search(r'<nav aria-label="Main">(.*?)</nav>', html, re.S)
    assert nav, "no main navigation"
    return re.findall(r'href="([^"]+)"', nav.group(1))


@pytest.mark.parametrize("role", ROLES)
def test_every_navigation_link_and_panel_answers_for_the_role(client, offices, sop, role):
    account = testing.domestic_account(
        offices["section1"], load="150", supply_type="ht", unit="kVA", category="industrial", sub_category="large"
    )
    user = _user(role, offices)
    client.force_login(user)
    home = client.get("/backoffice/")
    assert home.status_code == 200
    html = home.content.decode()
    links = _links(html)
    assert "/backoffice/find/" in links
    for url in links:
        if url.startswith("/admin/"):
            continue
        response = client.get(url)
        assert response.status_code == 200, f"{role}: {url} answered {response.status_code}"
    panels = re.findall(r'hx-get="([^"]+)"', html)
    page = client.get(f"/backoffice/accounts/{account.consumer_number}/")
    if page.status_code == 200:  # the account is in the role's scope
        panels += re.findall(r'hx-get="([^"]+)"', page.content.decode())
    for url in panels:
        response = client.get(url, HTTP_HX_REQUEST="true")
        assert response.status_code == 200, f"{role}: panel {url} answered {response.status_code}"


def test_the_administrator_sees_every_row_and_a_role_only_its_own(offices):
    from django.contrib.auth import get_user_model

    root = get_user_model().objects.create_superuser(username="root", password="root-pass-1")
    links = [row.url_name for row in navigation.table() if row.kind == "link"]
    resolvable = {name for name in links if navigation.safe_reverse(name)}
    assert {reverse(name) for name in resolvable} == {link.url for link in navigation.nav_links(root)}
    engineer = testing.staff_user("engineer", offices["section1"])
    urls = {link.url for link in navigation.nav_links(engineer)}
    assert reverse("billing:console") not in urls and reverse("payments:cashier") not in urls
    assert reverse("metering:meters") in urls


def test_cashier_link_only_for_roles_that_collect_at_a_counter(offices):
    """The cashier opens a counter session: a role that may not collect on the counter channel never sees it."""
    counter_roles = set(navigation.roles_for("payments:cashier"))
    for role in set(Role.values) - {Role.CONSUMER, Role.ADMIN}:
        user = testing.staff_user(role, offices["section1"])
        assert (role in counter_roles) == ("counter" in collect_channels(user)), role


def test_consumer_lands_on_the_portal(client, db):
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.create_user(username="c1", password="x-pass-123")
    from urja.core.models import StaffProfile

    StaffProfile.objects.create(user=user, role=Role.CONSUMER)
    client.force_login(user)
    response = client.get("/backoffice/")
    assert response.status_code == 302
    assert response["Location"] == reverse("portal:home")


def test_every_row_names_a_real_page_and_roles():
    for row in navigation.table():
        assert row.roles, row
        try:
            if row.kind == "account_panel":
                reverse(row.url_name, args=["X"])
            else:
                reverse(row.url_name)
        except NoReverseMatch:
            pytest.fail(f"{row.app}: {row.url_name} does not resolve")
        assert row.label("en") and row.label("hi") and row.label("or"), row


def test_labels_follow_the_language():
    row = next(r for r in navigation.table() if r.url_name == "payments:cashier")
    assert row.label("hi") == "कैशियर" and row.label("en") == "Cashier"
