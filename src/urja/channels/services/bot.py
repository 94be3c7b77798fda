"""The WhatsApp bot and the SMS pull service: one conversation engine for both channels.

`accept(Inbound(...))` stores the message once by (channel, message id) — a redelivery returns None
and changes nothing — and `handle` (through `answer_pending`, the kicked job
channels.tasks.answer_inbound; `receive` does both at once) works out what the sender wants
(keywords and texts are data: data/channels/bot.toml, per language), does it through the owning
apps' services (bills and balance from billing, orders from payments, power-cut complaints and
status from servicedesk, application tracking from connections, e-mail registration by one-time
code) and queues the reply through the notifications outbox (event channel.reply), in one
transaction.

Who the sender is: the consumers with the sender's mobile among their contacts. An unknown number is
told how to link an account; a consumer number that is not the sender's is refused without saying
whose it is.
"""

import logging
import re
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from functools import lru_cache

from django.core import signing
from django.db import connections, transaction
from django.template import Context, Template
from django.urls import reverse
from django.utils import timezone

from urja.core import jobs, regdata
from urja.core.auth import TooManyAttempts
from urja.core.calendars import IST
from urja.core.errors import Conflict, DomainError
from urja.core.links import public_url
from urja.core.services import record_audit
from urja.customers.models import Account, Consumer

from ..models import Conversation, InboundMessage
from . import identity, otp

log = logging.getLogger(__name__)

DATA = "channels/bot.toml"
EBILL_SALT = "urja.channels.ebill"
EBILL_DAYS = 7
ACCOUNT_ACTIONS = ("ebill", "bill", "pay", "nopower")
REQUEST_NUMBER = re.compile(r"^[A-Z]{2,6}\d{6,}$")
# Meta's limits for interactive messages (Cloud API docs: interactive list and reply-button messages)
LIST_ROWS, ROW_TITLE, BUTTONS, BUTTON_TITLE, LIST_BUTTON = 10, 24, 3, 20, 20

# What one reply is made of besides its text: the reply keys used (the first names the SMS's DLT
# template) and the WhatsApp message shape (interactive list/buttons or a document).
_reply: ContextVar[dict] = ContextVar("urja_bot_reply")


@dataclass
class Inbound:
    channel: str  # "whatsapp" | "sms"
    message_id: str
    sender: str  # any form; normalised to E.164
    text: str = ""
    reply_id: str = ""  # an interactive list / button reply's id
    kind: str = "text"
    payload: dict = field(default_factory=dict)
    at: datetime | None = None


@dataclass
class Outcome:
    message: InboundMessage
    intent: str
    reply: str


def data() -> dict:
    return regdata.load(DATA)


def _script_language(text: str) -> str | None:
    for ch in text:
        if "\u0900" <= ch <= "\u097f":
            return "hi"
        if "\u0b00" <= ch <= "\u0b7f":
            return "or"
    return None


def _say(key: str, language: str, **context) -> str:
    _note(keys=key)
    texts = data()["text"]
    source = texts.get(language, {}).get(key) or texts["en"][key]
    from django.conf import settings

    base = {
        "utility_name": settings.URJA_UTILITY_NAME,
        "helpline": regdata.load("notifications/templates.toml").get("defaults", {}).get("helpline", "1912"),
        "portal_url": public_url(reverse("portal:home")),
    }
    return _template(source).render(Context({**base, **context}, autoescape=False)).strip()


@lru_cache(maxsize=512)
def _template(source: str) -> Template:
    """A bot text compiled once per process (the texts are data, read once; compiling one took
    longer than rendering it)."""
    return Template(source)


def _note(*, keys: str | None = None, whatsapp: dict | None = None) -> None:
    reply = _reply.get(None)
    if reply is None:
        return
    if keys:
        reply["keys"].append(keys)
    if whatsapp is not None:
        reply["whatsapp"] = whatsapp


