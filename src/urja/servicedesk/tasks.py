"""Periodic jobs of the service desk (Celery beat in production; `urja run`'s scheduler otherwise)."""

from celery import shared_task

PERIODIC_TASKS = {
    "servicedesk-escalation-sweep": {"task": "urja.servicedesk.tasks.escalation_sweep", "schedule": 60},
    "servicedesk-planned-outages": {"task": "urja.servicedesk.tasks.activate_planned_outages", "schedule": 60},
}


@shared_task(name="urja.servicedesk.tasks.escalation_sweep")
def escalation_sweep() -> dict:
    from .escalation import sweep

    return sweep()


@shared_task(name="urja.servicedesk.tasks.activate_planned_outages")
def activate_planned_outages() -> int:
    from .services import activate_planned_outages as activate

    return activate()
