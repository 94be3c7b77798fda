"""WhatsApp Cloud API and SMS pull webhooks with the providers' documented payloads: verification,
signature, idempotency by message id, the "Hi" menu in the consumer's language, bill information,
e-bill link, pay link, power-cut complaint (outage-aware), complaint status, e-mail registration by
code, delivery statuses on the outbox; and the bad inputs (unsigned, replayed, unknown number,
unknown keyword, someone else's consumer number) answered without changing anything."""

import hashlib
import hmac
import json
import re
import time
from datetime import date, timedelta

import pytest
from django.test import TestCase
from django.utils import timezone

from urja.billing import services as billing
from urja.billing.models import Bill
from urja.billing.tests.conftest import metered_account, steady
from urja.channels.models import InboundMessage
from urja.customers.models import Contact
from urja.notifications.models import OutboxMessage
from urja.servicedesk.models import ServiceRequest
from urja.tariffs import services as tariffs

SECRET = "test-app-secret"
MOBILE = "919437012345"  # WhatsApp's wa_id: country code, no plus


@pytest.fixture(autouse=True)
def secrets(settings):
    settings.URJA_WHATSAPP_APP_SECRET = SECRET
    settings.URJA_WHATSAPP_VERIFY_TOKEN = "verify-me"
    settings.URJA_SMS_INBOUND_TOKEN = "sms-token"


@pytest.fixture
def billed(offices):
    for path in sorted(tariffs.tariff_dir().glob("*.toml")):
        if path.name != "navigation.toml":
            tariffs.load_file(path=path)
    account = metered_account(offices["section1"], mobile="9437012345", readings=steady(250))
    metered_account(offices["section1"], name="Rabi Das", mobile="9861000002", readings=steady(100))
    billing.start_run(run=billing.create_run(cycle="C01", period="2025-06", bill_date=date(2025, 7, 2)))
    return account


def notification(messages=None, statuses=None) -> dict:
    """A WhatsApp Cloud API webhook notification (developers.facebook.com/docs/whatsapp/cloud-api/webhooks)."""
    value = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "917777004758", "phone_number_id": "123456123"},
    }
    if messages:
        value["contacts"] = [{"profile": {"name": "Sunita"}, "wa_id": messages[0]["from"]}]
        value["messages"] = messages
    if statuses:
        value["statuses"] = statuses
    return {"object": "whatsapp_business_account",
            "entry": [{"id": "102290129340398", "changes": [{"value": value, "field": "messages"}]}]}  # fmt: skip


_ids = iter(range(1, 10_000))


def text(body: str, sender: str = MOBILE, mid: str | None = None) -> dict:
    return {"from": sender, "id": mid or f"wamid.HBgM{next(_ids):06d}", "timestamp": str(int(time.time())),
            "type": "text", "text": {"body": body}}  # fmt: skip


def list_reply(row_id: str, title: str = "", sender: str = MOBILE) -> dict:
    return {"context": {"from": "917777004758", "id": "wamid.menu"}, "from": sender,
            "id": f"wamid.HBgM{next(_ids):06d}", "timestamp": str(int(time.time())), "type": "interactive",
            "interactive": {"type": "list_reply", "list_reply": {"id": row_id, "title": title}}}  # fmt: skip


