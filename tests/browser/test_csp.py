"""Issue 11: under the Content-Security-Policy the pages still work in a real browser — HTMX panels
load, the receipt's print button prints, Swagger UI renders offline — and the browser reports no
policy violation (an inline script or handler would be refused silently otherwise)."""

import pytest
from playwright.sync_api import expect

from urja.demo import testing

pytestmark = pytest.mark.browser

# Records every CSP violation the page reports, before any of its own scripts run (Playwright's init
# scripts are injected by the browser itself, outside the page's policy).
WATCH = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", function (e) {
  var where = (e.sourceFile || "") + ":" + e.lineNumber;
  window.__csp.push(e.violatedDirective + " " + (e.blockedURI || "inline") + " " + where);
});
window.__printed = 0;
window.print = function () { window.__printed += 1; };
"""


@pytest.fixture
def staff(offices):
    testing.staff_user("cre", offices["section1"], username="csp_cre", password="csp-pass-1")
    testing.staff_user("admin", None, username="csp_admin", password="csp-pass-2")
    return testing.domestic_account(offices["section1"], name="Sunita Behera", mobile="9437012345")


def violations(page) -> list[str]:
    return page.evaluate("window.__csp")


def test_pages_work_under_the_csp_without_violations(page, login, staff):
    account = staff
    page.context.add_init_script(WATCH)  # popups (the receipt) too
    console = []
    page.on("console", lambda m: console.append(m.text) if "Content Security Policy" in m.text else None)

    login(page, "csp_cre", "csp-pass-1")
    page.goto("/backoffice/find/")
    page.get_by_label("Consumer number, mobile or name").press_sequentially("9437012345", delay=10)
    expect(page.locator("#results")).to_contain_text(account.consumer_number)  # HTMX request ran
    assert violations(page) == []

    page.goto(f"/backoffice/accounts/{account.consumer_number}/")
    expect(page.locator(".panel[aria-busy]")).to_have_count(0)  # lazy panels loaded by HTMX (urja.js clears it)
    assert violations(page) == []

    page.goto("/payments/cashier/")
    page.get_by_label("Opening cash (₹)").fill("100.00")
    page.get_by_role("button", name="Open session").click()
    page.get_by_label("Find account").press_sequentially(account.consumer_number, delay=10)
    page.get_by_label("Amount (₹)").fill("10.00")
    page.get_by_role("button", name="Take payment").click()
    expect(page.locator("#pay-area")).to_contain_text("Payment received")
    with page.expect_popup() as popup:
        page.get_by_role("link", name="Print 58 mm").click()
    receipt = popup.value
    receipt.wait_for_load_state()
    receipt.get_by_role("button", name="Print").click()
    assert receipt.evaluate("window.__printed") == 1  # the button works without an inline onclick
    assert violations(receipt) == []
    assert console == []


def test_swagger_ui_renders_offline_under_the_csp(page, login, staff, live_server):
    page.context.add_init_script(WATCH)  # popups (the receipt) too
    external = []
    page.on("request", lambda r: None if r.url.startswith(live_server.url) else external.append(r.url))
    login(page, "csp_admin", "csp-pass-2")
    page.goto("/api/v1/docs")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("Urja API")
    expect(page.locator(".opblock").first).to_be_visible()  # the schema was fetched and rendered
    assert violations(page) == []
    assert [u for u in external if not u.startswith("data:")] == []
