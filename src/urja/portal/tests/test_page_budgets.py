"""Query budgets of the portal's hot pages for a signed-in consumer (issue 13's portal_api bench:
the cost of a page is mostly its queries' compilation and round trips), so a change that adds a
query per page fails here, not months later in a bench. Counts are the same on SQLite and
PostgreSQL: none of these pages runs a statement that switches PostgreSQL's JIT off and back (the
two extra SET statements notifications/tests/test_bulk.py counts for its bulk INSERT).

Every page: the session, the user with their role (portal.auth.ConsumerBackend: one query), the
picked account — then the page's own reads."""

import re
from datetime import date
from decimal import Decimal

import pytest
from django.urls import reverse

from urja.billing import ledger
from urja.billing import services as billing
from urja.billing.models import Bill
from urja.payments.models import Payment
from urja.portal import selectors
from urja.portal.tests.test_portal_account import billed, sign_in  # noqa: F401  (fixture)

SIGNED_IN = 3  # session, user + role, the picked account


@pytest.fixture
def consumer(client, billed):  # noqa: F811
    sign_in(client)
    return billed


def _page(client, path: str, budget: int, django_assert_max_num_queries) -> str:
    client.get(path)  # the first request of a session may save it; the budget is for the next ones
    with django_assert_max_num_queries(budget):
        response = client.get(path)
    assert response.status_code == 200, path
    return response.content.decode()


def pay_online(client, amount: str = "500") -> None:
    """A payment through the development gateway (order → checkout → signed callback → posted)."""
    order_url = client.post("/portal/pay/", {"amount": amount, "method": "online"})["Location"]
    reference = order_url.rstrip("/").rsplit("/", 1)[1]
    client.post(f"/payments/gateway/dev/{reference}/?next={order_url}", {"outcome": "success"})


def test_home_is_one_query_after_sign_in(client, consumer, django_assert_max_num_queries):
    """Home: the latest bill, the balance and the last payment in one statement."""
    pay_online(client)
    page = _page(client, "/portal/", SIGNED_IN + 1, django_assert_max_num_queries)
    bill = Bill.objects.get(account=consumer)
    payment = Payment.objects.get(account=consumer)
    assert f"₹{ledger.balance(account=consumer)}" in page and f"₹{payment.amount}" in page
    assert reverse("portal:receipt", args=[payment.receipt_number]) in page
    assert reverse("portal:bill", args=[bill.bill_number]) in page
    assert reverse("portal:bill_pdf", args=[bill.bill_number]) in page


def test_bills_list_is_one_query_and_links_as_reverse_does(client, consumer, django_assert_max_num_queries):
    page = _page(client, "/portal/bills/", SIGNED_IN + 1, django_assert_max_num_queries)
    for bill in Bill.objects.filter(account=consumer):
        assert f'href="{reverse("portal:bill", args=[bill.bill_number])}"' in page
        assert f'href="{reverse("portal:bill_pdf", args=[bill.bill_number])}"' in page
    client.cookies["django_language"] = "hi"  # the English copy is linked beside every bill
    hindi = _page(client, "/portal/bills/", SIGNED_IN + 1, django_assert_max_num_queries)
    for bill in Bill.objects.filter(account=consumer):
        assert f'href="{reverse("portal:bill", args=[bill.bill_number])}?lang=en"' in hindi


def test_navigation_links_are_the_portals(client, consumer, django_assert_max_num_queries):
    page = _page(client, "/portal/payments/", SIGNED_IN + 1, django_assert_max_num_queries)
    for name in ("home", "bills", "pay", "payments", "usage", "complaints", "connections", "changes", "profile"):
        assert f'href="{reverse("portal:" + name)}"' in page
    assert f'action="{reverse("portal:logout")}"' in page


def test_bill_document_budget(client, consumer, django_assert_max_num_queries):
    bill = Bill.objects.get(account=consumer)
    # the bill with its account (scope cut) + the document's reads (billing.documents: tariff version,
    # installation, two readings, the usage history)
    page = _page(client, f"/portal/bills/{bill.bill_number}/", SIGNED_IN + 6, django_assert_max_num_queries)
    assert bill.bill_number in page


