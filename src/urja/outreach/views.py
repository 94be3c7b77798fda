"""Outreach pages (/outreach/): the events of the user's offices (filters, 50 a page, CSV) with the
form to plan one and the meetings due; an event's page (attendance, issues raised with owner and due
date, requests registered on the spot, close); the follow-up list of issues (filters, CSV).
Roles: data/outreach/events.toml `roles` (CRE, engineer, manager; the administrator)."""

from __future__ import annotations

from datetime import date

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from urja.core import listing
from urja.core.errors import DomainError, Forbidden, NotFound
from urja.core.labels import label

from . import selectors, services
from .models import EventIssue, OutreachEvent


def _role(request) -> None:
    try:
        services.check_role(request.user)
    except Forbidden as exc:
        raise PermissionDenied(exc.message) from exc


def _scoped(fn):
    try:
        return fn()
    except NotFound as exc:
        raise Http404(exc.message) from exc


def _date_param(value: str) -> date | None:
    try:
        return date.fromisoformat(value.strip()) if value.strip() else None
    except ValueError:
        return None


@login_required
def events(request):
    _role(request)
    get = request.GET
    form = {"kind": "", "office": "", "held_on": "", "venue": "", "partner": ""}
    error = ""
    if request.method == "POST":
        form = {k: request.POST.get(k, "").strip() for k in form}
        try:
            office = selectors.scoped_office(request.user, form["office"])
            event = services.plan_event(
                actor=request.user,
                channel="backoffice",
                kind=form["kind"],
                office=office,
                held_on=form["held_on"],
                venue=form["venue"],
                partner=form["partner"],
            )
        except DomainError as exc:  # an office out of scope reads "no office …", as an unknown code
            error = exc.message
        else:
            messages.success(
                request,
                _("Event planned: %(kind)s on %(day)s.")
                % {"kind": label(event.kind), "day": event.held_on.strftime("%d-%m-%Y")},
            )
            return redirect("outreach:event", event_id=event.pk)
    kind, status, office_code = get.get("kind", ""), get.get("status", ""), get.get("office", "")
    q = get.get("q", "").strip()[:60]
    since, until = _date_param(get.get("from", "")), _date_param(get.get("to", ""))
    offices = selectors.offices_in_scope(request.user)
    office = offices.filter(code=office_code).first() if office_code else None
    qs = selectors.filter_events(
        selectors.events_in_scope(request.user),
        kind=kind if kind in selectors.kinds() else "",
        status=status if status in OutreachEvent.Status.values else "",
        office_path=office.path if office else "",
        since=since,
        until=until,
        q=q,
    ).order_by("-held_on", "-id")
    if listing.wants_export(request):
        header = [
            "id",
            "kind",
            "office",
            "held_on",
            "venue",
            "partner",
            "status",
            "attendance",
            "issues",
            "open_issues",
            "requests",
        ]
        rows = (
            [
                e.pk,
                label(e.kind),
                e.office.name,
                e.held_on,
                e.venue,
                e.partner,
                label(e.status),
                e.attendance,
                e.n_issues,
                e.n_open,
                e.n_requests,
            ]
            for e in qs.iterator(chunk_size=2000)
        )
        return listing.export_response(request, "outreach-events", header, rows)
    today = timezone.localdate()
    return render(
        request,
        "outreach/events.html",
        {
            **listing.pager(request, qs),
            "kinds": list(selectors.kinds()),
            "statuses": OutreachEvent.Status.values,
            "offices": offices,
            "f": {
                "kind": kind,
                "status": status,
                "office": office_code,
                "q": q,
                "from": get.get("from", ""),
                "to": get.get("to", ""),
            },
            "form": form,
            "error": error,
            "cadence": selectors.cadence(request.user, today=today),
            "today": today,
        },
        status=400 if error else 200,
    )


@login_required
def event(request, event_id: int):
    _role(request)
    ev = _scoped(lambda: selectors.scoped_event(request.user, event_id))
    error, action = "", request.POST.get("action", "") if request.method == "POST" else ""
    posted = {k: v.strip() for k, v in request.POST.items() if k != "csrfmiddlewaretoken"}
    if action:
        try:
            done = _act(request, ev, action, posted)
        except NotFound as exc:  # an account or owner out of scope: said like an unknown one, on the form
            error = exc.message
        except DomainError as exc:
            error = exc.message
        else:
            messages.success(request, done)
            return redirect("outreach:event", event_id=ev.pk)
    today = timezone.localdate()
    issues = ev.issues.select_related("owner", "account").order_by("due_on", "id")
    return render(
        request,
        "outreach/event.html",
        {
            "ev": ev,
            "issues": issues,
            "requests": ev.requests.select_related("request").order_by("id"),
            "types": selectors.request_types(ev.kind) if ev.status in services.ACCEPTING else [],
            "owners": selectors.owners_for(request.user)[:200],
            "accepting": ev.status in services.ACCEPTING,
            "posted": posted,
            "action": action,
            "error": error,
            "today": today,
            "channel": selectors.kinds()[ev.kind].get("request_channel", "camp"),
        },
        status=400 if error else 200,
    )


