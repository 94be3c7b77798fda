"""The webhooks' fast path has a budget (issue 13's whatsapp_webhook bench: 500 messages/s): a POST
checks the signature, stores each message with ONE statement (INSERT … ON CONFLICT DO NOTHING
RETURNING) and kicks the answering job for after the commit — the conversation's queries run in the job,
never in the request. The same count on SQLite and PostgreSQL (no JIT switch on this path)."""

import hashlib
import hmac
import json
import time

import pytest
from django.test import TestCase

from urja.channels.models import InboundMessage
from urja.core import jobs

SECRET = "budget-app-secret"


@pytest.fixture(autouse=True)
def secret(settings):
    settings.URJA_WHATSAPP_APP_SECRET = SECRET


def _signed(messages: list[dict]) -> tuple[bytes, str]:
    value = {"messaging_product": "whatsapp", "metadata": {"phone_number_id": "1"}, "messages": messages}
    change = {"field": "messages", "value": value}
    body = json.dumps({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [change]}]}).encode()
    return body, "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()


def _text(mid: str) -> dict:
    return {
        "from": "919437099999",
        "id": mid,
        "timestamp": str(int(time.time())),
        "type": "text",
        "text": {"body": "Hi"},
    }


@pytest.mark.django_db
def test_a_message_is_one_statement_and_its_answer_waits_for_the_commit(client, django_assert_num_queries, monkeypatch):
    queued = []
    monkeypatch.setattr(jobs, "kick", lambda task, *, key: queued.append((task.name, key)))
    body, sig = _signed([_text("wamid.BUDGET1")])
    with django_assert_num_queries(1):
        response = client.post("/webhooks/whatsapp", body, content_type="application/json",
                               HTTP_X_HUB_SIGNATURE_256=sig)  # fmt: skip
    assert response.status_code == 200 and response.json()["received"] == 1
    assert InboundMessage.objects.get(message_id="wamid.BUDGET1").intent == ""
    assert queued == [("urja.channels.tasks.answer_inbound", "channels.answer_inbound")]
    # a redelivery: the same one statement, nothing stored or queued
    with django_assert_num_queries(1):
        again = client.post("/webhooks/whatsapp", body, content_type="application/json", HTTP_X_HUB_SIGNATURE_256=sig)
    assert again.json() == {"received": 0, "replayed": 1, "statuses": 0} and len(queued) == 1


@pytest.mark.django_db
def test_three_messages_in_one_notification_are_three_statements(client, django_assert_num_queries):
    body, sig = _signed([_text(f"wamid.BUDGET{i}") for i in range(2, 5)])
    with django_assert_num_queries(3), TestCase.captureOnCommitCallbacks(execute=False) as callbacks:
        response = client.post("/webhooks/whatsapp", body, content_type="application/json",
                               HTTP_X_HUB_SIGNATURE_256=sig)  # fmt: skip
    assert response.json()["received"] == 3 and len(callbacks) == 3  # one kick each, after the commit


@pytest.mark.django_db
def test_a_number_already_seen_is_not_parsed_again(client, monkeypatch):
    """Parsing a number (phonenumbers) was a third of the webhook's own work per message; a worker keeps
    the E.164 form of the numbers it has seen. A number that is no mobile is refused every time."""
    from urja.channels.services import bot
    from urja.customers import rules

    parsed = []
    parse = rules.phonenumbers.parse
    monkeypatch.setattr(rules.phonenumbers, "parse", lambda *a, **k: parsed.append(a[0]) or parse(*a, **k))
    monkeypatch.setattr(jobs, "kick", lambda task, *, key: None)
    bot.sender_e164.cache_clear()
    for i in range(3):
        body, sig = _signed([{**_text(f"wamid.SEEN{i}"), "from": "919437012345"}])
        response = client.post("/webhooks/whatsapp", body, content_type="application/json",
                               HTTP_X_HUB_SIGNATURE_256=sig)  # fmt: skip
        assert response.json()["received"] == 1
    assert parsed == ["919437012345"]
    assert set(InboundMessage.objects.filter(message_id__startswith="wamid.SEEN").values_list("sender", flat=True)) == {
        "+919437012345"
    }
    for i in range(2):
        body, sig = _signed([{**_text(f"wamid.LANDLINE{i}"), "from": "916742345678"}])  # a Bhubaneswar landline
        response = client.post("/webhooks/whatsapp", body, content_type="application/json",
                               HTTP_X_HUB_SIGNATURE_256=sig)  # fmt: skip
        assert response.status_code == 400 and response.json()["code"] == "invalid_mobile"
    assert not InboundMessage.objects.filter(message_id__startswith="wamid.LANDLINE").exists()