def test_complaint_track_budget(client, consumer, django_assert_max_num_queries):
    from urja.servicedesk import catalogue

    catalogue.load_file("servicedesk/oerc_sop.toml")
    page = client.get("/portal/complaints/").content.decode()
    choice = re.search(r'value="(no_power_supply/[^"]+)"', page).group(1)
    where = client.post("/portal/complaints/", {"type": choice, "description": "No supply"})["Location"]
    _page(client, "/portal/complaints/", SIGNED_IN + 3, django_assert_max_num_queries)
    # the request (scope cut) + the desk's status view and timeline (schedule, pauses, escalations, events)
    assert "timeline" in _page(client, where, SIGNED_IN + 7, django_assert_max_num_queries)


@pytest.mark.parametrize("paid", [False, True])
def test_home_figures_are_billings(client, consumer, paid):
    """The home's one statement gives what billing.ledger.balance and the ORM give: the balance, the
    latest bill with its fields and types, the last posted payment. The earlier month is billed after
    the later one, so the latest bill is the one of the latest period, not the newest row."""
    run = billing.create_run(cycle="C01", period="2025-05", bill_date=date(2025, 6, 2))
    billing.start_run(run=run)
    assert Bill.objects.filter(account=consumer).count() == 2
    if paid:
        pay_online(client, "300")
        pay_online(client, "200")
    summary = selectors.account_summary(consumer)
    assert summary["balance"] == ledger.balance(account=consumer) and isinstance(summary["balance"], Decimal)
    latest = Bill.objects.filter(account=consumer).order_by("-period_start", "-id").first()
    assert summary["bill"].pk == latest.pk and latest.period_start == date(2025, 6, 1)
    for field in ("bill_number", "period_start", "period_end", "due_date", "units", "net_payable"):
        assert getattr(summary["bill"], field) == getattr(latest, field), field
    posted = Payment.objects.filter(account=consumer, status="posted").order_by("-received_at").first()
    shown = summary["last_payment"]
    if not paid:
        assert posted is None and shown is None
    else:
        assert posted.amount == Decimal("200.00")  # the later of the two
        assert (shown.receipt_number, shown.amount, shown.received_at) == (
            posted.receipt_number, posted.amount, posted.received_at,
        )  # fmt: skip
    assert summary["due"] == max(summary["balance"], Decimal(0))


def test_home_of_an_account_without_a_bill(account):
    summary = selectors.account_summary(account)
    assert summary["bill"] is None and summary["last_payment"] is None and summary["balance"] == Decimal("0.00")


def test_a_view_that_never_asks_for_the_user_reads_nothing(client, consumer, django_assert_max_num_queries):
    """The trivial view of the bench, with a signed-in consumer's cookie: no session, user or role is
    read (SecurityHeadersMiddleware decides `no-store` by the session cookie, not by loading the user),
    and the answer still may not be cached."""
    client.get("/webhooks/ping")
    with django_assert_max_num_queries(0):
        answer = client.get("/webhooks/ping")
    assert answer.status_code == 200 and "no-store" in answer["Cache-Control"]
    anonymous = type(client)().get("/webhooks/ping")
    assert "no-store" not in anonymous.get("Cache-Control", "")


def _same_row(fast, orm) -> None:
    for field in type(orm)._meta.concrete_fields:
        mine, theirs = getattr(fast, field.attname), getattr(orm, field.attname)
        assert mine == theirs and type(mine) is type(theirs), field.name


def test_picked_account_is_the_orms(client, consumer, django_assert_num_queries):
    """The picked account's built-once statement gives what select_related("consumer") gives: every
    column with the ORM's types (SQLite: dates and decimals), the consumer loaded; another consumer's
    account or an unknown number: None."""
    from urja.customers.models import Account

    user = consumer.consumer.user
    orm = Account.objects.select_related("consumer").get(pk=consumer.pk)
    fast = selectors.picked_account(user.pk, consumer.consumer_number)
    _same_row(fast, orm)
    with django_assert_num_queries(0):
        _same_row(fast.consumer, orm.consumer)
    assert fast._state.db == "default" and not fast._state.adding
    other = Account.objects.exclude(pk=consumer.pk).get()
    assert selectors.picked_account(user.pk, other.consumer_number) is None
    assert selectors.picked_account(user.pk, "999999999999") is None


