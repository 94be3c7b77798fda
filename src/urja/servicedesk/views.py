"""Service-desk web pages: staff queues, request page, CRE desk, manager views; public tracking
and feedback pages. Thin: every change goes through services."""

from datetime import date, datetime, timedelta
from functools import wraps

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from urja.core import boundary, listing
from urja.core.errors import DomainError, NotFound
from urja.core.models import Channel, Role
from urja.core.permissions import role_of, scope_by_office
from urja.core.scope import scope_accounts, scope_offices, scope_records
from urja.core.templatetags.urja_format import when
from urja.customers.models import Account
from urja.network.models import DistributionTransformer, Feeder, Office
from urja.network.selectors import offices_in_scope

from . import catalogue, clock, selectors, services
from .models import CompensationAward, Hearing, Outage, ServiceRequest, StaffNotice

STAFF_ROLES = [r for r in Role.values if r != Role.CONSUMER]
# Channels a CRE can be sitting at when registering on a consumer's behalf.
DESK_CHANNELS = [
    Channel.CALL_CENTRE,
    Channel.CARE_CENTRE,
    Channel.ANUBHAV_KENDRA,
    Channel.SECTION_OFFICE,
    Channel.EMAIL,
    Channel.WHATSAPP,
    Channel.WEBSITE,
    Channel.APP,
    Channel.FIELD_AGENT,
    Channel.CAMP,
]


def staff_required(view):
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if role_of(request.user) not in STAFF_ROLES:
            raise PermissionDenied
        return view(request, *args, **kwargs)

    return wrapper


def _scoped(user):
    return scope_records(
        user, ServiceRequest.objects.all(), account_prefix="account__", office_path_field="office_path"
    )


def _request_or_404(user, number: str) -> ServiceRequest:
    found = (
        _scoped(user)
        .select_related("request_type__schedule", "office", "account__consumer", "assigned_to", "outage")
        .filter(number=number.strip().upper())
        .first()
    )
    if found is None:
        raise Http404("no such request")  # out of scope: the same 404 as a request that does not exist
    return found


def _account_in_scope_or_unknown(user, consumer_number: str) -> None:
    """A request on another office's account is refused with the answer for an unknown number."""
    if not consumer_number:
        return
    from urja.customers.services import validate_consumer_number

    number = validate_consumer_number(consumer_number)
    if not scope_accounts(user, Account.objects.filter(consumer_number=number)).exists():
        raise NotFound(f"no account with consumer number {number}", code="account_not_found")


def _rows(requests, now):
    rows = []
    for r in requests:
        state = services.clock_state(r, now=now)
        rows.append({"r": r, "state": state, "colour": services.sla_colour(state.status)})
    return rows


def _scope_offices(user):
    return scope_by_office(user, Office.objects.all(), "path").order_by("path")


def _staff_in_scope(user):
    path = "" if role_of(user) == Role.ADMIN else (user.staff.office.path if user.staff.office_id else "")
    qs = get_user_model().objects.filter(is_active=True, staff__isnull=False).exclude(staff__role=Role.CONSUMER)
    if path:
        qs = qs.filter(staff__office__path__startswith=path)
    return qs.order_by("username")


QUEUE_SEARCH = (
    "number__iexact",
    "account__consumer_number__startswith",
    "contact_mobile__endswith",
    "contact_name__icontains",
    "account__consumer__name__icontains",
)
QUEUE_HEADER = ["Number", "Registered", "Type", "Request", "Consumer number", "Consumer / contact", "Office", "Team",
                "Status", "Escalation level", "Due", "SLA", "Assigned to", "Closed"]  # fmt: skip


def _queue_cells(r, now) -> list:
    state = services.clock_state(r, now=now)
    who = r.account.consumer.name if r.account_id else r.contact_name
    assigned = (r.assigned_to.get_full_name() or r.assigned_to.get_username()) if r.assigned_to_id else ""
    return [r.number, r.registered_at, r.request_type.type_name, r.request_type.name,
            r.account.consumer_number if r.account_id else "", who, r.office.name, r.team, r.status,
            r.escalation_level, None if state.paused else state.due, state.status, assigned, r.closed_at]  # fmt: skip