def _labels(language: str) -> dict:
    menu = data()["menu"]
    return {**menu["en"], **(menu.get(language) or {})}


def menu_interactive(language: str) -> dict:
    """The menu as a WhatsApp interactive list: one row per service, row id menu.<action>."""
    from django.conf import settings

    labels = _labels(language)
    rows = [{"id": f"menu.{item}", "title": labels[item][:ROW_TITLE]} for item in data()["menu"]["items"]]
    return {
        "type": "list",
        "header": {"type": "text", "text": settings.URJA_UTILITY_NAME[:60]},
        "body": {"text": _template(labels["choose"]).render(Context({"utility_name": settings.URJA_UTILITY_NAME}))},
        "footer": {"text": labels["footer"][:60]},
        "action": {
            "button": labels["button"][:LIST_BUTTON],
            "sections": [{"title": labels["section"][:24], "rows": rows[:LIST_ROWS]}],
        },
    }


def picker_interactive(prompt: str, numbers: list[str], language: str) -> dict:
    """The account picker: reply buttons for up to three accounts, a list for more (ids acct.<number>)."""
    if len(numbers) <= BUTTONS:
        buttons = [{"type": "reply", "reply": {"id": f"acct.{n}", "title": n[:BUTTON_TITLE]}} for n in numbers]
        return {"type": "button", "body": {"text": prompt}, "action": {"buttons": buttons}}
    labels = _labels(language)
    rows = [{"id": f"acct.{n}", "title": n[:ROW_TITLE]} for n in numbers[:LIST_ROWS]]
    return {
        "type": "list",
        "body": {"text": prompt},
        "action": {
            "button": labels["accounts"][:LIST_BUTTON],
            "sections": [{"title": labels["accounts"][:24], "rows": rows}],
        },
    }


def menu_text(language: str) -> str:
    from django.conf import settings

    menu = data()["menu"]
    labels = menu.get(language) or menu["en"]
    header = _template(labels["header"]).render(Context({"utility_name": settings.URJA_UTILITY_NAME}, autoescape=False))
    lines = [header] + [f"{i}. {labels[item]}" for i, item in enumerate(menu["items"], start=1)]
    return "\n".join(lines)


def parse(text: str, *, channel: str) -> tuple[str, str, str | None]:
    """(action, argument, language of the keyword) for a free-text message; action '' if unknown."""
    words = text.strip().split()
    if not words:
        return "", "", None
    first, arg = words[0].casefold(), " ".join(words[1:]).strip()
    for language, table in data()["keywords"].items():
        for action, keywords in table.items():
            if first in (k.casefold() for k in keywords):
                return action, arg, language
    sms_actions = data()["sms"]["actions"]
    if first.upper() in sms_actions:
        return sms_actions[first.upper()], arg, None
    return "", arg, None


# A run of channels.tasks.answer_inbound answers this many messages, then leaves the rest to the run
# it sends on (other jobs of the queue get their turn between runs).
ANSWER_BATCH = 50
# The intent of a message whose answer raised (logged): out of the waiting set, never answered twice.
FAILED = "failed"


# --- entry point ---------------------------------------------------------------------------------


def accept(inbound: Inbound) -> InboundMessage | None:
    """Store one inbound message; None when this message id was stored before (a redelivery: nothing
    changes). One statement — INSERT … ON CONFLICT (channel, message_id) DO NOTHING RETURNING id, on
    PostgreSQL and SQLite alike — so the webhook makes a single round trip per message, needs no
    transaction or savepoint of its own and never aborts the caller's. The answer is worked out by
    `handle`, in the kicked job channels.tasks.answer_inbound (`answer_pending`)."""
    values = {
        "channel": inbound.channel,
        "message_id": inbound.message_id[:128],
        "sender": sender_e164(inbound.sender),
        "kind": inbound.kind[:20],
        "text": inbound.text[:4096],
        "payload": inbound.payload,
        "intent": "",
        "reply": "",
        "received_at": inbound.at or timezone.now(),
    }
    pk = _insert_once(values)
    return None if pk is None else InboundMessage(pk=pk, **values)


