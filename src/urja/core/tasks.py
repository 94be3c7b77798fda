"""Core tasks."""

from celery import shared_task

PERIODIC_TASKS = {
    # task calls the broker refused after their transaction committed (core.jobs.send)
    "core.retry_deferred": {"task": "urja.core.tasks.retry_deferred", "schedule": 30},
    # sign-in counters whose window is over (core.auth.purge_throttle)
    "core.purge_auth_throttle": {"task": "urja.core.tasks.purge_auth_throttle", "schedule": 3600},
}


@shared_task(name="urja.core.tasks.ping")
def ping(value: str = "pong") -> str:
    """Liveness check for workers and brokers."""
    return value


@shared_task(name="urja.core.tasks.retry_deferred", ignore_result=True)
def retry_deferred() -> dict:
    from . import jobs

    return jobs.retry_deferred()


@shared_task(name="urja.core.tasks.run_job", acks_late=True, ignore_result=True)
def run_job(job_id: int) -> str:
    from . import jobs

    return jobs.run_job(job_id)


@shared_task(name="urja.core.tasks.purge_auth_throttle", ignore_result=True)
def purge_auth_throttle() -> int:
    from .auth import purge_throttle

    return purge_throttle()
