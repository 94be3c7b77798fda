"""Issue 13 "Done when": on a 360 × 740 phone screen, in English, Hindi and Odia, a consumer signs in
with mobile + OTP, opens the bill PDF, pays through the development gateway and gets the receipt, then
lodges a complaint and tracks it — JavaScript off, since the core flows must not need it."""

import re
from datetime import date

import pytest
from playwright.sync_api import expect

from urja.billing import services as billing
from urja.billing.models import Bill
from urja.billing.tests.conftest import metered_account, steady
from urja.connections.models import Application
from urja.core.labels import label
from urja.notifications.models import OutboxMessage
from urja.servicedesk import catalogue
from urja.tariffs import services as tariffs

pytestmark = pytest.mark.browser

WORDS = {  # one phrase per page, as the consumer reads it
    "en": {"send": "Send code", "sign_in": "Sign in", "due": "Amount due", "pay": "Pay now", "continue": "Continue"},
    "hi": {"send": "कोड भेजें", "sign_in": "साइन इन करें", "due": "देय राशि", "pay": "अभी भुगतान करें"},
    "or": {"send": "କୋଡ୍ ପଠାନ୍ତୁ", "sign_in": "ସାଇନ୍ ଇନ୍ କରନ୍ତୁ", "due": "ଦେୟ ରାଶି", "pay": "ଏବେ ପେମେଣ୍ଟ କରନ୍ତୁ"},
}


@pytest.fixture
def billed(offices):
    for path in sorted(tariffs.tariff_dir().glob("*.toml")):
        if path.name != "navigation.toml":
            tariffs.load_file(path=path)
    catalogue.load_file("servicedesk/oerc_sop.toml")
    account = metered_account(offices["section1"], mobile="9437012345", readings=steady(250))
    billing.start_run(run=billing.create_run(cycle="C01", period="2025-06", bill_date=date(2025, 7, 2)))
    return account


@pytest.mark.parametrize("language", ["en", "hi", "or"])
def test_phone_sign_in_bill_pay_receipt_complaint(browser, live_server, billed, language, screenshot):
    words = WORDS[language]
    context = browser.new_context(
        base_url=live_server.url, viewport={"width": 360, "height": 740}, java_script_enabled=False
    )
    context.add_cookies([{"name": "django_language", "value": language, "url": live_server.url}])
    try:
        page = context.new_page()
        page.goto("/portal/login/")
        expect(page.locator("html")).to_have_attribute("lang", language)
        page.locator("#mobile").fill("9437012345")
        page.get_by_role("button", name=words["send"]).click()
        page.wait_for_url("**/portal/login/code/")
        body = OutboxMessage.objects.filter(event="contact.verify_otp").latest("id").body
        page.locator("#code").fill(re.search(r"\b(\d{6})\b", body).group(1))
        page.locator("form.card").get_by_role("button").click()
        page.wait_for_url("**/portal/")
        expect(page.locator("h1").first).to_have_text(words["due"])
        bill = Bill.objects.get(account=billed)
        expect(page.locator("#balance")).to_contain_text(f"{bill.net_payable}")
        assert page.evaluate("document.documentElement.scrollWidth") <= 360  # no sideways scrolling
        screenshot(page, f"portal-home-{language}")

        pdf = context.request.get(f"/portal/bills/{bill.bill_number}/pdf/")
        assert pdf.status == 200 and pdf.body()[:4] == b"%PDF"

        page.get_by_role("link", name=words["pay"]).click()
        due = f"{bill.net_payable}"  # the whole balance: an applicant with dues may not apply (below)
        page.locator("#amount").fill(due)
        page.locator("input[value=online]").check()
        page.locator("form.card button").click()
        page.locator("a.button[href*='/payments/gateway/dev/']").click()
        page.locator("button[value=success]").click()
        page.locator("a[href*='/portal/pay/']").click()
        page.locator("a[href*='/portal/receipts/']").click()
        expect(page.locator("#receipt-amount")).to_contain_text(due)
        screenshot(page, f"portal-receipt-{language}")

        page.goto("/portal/complaints/")
        option = page.locator("#type option[value^='no_power_supply/']").first.get_attribute("value")
        page.locator("#type").select_option(option)
        page.locator("form.card button").click()
        page.wait_for_url(re.compile(r".*/portal/complaints/[A-Z0-9]+/$"))
        expect(page.locator("ol.timeline li").first).to_be_visible()
        screenshot(page, f"portal-complaint-{language}")

        # apply for a new connection on the website: checklist of an owner, premises, supply; then track it
        page.goto("/portal/connections/apply/?applicant_type=owner")
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
        page.locator("#apply button[name=submit]").click()
        page.wait_for_url(re.compile(r".*/portal/connections/[A-Z0-9/-]+/$"))
        app = Application.objects.get(consumer=billed.consumer)
        assert app.channel == "website" and app.section_id == billed.section_id
        expect(page.locator("#application-number")).to_have_text(app.number)
        expect(page.locator("#application-status")).to_have_text(label("registered", language))
        expect(page.locator("ol.timeline li").first).to_contain_text(label("registered", language))
        screenshot(page, f"portal-application-{language}")

        # a change the channel matrix allows on the website (load change), lodged and listed with its status
        page.goto("/portal/changes/")
        page.locator("#change-load_change #load").fill("7")
        page.locator("#change-load_change button").click()
        page.wait_for_url("**/portal/changes/")
        expect(page.locator("#changes li").first).to_contain_text(label("load_change", language))
        expect(page.locator("#changes li .status").first).to_have_text(label("requested", language))
        assert billed.change_requests.get().channel == "website"
    finally:
        context.close()
