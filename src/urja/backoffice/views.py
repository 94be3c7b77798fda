"""Back-office shell: home, find consumer (HTMX search as you type) and the 360° account page.

Views are thin: reads go through scoped querysets, changes through customers.services.
"""

from decimal import Decimal
from functools import wraps

from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Q
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from urja.core.errors import DomainError
from urja.core.models import AuditEvent, Channel, Role
from urja.core.permissions import ALL_STAFF_ROLES, office_path_of, role_of
from urja.core.scope import collect_channels, scope_accounts
from urja.customers import services as customer_services
from urja.customers.models import Account

from . import navigation
from .forms import ConsentCodeForm, ContactForm, LanguageForm, StatusForm

# Who may change an account's status from the back office (admins always may).
STATUS_CHANGE_ROLES = (Role.MANAGER, Role.ENGINEER, Role.BILLING_OFFICER)
MIN_QUERY = 2
STATS_SECONDS = 300


def staff_required(view):
    """Logged-in staff only: anonymous → login page; consumers and users without a role → 403."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if role_of(request.user) not in ALL_STAFF_ROLES:
            raise PermissionDenied
        return view(request, *args, **kwargs)

    return wrapper


def scoped_accounts(user):
    return scope_accounts(user, Account.objects.all())


def scoped_account_or_404(user, consumer_number: str) -> Account:
    """The account if it is in the user's scope; 404 otherwise — the same answer whether it exists or not."""
    related = ("consumer", "section", "feeder", "transformer", "minigrid_site", "group", "key_account_manager")
    try:
        return scoped_accounts(user).select_related(*related).get(consumer_number=consumer_number.strip().upper())
    except Account.DoesNotExist as exc:
        raise Http404("no such account") from exc


def _scope_stats(user) -> dict:
    key = f"backoffice:stats:{office_path_of(user) or 'all'}"
    stats = cache.get(key)
    if stats is None:
        rows = scoped_accounts(user).values("status").annotate(n=Count("id")).order_by()
        by_status = {row["status"]: row["n"] for row in rows}
        stats = {"total": sum(by_status.values()), "by_status": by_status}
        cache.set(key, stats, STATS_SECONDS)
    return stats


def home(request):
    user = request.user
    if user.is_authenticated and role_of(user) == Role.CONSUMER:
        return redirect(navigation.landing_url(user))  # consumers land on the portal
    return _staff_home(request)


@staff_required
def _staff_home(request):
    user = request.user
    staff = getattr(user, "staff", None)
    return render(
        request,
        "backoffice/home.html",
        {
            "office": staff.office if staff is not None and staff.office_id else None,
            "stats": _scope_stats(user),
            "panels": navigation.home_panels(user),
        },
    )


# Numbers other apps give out, resolved to the account they belong to: (app, model, field, account path).
IDENTIFIERS = (
    ("metering", "Installation", "meter__serial", "account", gettext_lazy("meter serial")),
    ("servicedesk", "ServiceRequest", "number", "account", gettext_lazy("request number")),
    ("payments", "Payment", "receipt_number", "account", gettext_lazy("receipt number")),
    ("connections", "Application", "number", "account", gettext_lazy("application number")),
    ("connections", "ChangeRequest", "number", "account", gettext_lazy("request number")),
    ("connections", "Order", "number", "account", gettext_lazy("order number")),
)


def _identifier_matches(user, query: str) -> list[Account]:
    """Accounts found by a meter serial, request, receipt or application number (exact, indexed)."""
    from django.apps import apps

    token = query.strip().upper()
    if not token or " " in token or len(token) > 40 or not any(ch.isdigit() for ch in token):
        return []  # every serial and number has a digit
    found: list[Account] = []
    for app, model_name, field, account_field, what in IDENTIFIERS:
        try:
            model = apps.get_model(app, model_name)
        except LookupError:
            continue
        if not any(f.name == account_field for f in model._meta.get_fields()):
            continue
        ids = list(
            model.objects.filter(**{f"{field}__iexact": token}).exclude(**{f"{account_field}__isnull": True})
            .values_list(f"{account_field}_id", flat=True)[:5]
        )  # fmt: skip
        if not ids:
            continue
        for account in scoped_accounts(user).select_related("consumer", "section").filter(pk__in=ids):
            account.matched = f"{what} {token}"
            found.append(account)
    return found


