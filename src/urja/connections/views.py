"""Back-office pages of the connections app: the queues (applications by status with SLA colours,
change requests, disconnection and reconnection orders), the registration form and an application's
page with the action of each step. Thin: every change goes through the services; out-of-scope
numbers answer like unknown ones (selectors through core.scope)."""

from functools import wraps

from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from urja.core import listing
from urja.core.errors import DomainError, NotFound
from urja.core.models import AuditEvent, Channel, Role
from urja.core.permissions import require_role, role_of
from urja.customers import selectors as customer_selectors
from urja.customers import services as customers
from urja.customers.selectors import scoped_account
from urja.network.selectors import offices_in_scope
from urja.servicedesk import clock

from . import changes, selectors, services, shifting
from .models import SHIFTING_KINDS, ApplicationStatus, ChangeKind, ChangeStatus, OrderStatus

STAFF_ROLES = [r for r in Role.values if r != Role.CONSUMER]
CHANNELS = [Channel.CARE_CENTRE, Channel.ANUBHAV_KENDRA, Channel.SECTION_OFFICE, Channel.WEBSITE, Channel.CAMP]


def staff_required(view):
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if role_of(request.user) not in STAFF_ROLES:
            raise PermissionDenied
        return view(request, *args, **kwargs)

    return wrapper


def _application_or_404(user, number: str):
    try:
        return selectors.scoped_application(user, number)
    except NotFound:
        raise Http404("no such application") from None


def _filtered(request, qs, *, date_field: str, search: tuple[str, ...]):
    """The list's shared filters (number or consumer, office in scope, date range) and their context."""
    filters = listing.read_filters(request)
    offices = offices_in_scope(request.user)
    qs, _office = listing.by_office(qs, filters, offices, "office_path")
    qs = listing.by_dates(listing.by_search(qs, filters, *search), filters, date_field)
    return qs, {"filters": filters, "offices": offices}


ACCOUNT_SEARCH = ("number__iexact", "account__consumer_number__startswith", "account__consumer__name__icontains")


@staff_required
def queue(request):
    status = request.GET.get("status", "open")
    qs = selectors.applications_in_scope(request.user)
    if status == "open":
        qs = qs.filter(
            status__in=[s for s in ApplicationStatus.values if s not in ("energized", "rejected", "withdrawn")]
        )
    elif status in ApplicationStatus.values:
        qs = qs.filter(status=status)
    search = ("number__iexact", "mobile__endswith", "consumer__name__icontains")
    qs, filtering = _filtered(request, qs, date_field="registered_at", search=search)
    qs = qs.order_by("-registered_at", "-pk")
    if listing.wants_export(request):
        header = ["Number", "Registered", "Applicant", "Mobile", "Section", "Supply type", "Load", "Unit", "Category",
                  "Status", "Mo Bidyut", "Demand note due", "Connection due", "Energized", "SLA"]  # fmt: skip
        rows = (
            [a.number, a.registered_at, a.consumer.name, a.mobile, a.section.name, a.supply_type, a.load, a.load_unit,
             a.category, a.get_status_display(), a.fast_track, a.dn_due_at, a.connection_due_at, a.energized_at,
             services.sla_colour(a)]
            for a in qs.iterator(chunk_size=2000)
        )  # fmt: skip
        return listing.export_response(request, f"applications-{status or 'all'}", header, rows)
    context = listing.pager(request, qs)
    rows = [{"a": a, "colour": services.sla_colour(a)} for a in context["page"]]
    counts = selectors.queue_counts(request.user)
    tabs = [("open", _("Open"), sum(counts.get(s, 0) for s in ("registered", "inspected", "dn_issued", "dn_paid")))]
    tabs += [(value, label, counts.get(value, 0)) for value, label in ApplicationStatus.choices]
    return render(
        request,
        "connections/queue.html",
        {**context, **filtering, "rows": rows, "status": status, "tabs": tabs},
    )


