"""Registering requests and complaints: channel rules, duplicates, supply checks, outage links."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.db.models import Exists, OuterRef, prefetch_related_objects

from urja.core.errors import DomainError, NotFound
from urja.core.models import Channel
from urja.core.services import next_number, record_audit
from urja.customers.models import Account, Contact
from urja.customers.rules import normalise_mobile
from urja.servicedesk import catalogue, clock, handover, supply_checks
from urja.servicedesk.models import (
    Outage,
    RequestEvent,
    RequestType,
    ServiceRequest,
    SopSchedule,
)
from urja.servicedesk.selectors import _local, _timeline, find_office, known_outage, open_states, owning_office, setting
from urja.servicedesk.services._base import _event, _reschedule, _save, notify_consumer
from urja.servicedesk.services.outages import _link_to_outage
from urja.servicedesk.services.workflow import _close


@dataclass
class Registration:
    """What a registration made. A type another app carries (`handover`: the charter's shifting, a
    connections change request) makes no service request: `request` is None and `handed_over` says
    what was opened there (or found open: `created` False)."""

    request: ServiceRequest | None
    created: bool
    duplicate_of: ServiceRequest | None = None
    supply_check: supply_checks.SupplyCheck | None = None
    outage: Outage | None = None
    handed_over: handover.HandedOver | None = None

    @property
    def number(self) -> str:
        """The number the consumer is told: the service request's, or the change request's."""
        return self.handed_over.number if self.handed_over is not None else self.request.number


def check_channel(*, schedule: SopSchedule, request_type: RequestType, channel: str) -> None:
    if channel not in Channel.values:
        raise DomainError(f"unknown channel {channel!r}", code="unknown_channel", details={"allowed": Channel.values})
    column = catalogue.channel_column(schedule, channel)
    if column not in request_type.channels:
        where = catalogue.allowed_labels(schedule, request_type)
        raise DomainError(
            f"A '{request_type.type_name} – {request_type.name}' request cannot be lodged through "
            f"{catalogue.channel_label(schedule, column)}. It can be lodged at: {', '.join(where)}.",
            code="channel_not_allowed",
            details={"channel": channel, "allowed": list(request_type.channels), "allowed_labels": where},
        )


def _resolve_account(consumer_number: str | None, account: Account | None) -> Account | None:
    if account is not None:
        return account
    if consumer_number:
        from urja.customers.services import get_account

        return get_account(consumer_number=consumer_number)
    return None


def _consumer_mobile(consumer) -> str:
    """The primary mobile (else the first one) of the consumer. Reads consumer.contacts.all(), so
    contacts prefetched for the acknowledgement are read once."""
    mobiles = [c for c in consumer.contacts.all() if c.kind == Contact.Kind.MOBILE]
    mobiles.sort(key=lambda c: (not c.is_primary, c.id))
    return mobiles[0].value if mobiles else ""


def _open_same_type(account: Account | None, consumer_number: str | None, schedule, request_type) -> tuple:
    """(account id or None, whether it has an open request of the type) in one query."""
    open_same = ServiceRequest.objects.filter(
        account=OuterRef("pk"),
        type_code=request_type.type_code,
        status__in=open_states(schedule, request_type.workflow),
    )
    if account is not None:
        qs = Account.objects.filter(pk=account.pk)
    elif consumer_number:
        from urja.customers.services import validate_consumer_number

        number = validate_consumer_number(consumer_number)
        qs = Account.objects.filter(consumer_number=number)
    else:
        return None, False
    row = qs.annotate(open_same=Exists(open_same)).values_list("pk", "open_same").first()
    if row is None:
        what = f"consumer number {number}" if account is None else f"id {account.pk}"
        raise NotFound(f"no account with {what}", code="account_not_found")
    return row


def register_request(
    *,
    actor,
    channel: str,
    type_code: str,
    subtype_code: str | None = None,
    consumer_number: str | None = None,
    account: Account | None = None,
    office=None,
    **kwargs,
) -> Registration:
    """Register a request or complaint lodged through `channel` (see `_register`).

    Outside a transaction, the request number is allocated first in a short transaction of its
    own, so concurrent registrations do not queue on the number series' row lock for the whole
    registration (a refused or linked registration may leave a gap; numbers stay unique)."""
    number = account_id = None
    schedule = catalogue.active_schedule()
    request_type = catalogue.find_type(type_code=type_code, subtype_code=subtype_code, schedule=schedule)
    handler = handover.handler_for(request_type.type_code)
    if handler is not None:
        return _hand_over(
            handler,
            actor=actor,
            channel=channel,
            schedule=schedule,
            request_type=request_type,
            consumer_number=consumer_number,
            account=account,
            **kwargs,
        )
    if not transaction.get_connection().in_atomic_block:
        check_channel(schedule=schedule, request_type=request_type, channel=channel)
        account_id, open_same = _open_same_type(account, consumer_number, schedule, request_type)
        if (account_id is not None or office is not None) and not open_same:
            number = _new_number(schedule)
        if account_id is not None:
            consumer_number = None
    return _register(
        actor=actor,
        channel=channel,
        type_code=type_code,
        subtype_code=subtype_code,
        consumer_number=consumer_number,
        account=account,
        office=office,
        number=number,
        schedule=schedule,
        account_id=account_id,
        **kwargs,
    )


@transaction.atomic
def _hand_over(
    handler,
    *,
    actor,
    channel: str,
    schedule: SopSchedule,
    request_type: RequestType,
    consumer_number: str | None,
    account: Account | None,
    description: str = "",
    mobile: str = "",
    language: str | None = None,
    **_ignored,
) -> Registration:
    """A type another app carries (`handover`): the same checks as a registration (channel matrix, the
    account, the mobile), then the app's handler opens its request — or finds the one of that kind
    already open on the account — and acknowledges it once. No service request, no second clock: the
    SLA clock, its pauses and the compensation are that request's. `registered_at` is not used (the
    request is opened now); `name` and `office` do not apply (the account's holder and section)."""
    check_channel(schedule=schedule, request_type=request_type, channel=channel)
    account = _resolve_account(consumer_number, account)
    if account is None:
        raise DomainError(
            f"a '{request_type.type_name}' request needs the consumer number of the account", code="account_required"
        )
    if mobile and not normalise_mobile(mobile):
        raise DomainError(f"{mobile!r} is not a valid Indian mobile number", code="invalid_mobile")
    if language and language not in ("en", "hi", "or"):
        raise DomainError("language must be en, hi or or", code="invalid_language")
    done = handler(
        actor=actor,
        channel=channel,
        account=account,
        request_type=request_type,
        description=description,
        language=language,
    )
    return Registration(request=None, created=done.created, handed_over=done)


def _new_number(schedule: SopSchedule) -> str:
    return next_number(
        key="servicedesk:request", template=setting(schedule, "request_number_template", "SR{yy}{seq:8}{check}")
    )


@transaction.atomic
def _register(
    *,
    number: str | None = None,
    schedule: SopSchedule | None = None,
    account_id: int | None = None,
    actor,
    channel: str,
    type_code: str,
    subtype_code: str | None = None,
    consumer_number: str | None = None,
    account: Account | None = None,
    description: str = "",
    mobile: str = "",
    name: str = "",
    language: str | None = None,
    office=None,
    details: dict | None = None,
    registered_at: datetime | None = None,
) -> Registration:
    """Register a request or complaint lodged through `channel`.

    Refuses an unknown type, a channel the matrix does not allow (naming where it can be lodged)
    and a missing account for types that need one. An open request of the same type on the same
    account is not duplicated: the repeat is recorded on it and it is returned.
    """
    schedule = schedule or catalogue.active_schedule()
    request_type = catalogue.find_type(type_code=type_code, subtype_code=subtype_code, schedule=schedule)
    check_channel(schedule=schedule, request_type=request_type, channel=channel)
    if account_id is None:
        account = _resolve_account(consumer_number, account)
        account_id = account.pk if account is not None else None
    if request_type.requires_account and account_id is None:
        raise DomainError(
            f"a '{request_type.type_name}' request needs the consumer number of the account",
            code="account_required",
        )
    if mobile:
        normalised = normalise_mobile(mobile)
        if not normalised:
            raise DomainError(f"{mobile!r} is not a valid Indian mobile number", code="invalid_mobile")
        mobile = normalised
    if language and language not in ("en", "hi", "or"):
        raise DomainError("language must be en, hi or or", code="invalid_language")
    now = registered_at or clock.now()

    if account_id is not None:
        # serialise registrations on one account so two lodgings cannot both create a request
        account = (
            Account.objects.select_for_update(of=("self",)).select_related("consumer", "section").get(pk=account_id)
        )
        # only the id first (most lodgings find none); the row is locked, so reading it next is safe
        duplicate_id = (
            ServiceRequest.objects.select_for_update()
            .filter(
                account=account,
                type_code=request_type.type_code,
                status__in=open_states(schedule, request_type.workflow),
            )
            .order_by("registered_at")
            .values_list("pk", flat=True)
            .first()
        )
        if duplicate_id is not None:
            duplicate = ServiceRequest.objects.select_related("office", "outage", "esc_clock").get(pk=duplicate_id)
            duplicate.account = account
            known = catalogue.cached_type(schedule, duplicate.request_type_id)
            if known is not None:
                duplicate.request_type = known
            ServiceRequest.objects.filter(pk=duplicate.pk).update(repeat_contacts=duplicate.repeat_contacts + 1)
            duplicate.repeat_contacts += 1
            _event(
                duplicate,
                kind=RequestEvent.Kind.REPEAT,
                actor=actor,
                channel=channel,
                text=description[:500] or f"lodged again through {channel}",
                subtype=request_type.subtype_code,
            )
            return Registration(request=duplicate, created=False, duplicate_of=duplicate)
        section = account.section
    else:
        if office is None:
            raise DomainError("name the office for a request without an account", code="office_required")
        section = find_office(office)

    owner = owning_office(section, request_type.office_level)
    consumer = account.consumer if account is not None else None
    if consumer is not None:
        # one read of the contacts serves the contact mobile here and the acknowledgement's addresses
        prefetch_related_objects([consumer], "contacts")
    area = account.area if account is not None else "urban"
    request = ServiceRequest(
        number=number or _new_number(schedule),
        request_type=request_type,
        type_code=request_type.type_code,
        subtype_code=request_type.subtype_code,
        workflow=request_type.workflow,
        status=catalogue.workflow_def(schedule, request_type.workflow)["initial"],
        account=account,
        consumer=consumer,
        contact_name=name or (consumer.name if consumer else ""),
        contact_mobile=mobile or (_consumer_mobile(consumer) if consumer else ""),
        language=language or (consumer.preferred_language if consumer else "en"),
        channel=channel,
        description=description,
        details=details or {},
        office=owner,
        office_path=owner.path,
        team=request_type.team,
        area=area,
        registered_at=now,
        clock_start=now,
        timeline_unit=request_type.unit,
        timeline_value=request_type.timeline_value(area),
        created_by=actor if getattr(actor, "pk", None) else None,
    )
    _reschedule(request)
    _save(request)
    _event(
        request,
        kind=RequestEvent.Kind.REGISTERED,
        actor=actor,
        channel=channel,
        at=now,
        to_status=request.status,
        text=description[:500],
        due=request.due_at.isoformat() if request.due_at else None,
    )
    record_audit(
        actor=actor,
        channel=channel,
        action="servicedesk.registered",
        obj=request,
        changes={"number": request.number, "type": f"{request.type_code}/{request.subtype_code}"},
    )
    result = Registration(request=request, created=True)
    if request_type.outage_check and account is not None:
        result.supply_check = supply_checks.check(account)
        if result.supply_check is not None:
            # nothing for a crew to do: tell the consumer at once and close the complaint
            _close(
                request,
                actor=None,
                channel="system",
                notes=result.supply_check.message,
                code=result.supply_check.reason,
                at=now,
                feedback=False,
            )
            notify_consumer(
                request,
                event="request.closed",
                context={"resolution": result.supply_check.message},
                key=f"supply_check:{request.number}",
            )
            return result
        result.outage = known_outage(account=account, at=now)
        if result.outage is not None:
            _link_to_outage(request, result.outage, actor=actor, channel=channel)
    label = request_type.name
    if result.outage is not None:
        label += f"; known outage {result.outage.number}"
        if result.outage.expected_restore_at:
            label += f", supply expected back by {_local(result.outage.expected_restore_at)}"
    notify_consumer(
        request,
        event="request.registered",
        context={"request_label": label, "timeline": _timeline(request).describe()},
        key=f"registered:{request.number}",
    )
    return result
