"""Core tasks."""

from celery import shared_task


@shared_task(name="urja.core.tasks.ping")
def ping(value: str = "pong") -> str:
    """Liveness check for workers and brokers."""
    return value
