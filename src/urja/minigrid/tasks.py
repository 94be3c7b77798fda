"""Periodic jobs of the mini-grid site (Celery beat in production; `urja run`'s scheduler otherwise).
Each is idempotent: a rerun finds nothing more to do."""

from celery import shared_task

PERIODIC_TASKS = {
    "minigrid-package-changes": {"task": "urja.minigrid.tasks.package_changes", "schedule": 60},
    "minigrid-credit-limit": {"task": "urja.minigrid.tasks.credit_limit", "schedule": 900},
    "minigrid-instalments": {"task": "urja.minigrid.tasks.instalments", "schedule": 3600},
}


@shared_task(name="urja.minigrid.tasks.package_changes")
def package_changes() -> dict:
    """Paid changes put in force; meters reprogrammed; failed or timed-out commands sent again."""
    from .services import run_package_changes

    return run_package_changes()


@shared_task(name="urja.minigrid.tasks.credit_limit")
def credit_limit() -> dict:
    """Customers past the site's credit limit flagged; smart meters disconnected; acks followed."""
    from .services import flag_for_deactivation, follow_deactivations

    out = flag_for_deactivation()
    out["deactivated"] = follow_deactivations()
    return out


@shared_task(name="urja.minigrid.tasks.instalments")
def instalments() -> dict:
    from .services import charge_instalments

    return charge_instalments()
