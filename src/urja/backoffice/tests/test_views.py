"""Back-office shell through Django's test client: access, scope, search, 360° page and staff actions."""

import re

import pytest
from django.core.cache import cache
from django.urls import reverse

from urja.core.models import AuditEvent
from urja.customers import services
from urja.customers.models import Account, Contact
from urja.demo import testing


@pytest.fixture(autouse=True)
def _clear_cache():
    cache.clear()


@pytest.fixture
def cre_client(client, cre):
    client.force_login(cre)
    return client


@pytest.fixture
def other_account(offices):
    return testing.domestic_account(offices["section2"], name="Rabindra Mohanty", mobile="9861098610")


def test_anonymous_is_sent_to_login(client, account):
    for url in ("/backoffice/", "/backoffice/find/?q=Sunita", f"/backoffice/accounts/{account.consumer_number}/"):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith("/login/?next=")


def test_user_without_staff_role_is_refused(client, db, account):
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.create_user(username="nobody", password="x-pass-123")
    client.force_login(user)
    assert client.get("/backoffice/").status_code == 403
    assert client.get(f"/backoffice/accounts/{account.consumer_number}/").status_code == 403


def test_home_shows_role_office_and_scope_counts(cre_client, cre, account, other_account):
    page = cre_client.get("/backoffice/").content.decode()
    assert "Customer relationship executive" in page
    assert cre.staff.office.name in page
    # one account in division 1 (the CRE's), the other division's account is not counted
    assert "<dd>1</dd>" in page


@pytest.mark.parametrize("how", ["number", "prefix", "mobile", "mobile_e164", "name", "name_lower"])
def test_find_consumer_by_number_mobile_and_name(cre_client, account, how):
    queries = {
        "number": account.consumer_number,
        "prefix": account.consumer_number[:6],
        "mobile": "9437012345",
        "mobile_e164": "+91 94370 12345",
        "name": "Sunita Beh",
        "name_lower": "sunita",
    }
    response = cre_client.get("/backoffice/find/", {"q": queries[how]})
    assert response.status_code == 200
    assert reverse("backoffice:account", args=[account.consumer_number]) in response.content.decode()


def test_find_consumer_htmx_returns_only_the_table(cre_client, account):
    response = cre_client.get(
        "/backoffice/find/", {"q": "9437012345"}, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="results"
    )
    html = response.content.decode()
    assert "<html" not in html
    assert "<table" in html and account.consumer_number in html


def test_find_consumer_without_js_renders_the_full_page(cre_client, account):
    html = cre_client.get("/backoffice/find/", {"q": "9437012345"}).content.decode()
    assert "<html" in html and 'id="results"' in html and account.consumer_number in html


def test_find_consumer_hides_other_divisions(cre_client, other_account):
    html = cre_client.get("/backoffice/find/", {"q": "9861098610"}).content.decode()
    assert other_account.consumer_number not in html
    assert "No account in your scope" in html


def test_find_consumer_short_query_does_not_search(cre_client, account):
    html = cre_client.get("/backoffice/find/", {"q": "S"}).content.decode()
    assert account.consumer_number not in html
    assert "at least 2 characters" in html


def test_admin_sees_every_division(client, admin_user, other_account):
    client.force_login(admin_user)
    html = client.get("/backoffice/find/", {"q": "9861098610"}).content.decode()
    assert other_account.consumer_number in html
    assert client.get(f"/backoffice/accounts/{other_account.consumer_number}/").status_code == 200


def test_360_page_shows_the_account(cre_client, account):
    services.add_kyc_document(
        actor=None,
        channel="system",
        consumer=account.consumer,
        document_code="identity_proof",
        proof_type="aadhaar",
        number="234123412346",
    )
    response = cre_client.get(f"/backoffice/accounts/{account.consumer_number}/")
    html = response.content.decode()
    assert response.status_code == 200
    assert account.consumer_number in html and "Sunita Behera" in html
    assert "94370 12345" in html and "verified" in html
    assert "XXXX XXXX 2346" in html or "2346" in html
    assert "234123412346" not in html  # never the full Aadhaar
    assert "account.opened" in html  # audit trail
    assert "Balasore Electrical Division" in html  # office chain


def test_360_page_of_other_division_is_404_like_an_unknown_number(cre_client, other_account, account):
    assert cre_client.get(f"/backoffice/accounts/{other_account.consumer_number}/").status_code == 404
    assert cre_client.get("/backoffice/accounts/00000000000/").status_code == 404
    # actions on an out-of-scope account are refused the same way and change nothing
    response = cre_client.post(
        f"/backoffice/accounts/{other_account.consumer_number}/contacts/", {"kind": "mobile", "value": "9437099999"}
    )
    assert response.status_code == 404
    assert not Contact.objects.filter(value="+919437099999").exists()


def test_add_contact_without_a_verified_mobile_is_saved_unverified(cre_client, cre, offices):
    """Nothing to ask and nothing to take over: the contact is added, never verified by staff."""
    account = testing.domestic_account(offices["section1"], mobile=None)
    url = f"/backoffice/accounts/{account.consumer_number}/contacts/"
    response = cre_client.post(url, {"kind": "mobile", "value": "9861012345", "verified": "on"})
    assert response.status_code == 302
    contact = Contact.objects.get(consumer=account.consumer, value="+919861012345")
    assert contact.is_primary and not contact.verified  # staff cannot verify it (issue 13.5): a code does
    event = AuditEvent.objects.get(action="contact.added", object_id=str(account.consumer_id))
    assert event.actor == cre and event.channel == "backoffice"
    page = cre_client.get(response["Location"]).content.decode()
    assert "Contact saved." in page


