"""Enqueueing tasks so that committed work survives a broker outage, and long jobs that run outside
the web request with progress.

* `enqueue(task, *args)` sends the task after the current transaction commits. When the broker
  refuses, the call is stored as a `DeferredTask` and a warning is logged — the work is committed,
  so the caller still answers 2xx; `retry_deferred` (a periodic job) sends it again later.
* `enqueue_background(task, *args)` is the same with a broker; in the embedded default (no broker,
  tasks eager) it runs the task in the process's background worker thread instead of inside the
  request, so a long task (a bill-run partition, a sweep) never meets the web worker's timeout.
* `start_job(...)` creates a `BackgroundJob` (kind, progress, result) and runs its handler through
  `enqueue_background`; the handler reports progress with `advance`. Handlers are declared by each
  app as `tasks.BACKGROUND_JOBS = {kind: "dotted.path"}`.
"""

import logging
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from functools import partial

from django.conf import settings
from django.db import IntegrityError, OperationalError, close_old_connections, connections, transaction
from django.utils import timezone
from django.utils.module_loading import import_string
from kombu.exceptions import KombuError

from urja.apps_registry import app_modules

from .errors import DomainError
from .models import BackgroundJob, DeferredTask, JobStatus

log = logging.getLogger(__name__)

# What a refusing or unreachable broker raises: kombu's OperationalError (a KombuError) after its own
# publish retries, or the socket's error when the connection is refused or times out.
BROKER_ERRORS = (KombuError, ConnectionError, TimeoutError, OSError)
# After a refusal, calls in the next seconds are deferred at once instead of each waiting ~1 s for
# the broker's connection retries (a request with several messages would otherwise take seconds).
BROKER_DOWN_HOLD = 5.0
RETRY_BASE = timedelta(seconds=30)
SQLITE_LOCK_RETRIES = 20
RETRY_MAX = timedelta(hours=1)
# A queued or running job with no sign of life for this long is presumed dead (its process restarted)
# and no longer blocks a new job of its kind and scope. Running jobs beat at every progress report.
JOB_STALE_SECONDS = 900

_down_until = 0.0


def _task_name(task) -> str:
    return task if isinstance(task, str) else task.name


def _celery_task(name: str):
    from urja.celery import app

    return app.tasks[name]


def _eager() -> bool:
    from urja.celery import app

    return bool(app.conf.task_always_eager)


def runs_inline() -> bool:
    """True when there is no broker: a sent task runs inside the sender (the embedded default, tests).
    A task that would send itself on loops instead, so a long backlog does not nest its runs."""
    return _eager()


def _publish(name: str, args: list, kwargs: dict) -> None:
    global _down_until
    if not _eager() and time.monotonic() < _down_until:
        raise ConnectionError("broker refused a call moments ago; not trying again yet")
    try:
        _celery_task(name).apply_async(args=args, kwargs=kwargs)
    except BROKER_ERRORS:
        _down_until = time.monotonic() + BROKER_DOWN_HOLD
        raise


def send(task, *args, **kwargs) -> bool:
    """Send now (call it after commit, e.g. from an on_commit callback). False when the broker refused
    and the call was stored for `retry_deferred`; never raises a broker error."""
    name = _task_name(task)
    try:
        _publish(name, list(args), kwargs)
        return True
    except BROKER_ERRORS as exc:
        DeferredTask.objects.create(
            task=name,
            args=list(args),
            kwargs=kwargs,
            last_error=f"{type(exc).__name__}: {exc}"[:2000],
            next_try_at=timezone.now() + RETRY_BASE,
        )
        log.warning("broker refused %s%s (%s); deferred, retried when the broker is back", name, args, exc)
        return False


def enqueue(task, *args, **kwargs) -> None:
    """Send `task(*args, **kwargs)` once the current transaction commits (at once outside one)."""
    transaction.on_commit(partial(send, _task_name(task), *args, **kwargs))


# --- the embedded default's background worker ----------------------------------------------------

_executor: ThreadPoolExecutor | None = None
_executor_lock = threading.Lock()


def _threads_enabled() -> bool:
    # Tests switch this off to run background work inline (see the root conftest).
    return getattr(settings, "URJA_BACKGROUND_THREADS", True)


def _run_in_thread(name: str, args: list, kwargs: dict) -> None:
    close_old_connections()
    try:
        _celery_task(name).apply(args=args, kwargs=kwargs)
    except Exception:  # apply() records task errors; this is the last guard for the worker thread
        log.exception("background task %s failed", name)
    finally:
        connections.close_all()  # this thread's own connections; an idle worker holds none


def _submit(name: str, args: list, kwargs: dict) -> None:
    global _executor
    with _executor_lock:
        if _executor is None:
            # One worker: background jobs run one after another (SQLite has a single writer).
            _executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="urja-background")
    _executor.submit(_run_in_thread, name, args, kwargs)


