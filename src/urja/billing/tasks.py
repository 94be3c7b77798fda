"""Celery tasks of billing: one task per bill-run partition (cycle × division); e-bills per chunk;
the sweep that takes over the partitions of dead workers."""

from celery import shared_task

PERIODIC_TASKS = {
    # partitions whose worker died (heartbeat older than stale_partition_seconds in
    # data/billing/billing.toml) are re-enqueued and taken over; runs whose partitions are all
    # done are finished. A minute: a dead worker's partition waits at most expiry + 60 s.
    "billing.sweep_partitions": {"task": "urja.billing.tasks.sweep_partitions", "schedule": 60},
}
# e-bills queued per transaction by send_ebills
EBILL_BATCH = 500


@shared_task(name="urja.billing.tasks.process_partition", acks_late=True)
def process_partition(partition_id: int) -> str:
    # A redelivered task whose partition is still claimed by a worker that died moments ago
    # returns at once (the claim has not expired yet); sweep_partitions takes it over later.
    from . import runs

    return runs.process_partition(partition_id)


@shared_task(name="urja.billing.tasks.sweep_partitions")
def sweep_partitions() -> dict:
    from . import runs

    return runs.sweep_partitions()


@shared_task(name="urja.billing.tasks.send_ebills", acks_late=True)
def send_ebills(run_id: int, lo: int, hi: int) -> int:
    """Queue the bill.issued message for every bill of a chunk whose consumer can receive it.
    Idempotent: the notification key is the bill number."""
    from datetime import timedelta

    from django.db import transaction
    from django.utils import timezone

    from urja.core import regdata
    from urja.customers.models import Contact
    from urja.notifications.services import batched_delivery, notify

    from .models import Bill

    max_age = int(regdata.load("billing/billing.toml")["bill"].get("ebill_max_age_days", 30))

    reachable = Contact.objects.filter(
        verified=True, consumer__accounts__id__gte=lo, consumer__accounts__id__lte=hi
    ).values("consumer_id")
    if not reachable.exists():
        return 0
    bills = Bill.objects.filter(
        run_id=run_id,
        account_id__gte=lo,
        account_id__lte=hi,
        kind=Bill.Kind.BILL,
        bill_date__gte=timezone.localdate() - timedelta(days=max_age),
    )
    # In batches: each batch's messages are queued in one transaction (one commit, not one per
    # message: on SQLite a commit is a sync) with the consumers' contacts read in one query; one
    # send task for the batch is enqueued when it commits. A retried chunk queues nothing twice (the
    # notification key is the bill number) and a batch that fails leaves no half of itself.
    batch = EBILL_BATCH
    ids = list(bills.filter(account__consumer_id__in=reachable).order_by("pk").values_list("pk", flat=True))
    sent = 0
    for start in range(0, len(ids), batch):
        chunk = (
            Bill.objects.filter(pk__in=ids[start : start + batch])
            .order_by("pk")
            .select_related("account", "account__consumer")
            .prefetch_related("account__consumer__contacts")
        )
        with transaction.atomic(), batched_delivery():  # the batch's messages sent by one task
            for bill in chunk:
                notify(
                    event="bill.issued",
                    consumer=bill.account.consumer,
                    account=bill.account,
                    context={
                        "bill_number": bill.bill_number,
                        "amount": max(bill.net_payable, 0),
                        "due_date": bill.due_date,
                        "units": str(bill.units.normalize()) if bill.metered else "",
                    },
                    idempotency_key=f"bill:{bill.bill_number}",
                )
                sent += 1
    return sent


@shared_task(name="urja.billing.tasks.preview_run", acks_late=True)
def preview_run(run_id: int) -> int:
    """A bill run's review (a dry run of the officer's divisions), off the web request (issue 15)."""
    from . import review

    return review.compute_preview(run_id).pk
