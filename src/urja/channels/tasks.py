"""Background jobs of channels: answer the stored WhatsApp and SMS messages (the webhooks only store
them and kick `answer_inbound`)."""

from celery import shared_task

from urja.core import jobs

PERIODIC_TASKS = {
    "channels.handle_pending": {"task": "urja.channels.tasks.handle_pending", "schedule": 60},
}

# core.jobs.kick key of answer_inbound: while one run is queued and not begun, webhooks send no other
INBOUND_KICK = "channels.answer_inbound"


@shared_task(name="urja.channels.tasks.answer_inbound", ignore_result=True)
def answer_inbound() -> int:
    """Answer what is waiting, in arrival order, a batch at a time; with more waiting, send another run
    on. During a burst the messages stored after this run began kick runs of their own, which work
    beside it (skipping what it holds), so the workers share the burst."""
    from .services import bot

    jobs.kick_taken(INBOUND_KICK)  # first: a message stored from now on kicks a run of its own
    answered, more = bot.answer_pending()
    while more and jobs.runs_inline():  # no broker: sending on would nest a run in this one
        done, more = bot.answer_pending()
        answered += done
    if more:
        jobs.send(answer_inbound)
    return answered


@shared_task(name="urja.channels.tasks.handle_pending", ignore_result=True)
def handle_pending() -> int:
    """Sweep: messages stored but not answered (the kicked run was lost) are answered now."""
    from .services import bot

    return bot.handle_pending()
