"""Bill document (en/hi/or, QR, verification), 360° panel, PDF download, API, deposits."""

import shutil
from datetime import date
from decimal import Decimal as D

import pytest
from django.utils import timezone

from urja.billing import deposits, documents, ledger, services
from urja.billing.models import Bill, EntryType
from urja.demo.testing import staff_user

from .conftest import steady

JUNE = dict(cycle="C01", period="2025-06", bill_date=date(2025, 7, 2))


@pytest.fixture
def billed(make_account):
    account = make_account()
    run = services.create_run(**JUNE)
    services.start_run(run=run)
    return Bill.objects.get(account=account)


def test_document_in_three_languages_with_qr_and_verification(billed, settings):
    settings.URJA_PUBLIC_URL = "http://bills.example.in"
    en = documents.render_html(billed, "en")
    assert "Electricity Bill" in en and billed.bill_number in en and "1,175.00" in en
    assert "Rupees One Thousand One Hundred Seventy-Five Only" in en
    assert "data:image/svg+xml" in en  # UPI QR
    assert services.verification_code(billed) in en
    # printed on paper: the verification address is absolute, under the utility's public URL
    assert f"http://bills.example.in/billing/verify/?bill={billed.bill_number}" in en
    assert "बिजली बिल" in documents.render_html(billed, "hi")
    assert "ବିଦ୍ୟୁତ୍ ବିଲ୍" in documents.render_html(billed, "or")
    uri = documents.upi_uri(billed)
    assert uri.startswith("upi://pay?") and "am=1175.00" in uri and billed.bill_number in uri


def test_verification_page(client, billed):
    code = services.verification_code(billed)
    ok = client.get("/billing/verify/", {"bill": billed.bill_number, "code": code})
    assert ok.status_code == 200 and "Genuine bill" in ok.content.decode()
    bad = client.get("/billing/verify/", {"bill": billed.bill_number, "code": "AAAA-BBBB-CCCC"})
    assert "does not match" in bad.content.decode()


@pytest.mark.skipif(not shutil.which("chromium"), reason="needs Debian chromium")
def test_pdf_download(client, billed, offices, settings, tmp_path, monkeypatch):
    settings.MEDIA_ROOT = tmp_path
    user = staff_user("cre", offices["division1"])
    client.force_login(user)
    response = client.get(f"/billing/bills/{billed.bill_number}/pdf/?lang=or")
    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    assert response.content.startswith(b"%PDF")
    cached = list((tmp_path / "bills").glob("*.pdf"))
    assert len(cached) == 1
    assert client.get(f"/billing/bills/{billed.bill_number}/pdf/?lang=or").content == response.content
    assert list((tmp_path / "bills").glob("*.pdf")) == cached  # served from the cache
    real_labels = documents.labels
    monkeypatch.setattr(documents, "labels", lambda lang: {**real_labels(lang), "title": "New wording"})
    client.get(f"/billing/bills/{billed.bill_number}/pdf/?lang=or")
    assert len(list((tmp_path / "bills").glob("*.pdf"))) == 2  # a changed page is rendered again, never stale


def test_account_panel_and_scope(client, billed, offices):
    client.force_login(staff_user("cre", offices["division1"]))
    panel = client.get(f"/billing/account/{billed.account.consumer_number}/panel/")
    assert panel.status_code == 200
    body = panel.content.decode()
    assert billed.bill_number in body and "1,175.00" in body
    client.force_login(staff_user("cre", offices["division2"]))  # another division: not in scope
    assert client.get(f"/billing/account/{billed.account.consumer_number}/panel/").status_code == 404


