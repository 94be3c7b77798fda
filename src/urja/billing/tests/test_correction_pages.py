"""Issue 15 part 2: pages for bill revisions (maker-checker), security deposits and final bills —
each action through the page, errors in words with the form's values kept, out of scope = nonexistent."""

from datetime import date

import pytest

from urja.billing import ledger, services
from urja.billing.models import Bill, BillRevision, EntryType, LedgerEntry, SecurityDeposit
from urja.customers.models import Account
from urja.demo.testing import staff_user

JUNE = dict(cycle="C01", period="2025-06", bill_date=date(2025, 7, 2))


@pytest.fixture
def billed(make_account):
    account = make_account()
    services.start_run(run=services.create_run(**JUNE))
    return Bill.objects.get(account=account)


@pytest.fixture
def maker(offices):
    return staff_user("billing_officer", offices["division1"])


@pytest.fixture
def checker(offices):
    return staff_user("manager", offices["division1"])


@pytest.fixture
def outsider(offices):
    return staff_user("billing_officer", offices["division2"])


def test_revision_maker_checker_through_the_pages(client, billed, maker, checker):
    client.force_login(maker)
    before = ledger.balance(account=billed.account)
    bad = client.post(
        "/billing/revisions/",
        {"bill": billed.bill_number, "kind": "credit_note", "amount": "abc", "reason": "meter misread"},
    )
    page = bad.content.decode()
    assert bad.status_code == 400 and "meter misread" in page and 'value="abc"' in page  # values kept
    assert not BillRevision.objects.exists()
    too_much = client.post(
        "/billing/revisions/", {"bill": billed.bill_number, "kind": "credit_note", "amount": "999999", "reason": "x"}
    )
    assert "a credit note cannot exceed the bill" in too_much.content.decode()

    ok = client.post(
        "/billing/revisions/",
        {"bill": billed.bill_number, "kind": "credit_note", "amount": "100", "reason": "meter misread"},
    )
    assert ok.status_code == 302
    rev = BillRevision.objects.get()
    page = client.get("/billing/revisions/").content.decode()
    assert "Credit note" in page and "Waiting for a checker" in page and "credit_note" not in page.split("<tbody>")[1]
    assert "Another officer must decide your proposal." in page

    # the maker cannot approve its own note, even by posting directly
    client.post(f"/billing/revisions/{rev.pk}/decide/", {"decision": "approve"})
    rev.refresh_from_db()
    assert rev.status == "proposed" and ledger.balance(account=billed.account) == before

    client.force_login(checker)
    assert "Approve and post" in client.get("/billing/revisions/").content.decode()
    client.post(f"/billing/revisions/{rev.pk}/decide/", {"decision": "approve", "note": "checked the photo"})
    rev.refresh_from_db()
    assert rev.status == "approved" and rev.note_number and rev.decided_by == checker
    assert ledger.balance(account=billed.account) == before - 100  # the credit note is on the account
    assert LedgerEntry.objects.filter(account=billed.account, entry_type=EntryType.CREDIT_NOTE).count() == 1


def test_rejected_revision_posts_nothing(client, billed, maker, checker):
    rev = services.propose_revision(bill=billed, kind="debit_note", amount="50", reason="short billed", actor=maker)
    client.force_login(checker)
    client.post(f"/billing/revisions/{rev.pk}/decide/", {"decision": "reject"})
    rev.refresh_from_db()
    assert rev.status == "rejected" and rev.ledger_entry is None


def test_revisions_out_of_scope_answer_like_nonexistent(client, billed, maker, outsider):
    rev = services.propose_revision(bill=billed, kind="credit_note", amount="10", reason="r", actor=maker)
    client.force_login(outsider)
    assert billed.bill_number not in client.get("/billing/revisions/").content.decode()
    missing = client.post("/billing/revisions/999999/decide/", {"decision": "approve"})
    theirs = client.post(f"/billing/revisions/{rev.pk}/decide/", {"decision": "approve"})
    assert missing.status_code == theirs.status_code == 404
    rev.refresh_from_db()
    assert rev.status == "proposed"
    other = client.post(
        "/billing/revisions/", {"bill": billed.bill_number, "kind": "credit_note", "amount": "1", "reason": "r"}
    )
    nonexistent = client.post(
        "/billing/revisions/", {"bill": "NOSUCHBILL", "kind": "credit_note", "amount": "1", "reason": "r"}
    )
    assert other.status_code == nonexistent.status_code == 400
    assert f"no bill {billed.bill_number}" in other.content.decode()
    assert BillRevision.objects.count() == 1


