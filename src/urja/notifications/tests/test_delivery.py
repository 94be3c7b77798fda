import datetime as dt
import threading

import pytest
from django.db import connection
from django.utils import timezone

from urja.core.errors import TransitionNotAllowed
from urja.notifications import services, tasks
from urja.notifications.models import OutboxMessage, OutboxStatus
from urja.notifications.policy import load_policy

from .conftest import queued_message


def test_backoff_schedule_from_data():
    policy = load_policy()
    assert policy.max_attempts == 6
    # 30 s, doubling, capped at one hour
    assert policy.schedule() == [30, 60, 120, 240, 480]
    assert policy.backoff_seconds(0) == 0
    assert policy.backoff_seconds(8) == 3600 and policy.backoff_seconds(20) == 3600


def test_periodic_dispatch_is_registered_every_15_seconds():
    from urja.core.scheduler import collect

    entry = collect()["notifications.dispatch_due"]
    assert entry == {"task": "urja.notifications.tasks.dispatch_due", "schedule": 15}
    assert tasks.dispatch_due.name == entry["task"]


@pytest.mark.django_db
def test_sent_once_and_not_again(scripted):
    message = queued_message()
    assert services.deliver(message_id=message.pk) == OutboxStatus.SENT
    message.refresh_from_db()
    assert (message.status, message.attempts, message.provider_message_id) == ("sent", 1, f"scripted-{message.pk}")
    assert message.sent_at is not None
    # a second task for the same message (duplicate enqueue, dispatcher) does nothing
    assert services.deliver(message_id=message.pk) == "skipped"
    assert scripted.sent == [message.pk]


@pytest.mark.django_db
def test_temporary_failures_back_off_then_dead_after_max_attempts(scripted):
    policy = load_policy()
    scripted.script = ["temporary"] * policy.max_attempts
    message = queued_message()
    now = timezone.now()
    for attempt in range(1, policy.max_attempts):
        before = timezone.now()
        assert services.deliver(message_id=message.pk, now=now) == OutboxStatus.FAILED
        message.refresh_from_db()
        assert message.attempts == attempt and message.last_error == "gateway busy (503)"
        wait = (message.next_attempt_at - before).total_seconds()
        assert policy.backoff_seconds(attempt) <= wait < policy.backoff_seconds(attempt) + 5
        # not due yet: nobody can claim it
        assert services.deliver(message_id=message.pk, now=now) == "skipped"
        now = message.next_attempt_at
    assert services.deliver(message_id=message.pk, now=now) == OutboxStatus.DEAD
    message.refresh_from_db()
    assert message.status == "dead" and message.attempts == policy.max_attempts
    assert services.deliver(message_id=message.pk, now=now + dt.timedelta(days=1)) == "skipped"
    assert len(scripted.sent) == policy.max_attempts


@pytest.mark.django_db
def test_permanent_failure_is_dead_at_once_and_crash_is_retried(scripted):
    scripted.script = ["permanent", "crash"]
    first, second = queued_message("t:p"), queued_message("t:c")
    assert services.deliver(message_id=first.pk) == OutboxStatus.DEAD
    assert services.deliver(message_id=second.pk) == OutboxStatus.FAILED
    second.refresh_from_db()
    assert second.last_error == "RuntimeError: boom"


@pytest.mark.django_db
def test_dispatch_due_retries_due_and_stuck_messages(scripted):
    policy = load_policy()
    now = timezone.now()
    due = queued_message("t:due", status=OutboxStatus.FAILED, attempts=1, next_attempt_at=now - dt.timedelta(seconds=1))
    later = queued_message("t:later", status=OutboxStatus.FAILED, attempts=1, next_attempt_at=now + dt.timedelta(60))
    fresh = queued_message("t:fresh", next_attempt_at=now)  # its on-commit task is still on the way
    lost = queued_message("t:lost", next_attempt_at=now - dt.timedelta(minutes=5))  # its task never ran
    old = now - dt.timedelta(seconds=policy.sending_timeout_seconds + 1)
    stuck = queued_message("t:stuck", status=OutboxStatus.SENDING, attempts=2, claimed_at=old)
    stuck_last = queued_message("t:last", status=OutboxStatus.SENDING, attempts=policy.max_attempts, claimed_at=old)
    busy = queued_message("t:busy", status=OutboxStatus.SENDING, attempts=1, claimed_at=now)

    result = services.dispatch_due(now=now)
    assert result == {"stuck_retried": 1, "stuck_dead": 1, "enqueued": 3}
    status = dict(OutboxMessage.objects.values_list("idempotency_key", "status"))
    assert status == {
        "t:due": "sent",
        "t:later": "failed",
        "t:fresh": "queued",
        "t:lost": "sent",
        "t:stuck": "sent",
        "t:last": "dead",
        "t:busy": "sending",
    }
    stuck.refresh_from_db()
    assert stuck.attempts == 3
    assert sorted(scripted.sent) == sorted([due.pk, lost.pk, stuck.pk])
    assert later.pk not in scripted.sent and fresh.pk not in scripted.sent and busy.pk not in scripted.sent
    assert stuck_last.pk not in scripted.sent


