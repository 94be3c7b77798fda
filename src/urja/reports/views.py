"""Managers' pages at /reports/ (thin: reads from selectors, state changes through services)."""

from __future__ import annotations

from datetime import date
from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from urja.core.errors import DomainError, NotFound
from urja.core.models import Role
from urja.core.permissions import role_of

from . import exports, selectors

REPORT_ROLES = (Role.MANAGER, Role.ENGINEER, Role.BILLING_OFFICER, Role.ADMIN)
OUTAGE_ROLES = (Role.MANAGER, Role.ENGINEER, Role.ADMIN)  # the network's people (data/reports/navigation.toml)


def roles_required(roles):
    def decorator(view):
        @wraps(view)
        def wrapper(request, *args, **kwargs):
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            if role_of(request.user) not in roles and not request.user.is_superuser:
                raise PermissionDenied
            return view(request, *args, **kwargs)

        return wrapper

    return decorator


manager_required = roles_required(REPORT_ROLES)


def _period(request) -> str:
    period = (request.GET.get("period") or "").strip() or selectors.latest_period()
    try:
        selectors.parse_period(period)
    except DomainError:
        period = selectors.latest_period()
    return period


def _export(request, rows, name: str):
    fmt = request.GET.get("format")
    header, data = exports.balance_rows(rows)
    if fmt == "csv":
        response = HttpResponse(exports.to_csv(header, data), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{name}.csv"'
        return response
    if fmt == "xlsx":
        response = HttpResponse(
            exports.to_xlsx(header, data),
            content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        )
        response["Content-Disposition"] = f'attachment; filename="{name}.xlsx"'
        return response
    return None


@manager_required
def dashboard(request):
    period = _period(request)
    tops = selectors.top_nodes(request.user, period=period)
    if len(tops) == 1:
        return node_page(request, level=tops[0].level, node_id=tops[0].node_id, period=period)
    exported = _export(request, tops, f"energy-{period}")
    if exported:
        return exported
    return render(request, "reports/dashboard.html", {"period": period, "rows": tops, "node": None})


@manager_required
def node(request, level: str, node_id: int):
    return node_page(request, level=level, node_id=node_id, period=_period(request))


def node_page(request, *, level: str, node_id: int, period: str):
    try:
        here = selectors.node(request.user, period=period, level=level, node_id=node_id)
    except NotFound as exc:
        raise Http404(exc.message) from exc
    rows = selectors.children(request.user, period=period, parent=here)
    exported = _export(request, [here, *rows], f"energy-{period}-{level}-{here.code}")
    if exported:
        return exported
    points = selectors.trend(request.user, period=period, level=level, node_id=node_id)
    context = {
        "period": period,
        "node": here,
        "rows": rows,
        "categories": selectors.categories(request.user, period=period, parent=here),
        "feeders": selectors.feeders_under(request.user, period=period, office=here),
        "chart": selectors.trend_chart(points),
        "series": selectors.trend_series(points),
        "trend": points,
        "ancestors": _ancestors(request.user, here, period),
    }
    return render(request, "reports/dashboard.html", context)


def _ancestors(user, here, period):
    chain = []
    current = here
    while current.parent_id:
        try:
            current = selectors.node(user, period=period, level=current.parent_level, node_id=current.parent_id)
        except NotFound:
            break
        chain.append(current)
    return chain[::-1]


@manager_required
def losses(request):
    period = _period(request)
    rows = selectors.ranked_dts(request.user, period=period, limit=100)
    exported = _export(request, rows, f"dt-losses-{period}")
    if exported:
        return exported
    return render(
        request,
        "reports/losses.html",
        {"period": period, "rows": rows, "flagged": selectors.flagged(request.user, period=period)},
    )


def _range(request):
    from datetime import datetime, time, timedelta

    from urja.core.calendars import IST

    today = timezone.localdate()
    try:
        since = date.fromisoformat(request.GET.get("from", "")) if request.GET.get("from") else today.replace(day=1)
        until = date.fromisoformat(request.GET.get("to", "")) if request.GET.get("to") else today
    except ValueError:
        since, until = today.replace(day=1), today
    if until < since:
        since, until = until, since
    start = datetime.combine(since, time(), IST)
    end = datetime.combine(until + timedelta(days=1), time(), IST)
    return since, until, start, end


def _sla(user, start, end) -> list[dict] | None:
    """The service desk's SLA compliance; None when no service-desk schedule is loaded yet."""
    from urja.servicedesk.selectors import sla_compliance

    try:
        return sla_compliance(user=user, since=start, until=end)
    except NotFound:
        return None


def _download(fmt: str, header, rows, name: str) -> HttpResponse:
    if fmt == "csv":
        response = HttpResponse(exports.to_csv(header, rows), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{name}.csv"'
    else:
        response = HttpResponse(
            exports.to_xlsx(header, rows),
            content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        )
        response["Content-Disposition"] = f'attachment; filename="{name}.xlsx"'
    return response


@manager_required
def operations(request):
    from urja.core.scope import scope_accounts
    from urja.customers.models import Account

    from . import operations as ops

    since, until, start, end = _range(request)
    fmt, table = request.GET.get("format"), request.GET.get("table", "reliability")
    accounts = scope_accounts(request.user, Account.objects.all())
    if fmt in ("csv", "xlsx"):
        name = f"{table}-{since}-{until}"
        if table == "sla":
            header = [
                "Type",
                "Office",
                "Registered",
                "Closed in time",
                "Closed late",
                "Open",
                "Open breached",
                "Compliance %",
            ]
            rows = [[r["type"], r["office"], r["total"], r["closed_in_time"], r["closed_late"], r["open"],
                     r["open_breached"], r["compliance_pct"]]
                    for r in _sla(request.user, start, end) or []]  # fmt: skip
        elif table == "connections":
            pending = ops.connections_pending(user=request.user)
            header = ["Status", "Open", "Past connection date", "Past the Rules' cap"]
            rows = [[r["label"], r["open"], r["late"], r["past_cap"]] for r in pending["rows"]]
        elif table == "ageing":
            header = ["Age", "Amount"]
            rows = [[k, v] for k, v in ops.arrears_ageing(accounts=accounts, today=until).items()]
        else:
            name = f"reliability-{since}-{until}"
            feeders = ops.feeder_reliability(feeders=ops.feeders_in_scope(request.user), since=start, until=end)
            header, rows = ops.reliability_export(feeders)
        return _download(fmt, header, rows, name)
    feeders = ops.feeder_reliability(feeders=ops.feeders_in_scope(request.user), since=start, until=end)
    context = {
        "since": since,
        "until": until,
        "feeders": feeders,
        "reliability": ops.scope_reliability(feeders),
        "compensation": ops.compensation_paid(accounts=accounts, since=start, until=end),
        "ageing": ops.arrears_ageing(accounts=accounts, today=until),
        "sla": _sla(request.user, start, end),
        "pending": ops.connections_pending(user=request.user),
        "prepaid": ops.prepaid_summary(accounts=accounts, since=start, until=end),
    }
    return render(request, "reports/operations.html", context)


@roles_required(OUTAGE_ROLES)
def outages(request):
    """Outages by feeder → DT for engineers and managers: in force, planned ahead, recent (`?days=`)."""
    try:
        days = min(max(int(request.GET.get("days", selectors.OUTAGE_BOARD_DAYS)), 1), 90)
    except ValueError:
        days = selectors.OUTAGE_BOARD_DAYS
    groups = selectors.outage_board(request.user, days=days)
    return render(
        request,
        "reports/outages.html",
        {
            "groups": groups,
            "days": days,
            "active": sum(g["active"] for g in groups),
            "affected": sum(g["affected"] for g in groups),
        },
    )


OUTAGE_EXPORT_HEADER = (
    "consumer_number", "name", "dt", "meter", "power_failed", "restored", "minutes_from_outage_start",
    "restore_reported", "never_out", "award",
)  # fmt: skip


@roles_required(OUTAGE_ROLES)
def outage(request, number: str):
    """One outage: how many accounts it affected and how many are back, the complaints linked to it,
    and its affected accounts a page at a time — each with its own failure and restoration, the duration
    from the outage's start and the award; CSV or Excel of every account (core.listing)."""
    from urja.core import listing

    try:
        found = selectors.outage(request.user, number)
    except NotFound as exc:
        raise Http404(exc.message) from exc
    rows = selectors.outage_account_rows(found)
    if listing.wants_export(request):
        # times as export_response writes them (Excel dates, CSV dd-mm-yyyy HH:MM in IST; none: blank)
        def export_rows():
            for row in rows.iterator(chunk_size=2000):
                r = selectors.outage_account_row(found, row)
                yield (r["consumer_number"], r["name"], r["dt"], r["meter"], r["failed_at"], r["restored_at"],
                       r["minutes"], "yes" if row.restore_reported else "no", "yes" if row.supplied else "no",
                       r["award"])  # fmt: skip

        return listing.export_response(request, f"outage-{found.number}-accounts", OUTAGE_EXPORT_HEADER, export_rows())
    context = listing.pager(request, rows)
    context.update(
        outage=found,
        detection=getattr(found, "detection", None),
        summary=selectors.outage_summary(found),
        complaints=selectors.outage_complaints(found),
        accounts=[selectors.outage_account_row(found, row) for row in context["page"].object_list],
    )
    return render(request, "reports/outage.html", context)