def _documents(post) -> list[services.DocumentIn]:
    found = []
    for code in post.getlist("documents"):
        found.append(services.DocumentIn(code, post.get(f"proof_{code}", ""), post.get(f"number_{code}", "")))
    return found


@staff_required
def register(request):

    applicant_type = request.POST.get("applicant_type") or request.GET.get("applicant_type") or "owner"
    if applicant_type not in services.matrix()["applicant_types"]:
        applicant_type = "owner"
    context = {
        "applicant_types": services.matrix()["applicant_types"],
        "applicant_type": applicant_type,
        "checklist": services.rules.checklist(services.matrix(), applicant_type),
        "sections": selectors.sections_in_scope(request.user),
        "channels": CHANNELS,
        "values": request.POST,
    }
    if request.method == "POST" and request.POST.get("submit"):
        try:
            require_role(request.user, Role.CRE, Role.ENGINEER, Role.MANAGER, Role.FIELD_AGENT)
            app = services.register_application(
                actor=request.user,
                channel=request.POST.get("channel", "care_centre"),
                name=request.POST.get("name", ""),
                mobile=request.POST.get("mobile", ""),
                applicant_type=applicant_type,
                applicant_kind=request.POST.get("applicant_kind", "person"),
                preferred_language=request.POST.get("language", "en"),
                premises_address=request.POST.get("premises_address", ""),
                pincode=request.POST.get("pincode", ""),
                latitude=request.POST.get("latitude", ""),
                longitude=request.POST.get("longitude", ""),
                area_class=request.POST.get("area_class", ""),
                section=request.POST.get("section", ""),
                supply_type=request.POST.get("supply_type", ""),
                load=request.POST.get("load", ""),
                load_unit=request.POST.get("load_unit", "kW"),
                category=request.POST.get("category", ""),
                meter_option=request.POST.get("meter_option", "utility"),
                documents=_documents(request.POST),
            )
        except DomainError as exc:
            context["error"] = exc
            return render(request, "connections/register.html", context, status=exc.status)
        messages.success(request, _("Application %(number)s registered.") % {"number": app.number})
        return redirect("connections:application", number=app.number)
    return render(request, "connections/register.html", context)


@staff_required
def application(request, number: str):
    app = _application_or_404(request.user, number)
    note = getattr(app, "demand_note", None) if hasattr(app, "demand_note") else None
    inspection = getattr(app, "inspection", None) if hasattr(app, "inspection") else None
    history = AuditEvent.objects.filter(object_type="connections.application", object_id=str(app.pk)).order_by("at")
    placing = app.status in ("registered", "dn_paid")  # the inspection's and energization's forms
    return render(
        request,
        "connections/application.html",
        {
            "a": app,
            "note": note,
            "inspection": inspection,
            "colour": services.sla_colour(app),
            "outstanding": selectors.outstanding(app),
            "paused": app.pauses.filter(ended_at__isnull=True).exists(),
            "history": history,
            "documents": app.documents.select_related("document"),
            "escalations": app.escalations.all(),
            "transformers": list(customer_selectors.section_transformers(app.section)) if placing else [],
            "nearest": selectors.nearest_transformer(app) if app.status == "registered" else None,
            "placement": selectors.default_placement(app) if app.status == "dn_paid" else None,
            "cycles": customers.bill_cycle_codes() if app.status == "dn_paid" else [],
        },
    )


