"""Issue 13: a new applicant without an account, on a 360 × 740 phone screen in English, Hindi and Odia
with JavaScript off, signs in with mobile + OTP, applies for a new connection, tracks it, pays the
demand note through the development gateway and opens the receipt."""

import re

import pytest
from playwright.sync_api import expect

from urja.connections import services as conn
from urja.connections.models import Application
from urja.connections.tests.conftest import engineer, loaded  # noqa: F401
from urja.core.labels import label
from urja.notifications.models import OutboxMessage
from urja.payments.models import Payment

pytestmark = pytest.mark.browser

MOBILE = "9861055501"


@pytest.mark.parametrize("language", ["en", "hi", "or"])
def test_applicant_signs_in_applies_tracks_and_pays(browser, live_server, offices, loaded, engineer, language,  # noqa: F811
                                                    screenshot):  # fmt: skip
    context = browser.new_context(
        base_url=live_server.url, viewport={"width": 360, "height": 740}, java_script_enabled=False
    )
    context.add_cookies([{"name": "django_language", "value": language, "url": live_server.url}])
    try:
        page = context.new_page()
        page.goto("/portal/login/")
        page.locator("#mobile").fill(MOBILE)
        page.locator("form.card button").click()
        page.wait_for_url("**/portal/login/code/")
        body = OutboxMessage.objects.filter(event="contact.verify_otp", to=f"+91{MOBILE}").latest("id").body
        page.locator("#code").fill(re.search(r"\b(\d{6})\b", body).group(1))
        page.locator("form.card button").click()
        page.wait_for_url("**/portal/connections/")
        expect(page.locator("#applicant-mobile")).to_have_text(f"+91{MOBILE}")
        assert page.evaluate("document.documentElement.scrollWidth") <= 360

        page.goto("/portal/connections/apply/?applicant_type=owner")
        page.locator("#name").fill("Sasmita Behera")
        page.locator("#section").select_option(str(offices["section1"].pk))
        page.locator("#doc-identity_proof").check()
        page.locator("#proof-identity_proof").select_option("voter_id")
        page.locator("#number-identity_proof").fill("OR/05/123/456")
        page.locator("#doc-photograph").check()
        page.locator("#doc-ownership_proof").check()
        page.locator("#proof-ownership_proof").select_option("land_record")
        page.locator("#number-ownership_proof").fill("KH-1021")
        page.locator("#address").fill("House 12, Motiganj, Balasore")
        page.locator("#lat").fill("21.4945")
        page.locator("#lon").fill("86.9332")
        page.locator("#load").fill("2")
        screenshot(page, f"portal-applicant-apply-{language}")
        assert page.evaluate("document.documentElement.scrollWidth") <= 360
        page.locator("#apply button[name=submit]").click()
        page.wait_for_url(re.compile(r".*/portal/connections/NC[A-Z0-9]+/$"))
        app = Application.objects.get()
        assert app.channel == "website" and app.mobile == f"+91{MOBILE}"
        expect(page.locator("#application-number")).to_have_text(app.number)
        expect(page.locator("#application-status")).to_have_text(label("registered", language))
        screenshot(page, f"portal-applicant-application-{language}")

        # the section office inspects and issues the demand note; the applicant pays it on the web
        conn.record_inspection(actor=engineer, channel="section_office", application=app, feasible=True,
                               distance_m=20)  # fmt: skip
        conn.issue_demand_note(actor=engineer, channel="section_office", application=app)
        page.reload()
        expect(page.locator("#application-status")).to_have_text(label("dn_issued", language))
        page.locator("form.card button").click()
        page.wait_for_url("**/payments/gateway/dev/**")
        page.locator("button[value=success]").click()
        page.locator(f"a[href='/portal/connections/{app.number}/']").click()
        expect(page.locator("#application-paid")).to_be_visible()
        payment = Payment.objects.get(account__application=app)
        page.locator(f"#application-receipts a[href='/portal/receipts/{payment.receipt_number}/']").click()
        expect(page.locator("#receipt-amount")).to_contain_text(f"{payment.amount}")
        screenshot(page, f"portal-applicant-receipt-{language}")

        assert conn.sweep_paid_demand_notes() == 1
        page.goto(f"/portal/connections/{app.number}/")
        expect(page.locator("#application-status")).to_have_text(label("dn_paid", language))
    finally:
        context.close()
