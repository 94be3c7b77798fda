"""Issue 15: the console's package changes and appliance sales are no longer cut at 30 rows — the console
shows the newest ten and links to list pages with the shared pager, filters and CSV / Excel of the site's
own rows (another site's answer like rows that do not exist)."""

import csv
import io
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.test import Client
from django.utils import timezone

from urja.demo.testing import staff_user
from urja.minigrid import services
from urja.minigrid.models import InstalmentStatus, PackageChange
from urja.network.models import MiniGridSite

pytestmark = pytest.mark.django_db


def _csv(response) -> list[list[str]]:
    assert response["Content-Type"].startswith("text/csv")
    return list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode("utf-8-sig"))))


def login(user) -> Client:
    c = Client()
    c.force_login(user)
    return c


@pytest.fixture
def other_site(offices):
    site = MiniGridSite.objects.create(
        code="MG02", name="Other mini-grid", office=offices["section2"], village="Jashipur",
        district="Mayurbhanj", capacity_kw=Decimal("20"), operator="Other operator",
    )  # fmt: skip
    operator = staff_user("mgoperator", site.office)
    theirs = services.add_customer(
        actor=operator, channel="backoffice", site=site, name="Kanhu Naik", mobile="9437077777",
        address="Jashipur", package_code="MG-SOLAR-50W",
    )  # fmt: skip
    services.request_package_change(actor=operator, channel="backoffice", customer=theirs, to_package="MG-SOLAR-100W")
    services.sell_appliance(
        actor=operator, channel="backoffice", customer=theirs, appliance="Kerosene-free lamp", price="900",
        instalments=3, first_due=date(2026, 1, 10),
    )  # fmt: skip
    return site, theirs


def test_package_changes_beyond_the_console_are_paged_filtered_and_exported(customer, operator, other_site):
    _, theirs = other_site
    first = services.request_package_change(
        actor=operator, channel="backoffice", customer=customer, to_package="MG-SOLAR-100W"
    )
    for n in range(11):  # older rows, as a busy site has (the console shows the newest ten)
        PackageChange.objects.create(
            number=f"PCT{n:04d}", customer=customer, from_package="MG-SOLAR-50W", to_package="MG-SOLAR-100W",
            channel="app", status="rejected", office_path=first.office_path, reason="no longer wanted",
        )  # fmt: skip
    PackageChange.objects.filter(number__startswith="PCT").update(requested_at=timezone.now() - timedelta(days=60))
    c = login(operator)
    console = c.get("/minigrid/").content.decode()
    assert first.number in console and "PCT0000" not in console.split('id="changes"')[1].split("</section>")[0]
    assert "/minigrid/package-changes/?format=csv" in console

    listed = c.get("/minigrid/package-changes/").content.decode()
    assert "12 rows" in listed and "PCT0000" in listed and first.number in listed
    assert theirs.customer_id not in listed  # another site's change
    requested = c.get("/minigrid/package-changes/", {"status": "requested"}).content.decode()
    assert "1 row" in requested and first.number in requested and "PCT0003" not in requested
    recent = c.get("/minigrid/package-changes/", {"from": timezone.localdate().isoformat()}).content.decode()
    assert first.number in recent and "PCT0003" not in recent
    by_number = c.get("/minigrid/package-changes/", {"q": "pct0003"}).content.decode()
    assert "PCT0003" in by_number and first.number not in by_number

    rows = _csv(c.get("/minigrid/package-changes/", {"format": "csv"}))
    assert rows[0][:3] == ["Number", "Requested", "Customer ID"]
    assert len(rows) == 13 and {r[2] for r in rows[1:]} == {customer.customer_id}
    xlsx = c.get("/minigrid/package-changes/", {"format": "xlsx", "status": "rejected"})
    assert b"".join(xlsx.streaming_content)[:2] == b"PK"
    assert 'filename="minigrid-MG01-package-changes.xlsx"' in xlsx["Content-Disposition"]

    # approving from the list page comes back to the list, with its filters
    back = "/minigrid/package-changes/?status=requested"
    done = c.post(f"/minigrid/package-changes/{first.number}/decide/", {"approve": "1", "next": back})
    assert done.status_code == 302 and done["Location"] == back
    first.refresh_from_db()
    assert first.status != "requested"
    elsewhere = c.post(
        f"/minigrid/package-changes/{first.number}/decide/", {"approve": "1", "next": "https://evil.example/"}
    )
    assert elsewhere["Location"] == "/minigrid/"