@staff_required
def queue(request):
    filters = listing.read_filters(request)
    offices = offices_in_scope(request.user)
    office = offices.filter(code=filters.office).first() if filters.office else None
    team = request.GET.get("team", "")
    status = request.GET.get("status", "open")
    escalated = request.GET.get("escalated") == "1"
    mine = request.GET.get("mine") == "1"
    qs = services.queue(
        user=request.user, office=office, team=team, status=status, escalated=escalated, assigned_to_me=mine
    )
    qs = listing.by_dates(listing.by_search(qs, filters, *QUEUE_SEARCH), filters, "registered_at")
    now = clock.now()
    if listing.wants_export(request):
        rows = (_queue_cells(r, now) for r in qs.select_related("account__consumer").iterator(chunk_size=2000))
        return listing.export_response(request, f"requests-{status or 'all'}", QUEUE_HEADER, rows)
    context = listing.pager(request, qs)
    notices = StaffNotice.objects.filter(user=request.user, read_at__isnull=True)[:10]
    teams = sorted(set(_scoped(request.user).values_list("team", flat=True).distinct()))
    return render(
        request,
        "servicedesk/queue.html",
        {
            **context,
            "rows": _rows(context["page"].object_list, now),
            "filters": filters,
            "offices": offices,
            "teams": teams,
            "office": office,
            "team": team,
            "status": status,
            "escalated": escalated,
            "mine": mine,
            "staff": _staff_in_scope(request.user),
            "notices": notices,
        },
    )


@require_POST
@staff_required
def bulk_assign(request):
    numbers = request.POST.getlist("numbers")
    user = _staff_in_scope(request.user).filter(username=request.POST.get("assignee", "")).first()

    def assign():
        if user is None:
            raise DomainError(_("Choose whom to assign to."), code="unknown_user")
        for number in numbers:
            _request_or_404(request.user, number)
        return services.bulk_assign(actor=request.user, channel=Channel.BACKOFFICE, numbers=numbers, user=user)

    # back to the queue page it came from (its filters), never to another site (`next` is the form's)
    return listing.act_then_back(
        request,
        assign,
        done=lambda done: _("%(n)d request(s) assigned to %(user)s.") % {"n": len(done), "user": user},
        default="servicedesk:queue",
    )


@require_POST
@staff_required
def read_notices(request):
    StaffNotice.objects.filter(user=request.user, read_at__isnull=True).update(read_at=timezone.now())
    return redirect("servicedesk:queue")


@staff_required
def request_detail(request, number: str):
    sr = _request_or_404(request.user, number)
    schedule = sr.request_type.schedule
    machine = catalogue.workflow_machine(schedule, sr.workflow)
    wf = catalogue.workflow_def(schedule, sr.workflow)
    roles = catalogue.workflow_states(schedule, sr.workflow)  # state names by role: the catalogue's, not ours
    targets = [s for s in sorted(machine.allowed(sr.status)) if s not in (roles.closed, roles.reopened, roles.outage)]
    state = services.clock_state(sr)
    return render(
        request,
        "servicedesk/request.html",
        {
            "sr": sr,
            "state": state,
            "colour": services.sla_colour(state.status),
            "timeline": services.timeline(sr),
            "targets": targets,
            "can_close": roles.closed in machine.allowed(sr.status),
            "can_reopen": roles.reopened in machine.allowed(sr.status),
            "paused_state": sr.status in wf.get("paused", []),
            "is_open": services.is_open(sr),
            "staff": _staff_in_scope(request.user),
            "offices": _scope_offices(request.user).exclude(pk=sr.office_id),
            "hearings": sr.hearings.all(),
            "outcomes": [c for c in Hearing.Outcome.choices if c[0] != Hearing.Outcome.PENDING],
            "compensation": CompensationAward.objects.filter(request=sr).first(),
            "forums": services.grievance_forums(division=services.division_of(sr.office))
            if sr.workflow == "dispute"
            else [],
            "feedback": sr.feedback.all(),
        },
    )


