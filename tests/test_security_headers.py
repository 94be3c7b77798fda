"""Security headers: a Content-Security-Policy without inline script on every answer, `no-store` on
API answers and on pages for a signed-in user, and no inline script in any page a role opens (the
CSP would block it, so a page relying on one would silently stop working)."""

import re
from html.parser import HTMLParser

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from urja.core.middleware import CONTENT_SECURITY_POLICY
from urja.core.models import ApiToken


class InlineScriptFinder(HTMLParser):
    """Collects what a CSP with script-src 'self' refuses or what needs eval: inline <script> (a data
    block such as type="application/json" is fine), on*= handlers, javascript: URLs, hx-on, and htmx
    attributes that htmx evaluates as code (js: values, [filter] triggers)."""

    DATA_TYPES = {"application/json", "application/ld+json", "importmap"}

    def __init__(self):
        super().__init__()
        self.problems: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs_d = dict(attrs)
        for name, value in attrs:
            value = (value or "").strip()
            if name.startswith("on") or name.startswith(("hx-on", "data-hx-on")):
                self.problems.append(f"<{tag} {name}=…>")
            elif value.lower().startswith("javascript:"):
                self.problems.append(f"<{tag} {name}={value[:30]}>")
            elif name in ("hx-vals", "hx-vars", "hx-headers") and value.startswith("js:"):
                self.problems.append(f"<{tag} {name}=js:…>")
            elif name == "hx-trigger" and "[" in value:
                self.problems.append(f"<{tag} hx-trigger with an eval filter: {value}>")
        if tag == "script" and not attrs_d.get("src") and (attrs_d.get("type") or "") not in self.DATA_TYPES:
            self.problems.append("<script> without src")


def inline_script(html: str) -> list[str]:
    finder = InlineScriptFinder()
    finder.feed(html)
    return finder.problems


def test_the_finder_finds_what_the_csp_blocks():
    assert inline_script('<script>alert(1)</script><button onclick="x()">') == [
        "<script> without src",
        "<button onclick=…>",
    ]
    assert inline_script('<a href="JavaScript:void(0)">') and inline_script('<div hx-on:click="x">')
    assert inline_script("<input hx-trigger=\"keyup[key=='Enter']\">")
    assert not inline_script('<script src="/static/x.js" defer></script><script type="application/json">{}</script>')


def test_the_policy_allows_no_inline_script():
    directives = dict(d.split(" ", 1) for d in CONTENT_SECURITY_POLICY.split("; "))
    assert directives["script-src"] == "'self'"
    assert directives["object-src"] == "'none'"
    assert directives["frame-ancestors"] == "'none'"
    assert directives["base-uri"] == "'self'"


@pytest.mark.django_db
def test_headers_on_pages_and_api_answers(cre):
    anonymous = Client().get("/login/")
    assert anonymous["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert anonymous["X-Content-Type-Options"] == "nosniff"
    assert anonymous["Referrer-Policy"] == "same-origin"
    assert anonymous["X-Frame-Options"] == "DENY"
    public = Client().get("/portal/")
    assert public["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert "no-store" not in public.get("Cache-Control", "")  # nothing personal: may be cached

    client = Client()
    client.force_login(cre)
    page = client.get("/backoffice/")
    assert page.status_code == 200
    assert "no-store" in page["Cache-Control"] and "private" in page["Cache-Control"]
    assert page["Content-Security-Policy"] == CONTENT_SECURITY_POLICY

    _, raw = ApiToken.issue(user=cre, name="app")
    for answer in (
        Client().get("/api/v1/auth/me", HTTP_AUTHORIZATION=f"Bearer {raw}"),
        Client().get("/api/v1/auth/me"),  # 401: an error answer is not cached either
        Client().post("/api/v1/auth/tokens", {"username": "x", "password": "y"}, content_type="application/json"),
    ):
        assert "no-store" in answer["Cache-Control"], answer.status_code
        assert answer["X-Content-Type-Options"] == "nosniff"


@pytest.mark.django_db
def test_swagger_ui_is_served_locally_without_inline_script(admin_user):
    client = Client()
    client.force_login(admin_user)
    docs = client.get("/api/v1/docs")
    assert docs.status_code == 200
    html = docs.content.decode()
    assert inline_script(html) == []
    assert "cdn." not in html and "https://" not in html  # works offline, within connect/script-src 'self'
    scripts = re.findall(r'<script src="([^"]+)"', html)
    assert scripts and all(s.startswith("/static/ninja/") for s in scripts)
    for src in scripts:
        assert client.get(src).status_code == 200


def _simple_paths():
    """GET paths of the HTML pages that take no parameter (admin and API aside)."""

    def walk(patterns, prefix=""):
        for p in patterns:
            route = str(p.pattern)
            if isinstance(p, URLResolver):
                if not route.startswith(("admin/", "api/", "i18n/")):
                    yield from walk(p.url_patterns, prefix + route)
            elif isinstance(p, URLPattern) and "<" not in route and "(" not in route and route != "logout/":
                yield "/" + prefix + route

    return sorted(set(walk(get_resolver().url_patterns)))


@pytest.fixture
def demo(django_db_blocker, settings):
    from urja.demo import build

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    build(consumers=12, seed=11, stdout=lambda _line: None)


@pytest.mark.django_db
def test_no_page_any_demo_role_opens_has_inline_script(demo):
    from django.contrib.auth import get_user_model

    from urja.billing.models import Bill
    from urja.customers.models import Account
    from urja.demo.staff import LOGINS
    from urja.payments.models import Payment

    account = Account.objects.order_by("id").first()
    cn = account.consumer_number
    paths = [
        *_simple_paths(),
        f"/backoffice/find/?q={cn}",
        f"/backoffice/accounts/{cn}/",
        f"/notifications/accounts/{cn}/panel/",
        f"/metering/accounts/{cn}/",
        f"/metering/accounts/{cn}/panel/",
        f"/billing/account/{cn}/panel/",
        f"/payments/account/{cn}/panel/",
        f"/servicedesk/accounts/{cn}/panel/",
        # Django's admin (the admin login opens it): its scripts are files with data-* settings too
        "/admin/",
        "/admin/auth/user/",
        f"/admin/auth/user/{get_user_model().objects.order_by('pk').first().pk}/change/",
        "/admin/core/apitoken/",
        f"/admin/customers/account/{account.pk}/change/",
    ]
    bill = Bill.objects.order_by("id").first()
    if bill is not None:
        paths.append(f"/billing/bills/{bill.bill_number}/")
    payment = Payment.objects.exclude(receipt_number="").order_by("id").first()
    if payment is not None:
        paths += [
            f"/payments/receipt/{payment.receipt_number}/",
            f"/payments/receipt/{payment.receipt_number}/?layout=thermal",
        ]

    users = {u.username: u for u in get_user_model().objects.filter(username__in=[lg.username for lg in LOGINS])}
    checked = 0
    found: dict[str, list[str]] = {}
    for who in [None, *sorted(users)]:
        client = Client(raise_request_exception=False)
        if who:
            client.force_login(users[who])
        for path in paths:
            response = client.get(path)
            assert response.status_code < 500, (who, path, response.status_code)
            if "text/html" not in response.get("Content-Type", ""):
                continue
            assert response["Content-Security-Policy"] == CONTENT_SECURITY_POLICY, path
            if problems := inline_script(response.content.decode()):
                found[f"{who} {path}"] = problems
            checked += response.status_code == 200
    assert not found, found
    assert checked > 100  # the pages were really rendered, not just refused