@lru_cache(maxsize=4096)
def sender_e164(raw: str) -> str:
    """E.164 form of a sender as a webhook gives it: a national number from the SMS gateway, or
    WhatsApp's wa_id (country code, no plus); DomainError when it is no Indian mobile. Kept per process
    for the last numbers seen: a conversation is several messages from one number, and parsing a
    number (phonenumbers) is a third of the webhook's own work per message. An error is not kept."""
    try:
        return identity.normalise_mobile(raw)
    except DomainError:
        return identity.normalise_mobile("+" + raw.strip().lstrip("+"))


# The INSERT of `_insert_once` by database vendor, and its fields in column order: built once.
_INSERT_FIELDS = ("channel", "message_id", "sender", "kind", "text", "payload", "intent", "reply", "received_at")
_insert_sql: dict[str, tuple[str, list]] = {}


def _insert_statement(connection) -> tuple[str, list]:
    built = _insert_sql.get(connection.vendor)
    if built is None:
        meta, quote = InboundMessage._meta, connection.ops.quote_name
        fields = [meta.get_field(name) for name in _INSERT_FIELDS]
        columns = ", ".join(quote(f.column) for f in fields)
        sql = (
            f"INSERT INTO {quote(meta.db_table)} ({columns}) VALUES ({', '.join(['%s'] * len(fields))}) "
            f"ON CONFLICT ({quote('channel')}, {quote('message_id')}) DO NOTHING RETURNING {quote(meta.pk.column)}"
        )
        built = _insert_sql[connection.vendor] = (sql, fields)
    return built


def _insert_once(values: dict) -> int | None:
    connection = connections[InboundMessage.objects.db]
    sql, fields = _insert_statement(connection)
    params = [field.get_db_prep_save(values[field.name], connection) for field in fields]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    return row[0] if row else None


def receive(inbound: Inbound) -> Outcome | None:
    """Store and answer one inbound message at once (the demo, the simulation, tests); None when this
    message id was handled before. The webhooks store and queue instead (`accept` + the job)."""
    message = accept(inbound)
    return None if message is None else handle(message_pk=message.pk, reply_id=inbound.reply_id)


def _reply_id(message: InboundMessage) -> str:
    body = message.payload or {}
    if message.kind == "interactive":
        inner = body.get("interactive") or {}
        return str((inner.get("list_reply") or inner.get("button_reply") or {}).get("id", ""))
    if message.kind == "button":
        return str((body.get("button") or {}).get("payload", ""))
    return ""


def handle(*, message_pk: int, reply_id: str | None = None, skip_locked: bool = False) -> Outcome | None:
    """Answer one stored message once: the reply is queued through the outbox in the same
    transaction that marks the message handled (its intent). None when it was handled already, or
    with `skip_locked` when another run is answering it right now (PostgreSQL)."""
    with transaction.atomic():
        message = InboundMessage.objects.select_for_update(skip_locked=skip_locked).filter(pk=message_pk).first()
        if message is None or message.intent:
            return None
        inbound = Inbound(
            channel=message.channel, message_id=message.message_id, sender=message.sender, text=message.text,
            reply_id=_reply_id(message) if reply_id is None else reply_id, kind=message.kind,
            payload=message.payload, at=message.received_at,
        )  # fmt: skip
        sender, now = message.sender, message.received_at
        conversation, _ = Conversation.objects.select_for_update().get_or_create(
            channel=inbound.channel, sender=sender, defaults={"last_inbound_at": now}
        )
        consumers = identity.consumers_with_mobile(sender)
        # an account holder's or an applicant's own choice, else the script written in, else the last one
        own = consumers[0].preferred_language if consumers else _applicant_language(sender)
        language = own or _script_language(inbound.text) or conversation.language
        token = _reply.set({"keys": [], "whatsapp": None})
        try:
            intent, reply = _respond(inbound, conversation, consumers, language, sender, now)
            shape = _reply.get()
        finally:
            _reply.reset(token)
        conversation.last_inbound_at = max(now, conversation.last_inbound_at)
        conversation.save()
        message.intent, message.reply = intent, reply
        message.consumer = consumers[0] if consumers else None
        message.save(update_fields=["intent", "reply", "consumer"])
        reply_language = conversation.language if not consumers else language
        _queue_reply(message, reply, reply_language, consumers, shape, intent)
    return Outcome(message, intent, reply)


