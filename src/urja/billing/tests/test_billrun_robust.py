"""Bill-run robustness (issue 10): no run for a period that has not ended, stale partitions taken
over, implausible demand held, exceptions resolved and billed again from the run page and the API."""

from datetime import date, timedelta
from decimal import Decimal as D

import pytest
from django.utils import timezone

from urja.billing import runs, services, tasks
from urja.billing.models import Bill, BillException, BillRun, BillRunPartition, LedgerEntry, RunStatus
from urja.core.errors import DomainError
from urja.core.models import AuditEvent
from urja.demo.testing import staff_user
from urja.metering import services as metering

from .conftest import local, metered_account, steady

JUNE = dict(cycle="C01", period="2025-06", bill_date=date(2025, 7, 2))


@pytest.fixture
def small_chunks(monkeypatch):
    cfg = {**runs.config(), "bill": {**runs.config()["bill"], "chunk_size": 2}}
    monkeypatch.setattr(runs, "config", lambda: cfg)


# --- 1. no bill for a period that has not ended -------------------------------------------------


def test_no_real_run_for_a_period_that_has_not_ended(make_account, monkeypatch):
    make_account()
    # 30 June: June has not ended (a run now would bill May's readings as June's)
    monkeypatch.setattr(timezone, "localdate", lambda *a: date(2025, 6, 30))
    with pytest.raises(DomainError) as exc:
        services.create_run(cycle="C01", period="2025-06")
    assert (exc.value.code, exc.value.status) == ("period_not_ended", 400)
    assert exc.value.details["first_run_date"] == "2025-07-01"
    assert not BillRun.objects.exists()
    # a dry run previews the running period (writes nothing), dated the day after it
    preview = services.create_run(cycle="C01", period="2025-06", dry_run=True)
    assert preview.bill_date == date(2025, 7, 1)
    # 1 July: June has ended; the bill is dated today by default, never ahead of today
    monkeypatch.setattr(timezone, "localdate", lambda *a: date(2025, 7, 1))
    with pytest.raises(DomainError) as exc:
        services.create_run(cycle="C01", period="2025-06", bill_date=date(2025, 7, 2))
    assert exc.value.code == "bill_date_in_future"
    run = services.start_run(run=services.create_run(cycle="C01", period="2025-06"))
    assert run.status == RunStatus.COMPLETED and run.bill_date == date(2025, 7, 1)
    assert Bill.objects.get().bill_date == date(2025, 7, 1)


def test_a_run_planned_for_an_open_period_is_not_started(make_account):
    make_account()
    today = timezone.localdate()
    start = today.replace(day=1)
    end = (start + timedelta(days=32)).replace(day=1) - timedelta(days=1)
    planned = BillRun.objects.create(  # planned before the rule (e.g. the run of 4 December)
        cycle=services.get_cycle("C01"), period=f"{today:%Y-%m}", period_start=start, period_end=end,
        bill_date=end + timedelta(days=1), due_date=end + timedelta(days=8),
    )  # fmt: skip
    with pytest.raises(DomainError) as exc:
        services.start_run(run=planned)
    assert exc.value.code == "period_not_ended"
    planned.refresh_from_db()
    assert planned.status == RunStatus.PLANNED and not Bill.objects.exists()


def test_open_period_refused_by_api_and_page_with_a_clear_message(client, make_account, offices):
    make_account()
    client.force_login(staff_user("billing_officer", offices["division1"]))
    period = f"{timezone.localdate():%Y-%m}"
    api = client.post("/api/v1/billing/runs", {"cycle": "C01", "period": period}, content_type="application/json")
    assert api.status_code == 400
    assert api.json()["code"] == "period_not_ended" and "has not ended yet" in api.json()["message"]
    future = client.post(
        "/api/v1/billing/runs",
        {"cycle": "C01", "period": "2025-06", "bill_date": (timezone.localdate() + timedelta(days=3)).isoformat()},
        content_type="application/json",
    )
    assert future.status_code == 400 and future.json()["code"] == "bill_date_in_future"
    page = client.post("/billing/runs/new/", {"cycle": "C01", "period": period}, follow=True)
    assert page.status_code == 200 and "has not ended yet" in page.content.decode()
    assert not BillRun.objects.exists() and not Bill.objects.exists()


