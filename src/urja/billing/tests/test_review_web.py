"""Issue 15 part 3: a bill run started by hand bills only the officer's division, and only after a
review — nothing written, no e-bill queued until the officer approves."""

import pytest

from urja.billing.models import Bill, BillRun
from urja.core.models import AuditEvent
from urja.demo.testing import staff_user
from urja.notifications.models import OutboxMessage


@pytest.fixture
def two_divisions(make_account):
    return make_account(section="section1", mobile="9437011111"), make_account(section="section2", mobile="9437022222")


def test_review_then_approve_bills_only_the_officers_division(
    client, offices, two_divisions, django_capture_on_commit_callbacks
):
    mine, theirs = two_divisions
    officer = staff_user("billing_officer", offices["division1"])
    client.force_login(officer)
    console = client.get("/billing/runs/").content.decode()
    assert offices["division1"].name in console and offices["division2"].name not in console  # division choice

    with django_capture_on_commit_callbacks(execute=True):  # the background work, inline
        response = client.post("/billing/runs/new/", {"cycle": "C01", "period": "2025-06", "review": "on"})
    assert response.status_code == 302
    review = BillRun.objects.get(dry_run=True)
    assert review.status == "dry_run"  # computed in the background (inline in tests)
    assert review.bills == 1 and review.report["scope_path"] == offices["division1"].path
    assert not Bill.objects.exists() and not OutboxMessage.objects.exists()  # nothing posted, no e-bill
    page = client.get(f"/billing/runs/{review.pk}/").content.decode()
    assert "Approve and post the bills" in page

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/billing/runs/{review.pk}/approve/")
    run = BillRun.objects.get(dry_run=False)
    assert response["Location"] == f"/billing/runs/{run.pk}/"
    assert list(Bill.objects.values_list("account_id", flat=True)) == [mine.pk]  # not the other division's
    assert run.status == "running"  # the other division's partition waits for its officer
    assert AuditEvent.objects.filter(action="billrun.review_approved").exists()

    other = staff_user("billing_officer", offices["division2"])
    client.force_login(other)
    assert "Bill my divisions" in client.get(f"/billing/runs/{run.pk}/").content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        client.post(f"/billing/runs/{run.pk}/start/")
    run.refresh_from_db()
    assert set(Bill.objects.values_list("account_id", flat=True)) == {mine.pk, theirs.pk}
    assert run.status in ("completed", "completed_exc")


def test_an_officer_cannot_bill_or_approve_another_division(client, offices, two_divisions):
    officer = staff_user("billing_officer", offices["division1"])
    client.force_login(officer)
    response = client.post(
        "/billing/runs/new/", {"cycle": "C01", "period": "2025-06", "division": offices["division2"].code}
    )
    assert "choose+one+of+your+divisions" in response["Location"] or "choose" in response["Location"]
    assert not BillRun.objects.exists()

    other = staff_user("billing_officer", offices["division2"])
    client.force_login(other)
    client.post("/billing/runs/new/", {"cycle": "C01", "period": "2025-06", "review": "on"})
    review = BillRun.objects.get(dry_run=True)
    client.force_login(officer)
    assert client.post(f"/billing/runs/{review.pk}/approve/").status_code == 404
    assert not Bill.objects.exists()


def test_a_period_not_ended_cannot_be_reviewed_either(client, offices, make_account):
    from django.utils import timezone

    make_account()
    client.force_login(staff_user("billing_officer", offices["division1"]))
    period = f"{timezone.localdate():%Y-%m}"
    page = client.post("/billing/runs/new/", {"cycle": "C01", "period": period, "review": "on"}, follow=True)
    assert "has not ended yet" in page.content.decode()
    assert not BillRun.objects.exists()
