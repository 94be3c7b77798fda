import datetime as dt
import threading

import pytest
from django.utils import timezone

from urja.demo.testing import domestic_account
from urja.notifications import services
from urja.notifications.channels import Channel, PermanentFailure, TemporaryFailure
from urja.notifications.models import OutboxMessage

TEST_CHANNEL = "urja.notifications.tests.conftest.ScriptedChannel"


class ScriptedChannel(Channel):
    """A real channel for tests: behaves as told by the class-level script, records every send."""

    script: list = []  # items: "ok", "temporary", "permanent", "crash" (consumed in order; then "ok")
    sent: list = []
    delay = 0.0
    lock = threading.Lock()

    def send(self, message) -> str:
        with self.lock:
            outcome = self.script.pop(0) if self.script else "ok"
            self.sent.append(message.pk)
        if self.delay:
            threading.Event().wait(self.delay)
        if outcome == "temporary":
            raise TemporaryFailure("gateway busy (503)")
        if outcome == "permanent":
            raise PermanentFailure("invalid number (400)")
        if outcome == "crash":
            raise RuntimeError("boom")
        return f"scripted-{message.pk}"


@pytest.fixture
def scripted(settings):
    settings.URJA_NOTIFICATION_CHANNELS = {"sms": TEST_CHANNEL, "whatsapp": TEST_CHANNEL, "email": TEST_CHANNEL}
    ScriptedChannel.script, ScriptedChannel.sent, ScriptedChannel.delay = [], [], 0.0
    yield ScriptedChannel
    ScriptedChannel.script, ScriptedChannel.sent, ScriptedChannel.delay = [], [], 0.0


def queued_message(key: str = "t:1", **fields) -> OutboxMessage:
    defaults = {
        "idempotency_key": key,
        "event": "bill.issued",
        "channel": "sms",
        "to": "+919437012345",
        "language": "en",
        "body": "Bill ...",
        "next_attempt_at": timezone.now(),
    }
    return OutboxMessage.objects.create(**{**defaults, **fields})


BILL = {"bill_number": "B1", "amount": "1500", "due_date": dt.date(2025, 7, 15)}


@pytest.fixture
def messages_of_two_divisions(offices):
    """A bill message for an account of each of two divisions, and a one-time code (Hindi) to the first's
    mobile: (the first account, the second)."""
    mine = domestic_account(offices["section1"], name="Ramesh Sahu", mobile="9437011111")
    other = domestic_account(offices["section2"], name="Gita Das", mobile="9437022222")
    for i, acc in enumerate((mine, other)):
        services.notify(event="bill.issued", consumer=acc.consumer, account=acc, context=BILL, idempotency_key=f"b{i}")
    services.notify_address(
        event="contact.verify_otp",
        channel="sms",
        to="9437011111",
        language="hi",
        context={"otp": "918273", "minutes": 10},
        idempotency_key="otp:1",
        consumer=mine.consumer,
    )
    return mine, other
