"""Issue 12 "Done when": a CRE takes a new-connection application from registration through the site
inspection, the demand note and its payment to energization, and the consumer number appears (the
section engineer does the field steps under their own login)."""

import pytest
from django.conf import settings
from playwright.sync_api import expect

from urja.connections.models import Application
from urja.demo import testing
from urja.metering import services as metering
from urja.payments import services as payments
from urja.servicedesk import catalogue, clock
from urja.tariffs import services as tariffs

pytestmark = pytest.mark.browser


@pytest.fixture
def people(offices):
    for path in sorted((settings.DATA_DIR / "tariffs").glob("oerc_rst_*.toml")):
        tariffs.load_file(path=path)
    catalogue.load_file("servicedesk/oerc_sop.toml")
    cre = testing.staff_user("cre", offices["division1"], username="cre_nc", password="nc-pass-1")
    testing.staff_user("engineer", offices["division1"], username="eng_nc", password="nc-pass-2")
    payments.open_session(actor=cre, opening_balance="0")
    metering.register_meter(serial="PWNC0001", make="Genus", meter_type="static", actor=None, channel="system")
    clock.reset()
    yield offices
    clock.reset()


def _as(page, login, username, password):
    page.context.clear_cookies()
    login(page, username, password)


def test_cre_takes_an_application_to_energization_and_the_consumer_number_appears(page, login, screenshot, people):
    offices = people
    _as(page, login, "cre_nc", "nc-pass-1")
    page.goto("/connections/new/?applicant_type=owner")
    page.get_by_label("Name", exact=True).fill("Sasmita Nayak")
    page.get_by_label("Mobile").fill("9861077001")
    page.get_by_role("checkbox", name="Identity proof of applicant").check()
    page.get_by_label("Proof Identity proof of applicant").select_option("voter_id")
    page.get_by_role("textbox", name="Number Identity proof of applicant").fill("OR/05/123/456")
    page.get_by_role("checkbox", name="Photograph of applicant").check()
    page.get_by_role("checkbox", name="Ownership proof", exact=True).check()
    page.get_by_label("Proof Ownership proof").select_option("land_record")
    page.get_by_role("textbox", name="Number Ownership proof").fill("KH-1021")
    page.get_by_label("Premises address").fill("House 12, Motiganj, Balasore")
    page.get_by_label("Latitude").fill("21.4945")
    page.get_by_label("Longitude").fill("86.9332")
    page.get_by_label("Section office").select_option(offices["section1"].code)
    page.get_by_label("Load", exact=True).fill("2")
    page.get_by_role("button", name="Register").click()
    page.wait_for_url("**/connections/applications/*/")
    app = Application.objects.get()
    assert page.url.endswith(f"/connections/applications/{app.number}/")
    expect(page.locator("#number")).to_have_text(app.number)
    expect(page.locator("#status")).to_have_text("Registered")
    screenshot(page, "connections-registered")

    _as(page, login, "eng_nc", "nc-pass-2")
    page.goto(f"/connections/applications/{app.number}/")
    page.get_by_label("Distance to the connecting point (m)").fill("18")
    page.get_by_role("button", name="Record inspection").click()
    expect(page.locator("#status")).to_have_text("Site inspected")
    page.get_by_role("button", name="Issue demand note").click()
    expect(page.locator("#status")).to_have_text("Demand note issued")
    expect(page.locator("#demand-note")).to_contain_text("Security deposit")
    screenshot(page, "connections-demand-note")

    _as(page, login, "cre_nc", "nc-pass-1")
    page.goto(f"/connections/applications/{app.number}/")
    page.locator("#take-payment").click()
    expect(page.locator("#status")).to_have_text("Demand note paid")
    expect(page.locator("#outstanding")).to_contain_text("0.00")

    _as(page, login, "eng_nc", "nc-pass-2")
    page.goto(f"/connections/applications/{app.number}/")
    page.get_by_label("Meter serial").fill("PWNC0001")
    page.locator("#energize").click()
    expect(page.locator("#status")).to_have_text("Energized")
    app.refresh_from_db()
    expect(page.locator("#consumer-number")).to_contain_text(app.account.consumer_number)
    screenshot(page, "connections-energized")
