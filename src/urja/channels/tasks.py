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
    on, and kick one beside it. During a burst the messages stored after this run began kick runs of
    their own too; the runs work side by side, each skipping the message another is answering, so the
    workers share a burst or a backlog."""
    from .services import bot

    jobs.kick_taken(INBOUND_KICK)  # first: a message stored from now on kicks a run of its own
    if jobs.runs_inline():  # no broker: sending on would nest a run in this one
        return bot.answer_all_pending()
    answered, more = bot.answer_pending()
    if more:
        jobs.send(answer_inbound)
        # and one more run beside the chain while none is queued: a backlog is shared by the workers
        # that are free (each new run adds at most one, and a run that finds nothing more sends none)
        jobs.kick(answer_inbound, key=INBOUND_KICK)
    return answered


@shared_task(name="urja.channels.tasks.handle_pending", ignore_result=True)
def handle_pending() -> int:
    """Sweep: messages stored but not answered (the kicked run was lost) are answered now."""
    from .services import bot

    return bot.handle_pending()
