"""Outages: declaring (planned or not), restoring, cancelling, and the requests they answer."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import Q, QuerySet

from urja.core.errors import Conflict, DomainError
from urja.core.models import Channel
from urja.core.services import allocate_numbers, next_number, record_audit
from urja.core.states import transition as change_state
from urja.core.states import transition_set
from urja.metering.mqtt import CLOCK_SKEW
from urja.servicedesk import catalogue, clock
from urja.servicedesk.models import (
    OUTAGE_STATUS,
    Outage,
    RequestEvent,
    ServiceRequest,
)
from urja.servicedesk.selectors import (
    _final_states,
    _outage_types,
    accounts_of_outage,
    find_office,
    outage_area,
    schedule_of,
    setting,
    states_of,
)
from urja.servicedesk.services._base import _event, _save, send
from urja.servicedesk.services.outage_accounts import close_outage_accounts, fill_outage_accounts
from urja.servicedesk.services.workflow import _close, _lock, _set_status


def _link_to_outage(request: ServiceRequest, outage: Outage, *, actor, channel: str) -> None:
    machine = catalogue.workflow_machine(schedule_of(request), request.workflow)
    linked = states_of(request).outage
    if linked and linked in machine.allowed(request.status):
        _set_status(request, linked, actor=actor, channel=channel, text=f"known outage {outage.number}")
    request.outage = outage
    _save(request)
    _event(request, kind=RequestEvent.Kind.OUTAGE, text=f"linked to outage {outage.number}", outage=outage.number)


@transaction.atomic
def declare_outage(
    *,
    actor,
    channel: str,
    kind: str,
    reason: str,
    starts_at: datetime | None = None,
    expected_restore_at: datetime | None = None,
    feeder=None,
    transformer=None,
    office=None,
) -> Outage:
    """Record an outage on a feeder or DT. A planned one is announced to affected consumers now."""
    if kind not in Outage.Kind.values:
        raise DomainError(f"outage kind must be planned or unplanned, not {kind!r}", code="invalid_outage_kind")
    if feeder is None and transformer is None:
        raise DomainError("an outage is on a feeder or a distribution transformer", code="outage_location_required")
    if not reason.strip():
        raise DomainError("give the reason for the outage", code="reason_required")
    now = clock.now()
    starts_at = starts_at or now
    if kind == Outage.Kind.PLANNED and starts_at <= now:
        raise DomainError("a planned outage must be announced before it starts", code="planned_outage_in_past")
    if expected_restore_at is not None and expected_restore_at <= starts_at:
        raise DomainError("restoration must be expected after the start", code="invalid_restore_time")
    if transformer is not None and feeder is None:
        feeder = transformer.feeder
    office = find_office(office) if office is not None else feeder.office
    schedule = catalogue.active_schedule()
    outage = Outage.objects.create(
        number=next_number(
            key="servicedesk:outage", template=setting(schedule, "outage_number_template", "OUT{yy}{seq:6}{check}")
        ),
        kind=kind,
        status=Outage.Status.ANNOUNCED if kind == Outage.Kind.PLANNED else Outage.Status.ACTIVE,
        feeder=feeder,
        transformer=transformer,
        office=office,
        reason=reason.strip()[:200],
        starts_at=starts_at,
        expected_restore_at=expected_restore_at,
        announced_at=now if kind == Outage.Kind.PLANNED else None,
        created_by=actor if getattr(actor, "pk", None) else None,
    )
    # who is affected is fixed now, with each smart meter's own last gasp since the start
    fill_outage_accounts(outages=[outage], until=now + CLOCK_SKEW)
    accounts = accounts_of_outage(outage)
    record_audit(actor=actor, channel=channel, action="servicedesk.outage", obj=outage, changes={"kind": kind})
    if kind == Outage.Kind.PLANNED:
        _tell_accounts(
            accounts,
            event="outage.planned",
            key=f"outage_planned:{outage.number}",
            context={
                "outage": outage.number,
                "area": outage_area(outage),
                "reason": outage.reason,
                "start": starts_at,
                "end": expected_restore_at or starts_at,
            },
        )
    else:
        # complaints already lodged on this DT / feeder join the outage
        # (not yet worked on: the workflows' initial and assigned states)
        schedule = catalogue.active_schedule()
        waiting = {*catalogue.states_in_role(schedule, "initial"), *catalogue.states_in_role(schedule, "assigned")}
        for request in ServiceRequest.objects.filter(
            outage__isnull=True,
            type_code__in=_outage_types(),
            status__in=sorted(waiting),
            account__in=accounts,
        ).select_related("request_type__schedule", "consumer", "account"):
            _link_to_outage(request, outage, actor=actor, channel=channel)
    return outage


@dataclass(frozen=True)
class NewOutage:
    """An unplanned outage to declare in bulk: on a DT (`transformer_id`) or a whole feeder."""

    starts_at: datetime
    reason: str
    feeder_id: int | None = None
    transformer_id: int | None = None


@transaction.atomic
def declare_outages(*, actor, channel: str, outages: Sequence[NewOutage]) -> list[Outage]:
    """Declare many unplanned outages at once (the outage detector's pass), with `declare_outage`'s
    rules and effects, set-based: one query per step — the DTs' feeders, the feeders' offices, the
    numbers allocated in one step, one bulk insert, the affected accounts of every outage stored by ONE
    `INSERT … SELECT` (`fill_outage_accounts`, each with its meter's own last gasp) — then one audit
    event per outage and the waiting complaints on any of them linked (found in one query). Telling the
    consumers is the caller's (one `notifications.bulk.notify_areas` for all).
    Bad input (no location, no reason, an unknown DT or feeder) raises before anything is written."""
    if not outages:
        return []
    for o in outages:
        if o.feeder_id is None and o.transformer_id is None:
            raise DomainError("an outage is on a feeder or a distribution transformer", code="outage_location_required")
        if not o.reason.strip():
            raise DomainError("give the reason for the outage", code="reason_required")
    from urja.network.models import DistributionTransformer, Feeder

    dt_ids = {o.transformer_id for o in outages if o.transformer_id}
    feeder_of = dict(DistributionTransformer.objects.filter(pk__in=dt_ids).values_list("pk", "feeder_id"))
    feeder_ids = {o.feeder_id for o in outages if o.feeder_id} | set(feeder_of.values())
    office_of = dict(Feeder.objects.filter(pk__in=feeder_ids).values_list("pk", "office_id"))
    unknown = sorted(dt_ids - set(feeder_of)) or sorted({o.feeder_id for o in outages if o.feeder_id} - set(office_of))
    if unknown:
        raise DomainError("no such distribution transformer or feeder", code="outage_location_unknown",
                          details={"ids": unknown})  # fmt: skip
    schedule = catalogue.active_schedule()
    numbers = allocate_numbers(
        key="servicedesk:outage",
        template=setting(schedule, "outage_number_template", "OUT{yy}{seq:6}{check}"),
        count=len(outages),
    )
    created_by = actor if getattr(actor, "pk", None) else None
    rows = []
    for number, o in zip(numbers, outages, strict=True):
        feeder_id = o.feeder_id or feeder_of[o.transformer_id]
        rows.append(
            Outage(
                number=number,
                kind=Outage.Kind.UNPLANNED,
                status=Outage.Status.ACTIVE,
                feeder_id=feeder_id,
                transformer_id=o.transformer_id,
                office_id=office_of[feeder_id],
                reason=o.reason.strip()[:200],
                starts_at=o.starts_at,
                created_by=created_by,
            )
        )
    made = Outage.objects.bulk_create(rows)
    fill_outage_accounts(outages=made, until=clock.now() + CLOCK_SKEW)
    for outage in made:
        record_audit(actor=actor, channel=channel, action="servicedesk.outage", obj=outage,
                     changes={"kind": outage.kind})  # fmt: skip
    # complaints already lodged on these DTs / feeders join their outage (as declare_outage)
    by_dt = {o.transformer_id: o for o in made if o.transformer_id}
    by_feeder = {o.feeder_id: o for o in made if o.transformer_id is None}
    waiting = {*catalogue.states_in_role(schedule, "initial"), *catalogue.states_in_role(schedule, "assigned")}
    for request in ServiceRequest.objects.filter(
        Q(account__transformer_id__in=list(by_dt)) | Q(account__feeder_id__in=list(by_feeder)),
        outage__isnull=True,
        type_code__in=_outage_types(),
        status__in=sorted(waiting),
    ).select_related("request_type__schedule", "consumer", "account"):
        outage = by_feeder.get(request.account.feeder_id) or by_dt.get(request.account.transformer_id)
        if outage is not None:
            _link_to_outage(request, outage, actor=actor, channel=channel)
    return made


def _tell_accounts(accounts: QuerySet, *, event: str, key: str, context: dict[str, Any]) -> int:
    sent = 0
    for account in accounts.select_related("consumer").iterator(chunk_size=500):
        sent += send(
            event=event, consumer=account.consumer, account=account, context=context, key=f"{key}:{account.pk}"
        )
    return sent


@transaction.atomic
def restore_outage(*, actor, channel: str, outage: Outage, restored_at: datetime | None = None) -> Outage:
    """Supply is back: close the outage, close every linked complaint and tell each consumer."""
    outage = Outage.objects.select_for_update().get(pk=outage.pk)
    if not OUTAGE_STATUS.can(outage.status, Outage.Status.RESTORED):
        raise Conflict(f"outage {outage.number} is already {outage.status}", code="outage_closed")
    now = restored_at or clock.now()
    if now < outage.starts_at:
        raise DomainError("restoration cannot precede the start of the outage", code="invalid_restore_time")
    outage.restored_at = now
    change_state(outage, OUTAGE_STATUS, Outage.Status.RESTORED, actor=actor, channel=channel,
                 extra_fields=("restored_at",), action="servicedesk.outage_restored")  # fmt: skip
    close_outage_accounts(outage=outage)
    for request in ServiceRequest.objects.filter(outage=outage).exclude(status__in=_final_states()):
        request = _lock(request)
        if request.status in states_of(request).paused:  # the consumer holds it up: not closed for them
            continue
        _close(
            request,
            actor=actor,
            channel=channel,
            notes=f"Supply restored ({outage.reason}); outage {outage.number} closed.",
            code="outage_restored",
            at=now,
        )
    return outage


@transaction.atomic
def cancel_outage(*, actor, channel: str, outage: Outage, reason: str) -> Outage:
    outage = Outage.objects.select_for_update().get(pk=outage.pk)
    if not OUTAGE_STATUS.can(outage.status, Outage.Status.CANCELLED):
        raise Conflict("only an announced (not yet begun) outage can be cancelled", code="outage_not_announced")
    change_state(outage, OUTAGE_STATUS, Outage.Status.CANCELLED, actor=actor, channel=channel, reason=reason,
                 action="servicedesk.outage_cancelled")  # fmt: skip
    _tell_accounts(
        accounts_of_outage(outage),
        event="outage.cancelled",
        key=f"outage_cancelled:{outage.number}",
        context={"outage": outage.number, "area": outage_area(outage), "reason": reason},
    )
    return outage


def activate_planned_outages(*, now: datetime | None = None) -> int:
    """Announced outages whose start has come become active (periodic). Set-based, the WHERE from
    OUTAGE_STATUS; an audit event per outage (a handful a day)."""
    now = now or clock.now()
    return transition_set(
        Outage.objects.filter(starts_at__lte=now),
        OUTAGE_STATUS,
        Outage.Status.ACTIVE,
        actor=None,
        channel=Channel.SYSTEM,
        reason="start time reached",
        action="servicedesk.outage_active",
    )
