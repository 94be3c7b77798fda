"""Background jobs of payments. Each is idempotent: running it twice (or after a crash) changes
nothing more than running it once."""

from datetime import timedelta

from celery import shared_task
from django.utils import timezone

PERIODIC_TASKS = {
    # yesterday's consumption of smart prepaid meters (runs hourly; a day is charged once)
    "payments.prepaid_daily": {"task": "urja.payments.tasks.prepaid_daily", "schedule": 3600},
    # commands held back by protected hours go out when the window ends
    "payments.prepaid_supply": {"task": "urja.payments.tasks.prepaid_supply", "schedule": 900},
    # interest on advances for the month just ended (once per month)
    "payments.advance_interest": {"task": "urja.payments.tasks.advance_interest", "schedule": 6 * 3600},
    # overdue / credit-limit flags, disconnection notices, notice periods run out
    "payments.collections": {"task": "urja.payments.tasks.collections", "schedule": 6 * 3600},
    # ask the payment aggregator about orders whose callback never came (issue 13.2)
    "payments.gateway_reconcile": {"task": "urja.payments.tasks.gateway_reconcile", "schedule": 600},
}
# Long jobs staff start from the web (core.jobs.start_job): kind -> the job's body.
BACKGROUND_JOBS = {"payments.collections_sweep": "urja.payments.services.collections_sweep_job"}


@shared_task(name="urja.payments.tasks.prepaid_daily", ignore_result=True)
def prepaid_daily() -> dict:
    from . import services

    return services.run_prepaid_day(day=timezone.localdate() - timedelta(days=1))


@shared_task(name="urja.payments.tasks.prepaid_supply", ignore_result=True)
def prepaid_supply() -> int:
    from . import services

    return services.sweep_prepaid_supply()


@shared_task(name="urja.payments.tasks.advance_interest", ignore_result=True)
def advance_interest() -> str:
    from . import services

    first = timezone.localdate().replace(day=1)
    period = f"{(first - timedelta(days=1)):%Y-%m}"
    run = services.accrue_advance_interest(period=period)
    return f"{run.period}: {run.accounts} accounts, {run.total}"


@shared_task(name="urja.payments.tasks.collections", ignore_result=True)
def collections() -> dict:
    from . import services

    counts = services.sweep_collections()
    counts["notices"] = services.issue_disconnection_notices()
    return counts


@shared_task(name="urja.payments.tasks.gateway_reconcile", ignore_result=True)
def gateway_reconcile() -> dict:
    from . import gateways

    return gateways.reconcile_orders()
