"""Issue 15 part 5 on the billing lists: revisions, security deposits due, final bills and a bill
run's exceptions are paged, filtered and exported as CSV (core.listing), within the user's scope."""

import csv
import io
import re
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from urja.billing import services
from urja.billing.models import Bill, BillException, BillRevision, BillRun
from urja.customers.models import Account
from urja.demo import testing

JUNE = dict(cycle="C01", period="2025-06", bill_date=date(2025, 7, 2))


def _csv(response) -> list[list[str]]:
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    return list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode("utf-8-sig"))))


@pytest.fixture
def officer(offices):
    return testing.staff_user("billing_officer", offices["division1"])


@pytest.fixture
def many(offices):
    """55 accounts in division 1 and 3 in division 2 (the latter never shown to division 1's officer)."""
    mine = [testing.domestic_account(offices["section1"], mobile="", name=f"Behera {i}") for i in range(55)]
    theirs = [testing.domestic_account(offices["section2"], mobile="", name=f"Sahu {i}") for i in range(3)]
    return mine, theirs


def test_revisions_are_paged_filtered_and_exported(client, make_account, officer, offices):
    account = make_account()
    services.start_run(run=services.create_run(**JUNE))
    bill = Bill.objects.get(account=account)
    checker = testing.staff_user("manager", offices["division1"])
    for i in range(35):
        BillRevision.objects.create(
            bill=bill, kind="credit_note" if i % 5 else "debit_note", amount=Decimal("1.00") + i,
            reason=f"reason {i}", status="proposed" if i < 20 else "rejected", proposed_by=officer,
            decided_by=None if i < 20 else checker, decided_at=None if i < 20 else timezone.now(),
        )  # fmt: skip
    client.force_login(officer)
    page = client.get("/billing/revisions/").content.decode()
    assert "35 rows" in page and "page 1 of 2" in page
    assert client.get("/billing/revisions/", {"page": 2}).content.decode().count("reason ") == 5
    assert "20 rows" in client.get("/billing/revisions/", {"status": "proposed"}).content.decode()
    assert "7 rows" in client.get("/billing/revisions/", {"kind": "debit_note"}).content.decode()
    assert "35 rows" in client.get("/billing/revisions/", {"q": bill.bill_number[:6]}).content.decode()
    rows = _csv(client.get("/billing/revisions/", {"status": "rejected", "format": "csv"}))
    assert rows[0][:3] == ["bill", "consumer_number", "kind"] and len(rows) == 16
    assert {r[7] for r in rows[1:]} == {"Rejected"}
    client.force_login(testing.staff_user("billing_officer", offices["division2"]))
    assert len(_csv(client.get("/billing/revisions/", {"format": "csv"}))) == 1  # out of scope: none


def test_deposits_due_are_paged_filtered_and_exported(client, officer, offices, many):
    mine, _theirs = many
    client.force_login(officer)
    page = client.get("/billing/deposits/").content.decode()
    assert "55 rows" in page and "page 1 of 2" in page and "Sahu" not in page
    assert client.get("/billing/deposits/", {"page": 2}).content.decode().count("Behera ") == 5
    one = client.get("/billing/deposits/", {"q": mine[7].consumer_number}).content.decode()
    assert re.search(r"\b1 row\b", one) and mine[7].consumer.name in one
    rows = _csv(client.get("/billing/deposits/", {"format": "csv"}))
    assert rows[0][0] == "consumer_number" and len(rows) == 56 and not any(r[1].startswith("Sahu") for r in rows)
    manager = testing.staff_user("manager", offices["circle"])
    client.force_login(manager)
    division2 = client.get("/billing/deposits/", {"office": offices["division2"].code}).content.decode()
    assert "3 rows" in division2


def test_final_bills_lists_are_paged_filtered_and_exported(client, officer, many):
    mine, theirs = many
    Account.objects.filter(pk__in=[a.pk for a in mine + theirs]).update(status="perm_disconnected")
    client.force_login(officer)
    page = client.get("/billing/final-bills/").content.decode()
    assert "55 rows" in page and "page 1 of 2" in page and "Sahu" not in page
    assert client.get("/billing/final-bills/", {"page": 2}).content.decode().count("Issue the final bill") == 5
    found = client.get("/billing/final-bills/", {"q": mine[0].consumer_number}).content.decode()
    assert re.search(r"\b1 row\b", found) and mine[0].consumer_number in found
    rows = _csv(client.get("/billing/final-bills/", {"format": "csv"}))
    assert rows[0] == ["consumer_number", "name", "status"] and len(rows) == 56
    issued = _csv(client.get("/billing/final-bills/", {"list": "issued", "format": "csv"}))
    assert issued == [["bill", "consumer_number", "name", "bill_date", "total", "net_payable"]]
    assert "No final bill yet." in client.get("/billing/final-bills/", {"list": "issued"}).content.decode()


def test_run_exceptions_are_paged_filtered_and_exported(client, officer, many):
    mine, theirs = many
    end = date(2025, 6, 30)
    run = BillRun.objects.create(
        cycle=services.get_cycle("C01"), period="2025-06", period_start=date(2025, 6, 1), period_end=end,
        bill_date=end + timedelta(days=1), due_date=end + timedelta(days=8),
    )  # fmt: skip
    for i, account in enumerate(mine + theirs):
        BillException.objects.create(
            run=run, account=account, kind="no_reading" if i % 2 else "vee_failed", message=f"problem {i}",
            resolved=i < 10,
        )  # fmt: skip
    client.force_login(officer)
    url = f"/billing/runs/{run.pk}/"
    page = client.get(url).content.decode()
    assert "55 rows" in page and "page 1 of 2" in page and "Sahu" not in page
    assert client.get(url, {"page": 2}).content.decode().count("problem ") == 5
    assert "45 rows" in client.get(url, {"state": "open"}).content.decode()
    assert "27 rows" in client.get(url, {"kind": "no_reading"}).content.decode()
    one = client.get(url, {"q": mine[3].consumer_number}).content.decode()
    assert "problem 3" in one and "problem 4" not in one
    rows = _csv(client.get(url, {"state": "resolved", "format": "csv"}))
    assert (
        rows[0][:3] == ["consumer_number", "name", "kind"] and len(rows) == 11 and {r[4] for r in rows[1:]} == {"yes"}
    )
    # the live progress the page polls (HTMX) is still the fragment
    assert "<html" not in client.get(url, HTTP_HX_REQUEST="true").content.decode()
