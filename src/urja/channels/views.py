"""Inbound webhooks of the consumer channels, and the e-bill link the bot sends.

    GET  /webhooks/whatsapp   Meta's verification: hub.mode=subscribe, hub.verify_token, → hub.challenge
    POST /webhooks/whatsapp   messages and statuses (WhatsApp Cloud API), X-Hub-Signature-256 checked
    POST /webhooks/sms        SMS pull from the gateway: from, text (and id), X-Urja-Gateway-Token checked
    POST /webhooks/ping       a trivial view (no database): the whatsapp_webhook benchmark's reference

Both webhooks only check (signature / token), store (one INSERT per message, unique by message id)
and answer 2xx; the replies are worked out by the job channels.tasks.answer_inbound, kicked on
commit (core.jobs.kick: one queued run answers a burst of messages, in arrival order; Meta retries a
webhook that takes long, and an SMS gateway times out, so the request does no per-message work a job
does better), and go out through the notifications outbox.

Errors answer {code, message, details}. A bad or missing signature/token answers 401 and nothing is
read; a redelivered message id answers 200 and changes nothing.
"""

import hashlib
import hmac
import json
from datetime import UTC, datetime

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.db.models import Q
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST

from urja.core import jobs, listing
from urja.core.errors import DomainError
from urja.core.models import Channel, Role
from urja.core.permissions import require_role
from urja.core.scope import get_scoped, not_found

from . import tasks
from .models import InboundMessage
from .selectors import scoped_inbound
from .services import bot


def _error(status: int, code: str, message: str) -> JsonResponse:
    return JsonResponse({"code": code, "message": message, "details": {}}, status=status)


def _signature_ok(body: bytes, header: str) -> bool:
    secret = settings.URJA_WHATSAPP_APP_SECRET
    if not secret or not header.startswith("sha256="):
        return False
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, header.removeprefix("sha256=").strip().lower())


@csrf_exempt
@require_http_methods(["GET", "POST"])
def whatsapp(request):
    if request.method == "GET":
        token = settings.URJA_WHATSAPP_VERIFY_TOKEN
        given = request.GET.get("hub.verify_token", "")
        if request.GET.get("hub.mode") == "subscribe" and token and hmac.compare_digest(given, token):
            return HttpResponse(request.GET.get("hub.challenge", ""), content_type="text/plain")
        return _error(403, "verification_failed", "hub.verify_token does not match")
    body = request.body
    # the header from META: request.headers would copy every header of the request first
    if not _signature_ok(body, request.META.get("HTTP_X_HUB_SIGNATURE_256", "")):
        return _error(401, "invalid_signature", "X-Hub-Signature-256 is missing or does not match the body")
    try:
        document = json.loads(body)
        changes = [c.get("value", {}) for e in document.get("entry", []) for c in e.get("changes", [])]
    except (ValueError, AttributeError, TypeError):
        return _error(400, "malformed_body", "the body is not a WhatsApp Cloud API notification")
    counts = {"received": 0, "replayed": 0, "statuses": 0}
    try:
        inbound = [_whatsapp_inbound(m) for value in changes for m in value.get("messages", []) or []]
        statuses = [s for value in changes for s in value.get("statuses", []) or []]
        for item in inbound:
            if _store_and_queue(item):
                counts["received"] += 1
            else:
                counts["replayed"] += 1
        if statuses:
            with transaction.atomic():
                for status in statuses:
                    counts["statuses"] += _whatsapp_status(status)
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        return _error(400, "malformed_body", f"the notification lacks a field: {exc}")
    except DomainError as exc:
        return _error(exc.status, exc.code, exc.message)
    return JsonResponse(counts)


def _store_and_queue(item: bot.Inbound) -> bool:
    """Store one message (one INSERT, no transaction of its own) and kick the answering job once that
    is committed; False for a redelivered message id (nothing stored, nothing queued). With a Redis
    broker the kick is one SET while a run is queued (a task message only when none is: a task a
    message was half of this view's own time); a refusing broker defers the run (still answered 2xx);
    in the embedded default it runs in the background worker thread, not in this request."""
    stored = bot.accept(item)
    if stored is None:
        return False
    jobs.kick(tasks.answer_inbound, key=tasks.INBOUND_KICK)
    return True


def _whatsapp_inbound(message: dict) -> bot.Inbound:
    kind = str(message.get("type", "text"))
    text, reply_id = "", ""
    if kind == "text":
        text = str(message["text"]["body"])
    elif kind == "interactive":
        inner = message["interactive"]
        reply = inner.get("list_reply") or inner.get("button_reply") or {}
        reply_id, text = str(reply.get("id", "")), str(reply.get("title", ""))
    elif kind == "button":  # a quick-reply button of a template message
        reply_id, text = str(message["button"].get("payload", "")), str(message["button"].get("text", ""))
    at = datetime.fromtimestamp(int(message["timestamp"]), tz=UTC) if message.get("timestamp") else None
    return bot.Inbound(
        channel="whatsapp", message_id=str(message["id"]), sender=str(message["from"]), text=text,
        reply_id=reply_id, kind=kind, payload=message, at=at,
    )  # fmt: skip