def _applicant_language(sender: str) -> str | None:
    """The language of an applicant with this mobile and no account yet (a new-connection applicant
    is a consumer without one): their own choice, nothing about anyone else."""
    from urja.customers.models import Contact

    return (
        Consumer.objects.filter(contacts__kind=Contact.Kind.MOBILE, contacts__value=sender)
        .order_by("-pk")
        .values_list("preferred_language", flat=True)
        .first()
    )


def _queue_reply(message, reply: str, language: str, consumers: list[Consumer], shape: dict, intent: str) -> None:
    from urja.notifications.services import notify_address

    payload = {}
    if message.channel == "sms":
        dlt = dlt_template_id(shape["keys"][0] if shape["keys"] else "", language)
        if dlt:
            payload["dlt_template_id"] = dlt
    else:
        # Free text (or interactive / document) inside the 24-hour customer-service window that this
        # message opened; the sender falls back to the approved template when the window has closed.
        wa = data()["whatsapp"]
        payload["window_until"] = (message.received_at + timedelta(hours=wa["window_hours"])).isoformat()
        template = wa["templates"]["bill" if intent == "ebill" and shape["whatsapp"] else "reply"]
        payload["template"] = {"name": template, "language": language, "parameters": [reply[:1024]]}
        if shape["whatsapp"]:
            payload.update(shape["whatsapp"])
    notify_address(
        event="channel.reply",
        channel=message.channel,
        to=message.sender,
        language=language,
        context={"text": reply},
        idempotency_key=f"reply:{message.channel}:{message.pk}",
        consumer=consumers[0] if consumers else None,
        payload=payload,
    )


def answer_pending(*, limit: int | None = None) -> tuple[int, bool]:
    """Answer stored, unanswered messages in the order they arrived, at most `limit`: (how many this
    call answered, whether more were waiting beyond the limit). Each message is answered in a
    transaction of its own (its row and its conversation locked only meanwhile: runs side by side never
    wait on each other's batches, and a sender's next message waits only for the one before it); a
    message another run is answering is skipped, not waited for, so runs side by side share the work.
    The batch's replies go to the sending worker as one task at its end, not one task each."""
    from urja.notifications.services import batched_delivery

    limit = limit or ANSWER_BATCH
    pending = list(_unanswered().values_list("pk", flat=True)[: limit + 1])
    with batched_delivery():
        answered = sum(1 for pk in pending[:limit] if _answer_one(pk, skip_locked=True))
    return answered, len(pending) > limit


def answer_all_pending() -> int:
    """Answer everything waiting, batch after batch, here (the demo, the simulation, and the job when
    there is no broker to hand the rest on to); how many were answered."""
    answered, more = answer_pending()
    while more:
        done, more = answer_pending()
        answered += done
    return answered


def handle_pending(*, older_than_seconds: int = 30, limit: int = 500) -> int:
    """Answer the stored messages nobody answered (their kicked job was lost); returns how many."""
    cutoff = timezone.now() - timedelta(seconds=older_than_seconds)
    pending = _unanswered().filter(received_at__lt=cutoff)
    return sum(1 for pk in pending.values_list("pk", flat=True)[:limit] if _answer_one(pk, skip_locked=False))


