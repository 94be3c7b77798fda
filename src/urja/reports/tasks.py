"""Periodic jobs of the reports app (Celery beat in production; `urja run`'s scheduler otherwise).
Each is idempotent: the accounting replaces its period's rows; the detector resumes from its cursor."""

from celery import shared_task

PERIODIC_TASKS = {
    "reports-energy-accounting": {"task": "urja.reports.tasks.energy_accounting", "schedule": 3600},
    "reports-outage-detection": {"task": "urja.reports.tasks.detect_outages", "schedule": 15},
}


@shared_task(name="urja.reports.tasks.energy_accounting")
def energy_accounting(period: str | None = None) -> list[str]:
    """This month and the last (late bills and payments change them), or one given period."""
    from . import services

    if period:
        services.compute_period(period=period)
        return [period]
    return services.recompute_recent()


@shared_task(name="urja.reports.tasks.detect_outages")
def detect_outages() -> dict:
    from . import outages

    return outages.run_detector()
