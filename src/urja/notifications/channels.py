"""Delivery channels behind one small interface.

    class Channel:
        def send(self, message: OutboxMessage) -> str   # the provider's message id

A channel raises TemporaryFailure (retry later with backoff) or PermanentFailure (give up: the
message goes 'dead'). settings.URJA_NOTIFICATION_CHANNELS maps channel name → backend class.
"""

import logging
import smtplib
from datetime import datetime
from email.utils import make_msgid

import httpx
from django.conf import settings
from django.core.mail import EmailMessage
from django.utils import timezone
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


DLT_DATA = "channels/dlt.toml"


def dlt_registration() -> dict:
    """data/channels/dlt.toml: the DLT entity id, header and template ids (TRAI TCCCPR 2018)."""
    from urja.core import regdata

    return regdata.load(DLT_DATA)


def dlt_template_id(message) -> str:
    """The DLT content-template id of an SMS: the one the composer chose (payload, e.g. a bot reply),
    else its event's in its language; '' when the text is not registered."""
    chosen = (message.payload or {}).get("dlt_template_id") if hasattr(message, "payload") else None
    if chosen:
        return str(chosen)
    return str(dlt_registration().get("events", {}).get(message.event, {}).get(message.language) or "")


class HttpSmsChannel(Channel):
    """A generic HTTP SMS gateway: POST JSON {sender, to, text, unicode, reference, dlt_entity_id,
    dlt_template_id} with a bearer token to URJA_SMS_GATEWAY_URL. The reply's `id` / `message_id` is
    the provider id; the reference (our idempotency key) lets the gateway drop a duplicate after a
    lost reply. An SMS without a DLT template id is refused here (permanent): Indian operators drop
    it anyway."""

    def __init__(self, *, url: str | None = None, token: str | None = None, sender: str | None = None, timeout=None):
        self.url = url if url is not None else settings.URJA_SMS_GATEWAY_URL
        self.token = token if token is not None else settings.URJA_SMS_GATEWAY_TOKEN
        self.sender = sender if sender is not None else settings.URJA_SMS_SENDER_ID
        self.timeout = timeout if timeout is not None else _http_timeout()

    def payload(self, message) -> dict:
        template_id = dlt_template_id(message)
        if not template_id:
            raise PermanentFailure(f"sms: no DLT template id for {message.event} ({message.language})")
        entity = dlt_registration().get("entity", {})
        return {
            "sender": self.sender or entity.get("header", ""),
            "to": message.to,
            "text": message.body,
            "unicode": needs_unicode(message.body),
            "reference": message.idempotency_key,
            "dlt_entity_id": entity.get("entity_id", ""),
            "dlt_template_id": template_id,
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
    """WhatsApp Cloud API: POST {messaging_product: "whatsapp", to, type, <type>: {...}} to
    {URJA_WHATSAPP_API_URL}/{phone_number_id}/messages with a bearer token; the id is messages[0].id.
    Free-form messages (text, interactive, document) reach a consumer only inside the 24-hour
    customer-service window; outside it Meta requires an approved template message, so the choice is
    made when the message is sent, not when it was queued."""

    def __init__(
        self, *, url: str | None = None, token: str | None = None, phone_number_id: str | None = None, timeout=None
    ):
        self.url = (url if url is not None else settings.URJA_WHATSAPP_API_URL).rstrip("/")
        self.token = token if token is not None else settings.URJA_WHATSAPP_TOKEN
        self.phone_number_id = (
            phone_number_id if phone_number_id is not None else settings.URJA_WHATSAPP_PHONE_NUMBER_ID
        )
        self.timeout = timeout if timeout is not None else _http_timeout()

    def payload(self, message, *, now=None) -> dict:
        """The Cloud API message: the composer's shape from message.payload — an approved template
        when the 24-hour window (`window_until`) has closed, else `interactive` (list / buttons) or
        `document` (the e-bill PDF by link) — or plain text."""
        shape = getattr(message, "payload", None) or {}
        base = {"messaging_product": "whatsapp", "recipient_type": "individual", "to": message.to.lstrip("+")}
        if _window_closed(shape.get("window_until"), now) or (shape.get("template") and not shape.get("window_until")):
            template = shape.get("template")
            if not template:
                raise PermanentFailure("whatsapp: the 24-hour window has closed and no approved template is named")
            parameters = [{"type": "text", "text": str(p)} for p in template.get("parameters", [])]
            body = {"name": template["name"], "language": {"code": template.get("language") or message.language}}
            if parameters:
                body["components"] = [{"type": "body", "parameters": parameters}]
            return {**base, "type": "template", "template": body}
        if shape.get("interactive"):
            return {**base, "type": "interactive", "interactive": shape["interactive"]}
        if shape.get("document"):
            return {**base, "type": "document", "document": shape["document"]}
        return {**base, "type": "text", "text": {"preview_url": False, "body": message.body}}

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


def _window_closed(until, now=None) -> bool:
    if not until:
        return False
    try:
        moment = datetime.fromisoformat(str(until))
    except ValueError:
        return True
    return (now or timezone.now()) >= moment


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