def enqueue_background(task, *args, **kwargs) -> None:
    """Like `enqueue`, but in the embedded default the task runs in a background thread after commit,
    never inside the web request."""
    name = _task_name(task)
    if _eager() and _threads_enabled():
        transaction.on_commit(partial(_submit, name, list(args), kwargs))
    else:
        enqueue(name, *args, **kwargs)


# --- coalesced kicks: one queued run for many calls ----------------------------------------------

# A kick's flag outlives a run that never began (its message lost, the broker emptied) by this long;
# then the next kick sends a run again. The apps' periodic sweeps cover what was pending meanwhile.
KICK_TTL_SECONDS = 60
_kick_clients: dict[tuple[int, str], object] = {}


def _kick_client():
    """A redis client on the broker (per process: gunicorn forks its workers), None when the broker is
    not Redis (a kick then sends a run every time)."""
    from urja.celery import app

    url = app.conf.broker_url or ""
    if not url.startswith(("redis://", "rediss://")):
        return None
    key = (os.getpid(), url)
    client = _kick_clients.get(key)
    if client is None:
        import redis

        client = _kick_clients[key] = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
    return client


def _kick_flag(key: str) -> str:
    return f"urja:kick:{key}"


def _redis_errors() -> tuple:
    from redis.exceptions import RedisError

    return (RedisError, *BROKER_ERRORS)


def _kick(name: str, key: str) -> None:
    client = _kick_client()
    if client is not None:
        try:
            if not client.set(_kick_flag(key), "1", nx=True, ex=KICK_TTL_SECONDS):
                return  # a run was sent and has not begun: it will read what this caller committed
        except _redis_errors():
            client = None  # no flag: send anyway, and the broker's own refusal defers the run
    if not send(name) and client is not None:
        try:  # the run was deferred: the next kick may try the broker again
            client.delete(_kick_flag(key))
        except _redis_errors():
            pass


def kick(task, *, key: str) -> None:
    """Run `task()` (no arguments) after the current transaction commits, unless a run sent earlier
    under `key` has not begun yet: then that run does the caller's work, and the call costs one Redis
    SET instead of a task message (the WhatsApp webhook: a burst of messages is answered by a few
    runs, not one task each). The task calls `kick_taken(key)` before it reads its work, so work
    committed after that point kicks a new run. Without a Redis broker every kick sends a run; in the
    embedded default it runs in the background thread (`enqueue_background`)."""
    name = _task_name(task)
    if _eager():
        enqueue_background(name)
    else:
        transaction.on_commit(partial(_kick, name, key))


def kick_taken(key: str) -> None:
    """The kicked run has begun (call it first): the next kick under `key` sends another run."""
    if _eager():
        return
    client = _kick_client()
    if client is not None:
        try:
            client.delete(_kick_flag(key))
        except _redis_errors():
            pass  # the flag expires after KICK_TTL_SECONDS; the app's sweep answers meanwhile


def retry_deferred(*, limit: int = 500, now=None) -> dict:
    """Send deferred calls that are due; delete each the broker accepts. A conditional UPDATE claims a
    row (its next try moves forward), so two runners never send the same row at the same time."""
    now = now or timezone.now()
    counts = {"sent": 0, "failed": 0}
    for row in list(DeferredTask.objects.filter(next_try_at__lte=now)[:limit]):
        lease = now + RETRY_BASE
        if not DeferredTask.objects.filter(pk=row.pk, next_try_at=row.next_try_at).update(next_try_at=lease):
            continue  # another runner has it
        try:
            _publish(row.task, row.args, row.kwargs)
        except BROKER_ERRORS as exc:
            attempts = row.attempts + 1
            delay = min(RETRY_BASE * (2 ** min(attempts, 10)), RETRY_MAX)
            DeferredTask.objects.filter(pk=row.pk).update(
                attempts=attempts, last_error=f"{type(exc).__name__}: {exc}"[:2000], next_try_at=now + delay
            )
            counts["failed"] += 1
            # Still down: the rest wait for the next run (and keep their own schedule).
            break
        DeferredTask.objects.filter(pk=row.pk).delete()
        counts["sent"] += 1
    if counts["sent"] or counts["failed"]:
        log.info("deferred tasks: %(sent)s sent, %(failed)s still refused", counts)
    return counts


# --- background jobs with progress -------------------------------------------------------------


def job_handlers() -> dict[str, str]:
    """{kind: dotted path} from each app's tasks.BACKGROUND_JOBS (the apps of urja.apps_registry)."""
    handlers: dict[str, str] = {}
    for _app, module in app_modules("tasks"):
        handlers.update(getattr(module, "BACKGROUND_JOBS", {}))
    return handlers


