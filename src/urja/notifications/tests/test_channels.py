"""The HTTP adapters against a real HTTP server on 127.0.0.1 (no mocks)."""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core import mail

from urja.notifications.channels import (
    EmailChannel,
    HttpSmsChannel,
    PermanentFailure,
    TemporaryFailure,
    WhatsAppCloudChannel,
    dlt_registration,
    needs_unicode,
)
from urja.notifications.models import OutboxMessage


class Gateway:
    """A tiny provider: records requests, answers with the queued (status, body, delay) replies."""

    def __init__(self):
        self.requests: list[dict] = []
        self.replies: list[tuple[int, object, float]] = []
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                raw = self.rfile.read(length)
                gateway.requests.append({"path": self.path, "headers": dict(self.headers), "json": json.loads(raw)})
                status, body, delay = gateway.replies.pop(0) if gateway.replies else (200, {"id": "gw-1"}, 0)
                if delay:
                    time.sleep(delay)
                data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # the client timed out first
                    pass

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def reply(self, status: int, body: object = None, delay: float = 0.0):
        self.replies.append((status, body if body is not None else {}, delay))


@pytest.fixture
def gateway():
    gw = Gateway()
    gw.thread.start()
    yield gw
    gw.server.shutdown()
    gw.server.server_close()


def _message(**fields) -> OutboxMessage:
    defaults = {
        "pk": 7,
        "idempotency_key": "bill:42:sms",
        "event": "bill.issued",
        "channel": "sms",
        "to": "+919437012345",
        "language": "hi",
        "body": "उपभोक्ता संख्या OD1 का बिल: ₹1,234.50",
    }
    return OutboxMessage(**{**defaults, **fields})


def test_sms_gateway_request_and_provider_id(gateway):
    gateway.reply(200, {"id": "SMS-9001", "status": "accepted"})
    channel = HttpSmsChannel(url=gateway.url + "/v1/sms", token="s3cret", sender="TPNODL", timeout=2)
    assert channel.send(_message()) == "SMS-9001"
    (request,) = gateway.requests
    assert request["path"] == "/v1/sms"
    assert request["headers"]["Authorization"] == "Bearer s3cret"
    assert request["headers"]["Content-Type"] == "application/json"
    assert request["json"] == {
        "sender": "TPNODL",
        "to": "+919437012345",
        "text": "उपभोक्ता संख्या OD1 का बिल: ₹1,234.50",
        "unicode": True,
        "reference": "bill:42:sms",
        # DLT registration of the Hindi bill.issued text (data/channels/dlt.toml)
        "dlt_entity_id": dlt_registration()["entity"]["entity_id"],
        "dlt_template_id": dlt_registration()["events"]["bill.issued"]["hi"],
    }


def test_sms_gateway_plain_text_and_id_fallbacks(gateway):
    gateway.reply(202, {"message_id": 55})
    gateway.reply(200, "OK")  # not JSON: our reference is the id
    channel = HttpSmsChannel(url=gateway.url, token="t", sender="URJAEL", timeout=2)
    english = _message(body="Bill B1: Rs.1,234.50 due by 15-07-2025. -Urja")
    assert channel.send(english) == "55"
    assert gateway.requests[0]["json"]["unicode"] is False
    assert channel.send(english) == "bill:42:sms"


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (500, TemporaryFailure),
        (503, TemporaryFailure),
        (429, TemporaryFailure),
        (400, PermanentFailure),
        (401, PermanentFailure),
        (404, PermanentFailure),
        (422, PermanentFailure),
    ],
)
def test_sms_gateway_status_handling(gateway, status, error):
    gateway.reply(status, {"error": "nope"})
    channel = HttpSmsChannel(url=gateway.url, token="t", sender="S", timeout=2)
    with pytest.raises(error) as exc:
        channel.send(_message())
    assert str(status) in str(exc.value) and "nope" in str(exc.value)


def test_sms_gateway_timeout_and_refused_are_temporary(gateway):
    gateway.reply(200, {"id": "late"}, delay=1.0)
    channel = HttpSmsChannel(url=gateway.url, token="t", sender="S", timeout=0.2)
    with pytest.raises(TemporaryFailure, match="timed out"):
        channel.send(_message())
    gateway.server.shutdown()
    gateway.server.server_close()
    with pytest.raises(TemporaryFailure):
        HttpSmsChannel(url=gateway.url, token="t", sender="S", timeout=1).send(_message())
    with pytest.raises(TemporaryFailure, match="not set"):
        HttpSmsChannel(url="", token="t", sender="S", timeout=1).send(_message())