def _answer_one(pk: int, *, skip_locked: bool) -> bool:
    """One message of a run: a message whose answer raises is logged and marked FAILED (its
    transaction rolled back, nothing queued), so it is not read first by every later run and the
    messages behind it are still answered."""
    try:
        return handle(message_pk=pk, skip_locked=skip_locked) is not None
    except Exception:
        log.exception("inbound message %s could not be answered; marked %s", pk, FAILED)
        InboundMessage.objects.filter(pk=pk, intent="").update(intent=FAILED)
        return False


def answer_again(*, actor, channel: str, message: InboundMessage) -> None:
    """Answer a message whose answer failed once more (staff, once the cause is fixed): it waits for
    the answering job like a message just received. Only a failed message — an answered one would
    be answered twice, a waiting one is answered anyway."""
    with transaction.atomic():
        if not InboundMessage.objects.filter(pk=message.pk, intent=FAILED).update(intent="", reply=""):
            raise Conflict("only a message whose answer failed can be answered again", code="not_failed")
        record_audit(
            actor=actor,
            channel=channel,
            action="inbound.answer_again",
            obj=message,
            changes={"channel": message.channel, "message_id": message.message_id},
        )
        from urja.channels import tasks

        jobs.kick(tasks.answer_inbound, key=tasks.INBOUND_KICK)
    message.intent, message.reply = "", ""


def _unanswered():
    # the partial index inbound_unanswered holds exactly these rows: a few, whatever the history
    return InboundMessage.objects.filter(intent="").order_by("pk")


def dlt_template_id(key: str, language: str) -> str:
    """The DLT template id of a bot reply (data/channels/dlt.toml [bot]), '' when none."""
    ids = regdata.load("channels/dlt.toml").get("bot", {}).get(key, {})
    return ids.get(language) or ""


def _respond(inbound, conversation, consumers, language, sender, now) -> tuple[str, str]:
    state = conversation.state or {}
    text = inbound.text.strip()
    action, arg = "", ""
    if inbound.reply_id.startswith("menu."):
        action = inbound.reply_id.split(".", 1)[1]
    elif inbound.reply_id.startswith("acct.") and state.get("await") == "account":
        action, arg = state.get("action", ""), inbound.reply_id.split(".", 1)[1]
    elif state.get("await") == "account" and text.isdigit() and 1 <= int(text) <= len(state.get("choices", [])):
        action, arg = state.get("action", ""), state["choices"][int(text) - 1]
    elif state.get("await") in ("email", "code") and text and parse(text, channel=inbound.channel)[0] != "greeting":
        return _register_step(conversation, consumers, language, sender, text, now)
    elif state.get("menu") and text.isdigit() and 1 <= int(text) <= len(data()["menu"]["items"]):
        action = data()["menu"]["items"][int(text) - 1]
    else:
        action, arg, keyword_language = parse(text or inbound.reply_id, channel=inbound.channel)
        if not consumers and keyword_language and not _applicant_language(sender):
            language = keyword_language
    if not consumers:
        conversation.language = language
    conversation.state = {}

    if action == "greeting":
        if not consumers:
            return "unknown_number", _say("unknown_number", language)
        conversation.state = {"menu": True}
        _note(keys="menu", whatsapp={"interactive": menu_interactive(language)})
        return "menu", menu_text(language)
    if action == "help":
        return "help", _say("help", language)
    if action == "status":
        return "status", _status(consumers, language, sender, arg)
    if not action:
        return "unknown", _say("unknown", language)
    if not consumers:
        return "unknown_number", _say("unknown_number", language)
    if action == "register":
        conversation.state = {"await": "email"}
        return "register", _say("ask_email", language)
    if action not in ACCOUNT_ACTIONS:
        return "unknown", _say("unknown", language)
    accounts = list(Account.objects.filter(consumer__in=consumers).order_by("consumer_number"))
    if arg:
        number = arg.split()[0].strip().upper()
        account = next((a for a in accounts if a.consumer_number == number), None)
        if account is None:
            return "not_yours", _say("not_yours", language)
    elif len(accounts) == 1:
        account = accounts[0]
    else:
        conversation.state = {"await": "account", "action": action, "choices": [a.consumer_number for a in accounts]}
        numbers = [a.consumer_number for a in accounts]
        prompt = _say("pick_account", language)
        _note(whatsapp={"interactive": picker_interactive(prompt, numbers, language)})
        lines = [prompt] + [f"{i}. {n}" for i, n in enumerate(numbers, 1)]
        return "pick_account", "\n".join(lines)
    return action, ACTIONS[action](account, language, sender, now, inbound.channel)