def test_api_bills_and_runs(client, billed, offices):
    officer = staff_user("billing_officer", offices["division1"])
    client.force_login(officer)
    history = client.get(f"/api/v1/billing/accounts/{billed.account.consumer_number}/bills")
    assert history.status_code == 200 and history.json()[0]["bill_number"] == billed.bill_number
    bad_months = client.get(f"/api/v1/billing/accounts/{billed.account.consumer_number}/bills?months=-1")
    assert bad_months.status_code == 422 and bad_months.json()["code"] == "validation_error"
    detail = client.get(f"/api/v1/billing/bills/{billed.bill_number}").json()
    assert detail["total"] == "1175.00" and [ln["code"] for ln in detail["lines"]][:2] == ["EC1", "EC2"]
    dry = client.post(
        "/api/v1/billing/runs",
        {"cycle": "C01", "period": "2025-05", "dry_run": True, "bill_date": "2025-06-02"},
        content_type="application/json",
    )
    assert dry.status_code == 200, dry.content
    assert dry.json()["status"] == "dry_run" and dry.json()["report"]["counts"]["bills"] == 1
    bad = client.post("/api/v1/billing/runs", {"cycle": "C99", "period": "2025-05"}, content_type="application/json")
    assert bad.status_code == 404 and bad.json()["code"] == "unknown_cycle"
    client.force_login(staff_user("cre", offices["division1"]))
    assert (
        client.post(
            "/api/v1/billing/runs", {"cycle": "C01", "period": "2025-05"}, content_type="application/json"
        ).status_code
        == 403
    )


def test_console_pages(client, billed, offices):
    client.force_login(staff_user("billing_officer", offices["division1"]))
    assert client.get("/billing/runs/").status_code == 200
    page = client.get(f"/billing/runs/{billed.run_id}/")
    assert page.status_code == 200 and "100.0%" in page.content.decode()
    client.force_login(staff_user("field_agent", offices["division1"]))  # a role the console is not for: 403
    client.raise_request_exception = False
    assert client.get("/billing/runs/").status_code == 403
    assert client.get(f"/billing/runs/{billed.run_id}/").status_code == 403
    assert client.post("/billing/runs/new/", {"cycle": "C01", "period": "2025-05"}).status_code == 403


def test_security_deposit_lifecycle(make_account):
    account = make_account(readings=steady(250, months=7))
    deposits.demand_initial(account=account, estimated_monthly_bill="500", on=date(2025, 4, 1))
    assert deposits.held(account) == D("1000.00")  # 2 months' estimated bill
    # a year of bills at 1175.00: required = 2 × 1175 = 2350 → additional 1350 with 30 days' notice
    for month in range(4, 16):
        y, m = 2024 + (month - 1) // 12, (month - 1) % 12 + 1
        Bill.objects.create(
            account=account, bill_number=f"TB{month:03d}", period_start=date(y, m, 1), period_end=date(y, m, 28),
            bill_date=date(y, m, 28), tariff_versions="", sanctioned_load=2, total=D("1175.00"),
            net_payable=D("1175.00"), created_at=timezone.now(),
        )  # fmt: skip
    result = deposits.annual_review(account=account, on=date(2025, 4, 10))
    assert result["action"] == "additional_demanded" and result["amount"] == D("1350.00")
    assert result["due_date"] == date(2025, 5, 10)
    assert (
        deposits.annual_review(account=account, on=date(2025, 4, 11))["action"] == "none"
    )  # idempotent: now held = required
    interest = deposits.credit_interest(account=account, fy="2025-26")
    assert interest.amount == D("-152.75")  # 6.50% of 2350
    before = ledger.balance(account=account)
    applied = deposits.apply_to_dues(account=account, reason="surrender")
    assert applied.amount == D("-2350.00") and ledger.balance(account=account) == before - D("2350.00")
    assert deposits.held(account) == 0
    assert not account.ledger.filter(entry_type=EntryType.DEPOSIT_REFUND).exists()


def test_bill_fit_to_print_names_the_utility_meter_and_readings_and_gives_english_beside(billed):
    """Issue 15 part 4: the licensee's name, address and GSTIN (data/billing/utility.toml), the meter
    number with its reading dates, line names in words; a Hindi or Odia bill carries English beside it."""
    from urja.core import regdata
    from urja.metering.models import Installation

    utility = regdata.load("billing/utility.toml")["utility"]
    serial = Installation.objects.filter(account=billed.account).select_related("meter").first().meter.serial
    en = documents.render_html(billed, "en")
    assert utility["name"]["en"] in en and utility["gstin"] in en and utility["address"]["en"] in en
    assert serial in en
    assert "slab above 0" not in en and "energy_charge" not in en
    for language in ("hi", "or"):
        page = documents.render_html(billed, language)
        assert utility["name"][language] in page and utility["gstin"] in page
        assert "— English" in page and utility["name"]["en"] in page  # the English summary box
        assert billed.bill_number in page
