"""core.listing's one export entry point: CSV and .xlsx of the same rows, typed cells in the .xlsx,
the formula-injection guard and the row limit in both, and the pager's links keeping the filters."""

from __future__ import annotations

import csv
import io
import zipfile
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from django.template.loader import render_to_string
from django.test import RequestFactory

from urja.core import listing
from urja.core.tests.xlsx import read_cells, read_rows

HEADER = ["Consumer", "Name", "Units", "Amount", "Due", "Paid at", "Closed"]
ROWS = [
    ["1101000001", "सुनीता बेहेरा", 120, Decimal("1234.50"), date(2026, 12, 5),
     datetime(2026, 12, 5, 4, 30, tzinfo=UTC), False],
    ["1101000002", "ସୁନୀତା ବେହେରା", 7, Decimal("-20.00"), None, None, True],
]  # fmt: skip
rf = RequestFactory()


def _xlsx(request_query: dict, header=HEADER, rows=ROWS) -> bytes:
    response = listing.export_response(rf.get("/x/", request_query), "bills", header, rows)
    return b"".join(response.streaming_content)


def test_xlsx_keeps_numbers_amounts_dates_and_indian_scripts():
    content = _xlsx({"format": "xlsx"})
    assert content[:2] == b"PK"
    cells = read_cells(content)
    assert [c.value for c in cells[0]] == HEADER
    first = cells[1]
    # a consumer number is text (leading digits kept as typed), units a number
    assert first[0].value == "1101000001" and first[2].value == 120.0
    assert first[1].value == "सुनीता बेहेरा" and cells[2][1].value == "ସୁନୀତା ବେହେରା"
    assert first[3].value == 1234.5 and first[3].number_format == "#,##0.00"  # money: a number, 2 decimals
    assert cells[2][3].value == -20.0 and cells[2][3].number_format == "#,##0.00"  # a negative amount is no formula
    assert first[4].value == datetime(2026, 12, 5) and first[4].number_format == "dd-mm-yyyy"
    assert first[5].value == datetime(2026, 12, 5, 10, 0)  # 04:30 UTC is 10:00 in India
    assert first[5].number_format == "dd-mm-yyyy hh:mm"
    assert first[6].value is False and cells[2][6].value is True
    assert cells[2][4].value is None and cells[2][5].value is None


def test_a_decimal_keeps_its_own_places_and_huge_integers_stay_exact_as_text():
    rows = read_cells(_xlsx({"format": "xlsx"}, ["kWh", "ratio", "id"], [[Decimal("1500.000"), Decimal("0.378186"),
                                                                             12345678901234567]]))  # fmt: skip
    kwh, ratio, big = rows[1]
    assert kwh.value == 1500.0 and kwh.number_format == "#,##0.000"
    assert ratio.value == pytest.approx(0.378186) and ratio.number_format == "#,##0.000000"
    assert big.value == "12345678901234567"  # past 15 digits Excel would round a number


@pytest.mark.parametrize("text", ['=HYPERLINK("http://x","pay")', "+91 cmd", "-2+3", "@SUM(A1)", "\tX"])
def test_the_injection_guard_quotes_a_formula_in_both_formats(text):
    xlsx = read_rows(_xlsx({"format": "xlsx"}, ["Remark"], [[text]]))
    assert xlsx[1][0] == "'" + text
    csv_text = b"".join(listing.export_response(rf.get("/", {"format": "csv"}), "x", ["Remark"],
                                                [[text]]).streaming_content).decode()  # fmt: skip
    assert list(csv.reader(io.StringIO(csv_text.lstrip("\ufeff"))))[1] == ["'" + text]
    # and the workbook holds no formula at all
    with zipfile.ZipFile(io.BytesIO(_xlsx({"format": "xlsx"}, ["Remark"], [[text]]))) as z:
        assert "<f>" not in z.read("xl/worksheets/sheet1.xml").decode()


def test_numbers_in_text_are_not_quoted():
    assert listing.safe_cell("-20.00") == "-20.00" and listing.safe_cell("=1") == "'=1"
    assert read_rows(_xlsx({"format": "xlsx"}, ["n"], [["-5"]]))[1][0] == "-5"