@staff_required
@require_POST
def application_action(request, number: str):
    app = _application_or_404(request.user, number)
    action = request.POST.get("action", "")
    post = request.POST
    user = request.user
    try:
        if action == "inspection":
            require_role(user, Role.ENGINEER, Role.MANAGER)
            services.record_inspection(
                actor=user,
                channel="section_office",
                application=app,
                feasible=post.get("feasible") == "yes",
                distance_m=post.get("distance_m", ""),
                right_of_way_issue=bool(post.get("row")),
                extension_needed=bool(post.get("extension")),
                extension_estimate=post.get("extension_estimate", ""),
                notes=post.get("notes", ""),
                transformer=post.get("transformer", ""),
            )
        elif action == "demand_note":
            require_role(user, Role.ENGINEER, Role.MANAGER)
            services.issue_demand_note(actor=user, channel="section_office", application=app)
        elif action == "pay":
            require_role(user, Role.CRE, Role.BILLING_OFFICER, Role.MANAGER)
            services.pay_demand_note(
                actor=user,
                channel="counter",
                application=app,
                idempotency_key=post.get("key", "") or f"dn-page-{app.number}",
                method=post.get("method", "cash"),
            )
        elif action == "energize":
            require_role(user, Role.ENGINEER, Role.MANAGER)
            services.energize(
                actor=user,
                channel="section_office",
                application=app,
                meter_serial=post.get("meter_serial", ""),
                initial_kwh=post.get("initial_kwh", "0") or "0",
                transformer=post.get("transformer", ""),
                bill_cycle=post.get("bill_cycle", ""),
                route=post.get("route", ""),
            )
        elif action == "pause":
            services.pause_clock(actor=user, channel="backoffice", application=app, reason=post.get("reason", ""))
        elif action == "resume":
            services.resume_clock(actor=user, channel="backoffice", application=app)
        elif action == "reject":
            services.reject(
                actor=user,
                channel="backoffice",
                application=app,
                code=post.get("code", "other"),
                reason=post.get("reason", ""),
                withdrawn=bool(post.get("withdrawn")),
            )
        else:
            raise DomainError("unknown action", code="unknown_action")
    except DomainError as exc:
        messages.error(request, f"{exc.message} ({exc.code})")
    else:
        messages.success(request, _("Done."))
    return redirect("connections:application", number=app.number)


@staff_required
def change_queue(request):
    status = request.GET.get("status", "")
    kind = request.GET.get("kind", "")
    qs = selectors.change_requests_in_scope(request.user)
    if status in ChangeStatus.values:
        qs = qs.filter(status=status)
    if kind in ChangeKind.values:
        qs = qs.filter(kind=kind)
    qs, filtering = _filtered(request, qs, date_field="requested_at", search=ACCOUNT_SEARCH)
    qs = qs.order_by("-requested_at", "-pk")
    if listing.wants_export(request):
        header = ["Number", "Requested", "Consumer number", "Consumer", "Request", "Details", "Status", "Charge",
                  "Effective", "Decided", "Reason"]  # fmt: skip
        rows = (
            [c.number, c.requested_at, c.account.consumer_number, c.account.consumer.name, c.get_kind_display(),
             "; ".join(f"{k}: {v}" for k, v in c.details.items()), c.get_status_display(), c.charge, c.effective_on,
             c.decided_at, c.reason]
            for c in qs.iterator(chunk_size=2000)
        )  # fmt: skip
        return listing.export_response(request, f"change-requests-{status or 'all'}", header, rows)
    return render(
        request,
        "connections/changes.html",
        {**listing.pager(request, qs), **filtering, "status": status, "kind": kind,
         "statuses": ChangeStatus.choices, "kinds": ChangeKind.choices, "channels": CHANNELS,
         "shifting_kinds": [str(k) for k in SHIFTING_KINDS],
         "line_kinds": [(k.value, k.label) for k in SHIFTING_KINDS if k != ChangeKind.METER_SHIFTING],
         "requesters": shifting.data()["shifting"]["requesters"]},
    )  # fmt: skip


@staff_required
@require_POST
def change_action(request, number: str):
    try:
        change = selectors.scoped_change_request(request.user, number)
    except NotFound:
        raise Http404("no such request") from None
    try:
        require_role(request.user, Role.MANAGER, Role.ENGINEER, Role.BILLING_OFFICER)
        changes.decide(
            actor=request.user,
            channel="backoffice",
            change=change,
            approve=request.POST.get("decision") == "approve",
            reason=request.POST.get("reason", ""),
        )
    except DomainError as exc:
        messages.error(request, f"{exc.message} ({exc.code})")
    return redirect("connections:changes")


