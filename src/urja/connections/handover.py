"""Shifting lodged at the service desk: one shifting, one clock, compensation once.

The charter's "Shifting" type (data/servicedesk/<state>_sop.toml, `[shifting] sop_type` of
data/connections/connections.toml) is carried by connections: each SoP subtype is a change request
kind (`[shifting.kind.<kind>] sop`). The service desk finds `servicedesk_types()` here
(servicedesk/handover.py) and hands a shifting registered at the call centre, the care centre, a camp
or through the API to `register_from_desk`, which opens the change request of that kind on the account
— or, when one is open, links this contact to it (an audit row; no second request, no second message)
— and acknowledges it to the consumer once (`request.registered`, with the change request's number and
due moment). The change request's SoP clock (stopped while its demand note waits) and its `credit_late`
compensation are the only ones: no service request, so nothing else can be late or credited.
"""

from __future__ import annotations

from django.db import transaction
from django.urls import reverse

from urja.core.labels import label
from urja.core.services import record_audit
from urja.customers.models import Account

from .models import OPEN_CHANGE, SHIFTING_KINDS, ChangeRequest, ChangeStatus
from .services import data

HANDLER = "urja.connections.handover.register_from_desk"


def servicedesk_types() -> dict[str, str]:
    """{SoP type code: handler} of the service-desk types connections carries (read from its data)."""
    return {data()["shifting"]["sop_type"]: HANDLER}


def kind_of(subtype_code: str) -> str:
    """The change request kind of a shifting SoP subtype (`[shifting.kind.<kind>] sop`)."""
    for kind, rules in data()["shifting"]["kind"].items():
        if rules.get("sop") == subtype_code and kind in SHIFTING_KINDS:
            return kind
    from .refusals import refuse

    raise refuse("unknown_request", kind=subtype_code, details={"allowed": sorted(SHIFTING_KINDS)})


def _location(description: str) -> str:
    """What the consumer wants moved, and where: the description's first line, cut to the request's 200
    characters (the inspection records the exact new location or route)."""
    first = " ".join((description or "").strip().splitlines()[0].split()) if (description or "").strip() else ""
    return first if len(first) <= 200 else first[:199].rstrip() + "…"


def _summary(change: ChangeRequest, *, created: bool):
    from urja.servicedesk.handover import HandedOver

    paused = change.status == ChangeStatus.APPROVED and bool(change.outcome.get("clock_stopped_at"))
    return HandedOver(
        app="connections",
        number=change.number,
        kind=change.kind,
        label=label(change.kind),
        status=change.status,
        registered_at=change.requested_at,
        due_at=change.due_at,
        paused=paused,
        created=created,
        url=reverse("connections:change", args=[change.number]),
        consumer_number=change.account.consumer_number,
        office=change.account.section.code,
    )


def register_from_desk(*, actor, channel: str, account: Account, request_type, description: str = "", language=None):
    """A shifting lodged at the service desk: the open change request of its kind on the account (this
    contact recorded on it), else a new one (`changes.request_change`: its checks and refusals, the SoP
    due moment and its acknowledgement, as at the counter). Called inside the registration's transaction."""

    from . import changes

    kind = kind_of(request_type.subtype_code)
    with transaction.atomic():
        # serialise lodgings on one account, so two calls at once cannot open two requests of a kind
        account = (
            Account.objects.select_for_update(of=("self",)).select_related("consumer", "section").get(pk=account.pk)
        )
        found = (
            ChangeRequest.objects.filter(account=account, kind=kind, status__in=OPEN_CHANGE)
            .order_by("requested_at")
            .first()
        )
        if found is not None:
            found.account = account
            record_audit(actor=actor, channel=channel, action="connection.change_contact", obj=found,
                         changes={"through": "servicedesk", "text": (description or "")[:500]})  # fmt: skip
            return _summary(found, created=False)
        change = changes.request_change(
            actor=actor,
            channel=channel,
            account=account,
            kind=kind,
            details={"location": _location(description), "reason": "", "requester": "consumer"},
        )
        change.account = account
        record_audit(actor=actor, channel=channel, action="connection.change_from_servicedesk", obj=change,
                     changes={"type": f"{request_type.type_code}/{request_type.subtype_code}"})  # fmt: skip
        return _summary(change, created=True)