def start_job(*, kind: str, actor=None, scope: str = "", params: dict | None = None) -> tuple[BackgroundJob, bool]:
    """Create a job of `kind` over `scope` (an office path, '' = all) and run it in the background.
    Returns (job, created): when one of the same kind and scope is already queued or running, that
    one is returned and nothing new starts."""
    if kind not in job_handlers():
        raise DomainError(f"unknown job kind {kind}", code="unknown_job")
    active = BackgroundJob.objects.filter(kind=kind, scope=scope, status__in=[JobStatus.QUEUED, JobStatus.RUNNING])
    existing = active.first()
    if existing and _abandoned(existing):
        # its process died (a restart, kill -9): it would block the scope forever; jobs are idempotent
        fail(existing.pk, error=f"abandoned: no progress since {existing.heartbeat_at or existing.created_at}")
        existing = None
    if existing:
        return existing, False
    try:
        with transaction.atomic():
            job = BackgroundJob.objects.create(
                kind=kind,
                scope=scope,
                params=params or {},
                created_by=actor if getattr(actor, "pk", None) else None,
            )
            enqueue_background("urja.core.tasks.run_job", job.pk)
    except IntegrityError:  # a concurrent start won the unique (kind, scope) slot
        return active.get(), False
    return job, True


def _abandoned(job: BackgroundJob) -> bool:
    stale = timedelta(seconds=int(getattr(settings, "URJA_JOB_STALE_SECONDS", JOB_STALE_SECONDS)))
    return (job.heartbeat_at or job.created_at) < timezone.now() - stale


def _when_unlocked(write):
    """Run a status write, waiting out a transient lock: in the embedded SQLite the request that
    enqueued the job may still hold the table for a moment."""
    for attempt in range(SQLITE_LOCK_RETRIES):
        try:
            return write()
        except OperationalError as exc:
            if "locked" not in str(exc) or attempt == SQLITE_LOCK_RETRIES - 1:
                raise
            time.sleep(0.05 * (attempt + 1))


def begin(job_id: int) -> BackgroundJob | None:
    """Claim a queued job (a conditional UPDATE); None when it is already running or finished, so a
    redelivered task does not run a job twice."""
    now = timezone.now()
    claimed = _when_unlocked(
        lambda: BackgroundJob.objects.filter(pk=job_id, status=JobStatus.QUEUED).update(
            status=JobStatus.RUNNING, started_at=now, heartbeat_at=now
        )
    )
    return BackgroundJob.objects.get(pk=job_id) if claimed else None


def advance(job_id: int, *, done: int, total: int | None = None, stage: str | None = None) -> None:
    fields = {"done": done, "heartbeat_at": timezone.now()}
    if total is not None:
        fields["total"] = total
    if stage is not None:
        fields["stage"] = stage
    _when_unlocked(lambda: BackgroundJob.objects.filter(pk=job_id, status=JobStatus.RUNNING).update(**fields))


def finish(job_id: int, *, result: dict) -> None:
    _when_unlocked(
        lambda: BackgroundJob.objects.filter(pk=job_id, status=JobStatus.RUNNING).update(
            status=JobStatus.DONE, result=result, finished_at=timezone.now()
        )
    )


def fail(job_id: int, *, error: str) -> None:
    _when_unlocked(
        lambda: BackgroundJob.objects.filter(pk=job_id, status__in=[JobStatus.QUEUED, JobStatus.RUNNING]).update(
            status=JobStatus.FAILED, error=error[:2000], finished_at=timezone.now()
        )
    )


def run_job(job_id: int) -> str:
    """Run a job's handler: handler(job=..., progress=callable(done, total=None, stage=None)) -> dict."""
    job = begin(job_id)
    if job is None:
        return "not queued"
    try:
        handler = import_string(job_handlers()[job.kind])

        def progress(done: int, total: int | None = None, stage: str | None = None) -> None:
            advance(job.pk, done=done, total=total, stage=stage)

        result = handler(job=job, progress=progress)
    except Exception as exc:
        log.exception("background job %s #%s failed", job.kind, job.pk)
        fail(job.pk, error=f"{type(exc).__name__}: {exc}")
        return JobStatus.FAILED
    finish(job.pk, result=result or {})
    return JobStatus.DONE


def job_out(job: BackgroundJob) -> dict:
    return {
        "id": job.pk,
        "kind": job.kind,
        "status": job.status,
        "stage": job.stage,
        "done": job.done,
        "total": job.total,
        "percent": round(100 * job.done / job.total, 1) if job.total else (100.0 if job.status == "done" else 0.0),
        "result": job.result,
        "error": job.error,
        "created_at": job.created_at,
        "started_at": job.started_at,
        "finished_at": job.finished_at,
    }


def visible_job(*, user, job_id: int, kind: str | None = None) -> BackgroundJob:
    """A job the user may see: its scope lies inside the user's office subtree. Otherwise the same
    NotFound as a job that does not exist."""
    from .errors import NotFound
    from .permissions import scope_by_office

    qs = scope_by_office(user, BackgroundJob.objects.all(), "scope")
    if kind:
        qs = qs.filter(kind=kind)
    job = qs.filter(pk=job_id).first()
    if job is None:
        raise NotFound("no such job", code="not_found")
    return job