@csrf_exempt
def ping(request):
    """The same request shape answered with no work at all: the benchmark's floor."""
    return JsonResponse({"ok": True})


def _whatsapp_status(status: dict) -> int:
    from urja.notifications.services import record_delivery

    at = datetime.fromtimestamp(int(status["timestamp"]), tz=UTC) if status.get("timestamp") else None
    return record_delivery(provider_message_id=str(status["id"]), status=str(status.get("status", "")), at=at)


@csrf_exempt
@require_POST
def sms(request):
    token = settings.URJA_SMS_INBOUND_TOKEN
    given = request.headers.get("X-Urja-Gateway-Token", "")
    if not token or not hmac.compare_digest(given, token):
        return _error(401, "invalid_token", "X-Urja-Gateway-Token is missing or wrong")
    if request.content_type == "application/json":
        try:
            params = json.loads(request.body)
            assert isinstance(params, dict)
        except (ValueError, AssertionError):
            return _error(400, "malformed_body", "the body is not a JSON object")
    else:
        params = request.POST
    sender, text = str(params.get("from", "")).strip(), str(params.get("text", "")).strip()
    if not sender or not text:
        return _error(400, "missing_field", "from and text are required")
    # the gateway's message id; without one, the same text from the same number within a minute is one message
    message_id = (
        str(params.get("id", "")).strip()
        or hashlib.sha256(f"{sender}|{text}|{datetime.now(tz=UTC):%Y%m%d%H%M}".encode()).hexdigest()[:40]
    )
    try:
        queued = _store_and_queue(bot.Inbound(channel="sms", message_id=message_id, sender=sender, text=text))
    except DomainError as exc:  # not a mobile number
        return _error(400, exc.code, exc.message)
    if not queued:
        return JsonResponse({"replayed": True})
    return JsonResponse({"replayed": False, "id": message_id, "queued": True})


def ebill(request, token: str):
    """The e-bill the bot links to: a signed, expiring link to one bill's PDF (HTML where the machine has
    no PDF engine), in the language of the bill."""
    from urja.billing import documents

    bill = bot.bill_from_link(token)
    if bill is None:
        raise Http404
    try:
        data = documents.render_pdf(bill, bill.account.consumer.preferred_language)
    except DomainError:
        return HttpResponse(documents.render_html(bill, bill.account.consumer.preferred_language))
    response = HttpResponse(data, content_type="application/pdf")
    response["Content-Disposition"] = f'inline; filename="bill-{bill.bill_number}.pdf"'
    return response


# --- back office: the messages received ------------------------------------------------------------

INBOUND_ROLES = (Role.CRE, Role.MANAGER)  # as data/channels/navigation.toml shows the page
# a message's state, from its intent: waiting for the answering job, failed (logged), or answered
INBOUND_STATES = {
    "waiting": Q(intent=""),
    "failed": Q(intent=bot.FAILED),
    "answered": ~Q(intent__in=["", bot.FAILED]),
}
INBOUND_HEADER = ["Received", "Channel", "From", "Consumer", "Message", "Intent", "Reply"]


def _inbound_cells(m: InboundMessage) -> list:
    consumer = m.consumer.name if m.consumer_id else ""
    return [m.received_at, m.get_channel_display(), m.sender, consumer, m.text, m.intent, m.reply]


@login_required
def inbound(request):
    """The WhatsApp and SMS messages received in the user's scope, newest first: ?state=failed (an
    answer that raised: answered again from here once the cause is fixed), waiting or answered;
    ?channel=; ?q= the sender's number; 50 a page, CSV / Excel."""
    require_role(request.user, *INBOUND_ROLES)
    queryset = scoped_inbound(request.user)
    counts = {state: queryset.filter(INBOUND_STATES[state]).count() for state in ("waiting", "failed")}
    state = request.GET.get("state", "")
    if state in INBOUND_STATES:
        queryset = queryset.filter(INBOUND_STATES[state])
    channel = request.GET.get("channel", "")
    if channel in InboundMessage.Channel.values:
        queryset = queryset.filter(channel=channel)
    search = request.GET.get("q", "").strip()
    if search:
        queryset = queryset.filter(sender__endswith=search[-10:])
    queryset = queryset.select_related("consumer").order_by("-received_at", "-id")
    if listing.wants_export(request):
        rows = (_inbound_cells(m) for m in queryset.iterator(chunk_size=2000))
        return listing.export_response(request, f"inbound-{state or 'all'}", INBOUND_HEADER, rows)
    context = {
        **listing.pager(request, queryset),
        "state": state,
        "channel": channel,
        "search": search,
        "counts": counts,
        "channels": InboundMessage.Channel.choices,
        "failed_state": bot.FAILED,
    }
    return render(request, "channels/inbound.html", context)


@require_POST
@login_required
def answer_again(request, pk: int):
    """A failed message answered again (bot.answer_again); out of scope answers as nonexistent."""
    require_role(request.user, *INBOUND_ROLES)
    message = get_scoped(scoped_inbound(request.user), not_found("message", pk), pk=pk)
    return listing.act_then_back(
        request,
        lambda: bot.answer_again(actor=request.user, channel=Channel.BACKOFFICE, message=message),
        done=_("The message will be answered again."),
        default="channels:inbound",
    )
