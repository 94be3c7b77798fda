"""Issue 15: the route book reads the page's last readings in one query (the page costs the same for 3 or
22 accounts), pages 50 accounts at a time, downloads as CSV / Excel, and gives each account the reading
window of its own cycle, so an agent's route that mixes cycles shows each account's own dates."""

import csv
import io
from datetime import date, datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from urja.core.calendars import IST
from urja.customers.models import Account
from urja.demo import testing
from urja.metering import selectors, services
from urja.metering.models import ReadCycle, Reading

BIG, SMALL = 22, 3


@pytest.fixture
def book(offices):
    """Route R1: 22 accounts, alternately of cycles C03 (7th, from reading.toml) and C07 (a ReadCycle row
    moves it to the 20th); route R2: 3 accounts of C03. Each with a meter read at 100 kWh on installing."""
    ReadCycle.objects.create(code="C07", read_day=20)
    made = {"R1": [], "R2": []}
    for n in range(BIG + SMALL):
        route = "R1" if n < BIG else "R2"
        cycle = "C07" if route == "R1" and n % 2 else "C03"
        account = testing.domestic_account(offices["section1"], name=f"Reader Test {n}", mobile="")
        Account.objects.filter(pk=account.pk).update(bill_cycle=cycle, route=route, connected_on=date(2025, 1, 1))
        meter = services.register_meter(
            serial=f"RB{n:04d}", make="Genus", meter_type="static", actor=None, channel="system"
        )
        services.install_meter(
            account=account,
            meter=meter,
            actor=None,
            channel="system",
            installed_at=datetime(2025, 1, 1, 12, tzinfo=IST),
            initial_kwh="100",
        )
        account.refresh_from_db()
        made[route].append(account)
    return made


def _get(client, **params):
    with CaptureQueriesContext(connection) as queries:
        response = client.get("/metering/route-book/", {"year": 2025, "month": 6, **params})
    assert response.status_code == 200
    return response.content.decode(), len(queries)


def test_a_page_costs_the_same_queries_for_3_or_22_accounts_and_shows_each_accounts_window(client, offices, book):
    first, second = book["R1"][0], book["R1"][1]
    # a later reading for the first account, and a later one waiting for review (not usable) for the second
    services.record_reading(
        actor=None, channel="system", account=first, source="amr", kwh="180",
        read_at=datetime(2025, 5, 7, 12, tzinfo=IST),
    )  # fmt: skip
    services.record_reading(
        actor=None, channel="system", account=second, source="amr", kwh="250",
        read_at=datetime(2025, 5, 20, 12, tzinfo=IST),
    )  # fmt: skip
    Reading.objects.filter(account=second, kwh=250).update(vee_status="review")
    client.force_login(testing.staff_user("billing_officer", offices["division1"]))
    client.get("/metering/route-book/")  # warm the session and the per-process caches

    small, small_queries = _get(client, cycle="all", route="R2")
    big, big_queries = _get(client, cycle="all", route="R1")
    assert big_queries == small_queries <= 10  # one query for the page's last readings, not one an account
    assert all(a.consumer_number in big for a in book["R1"]) and book["R2"][0].consumer_number not in big
    assert all(a.consumer_number in small for a in book["R2"])

    # each account its own window: C03 on the 7th (reading.toml), C07 on the 20th (its ReadCycle row)
    assert big.count('data-scheduled="2025-06-07"') == BIG // 2
    assert big.count('data-scheduled="2025-06-20"') == BIG // 2
    assert "Each meter&#x27;s reading window" in big or "Each meter's reading window" in big
    rows = {r["consumer_number"]: r for r in selectors.route_book_rows(book["R1"], year=2025, month=6)}
    assert rows[first.consumer_number]["window"]["scheduled"] == date(2025, 6, 7)
    assert rows[second.consumer_number]["window"]["scheduled"] == date(2025, 6, 20)
    # June 2025: the 20th is a Friday; ± 3 working days on the section's calendar (Sundays off)
    assert rows[second.consumer_number]["window"]["earliest"] == date(2025, 6, 17)
    assert rows[second.consumer_number]["window"]["latest"] == date(2025, 6, 24)
    # the last usable reading of each account (the one under review is passed over)
    assert rows[first.consumer_number]["last_kwh"] == 180
    assert rows[second.consumer_number]["last_kwh"] == 100

    # one cycle: one window for the book, said once above the table
    c07, _ = _get(client, cycle="C07")
    assert "cycle C07" in c07 and 'data-scheduled="2025-06-07"' not in c07
    assert "Read between" in c07 and "20-06-2025" in c07 and "fixed date ± 3 working days" in c07


def test_the_book_pages_and_downloads_within_the_beat(client, offices, book):
    agent = testing.staff_user("field_agent", offices["section1"])
    agent.staff.routes = "R2"
    agent.staff.save()
    client.force_login(agent)
    page, _ = _get(client, cycle="all")
    assert all(a.consumer_number in page for a in book["R2"])
    assert not any(a.consumer_number in page for a in book["R1"])  # off the beat
    assert "format=csv" in page and "format=xlsx" in page

    response = client.get("/metering/route-book/", {"cycle": "all", "year": 2025, "month": 6, "format": "csv"})
    assert response["Content-Type"].startswith("text/csv")
    lines = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode("utf-8-sig"))))
    assert lines[0][:3] == ["Route", "Bill cycle", "Consumer number"]
    assert sorted(line[2] for line in lines[1:]) == sorted(a.consumer_number for a in book["R2"])
    assert {line[10] for line in lines[1:]} == {"07-06-2025"}  # scheduled, as on the page
    xlsx = client.get("/metering/route-book/", {"cycle": "all", "year": 2025, "month": 6, "format": "xlsx"})
    assert xlsx.status_code == 200 and b"".join(xlsx.streaming_content)[:2] == b"PK"

    # a billing officer's book of 25 accounts is one page of the shared 50
    officer = testing.staff_user("billing_officer", offices["division1"])
    client.force_login(officer)
    page, _ = _get(client, cycle="all", page=2)  # past the last page: the last page, not an error
    assert book["R2"][-1].consumer_number in page
