"""WhatsApp interactive messages and the outbound side of the bot: the menu as an interactive list in
the consumer's language (en / hi / or), list and button replies (Meta's documented `interactive`
payloads), the account picker, the e-bill as a document message, the 24-hour window (free form
inside, the approved template outside, decided when sending), the job that answers a stored message
once, and DLT template ids on every outbound SMS."""

import re
import time
import tomllib
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import timezone

from urja.billing.models import Bill
from urja.billing.tests.conftest import metered_account, steady
from urja.channels.models import InboundMessage
from urja.channels.services import bot
from urja.channels.tests.test_webhooks import (
    MOBILE,
    billed,
    last_reply,
    list_reply,
    notification,
    post,
    secrets,
    sms,
    text,
)
from urja.notifications.channels import HttpSmsChannel, PermanentFailure, WhatsAppCloudChannel, dlt_registration
from urja.notifications.models import OutboxMessage
from urja.servicedesk.models import ServiceRequest

__all__ = ["billed", "secrets"]  # fixtures shared with test_webhooks

CLOUD = WhatsAppCloudChannel(url="http://cloud.invalid/v21.0", token="t", phone_number_id="1", timeout=1)


def button_reply(button_id: str, title: str = "", sender: str = MOBILE) -> dict:
    """developers.facebook.com/docs/whatsapp/cloud-api/webhooks/payload-examples#reply-button"""
    return {"context": {"from": "917777004758", "id": "wamid.buttons"}, "from": sender,
            "id": f"wamid.BTN{time.time_ns()}", "timestamp": str(int(time.time())), "type": "interactive",
            "interactive": {"type": "button_reply", "button_reply": {"id": button_id, "title": title}}}  # fmt: skip


@pytest.mark.parametrize(
    ("greeting", "language", "row_title"),
    [("Hi", "en", "Bill information"), ("नमस्ते", "hi", "बिल की जानकारी"), ("ନମସ୍କାର", "or", "ବିଲ୍ ସୂଚନା")],
)
def test_greeting_in_any_language_gets_the_interactive_list_in_the_consumers_language(
    client, billed, greeting, language, row_title
):
    billed.consumer.preferred_language = language
    billed.consumer.save()
    assert post(client, notification([text(greeting)])).status_code == 200
    menu = last_reply()
    interactive = menu.payload["interactive"]
    rows = interactive["action"]["sections"][0]["rows"]
    assert interactive["type"] == "list" and menu.language == language
    assert [r["id"] for r in rows] == [f"menu.{item}" for item in bot.data()["menu"]["items"]]
    assert row_title in [r["title"] for r in rows]
    assert all(len(r["title"]) <= 24 for r in rows) and len(interactive["action"]["button"]) <= 20
    assert "1." in menu.body  # the numbered text stays the readable body (and the SMS menu)
    sent = CLOUD.payload(menu)
    assert sent["type"] == "interactive" and sent["interactive"] == interactive and sent["to"] == MOBILE


def test_menu_titles_fit_metas_limits_in_every_language():
    menu = bot.data()["menu"]
    for language in ("en", "hi", "or"):
        assert all(len(menu[language][item]) <= 24 for item in menu["items"]), language
        assert len(menu[language]["button"]) <= 20 and len(menu[language]["accounts"]) <= 20


def test_list_reply_and_numbered_text_both_choose_from_the_menu(client, billed):
    bill = Bill.objects.get(account=billed)
    post(client, notification([text("Hi")]))
    post(client, notification([list_reply("menu.bill", "Bill information")]))
    assert bill.bill_number in last_reply().body and "interactive" not in last_reply().payload
    post(client, notification([text("Hi")]))
    post(client, notification([text("2")]))  # numbered text still works
    assert f"{bill.net_payable:.2f}" in last_reply().body