def _change_or_404(user, number: str):
    try:
        return selectors.scoped_change_request(user, number)
    except NotFound:
        raise Http404("no such request") from None


@staff_required
@require_POST
def request_shifting(request):
    """A consumer asks at the counter (or by phone, e-mail, the app) to shift the meter within the
    premises — or a line or DT structure, the consumer or a builder or other affected party through
    their connection: the request, then its page with the next step."""
    kind = request.POST.get("kind", ChangeKind.METER_SHIFTING)
    fields = ("location", "reason") if kind == ChangeKind.METER_SHIFTING else (
        "location", "reason", "requester", "requested_by", "element")  # fmt: skip
    try:
        require_role(request.user, Role.CRE, Role.ENGINEER, Role.MANAGER, Role.FIELD_AGENT)
        try:
            account = scoped_account(request.user, request.POST.get("consumer_number", ""))
        except NotFound as exc:
            raise DomainError(exc.message, code=exc.code, status=404) from exc
        change = changes.request_change(
            actor=request.user,
            channel=request.POST.get("channel", "care_centre"),
            account=account,
            kind=kind if kind in SHIFTING_KINDS else "not_a_shifting",
            details={name: request.POST.get(name, "") for name in fields},
        )
    except DomainError as exc:
        messages.error(request, f"{exc.message} ({exc.code})")
        return redirect("connections:changes")
    messages.success(request, _("Request %(number)s registered.") % {"number": change.number})
    return redirect("connections:change", number=change.number)


@staff_required
def change_detail(request, number: str):
    change = _change_or_404(request.user, number)
    history = AuditEvent.objects.filter(object_type="connections.changerequest", object_id=str(change.pk))
    inspection = getattr(change, "inspection", None)
    is_open = change.status not in (ChangeStatus.APPLIED, ChangeStatus.REJECTED)
    return render(
        request,
        "connections/change.html",
        {
            "c": change,
            "inspection": inspection,
            "note": (change.outcome or {}).get("demand_note"),
            "still_to_pay": shifting.still_to_pay(change) if change.kind in SHIFTING_KINDS else None,
            "is_shifting": change.kind in SHIFTING_KINDS,
            "rules": shifting.kind_rules(change.kind) if change.kind in SHIFTING_KINDS else {},
            "elements": shifting.elements(change.kind, account=change.account)
            if is_open and change.kind in SHIFTING_KINDS and change.kind != ChangeKind.METER_SHIFTING
            else [],
            "late": bool(is_open and change.due_at and change.due_at < clock.now()),
            "escalations": change.escalations.select_related("office").order_by("level"),
            "history": history.order_by("at"),
        },
    )


