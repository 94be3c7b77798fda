"""Issue 14 "Done when": a manager drills from division to feeder to DT in a real browser."""

import pytest
from playwright.sync_api import expect

from urja.demo import testing
from urja.reports import services
from urja.reports.tests.test_accounting import P, net  # noqa: F401  (fixture)

# Records CSP violations before the page's own scripts run (as tests/browser/test_csp.py does).
WATCH = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", function (e) {
  window.__csp.push(e.violatedDirective + " " + (e.blockedURI || "inline"));
});
"""

pytestmark = pytest.mark.browser


def test_manager_drills_from_division_to_feeder_to_dt(page, login, screenshot, net):  # noqa: F811
    services.compute_period(period=P)
    testing.staff_user("manager", net["offices"]["division1"], username="mgr_balasore", password="drill-pass-1")
    page.context.add_init_script(WATCH)
    login(page, "mgr_balasore", "drill-pass-1")
    page.goto(f"/reports/?period={P}")
    expect(page.locator("h1")).to_contain_text("Balasore Electrical Division")
    expect(page.locator("#atc")).to_have_text("44.59%")
    # the 12-month trend drawn by the vendored uPlot, under the CSP (no inline script)
    expect(page.locator("#trend-chart")).to_have_attribute("data-drawn", "uplot")
    expect(page.locator("#trend-chart canvas")).to_have_count(1)
    expect(page.locator("#trend-svg")).to_be_hidden()
    screenshot(page, "reports-division")

    page.locator("#feeders").get_by_role("link", name="F1 F1 feeder").click()
    expect(page.locator("h1")).to_contain_text("F1 feeder")
    expect(page.locator("#be")).to_have_text("74.80%")
    expect(page.locator("#children")).to_contain_text("DT2")
    expect(page.locator("#feeders")).to_have_count(0)
    screenshot(page, "reports-feeder")

    page.locator("#children").get_by_role("link", name="DT1").click()
    expect(page.locator("h1")).to_contain_text("DT1")
    expect(page.locator("#atc")).to_have_text("37.82%")
    expect(page.locator("#ce")).to_have_text("67.44%")
    expect(page.locator("#categories")).to_contain_text("general_purpose")
    expect(page.locator("#crumbs")).to_contain_text("Balasore Electrical Division")
    screenshot(page, "reports-dt")
    # another division's feeder is not found for this manager
    response = page.goto(f"/reports/node/feeder/{net['f2'].pk}/?period={P}")
    assert response.status == 404
    assert page.evaluate("window.__csp") == []

    # the operations panels: reliability, SLA, connections pending, prepaid, ageing; CSV download
    page.goto("/reports/operations/")
    for panel in ("#reliability", "#sla", "#pending", "#prepaid", "#ageing", "#compensation"):
        expect(page.locator(panel)).to_be_visible()
    expect(page.locator("#pending-ontime")).to_contain_text("—")  # nothing pending: no division by zero
    with page.expect_download() as download:
        page.locator("p.exports").first.get_by_role("link", name="CSV").click()
    assert download.value.suggested_filename.startswith("reliability-")
    assert page.evaluate("window.__csp") == []
