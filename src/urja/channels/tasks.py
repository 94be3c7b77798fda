"""Background jobs of channels: answer one stored WhatsApp message (the webhook only stores it)."""

from celery import shared_task

PERIODIC_TASKS = {
    "channels.handle_pending": {"task": "urja.channels.tasks.handle_pending", "schedule": 60},
}


@shared_task(name="urja.channels.tasks.handle_inbound", ignore_result=True)
def handle_inbound(message_pk: int) -> str:
    from .services import bot

    outcome = bot.handle(message_pk=message_pk)
    return outcome.intent if outcome else "skipped"


@shared_task(name="urja.channels.tasks.handle_pending", ignore_result=True)
def handle_pending() -> int:
    """Sweep: messages stored but not answered (the on-commit enqueue was lost) are answered now."""
    from .services import bot

    return bot.handle_pending()
