"""The collections sweep from the web runs as a background job with progress (it used to run inside
the request and be killed by the worker timeout), scoped to the caller's office, idempotent."""

import threading
import time
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from urja.billing import ledger
from urja.billing.models import EntryType
from urja.core.models import AuditEvent, BackgroundJob
from urja.demo import testing
from urja.payments import services
from urja.payments.models import CollectionCase
from urja.payments.services import collection

SWEEP = "/api/v1/payments/collections/sweep"


def overdue(section, key: str, mobile: str, amount: str = "1500.00"):
    account = testing.domestic_account(section, mobile=mobile)
    ledger.post_entry(
        account=account,
        entry_type=EntryType.BILL_CHARGE,
        amount=amount,
        description="bill",
        due_date=timezone.localdate() - timedelta(days=30),
        idempotency_key=key,
    )
    return account


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.django_db
def test_sweep_answers_202_with_a_job_that_reports_progress_and_stays_in_the_office(
    offices, django_capture_on_commit_callbacks
):
    mine = [overdue(offices["section1"], f"m{i}", f"94370005{i:02d}") for i in range(3)]
    theirs = overdue(offices["section2"], "t1", "9437000600")
    manager = testing.staff_user("manager", offices["division1"])
    api = client_for(manager)
    with django_capture_on_commit_callbacks(execute=True):
        started = api.post(SWEEP, content_type="application/json")
    assert started.status_code == 202, started.content
    body = started.json()
    assert body["kind"] == "payments.collections_sweep" and body["status"] == "queued"
    status = api.get(f"{SWEEP}/{body['id']}")
    assert status.status_code == 200
    job = status.json()
    assert job["status"] == "done" and job["stage"] == "notices" and job["done"] == job["total"] == 3
    assert job["result"] == {"flagged": 3, "settled": 0, "due": 0, "notices": 3}
    assert set(CollectionCase.objects.values_list("account_id", flat=True)) == {a.pk for a in mine}
    assert not CollectionCase.objects.filter(account=theirs).exists()  # another division's account
    assert BackgroundJob.objects.get().scope == offices["division1"].path
    assert AuditEvent.objects.filter(action="collections.sweep_started", actor=manager).count() == 1


@pytest.mark.django_db
def test_a_second_sweep_the_same_day_changes_nothing(offices, django_capture_on_commit_callbacks):
    overdue(offices["section1"], "a", "9437000701")
    api = client_for(testing.staff_user("manager", offices["division1"]))
    with django_capture_on_commit_callbacks(execute=True):
        first = api.post(SWEEP, content_type="application/json").json()
    audits = AuditEvent.objects.count()
    notice = CollectionCase.objects.get().notice_number
    with django_capture_on_commit_callbacks(execute=True):
        second = api.post(SWEEP, content_type="application/json").json()
    assert second["id"] != first["id"]
    assert api.get(f"{SWEEP}/{second['id']}").json()["result"] == {"flagged": 0, "settled": 0, "due": 0, "notices": 0}
    assert AuditEvent.objects.count() == audits + 1  # only the second job's start
    assert CollectionCase.objects.get().notice_number == notice


@pytest.mark.django_db
def test_a_double_click_starts_one_job(offices):
    api = client_for(testing.staff_user("manager", offices["division1"]))
    first = api.post(SWEEP, content_type="application/json")  # on_commit not run: stays queued
    again = api.post(SWEEP, content_type="application/json")
    assert first.status_code == again.status_code == 202
    assert first.json()["id"] == again.json()["id"] and BackgroundJob.objects.count() == 1