# --- actions -------------------------------------------------------------------------------------------


def _latest_bill(account):
    from urja.billing.models import Bill

    return Bill.objects.filter(account=account).order_by("-period_start", "-id").first()


def _due(account) -> Decimal:
    from urja.billing import ledger

    return max(ledger.balance(account=account), Decimal("0"))


def _date(value) -> str:
    return value.strftime("%d-%m-%Y") if value else "-"


def ebill_link(bill) -> str:
    token = signing.dumps({"b": bill.pk}, salt=EBILL_SALT, compress=True)
    return public_url(reverse("channels:ebill", args=[token]))


def bill_from_link(token: str):
    from urja.billing.models import Bill

    try:
        payload = signing.loads(token, salt=EBILL_SALT, max_age=timedelta(days=EBILL_DAYS))
        return Bill.objects.select_related("account__consumer").get(pk=payload["b"])
    except (signing.BadSignature, KeyError, TypeError, Bill.DoesNotExist):
        return None


def _ebill(account, language, sender, now, channel) -> str:
    bill = _latest_bill(account)
    if bill is None:
        return _say("no_bill", language, consumer_number=account.consumer_number)
    link = ebill_link(bill)
    text = _say("ebill", language, consumer_number=account.consumer_number, bill_number=bill.bill_number, link=link)
    # WhatsApp: the PDF itself as a document message. Meta fetches `link` when it sends the message
    # (a signed URL valid EBILL_DAYS days: no upload, no media id to expire, nothing public to guess).
    caption = _say("ebill_caption", language, consumer_number=account.consumer_number, bill_number=bill.bill_number)
    _note(whatsapp={"document": {"link": link, "filename": f"bill-{bill.bill_number}.pdf", "caption": caption}})
    return text


def _bill(account, language, sender, now, channel) -> str:
    bill = _latest_bill(account)
    if bill is None:
        return _say("no_bill", language, consumer_number=account.consumer_number)
    amount, due = f"{bill.net_payable:.2f}", f"{_due(account):.2f}"
    return _say("bill", language, consumer_number=account.consumer_number, bill_number=bill.bill_number,
                amount=amount, due_date=_date(bill.due_date), due=due)  # fmt: skip


def _pay(account, language, sender, now, channel) -> str:
    from urja.payments import services as payments
    from urja.payments.selectors import upi_intent

    due = _due(account)
    if due <= 0:
        return _say("nothing_due", language, consumer_number=account.consumer_number)
    order = payments.create_order(consumer_number=account.consumer_number, amount=due, channel="upi")
    link = public_url(reverse("payments:dev_gateway", args=[order.reference]))
    return _say("pay", language, consumer_number=account.consumer_number, due=f"{due:.2f}",
                upi=upi_intent(order), link=link)  # fmt: skip