def test_ebill_is_a_document_message_with_a_signed_expiring_link(client, billed):
    bill = Bill.objects.get(account=billed)
    post(client, notification([list_reply("menu.ebill", "E-bill (PDF)")]))
    reply = last_reply()
    document = reply.payload["document"]
    assert document["filename"] == f"bill-{bill.bill_number}.pdf" and bill.bill_number in document["caption"]
    assert document["link"].startswith("http") and "/channels/ebill/" in document["link"]
    sent = CLOUD.payload(reply)
    assert sent["type"] == "document" and sent["document"]["link"] == document["link"]
    path = re.search(r"(/channels/ebill/\S+/)", document["link"]).group(1)
    assert client.get(path).status_code == 200  # what Meta fetches
    assert client.get(path[:-6] + "AAAAA/").status_code == 404  # tampered
    with time_machine_days(bot.EBILL_DAYS + 1):
        assert bot.bill_from_link(path.split("/")[-2]) is None  # expired


class time_machine_days:
    """Move signing's clock forward (django.core.signing reads time.time)."""

    def __init__(self, days):
        self.shift = days * 86400

    def __enter__(self):
        import django.core.signing as signing

        self._orig, self._mod = signing.time.time, signing.time
        real = self._orig
        signing.time.time = lambda: real() + self.shift

    def __exit__(self, *exc):
        self._mod.time = self._orig


def test_account_picker_buttons_and_someone_elses_number_in_a_forged_reply(client, billed):
    second = metered_account(billed.section, name="Sunita Shop", mobile="9437012345", readings=steady(80))
    other = Bill.objects.exclude(account__in=[billed, second]).first()
    post(client, notification([list_reply("menu.bill")]))
    picker = last_reply()
    assert picker.payload["interactive"]["type"] == "button"
    ids = [b["reply"]["id"] for b in picker.payload["interactive"]["action"]["buttons"]]
    assert ids == sorted([f"acct.{billed.consumer_number}", f"acct.{second.consumer_number}"])
    # a reply naming an account that is not the sender's: refused, nothing of it disclosed
    post(client, notification([button_reply(f"acct.{other.account.consumer_number}", "x")]))
    assert "not registered with this mobile" in last_reply().body and other.bill_number not in last_reply().body
    post(client, notification([list_reply("menu.bill")]))
    post(client, notification([button_reply(f"acct.{billed.consumer_number}", billed.consumer_number)]))
    assert Bill.objects.get(account=billed).bill_number in last_reply().body


def test_power_cut_by_list_reply_from_a_number_with_several_accounts(client, billed):
    from urja.servicedesk import catalogue

    catalogue.load_file("servicedesk/oerc_sop.toml")
    second = metered_account(billed.section, name="Sunita Shop", mobile="9437012345", readings=steady(80))
    post(client, notification([list_reply("menu.nopower")]))
    assert not ServiceRequest.objects.exists()  # asked which account first
    post(client, notification([button_reply(f"acct.{second.consumer_number}")]))
    request = ServiceRequest.objects.get()
    assert request.account_id == second.pk and request.number in last_reply().body


def test_unknown_number_interactive_reply_is_told_how_to_link(client, billed):
    post(client, notification([list_reply("menu.bill", sender="919861999999")]))
    reply = last_reply("+919861999999")
    assert "not linked" in reply.body and billed.consumer_number not in reply.body
    assert not ServiceRequest.objects.exists()


def test_outside_the_24_hour_window_the_approved_template_is_sent(client, billed):
    post(client, notification([text("Hi")]))
    menu = last_reply()
    until = timezone.datetime.fromisoformat(menu.payload["window_until"])
    assert timedelta(hours=23) < until - timezone.now() <= timedelta(hours=24)
    assert CLOUD.payload(menu, now=until - timedelta(minutes=1))["type"] == "interactive"
    late = CLOUD.payload(menu, now=until + timedelta(seconds=1))
    assert late["type"] == "template"
    assert late["template"]["name"] == bot.data()["whatsapp"]["templates"]["reply"]
    assert late["template"]["language"]["code"] == "en"
    assert late["template"]["components"][0]["parameters"][0]["text"] == menu.body


def test_malformed_notification_is_400_and_changes_nothing(client, billed):
    broken = notification([{"from": MOBILE, "id": "wamid.X", "type": "text"}])  # no text.body
    response = post(client, broken)
    assert response.status_code == 400 and set(response.json()) == {"code", "message", "details"}
    assert not InboundMessage.objects.exists() and not OutboxMessage.objects.filter(event="channel.reply").exists()


