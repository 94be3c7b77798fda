"""Issue 15 part 2, in a real browser: a CRE registers a consumer with the KYC documents of the
checklist (choosing another applicant type reloads the checklist), is told which field is wrong when a
document is missing, opens the connection with a load out of range then within it on a DT, bill cycle
and route of its section (issue 12), and lands on the 360° page."""

import pytest
from playwright.sync_api import expect

from urja.customers.models import Account, Consumer
from urja.demo import testing
from urja.network.models import DistributionTransformer, Feeder

pytestmark = pytest.mark.browser

PDF = {"name": "deed.pdf", "mimeType": "application/pdf", "buffer": b"%PDF-1.4\n1 0 obj\n"}
JPEG = {"name": "photo.jpg", "mimeType": "image/jpeg", "buffer": b"\xff\xd8\xff\xe0\x00\x10JFIF"}


@pytest.fixture
def cre(offices, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    return testing.staff_user("cre", offices["division1"], username="cre_kyc", password="kyc-pass-1")


def test_cre_registers_a_consumer_with_kyc_and_opens_the_connection(page, login, screenshot, cre, offices):
    feeder = Feeder.objects.create(code="F-STN", name="Station Road 11 kV", office=offices["section1"])
    dt = DistributionTransformer.objects.create(code="DT-STN-1", feeder=feeder, capacity_kva=100)
    login(page, "cre_kyc", "kyc-pass-1")
    page.get_by_role("link", name="Register consumer").click()
    page.wait_for_url("**/customers/new/")
    expect(page.get_by_label("File – Identity proof of applicant")).to_be_visible()

    # another applicant type: its checklist replaces the owner's (HTMX)
    page.get_by_label("Applicant type").select_option("company")
    expect(page.get_by_label("File – Certificate of incorporation")).to_be_visible()
    expect(page.get_by_label("File – Identity proof of applicant")).to_have_count(0)
    page.get_by_label("Applicant type").select_option("owner")
    expect(page.get_by_label("File – Identity proof of applicant")).to_be_visible()

    page.get_by_label("Name", exact=True).fill("Sunita Behera")
    page.get_by_label("Father's / husband's name").fill("Ramesh Behera")
    page.get_by_label("Mobile").fill("9437012345")
    page.get_by_label("Preferred language").select_option("or")
    page.get_by_label("Which proof – Identity proof of applicant").select_option("voter_id")
    page.get_by_label("Document number – Identity proof of applicant").fill("OR/12/345/678")
    page.get_by_label("File – Identity proof of applicant").set_input_files(PDF)
    page.get_by_label("File – Photograph of applicant").set_input_files(JPEG)
    # the ownership proof is forgotten: the page says so on that field and saves nothing
    page.get_by_role("button", name="Register consumer").click()
    expect(page.locator("#id_doc_ownership_proof_file-error")).to_contain_text("Upload the Ownership proof")
    assert Consumer.objects.count() == 0
    screenshot(page, "register-consumer-missing-document")

    # files are not kept across a refused form: give them again with the missing one
    page.get_by_label("File – Identity proof of applicant").set_input_files(PDF)
    page.get_by_label("File – Photograph of applicant").set_input_files(JPEG)
    page.get_by_label("Which proof – Ownership proof").select_option("sale_deed")
    page.get_by_label("File – Ownership proof").set_input_files(PDF)
    page.get_by_role("button", name="Register consumer").click()
    page.wait_for_url("**/customers/consumers/*/")
    expect(page.locator("#consumer-name")).to_have_text("Sunita Behera")
    expect(page.locator("#kyc-complete")).to_be_visible()
    screenshot(page, "consumer-page")

    page.get_by_role("link", name="Open a connection").click()
    page.get_by_label("Section office").select_option(offices["section1"].code)
    page.get_by_label("Premises address").fill("Plot 12, Station Road, Balasore")
    page.get_by_label("PIN code").fill("756001")
    page.get_by_label("Supply type").select_option("lt_1ph")
    page.get_by_label("Category", exact=True).select_option("domestic")
    page.get_by_label("Sanctioned load").fill("7")
    page.get_by_label("Distribution transformer (DT)").select_option("DT-STN-1")
    page.get_by_label("Bill cycle").select_option("C02")
    page.get_by_label("Reading route (book)").fill("S1-R04")
    page.get_by_role("button", name="Open connection").click()
    expect(page.locator("#id_sanctioned_load-error")).to_contain_text("allows at most 5.0 kW")
    assert Account.objects.count() == 0

    page.get_by_label("Sanctioned load").fill("3")
    page.get_by_role("button", name="Open connection").click()
    page.wait_for_url("**/backoffice/accounts/*/")
    account = Account.objects.get()
    assert (account.transformer, account.feeder, account.bill_cycle, account.route) == (dt, feeder, "C02", "S1-R04")
    expect(page.locator("#consumer-number")).to_have_text(account.consumer_number)
    expect(page.locator(".messages")).to_contain_text(f"Connection {account.consumer_number} opened.")
    screenshot(page, "connection-opened-360")