def _nopower(account, language, sender, now, channel) -> str:
    from urja.servicedesk.selectors import known_outage
    from urja.servicedesk.services import register_request

    outage = known_outage(account=account, at=now)
    if outage is not None:
        restore = (
            outage.expected_restore_at.astimezone(IST).strftime("%d-%m-%Y %H:%M") if outage.expected_restore_at else "-"
        )
        return _say("outage", language, outage=outage.number, restore=restore)
    try:
        reg = register_request(actor=None, channel=channel, type_code="no_power_supply", subtype_code="no_power_supply",
                               account=account, mobile=sender, language=language)  # fmt: skip
    except DomainError as exc:
        return exc.message
    if reg.outage is not None:
        restore = reg.outage.expected_restore_at
        restore = restore.astimezone(IST).strftime("%d-%m-%Y %H:%M") if restore else "-"
        return _say("outage", language, outage=reg.outage.number, restore=restore)
    due = reg.request.due_at.astimezone(IST).strftime("%d-%m-%Y %H:%M") if reg.request.due_at else "-"
    return _say("registered", language, number=reg.request.number, consumer_number=account.consumer_number, due=due)


ACTIONS = {"ebill": _ebill, "bill": _bill, "pay": _pay, "nopower": _nopower}


def _status(consumers, language, sender, arg) -> str:
    from urja.core.errors import NotFound
    from urja.servicedesk.models import ServiceRequest
    from urja.servicedesk.selectors import find_for_consumer

    if arg and _is_application(arg.split()[0].upper()):
        return _application(arg.split()[0].upper(), sender, language)
    if arg:
        try:
            found = [find_for_consumer(number=arg.split()[0].upper(), mobile=sender)]
        except NotFound:
            return _say("not_yours", language) if consumers else _say("unknown_number", language)
    elif consumers:
        found = list(
            ServiceRequest.objects.filter(account__consumer__in=consumers)
            .select_related("request_type")
            .order_by("-registered_at")[:3]
        )
    else:
        return _say("unknown_number", language)
    if not found:
        return _say("no_requests", language)
    return "\n".join(
        _say("status_line", language, number=r.number, label=r.request_type.name, status=r.status) for r in found
    )


def _is_application(number: str) -> bool:
    from urja.connections import selectors as connections

    return connections.is_application_number(number)


def _application(number: str, sender: str, language: str) -> str:
    """A new-connection application tracked by its number from the mobile given on it (any number
    may ask: an applicant has no account yet). A wrong mobile and an unknown number get the same
    answer — the connections app's refusal, in the sender's language."""
    from django.utils import translation

    from urja.connections import selectors as connections
    from urja.core.errors import NotFound
    from urja.core.labels import label

    with translation.override(language):
        try:
            app = connections.track(number=number, mobile=sender)
        except NotFound as exc:
            return _say("application_refused", language, message=exc.message)
    amount = connections.outstanding(app) if app.status == "dn_issued" else 0
    energized = app.status == "energized" and app.account_id
    return _say("application_status", language, number=app.number, status=label(app.status, language),
                amount=f"{amount:.2f}" if amount else "",
                consumer_number=app.account.consumer_number if energized else "")  # fmt: skip


def _register_step(conversation, consumers, language, sender, text, now) -> tuple[str, str]:
    """E-mail registration: the address, then the code sent to it."""
    consumer = consumers[0] if consumers else None
    state = conversation.state or {}
    if consumer is None:
        conversation.state = {}
        return "unknown_number", _say("unknown_number", language)
    client = f"{conversation.channel}:{sender}"
    if state.get("await") == "email":
        try:
            ticket = identity.start_contact_change(consumer=consumer, kind="email", value=text, client=client)
        except (TooManyAttempts, otp.ResendTooSoon) as exc:
            conversation.state = {}
            return "register_refused", exc.message
        except DomainError:
            return "register", _say("ask_email", language)  # not an e-mail address: ask again
        conversation.state = {"await": "code", "token": ticket.token, "address": text.strip().lower()}
        return "register_code_sent", _say("code_sent", language, address=text.strip().lower())
    try:
        contact = identity.finish_contact_change(
            consumer=consumer, token=state.get("token", ""), code=text, client=client, channel=conversation.channel
        )
    except (otp.WrongCode, TooManyAttempts):
        conversation.state = {}
        return "register_wrong_code", _say("wrong_code", language)
    conversation.state = {}
    return "registered_email", _say("email_registered", language, address=contact.value)
