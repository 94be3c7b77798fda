"""Issue 15: the collections list is paged, filtered and exported (not one 32,000-pixel page)."""

import csv
import io
from datetime import date, datetime
from decimal import Decimal

import pytest

from urja.core.tests.xlsx import read_cells
from urja.demo import testing
from urja.payments.models import CollectionCase


@pytest.fixture
def cases(offices):
    made = []
    for i in range(60):
        section = offices["section1"] if i % 2 else offices["section2"]
        account = testing.domestic_account(
            section, name=f"Ramesh Behera {i}" if i % 3 else f"Kalinga Ltd {i}", mobile=""
        )
        made.append(
            CollectionCase.objects.create(
                account=account,
                reason="overdue",
                status="flagged" if i < 50 else "settled",
                amount_due=Decimal(1000 + i * 1000),
                flagged_on=date(2026, 11, 1),
            )
        )
    return made


def test_collections_are_paged_filtered_and_exported(client, offices, cases):
    manager = testing.staff_user("manager", offices["circle"])
    client.force_login(manager)
    page = client.get("/payments/collections/").content.decode()
    assert "50 rows" in page and "page 1 of 1" not in page  # the open cases, on one page of 50
    assert page.count('class="num" href="/backoffice/accounts/') == 50
    assert "₹60,000.00" not in page and "₹50,000.00" in page  # settled cases are not open; Indian grouping

    settled = client.get("/payments/collections/", {"status": "settled"}).content.decode()
    assert "10 rows" in settled

    by_word = client.get("/payments/collections/", {"q": "ltd"}).content.decode()
    assert "Kalinga Ltd" in by_word and "Ramesh Behera" not in by_word

    division = client.get("/payments/collections/", {"office": offices["division1"].code}).content.decode()
    assert "25 rows" in division  # odd i < 50 are in section 1

    rich = client.get("/payments/collections/", {"min": "45000"}).content.decode()
    assert "6 rows" in rich  # 45,000 … 50,000

    response = client.get("/payments/collections/", {"q": "ltd", "format": "csv"})
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode("utf-8-sig"))))
    assert rows[0][0] == "consumer_number"
    assert len(rows) == 1 + len([c for c in cases[:50] if "Ltd" in c.account.consumer.name])


def test_collections_download_as_excel(client, offices, cases):
    client.force_login(testing.staff_user("manager", offices["circle"]))
    page = client.get("/payments/collections/", {"q": "ltd"}).content.decode()
    assert "format=xlsx" in page and "q=ltd" in page  # the page offers the same rows as Excel
    response = client.get("/payments/collections/", {"q": "ltd", "format": "xlsx"})
    assert response.status_code == 200
    assert response["Content-Type"] == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    assert 'filename="collections.xlsx"' in response["Content-Disposition"]
    rows = read_cells(b"".join(response.streaming_content))
    assert [c.value for c in rows[0]][:4] == ["consumer_number", "name", "reason", "amount_due"]
    open_ltd = sorted((c for c in cases[:50] if "Ltd" in c.account.consumer.name), key=lambda c: -c.amount_due)
    assert [r[0].value for r in rows[1:]] == [c.account.consumer_number for c in open_ltd]  # largest first
    # the amount is a number with two places and the day a date, not text
    assert rows[1][3].value == float(open_ltd[0].amount_due) and "0.00" in rows[1][3].number_format
    assert rows[1][4].value == datetime(2026, 11, 1)


def test_collections_list_stays_in_scope(client, offices, cases):
    cre = testing.staff_user("cre", offices["section2"])
    client.force_login(cre)
    response = client.get("/payments/collections/", {"format": "csv"})
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode("utf-8-sig"))))[1:]
    assert rows
    numbers = {row[0] for row in rows}
    assert numbers == {c.account.consumer_number for c in cases[:50] if c.account.section_id == offices["section2"].pk}


def test_csv_cells_cannot_start_a_formula():
    from urja.core.listing import safe_cell

    assert safe_cell("=HYPERLINK(1)") == "'=HYPERLINK(1)"
    assert safe_cell("-5.00") == "-5.00"
    assert safe_cell("Behera") == "Behera"
