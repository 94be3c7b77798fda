"""Issue 15 part 2: an engineer installs a meter on an account and then replaces it, in a real browser,
from the navigation, on a phone-sized screen."""

import pytest
from playwright.sync_api import expect

from urja.demo import testing
from urja.metering import selectors, services
from urja.metering.models import Installation

pytestmark = pytest.mark.browser


@pytest.fixture
def site(offices):
    testing.staff_user("engineer", offices["division1"], username="je_balasore", password="meter-pass-1")
    account = testing.domestic_account(offices["section1"], name="Basanti Murmu", mobile="9437012345")
    for serial in ("GEN0001", "GEN0002"):
        services.register_meter(serial=serial, make="Genus", meter_type="static", actor=None, channel="system")
    return account


def _fill(page, values: dict):
    for label, value in values.items():
        page.get_by_label(label, exact=True).fill(value)


def test_engineer_installs_then_replaces_a_meter(page, login, screenshot, site):
    page.set_viewport_size({"width": 390, "height": 844})
    login(page, "je_balasore", "meter-pass-1")
    page.get_by_role("link", name="Meter work").first.click()
    page.get_by_role("link", name="Install a meter on an account").click()
    _fill(page, {"Consumer number": site.consumer_number, "Meter serial": "GEN0001", "Initial reading (kWh)": "12"})
    _fill(page, {"Meter location": "Verandah"})
    page.get_by_role("button", name="Save").click()
    page.wait_for_url("**/metering/meters/GEN0001/")
    expect(page.locator(".messages")).to_contain_text("Install a meter on an account")

    page.goto("/metering/work/replace/")
    _fill(page, {"Consumer number": site.consumer_number, "Final reading of the old meter (kWh)": "5"})
    _fill(page, {"New meter serial": "GEN0002", "Reason": "Burnt in storm"})
    page.get_by_label("Old meter is").select_option("burnt")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("alert")).to_contain_text("final")  # below the initial 12: refused, in words
    expect(page.get_by_label("New meter serial")).to_have_value("GEN0002")  # the values stay
    screenshot(page, "meter-replace-refused")
    _fill(page, {"Final reading of the old meter (kWh)": "240"})
    page.get_by_role("button", name="Save").click()
    page.wait_for_url("**/metering/meters/GEN0002/")
    old = Installation.objects.get(meter__serial="GEN0001")
    assert old.final_kwh == 240 and old.removed_at is not None
    assert selectors.current_installation(site).meter.serial == "GEN0002"
    screenshot(page, "meter-replaced")