def _search(user, query: str, limit: int = 20) -> list[Account]:
    """Consumer number, mobile, name prefix (customers.services.search_accounts); then any word of
    the name ('Behera', 'Ltd'); and meter serial, request, receipt or application number."""
    if len(query.strip()) < MIN_QUERY:
        return []
    queryset = scoped_accounts(user).select_related("consumer", "section")
    accounts = _identifier_matches(user, query)
    seen = {a.pk for a in accounts}
    for account in customer_services.search_accounts(queryset=queryset, query=query, limit=limit):
        if account.pk not in seen:
            accounts.append(account)
            seen.add(account.pk)
    words = [w for w in query.split() if len(w) >= MIN_QUERY and not any(ch.isdigit() for ch in w)][:4]
    if words and len(accounts) < limit:
        condition = Q()
        for word in words:
            condition &= Q(consumer__name__icontains=word)
        more = queryset.filter(condition).exclude(pk__in=seen).order_by("consumer__name")
        for account in more[: limit - len(accounts)]:
            accounts.append(account)
            seen.add(account.pk)
    accounts = accounts[:limit]
    # Primary mobiles of the (at most 20) consumers found: one indexed query.
    from urja.customers.models import Contact

    mobiles = {}
    for contact in Contact.objects.filter(
        consumer_id__in={a.consumer_id for a in accounts}, kind=Contact.Kind.MOBILE
    ).order_by("-is_primary", "id"):
        mobiles.setdefault(contact.consumer_id, contact.value)
    for account in accounts:
        account.mobile = mobiles.get(account.consumer_id, "")
    return accounts


def _records_without_account(user, query: str, limit: int = 20) -> list[dict]:
    """What search finds that has no connection yet, each within the user's scope and linked to its own
    page: an application or a request (a theft report) by its number, a consumer registered without a
    connection by any word of the name."""
    from django.apps import apps

    from urja.core.scope import scope_records
    from urja.customers.selectors import consumers_in_scope

    found: list[dict] = []
    if len(query.strip()) < MIN_QUERY:
        return found
    token = query.strip().upper()
    if " " not in token and len(token) <= 40 and any(ch.isdigit() for ch in token):
        if apps.is_installed("urja.connections"):
            from urja.connections.selectors import applications_in_scope

            for app in applications_in_scope(user).filter(number__iexact=token, account__isnull=True)[:5]:
                url = navigation.safe_reverse("connections:application", kwargs={"number": app.number})
                found.append({"what": _("Application"), "number": app.number, "name": app.consumer.name, "url": url})
        if apps.is_installed("urja.servicedesk"):
            requests = scope_records(
                user,
                apps.get_model("servicedesk", "ServiceRequest").objects.filter(
                    number__iexact=token, account__isnull=True
                ),
                account_prefix="account__",
                office_path_field="office_path",
            )
            for sr in requests[:5]:
                url = navigation.safe_reverse("servicedesk:request", kwargs={"number": sr.number})
                found.append({"what": _("Request"), "number": sr.number, "name": sr.contact_name, "url": url})
    words = [w for w in query.split() if len(w) >= MIN_QUERY and not any(ch.isdigit() for ch in w)][:4]
    if words:
        condition = Q()
        for word in words:
            condition &= Q(name__icontains=word)
        consumers = consumers_in_scope(user).filter(condition, accounts__isnull=True).order_by("name")
        for consumer in consumers[:limit]:
            url = navigation.safe_reverse("customers:consumer", kwargs={"consumer_id": consumer.pk})
            found.append({"what": _("Consumer, no connection yet"), "number": "", "name": consumer.name, "url": url})
    return found[:limit]


@staff_required
def find_consumer(request):
    query = request.GET.get("q", "")[:80]
    accounts = _search(request.user, query)
    context = {
        "q": query,
        "accounts": accounts,
        "records": _records_without_account(request.user, query),
        "searched": len(query.strip()) >= MIN_QUERY,
        "min_query": MIN_QUERY,
    }
    if request.headers.get("HX-Request") and request.headers.get("HX-Target") == "results":
        return render(request, "backoffice/_results.html", context)
    return render(request, "backoffice/find.html", context)


def _audit_trail(account: Account, limit: int = 50):
    return AuditEvent.objects.filter(
        Q(object_type="customers.account", object_id=str(account.pk))
        | Q(object_type="customers.consumer", object_id=str(account.consumer_id))
    ).order_by("-at", "-id")[:limit]


