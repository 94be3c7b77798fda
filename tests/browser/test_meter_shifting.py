"""Issue 12, meter shifting in a real browser: a CRE registers the consumer's request at the counter,
the section engineer records the site inspection and issues the demand note, the CRE takes the payment,
the engineer records the meter shifted; the meter's installation has its new location."""

import pytest
from playwright.sync_api import expect

from urja.connections.models import ChangeRequest
from urja.demo import testing
from urja.metering import services as metering
from urja.metering.models import Installation
from urja.payments import services as payments
from urja.servicedesk import catalogue, clock

pytestmark = pytest.mark.browser


@pytest.fixture
def metered(offices):
    catalogue.load_file("servicedesk/oerc_sop.toml")
    cre = testing.staff_user("cre", offices["division1"], username="cre_sh", password="sh-pass-1")
    testing.staff_user("engineer", offices["division1"], username="eng_sh", password="sh-pass-2")
    payments.open_session(actor=cre, opening_balance="0")
    account = testing.domestic_account(offices["section1"], mobile="9437066001")
    meter = metering.register_meter(serial="PWSH0001", make="Genus", meter_type="static", actor=None, channel="system")
    metering.install_meter(account=account, meter=meter, actor=None, channel="system", location="outside the gate")
    clock.reset()
    yield account
    clock.reset()


def _as(page, login, username, password):
    page.context.clear_cookies()
    login(page, username, password)


def test_a_meter_shifting_from_the_counter_to_the_field(page, login, screenshot, metered):
    _as(page, login, "cre_sh", "sh-pass-1")
    page.goto("/connections/changes/")
    page.get_by_text("Request meter shifting").click()
    page.get_by_label("Consumer number", exact=True).fill(metered.consumer_number)
    page.get_by_label("Where the consumer wants the meter").fill("verandah, east wall")
    page.get_by_role("button", name="Register the request").click()
    page.wait_for_url("**/connections/changes/CR*/")
    change = ChangeRequest.objects.get(kind="meter_shifting")
    expect(page.locator("#number")).to_have_text(change.number)
    expect(page.locator("#status")).to_have_text("Requested")

    _as(page, login, "eng_sh", "sh-pass-2")
    page.goto(f"/connections/changes/{change.number}/")
    page.get_by_label("Latitude").fill("21.4946")
    page.get_by_label("Longitude").fill("86.9333")
    page.get_by_label("Estimate: material and labour (₹)").fill("650")
    page.get_by_role("button", name="Record inspection").click()
    expect(page.locator("#status")).to_have_text("Site inspected")
    page.locator("#issue-dn").click()
    expect(page.locator("#outstanding")).to_have_text("₹650.00")
    screenshot(page, "meter-shifting-demand-note")

    _as(page, login, "cre_sh", "sh-pass-1")
    page.goto(f"/connections/changes/{change.number}/")
    page.locator("#take-payment").click()
    expect(page.locator("#status")).to_have_text("Paid: field work due")

    _as(page, login, "eng_sh", "sh-pass-2")
    page.goto(f"/connections/changes/{change.number}/")
    page.get_by_label("Signed on the meter sheet by").fill("Sunita Behera")
    page.locator("#shifted").click()
    expect(page.locator("#status")).to_have_text("Applied")
    screenshot(page, "meter-shifted")
    inst = Installation.objects.get(account=metered, removed_at__isnull=True)
    assert inst.location == "verandah, east wall" and inst.meter.serial == "PWSH0001"