def test_both_formats_stop_at_the_limit(monkeypatch):
    monkeypatch.setattr(listing, "EXPORT_LIMIT", 3)
    endless = ([n, f"row {n}"] for n in range(10**9))  # a generator: nothing past the limit is read
    assert len(read_rows(_xlsx({"format": "xlsx"}, ["n", "text"], endless))) == 1 + 3
    response = listing.export_response(rf.get("/", {"format": "csv"}), "x", ["n"], ([n] for n in range(10)))
    assert len(b"".join(response.streaming_content).decode().strip().splitlines()) == 1 + 3


def test_csv_is_utf8_with_bom_and_xlsx_is_named_and_typed():
    csv_response = listing.export_response(rf.get("/", {"format": "csv"}), "bills", HEADER, ROWS)
    body = b"".join(csv_response.streaming_content).decode("utf-8")
    assert body.startswith("\ufeffConsumer,") and "सुनीता बेहेरा" in body and "ସୁନୀତା" in body
    assert csv_response["Content-Disposition"] == 'attachment; filename="bills.csv"'
    line = next(csv.reader(io.StringIO(body.splitlines()[1])))
    # dates as the utility writes them (dd-mm-yyyy, times in IST), amounts with their places
    assert line == ["1101000001", "सुनीता बेहेरा", "120", "1234.50", "05-12-2026", "05-12-2026 10:00", "no"]
    xlsx_response = listing.export_response(rf.get("/", {"format": "xlsx"}), "bills", HEADER, ROWS)
    assert xlsx_response["Content-Type"] == listing.XLSX_TYPE
    assert 'filename="bills.xlsx"' in xlsx_response["Content-Disposition"]


def test_sheet_names_follow_excels_rule():
    assert listing._sheet_name("bill-run-12-exceptions/[2026]: a very long name indeed") == (
        "bill-run-12-exceptions--2026--"
    )
    assert len(listing._sheet_name("x" * 40)) == 31
    assert listing._sheet_name("''") == "Sheet1"


def test_filters_read_dates_both_ways_and_keep_the_office_in_scope():
    f = listing.read_filters(rf.get("/", {"from": "31-12-2026", "to": "2026-12-01", "q": "  Behera ", "office": "X"}))
    assert (f.since, f.until, f.q) == (date(2026, 12, 1), date(2026, 12, 31), "Behera")  # reversed: swapped
    assert listing.read_filters(rf.get("/", {"from": "yesterday"})).since is None  # nonsense: no filter


@pytest.mark.django_db
@pytest.mark.parametrize(
    "ends", [{"to": "9999-12-31"}, {"from": "0001-01-01"}, {"from": "9999-12-31", "to": "31-12-9999"}]
)
def test_a_date_pickers_extreme_ends_filter_without_overflowing(ends):
    """The first and last days a date field accepts were a 500 (OverflowError): they are held to the
    days a list can hold, so an open end stays open and a far one finds nothing."""
    from urja.core.models import AuditEvent

    AuditEvent.objects.create(action="test.row", channel="system", object_type="test", object_id="1")
    filters = listing.read_filters(rf.get("/", ends))
    rows = listing.by_dates(AuditEvent.objects.all(), filters, "at")
    assert rows.count() == (0 if ends.get("from") == "9999-12-31" else 1)
    assert listing.by_dates(AuditEvent.objects.all(), filters, "at__date", moments=False).count() == rows.count()


def test_export_links_and_pager_keep_the_filters():
    request = rf.get("/billing/revisions/", {"status": "open", "q": "ସୁନୀତା", "page": "2", "format": "csv"})
    assert listing.wants_export(request) and listing.export_format(request) == "csv"
    assert not listing.wants_export(rf.get("/", {"format": "pdf"}))
    urls = listing.export_urls(request)
    assert urls["xlsx"].endswith("&format=xlsx") and "status=open" in urls["xlsx"] and "page" not in urls["xlsx"]
    html = render_to_string("core/_pager.html", listing.pager(request, list(range(120))))
    assert "format=csv" in html and "format=xlsx" in html and "Download Excel" in html
    assert 'rel="next" href="?status=open&amp;q=' in html and "page=3" in html
    # the bottom pager of a page shows no export links when told so
    bottom = render_to_string("core/_pager.html", {**listing.pager(request, []), "exports": ""})
    assert "format=xlsx" not in bottom
