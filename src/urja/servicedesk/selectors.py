"""Service-desk reads: the SLA clock of a request, its workflow states, offices and holders,
known outages, compensation and forum reports, consumer tracking, queues and timelines. No function
here writes; the services (services/) build on these."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.core import signing
from django.db.models import Count, Q, QuerySet
from django.urls import reverse
from django.utils import formats, timezone

from urja.core import regdata
from urja.core.errors import Conflict, DomainError, NotFound
from urja.core.links import public_url
from urja.core.models import Role
from urja.customers.models import Account, AccountStatus, Contact
from urja.customers.rules import normalise_mobile
from urja.network.models import LEVEL_ORDER, Office
from urja.servicedesk import catalogue, clock, handover, sla
from urja.servicedesk.models import (
    CompensationAward,
    EscalationTier,
    Outage,
    OutageAccount,
    RequestEvent,
    RequestType,
    ServiceRequest,
    SopSchedule,
)

FEEDBACK_SALT = "urja.servicedesk.feedback"
PAISE = Decimal("0.01")


def schedule_of(request: ServiceRequest) -> SopSchedule:
    return request.request_type.schedule


def setting(schedule: SopSchedule, name: str, default: Any = None) -> Any:
    return catalogue.settings_of(schedule).get(name, default)


def open_states(schedule: SopSchedule, workflow: str) -> list[str]:
    return list(catalogue.workflow_def(schedule, workflow)["open"])


def is_open(request: ServiceRequest) -> bool:
    return request.status in open_states(schedule_of(request), request.workflow)


def states_of(request: ServiceRequest) -> catalogue.WorkflowStates:
    """The request's workflow states by role (closed, cancelled, paused …), from the catalogue."""
    return catalogue.workflow_states(schedule_of(request), request.workflow)


def _final_states() -> list[str]:
    """Final states of every workflow of the schedule in force (queries across workflows)."""
    return catalogue.states_in_role(catalogue.active_schedule(), "final")


def _closed_states() -> list[str]:
    return catalogue.states_in_role(catalogue.active_schedule(), "closed")


def _local(moment: datetime | None) -> str:
    if moment is None:
        return ""
    return formats.date_format(timezone.localtime(moment), "j M Y, H:i")


def find_office(value) -> Office:
    if isinstance(value, Office):
        return value
    try:
        return Office.objects.get(code=value) if isinstance(value, str) else Office.objects.get(pk=value)
    except Office.DoesNotExist as exc:
        raise DomainError(f"unknown office {value!r}", code="unknown_office") from exc


def owning_office(section: Office, level: str) -> Office:
    """The office at `level` above (or equal to) `section`; the section itself if none is found."""
    if section.level == level:
        return section
    if LEVEL_ORDER.index(section.level) < LEVEL_ORDER.index(level):
        return section  # the office is already above the level asked for
    return section.ancestor_at(level) or section


def holder_office(request_office: Office, office_level: str) -> Office:
    return owning_office(request_office, office_level)


def _timeline(request: ServiceRequest) -> sla.Timeline:
    return sla.Timeline(request.timeline_unit, request.timeline_value)


def _pauses(request: ServiceRequest) -> list[tuple[datetime, datetime | None]]:
    return [(p.started_at, p.ended_at) for p in request.pauses.all()]


def _calendar(request: ServiceRequest):
    return request.office.calendar()


def _tiers(request: ServiceRequest) -> list[EscalationTier]:
    # the loaded catalogue holds every type's tiers (a schedule's rows never change)
    return catalogue.tiers_of(request.request_type)


def clock_state(request: ServiceRequest, *, now: datetime | None = None, never_paused: bool = False) -> sla.ClockState:
    """The request's SLA clock now. `never_paused`: the caller knows it has no pauses (it was
    registered just now), so they are not read."""
    schedule = schedule_of(request)
    pauses = [] if never_paused else [p for p in _pauses(request) if p[0] >= request.clock_start]
    return sla.clock_state(
        start=request.clock_start,
        timeline=_timeline(request),
        calendar=_calendar(request),
        pauses=pauses,
        now=now or clock.now(),
        at_risk_fraction=float(setting(schedule, "at_risk_fraction", 0.75)),
        stopped_at=request.closed_at if request.status in states_of(request).final else None,
    )


def sla_colour(status: str, *, closed: bool = False) -> str:
    return {sla.ON_TRACK: "green", sla.AT_RISK: "amber", sla.BREACHED: "red"}.get(status, "grey")