def test_a_stored_message_is_answered_once_by_the_job_or_the_sweep(billed):
    from urja.channels import tasks

    message = bot.accept(bot.Inbound(channel="whatsapp", message_id="wamid.JOB1", sender=MOBILE, text="Hi"))
    assert bot.accept(bot.Inbound(channel="whatsapp", message_id="wamid.JOB1", sender=MOBILE, text="Hi")) is None
    assert bot.handle_pending(older_than_seconds=3600) == 0  # too fresh: its own job is on the way
    assert tasks.answer_inbound() == 1
    assert tasks.answer_inbound() == 0
    message.refresh_from_db()
    assert message.intent == "menu" and OutboxMessage.objects.filter(event="channel.reply").count() == 1
    lost = bot.accept(bot.Inbound(channel="whatsapp", message_id="wamid.JOB2", sender=MOBILE, text="bill"))
    InboundMessage.objects.filter(pk=lost.pk).update(received_at=timezone.now() - timedelta(minutes=5))
    assert bot.handle_pending() == 1 and OutboxMessage.objects.filter(event="channel.reply").count() == 2


def test_a_backlog_is_answered_once_in_arrival_order_by_runs_that_hand_on(billed, monkeypatch):
    """A kicked run answers a batch at a time and, with more waiting, sends another run on (with a
    broker) or goes on itself (none: a sent run would nest in this one); every message is answered
    once, the oldest first."""
    from urja.channels import tasks
    from urja.core import jobs

    monkeypatch.setattr(bot, "ANSWER_BATCH", 2)

    def backlog(prefix: str) -> list[InboundMessage]:
        return [
            bot.accept(bot.Inbound(channel="whatsapp", message_id=f"wamid.{prefix}{i}", sender=MOBILE, text=text))
            for i, text in enumerate(["Hi", "bill", "Hi", "bill", "Hi"])
        ]

    def answered_in_order(stored: list[InboundMessage]) -> bool:
        replies = OutboxMessage.objects.filter(event="channel.reply", idempotency_key__in=[
            f"reply:whatsapp:{m.pk}:whatsapp" for m in stored]).order_by("pk")  # fmt: skip
        return [r.idempotency_key for r in replies] == [f"reply:whatsapp:{m.pk}:whatsapp" for m in stored]

    handed_on = []
    monkeypatch.setattr(jobs, "send", lambda task, *args: handed_on.append(task.name))
    stored = backlog("INLINE")
    assert tasks.answer_inbound() == 5 and handed_on == []  # no broker: one run, three batches
    assert answered_in_order(stored) and not InboundMessage.objects.filter(intent="").exists()
    monkeypatch.setattr(jobs, "runs_inline", lambda: False)  # a broker: the rest goes to the next run
    stored = backlog("BROKER")
    assert tasks.answer_inbound() == 2 and handed_on == ["urja.channels.tasks.answer_inbound"]
    assert tasks.answer_inbound() == 2 and len(handed_on) == 2
    assert tasks.answer_inbound() == 1 and len(handed_on) == 2
    assert answered_in_order(stored) and tasks.answer_inbound() == 0


def test_a_message_whose_answer_raises_does_not_stall_the_others(billed, monkeypatch, caplog):
    """Runs read the waiting messages oldest first: one that always fails would block every reply behind
    it. It is logged and marked failed, its transaction rolled back; the rest are answered."""
    from urja.channels import tasks

    respond = bot._respond

    def fragile(inbound, *args):
        if inbound.text == "boom":
            raise RuntimeError("a defect in one conversation step")
        return respond(inbound, *args)

    monkeypatch.setattr(bot, "_respond", fragile)
    stored = [
        bot.accept(bot.Inbound(channel="whatsapp", message_id=f"wamid.POISON{i}", sender=MOBILE, text=text))
        for i, text in enumerate(["Hi", "boom", "bill"])
    ]
    assert tasks.answer_inbound() == 2
    intents = dict(InboundMessage.objects.filter(pk__in=[m.pk for m in stored]).values_list("message_id", "intent"))
    assert intents == {"wamid.POISON0": "menu", "wamid.POISON1": bot.FAILED, "wamid.POISON2": "bill"}
    assert OutboxMessage.objects.filter(event="channel.reply").count() == 2
    assert "could not be answered" in caplog.text and "a defect in one conversation step" in caplog.text
    assert tasks.answer_inbound() == 0 and bot.handle_pending(older_than_seconds=0) == 0