@pytest.mark.django_db
def test_a_scoped_sweep_does_not_settle_cases_of_other_offices(offices, django_capture_on_commit_callbacks):
    """The utility-wide sweep settles a case whose account no longer owes; a division's sweep must not
    touch a case outside the division (it does not see that account's balance)."""
    elsewhere = testing.domestic_account(offices["section2"], mobile="9437000801")
    case = CollectionCase.objects.create(
        account=elsewhere, reason="overdue", flagged_on=timezone.localdate(), amount_due="1500.00"
    )
    api = client_for(testing.staff_user("manager", offices["division1"]))
    with django_capture_on_commit_callbacks(execute=True):
        api.post(SWEEP, content_type="application/json")
    case.refresh_from_db()
    assert case.status == "flagged"
    assert services.sweep_collections()["settled"] == 1  # the utility-wide job does settle it


@pytest.mark.django_db
def test_who_may_sweep_what(offices):
    circle = client_for(testing.staff_user("manager", offices["circle"]))
    refused = circle.post(SWEEP, {"office": offices["utility"].code}, content_type="application/json")
    missing = circle.post(SWEEP, {"office": "NO-SUCH"}, content_type="application/json")
    assert refused.status_code == missing.status_code == 404
    assert refused.json() == missing.json() and refused.json()["code"] == "not_found"
    below = circle.post(SWEEP, {"office": offices["division2"].code}, content_type="application/json")
    assert below.status_code == 202
    assert BackgroundJob.objects.get().scope == offices["division2"].path
    own = circle.post(SWEEP, content_type="application/json")
    assert own.status_code == 202 and BackgroundJob.objects.get(pk=own.json()["id"]).scope == offices["circle"].path
    assert not BackgroundJob.objects.filter(scope="").exists()  # a circle manager never sweeps the utility

    cre = client_for(testing.staff_user("cre", offices["division1"]))
    assert cre.post(SWEEP, content_type="application/json").status_code == 403
    # another division's manager cannot see the job; the same 404 as a job that does not exist
    other = client_for(testing.staff_user("manager", offices["division1"]))
    hidden = other.get(f"{SWEEP}/{below.json()['id']}")
    assert hidden.status_code == 404 and hidden.json() == other.get(f"{SWEEP}/999999").json()
    assert circle.get(f"{SWEEP}/{below.json()['id']}").status_code == 200
    admin = client_for(testing.staff_user("admin", None))
    assert admin.post(SWEEP, content_type="application/json").status_code == 202
    assert BackgroundJob.objects.filter(scope="").count() == 1


@pytest.mark.django_db
def test_progress_is_reported_as_accounts_are_worked(offices, monkeypatch):
    for i in range(5):
        overdue(offices["section1"], f"p{i}", f"94370009{i:02d}")
    monkeypatch.setattr(collection, "SWEEP_PROGRESS_EVERY", 2)  # read where the sweep runs
    seen = []
    services.sweep_collections(office_path=offices["division1"].path, progress=lambda d, t: seen.append((d, t)))
    assert seen == [(0, 5), (2, 5), (4, 5), (5, 5)]


@pytest.mark.django_db(transaction=True)
def test_in_the_embedded_default_the_request_returns_before_the_sweep_runs(offices, settings, monkeypatch):
    """No broker (tasks eager): the sweep must run in the background worker thread, not in the
    request. The job's body waits on a gate that is opened only after the response has arrived."""
    settings.URJA_BACKGROUND_THREADS = True
    overdue(offices["section1"], "e1", "9437001001")
    gate = threading.Event()
    real = services.sweep_collections

    def gated(**kwargs):
        assert gate.wait(20)
        return real(**kwargs)

    monkeypatch.setattr(collection, "sweep_collections", gated)  # what the job calls
    api = client_for(testing.staff_user("manager", offices["division1"]))
    started = time.monotonic()
    response = api.post(SWEEP, content_type="application/json")
    assert response.status_code == 202 and time.monotonic() - started < 10
    job_id = response.json()["id"]
    assert api.get(f"{SWEEP}/{job_id}").json()["status"] in ("queued", "running")
    gate.set()
    deadline = time.monotonic() + 30
    while api.get(f"{SWEEP}/{job_id}").json()["status"] != "done" and time.monotonic() < deadline:
        time.sleep(0.1)
    assert api.get(f"{SWEEP}/{job_id}").json()["result"]["flagged"] == 1
