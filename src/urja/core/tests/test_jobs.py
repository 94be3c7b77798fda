"""core.jobs: committed work survives a broker outage (deferred calls, retried later), and long jobs
run outside the request with progress."""

import threading
import time
from contextlib import contextmanager
from datetime import timedelta

import pytest
from django.utils import timezone

from urja.celery import app
from urja.core import jobs
from urja.core.errors import DomainError, NotFound
from urja.core.models import BackgroundJob, DeferredTask
from urja.demo import testing

UNREACHABLE = "redis://127.0.0.1:1/0"  # nothing listens on port 1: connection refused


@contextmanager
def broker(url: str):
    """Point the shared Celery app at a real broker (eager off) and back; its cached connection and
    producer pools are dropped so the new URL is used."""
    saved = {"broker_url": app.conf.broker_url, "task_always_eager": app.conf.task_always_eager}

    def reset_pools():
        app._pool = None
        app.amqp._producer_pool = None
        jobs._down_until = 0.0

    app.conf.update(broker_url=url, task_always_eager=False)
    reset_pools()
    try:
        yield
    finally:
        app.conf.update(**saved)
        reset_pools()


@pytest.mark.django_db(transaction=True)
def test_retry_while_the_broker_is_still_down_keeps_the_row_and_backs_off():
    row = DeferredTask.objects.create(task="urja.core.tasks.ping", args=["x"], next_try_at=timezone.now())
    later = DeferredTask.objects.create(task="urja.core.tasks.ping", args=["y"], next_try_at=timezone.now())
    with broker(UNREACHABLE):
        counts = jobs.retry_deferred()
    assert counts == {"sent": 0, "failed": 1}
    row.refresh_from_db()
    later.refresh_from_db()
    assert row.attempts == 1 and row.next_try_at > timezone.now() + timedelta(seconds=30)
    assert later.attempts == 0  # the run stops at the first refusal; the rest keep their turn


@pytest.mark.django_db
def test_retry_without_a_broker_runs_the_call_and_deletes_the_row(monkeypatch):
    calls = []
    monkeypatch.setattr(app.tasks["urja.core.tasks.ping"], "run", lambda value="pong": calls.append(value))
    DeferredTask.objects.create(task="urja.core.tasks.ping", args=["back"], next_try_at=timezone.now())
    DeferredTask.objects.create(
        task="urja.core.tasks.ping", args=["not yet"], next_try_at=timezone.now() + timedelta(hours=1)
    )
    assert jobs.retry_deferred() == {"sent": 1, "failed": 0}
    assert calls == ["back"] and list(DeferredTask.objects.values_list("args", flat=True)) == [["not yet"]]
    assert jobs.retry_deferred() == {"sent": 0, "failed": 0}  # nothing due: nothing sent twice


def test_the_retry_job_is_a_periodic_task():
    from urja.core.scheduler import collect

    assert collect()["core.retry_deferred"]["task"] == "urja.core.tasks.retry_deferred"
    assert "urja.core.tasks.retry_deferred" in app.tasks


# --- background jobs ---------------------------------------------------------------------------

_gate = threading.Event()


def _handler(*, job, progress):
    progress(0, total=3, stage="counting")
    if job.params.get("wait"):
        assert _gate.wait(10)
    if job.params.get("boom"):
        raise RuntimeError("boom")
    progress(3)
    return {"seen": 3}


@pytest.fixture
def test_kind(monkeypatch):
    monkeypatch.setattr(jobs, "job_handlers", lambda: {"test.kind": f"{__name__}._handler"})
    return "test.kind"


@pytest.mark.django_db
def test_a_job_runs_and_reports_its_progress_and_result(test_kind, offices, django_capture_on_commit_callbacks):
    manager = testing.staff_user("manager", offices["division1"])
    with django_capture_on_commit_callbacks(execute=True):
        job, created = jobs.start_job(kind=test_kind, actor=manager, scope=offices["division1"].path)
    job.refresh_from_db()
    assert created and job.status == "done" and (job.done, job.total) == (3, 3) and job.result == {"seen": 3}
    assert job.stage == "counting" and job.started_at and job.finished_at and job.created_by == manager
    assert jobs.run_job(job.pk) == "not queued"  # a redelivered task does not run it again
    out = jobs.job_out(jobs.visible_job(user=manager, job_id=job.pk))
    assert out["percent"] == 100.0 and out["status"] == "done"
    outsider = testing.staff_user("manager", offices["division2"])
    with pytest.raises(NotFound):
        jobs.visible_job(user=outsider, job_id=job.pk)
    with pytest.raises(NotFound):
        jobs.visible_job(user=manager, job_id=job.pk + 1000)


@pytest.mark.django_db
def test_a_failing_job_records_the_error(test_kind, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        job, _ = jobs.start_job(kind=test_kind, params={"boom": True})
    job.refresh_from_db()
    assert job.status == "failed" and "boom" in job.error and job.finished_at


@pytest.mark.django_db
def test_one_active_job_per_kind_and_scope(test_kind):
    first, created = jobs.start_job(kind=test_kind, scope="/1/")  # callbacks not run: stays queued
    again, created_again = jobs.start_job(kind=test_kind, scope="/1/")
    other, created_other = jobs.start_job(kind=test_kind, scope="/2/")
    assert created and not created_again and again.pk == first.pk
    assert created_other and other.pk != first.pk
    with pytest.raises(DomainError) as exc:
        jobs.start_job(kind="no.such.kind")
    assert exc.value.code == "unknown_job"


@pytest.mark.django_db(transaction=True)
def test_embedded_default_runs_the_job_in_a_background_thread(test_kind, settings):
    """Without a broker the job must not run inside the caller (the web request): start_job returns
    while the handler is still waiting, and the worker thread finishes it."""
    settings.URJA_BACKGROUND_THREADS = True
    assert app.conf.task_always_eager
    _gate.clear()
    job, _ = jobs.start_job(kind=test_kind, params={"wait": True})
    assert BackgroundJob.objects.get(pk=job.pk).status in ("queued", "running")
    _gate.set()
    deadline = time.monotonic() + 20
    while BackgroundJob.objects.get(pk=job.pk).status != "done" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert BackgroundJob.objects.get(pk=job.pk).result == {"seen": 3}


@pytest.mark.django_db
def test_a_job_whose_process_died_does_not_block_its_scope_for_ever(test_kind):
    dead, _ = jobs.start_job(kind=test_kind, scope="/1/")
    jobs.begin(dead.pk)
    BackgroundJob.objects.filter(pk=dead.pk).update(heartbeat_at=timezone.now() - timedelta(hours=1))
    fresh, created = jobs.start_job(kind=test_kind, scope="/1/")
    dead.refresh_from_db()
    assert created and fresh.pk != dead.pk
    assert dead.status == "failed" and dead.error.startswith("abandoned")
    jobs.advance(dead.pk, done=5)  # a late heartbeat of the dead job changes nothing
    dead.refresh_from_db()
    assert dead.status == "failed" and dead.done == 0