@staff_required
@require_POST
def change_step(request, number: str):
    """The next step of a shifting: inspection, demand note, payment, field work, rejection."""
    change = _change_or_404(request.user, number)
    post, user = request.POST, request.user
    action = post.get("action", "")
    try:
        if action == "inspection":
            require_role(user, Role.ENGINEER, Role.MANAGER)
            shifting.inspect(
                actor=user,
                channel="section_office",
                change=change,
                feasible=post.get("feasible") == "yes",
                new_location=post.get("new_location", ""),
                latitude=post.get("latitude", ""),
                longitude=post.get("longitude", ""),
                estimate=post.get("estimate", ""),
                notes=post.get("notes", ""),
                element=post.get("element", ""),
                route_length_m=post.get("route_length_m", ""),
                structures=post.get("structures", ""),
            )
        elif action == "demand_note":
            require_role(user, Role.ENGINEER, Role.MANAGER)
            shifting.issue_demand_note(actor=user, channel="section_office", change=change)
        elif action == "pay":
            require_role(user, Role.CRE, Role.BILLING_OFFICER, Role.MANAGER)
            shifting.pay_demand_note(
                actor=user,
                channel="counter",
                change=change,
                idempotency_key=post.get("key", "") or f"shifting-page-{change.number}",
                method=post.get("method", "cash"),
            )
        elif action == "field_work":
            require_role(user, Role.ENGINEER, Role.MANAGER)
            shifting.complete(
                actor=user,
                channel="section_office",
                change=change,
                location=post.get("location", ""),
                latitude=post.get("latitude", ""),
                longitude=post.get("longitude", ""),
                acknowledged_by=post.get("acknowledged_by", ""),
                notes=post.get("work", ""),
                route_length_m=post.get("route_length_m", ""),
                structures=post.get("structures", ""),
            )
        elif action == "reject":
            require_role(user, Role.MANAGER, Role.ENGINEER, Role.BILLING_OFFICER)
            changes.decide(
                actor=user, channel="backoffice", change=change, approve=False, reason=post.get("reason", "")
            )
        else:
            raise DomainError("unknown action", code="unknown_action")
    except DomainError as exc:
        messages.error(request, f"{exc.message} ({exc.code})")
    else:
        messages.success(request, _("Done."))
    return redirect("connections:change", number=change.number)


@staff_required
def order_queue(request):
    status = request.GET.get("status", "open")
    qs = selectors.orders_in_scope(request.user)
    if status == "open":
        qs = qs.filter(status__in=[OrderStatus.OPEN, OrderStatus.SENT])
    elif status in OrderStatus.values:
        qs = qs.filter(status=status)
    qs, filtering = _filtered(request, qs, date_field="created_at", search=ACCOUNT_SEARCH)
    qs = qs.order_by("-created_at", "-pk")
    if listing.wants_export(request):
        header = ["Number", "Created", "Consumer number", "Consumer", "Order", "Reason", "Status", "Remote",
                  "Due", "Done", "Compensation"]  # fmt: skip
        rows = (
            [o.number, o.created_at, o.account.consumer_number, o.account.consumer.name, o.get_kind_display(),
             o.reason, o.get_status_display(), bool(o.command_id), o.due_at, o.done_at, o.compensation]
            for o in qs.iterator(chunk_size=2000)
        )  # fmt: skip
        return listing.export_response(request, f"orders-{status or 'all'}", header, rows)
    return render(
        request,
        "connections/orders.html",
        {**listing.pager(request, qs), **filtering, "status": status, "statuses": OrderStatus.choices},
    )


@staff_required
@require_POST
def order_action(request, number: str):
    try:
        order = selectors.scoped_order(request.user, number)
    except NotFound:
        raise Http404("no such order") from None
    try:
        require_role(request.user, Role.ENGINEER, Role.MANAGER, Role.FIELD_AGENT)
        changes.complete_order(
            actor=request.user,
            channel="section_office",
            order=order,
            photo=request.FILES.get("photo"),
            notes=request.POST.get("notes", ""),
            final_kwh=request.POST.get("final_kwh") or None,
        )
    except DomainError as exc:
        messages.error(request, f"{exc.message} ({exc.code})")
    else:
        messages.success(request, _("Order %(number)s done.") % {"number": order.number})
    return redirect("connections:orders")


def track(request):
    """Public: an application's progress by its number and the applicant's mobile (the same answer for
    an unknown number and a wrong mobile)."""
    found, error = None, None
    number, mobile = request.GET.get("number", ""), request.GET.get("mobile", "")
    if number or mobile:
        try:
            found = selectors.track(number=number, mobile=mobile)
        except NotFound as exc:
            error = exc.message
    return render(
        request,
        "connections/track.html",
        {
            "a": found,
            "error": error,
            "number": number,
            "outstanding": selectors.outstanding(found) if found else None,
            "note": getattr(found, "demand_note", None) if found and hasattr(found, "demand_note") else None,
        },
    )