def tell_compensated(change: ChangeRequest, *, amount, units_late: int, per: str) -> None:
    """The consumer is told once that a late shifting's compensation was credited (the same message a
    late service request gets, `request.compensation_credited`, keyed on the change request), after the
    commit: the credit stands if the message cannot be queued."""
    from urja.notifications import services as notifications

    account = change.account

    def send():
        try:
            notifications.notify(
                event="request.compensation_credited",
                consumer=account.consumer,
                account=account,
                context={
                    "request_number": change.number,
                    "amount": str(amount),
                    "units_late": units_late,
                    "per": per,
                },
                idempotency_key=f"compensation:change:{change.number}",
            )
        except Exception:  # after commit: the credit stands
            import logging

            logging.getLogger(__name__).exception("compensation message for %s failed", change.number)

    transaction.on_commit(send)


# --- the consumer's tracker ----------------------------------------------------------------------------

TRACKER = "urja.connections.handover.track_for_consumer"


def servicedesk_trackers() -> list[str]:
    """The trackers the service desk asks for a number that is no service request of its own."""
    return [TRACKER]


def track_for_consumer(*, number: str, mobile: str | None = None, consumer_number: str | None = None) -> dict | None:
    """A shifting change request as the service desk's tracker shows a request (`selectors.status_view`'s
    keys), when the number and the consumer's mobile (any of their mobiles) or consumer number match;
    else None (the tracker then gives its one answer, whether or not the number exists)."""
    from urja.core.models import AuditEvent
    from urja.customers.models import Contact
    from urja.customers.rules import normalise_mobile
    from urja.servicedesk import catalogue, clock

    number = (number or "").strip().upper()
    change = (
        ChangeRequest.objects.filter(number=number, kind__in=SHIFTING_KINDS).select_related("account").first()
        if number
        else None
    )
    if change is None:
        return None
    account = change.account
    ok = False
    if mobile:
        wanted = normalise_mobile(mobile)
        ok = (
            bool(wanted)
            and Contact.objects.filter(consumer_id=account.consumer_id, kind=Contact.Kind.MOBILE, value=wanted).exists()
        )
    if not ok and consumer_number:
        ok = account.consumer_number == consumer_number.strip().upper()
    if not ok:
        return None
    rules = data()["shifting"]
    rt = catalogue.find_type(type_code=rules["sop_type"], subtype_code=rules["kind"][change.kind]["sop"])
    summary = _summary(change, created=False)
    closed_at = change.applied_at if change.status == ChangeStatus.APPLIED else None
    if change.status == ChangeStatus.REJECTED:
        closed_at = change.decided_at
    late = change.due_at is not None and (closed_at or clock.now()) > change.due_at and not summary.paused
    moves = AuditEvent.objects.filter(
        object_type="connections.changerequest", object_id=str(change.pk), action="change.status"
    ).order_by("at", "pk")
    return {
        "number": change.number,
        "type": rt.type_name,
        "subtype": rt.name,
        "status": change.status,
        "registered_at": change.requested_at,
        "due_at": change.due_at,
        "sla_status": "breached" if late else "on_track",
        "paused": summary.paused,  # the demand note waits for the consumer's payment
        "closed_at": closed_at,
        "resolution": change.reason if change.status == ChangeStatus.REJECTED else change.outcome.get("shifted_to", ""),
        "escalated_to": top.title if (top := change.escalations.order_by("-level").first()) else "",
        "outage": None,
        "history": [{"at": change.requested_at, "status": ChangeStatus.REQUESTED}]
        + [{"at": e.at, "status": e.changes.get("to", "")} for e in moves],
    }
