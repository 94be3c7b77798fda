"""Issue 15: each role's main daily task in a real browser — the billing officer reviews and approves
a bill run of its division; the mini-grid agent takes a reading from the route book; a consumer who
logs in lands on the portal."""

from datetime import date

import pytest
from playwright.sync_api import expect

from urja.billing.models import Bill, BillRun
from urja.billing.tests.conftest import metered_account, steady
from urja.customers.models import Account
from urja.demo import testing

pytestmark = pytest.mark.browser


def test_billing_officer_reviews_and_approves_a_run_of_its_division(page, login, screenshot, offices):
    from urja.tariffs import services as tariffs

    tariffs.load_all()
    mine = metered_account(offices["section1"], readings=steady(250), name="Sunita Behera")
    theirs = metered_account(offices["section2"], readings=steady(250), name="Rabi Behera")
    testing.staff_user("billing_officer", offices["division1"], username="billing_bls", password="bill-pass-1")
    login(page, "billing_bls", "bill-pass-1")
    page.get_by_role("link", name="Bill runs").click()
    page.locator("#run-cycle").select_option("C01")
    page.get_by_label("Period (YYYY-MM), ended").fill("2025-06")
    expect(page.get_by_label("Division")).to_contain_text(offices["division1"].name)
    expect(page.get_by_label("Review the bills before they are posted and e-bills sent (recommended)")).to_be_checked()
    page.get_by_role("button", name="Start").click()
    expect(page.get_by_role("button", name="Approve and post the bills")).to_be_visible(timeout=30_000)
    assert not Bill.objects.exists()
    screenshot(page, "billing-review")
    page.get_by_role("button", name="Approve and post the bills").click()
    expect(page.locator("#progress")).to_contain_text("Done", timeout=30_000)
    assert list(Bill.objects.values_list("account_id", flat=True)) == [mine.pk]
    assert theirs.pk not in Bill.objects.values_list("account_id", flat=True)
    assert BillRun.objects.filter(dry_run=False).count() == 1
    screenshot(page, "billing-approved")


def test_mini_grid_agent_takes_a_reading_from_the_route_book(page, login, screenshot, offices, tmp_path):
    from urja.metering import services as metering

    account = testing.domestic_account(offices["section2"], name="Basanti Murmu", mobile="")
    Account.objects.filter(pk=account.pk).update(bill_cycle="M01", route="KP1", connected_on=date(2025, 1, 1))
    meter = metering.register_meter(serial="MGK0001", make="Genus", meter_type="static", actor=None, channel="system")
    metering.install_meter(account=account, meter=meter, actor=None, channel="system", initial_kwh="10")
    testing.staff_user("field_agent", offices["section2"], username="mgagent", password="mg-pass-12")
    login(page, "mgagent", "mg-pass-12")
    page.get_by_role("link", name="Route book").click()
    expect(page.locator("h1")).to_contain_text("cycle M01")
    photo = tmp_path / "meter.png"
    photo.write_bytes(
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89"
        b"\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N\x00\x00\x00\x00IEND\xaeB`\x82"
    )
    page.get_by_label("Register (kWh)").fill("42")
    page.get_by_label("Photo of the meter").set_input_files(str(photo))
    page.get_by_role("button", name="Save reading").click()
    expect(page.locator(f"#reading-{account.consumer_number}")).to_contain_text("Saved")
    screenshot(page, "mgagent-reading")


def test_a_consumer_lands_on_the_portal(page, login, db):
    from django.contrib.auth import get_user_model

    from urja.core.models import StaffProfile

    user = get_user_model().objects.create_user(username="consumer1", password="cons-pass-1")
    StaffProfile.objects.create(user=user, role="consumer")
    page.goto("/login/")
    page.get_by_label("Username").fill("consumer1")
    page.get_by_label("Password").fill("cons-pass-1")
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/portal/**")