# --- 2. stale partitions taken over ----------------------------------------------------------------


def _dead_claim(part_id: int, *, age_seconds: int) -> None:
    """What a worker killed with kill -9 leaves: its claim, and a heartbeat that ages."""
    BillRunPartition.objects.filter(pk=part_id).update(
        claimed_by="worker-7:4242", heartbeat_at=timezone.now() - timedelta(seconds=age_seconds)
    )


def test_sweep_takes_over_a_dead_workers_partition_and_finishes_the_run(
    make_account, small_chunks, django_capture_on_commit_callbacks
):
    accounts = [make_account() for _ in range(5)]
    run = services.create_run(**JUNE)
    part = run.partitions.get()
    BillRun.objects.filter(pk=run.pk).update(status=RunStatus.RUNNING)
    assert runs.process_partition(part.pk, stop_after_chunks=1) == "running"  # 2 bills, then killed
    expiry = int(runs.config()["bill"]["stale_partition_seconds"])

    # a fresh claim of another worker is not taken: not by the redelivered task, not by the sweep
    _dead_claim(part.pk, age_seconds=expiry - 30)
    assert runs.process_partition(part.pk) == "running"
    with django_capture_on_commit_callbacks(execute=True):
        assert runs.sweep_partitions() == {"taken_over": [], "finished": []}
    assert Bill.objects.count() == 2 and BillRunPartition.objects.get(pk=part.pk).claimed_by == "worker-7:4242"

    # its heartbeat expires: the periodic job re-enqueues the partition and the task takes it over
    _dead_claim(part.pk, age_seconds=expiry + 1)
    assert "billing.sweep_partitions" in tasks.PERIODIC_TASKS
    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.sweep_partitions.apply().get()["taken_over"] == [part.pk]
    run.refresh_from_db()
    assert run.status == RunStatus.COMPLETED and run.bills == 5
    # exactly one bill per account, numbers without gap or duplicate
    assert sorted(Bill.objects.values_list("account_id", flat=True)) == sorted(a.pk for a in accounts)
    assert sorted(int(n[-7:]) for n in Bill.objects.values_list("bill_number", flat=True)) == [1, 2, 3, 4, 5]
    assert LedgerEntry.objects.filter(entry_type="bill_charge").count() == 5
    taken = AuditEvent.objects.get(action="billrun.partition_taken_over")
    assert taken.changes["from_worker"] == "worker-7:4242" and taken.changes["cursor"] == accounts[1].pk
    assert (taken.changes["from"], taken.changes["to"]) == ("running", "running")
    # swept again: nothing to do, nothing billed twice
    with django_capture_on_commit_callbacks(execute=True):
        assert runs.sweep_partitions() == {"taken_over": [], "finished": []}
    assert Bill.objects.count() == 5


def test_sweep_finishes_a_run_whose_worker_died_after_its_last_chunk(make_account):
    make_account()
    run = services.start_run(run=services.create_run(**JUNE))
    assert run.status == RunStatus.COMPLETED
    # the worker committed its last chunk and died before finishing the run
    BillRun.objects.filter(pk=run.pk).update(status=RunStatus.RUNNING, bills=0, finished_at=None)
    assert runs.sweep_partitions() == {"taken_over": [], "finished": [run.pk]}
    run.refresh_from_db()
    assert run.status == RunStatus.COMPLETED and run.bills == 1


def test_a_worker_whose_claim_was_taken_over_stops_billing(make_account, small_chunks, monkeypatch):
    [make_account() for _ in range(5)]
    run = services.create_run(**JUNE)
    part = run.partitions.get()
    BillRun.objects.filter(pk=run.pk).update(status=RunStatus.RUNNING)
    real_write = runs.write_chunk

    def slow_write(*args, **kwargs):
        real_write(*args, **kwargs)
        # while this worker was stalled past the expiry, another one took the partition over
        BillRunPartition.objects.filter(pk=part.pk).update(claimed_by="worker-8:1", heartbeat_at=timezone.now())

    monkeypatch.setattr(runs, "write_chunk", slow_write)
    assert runs.process_partition(part.pk) == "running"
    assert Bill.objects.count() == 2  # its first chunk; the rest is the new owner's


# --- 3. implausible demand held --------------------------------------------------------------------