def holders(office: Office) -> QuerySet:
    from django.contrib.auth import get_user_model

    return get_user_model().objects.filter(staff__office=office, staff__role=Role.MANAGER, is_active=True)


def division_of(office: Office) -> Office | None:
    return office if office.level == "division" else office.ancestor_at("division")


def awards_in_scope(user, *, month: date) -> QuerySet:
    """The awards of `month` on requests the user may see (their account, else the request's office)."""
    from urja.core.scope import scope_records

    qs = CompensationAward.objects.filter(month=month.replace(day=1))
    qs = scope_records(user, qs, account_prefix="account__", office_path_field="request__office_path")
    return qs.select_related("division", "request__request_type", "account__consumer").order_by("-created_at", "-pk")


def compensation_summary(awards: QuerySet) -> list[dict[str, Any]]:
    """Count and total of `awards` by division and request type, in one grouped query (totals in rupees
    and paise: SQLite's sum drops the places)."""
    from django.db.models import Min, Sum

    grouped = (
        awards.order_by()
        .values("division_id", "request__type_code")
        .annotate(
            office=Min("division__name"),
            office_code=Min("division__code"),
            type_name=Min("request__request_type__type_name"),
            n=Count("id"),
            total=Sum("amount"),
        )
    )
    rows = [
        {"division": r["office"] or "", "division_code": r["office_code"] or "", "type": r["type_name"],
         "count": r["n"], "amount": r["total"].quantize(PAISE)}
        for r in grouped
    ]  # fmt: skip
    return sorted(rows, key=lambda r: (r["division"], r["type"]))


def compensation_report(*, month: date, division: Office | None = None, user=None) -> list[dict[str, Any]]:
    """Compensation credited in a month, per division: count, total, by request type (within the
    user's scope when one is given)."""
    qs = (
        awards_in_scope(user, month=month)
        if user is not None
        else CompensationAward.objects.filter(month=month.replace(day=1))
    )
    if division is not None:
        qs = qs.filter(division=division)
    return compensation_summary(qs)


def known_outage(*, account: Account, at: datetime) -> Outage | None:
    """An outage in force on the account's DT or feeder (planned ones once they have begun)."""
    where = Q()
    if account.transformer_id:
        where |= Q(transformer_id=account.transformer_id)
    if account.feeder_id:
        where |= Q(feeder_id=account.feeder_id, transformer__isnull=True)
    if not where:
        return None
    return (
        Outage.objects.filter(where, starts_at__lte=at)
        .filter(status__in=[Outage.Status.ACTIVE, Outage.Status.ANNOUNCED])
        .order_by("-starts_at")
        .first()
    )


# accounts with no supply an outage could take away: awaiting connection (a new connection's pending
# account), disconnected (for arrears, or for good) — they are not told of an outage nor compensated
NO_SUPPLY_STATUSES = frozenset(
    {AccountStatus.PENDING, AccountStatus.TEMPORARILY_DISCONNECTED, AccountStatus.PERMANENTLY_DISCONNECTED}
)


def affected_accounts(*, feeder=None, transformer=None) -> QuerySet:
    """The accounts an outage of the DT (else the feeder) would leave without supply *now* (those
    with a supply to lose: not `NO_SUPPLY_STATUSES`). An outage keeps its own list from the moment it
    is declared: `outage_accounts` / `accounts_of_outage`."""
    qs = (
        Account.objects.filter(transformer=transformer)
        if transformer is not None
        else Account.objects.filter(feeder=feeder)
    )
    return qs.exclude(status__in=sorted(NO_SUPPLY_STATUSES))


def accounts_of_outage(outage: Outage) -> QuerySet:
    """The accounts stored as affected when the outage was declared (whatever the network is now)."""
    return Account.objects.filter(pk__in=OutageAccount.objects.filter(outage=outage).values("account_id"))


def outage_accounts(outage: Outage) -> QuerySet:
    """The outage's rows, each with its account and consumer: own failure and restoration, award."""
    return (
        OutageAccount.objects.filter(outage=outage)
        .select_related("account__consumer", "transformer")
        .order_by("account__consumer_number")
    )


def outage_account_counts(outage_ids) -> dict[int, dict[str, Any]]:
    """{outage: {"affected", "restored", "supplied" (never out), "compensated", "awarded" (the sum)}} of
    the stored rows, in one grouped query."""
    from django.db.models import Q, Sum

    return {
        row["outage_id"]: row
        for row in OutageAccount.objects.filter(outage_id__in=list(outage_ids))
        .values("outage_id")
        .annotate(
            affected=Count("id"),
            restored=Count("id", filter=Q(restored_at__isnull=False)),
            supplied=Count("id", filter=Q(supplied=True)),
            compensated=Count("id", filter=Q(award__gt=0)),
            awarded=Sum("award"),
        )
        .order_by()
    }


