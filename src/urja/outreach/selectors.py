"""Read-only queries of outreach. Scope: an event belongs to its office; staff see the events of their
office subtree (an event of another office answers like one that does not exist)."""

from __future__ import annotations

from datetime import date

from django.contrib.auth import get_user_model
from django.db.models import Count, Max, Q, QuerySet

from urja.core import regdata, scope
from urja.network.models import Office

from .models import EventIssue, OutreachEvent

OPEN_ISSUES = (EventIssue.Status.OPEN, EventIssue.Status.IN_PROGRESS)


def rules() -> dict:
    return regdata.load("outreach/events.toml")


def kinds() -> dict[str, dict]:
    return rules()["kinds"]


def events_in_scope(user) -> QuerySet:
    return scope.scope_offices(user, OutreachEvent.objects.select_related("office"), "office_path")


def scoped_event(user, event_id: int) -> OutreachEvent:
    return scope.get_scoped(events_in_scope(user), scope.not_found("event", event_id), pk=event_id)


def issues_in_scope(user) -> QuerySet:
    return scope.scope_offices(
        user, EventIssue.objects.select_related("event", "event__office", "owner", "account"), "event__office_path"
    )


def scoped_issue(user, issue_id: int) -> EventIssue:
    return scope.get_scoped(issues_in_scope(user), scope.not_found("issue", issue_id), pk=issue_id)


def offices_in_scope(user) -> QuerySet:
    return scope.scope_offices(user, Office.objects.all(), "path").order_by("path")


def scoped_office(user, code: str) -> Office:
    return scope.get_scoped(offices_in_scope(user), scope.not_found("office", code), code=(code or "").strip())


def owners_for(user) -> QuerySet:
    """Staff who may own an issue raised in the user's offices: staff of those offices."""
    return scope.staff_in_scope(user, get_user_model().objects.select_related("staff")).order_by("username")


def filter_events(
    queryset: QuerySet,
    *,
    kind: str = "",
    status: str = "",
    office_path: str = "",
    since: date | None = None,
    until: date | None = None,
    q: str = "",
) -> QuerySet:
    if kind:
        queryset = queryset.filter(kind=kind)
    if status:
        queryset = queryset.filter(status=status)
    if office_path:
        queryset = queryset.filter(office_path__startswith=office_path)
    if since:
        queryset = queryset.filter(held_on__gte=since)
    if until:
        queryset = queryset.filter(held_on__lte=until)
    if q:
        queryset = queryset.filter(Q(venue__icontains=q) | Q(partner__icontains=q))
    return queryset.annotate(
        n_issues=Count("issues", distinct=True),
        n_open=Count("issues", filter=Q(issues__status__in=OPEN_ISSUES), distinct=True),
        n_requests=Count("requests", distinct=True),
    )


def filter_issues(
    queryset: QuerySet, *, status: str = "", owner_id: int | None = None, overdue_on: date | None = None, kind: str = ""
) -> QuerySet:
    if status == "open":
        queryset = queryset.filter(status__in=OPEN_ISSUES)
    elif status:
        queryset = queryset.filter(status=status)
    if owner_id:
        queryset = queryset.filter(owner_id=owner_id)
    if overdue_on:
        queryset = queryset.filter(status__in=OPEN_ISSUES, due_on__lt=overdue_on)
    if kind:
        queryset = queryset.filter(event__kind=kind)
    return queryset


def cadence(user, *, today: date) -> list[dict]:
    """For each kind held on a cadence (monthly RWA, quarterly IWA, annual meet): the last one held in
    the user's offices and whether the next is due."""
    held = dict(
        events_in_scope(user)
        .filter(status__in=(OutreachEvent.Status.HELD, OutreachEvent.Status.CLOSED))
        .values("kind")
        .annotate(last=Max("held_on"))
        .values_list("kind", "last")
    )
    rows = []
    for code, kind in kinds().items():
        months = int(kind.get("cadence_months", 0))
        if not months:
            continue
        last = held.get(code)
        due = _add_months(last, months) if last else None
        rows.append(
            {"kind": code, "months": months, "last": last, "next_due": due, "overdue": due is None or due < today}
        )
    return rows


def _add_months(day: date, months: int) -> date:
    month = day.month - 1 + months
    year, month = day.year + month // 12, month % 12 + 1
    import calendar

    return day.replace(year=year, month=month, day=min(day.day, calendar.monthrange(year, month)[1]))


def request_types(kind: str) -> list[dict]:
    """The service desk's request types that may be lodged on the kind's channel (the channel matrix)."""
    from urja.core.errors import NotFound
    from urja.servicedesk import catalogue

    try:
        schedule = catalogue.active_schedule()
    except NotFound:  # no SoP schedule loaded yet
        return []
    column = catalogue.channel_column(schedule, kinds()[kind].get("request_channel", "camp"))
    return [
        {"type_code": t.type_code, "subtype_code": t.subtype_code, "name": f"{t.type_name} – {t.name}"}
        for t in schedule.types.order_by("type_name", "name")
        if column in t.channels
    ]