@require_POST
@staff_required
def request_action(request, number: str):
    sr = _request_or_404(request.user, number)
    action = request.POST.get("action", "")
    actor, channel, post = request.user, Channel.BACKOFFICE, request.POST
    try:
        if action == "note":
            services.add_note(actor=actor, channel=channel, request=sr, text=post.get("text", ""))
        elif action == "transition":
            services.transition(
                actor=actor, channel=channel, request=sr, to_status=post.get("to", ""), note=post.get("note", "")
            )
        elif action == "pause":
            services.pause_clock(actor=actor, channel=channel, request=sr, reason=post.get("reason", ""))
        elif action == "resume":
            services.resume_clock(actor=actor, channel=channel, request=sr, note=post.get("note", ""))
        elif action == "close":
            services.close_request(
                actor=actor, channel=channel, request=sr, resolution_notes=post.get("resolution_notes", "")
            )
        elif action == "reopen":
            services.reopen_request(actor=actor, channel=channel, request=sr, reason=post.get("reason", ""))
        elif action == "assign":
            user = _staff_in_scope(actor).filter(username=post.get("assignee", "")).first()
            if user is None:
                raise DomainError(_("Choose whom to assign to."), code="unknown_user")
            services.assign(actor=actor, channel=channel, request=sr, user=user)
        elif action == "transfer":
            services.transfer(
                actor=actor, channel=channel, request=sr, office=post.get("office", ""), reason=post.get("reason", "")
            )
        elif action == "escalate":
            services.staff_escalate(actor=actor, channel=channel, request=sr, note=post.get("note", ""))
        elif action == "hearing":
            when = _parse_local(post.get("scheduled_for", ""))
            services.schedule_hearing(
                actor=actor, channel=channel, request=sr, scheduled_for=when, venue=post.get("venue", "")
            )
        elif action == "outcome":
            hearing = sr.hearings.filter(pk=post.get("hearing") or 0).first()
            if hearing is None:
                raise DomainError(_("Choose the hearing."), code="unknown_hearing")
            services.record_hearing_outcome(
                actor=actor,
                channel=channel,
                hearing=hearing,
                outcome=post.get("outcome", ""),
                notes=post.get("notes", ""),
                revision_amount=post.get("revision_amount", "") or None,
            )
        else:
            raise DomainError(_("Unknown action."), code="unknown_action")
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, _("Saved."))
    return redirect("servicedesk:request", number=sr.number)


def _parse_local(value: str) -> datetime:
    try:
        naive = datetime.fromisoformat(value)
    except ValueError as exc:
        raise DomainError(_("Give a date and time."), code="invalid_datetime") from exc
    return timezone.make_aware(naive) if timezone.is_naive(naive) else naive


def _catalogue_choices():
    schedule = catalogue.active_schedule()
    return [
        (f"{t.type_code}/{t.subtype_code}", f"{t.type_name} – {t.name}", t)
        for t in schedule.types.order_by("type_name", "name")
    ]


@staff_required
def desk(request):
    """The CRE's "register complaint" page: consumer number, type, channel, description."""
    form = {
        "consumer_number": request.GET.get("consumer_number", ""),
        "kind": request.GET.get("kind", ""),
        "channel": request.GET.get("channel", Channel.CARE_CENTRE),
        "description": "",
        "mobile": "",
        "office": request.GET.get("office", ""),
    }
    error = None
    # a complaint without an account is owned by an office the staff member chooses, within their scope
    offices = list(_scope_offices(request.user))
    try:
        choices = _catalogue_choices()
    except DomainError as exc:
        choices, error = [], exc
    if request.method == "POST":
        form.update({k: request.POST.get(k, "").strip() for k in form})
        type_code, _sep, subtype = form["kind"].partition("/")
        try:
            _account_in_scope_or_unknown(request.user, form["consumer_number"])
            office = None
            if not form["consumer_number"] and form["office"]:
                # another office's code answers like one that does not exist
                office = next((o for o in offices if o.code == form["office"]), None)
                if office is None:
                    raise DomainError(_("No office %(code)s.") % {"code": form["office"]}, code="unknown_office")
            result = services.register_request(
                actor=request.user,
                channel=form["channel"],
                type_code=type_code,
                subtype_code=subtype or None,
                consumer_number=form["consumer_number"] or None,
                description=form["description"],
                mobile=form["mobile"],
                office=office,
            )
        except DomainError as exc:
            error = exc
        else:
            done = result.handed_over  # a shifting: the change request carries it (servicedesk.handover)
            number, due_at = (done.number, done.due_at) if done else (result.request.number, result.request.due_at)
            due = when(due_at) if due_at else "—"
            if result.supply_check:
                messages.warning(request, result.supply_check.message)
            if not result.created:
                messages.info(
                    request,
                    _("%(number)s is already open for this account; this contact was added to it.")
                    % {"number": number},
                )
            elif done is not None:
                messages.success(
                    request,
                    _(
                        "Registered as change request %(number)s (%(kind)s). Promised by %(due)s; the "
                        "inspection, demand note and field work follow it there."
                    )
                    % {"number": number, "kind": done.label, "due": due},
                )
            else:
                messages.success(
                    request, _("Registered %(number)s. Promised by %(due)s.") % {"number": number, "due": due}
                )
            if done is not None:
                return redirect(done.url)
            sr = result.request
            if result.outage:
                messages.info(request, _("Linked to known outage %(o)s.") % {"o": result.outage.number})
            return redirect("servicedesk:request", number=sr.number)
    return render(
        request,
        "servicedesk/desk.html",
        {
            "form": form,
            "choices": choices,
            "channels": [(c, Channel(c).label) for c in DESK_CHANNELS],
            "offices": offices,
            "error": error,
        },
        status=400 if error and request.method == "POST" else 200,
    )