def _outage_types() -> list[str]:
    return list(RequestType.objects.filter(outage_check=True).values_list("type_code", flat=True).distinct())


def outage_area(outage: Outage) -> str:
    if outage.transformer_id:
        return f"DT {outage.transformer.code} ({outage.feeder.name if outage.feeder_id else ''})".replace(" ()", "")
    return f"{outage.feeder.name} feeder" if outage.feeder_id else outage.office.name


def grievance_forums(*, division: Office | None = None) -> list[dict[str, Any]]:
    """GRF and ombudsman addresses (data/servicedesk/grievance_forums.toml) for a division."""
    doc = regdata.load("servicedesk/grievance_forums.toml")
    forums = []
    name = (division.name if division else "").lower()
    for forum in doc.get("forum", []):
        divisions = forum.get("divisions", [])
        if forum["kind"] == "ombudsman" or not divisions or not name or any(d.lower() in name for d in divisions):
            forums.append(dict(forum))
    if not any(f["kind"] == "grf" for f in forums):  # unknown division: list every forum
        forums = [dict(f) for f in doc.get("forum", [])]
    return forums


def forums_text(request: ServiceRequest) -> str:
    return "; ".join(
        f"{f['name']}, {f['address']}, tel. {f['phone']}"
        for f in grievance_forums(division=division_of(request.office))
    )


def feedback_token(request: ServiceRequest) -> str:
    return signing.dumps({"r": request.pk, "c": request.reopen_count}, salt=FEEDBACK_SALT, compress=True)


def feedback_url(request: ServiceRequest) -> str:
    return public_url(reverse("servicedesk:feedback", args=[feedback_token(request)]))


def request_from_token(token: str) -> tuple[ServiceRequest, int]:
    try:
        payload = signing.loads(token, salt=FEEDBACK_SALT, max_age=timedelta(days=90))
        request = ServiceRequest.objects.select_related("request_type__schedule", "office").get(pk=payload["r"])
    except (signing.BadSignature, KeyError, ServiceRequest.DoesNotExist) as exc:
        raise NotFound("this feedback link is not valid", code="invalid_feedback_link") from exc
    days = int(setting(schedule_of(request), "feedback_valid_days", 30))
    if request.closed_at and clock.now() > request.closed_at + timedelta(days=days):
        raise Conflict("this feedback link has expired", code="feedback_link_expired")
    return request, int(payload["c"])


NOT_FOUND_MESSAGE = "No request matches that request number and mobile / consumer number."


def find_for_consumer(*, number: str, mobile: str | None = None, consumer_number: str | None = None) -> ServiceRequest:
    """The request if (number, mobile) or (number, consumer number) match; one error otherwise,
    whether or not the number exists (no leak)."""
    if not (mobile or consumer_number):
        raise DomainError("give the mobile number or the consumer number as well", code="verification_required")
    number = (number or "").strip().upper()
    request = (
        ServiceRequest.objects.select_related("request_type__schedule", "account", "office", "consumer")
        .filter(number=number)
        .first()
    )
    ok = False
    if request is not None:
        if mobile:
            wanted = normalise_mobile(mobile) or ""
            mobiles = {request.contact_mobile}
            if request.consumer_id:
                mobiles |= set(
                    Contact.objects.filter(consumer_id=request.consumer_id, kind=Contact.Kind.MOBILE).values_list(
                        "value", flat=True
                    )
                )
            ok = bool(wanted) and wanted in mobiles
        if not ok and consumer_number and request.account_id:
            ok = request.account.consumer_number == consumer_number.strip().upper()
    if not ok:
        raise NotFound(NOT_FOUND_MESSAGE, code="request_not_found")
    return request


def status_view(request: ServiceRequest) -> dict[str, Any]:
    """What any touch point may show the consumer about a request."""
    state = clock_state(request)
    tier = request.escalations.order_by("-level").first()
    return {
        "number": request.number,
        "type": request.request_type.type_name,
        "subtype": request.request_type.name,
        "status": request.status,
        "registered_at": request.registered_at,
        "due_at": state.due,
        "sla_status": state.status,
        "paused": state.paused,
        "closed_at": request.closed_at,
        "resolution": request.resolution_notes if request.status == states_of(request).closed else "",
        "escalated_to": tier.title if tier else "",
        "outage": (
            {
                "number": request.outage.number,
                "reason": request.outage.reason,
                "expected_restore_at": request.outage.expected_restore_at,
            }
            if request.outage_id
            else None
        ),
        "history": [
            {"at": e.at, "status": e.to_status}
            for e in request.events.filter(kind__in=[RequestEvent.Kind.REGISTERED, RequestEvent.Kind.STATUS])
        ],
    }