def _account_context(request, account: Account, **forms) -> dict:
    user = request.user
    consumer = account.consumer
    documents = customer_services.document_types()
    categories = {c["code"]: c["name"] for c in customer_services.regdata.load("customers/categories.toml")["category"]}
    supply_types = customer_services.supply_type_table()
    can_change_status = role_of(user) in (*STATUS_CHANGE_ROLES, Role.ADMIN)
    cashier = navigation.safe_reverse("payments:cashier")
    may_take_payment = cashier and "counter" in collect_channels(user)
    offices = account.section.ancestors()
    return {
        "account": account,
        "consumer": consumer,
        "contacts": consumer.contacts.order_by("kind", "-is_primary", "id"),
        "documents": [
            (doc, documents.get(doc.document_code, {}).get("name", doc.document_code))
            for doc in consumer.documents.order_by("-uploaded_at")
        ],
        "category_name": categories.get(account.category, account.category),
        "supply_type_name": getattr(supply_types.get(account.supply_type), "name", account.supply_type),
        "offices": [o for o in offices if o.level != "utility"],
        "other_accounts": scoped_accounts(user).filter(consumer=consumer).exclude(pk=account.pk)[:20],
        "audit": _audit_trail(account),
        "panels": navigation.account_panels(account.consumer_number, user),
        "can_change_status": can_change_status,
        "take_payment_url": f"{cashier}?consumer={account.consumer_number}" if may_take_payment else "",
        "status_form": forms.get("status_form") or StatusForm(current=account.status),
        "contact_form": forms.get("contact_form") or ContactForm(),
        "consent": forms.get("consent"),
        "consent_form": forms.get("consent_form"),
        "language_form": forms.get("language_form") or LanguageForm(initial={"language": consumer.preferred_language}),
    }


@staff_required
def account_360(request, consumer_number: str):
    account = scoped_account_or_404(request.user, consumer_number)
    return render(request, "backoffice/account.html", _account_context(request, account))


def _action(request, consumer_number: str, form_name: str, form, apply):
    """Validate `form`, run `apply(account, data)` (a service call); PRG on success, page with errors otherwise."""
    account = scoped_account_or_404(request.user, consumer_number)
    form = form(account)
    if form.is_valid():
        try:
            message = apply(account, form.cleaned_data)
        except DomainError as exc:
            form.add_error(None, exc.message)
        else:
            messages.success(request, message)
            return redirect("backoffice:account", consumer_number=account.consumer_number)
    context = _account_context(request, account, **{form_name: form})
    return render(request, "backoffice/account.html", context, status=400)


@require_POST
@staff_required
def account_status(request, consumer_number: str):
    if role_of(request.user) not in (*STATUS_CHANGE_ROLES, Role.ADMIN):
        raise PermissionDenied

    def apply(account, data):
        customer_services.change_account_status(
            actor=request.user,
            channel=Channel.BACKOFFICE,
            account=account,
            status=data["status"],
            reason=data["reason"],
        )
        return _("Status changed.")

    return _action(request, consumer_number, "status_form", lambda a: StatusForm(request.POST, current=a.status), apply)


@require_POST
@staff_required
def account_contact(request, consumer_number: str):
    """A new mobile or e-mail for the consumer. When the consumer has a verified mobile the change needs
    their consent (issue 13.5): a code goes to that mobile and the page asks for it
    (account_contact_confirm); with none there is nothing to ask and nothing to take over, and the
    contact is added unverified. Staff never mark a contact verified: a code sent to it does."""
    from urja.channels.services import identity
    from urja.core.auth import client_address
    from urja.customers.selectors import verified_mobile

    account = scoped_account_or_404(request.user, consumer_number)
    form = ContactForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            if mobile := verified_mobile(account.consumer):
                ticket = identity.start_consent(actor=request.user, consumer=account.consumer, kind=data["kind"],
                                                value=data["value"], client=client_address(request))  # fmt: skip
                step = _consent_step(mobile, token=ticket.token, kind=data["kind"], value=data["value"])
                page = _account_context(request, account, consent=step, consent_form=ConsentCodeForm())
                return render(request, "backoffice/account.html", page)
            customer_services.add_contact(actor=request.user, channel=Channel.BACKOFFICE, consumer=account.consumer,
                                          kind=data["kind"], value=data["value"],
                                          whatsapp_opt_in=data["whatsapp_opt_in"])  # fmt: skip
        except DomainError as exc:
            form.add_error(None, exc.message)
        else:
            messages.success(request, _("Contact saved."))
            return redirect("backoffice:account", consumer_number=account.consumer_number)
    return render(request, "backoffice/account.html", _account_context(request, account, contact_form=form), status=400)


