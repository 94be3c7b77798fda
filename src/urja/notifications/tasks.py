"""Background jobs of notifications: send one message or a bulk event's batch; sweep due retries and stuck messages."""

from celery import shared_task

PERIODIC_TASKS = {
    "notifications.dispatch_due": {"task": "urja.notifications.tasks.dispatch_due", "schedule": 15},
}


@shared_task(name="urja.notifications.tasks.send_message", ignore_result=True)
def send_message(message_id: int) -> str:
    from . import services

    return services.deliver(message_id=message_id)


@shared_task(name="urja.notifications.tasks.send_messages", ignore_result=True)
def send_messages(message_ids: list[int]) -> dict:
    """The messages of one bulk event (services.batched_delivery), sent by one task."""
    from . import services

    return services.deliver_many(message_ids=message_ids)


@shared_task(name="urja.notifications.tasks.dispatch_due", ignore_result=True)
def dispatch_due() -> dict:
    from . import services

    return services.dispatch_due()