def track(*, number: str, mobile: str | None = None, consumer_number: str | None = None) -> dict[str, Any]:
    """Status by request number plus mobile or consumer number: portal, API, WhatsApp and SMS bots. A
    shifting lodged at the desk is a change request of connections (`handover`): its number is tracked
    here too, with the same rule and the same answer when nothing matches."""
    try:
        return status_view(find_for_consumer(number=number, mobile=mobile, consumer_number=consumer_number))
    except NotFound:
        found = handover.track(number=number, mobile=mobile, consumer_number=consumer_number)
        if found is None:
            raise
        return found


def queue(
    *,
    user,
    office: Office | None = None,
    team: str = "",
    status: str = "open",
    escalated: bool = False,
    assigned_to_me: bool = False,
) -> QuerySet:
    from urja.core.scope import scope_records

    qs = scope_records(user, ServiceRequest.objects.all(), account_prefix="account__", office_path_field="office_path")
    if office is not None:
        qs = qs.filter(office_path__startswith=office.path)
    if team:
        qs = qs.filter(team=team)
    if status == "open":
        qs = qs.exclude(status__in=_final_states())
    elif status:
        qs = qs.filter(status=status)
    if escalated:
        qs = qs.filter(esc_clock__escalation_level__gt=0)
    if assigned_to_me:
        qs = qs.filter(assigned_to=user)
    return (
        qs.select_related("request_type__schedule", "office", "account", "assigned_to", "esc_clock")
        .prefetch_related("pauses")
        .order_by("due_at", "id")
    )


def sla_compliance(*, user, since: datetime, until: datetime, office: Office | None = None) -> list[dict[str, Any]]:
    """Per request type and owning office: closed within / after the due moment, open breached."""
    from urja.core.permissions import scope_by_office

    qs = scope_by_office(
        user, ServiceRequest.objects.filter(registered_at__gte=since, registered_at__lt=until), "office_path"
    )
    if office is not None:
        qs = qs.filter(office_path__startswith=office.path)
    now = clock.now()
    closed, final = _closed_states(), _final_states()
    rows = (
        qs.values("type_code", "request_type__type_name", "office__name")
        .annotate(
            total=Count("id"),
            closed_in_time=Count("id", filter=Q(status__in=closed, breached=False)),
            closed_late=Count("id", filter=Q(status__in=closed, breached=True)),
            open_breached=Count("id", filter=~Q(status__in=final) & Q(due_at__lt=now)),
            open_total=Count("id", filter=~Q(status__in=final)),
        )
        .order_by("request_type__type_name", "office__name")
    )
    out = []
    for row in rows:
        decided = row["closed_in_time"] + row["closed_late"] + row["open_breached"]
        out.append(
            {
                "type_code": row["type_code"],
                "type": row["request_type__type_name"],
                "office": row["office__name"],
                "total": row["total"],
                "closed_in_time": row["closed_in_time"],
                "closed_late": row["closed_late"],
                "open": row["open_total"],
                "open_breached": row["open_breached"],
                "compliance_pct": round(100 * row["closed_in_time"] / decided, 1) if decided else None,
            }
        )
    return out


def timeline(request: ServiceRequest) -> list[dict[str, Any]]:
    """Events and escalations of a request in time order (the request page)."""
    items = [
        {
            "at": e.at,
            "kind": e.kind,
            "label": e.get_kind_display(),
            "actor": e.actor_label,
            "channel": e.channel,
            "from": e.from_status,
            "to": e.to_status,
            "text": e.text,
        }
        for e in request.events.all()
    ]
    for esc in request.escalations.all():
        holder = holder_office(request.office, esc.office_level)
        items.append(
            {
                "at": esc.created_at,
                "kind": "escalated",
                "label": "Escalated",
                "actor": "system" if esc.reason == "sla" else esc.get_reason_display(),
                "channel": "",
                "from": "",
                "to": "",
                "text": f"Level {esc.level}: {esc.title} ({holder.name})"
                + (f" at {esc.fraction:.0%} of the SLA" if esc.fraction else ""),
            }
        )
    return sorted(items, key=lambda i: i["at"])