def post(client, document: dict, *, secret: str = SECRET, signature: str | None = None):
    body = json.dumps(document).encode()
    sig = (
        signature if signature is not None else "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    )
    # the webhook stores the message and queues its answer on commit (inline: no broker in tests)
    with TestCase.captureOnCommitCallbacks(execute=True):
        return client.post("/webhooks/whatsapp", body, content_type="application/json", HTTP_X_HUB_SIGNATURE_256=sig)


def last_reply(to: str = "+" + MOBILE) -> OutboxMessage:
    return OutboxMessage.objects.filter(event="channel.reply", to=to).order_by("-id").first()


def test_verification_handshake(client):
    ok = client.get("/webhooks/whatsapp", {"hub.mode": "subscribe", "hub.verify_token": "verify-me",
                                           "hub.challenge": "1158201444"})  # fmt: skip
    assert ok.status_code == 200 and ok.content == b"1158201444"
    bad = client.get("/webhooks/whatsapp", {"hub.mode": "subscribe", "hub.verify_token": "nope", "hub.challenge": "1"})
    assert bad.status_code == 403 and bad.json()["code"] == "verification_failed"


def test_unsigned_or_wrongly_signed_posts_are_refused_and_change_nothing(client, billed):
    document = notification([text("Hi")])
    assert post(client, document, signature="").status_code == 401
    assert post(client, document, secret="another-secret").status_code == 401
    assert post(client, document, signature="sha256=" + "0" * 64).json()["code"] == "invalid_signature"
    assert not InboundMessage.objects.exists() and not OutboxMessage.objects.filter(event="channel.reply").exists()


def test_hi_menu_in_the_consumers_language_and_bill_information(client, billed):
    billed.consumer.preferred_language = "or"
    billed.consumer.save()
    response = post(client, notification([text("नमस्ते")]))  # a Hindi greeting; the consumer reads Odia
    assert response.status_code == 200 and response.json()["received"] == 1
    menu = last_reply()
    assert menu.channel == "whatsapp" and menu.language == "or" and "ଇ-ବିଲ୍" in menu.body and "1." in menu.body
    post(client, notification([list_reply("menu.bill", "Bill information")]))
    bill = Bill.objects.get(account=billed)
    info = last_reply().body
    assert bill.bill_number in info and f"{bill.net_payable:.2f}" in info
    post(client, notification([text("1")]))  # menu choice by number: the e-bill link
    assert last_reply().body.count("/channels/ebill/") == 0  # the menu state was used up by the list reply
    post(client, notification([text("Hi")]))
    post(client, notification([text("1")]))
    link = re.search(r"(/channels/ebill/\S+/)", last_reply().body).group(1)
    page = client.get(link)
    assert page.status_code == 200
    if page["Content-Type"] == "application/pdf":  # PDF where Chromium is installed, else the HTML copy
        assert page.content.startswith(b"%PDF") and bill.bill_number in page["Content-Disposition"]
    else:
        assert bill.bill_number.encode() in page.content
    assert client.get(link.replace("ebill/", "ebill/x")).status_code == 404


def test_redelivered_message_id_is_answered_once(client, billed):
    message = text("Hi", mid="wamid.SAME")
    assert post(client, notification([message])).json() == {"received": 1, "replayed": 0, "statuses": 0}
    assert post(client, notification([message])).json() == {"received": 0, "replayed": 1, "statuses": 0}
    assert InboundMessage.objects.count() == 1
    assert OutboxMessage.objects.filter(event="channel.reply").count() == 1


def test_unknown_number_is_told_how_to_link_and_nothing_is_disclosed(client, billed):
    post(client, notification([text("ନମସ୍କାର", sender="919861999999")]))
    reply = last_reply("+919861999999")
    assert reply.language == "or" and "ଗ୍ରାହକ ନମ୍ବର" in reply.body
    post(client, notification([text(f"bill {billed.consumer_number}", sender="919861999999")]))
    assert billed.consumer_number not in last_reply("+919861999999").body


def test_someone_elses_consumer_number_and_unknown_keyword(client, billed):
    theirs = Bill.objects.exclude(account=billed).get()
    post(client, notification([text(f"BILL {theirs.account.consumer_number}")]))
    reply = last_reply().body
    assert "not registered with this mobile" in reply and theirs.bill_number not in reply
    post(client, notification([text("abracadabra")]))
    assert "did not understand" in last_reply().body


def test_power_cut_complaint_is_registered_once_and_status_reported(client, billed):
    from urja.servicedesk import catalogue

    catalogue.load_file("servicedesk/oerc_sop.toml")
    post(client, notification([list_reply("menu.nopower")]))
    request = ServiceRequest.objects.get(account=billed)
    assert request.channel == "whatsapp" and request.number in last_reply().body
    post(client, notification([list_reply("menu.status")]))
    assert request.number in last_reply().body


def test_power_cut_in_a_known_outage_is_told_not_registered(client, billed):
    from urja.network.models import DistributionTransformer, Feeder
    from urja.servicedesk import catalogue
    from urja.servicedesk.models import Outage

    catalogue.load_file("servicedesk/oerc_sop.toml")
    feeder = Feeder.objects.create(code="F11", name="Balasore town", office=billed.section)
    dt = DistributionTransformer.objects.create(code="DT1", feeder=feeder, capacity_kva=100)
    type(billed).objects.filter(pk=billed.pk).update(feeder=feeder, transformer=dt)
    outage = Outage.objects.create(
        number="OUT260000001", feeder=feeder, transformer=dt, kind="unplanned", status=Outage.Status.ACTIVE,
        reason="DT failure", starts_at=timezone.now() - timedelta(hours=1),
        expected_restore_at=timezone.now() + timedelta(hours=2), office=billed.section,
    )  # fmt: skip
    post(client, notification([text("NOPOWER")]))
    assert outage.number in last_reply().body
    assert not ServiceRequest.objects.filter(account=billed).exists()


def test_email_registration_by_code(client, billed):
    post(client, notification([list_reply("menu.register")]))
    post(client, notification([text("Sunita.B@example.in")]))
    mail = OutboxMessage.objects.get(event="contact.verify_otp", channel="email")
    assert mail.to == "sunita.b@example.in"
    code = re.search(r"\b(\d{6})\b", mail.body).group(1)
    wrong = "000000" if code != "000000" else "111111"
    post(client, notification([text(wrong)]))
    assert "wrong or has expired" in last_reply().body
    assert not Contact.objects.filter(value="sunita.b@example.in").exists()
    post(client, notification([list_reply("menu.register")]))
    post(client, notification([text("sunita.b@example.in")]))  # within the resend cool-down: refused
    assert "moment ago" in last_reply().body
    post(client, notification([list_reply("menu.register")]))
    post(client, notification([text("s.behera@example.in")]))
    mail = OutboxMessage.objects.filter(event="contact.verify_otp", channel="email").order_by("-id").first()
    code = re.search(r"\b(\d{6})\b", mail.body).group(1)
    post(client, notification([text(code)]))
    contact = Contact.objects.get(value="s.behera@example.in")
    assert contact.verified and contact.consumer_id == billed.consumer_id


def test_delivery_and_read_statuses_update_the_outbox(client, billed):
    post(client, notification([text("Hi")]))
    reply = last_reply()
    OutboxMessage.objects.filter(pk=reply.pk).update(provider_message_id="wamid.OUT1", status="sent")
    status = lambda s, ts: {"id": "wamid.OUT1", "status": s, "timestamp": ts, "recipient_id": MOBILE}  # noqa: E731
    assert post(client, notification(statuses=[status("delivered", "1733380100")])).json()["statuses"] == 1
    post(client, notification(statuses=[status("read", "1733380200")]))
    post(client, notification(statuses=[status("delivered", "1733380300")]))  # late: read stays
    reply.refresh_from_db()
    assert reply.delivery_status == "read"


def sms(client, **data):
    """The gateway's POST; the answer is the queued job's (run on commit: no broker in tests)."""
    with TestCase.captureOnCommitCallbacks(execute=True):
        return client.post("/webhooks/sms", data, HTTP_X_URJA_GATEWAY_TOKEN="sms-token")


def answered(message_id: str) -> InboundMessage:
    return InboundMessage.objects.get(channel="sms", message_id=message_id)


def test_sms_pull(client, billed):
    assert client.post("/webhooks/sms", {"from": "9437012345", "text": "BILL"}).status_code == 401
    response = sms(client, **{"from": "9437012345", "text": "BILL", "id": "sms-1"})
    assert response.status_code == 200 and response.json() == {"replayed": False, "id": "sms-1", "queued": True}
    assert answered("sms-1").intent == "bill"
    reply = last_reply("+919437012345")
    assert reply.channel == "sms" and Bill.objects.get(account=billed).bill_number in reply.body
    again = sms(client, **{"from": "9437012345", "text": "BILL", "id": "sms-1"})
    assert again.json() == {"replayed": True}
    assert OutboxMessage.objects.filter(event="channel.reply", to="+919437012345").count() == 1
    sms(client, **{"from": "9437012345", "text": "बिल", "id": "sms-2"})
    assert answered("sms-2").intent == "bill"
    sms(client, **{"from": "9437012345", "text": "FOO 1", "id": "sms-3"})
    assert answered("sms-3").intent == "unknown"
    sms(client, **{"from": "9437012345", "text": "HELP", "id": "sms-4"})
    assert "NOPOWER" in answered("sms-4").reply and "NOPOWER" in last_reply("+919437012345").body
    stored = InboundMessage.objects.count()
    bad = sms(client, **{"from": "12", "text": "BILL"})
    assert bad.status_code == 400 and bad.json()["code"] and InboundMessage.objects.count() == stored
    sms(client, **{"from": "9437012345", "text": "PAY", "id": "sms-5"})
    assert "upi://pay?" in answered("sms-5").reply


def test_sms_webhook_answers_before_the_conversation_runs(client, billed):
    """The request stores and queues; until the job runs nothing is answered (no reply, no intent)."""
    before = OutboxMessage.objects.filter(event="channel.reply").count()
    response = client.post("/webhooks/sms", {"from": "9437012345", "text": "BILL", "id": "sms-q"},
                           HTTP_X_URJA_GATEWAY_TOKEN="sms-token")  # fmt: skip
    assert response.status_code == 200 and response.json()["queued"] is True
    stored = answered("sms-q")
    assert stored.intent == "" and OutboxMessage.objects.filter(event="channel.reply").count() == before
    from urja.channels import tasks

    assert tasks.answer_inbound() == 1 and answered("sms-q").intent == "bill"
    assert tasks.answer_inbound() == 0  # answered once
    assert OutboxMessage.objects.filter(event="channel.reply").count() == before + 1
