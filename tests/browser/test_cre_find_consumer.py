"""Issue 2 "Done when": a CRE logs in and finds a consumer by mobile number in a real browser."""

import pytest
from playwright.sync_api import expect

from urja.demo import testing

pytestmark = pytest.mark.browser


@pytest.fixture
def counter(offices):
    cre = testing.staff_user("cre", offices["division1"], username="cre_balasore", password="counter-pass-1")
    mine = testing.domestic_account(offices["section1"], name="Sunita Behera", mobile="9437012345")
    testing.domestic_account(offices["section1"], name="Sunil Das", mobile="9437099999")
    # Same mobile, other division: must not be shown to a Balasore CRE.
    theirs = testing.domestic_account(offices["section2"], name="Sunita Behera", mobile="9437012345")
    return cre, mine, theirs


def test_cre_finds_consumer_by_mobile_and_opens_360_page(page, login, screenshot, counter):
    _, mine, theirs = counter
    login(page, "cre_balasore", "counter-pass-1")
    expect(page.locator(".who")).to_contain_text("Customer relationship executive")

    page.get_by_role("link", name="Find consumer").click()
    search = page.get_by_label("Consumer number, mobile or name")
    search.press_sequentially("9437012345", delay=20)  # typed, not submitted: HTMX searches as you type

    result = page.locator("#results table").get_by_role("link", name=mine.consumer_number)
    expect(result).to_be_visible()
    expect(page.locator("#results")).to_contain_text("Sunita Behera")
    expect(page.locator("#results")).not_to_contain_text(theirs.consumer_number)
    expect(page.locator("#results")).not_to_contain_text("Sunil Das")
    assert "q=9437012345" in page.url  # the search is bookmarkable (hx-push-url)
    screenshot(page, "find-consumer")

    result.click()
    page.wait_for_url(f"**/backoffice/accounts/{mine.consumer_number}/")
    expect(page.locator("#consumer-number")).to_have_text(mine.consumer_number)
    expect(page.get_by_role("heading", name="Audit trail")).to_be_visible()
    screenshot(page, "account-360")


def test_find_consumer_works_without_javascript(browser, live_server, counter):
    _, mine, _ = counter
    context = browser.new_context(base_url=live_server.url, java_script_enabled=False)
    try:
        page = context.new_page()
        page.goto("/login/")
        page.get_by_label("Username").fill("cre_balasore")
        page.get_by_label("Password").fill("counter-pass-1")
        page.get_by_role("button", name="Log in").click()
        page.goto("/backoffice/find/")
        page.get_by_label("Consumer number, mobile or name").fill("Sunita")
        page.get_by_role("button", name="Search").click()
        expect(page.locator("#results")).to_contain_text(mine.consumer_number)
    finally:
        context.close()


def test_staff_ui_switches_to_odia(page, login, screenshot, counter):
    login(page, "cre_balasore", "counter-pass-1")
    page.locator("form.lang").get_by_role("button", name="ଓଡ଼ିଆ").click()
    expect(page.locator("html")).to_have_attribute("lang", "or")
    expect(page.get_by_role("link", name="ଗ୍ରାହକ ଖୋଜନ୍ତୁ")).to_be_visible()
    screenshot(page, "home-odia")


def test_find_page_fits_a_phone_screen(page, login, screenshot, counter):
    _, mine, _ = counter
    page.set_viewport_size({"width": 360, "height": 740})
    login(page, "cre_balasore", "counter-pass-1")
    page.goto("/backoffice/find/?q=Sunita")
    expect(page.locator("#results")).to_contain_text(mine.consumer_number)
    # Results stack into cards: nothing scrolls sideways on a 360 px phone.
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    screenshot(page, "find-consumer-phone")
    page.goto(f"/backoffice/accounts/{mine.consumer_number}/")
    page.wait_for_load_state("networkidle")  # every lazy panel is in before measuring
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    screenshot(page, "account-360-phone")