@pytest.mark.parametrize("role", ["cre", "engineer", "field_agent", "key_account_manager"])
def test_correction_pages_refuse_other_roles(client, offices, role):
    client.force_login(staff_user(role, offices["division1"]))
    for url in ("/billing/revisions/", "/billing/deposits/", "/billing/final-bills/"):
        assert client.get(url).status_code == 403


def test_deposit_pages_review_interest_apply(client, billed, maker, outsider):
    account = billed.account
    client.force_login(maker)
    due = client.get("/billing/deposits/").content.decode()
    assert account.consumer_number in due
    page = client.get(f"/billing/deposits/{account.consumer_number}/")
    assert page.status_code == 200 and "Annual review" in page.content.decode()

    client.post(f"/billing/deposits/{account.consumer_number}/", {"action": "review"})
    record = SecurityDeposit.objects.get(account=account)
    assert record.last_reviewed_on is not None
    assert account.consumer_number not in client.get("/billing/deposits/").content.decode()  # no longer due

    bad = client.post(f"/billing/deposits/{account.consumer_number}/", {"action": "interest", "fy": "1999-00"})
    assert bad.status_code == 400 and "no interest rate for FY 1999-00" in bad.content.decode()
    blank = client.post(f"/billing/deposits/{account.consumer_number}/", {"action": "apply", "reason": " "})
    assert blank.status_code == 400 and "a reason is required" in blank.content.decode()

    ledger.post_entry(
        account=account, entry_type=EntryType.DEPOSIT, amount=500, description="deposit", actor=None,
        channel="system", reference_type="deposit", reference_id="t", idempotency_key="t-dep",
    )  # fmt: skip
    client.post(f"/billing/deposits/{account.consumer_number}/", {"action": "apply", "reason": "surrender"})
    from urja.billing import deposits

    assert deposits.held(account) == 0
    text = client.get(f"/billing/deposits/{account.consumer_number}/").content.decode()
    assert "Security deposit applied: surrender" in text and "₹500.00" in text

    client.force_login(outsider)
    theirs = client.get(f"/billing/deposits/{account.consumer_number}/")
    missing = client.get("/billing/deposits/NOSUCH0000/")
    assert theirs.status_code == missing.status_code == 404
    assert client.post(f"/billing/deposits/{account.consumer_number}/", {"action": "review"}).status_code == 404


def test_final_bill_page(client, billed, maker, outsider):
    account = billed.account
    Account.objects.filter(pk=account.pk).update(status="perm_disconnected")
    client.force_login(maker)
    listing = client.get("/billing/final-bills/").content.decode()
    assert account.consumer_number in listing and "Permanently disconnected" in listing
    url = f"/billing/final-bills/{account.consumer_number}/"
    bad = client.post(url, {"units": "-4", "disconnected_on": "2025-07-10"})
    assert bad.status_code == 400 and 'value="2025-07-10"' in bad.content.decode()
    assert "Give the units" in bad.content.decode()
    early = client.post(url, {"units": "40", "disconnected_on": "2025-01-01"})
    assert "disconnection date is before the unbilled period" in early.content.decode()
    assert not Bill.objects.filter(kind=Bill.Kind.FINAL).exists()

    client.force_login(outsider)
    assert client.post(url, {"units": "40", "disconnected_on": "2025-07-10"}).status_code == 404
    assert client.get("/billing/final-bills/NOSUCH0000/").status_code == 404
    assert account.consumer_number not in client.get("/billing/final-bills/").content.decode()

    client.force_login(maker)
    ok = client.post(url, {"units": "40", "disconnected_on": "2025-07-10"})
    final = Bill.objects.get(kind=Bill.Kind.FINAL)
    assert ok["Location"] == f"/billing/bills/{final.bill_number}/"
    assert final.units == 40 and final.period_start == date(2025, 7, 1)
    listing = client.get("/billing/final-bills/").content.decode()
    assert final.bill_number in listing and "Issue the final bill" not in listing
    assert final.bill_number in client.get(url).content.decode()
