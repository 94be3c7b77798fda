"""Delivery channels behind one small interface.

    class Channel:
        def send(self, message: OutboxMessage) -> str   # the provider's message id

A channel raises TemporaryFailure (retry later with backoff) or PermanentFailure (give up: the
message goes 'dead'). settings.URJA_NOTIFICATION_CHANNELS maps channel name → backend class.
"""

import logging
import smtplib
from email.utils import make_msgid

import httpx
from django.conf import settings
from django.core.mail import EmailMessage
from django.utils.module_loading import import_string

log = logging.getLogger(__name__)


class TemporaryFailure(Exception):
    """The provider could not take the message now (5xx, timeout, rate limit): retry later."""


class PermanentFailure(Exception):
    """The provider refused the message (4xx, bad number): retrying will not help."""


class Channel:
    def send(self, message) -> str:
        raise NotImplementedError


def get_channel(name: str) -> Channel:
    try:
        dotted = settings.URJA_NOTIFICATION_CHANNELS[name]
    except KeyError as exc:
        raise PermanentFailure(f"no backend configured for channel {name!r}") from exc
    return import_string(dotted)()


class DevChannel(Channel):
    """Development: delivers nowhere. The message stays in the outbox (status sent) where the back
    office shows it."""

    def send(self, message) -> str:
        # no body (personal data, and 5.5 MB of log in 25 minutes of the demo): the outbox shows it
        log.debug("dev %s message %s [%s] delivered nowhere", message.channel, message.pk, message.event)
        return f"dev-{message.pk}"


def _http_timeout() -> float:
    from .policy import load_policy

    return load_policy().http_timeout_seconds


def _raise_for_status(response: httpx.Response, what: str) -> None:
    if response.is_success:
        return
    text = response.text[:300]
    if response.status_code >= 500 or response.status_code in (408, 425, 429):
        raise TemporaryFailure(f"{what}: HTTP {response.status_code} {text}")
    raise PermanentFailure(f"{what}: HTTP {response.status_code} {text}")


def _post(url: str, *, json: dict, token: str, timeout: float, what: str) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        response = httpx.post(url, json=json, headers=headers, timeout=timeout)
    except httpx.TimeoutException as exc:
        raise TemporaryFailure(f"{what}: timed out after {timeout}s") from exc
    except httpx.TransportError as exc:  # connection refused, DNS, reset
        raise TemporaryFailure(f"{what}: {exc.__class__.__name__}: {exc}") from exc
    _raise_for_status(response, what)
    return response


# GSM 03.38 default alphabet and its extension table: anything else needs a Unicode (UCS-2) SMS.
GSM7 = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmnopqrstuvwxyzäöñüà"
) | set("^{}\\[~]|€")


def needs_unicode(text: str) -> bool:
    return any(ch not in GSM7 for ch in text)


class HttpSmsChannel(Channel):
    """A generic HTTP SMS gateway: POST JSON {sender, to, text, unicode, reference} with a bearer
    token to URJA_SMS_GATEWAY_URL. The reply's `id` / `message_id` is the provider id; the
    reference (our idempotency key) lets the gateway drop a duplicate after a lost reply."""

    def __init__(self, *, url: str | None = None, token: str | None = None, sender: str | None = None, timeout=None):
        self.url = url if url is not None else settings.URJA_SMS_GATEWAY_URL
        self.token = token if token is not None else settings.URJA_SMS_GATEWAY_TOKEN
        self.sender = sender if sender is not None else settings.URJA_SMS_SENDER_ID
        self.timeout = timeout if timeout is not None else _http_timeout()

    def payload(self, message) -> dict:
        return {
            "sender": self.sender,
            "to": message.to,
            "text": message.body,
            "unicode": needs_unicode(message.body),
            "reference": message.idempotency_key,
        }

    def send(self, message) -> str:
        if not self.url:
            raise TemporaryFailure("URJA_SMS_GATEWAY_URL is not set")
        response = _post(self.url, json=self.payload(message), token=self.token, timeout=self.timeout, what="sms")
        try:
            data = response.json()
        except ValueError:
            data = {}
        if isinstance(data, dict):
            for key in ("id", "message_id", "messageId"):
                if data.get(key):
                    return str(data[key])
        return message.idempotency_key


class WhatsAppCloudChannel(Channel):
    """WhatsApp Cloud API: POST {messaging_product: "whatsapp", to, type: "text", text: {body}} to
    {URJA_WHATSAPP_API_URL}/{phone_number_id}/messages with a bearer token; the id is messages[0].id.
    (Free-form text reaches a consumer inside the 24-hour service window; outside it Meta requires an
    approved template message.)"""

    def __init__(
        self, *, url: str | None = None, token: str | None = None, phone_number_id: str | None = None, timeout=None
    ):
        self.url = (url if url is not None else settings.URJA_WHATSAPP_API_URL).rstrip("/")
        self.token = token if token is not None else settings.URJA_WHATSAPP_TOKEN
        self.phone_number_id = (
            phone_number_id if phone_number_id is not None else settings.URJA_WHATSAPP_PHONE_NUMBER_ID
        )
        self.timeout = timeout if timeout is not None else _http_timeout()

    def payload(self, message) -> dict:
        return {
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": message.to.lstrip("+"),
            "type": "text",
            "text": {"preview_url": False, "body": message.body},
        }

    def send(self, message) -> str:
        if not (self.url and self.phone_number_id):
            raise TemporaryFailure("URJA_WHATSAPP_API_URL / URJA_WHATSAPP_PHONE_NUMBER_ID are not set")
        endpoint = f"{self.url}/{self.phone_number_id}/messages"
        response = _post(endpoint, json=self.payload(message), token=self.token, timeout=self.timeout, what="whatsapp")
        try:
            return str(response.json()["messages"][0]["id"])
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            # Accepted but unreadable: do not resend (it may have gone out).
            raise PermanentFailure(f"whatsapp: unexpected reply {response.text[:300]}") from exc


class EmailChannel(Channel):
    """E-mail through Django's mail backend (settings.EMAIL_BACKEND). The provider id is the Message-ID."""

    def send(self, message) -> str:
        domain = settings.DEFAULT_FROM_EMAIL.rpartition("@")[2] or None
        message_id = make_msgid(idstring=f"urja{message.pk}", domain=domain)
        email = EmailMessage(
            subject=message.subject,
            body=message.body,
            from_email=settings.DEFAULT_FROM_EMAIL,
            to=[message.to],
            headers={"Message-ID": message_id},
        )
        try:
            email.send(fail_silently=False)
        except smtplib.SMTPRecipientsRefused as exc:
            raise PermanentFailure(f"email: recipient refused: {exc}") from exc
        except (smtplib.SMTPException, OSError) as exc:
            raise TemporaryFailure(f"email: {exc.__class__.__name__}: {exc}") from exc
        return message_id