def test_appliance_sales_list_and_export(customer, operator, other_site):
    for n in range(11):
        services.sell_appliance(
            actor=operator, channel="backoffice", customer=customer, appliance=f"Fan {n}", price="1200",
            down_payment="200", instalments=4, first_due=date(2026, 1, 10),
        )  # fmt: skip
    plan = customer.plans.get(appliance="Fan 0")
    plan.lines.filter(seq=1).update(status=InstalmentStatus.PAID)
    c = login(operator)
    console = c.get("/minigrid/").content.decode()
    assert "/minigrid/appliances/plans/?format=xlsx" in console
    listed = c.get("/minigrid/appliances/plans/").content.decode()
    assert "11 rows" in listed and "Fan 0" in listed and "Kerosene-free lamp" not in listed
    assert "Fan 10" not in c.get("/minigrid/appliances/plans/", {"q": "fan 0"}).content.decode()
    rows = _csv(c.get("/minigrid/appliances/plans/", {"format": "csv"}))
    assert rows[0][-2:] == ["Instalments settled", "Still to pay"] and len(rows) == 12
    fan0 = next(r for r in rows[1:] if r[4] == "Fan 0")
    assert (fan0[1], fan0[-2], fan0[-1]) == (customer.customer_id, "1", "750.00")  # 1000 in 4: one paid


def test_a_user_without_a_site_gets_404_on_the_lists(customer, offices):
    elsewhere = staff_user("field_agent", offices["section2"])
    c = login(elsewhere)
    assert c.get("/minigrid/package-changes/").status_code == 404
    assert c.get("/minigrid/appliances/plans/?format=csv").status_code == 404


def _metered(site, operator, n: int):
    from urja.metering import services as metering
    from urja.metering.models import MeterCommand

    customer = services.add_customer(
        actor=operator, channel="backoffice", site=site, name=f"Metered {n}", mobile="", address="Kaptipada",
        package_code="MG-SOLAR-50W",
    )  # fmt: skip
    meter = metering.register_meter(
        serial=f"MGC{n:05d}", make="Genus", meter_type="smart", actor=None, channel="system"
    )
    metering.install_meter(account=customer.account, meter=meter, actor=None, channel="system", initial_kwh="0")
    for kind, status in (("set_load_limit", "failed"), ("set_supply_hours", "acknowledged")):  # the last one shows
        MeterCommand.objects.create(
            command_id=f"c-{n}-{kind}", meter=meter, account=customer.account, command=kind, status=status,
            channel="system",
        )  # fmt: skip
    return customer


def test_the_console_reads_the_meters_last_commands_in_one_query(site, operator):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    _metered(site, operator, 0)
    c = login(operator)
    c.get("/minigrid/")
    with CaptureQueriesContext(connection) as one:
        page = c.get("/minigrid/").content.decode()
    assert "set_supply_hours [acknowledged]" in page and "set_load_limit [failed]" not in page
    for n in range(1, 4):
        _metered(site, operator, n)
    with CaptureQueriesContext(connection) as four:
        page = c.get("/minigrid/").content.decode()
    assert page.count("set_supply_hours [acknowledged]") == 4
    assert len(four) == len(one)  # was one more query a meter


def test_the_console_reads_its_agents_cash_in_the_same_queries_for_one_agent_or_four(site, operator):
    """The agents panel reads every agent's cash in hand in two grouped queries (was two an agent)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    c = login(operator)
    c.get("/minigrid/")
    with CaptureQueriesContext(connection) as before:
        c.get("/minigrid/")
    for _ in range(3):
        staff_user("mgagent", site.office)
    with CaptureQueriesContext(connection) as after:
        page = c.get("/minigrid/").content.decode()
    assert page.count("mgagent") >= 3
    assert len(after) == len(before)