def test_whatsapp_cloud_request_and_message_id(gateway):
    gateway.reply(
        200,
        {
            "messaging_product": "whatsapp",
            "contacts": [{"input": "919437012345", "wa_id": "919437012345"}],
            "messages": [{"id": "wamid.HBgMOTE5NDM3MDEyMzQ1FQIAERgSQjE"}],
        },
    )
    channel = WhatsAppCloudChannel(url=gateway.url + "/v21.0/", token="EAAG", phone_number_id="1065", timeout=2)
    body = "आपका बिजली बिल तैयार है।\nराशि: *₹1,234.50*"
    assert channel.send(_message(channel="whatsapp", body=body)) == "wamid.HBgMOTE5NDM3MDEyMzQ1FQIAERgSQjE"
    (request,) = gateway.requests
    assert request["path"] == "/v21.0/1065/messages"
    assert request["headers"]["Authorization"] == "Bearer EAAG"
    sent = request["json"]
    assert sent["messaging_product"] == "whatsapp" and sent["type"] == "text"
    assert sent["to"] == "919437012345" and sent["text"]["body"] == body


def test_whatsapp_errors(gateway):
    error = {"error": {"message": "(#131030) Recipient phone number not in allowed list", "code": 131030}}
    gateway.reply(400, error)
    gateway.reply(500, {"error": {"message": "internal"}})
    gateway.reply(200, {"unexpected": True})
    channel = WhatsAppCloudChannel(url=gateway.url, token="t", phone_number_id="1", timeout=2)
    msg = _message(channel="whatsapp")
    with pytest.raises(PermanentFailure, match="131030"):
        channel.send(msg)
    with pytest.raises(TemporaryFailure, match="500"):
        channel.send(msg)
    with pytest.raises(PermanentFailure, match="unexpected reply"):
        channel.send(msg)


def test_email_channel_sends_through_django_mail(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    msg = _message(channel="email", to="sunita@example.com", subject="भुगतान प्राप्त", body="प्रिय Sunita,\n...")
    provider_id = EmailChannel().send(msg)
    (sent,) = mail.outbox
    assert sent.to == ["sunita@example.com"] and sent.subject == "भुगतान प्राप्त"
    assert sent.from_email == settings.DEFAULT_FROM_EMAIL
    assert sent.extra_headers["Message-ID"] == provider_id and provider_id.startswith("<")


def test_email_refused_recipient_is_permanent(settings):
    settings.EMAIL_BACKEND = "urja.notifications.tests.test_channels.RefusingBackend"
    with pytest.raises(PermanentFailure):
        EmailChannel().send(_message(channel="email", to="x@example.com", subject="s"))


class RefusingBackend:
    """An e-mail backend whose SMTP server refuses every recipient."""

    def __init__(self, **kwargs):
        pass

    def send_messages(self, messages):
        import smtplib

        raise smtplib.SMTPRecipientsRefused({m.to[0]: (550, b"no such user") for m in messages})


def test_gsm_alphabet_detection():
    assert not needs_unicode("Bill Rs.1,234.50 due 15-07-2025 @ counter [A] {B} ~ ^ |")
    assert needs_unicode("₹1,234.50") and needs_unicode("बिल") and needs_unicode("ବିଲ୍") and needs_unicode("`")


@pytest.mark.django_db
def test_end_to_end_notify_through_the_sms_gateway(gateway, settings, account, django_capture_on_commit_callbacks):
    from urja.notifications import services

    settings.URJA_NOTIFICATION_CHANNELS = {
        **settings.URJA_NOTIFICATION_CHANNELS,
        "sms": "urja.notifications.channels.HttpSmsChannel",
    }
    settings.URJA_SMS_GATEWAY_URL = gateway.url + "/send"
    settings.URJA_SMS_GATEWAY_TOKEN = "tok"
    account.consumer.preferred_language = "or"
    account.consumer.save()
    gateway.reply(503, {"error": "busy"})
    gateway.reply(200, {"id": "GW-77"})
    with django_capture_on_commit_callbacks(execute=True):
        (msg,) = services.notify(
            event="payment.received",
            consumer=account.consumer,
            account=account,
            context={"amount": "500", "receipt_number": "R1"},
            idempotency_key="pay:1",
            channels=["sms"],
        )
    msg.refresh_from_db()
    assert msg.status == "failed" and msg.attempts == 1 and "503" in msg.last_error
    assert gateway.requests[0]["json"]["unicode"] is True and "ପେମେଣ୍ଟ" in gateway.requests[0]["json"]["text"]
    assert services.deliver(message_id=msg.pk, now=msg.next_attempt_at) == "sent"
    msg.refresh_from_db()
    assert msg.provider_message_id == "GW-77" and msg.attempts == 2
    assert [r["json"]["reference"] for r in gateway.requests] == ["pay:1:sms", "pay:1:sms"]
