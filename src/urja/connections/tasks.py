"""Periodic jobs of the connections app (Celery beat in production; `urja run`'s scheduler otherwise).
Each is idempotent: a rerun finds nothing more to do."""

from celery import shared_task

PERIODIC_TASKS = {
    "connections-settle-demand-notes": {"task": "urja.connections.tasks.settle_demand_notes", "schedule": 60},
    "connections-escalate-late": {"task": "urja.connections.tasks.escalate_late", "schedule": 300},
    "connections-due-orders": {"task": "urja.connections.tasks.due_work", "schedule": 300},
}


@shared_task(name="urja.connections.tasks.settle_demand_notes")
def settle_demand_notes() -> int:
    """Demand notes paid on a channel that does not call connections (gateway, UPI, bank file)."""
    from .services import sweep_paid_demand_notes

    return sweep_paid_demand_notes()


@shared_task(name="urja.connections.tasks.escalate_late")
def escalate_late() -> int:
    """Late applications and late shiftings up the SoP's escalation tiers."""
    from . import shifting
    from .services import escalate_late as sweep

    return sweep() + shifting.escalate_late()


@shared_task(name="urja.connections.tasks.due_work")
def due_work() -> dict:
    """Changes whose effective date has come, disconnection orders for expired notices, reconnections
    for paid dues, temporary connections past their end date."""
    from . import changes

    return changes.run_due_work()