@pytest.mark.django_db
def test_state_machine_and_requeue(scripted, admin_user, django_capture_on_commit_callbacks):
    scripted.script = ["permanent"]
    message = queued_message()
    services.deliver(message_id=message.pk)
    message.refresh_from_db()
    with django_capture_on_commit_callbacks(execute=True):
        services.requeue(actor=admin_user, channel="backoffice", message=message)
    message.refresh_from_db()
    assert message.status == "sent" and message.attempts == 1
    with pytest.raises(TransitionNotAllowed):
        services.requeue(actor=admin_user, channel="backoffice", message=message)
    from urja.core.models import AuditEvent

    assert AuditEvent.objects.filter(action="outbox.requeued", object_id=str(message.pk)).count() == 1


@pytest.mark.django_db
def test_claim_only_from_queued_or_failed():
    now = timezone.now()
    for status in ("sending", "sent", "dead"):
        message = queued_message(f"t:{status}", status=status)
        assert services.claim(message_id=message.pk, now=now) is None
    message = queued_message("t:q")
    assert services.claim(message_id=message.pk, now=message.next_attempt_at - dt.timedelta(seconds=1)) is None
    now = timezone.now()
    claimed = services.claim(message_id=message.pk, now=now)
    assert claimed.status == "sending" and claimed.attempts == 1 and claimed.claimed_at == now
    assert services.claim(message_id=message.pk, now=now) is None


def _run_in_threads(target, n: int) -> list:
    barrier = threading.Barrier(n)
    results, errors = [], []

    def worker():
        try:
            barrier.wait()
            results.append(target())
        except Exception as exc:  # surfaced by the assertion below
            errors.append(exc)
        finally:
            connection.close()  # each thread had its own connection

    threads = [threading.Thread(target=worker) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors, errors
    return results


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_dispatchers_send_once(scripted, on_postgres):
    """Two workers race for the same messages: each message is sent exactly once."""
    scripted.delay = 0.05  # keep the first claim 'sending' while the other worker tries
    messages = [
        queued_message(f"t:race:{i}", next_attempt_at=timezone.now() - dt.timedelta(minutes=1)) for i in range(5)
    ]
    if on_postgres:

        def dispatcher():
            return [services.deliver(message_id=m.pk) for m in messages]

        results = _run_in_threads(dispatcher, 2)
        outcomes = sorted(r for run in results for r in run)
        assert outcomes.count("sent") == 5 and outcomes.count("skipped") == 5
    else:  # SQLite serialises writers: claim twice in a row
        for m in messages:
            assert services.deliver(message_id=m.pk) == "sent"
            assert services.deliver(message_id=m.pk) == "skipped"
    assert sorted(scripted.sent) == sorted(m.pk for m in messages)
    assert set(OutboxMessage.objects.values_list("status", flat=True)) == {"sent"}


@pytest.mark.django_db(transaction=True)
def test_concurrent_notify_with_same_key_creates_one_message(on_postgres, offices, scripted):
    if not on_postgres:
        pytest.skip("needs PostgreSQL for real concurrent inserts")
    from urja.demo.testing import domestic_account

    account = domestic_account(offices["section1"])
    context = {"bill_number": "B1", "amount": "10", "due_date": dt.date(2025, 1, 1)}

    def call():
        return [
            m.pk
            for m in services.notify(
                event="bill.issued", consumer=account.consumer, account=account, context=context, idempotency_key="k"
            )
        ]

    results = _run_in_threads(call, 4)
    assert len({tuple(r) for r in results}) == 1
    assert OutboxMessage.objects.filter(idempotency_key="k:sms").count() == 1
    assert len(scripted.sent) == 1
