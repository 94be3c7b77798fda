"""Issue 15, "Done when": the key-account manager's and the field agent's main daily task in a real
browser — the manager reads the portfolio (only key accounts of its office) and a group's consolidated
statement; the field agent reads the meters of its beat from the route book (cash is collected in the
field app, /api/v1/payments/agent/sync, under the agent's cash limit), and a consumer off the beat is
not on its page."""

from datetime import date

import pytest
from playwright.sync_api import expect

from urja.customers import services as customers
from urja.customers.models import Account
from urja.demo import testing

pytestmark = pytest.mark.browser


def test_key_account_manager_reads_the_portfolio_and_a_group_statement(page, login, screenshot, offices):
    group = customers.create_group(actor=None, channel="system", name="Odisha Water Works", kind="government")
    plant = testing.domestic_account(
        offices["section1"], name="Balasore Cold Storage Ltd", load="450", supply_type="ht", unit="kVA",
        category="industrial", sub_category="large", mobile="",
    )  # fmt: skip
    pump = testing.domestic_account(offices["section1"], name="Pump House 3", load="4", mobile="", group=group)
    home = testing.domestic_account(offices["section1"], name="Sunita Behera")
    elsewhere = testing.domestic_account(
        offices["section2"], name="Bhadrak Steel Ltd", load="900", supply_type="ht", unit="kVA",
        category="industrial", sub_category="large", mobile="",
    )  # fmt: skip
    testing.staff_user("key_account_manager", offices["division1"], username="kam_bls", password="kam-pass-1")

    login(page, "kam_bls", "kam-pass-1")
    page.get_by_role("link", name="Key accounts").click()
    table = page.locator("table.results").last
    expect(table).to_contain_text(plant.consumer_number)
    expect(table).to_contain_text("450 kVA")
    expect(table).to_contain_text(pump.consumer_number)  # in a group: a key account whatever its load
    expect(table).not_to_contain_text(home.consumer_number)
    expect(table).not_to_contain_text(elsewhere.consumer_number)
    screenshot(page, "kam-portfolio")

    page.get_by_role("link", name="Odisha Water Works").first.click()
    expect(page.locator("h1")).to_contain_text("Odisha Water Works")
    expect(page.locator("body")).to_contain_text(pump.consumer_number)
    screenshot(page, "kam-group")


def test_field_agent_reads_the_meters_of_its_beat_only(page, login, screenshot, offices, tmp_path):
    from urja.metering import services as metering
    from urja.metering.models import Reading

    on_beat = testing.domestic_account(offices["section1"], name="Basanti Murmu", mobile="9437011111")
    off_beat = testing.domestic_account(offices["section1"], name="Kanhu Charan Sethi", mobile="9437022222")
    for account, route, serial in ((on_beat, "BLS-R1", "FAB0001"), (off_beat, "BLS-R9", "FAB0002")):
        Account.objects.filter(pk=account.pk).update(route=route, connected_on=date(2025, 1, 1))
        meter = metering.register_meter(serial=serial, make="Genus", meter_type="static", actor=None, channel="system")
        metering.install_meter(account=account, meter=meter, actor=None, channel="system", initial_kwh="100")
    agent = testing.staff_user("field_agent", offices["section1"], username="agent_bls", password="agent-pass-1")
    agent.staff.routes = "BLS-R1"
    agent.staff.save(update_fields=["routes"])

    login(page, "agent_bls", "agent-pass-1")
    page.get_by_role("link", name="Route book").click()
    expect(page.locator("body")).to_contain_text("Basanti Murmu")
    expect(page.locator("body")).not_to_contain_text("Kanhu Charan Sethi")
    photo = tmp_path / "meter.png"
    photo.write_bytes(
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89"
        b"\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N\x00\x00\x00\x00IEND\xaeB`\x82"
    )
    page.get_by_label("Register (kWh)").fill("231")
    page.get_by_label("Photo of the meter").set_input_files(str(photo))
    page.get_by_role("button", name="Save reading").click()
    expect(page.locator(f"#reading-{on_beat.consumer_number}")).to_contain_text("Saved")
    reading = Reading.objects.filter(installation__account=on_beat).order_by("-id").first()
    assert reading.kwh == 231
    assert not Reading.objects.filter(installation__account=off_beat, kwh=231).exists()
    screenshot(page, "agent-reading")
