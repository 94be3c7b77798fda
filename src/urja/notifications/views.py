"""Back-office pages of the outbox: the message list and the 360° account panel. Staff only."""

from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.db.models import Count
from django.http import Http404
from django.shortcuts import get_object_or_404, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from urja.core import listing
from urja.core.models import Channel
from urja.core.scope import scope_accounts
from urja.customers.models import Account
from urja.network.selectors import offices_in_scope

from . import services
from .models import OutboxChannel, OutboxStatus
from .selectors import is_staff, scoped_messages, shown_body

PANEL_SIZE = 20


def staff_required(view):
    """Logged-in staff only: anonymous → login page; consumers and users without a role → 403."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if not is_staff(request.user):
            raise PermissionDenied
        return view(request, *args, **kwargs)

    return wrapper


def _rows(queryset):
    rows = list(queryset.select_related("account"))
    for message in rows:
        message.shown_body = shown_body(message)
    return rows


OUTBOX_SEARCH = ("account__consumer_number__iexact", "to__iexact", "consumer__name__icontains")
OUTBOX_HEADER = ["Queued", "Event", "Channel", "To", "Language", "Consumer number", "Subject", "Message", "Status",
                 "Attempts", "Sent", "Last error"]  # fmt: skip


def _outbox_cells(m) -> list:
    return [m.created_at, m.event, m.get_channel_display(), m.to, m.language,
            m.account.consumer_number if m.account_id else "", m.subject, shown_body(m), m.get_status_display(),
            m.attempts, m.sent_at, m.last_error]  # fmt: skip


@staff_required
def outbox(request):
    """The outbox of the user's scope: status and channel, the shared filters (consumer number, address or
    name; office; queued from–to), 50 a page, the filtered list as CSV / Excel (one-time codes hidden)."""
    queryset = scoped_messages(request.user)
    status = request.GET.get("status", "")
    channel = request.GET.get("channel", "")
    filters = listing.read_filters(request)
    offices = offices_in_scope(request.user)
    counts = {row["status"]: row["n"] for row in queryset.values("status").annotate(n=Count("id")).order_by()}
    if status in OutboxStatus.values:
        queryset = queryset.filter(status=status)
    if channel in OutboxChannel.values:
        queryset = queryset.filter(channel=channel)
    queryset, _office = listing.by_office(queryset, filters, offices, "account__office_path")
    queryset = listing.by_dates(listing.by_search(queryset, filters, *OUTBOX_SEARCH), filters, "created_at")
    queryset = queryset.order_by("-created_at", "-id")
    if listing.wants_export(request):
        rows = (_outbox_cells(m) for m in queryset.select_related("account").iterator(chunk_size=2000))
        return listing.export_response(request, f"messages-{status or 'all'}", OUTBOX_HEADER, rows)
    pager = listing.pager(request, queryset)
    pager["page"].object_list = _rows(pager["page"].object_list)
    context = {
        **pager,
        "filters": filters,
        "offices": offices,
        "status": status,
        "channel": channel,
        "statuses": [(value, label, counts.get(value, 0)) for value, label in OutboxStatus.choices],
        "channels": OutboxChannel.choices,
    }
    if request.headers.get("HX-Request") and request.headers.get("HX-Target") == "outbox-rows":
        return render(request, "notifications/_outbox_rows.html", context)
    return render(request, "notifications/outbox.html", context)


@staff_required
def account_panel(request, consumer_number: str):
    accounts = scope_accounts(request.user, Account.objects.all())
    account = accounts.filter(consumer_number=consumer_number.strip().upper()).first()
    if account is None:
        raise Http404("no such account")
    rows = (
        scoped_messages(request.user).filter(account=account)
        | scoped_messages(request.user).filter(account__isnull=True, consumer_id=account.consumer_id)
    ).order_by("-created_at", "-id")[:PANEL_SIZE]
    return render(
        request, "notifications/_account_panel.html", {"account": account, "rows": _rows(rows), "limit": PANEL_SIZE}
    )


@require_POST
@staff_required
def requeue(request, pk: int):
    message = get_object_or_404(scoped_messages(request.user), pk=pk)
    return listing.act_then_back(
        request,
        lambda: services.requeue(actor=request.user, channel=Channel.BACKOFFICE, message=message),
        done=_("Message queued again."),
        default="notifications:outbox",
    )