def _md_account(offices, *, md: str, mf: str = "1", load: str = "2"):
    """An account whose June reading records `md` (kW, on the meter's scale) and a meter of factor `mf`."""
    from urja.metering.models import Installation, Meter

    account = metered_account(offices["section1"], load=load, readings=steady(250, months=5))
    # a CT-operated meter: its register and MD are multiplied by the factor
    Meter.objects.filter(pk=Installation.objects.get(account=account).meter_id).update(multiplying_factor=D(mf))
    last = 1000 + 250 * 5
    metering.record_reading(
        actor=None, channel="system", source="amr", account=account, read_at=local(2025, 6, 30),
        kwh=str(last + 250 // int(D(mf))), md_kw=md,
    )  # fmt: skip
    return account


def test_demand_above_the_multiple_of_contract_demand_is_held_not_billed(offices, tariffs_loaded):
    multiple = D(str(runs.config()["demand"]["max_multiple_of_contract"]))
    assert multiple == D("2.0")
    fine = _md_account(offices, md="3.5")  # 1.75 × the 2 kW contract demand: overdrawal, billed on actual MD
    edge = _md_account(offices, md="4")  # exactly 2 ×: billed
    absurd = _md_account(offices, md="5.2")  # 2.6 ×
    wrong_mf = _md_account(offices, md="0.25", mf="40")  # 0.25 × MF 40 = 10 kW on 2 kW
    run = services.start_run(run=services.create_run(**JUNE))
    assert run.status == RunStatus.COMPLETED_WITH_EXCEPTIONS
    assert set(Bill.objects.values_list("account_id", flat=True)) == {fine.pk, edge.pk}
    assert Bill.objects.get(account=fine).recorded_md == D("3.500")
    held = {e.account_id: e for e in BillException.objects.filter(run=run)}
    assert set(held) == {absurd.pk, wrong_mf.pk} and {e.kind for e in held.values()} == {"implausible_demand"}
    e = held[wrong_mf.pk]
    assert e.message == "billed demand 10 kW (recorded MD 0.25 × MF 40) is more than 2 × the contract demand of 2 kW"
    assert e.details["contract_demand"] == "2" and e.details["mf"] == "40"
    assert not LedgerEntry.objects.filter(account__in=[absurd, wrong_mf]).exists()


def test_dry_run_reports_implausible_demand(offices, tariffs_loaded):
    _md_account(offices, md="9")
    run = services.dry_run_report(run=services.create_run(**JUNE, dry_run=True))
    assert run.report["counts"]["exceptions"] == 1 and run.report["exceptions"][0]["kind"] == "implausible_demand"


# --- 4. exceptions resolved and billed again ---------------------------------------------------------


@pytest.fixture
def run_with_exceptions(make_account):
    make_account()
    spike1 = make_account(readings=steady(100, last=2600))  # waits for VEE review
    spike2 = make_account(section="section2", readings=steady(100, last=2600))  # in the other division
    run = services.start_run(run=services.create_run(**JUNE))
    assert run.status == RunStatus.COMPLETED_WITH_EXCEPTIONS and run.exceptions == 2
    return run, spike1, spike2


def test_resolve_exception_from_the_run_page_in_the_officers_office(client, offices, run_with_exceptions):
    run, spike1, spike2 = run_with_exceptions
    mine, other = BillException.objects.get(account=spike1), BillException.objects.get(account=spike2)
    officer = staff_user("billing_officer", offices["division1"])
    client.force_login(officer)
    page = client.get(f"/billing/runs/{run.pk}/").content.decode()
    assert f"/billing/runs/{run.pk}/exceptions/{mine.pk}/resolve/" in page and "Bill the open exceptions again" in page
    assert spike2.consumer_number not in page  # another division's exception is not listed
    url = f"/billing/runs/{run.pk}/exceptions/{{}}/resolve/"
    empty = client.post(url.format(mine.pk), {"note": " "}, follow=True)
    assert "say how the exception was resolved" in empty.content.decode()
    assert client.post(url.format(other.pk), {"note": "x"}).status_code == 404  # out of scope: as nonexistent
    assert client.post(url.format(999999), {"note": "x"}).status_code == 404
    done = client.post(url.format(mine.pk), {"note": "reading confirmed by site visit"}, follow=True)
    assert "resolved" in done.content.decode()
    mine.refresh_from_db()
    assert (
        mine.resolved
        and mine.resolved_by == officer
        and mine.details["resolution"] == "reading confirmed by site visit"
    )
    run.refresh_from_db()
    assert run.exceptions == 1  # open exceptions of the finished run
    audit = AuditEvent.objects.get(action="billrun.exception_resolved")
    assert audit.actor == officer and audit.object_id == str(spike1.pk)
    again = client.post(url.format(mine.pk), {"note": "again"}, follow=True)
    assert "already resolved" in again.content.decode()
    client.force_login(staff_user("cre", offices["division1"]))  # sees the run, may not resolve
    client.raise_request_exception = False
    assert "exceptions/" not in client.get(f"/billing/runs/{run.pk}/").content.decode()
    assert client.post(url.format(other.pk), {"note": "x"}).status_code == 403


def test_resolve_and_rebill_through_the_api(client, offices, run_with_exceptions, django_capture_on_commit_callbacks):
    from urja.metering.models import Reading

    run, spike1, spike2 = run_with_exceptions
    client.force_login(staff_user("billing_officer", offices["division2"]))
    listed = client.get(f"/api/v1/billing/runs/{run.pk}/exceptions").json()
    assert [e["consumer_number"] for e in listed] == [spike2.consumer_number]
    theirs = BillException.objects.get(account=spike1)
    out = client.post(
        f"/api/v1/billing/runs/{run.pk}/exceptions/{theirs.pk}/resolve", {"note": "x"}, content_type="application/json"
    )
    assert out.status_code == 404 and out.json()["code"] == "exception_not_found"
    mine = BillException.objects.get(account=spike2)
    ok = client.post(
        f"/api/v1/billing/runs/{run.pk}/exceptions/{mine.pk}/resolve",
        {"note": "billed by hand after a meter test"},
        content_type="application/json",
    )
    assert ok.status_code == 200 and ok.json()["resolved"] and ok.json()["resolution"].startswith("billed by hand")
    dup = client.post(
        f"/api/v1/billing/runs/{run.pk}/exceptions/{mine.pk}/resolve", {"note": "y"}, content_type="application/json"
    )
    assert dup.status_code == 409 and dup.json()["code"] == "already_resolved"
    # the first spike is accepted after review; billing its exception again bills it, and only it
    reading = Reading.objects.get(account=spike1, vee_status="review")
    metering.review_reading(reading=reading, action="accept", actor=None, channel="backoffice")
    with django_capture_on_commit_callbacks(execute=True):
        rebill = client.post(f"/api/v1/billing/runs/{run.pk}/rebill")
    assert rebill.status_code == 200, rebill.content
    run.refresh_from_db()
    assert run.status == RunStatus.COMPLETED and run.bills == 2 and run.exceptions == 0
    assert Bill.objects.filter(account=spike1).count() == 1 and not Bill.objects.filter(account=spike2).exists()
    # the resolved exception stays on the run's list (found: 2, open: 0); each account counted once
    assert (services.run_progress(run)["exceptions"], services.run_progress(run)["done"]) == (1, 3)
    again = client.post(f"/api/v1/billing/runs/{run.pk}/rebill")
    assert again.status_code == 409 and again.json()["code"] == "run_not_completed_with_exceptions"


def test_rebill_from_the_run_page(client, offices, run_with_exceptions, django_capture_on_commit_callbacks):
    from urja.metering.models import Reading

    run, spike1, spike2 = run_with_exceptions
    for spike in (spike1, spike2):
        reading = Reading.objects.get(account=spike, vee_status="review")
        metering.review_reading(reading=reading, action="accept", actor=None, channel="backoffice")
    client.force_login(staff_user("manager", offices["division1"]))
    with django_capture_on_commit_callbacks(execute=True):
        page = client.post(f"/billing/runs/{run.pk}/rebill/", follow=True)
    assert page.status_code == 200 and "being billed again" in page.content.decode()
    run.refresh_from_db()
    assert run.status == RunStatus.COMPLETED and run.bills == 3
    assert AuditEvent.objects.filter(action="billrun.rebill_exceptions", object_id=str(run.pk)).exists()
