"""A change request's message (connection.request_decided, SMS) says its outcome in the consumer's language:
approved, rejected (with the reason as written) and done are labels of data/core/labels.toml, so a Hindi
or Odia message carries no English outcome word."""

import re

import pytest

from urja.connections import changes, shifting
from urja.customers.models import Consumer
from urja.demo.testing import domestic_account
from urja.metering import services as metering
from urja.notifications.models import OutboxMessage
from urja.payments import services as payments

ENGLISH_OUTCOME = re.compile(r"\b(approved|rejected|done)\b", re.IGNORECASE)
REASON = "लोड के लिए ट्रांसफार्मर क्षमता नहीं / DT capacity short"  # kept as the engineer wrote it


def _account(offices, *, language: str, mobile: str):
    account = domestic_account(offices["section1"], mobile=mobile)
    Consumer.objects.filter(pk=account.consumer_id).update(preferred_language=language)
    meter = metering.register_meter(
        serial=f"OW{account.pk:05d}", make="Genus", meter_type="static", actor=None, channel="system"
    )
    metering.install_meter(account=account, meter=meter, actor=None, channel="system", location="outside the gate")
    account.refresh_from_db()
    return account


def _messages(account) -> dict[str, str]:
    """The request messages of the account's requests by their key's outcome part."""
    found = {}
    for message in OutboxMessage.objects.filter(event="connection.request_decided", account=account, channel="sms"):
        found[message.idempotency_key.split(":")[2]] = message
    return found


def _live_through_every_outcome(account, cre, engineer, capture) -> dict[str, OutboxMessage]:
    with capture(execute=True):  # rejected, with its reason
        change = changes.request_change(actor=cre, channel="care_centre", account=account, kind="load_change",
                                        details={"load": "4", "unit": "kW"})  # fmt: skip
        changes.decide(actor=engineer, channel="section_office", change=change, approve=False, reason=REASON)
    with capture(execute=True):  # a meter shifting: approved with its demand note, then done
        change = changes.request_change(actor=cre, channel="care_centre", account=account, kind="meter_shifting",
                                        details={"location": "verandah"})  # fmt: skip
        change = shifting.inspect(actor=engineer, channel="section_office", change=change, feasible=True,
                                  new_location="verandah, east wall", estimate="650")  # fmt: skip
        change = shifting.issue_demand_note(actor=engineer, channel="section_office", change=change)
    order = payments.create_order(consumer_number=account.consumer_number, amount=change.charge)
    payments.simulate_gateway(order=order, outcome="success")
    shifting.settle_payments()
    change.refresh_from_db()
    with capture(execute=True):
        shifting.complete(actor=engineer, channel="section_office", change=change, acknowledged_by="consumer")
    messages = _messages(account)
    assert set(messages) == {"rejected", "approved", "applied"}
    return messages


@pytest.mark.parametrize(
    ("language", "words"),
    [
        ("hi", {"rejected": "अस्वीकृत", "approved": "स्वीकृत", "applied": "पूरा हुआ"}),
        ("or", {"rejected": "ପ୍ରତ୍ୟାଖ୍ୟାତ", "approved": "ଅନୁମୋଦିତ", "applied": "ସମ୍ପୂର୍ଣ୍ଣ ହେଲା"}),
    ],
)
def test_hindi_and_odia_messages_say_the_outcome_in_their_language(
    offices, loaded, cre, engineer, django_capture_on_commit_callbacks, language, words
):
    account = _account(offices, language=language, mobile="9437055521" if language == "hi" else "9437055522")
    messages = _live_through_every_outcome(account, cre, engineer, django_capture_on_commit_callbacks)
    for key, message in messages.items():
        assert message.language == language
        assert words[key] in message.body, (key, message.body)
        # no English outcome word, in the text nor the reason's place
        assert not ENGLISH_OUTCOME.search(message.body.replace(REASON, "")), message.body
    # the reason kept as written, after the outcome word
    assert f"{words['rejected']}: {REASON}" in messages["rejected"].body


def test_english_messages_keep_their_words(offices, loaded, cre, engineer, django_capture_on_commit_callbacks):
    account = _account(offices, language="en", mobile="9437055523")
    messages = _live_through_every_outcome(account, cre, engineer, django_capture_on_commit_callbacks)
    assert f"is rejected: {REASON}." in messages["rejected"].body
    assert "is approved." in messages["approved"].body and "Pay Rs 650.00." in messages["approved"].body
    assert "is done." in messages["applied"].body


def test_an_unknown_outcome_is_a_programming_error():
    with pytest.raises(ValueError):
        changes.outcome_words("accepted", language="hi")
