"""Core tasks."""

from celery import shared_task

PERIODIC_TASKS = {
    # task calls the broker refused after their transaction committed (core.jobs.send)
    "core.retry_deferred": {"task": "urja.core.tasks.retry_deferred", "schedule": 30},
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