@require_POST
@staff_required
def account_contact_confirm(request, consumer_number: str):
    """The consumer's code for the proposed contact: the change is made, or the code step shown again."""
    from urja.channels.services import identity
    from urja.core.auth import client_address

    account = scoped_account_or_404(request.user, consumer_number)
    form = ConsentCodeForm(request.POST)
    if form.is_valid():
        try:
            identity.confirm_consent(actor=request.user, consumer=account.consumer, token=form.cleaned_data["token"],
                                     code=form.cleaned_data["code"], client=client_address(request),
                                     channel=Channel.BACKOFFICE)  # fmt: skip
        except DomainError as exc:
            form.add_error("code", exc.message)
        else:
            messages.success(request, _("Contact saved with the consumer's consent."))
            return redirect("backoffice:account", consumer_number=account.consumer_number)
    from urja.customers.selectors import verified_mobile

    step = _consent_step(verified_mobile(account.consumer), token=request.POST.get("token", "")[:64],
                         kind=request.POST.get("kind", "")[:10], value=request.POST.get("value", "")[:254])  # fmt: skip
    return render(request, "backoffice/account.html",
                  _account_context(request, account, consent=step, consent_form=form), status=400)  # fmt: skip


def _consent_step(mobile: str | None, *, token: str, kind: str, value: str) -> dict:
    """What the code step shows: the proposed contact and, masked, the mobile the code went to (the
    caller has read it: the consumer's verified mobile)."""
    from urja.channels.services import identity

    return {"token": token, "kind": kind, "value": value, "sent_to": identity.masked_mobile(mobile) if mobile else ""}


@require_POST
@staff_required
def account_language(request, consumer_number: str):
    def apply(account, data):
        customer_services.set_preferred_language(
            actor=request.user, channel=Channel.BACKOFFICE, consumer=account.consumer, language=data["language"]
        )
        return _("Preferred language saved.")

    return _action(request, consumer_number, "language_form", lambda a: LanguageForm(request.POST), apply)


# --- key-account portfolio (issue 15 part 6) -------------------------------------------------------

PORTFOLIO_ROLES = (Role.KEY_ACCOUNT_MANAGER, Role.MANAGER, Role.ADMIN)


@staff_required
def portfolio(request):
    from urja.core import listing

    from . import portfolio as pf

    if role_of(request.user) not in PORTFOLIO_ROLES:
        raise PermissionDenied
    from urja.network.selectors import offices_in_scope

    q = request.GET.get("q", "").strip()[:60]
    accounts = pf.key_accounts(request.user).order_by("-sanctioned_load", "consumer_number")
    if q:
        accounts = pf.search(accounts, q)
    filters, offices = listing.read_filters(request), offices_in_scope(request.user)
    accounts, _office = listing.by_office(accounts, filters, offices, "office_path")
    if listing.wants_export(request):
        rows = (
            [a.consumer_number, a.consumer.name, a.group.name if a.group else "", a.sanctioned_load, a.load_unit,
             a.last_bill.units if a.last_bill else "", a.last_bill.recorded_md if a.last_bill else "", a.balance,
             a.open_requests]
            for a in pf.annotate(list(accounts[: listing.EXPORT_LIMIT]))
        )  # fmt: skip
        header = ["consumer_number", "name", "group", "contract_demand", "unit", "last_units_kwh", "last_md", "balance",
                  "open_requests"]  # fmt: skip
        return listing.export_response(request, "key-accounts", header, rows)
    pager = listing.pager(request, accounts)
    pf.annotate(pager["page"].object_list)
    return render(
        request,
        "backoffice/portfolio.html",
        {
            **pager,
            "q": q,
            "filters": filters,
            "offices": offices,
            "groups": pf.groups(request.user),
        },
    )


@staff_required
def group_statement(request, group_id: int):
    from . import portfolio as pf

    if role_of(request.user) not in PORTFOLIO_ROLES:
        raise PermissionDenied
    found = pf.group_statement(request.user, group_id)
    if found is None:
        raise Http404("no such group")
    group, accounts = found
    total = sum((a.balance for a in accounts), Decimal("0"))
    from urja.core import listing

    if listing.wants_export(request):  # the statement as CSV / Excel: the same connections, in scope
        header = ["consumer_number", "name", "address", "last_units_kwh", "last_bill_amount", "last_bill_due",
                  "balance", "open_requests"]  # fmt: skip
        rows = (
            [a.consumer_number, a.consumer.name, a.premises_address, a.last_bill.units if a.last_bill else None,
             a.last_bill.net_payable if a.last_bill else None, a.last_bill.due_date if a.last_bill else None,
             a.balance, a.open_requests]
            for a in accounts
        )  # fmt: skip
        return listing.export_response(request, f"group-{group.pk}-statement", header, rows)
    return render(
        request,
        "backoffice/group.html",
        {"group": group, "accounts": accounts, "total": total, "exports": listing.export_urls(request)},
    )
