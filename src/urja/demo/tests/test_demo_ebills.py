"""E-bills of a bill run are queued in batches (one transaction per batch, contacts read once per
batch) — the demo's bill runs spent a third of their time queueing them one commit at a time — and a
retried chunk still queues no message twice."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from urja.billing import services, tasks
from urja.billing.models import Bill
from urja.billing.tests.conftest import metered_account, steady
from urja.notifications.models import OutboxMessage
from urja.tariffs import services as tariffs


@pytest.fixture
def accounts(offices, db):
    tariffs.load_all()
    return [metered_account(offices["section1"], readings=steady(250), mobile=f"94370{i:05d}") for i in range(5)]


def test_ebills_are_queued_in_batches_once_each(accounts, monkeypatch, django_capture_on_commit_callbacks):
    monkeypatch.setattr(tasks, "EBILL_BATCH", 2)  # 5 bills: batches of 2, 2 and 1
    sent_tasks, batches = [], []
    monkeypatch.setattr("urja.notifications.services._enqueue", sent_tasks.append)

    def enqueue_batch(ids):
        batches.append(list(ids))
        sent_tasks.extend(ids)

    monkeypatch.setattr("urja.notifications.services._enqueue_many", enqueue_batch)
    run = services.create_run(cycle="C01", period="2025-06", bill_date=timezone.localdate())
    with django_capture_on_commit_callbacks(execute=True):
        services.start_run(run=run)
    bills = Bill.objects.filter(run=run, kind=Bill.Kind.BILL)
    assert bills.count() == 5
    lo, hi = min(a.pk for a in accounts), max(a.pk for a in accounts)
    messages = OutboxMessage.objects.filter(event="bill.issued")
    first = messages.count()
    assert first >= 5  # one per bill per channel with a contact
    assert {m.idempotency_key.split(":")[1] for m in messages} == {b.bill_number for b in bills}
    assert sorted(sent_tasks) == sorted(m.pk for m in messages)  # each send enqueued once, after its batch commits
    assert len(batches) == 3  # one send task a batch of bills, not one a message

    # a retried chunk (redelivered task): nothing new queued, nothing enqueued again
    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.send_ebills(run.pk, lo, hi) == 5
    assert messages.count() == first and len(sent_tasks) == first

    # contacts are read once per batch, not once per bill
    with CaptureQueriesContext(connection) as ctx:
        tasks.send_ebills(run.pk, lo, hi)
    contact_reads = [q for q in ctx.captured_queries if "customers_contact" in q["sql"] and "verified" not in q["sql"]]
    assert len(contact_reads) <= 3, [q["sql"] for q in contact_reads]


def test_a_failing_batch_leaves_none_of_its_messages(accounts, monkeypatch):
    monkeypatch.setattr(tasks, "EBILL_BATCH", 2)
    monkeypatch.setattr("urja.notifications.services._enqueue", lambda pk: None)
    monkeypatch.setattr("urja.notifications.services._enqueue_many", lambda ids: None)
    run = services.create_run(cycle="C01", period="2025-06", bill_date=timezone.localdate())
    services.start_run(run=run)
    OutboxMessage.objects.filter(event="bill.issued").delete()
    lo, hi = min(a.pk for a in accounts), max(a.pk for a in accounts)
    import urja.notifications.services as notifications

    real, calls = notifications.notify, []

    def flaky(**kw):
        calls.append(kw["idempotency_key"])
        if len(calls) == 4:  # the second bill of the second batch
            raise RuntimeError("broker gone")
        return real(**kw)

    monkeypatch.setattr(notifications, "notify", flaky)
    with pytest.raises(RuntimeError):
        tasks.send_ebills(run.pk, lo, hi)
    keys = {m.idempotency_key.split(":")[1] for m in OutboxMessage.objects.filter(event="bill.issued")}
    assert keys == {c.split(":")[1] for c in calls[:2]}  # the first batch committed, the failed one left nothing
    monkeypatch.setattr(notifications, "notify", real)
    assert tasks.send_ebills(run.pk, lo, hi) == 5  # the retry completes it
    assert OutboxMessage.objects.filter(event="bill.issued").values("idempotency_key").distinct().count() == (
        OutboxMessage.objects.filter(event="bill.issued").count()
    )