def test_consumer_backend_loads_the_user_with_their_role(client, consumer, django_assert_num_queries):
    from django.contrib.auth import get_user_model

    from urja.core.permissions import role_of
    from urja.portal.auth import ConsumerBackend

    backend, user = ConsumerBackend(), consumer.consumer.user
    with django_assert_num_queries(1):
        loaded = backend.get_user(str(user.pk))
        assert role_of(loaded) == "consumer" and loaded.staff.user is loaded
    orm = get_user_model().objects.select_related("staff").get(pk=user.pk)
    _same_row(loaded, orm)
    _same_row(loaded.staff, orm.staff)
    bare = get_user_model().objects.create_user("no-profile")
    with django_assert_num_queries(1):
        assert role_of(backend.get_user(bare.pk)) is None  # no profile: no role, not another query
    bare.is_active = False
    bare.save()
    assert backend.get_user(bare.pk) is None and backend.get_user(10**9) is None and backend.get_user("x") is None


def test_header_rendered_once_carries_each_pages_token_path_and_language(client, consumer):
    """The header is rendered once per language (portal_nav.portal_header) with stand-ins: each page
    still gets its own CSRF token (the page's, as in its htmx header), its own address as the language
    switcher's `next` (escaped), and the navigation in the reader's language."""
    tokens = []
    for path in ("/portal/bills/?a=<b>&c=1", "/portal/bills/?a=<b>&c=1"):
        page = client.get(path).content.decode()
        token = re.search(r'"X-CSRFToken": "(\w+)"', page).group(1)
        assert page.count(f'name="csrfmiddlewaretoken" value="{token}"') == 2  # switcher and logout
        assert '<input type="hidden" name="next" value="/portal/bills/?a=%3Cb%3E&amp;c=1">' in page
        assert "\x00" not in page
        tokens.append(token)
    assert tokens[0] != tokens[1]  # not one page's token cached for the next
    client.cookies["django_language"] = "hi"
    hindi = client.get("/portal/payments/").content.decode()
    assert 'value="hi" lang="hi" aria-current="true"' in hindi and '<html lang="hi">' in hindi
    from django.utils import translation

    with translation.override("hi"):
        assert f">{translation.gettext('Bills')}</a>" in hindi and translation.gettext("Bills") != "Bills"
    anonymous = type(client)().get("/portal/login/").content.decode()
    assert 'class="portal-nav"' not in anonymous and 'action="/i18n/setlang/"' in anonymous


def test_bill_list_is_the_orms(consumer, django_assert_num_queries):
    """The bill list's built-once statement: the ORM's bills, order (latest period first), limit, field
    values and types, the other fields deferred as only() defers them."""
    run = billing.create_run(cycle="C01", period="2025-05", bill_date=date(2025, 6, 2))
    billing.start_run(run=run)
    orm = list(Bill.objects.filter(account=consumer).only(*selectors.BILL_LIST_FIELDS).order_by("-period_start", "-id"))
    with django_assert_num_queries(1):
        mine = selectors.bills(consumer)
    assert [b.pk for b in mine] == [b.pk for b in orm] and len(mine) == 2
    for fast, theirs in zip(mine, orm, strict=True):
        for name in ("id", *selectors.BILL_LIST_FIELDS):
            assert getattr(fast, name) == getattr(theirs, name) and type(getattr(fast, name)) is type(
                getattr(theirs, name)
            )
        assert fast.get_deferred_fields() == theirs.get_deferred_fields() and "account" not in fast.__dict__
    assert [b.pk for b in selectors.bills(consumer, limit=1)] == [orm[0].pk]
