import datetime as dt
from decimal import Decimal

import pytest

from urja.core.errors import DomainError
from urja.customers import services as customers
from urja.notifications import services
from urja.notifications.models import OutboxMessage, OutboxStatus

pytestmark = pytest.mark.django_db

BILL = {"bill_number": "B-2025-0001", "amount": Decimal("1234.5"), "due_date": dt.date(2025, 7, 15)}


def _with_email(account, *, opt_in=False):
    customers.add_contact(
        actor=None, channel="system", consumer=account.consumer, kind="email", value="Sunita@Example.com"
    )
    if opt_in:
        account.consumer.contacts.filter(kind="mobile").update(whatsapp_opt_in=True)
    return account


def test_notify_queues_one_message_per_usable_channel(account):
    _with_email(account)
    messages = services.notify(
        event="bill.issued", consumer=account.consumer, account=account, context=BILL, idempotency_key="bill:1"
    )
    # whatsapp skipped: not opted in and not asked for explicitly
    assert [m.channel for m in messages] == ["sms", "email"]
    sms, email = messages
    assert sms.to == "+919437012345" and email.to == "sunita@example.com"
    assert sms.idempotency_key == "bill:1:sms" and sms.status == OutboxStatus.QUEUED
    assert account.consumer_number in sms.body and "Rs.1,234.50" in sms.body and "15-07-2025" in sms.body
    assert email.subject.startswith("Electricity bill B-2025-0001") and email.body.startswith("Dear Sunita Behera,")
    assert sms.account == account and sms.consumer == account.consumer


def test_notify_twice_creates_nothing_new(account):
    first = services.notify(
        event="bill.issued", consumer=account.consumer, account=account, context=BILL, idempotency_key="bill:2"
    )
    again = services.notify(
        event="bill.issued", consumer=account.consumer, account=account, context=BILL, idempotency_key="bill:2"
    )
    assert [m.pk for m in again] == [m.pk for m in first]
    assert OutboxMessage.objects.count() == 1


def test_whatsapp_when_opted_in_or_explicit(account):
    msgs = services.notify(
        event="bill.issued",
        consumer=account.consumer,
        account=account,
        context=BILL,
        idempotency_key="b3",
        channels=["whatsapp"],
    )
    assert [m.channel for m in msgs] == ["whatsapp"]
    assert "*₹1,234.50*" in msgs[0].body
    _with_email(account, opt_in=True)
    msgs = services.notify(
        event="bill.issued", consumer=account.consumer, account=account, context=BILL, idempotency_key="b4"
    )
    assert [m.channel for m in msgs] == ["sms", "whatsapp", "email"]


def test_unknown_event_and_missing_context(account):
    with pytest.raises(DomainError) as err:
        services.notify(event="bill.nope", consumer=account.consumer, context={}, idempotency_key="x")
    assert err.value.code == "unknown_event"
    with pytest.raises(DomainError) as err:
        services.notify(event="bill.issued", consumer=account.consumer, context={}, idempotency_key="x")
    assert err.value.code == "missing_context" and "bill_number" in err.value.details["missing"]
    assert not OutboxMessage.objects.exists()


def test_no_usable_contact_returns_empty(offices, caplog):
    from urja.core.testing import domestic_account

    acc = domestic_account(offices["section2"], mobile="")
    with caplog.at_level("INFO", logger="urja.notifications.services"):
        msgs = services.notify(
            event="bill.issued", consumer=acc.consumer, account=acc, context=BILL, idempotency_key="b5"
        )
    assert msgs == [] and not OutboxMessage.objects.exists()
    assert "no usable" in caplog.text


def test_sending_on_commit_marks_sent_by_dev_channel(account, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        (msg,) = services.notify(
            event="bill.issued", consumer=account.consumer, account=account, context=BILL, idempotency_key="b6"
        )
    msg.refresh_from_db()
    assert msg.status == OutboxStatus.SENT and msg.attempts == 1 and msg.provider_message_id == f"dev-{msg.pk}"
    assert msg.sent_at is not None
