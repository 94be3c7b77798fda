"""Periodic and queued jobs of metering (idempotent: safe to run twice or concurrently)."""

from celery import shared_task

PERIODIC_TASKS = {
    "metering.command_timeouts": {"task": "urja.metering.tasks.command_timeouts", "schedule": 15},
    "metering.vee_pending": {"task": "urja.metering.tasks.vee_pending", "schedule": 60},
}


@shared_task(name="urja.metering.tasks.command_timeouts")
def command_timeouts() -> dict:
    from . import services

    return services.sweep_command_timeouts()


@shared_task(name="urja.metering.tasks.vee_pending")
def vee_pending(limit: int = 5000) -> int:
    from . import services

    return services.run_vee_pending(limit=limit)