@staff_required
def account_panel(request, consumer_number: str):
    """HTMX fragment for the 360° account page: the account's requests with their SLA state."""
    accounts = scope_accounts(request.user, Account.objects.all())
    account = accounts.filter(consumer_number=consumer_number.strip().upper()).first()
    if account is None:
        raise Http404("no such account")
    requests_ = (
        ServiceRequest.objects.filter(account=account)
        .select_related("request_type__schedule", "office")
        .prefetch_related("pauses")
        .order_by("-registered_at")[:15]
    )
    return render(
        request,
        "servicedesk/_account_panel.html",
        {"account": account, "rows": _rows(requests_, clock.now())},
    )


@staff_required
def compliance(request):
    days = boundary.window_days(request.GET.get("days") or 30)  # "abc" or 1000000: a 4xx page, not a 500
    now = clock.now()
    filters = listing.read_filters(request)
    offices = offices_in_scope(request.user)
    office = offices.filter(code=filters.office).first() if filters.office else None
    rows = services.sla_compliance(user=request.user, since=now - timedelta(days=days), until=now, office=office)
    if listing.wants_export(request):
        header = ["Type", "Office", "Registered", "Closed in time", "Closed late", "Open", "Open, breached",
                  "Compliance %"]  # fmt: skip
        cells = ([r["type"], r["office"], r["total"], r["closed_in_time"], r["closed_late"], r["open"],
                  r["open_breached"], r["compliance_pct"]] for r in rows)  # fmt: skip
        return listing.export_response(request, f"sla-compliance-{days}-days", header, cells)
    return render(
        request,
        "servicedesk/compliance.html",
        {"rows": rows, "days": days, "filters": filters, "offices": offices, "exports": listing.export_urls(request)},
    )


@staff_required
def compensation(request):
    today = timezone.localdate()
    month_text = request.GET.get("month") or today.strftime("%Y-%m")
    try:
        month = date.fromisoformat(f"{month_text}-01")
    except ValueError:
        month, month_text = today.replace(day=1), today.strftime("%Y-%m")
    filters = listing.read_filters(request)
    offices = offices_in_scope(request.user)
    awards, _office = listing.by_office(
        selectors.awards_in_scope(request.user, month=month), filters, offices, "request__office_path"
    )
    awards = listing.by_search(awards, filters, "request__number__iexact", "account__consumer_number__startswith")
    if listing.wants_export(request):
        header = ["Request", "Type", "Consumer number", "Consumer", "Division", "Amount", "Units late", "Basis",
                  "Capped", "Credited"]  # fmt: skip
        rows = (
            [a.request.number, a.request.request_type.type_name, a.account.consumer_number, a.account.consumer.name,
             a.division.name if a.division_id else "", a.amount, a.units_late, a.basis, a.capped, a.created_at]
            for a in awards.iterator(chunk_size=2000)
        )  # fmt: skip
        return listing.export_response(request, f"compensation-{month_text}", header, rows)
    rows = selectors.compensation_summary(awards)
    total = sum((r["amount"] for r in rows), start=0)
    return render(
        request,
        "servicedesk/compensation.html",
        {**listing.pager(request, awards), "rows": rows, "month": month_text, "total": total,
         "filters": filters, "offices": offices},
    )  # fmt: skip