def test_a_contact_change_needs_the_consumers_code_on_the_page(cre_client, cre, account):
    """The consumer has a verified mobile: a code goes there, the page asks for it, and only the right code
    makes the new number the primary one (issue 13.5)."""
    from urja.notifications.models import OutboxMessage

    url = f"/backoffice/accounts/{account.consumer_number}/contacts/"
    step = cre_client.post(url, {"kind": "mobile", "value": "9861012345"})
    page = step.content.decode()
    assert step.status_code == 200 and "Confirm with the code" in page and "+91•••••345" in page
    assert not Contact.objects.filter(value="+919861012345").exists()
    message = OutboxMessage.objects.get(event="contact.verify_otp")
    assert message.to == "+919437012345"  # the consumer's verified mobile, not the new number
    token = re.search(r'name="token" value="([^"]+)"', page).group(1)
    code = re.search(r"\b(\d{6})\b", message.body).group(1)
    confirm = f"/backoffice/accounts/{account.consumer_number}/contacts/confirm/"
    body = {"token": token, "kind": "mobile", "value": "+919861012345"}
    wrong = cre_client.post(confirm, {**body, "code": "000000" if code != "000000" else "111111"})
    again = wrong.content.decode()
    assert wrong.status_code == 400 and "Confirm with the code" in again and "+91•••••345" in again
    assert not Contact.objects.filter(value="+919861012345").exists()
    done = cre_client.post(confirm, {**body, "code": code})
    assert done.status_code == 302
    contact = Contact.objects.get(consumer=account.consumer, value="+919861012345")
    assert contact.is_primary and not contact.verified
    assert AuditEvent.objects.get(action="contact.consented", object_id=str(account.consumer_id)).actor == cre
    assert "Contact saved with the consumer" in cre_client.get(done["Location"]).content.decode()
    assert cre_client.post(confirm, {**body, "code": code}).status_code == 400  # a code works once


def test_add_contact_bad_mobile_shows_the_error_and_saves_nothing(cre_client, account):
    before = Contact.objects.count()
    response = cre_client.post(
        f"/backoffice/accounts/{account.consumer_number}/contacts/", {"kind": "mobile", "value": "12345"}
    )
    assert response.status_code == 400
    assert "is not a valid Indian mobile number" in response.content.decode()
    assert Contact.objects.count() == before


def test_set_language(cre_client, account):
    response = cre_client.post(f"/backoffice/accounts/{account.consumer_number}/language/", {"language": "or"})
    assert response.status_code == 302
    account.consumer.refresh_from_db()
    assert account.consumer.preferred_language == "or"


def test_cre_may_not_change_status(cre_client, account):
    url = f"/backoffice/accounts/{account.consumer_number}/status/"
    assert cre_client.post(url, {"status": "temp_disconnected", "reason": "x"}).status_code == 403
    account.refresh_from_db()
    assert account.status == "active"


def test_manager_changes_status_with_reason(client, offices, account):
    manager = testing.staff_user("manager", offices["division1"])
    client.force_login(manager)
    url = f"/backoffice/accounts/{account.consumer_number}/status/"
    response = client.post(url, {"status": "temp_disconnected", "reason": ""})
    assert response.status_code == 400 and "This field is required." in response.content.decode()
    assert Account.objects.get(pk=account.pk).status == "active"
    response = client.post(url, {"status": "temp_disconnected", "reason": "Arrears beyond due date"})
    assert response.status_code == 302
    assert Account.objects.get(pk=account.pk).status == "temp_disconnected"
    event = AuditEvent.objects.get(action="account.status_changed", object_id=str(account.pk))
    assert event.changes["reason"] == "Arrears beyond due date" and event.actor == manager
    # a transition outside the state machine is not even offered
    response = client.post(url, {"status": "temp_disconnected", "reason": "again"})
    assert response.status_code == 400
    assert "Select a valid choice" in response.content.decode()


def test_language_switch_translates_the_shell(cre_client):
    cre_client.post("/i18n/setlang/", {"language": "hi", "next": "/backoffice/find/"})
    html = cre_client.get("/backoffice/find/").content.decode()
    assert 'lang="hi"' in html
    assert "उपभोक्ता खोजें" in html
    cre_client.post("/i18n/setlang/", {"language": "or", "next": "/backoffice/find/"})
    html = cre_client.get("/backoffice/find/").content.decode()
    assert 'lang="or"' in html
    assert "ଗ୍ରାହକ ଖୋଜନ୍ତୁ" in html


def test_panels_of_other_apps_are_lazy_sections(cre_client, cre, account):
    from urja.backoffice import navigation

    html = cre_client.get(f"/backoffice/accounts/{account.consumer_number}/").content.decode()
    panels = navigation.account_panels(account.consumer_number, cre)
    assert {"metering", "billing", "payments", "servicedesk"} <= {panel.app for panel in panels}
    for panel in panels:
        assert f'hx-get="{panel.url}"' in html


def test_safe_reverse():
    from urja.backoffice.navigation import safe_reverse

    assert safe_reverse("backoffice:find") == "/backoffice/find/"
    assert safe_reverse("nosuchapp:home") is None
    assert safe_reverse("backoffice:account") is None  # missing argument


def test_pages_use_a_bounded_number_of_queries(cre_client, account, django_assert_max_num_queries):
    # 20 search results or a busy 360° page must not turn into one query per row.
    for i in range(5):
        testing.domestic_account(account.section, name=f"Sunita Behera {i}", mobile=f"94370{i:05d}")
    with django_assert_max_num_queries(8):
        assert cre_client.get("/backoffice/find/", {"q": "Sunita"}).status_code == 200
    with django_assert_max_num_queries(16):
        assert cre_client.get(f"/backoffice/accounts/{account.consumer_number}/").status_code == 200