def test_a_run_sends_its_replies_as_one_task_at_the_end_of_its_batch(
    billed, monkeypatch, django_capture_on_commit_callbacks
):
    """A batch's replies reach the sending worker as one task (send_messages with every reply) instead of
    one each; each message is answered in its own transaction, so a failed one's writes are taken back
    alone."""
    from urja.channels.models import Conversation
    from urja.core import jobs

    respond = bot._respond

    def fragile(inbound, conversation, *args):
        if inbound.text == "boom":
            conversation.state = {"half": "done"}
            conversation.save()
            raise RuntimeError("a defect after a write")
        return respond(inbound, conversation, *args)

    monkeypatch.setattr(bot, "_respond", fragile)
    sent = []
    monkeypatch.setattr(jobs, "send", lambda task, *args: sent.append((task.name, args)))
    for i, body in enumerate(["Hi", "boom", "bill", "Hi"]):
        bot.accept(bot.Inbound(channel="whatsapp", message_id=f"wamid.ONE{i}", sender=MOBILE, text=body))
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        assert bot.answer_pending() == (3, False)
        assert sent == []  # nothing goes out before the batch's end (here: the test's transaction)
    replies = list(OutboxMessage.objects.filter(event="channel.reply").order_by("pk").values_list("pk", flat=True))
    assert len(callbacks) == 1 and sent == [("urja.notifications.tasks.send_messages", (replies,))]
    assert len(replies) == 3 and Conversation.objects.get(sender="+91" + MOBILE[-10:]).state != {"half": "done"}


# --- DLT ----------------------------------------------------------------------------------------------


def test_every_outbound_sms_template_has_a_dlt_template_id():
    templates = tomllib.loads((Path(settings.DATA_DIR) / "notifications/templates.toml").read_text())
    dlt = dlt_registration()
    assert re.fullmatch(r"\d{19}", dlt["entity"]["entity_id"]) and dlt["entity"]["header"]
    missing = [
        f"{event}/{language}"
        for event, spec in templates["events"].items()
        for language in ("en", "hi", "or")
        if isinstance(spec.get(language), dict) and spec[language].get("sms")
        if not re.fullmatch(r"\d{19}", dlt.get("events", {}).get(event, {}).get(language, ""))
    ]
    assert not missing, f"SMS templates without a DLT template id in data/channels/dlt.toml: {missing}"
    replies = bot.data()["text"]
    missing = [
        f"{key}/{language}"
        for language, texts in replies.items()
        for key in ["menu", *texts]
        if not re.fullmatch(r"\d{19}", dlt.get("bot", {}).get(key, {}).get(language, ""))
    ]
    assert not missing, f"bot replies without a DLT template id: {missing}"


def test_sms_sender_passes_the_dlt_ids_and_refuses_an_unregistered_text():
    sms = HttpSmsChannel(url="http://gw.invalid/sms", token="t", sender="URJAEL", timeout=1)
    message = OutboxMessage(pk=1, idempotency_key="k", event="bill.issued", channel="sms", to="+919437012345",
                            language="or", body="x")  # fmt: skip
    body = sms.payload(message)
    assert body["dlt_template_id"] == dlt_registration()["events"]["bill.issued"]["or"]
    assert body["dlt_entity_id"] == dlt_registration()["entity"]["entity_id"]
    message.event = "no.such.event"
    with pytest.raises(PermanentFailure, match="DLT"):
        sms.payload(message)


def test_sms_pull_reply_carries_the_dlt_id_of_the_reply_it_is(client, billed):
    sms(client, **{"from": "9437012345", "text": "BILL", "id": "sms-dlt-1"})  # the queued answer run on commit
    reply = last_reply("+919437012345")
    assert reply.payload["dlt_template_id"] == dlt_registration()["bot"]["bill"]["en"]
    assert (
        HttpSmsChannel(url="http://gw.invalid", token="", sender="X", timeout=1).payload(reply)["dlt_template_id"]
        == reply.payload["dlt_template_id"]
    )
    sms(client, **{"from": "9437012345", "text": "ZZZ", "id": "sms-dlt-2"})
    assert last_reply("+919437012345").payload["dlt_template_id"] == dlt_registration()["bot"]["unknown"]["en"]