@staff_required
def outages(request):
    if request.method == "POST":
        post = request.POST
        try:
            # only the network and outages of the user's office: another division's are unknown here
            if post.get("action") == "restore":
                outage = scope_offices(request.user, Outage.objects.all(), "office__path").get(
                    number=post.get("number", "")
                )
                services.restore_outage(actor=request.user, channel=Channel.BACKOFFICE, outage=outage)
            else:
                feeder = (
                    scope_offices(request.user, Feeder.objects.all(), "office__path")
                    .filter(code=post.get("feeder", ""))
                    .first()
                )
                dt = (
                    scope_offices(request.user, DistributionTransformer.objects.all(), "feeder__office__path")
                    .filter(code=post.get("transformer", ""))
                    .first()
                )
                starts = _parse_local(post["starts_at"]) if post.get("starts_at") else None
                ends = _parse_local(post["expected_restore_at"]) if post.get("expected_restore_at") else None
                services.declare_outage(
                    actor=request.user,
                    channel=Channel.BACKOFFICE,
                    kind=post.get("kind", ""),
                    reason=post.get("reason", ""),
                    feeder=feeder,
                    transformer=dt,
                    starts_at=starts,
                    expected_restore_at=ends,
                )
        except (DomainError, Outage.DoesNotExist) as exc:
            messages.error(request, getattr(exc, "message", str(exc)))
        else:
            messages.success(request, _("Saved."))
        return redirect("servicedesk:outages")
    current = scope_by_office(request.user, Outage.objects.all(), "office__path").select_related(
        "feeder", "transformer"
    )
    return render(
        request,
        "servicedesk/outages.html",
        {
            "open": current.filter(status__in=[Outage.Status.ANNOUNCED, Outage.Status.ACTIVE]),
            "recent": current.filter(status__in=[Outage.Status.RESTORED, Outage.Status.CANCELLED])[:20],
            "feeders": scope_by_office(request.user, Feeder.objects.all(), "office__path"),
        },
    )


# --- public pages ------------------------------------------------------------------------------


def track(request):
    """Public: status by request number plus mobile or consumer number (no leak of existence)."""
    number = request.GET.get("number", "").strip()
    who = request.GET.get("who", "").strip()
    result = error = None
    if number:
        try:
            digits = who.replace(" ", "").replace("+", "")
            try:
                if not (digits.isdigit() and len(digits) in (10, 12)):
                    raise DomainError("not a mobile", code="request_not_found")
                result = services.track(number=number, mobile=who)
            except DomainError as exc:
                if exc.code != "request_not_found":
                    raise
                # a 12-digit consumer number looks like a mobile with its country code: asked as both
                result = services.track(number=number, consumer_number=who)
        except DomainError as exc:
            error = services.NOT_FOUND_MESSAGE if exc.code == "request_not_found" else exc.message
    return render(
        request,
        "servicedesk/track.html",
        {"number": number, "who": who, "result": result, "error": error},
        status=404 if error and number else 200,
    )


def feedback(request, token: str):
    try:
        sr, _closure = services.request_from_token(token)
    except DomainError as exc:
        return render(request, "servicedesk/feedback.html", {"error": exc.message}, status=exc.status)
    done = error = None
    if request.method == "POST":
        try:
            done = services.submit_feedback(
                token=token,
                rating=request.POST.get("rating", ""),
                comment=request.POST.get("comment", ""),
                reopen=request.POST.get("reopen") == "1",
            )
        except DomainError as exc:
            error = exc.message
    forums = services.grievance_forums(division=services.division_of(sr.office))
    return render(
        request,
        "servicedesk/feedback.html",
        {"sr": sr, "done": done, "error": error, "forums": forums, "ratings": range(1, 6)},
        status=400 if error else 200,
    )
