"""Issue 15 part 7: the mini-grid operator's daily task in a real browser — a cash recharge at the
site's counter, then the screenshot-friendly receipt with the customer's per-site ID and balance."""

from decimal import Decimal

import pytest
from playwright.sync_api import expect

from urja.demo import testing
from urja.minigrid import services
from urja.network.models import MiniGridSite

pytestmark = pytest.mark.browser


def test_operator_recharges_at_the_counter_and_shows_the_receipt(page, login, screenshot, offices):
    site = MiniGridSite.objects.create(
        code="MG01",
        name="Kaptipada solar mini-grid",
        office=offices["section1"],
        village="Nuagaon",
        district="Mayurbhanj",
        capacity_kw=Decimal("30"),
        operator="Gram Urja",
    )
    operator = testing.staff_user("mgoperator", site.office, username="mgop", password="mgop-pass-1")
    customer = services.add_customer(
        actor=operator,
        channel="backoffice",
        site=site,
        name="Sabitri Tudu",
        mobile="9437066666",
        address="Nuagaon",
        package_code="MG-SOLAR-50W",
    )
    login(page, "mgop", "mgop-pass-1")
    page.goto("/minigrid/")
    expect(page.locator("#customers")).to_contain_text(customer.customer_id)
    counter = page.locator("#counter")
    counter.get_by_label("Customer ID").fill(customer.customer_id)
    counter.get_by_label("Amount (₹)").fill("300")
    counter.get_by_label("Paid by").select_option("cash")
    counter.get_by_role("button", name="Recharge").click()
    page.wait_for_url("**/minigrid/receipt/**")
    receipt = page.locator("#receipt")
    expect(receipt).to_contain_text(customer.customer_id)
    expect(receipt).to_contain_text("300")
    screenshot(page, "minigrid-receipt")
