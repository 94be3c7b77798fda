"""Runs of the answering job side by side on PostgreSQL (real row locks, real threads): they share a
backlog (a message another run is answering is skipped), answer each message once and a sender's
messages in order; a run that hands on kicks one beside it, so free workers join in."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection

from urja.channels import tasks
from urja.channels.models import InboundMessage
from urja.channels.services import bot
from urja.core import jobs
from urja.notifications.models import OutboxMessage

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres_only]


@pytest.fixture(autouse=True)
def _only_postgres(on_postgres):
    if not on_postgres or connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL")


SENDERS = ["+919437055551", "+919437055552", "+919437055553"]  # linked to no consumer: "unknown_number"


def _backlog(n: int) -> list[InboundMessage]:
    return [
        bot.accept(bot.Inbound(channel="whatsapp", message_id=f"wamid.SIDE{i}", sender=SENDERS[i % 3], text="Hi"))
        for i in range(n)
    ]


def test_runs_side_by_side_answer_each_message_once_and_a_senders_in_order(monkeypatch):
    """Two runs over one backlog at once (two workers): each message answered once, both runs answering,
    and a sender's replies queued in the order the messages came (the conversation's lock makes a
    sender's next message wait for the one before it)."""
    backlog = _backlog(12)
    monkeypatch.setattr(bot, "ANSWER_BATCH", 3)
    respond = bot._respond

    def slow(*args):
        time.sleep(0.02)  # a conversation step that takes a moment, so the runs overlap
        return respond(*args)

    monkeypatch.setattr(bot, "_respond", slow)
    start = threading.Barrier(2)

    def run(_) -> int:
        try:
            start.wait(10)
            return tasks.answer_inbound()  # no broker: a run goes on until nothing waits
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=2) as pool:  # a run's error is raised here
        counts = list(pool.map(run, range(2)))
    assert sum(counts) == 12 and min(counts) > 0, counts
    assert not InboundMessage.objects.filter(intent__in=["", bot.FAILED]).exists()
    replies = OutboxMessage.objects.filter(event="channel.reply")
    assert replies.count() == 12
    for sender in SENDERS:
        mine = [m.pk for m in backlog if m.sender == sender]
        queued = [key for key in replies.filter(to=sender).order_by("pk").values_list("idempotency_key", flat=True)]
        assert queued == [f"reply:whatsapp:{pk}:whatsapp" for pk in mine]


def test_a_run_that_hands_on_also_kicks_one_beside_it(monkeypatch):
    """With a broker: more waiting → the next run of the chain is sent, and one more is kicked (sent
    only while no kicked run is queued), so free workers join in; the last run sends neither."""
    _backlog(3)
    monkeypatch.setattr(bot, "ANSWER_BATCH", 2)
    monkeypatch.setattr(jobs, "runs_inline", lambda: False)
    sent, kicked = [], []
    monkeypatch.setattr(jobs, "send", lambda task, *args: sent.append(task.name))
    monkeypatch.setattr(jobs, "kick", lambda task, *, key: kicked.append((task.name, key)))
    runs = ["urja.channels.tasks.answer_inbound"]
    assert tasks.answer_inbound() == 2
    assert [name for name in sent if name in runs] == runs  # the replies' send task aside
    assert kicked == [("urja.channels.tasks.answer_inbound", tasks.INBOUND_KICK)]
    assert tasks.answer_inbound() == 1 and sent.count(runs[0]) == 1 and len(kicked) == 1
