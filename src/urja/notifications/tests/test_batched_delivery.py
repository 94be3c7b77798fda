"""A bulk event's messages (the e-bills of a bill run's chunk) are sent by one task: claimed together,
sent and recorded one by one, each exactly once."""

from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from urja.demo.testing import domestic_account
from urja.notifications import services
from urja.notifications.models import OutboxMessage, OutboxStatus

from .conftest import BILL, queued_message


@pytest.fixture
def three_consumers(offices):
    return [domestic_account(offices["section1"], name=f"Consumer {i}", mobile=f"943701111{i}") for i in range(3)]


def test_a_batch_is_one_task_and_every_message_is_sent(three_consumers, scripted, django_capture_on_commit_callbacks):
    capture = django_capture_on_commit_callbacks(execute=True)
    with capture as callbacks, transaction.atomic(), services.batched_delivery():
        for i, acc in enumerate(three_consumers):
            services.notify(
                event="bill.issued", consumer=acc.consumer, account=acc, context=BILL, idempotency_key=f"bill:{i}"
            )
    assert len(callbacks) == 1  # one send task, not three
    messages = OutboxMessage.objects.filter(idempotency_key__startswith="bill:")
    assert [m.status for m in messages] == [OutboxStatus.SENT] * 3
    assert sorted(scripted.sent) == sorted(m.pk for m in messages)


def test_outside_a_batch_each_message_has_its_task(three_consumers, scripted, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True) as callbacks, transaction.atomic():
        for i, acc in enumerate(three_consumers):
            services.notify(
                event="bill.issued", consumer=acc.consumer, account=acc, context=BILL, idempotency_key=f"bill:{i}"
            )
    assert len(callbacks) == 3


def test_a_batch_rolled_back_sends_nothing(three_consumers, scripted, django_capture_on_commit_callbacks):
    capture = django_capture_on_commit_callbacks(execute=True)
    with capture as callbacks, pytest.raises(RuntimeError), transaction.atomic(), services.batched_delivery():
        acc = three_consumers[0]
        services.notify(event="bill.issued", consumer=acc.consumer, account=acc, context=BILL, idempotency_key="b")
        raise RuntimeError("the chunk failed")
    assert callbacks == [] and not OutboxMessage.objects.exists() and scripted.sent == []


@pytest.mark.django_db
def test_deliver_many_sends_each_claimable_message_once(scripted):
    sent_before = queued_message("k:1")
    fresh = queued_message("k:2")
    later = queued_message("k:3", next_attempt_at=timezone.now() + timedelta(hours=1))
    failing = queued_message("k:4")
    assert services.deliver(message_id=sent_before.pk) == OutboxStatus.SENT
    scripted.sent.clear()
    scripted.script = ["ok", "temporary"]  # k:2 goes through, k:4 meets a busy gateway
    ids = [sent_before.pk, fresh.pk, later.pk, failing.pk, fresh.pk]
    assert services.deliver_many(message_ids=ids) == {"skipped": 2, "sent": 1, "failed": 1}
    assert scripted.sent == [fresh.pk, failing.pk]
    status = dict(OutboxMessage.objects.values_list("idempotency_key", "status"))
    assert status == {"k:1": "sent", "k:2": "sent", "k:3": "queued", "k:4": "failed"}
    failing.refresh_from_db()
    assert failing.attempts == 1 and failing.next_attempt_at > timezone.now()
    # the same batch again (a redelivered task): nothing is sent twice
    assert services.deliver_many(message_ids=ids) == {"skipped": 4}
    assert scripted.sent == [fresh.pk, failing.pk]