def _act(request, ev: OutreachEvent, action: str, p: dict) -> str:
    user = request.user
    if action == "attendance":
        ev = services.record_attendance(
            actor=user, channel="backoffice", event=ev, attendance=p.get("attendance", ""), notes=p.get("notes", "")
        )
        return _("Attendance recorded: %(n)s.") % {"n": ev.attendance}
    if action == "issue":
        services.raise_issue(
            actor=user,
            channel="backoffice",
            event=ev,
            text=p.get("text", ""),
            owner_username=p.get("owner", ""),
            due_on=p.get("due_on") or None,
            raised_by=p.get("raised_by", ""),
            consumer_number=p.get("consumer_number", ""),
        )
        return _("Issue recorded for follow-up.")
    if action == "request":
        type_code, _sep, subtype = p.get("type", "").partition("/")
        reg = services.register_request(
            actor=user,
            event=ev,
            type_code=type_code,
            subtype_code=subtype or None,
            consumer_number=p.get("consumer_number", ""),
            description=p.get("description", ""),
            mobile=p.get("mobile", ""),
            name=p.get("name", ""),
        )
        if reg.created:
            return _("Request %(number)s registered.") % {"number": reg.number}
        return _("Request %(number)s was already open; the repeat is recorded on it.") % {"number": reg.number}
    if action == "close":
        services.close_event(actor=user, channel="backoffice", event=ev, note=p.get("note", ""))
        return _("Event closed.")
    if action == "cancel":
        services.cancel_event(actor=user, channel="backoffice", event=ev, reason=p.get("reason", ""))
        return _("Event cancelled.")
    raise DomainError(_("Choose an action."), code="invalid_action")


@login_required
def issues(request):
    _role(request)
    get = request.GET
    status, kind, owner = get.get("status", "open"), get.get("kind", ""), get.get("owner", "")
    overdue = get.get("overdue") == "1"
    today = timezone.localdate()
    qs = selectors.filter_issues(
        selectors.issues_in_scope(request.user),
        status=status if status in ("open", *EventIssue.Status.values) else "",
        owner_id=int(owner) if owner.isdigit() else None,
        overdue_on=today if overdue else None,
        kind=kind if kind in selectors.kinds() else "",
    )
    filters = listing.read_filters(request)  # a word of the issue or a consumer number; due dates
    qs = listing.by_search(qs, filters, "text__icontains", "account__consumer_number__startswith")
    qs = listing.by_dates(qs, filters, "due_on", moments=False).order_by("due_on", "id")
    if listing.wants_export(request):
        header = [
            "id",
            "event",
            "kind",
            "held_on",
            "issue",
            "raised_by",
            "consumer_number",
            "owner",
            "due_on",
            "status",
            "resolution",
        ]
        rows = (
            [
                i.pk,
                i.event.venue,
                label(i.event.kind),
                i.event.held_on,
                i.text,
                i.raised_by,
                i.account.consumer_number if i.account_id else "",
                i.owner.get_full_name() or i.owner.username,
                i.due_on,
                label(i.status),
                i.resolution,
            ]
            for i in qs.iterator(chunk_size=2000)
        )
        return listing.export_response(request, "outreach-issues", header, rows)
    return render(
        request,
        "outreach/issues.html",
        {
            **listing.pager(request, qs),
            "f": {"status": status, "kind": kind, "owner": owner, "overdue": overdue},
            "filters": filters,
            "statuses": ["open", *EventIssue.Status.values],
            "kinds": list(selectors.kinds()),
            "owners": selectors.owners_for(request.user)[:200],
            "today": today,
            "open_states": selectors.OPEN_ISSUES,
        },
    )


@login_required
@require_POST
def issue_status(request, issue_id: int):
    _role(request)
    issue = _scoped(lambda: selectors.scoped_issue(request.user, issue_id))
    return listing.act_then_back(
        request,
        lambda: services.set_issue_status(
            actor=request.user,
            channel="backoffice",
            issue=issue,
            to_status=request.POST.get("status", ""),
            note=request.POST.get("note", ""),
        ),
        done=_("Follow-up saved."),
        default="outreach:issues",
    )
