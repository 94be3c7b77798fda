"""The back office's list of messages received (WhatsApp, SMS): a message whose answer failed is shown
as failed and can be answered again once the cause is fixed; scoped like every account record."""

from django.utils import timezone

from urja.channels import tasks
from urja.channels.models import InboundMessage
from urja.channels.services import bot
from urja.core.models import AuditEvent
from urja.demo import testing

_ids = iter(range(1, 10_000))


def received(consumer, *, text="Hi", intent="", sender="+919437000111") -> InboundMessage:
    return InboundMessage.objects.create(
        channel="whatsapp",
        message_id=f"wamid.PAGE{next(_ids)}",
        sender=sender,
        text=text,
        consumer=consumer,
        intent=intent,
        received_at=timezone.now(),
    )


def test_a_failed_message_is_listed_and_answered_again(client, cre, account):
    failed = received(account.consumer, text="Hi there", intent=bot.FAILED)
    received(account.consumer, text="bill please", intent="bill")
    client.force_login(cre)
    page = client.get("/channels/inbound/?state=failed")
    assert page.status_code == 200
    body = page.content.decode()
    assert "Hi there" in body and "bill please" not in body and "Answer again" in body
    assert page.context["counts"] == {"waiting": 0, "failed": 1}

    answer = client.post(f"/channels/inbound/{failed.pk}/answer-again/", {"next": "/channels/inbound/?state=failed"})
    assert answer.status_code == 302 and answer["Location"] == "/channels/inbound/?state=failed"
    failed.refresh_from_db()
    assert failed.intent == ""  # waiting for the answering job, like a message just received
    assert AuditEvent.objects.filter(action="inbound.answer_again", actor=cre).count() == 1
    assert tasks.answer_inbound() == 1
    failed.refresh_from_db()
    assert failed.intent not in ("", bot.FAILED) and failed.reply


def test_only_a_failed_message_is_answered_again(client, cre, account):
    answered = received(account.consumer, intent="bill")
    client.force_login(cre)
    page = client.post(f"/channels/inbound/{answered.pk}/answer-again/", follow=True)
    assert "only a message whose answer failed" in page.content.decode()
    answered.refresh_from_db()
    assert answered.intent == "bill" and not AuditEvent.objects.filter(action="inbound.answer_again").exists()
    # back to the list it came from, never to another site
    away = client.post(f"/channels/inbound/{answered.pk}/answer-again/", {"next": "https://evil.example/"})
    assert away.status_code == 302 and away["Location"] == "/channels/inbound/"


def test_out_of_scope_answers_like_nonexistent_and_is_not_listed(client, cre, offices):
    elsewhere = testing.domestic_account(offices["section2"], mobile="9437000222")
    other = received(elsewhere.consumer, text="from division two", intent=bot.FAILED)
    unlinked = received(None, text="who am I", intent=bot.FAILED, sender="+919437999999")
    client.force_login(cre)
    body = client.get("/channels/inbound/").content.decode()
    assert "from division two" not in body and "who am I" not in body
    out_of_scope = client.post(f"/channels/inbound/{other.pk}/answer-again/")
    nonexistent = client.post("/channels/inbound/987654/answer-again/")
    assert out_of_scope.status_code == nonexistent.status_code == 404
    assert b"division two" not in out_of_scope.content  # byte for byte like nonexistent: tests/test_idor.py
    other.refresh_from_db()
    assert other.intent == bot.FAILED
    # the whole utility's staff also see the numbers linked to no consumer
    client.force_login(testing.staff_user("manager", None))
    body = client.get("/channels/inbound/?state=failed").content.decode()
    assert "from division two" in body and "who am I" in body
    assert unlinked.pk in [m.pk for m in client.get("/channels/inbound/").context["page"].object_list]


def test_roles_the_navigation_does_not_show_it_to_are_refused(client, offices):
    for role in ("billing_officer", "field_agent", "engineer"):
        client.force_login(testing.staff_user(role, offices["division1"]))
        assert client.get("/channels/inbound/").status_code == 403
    client.logout()
    assert client.get("/channels/inbound/").status_code == 302  # to the login page


def test_the_list_exports_as_csv(client, cre, account):
    received(account.consumer, text="status R123", intent="status")
    client.force_login(cre)
    export = client.get("/channels/inbound/?format=csv")
    text = b"".join(export.streaming_content).decode()
    assert (
        export.status_code == 200
        and "status R123" in text
        and text.lstrip("\ufeff").startswith("Received,Channel,From")
    )
