"""The consumer portal (/portal/): sign-in by mobile number and one-time code, the account picker, and
the consumer's own bills, payments, usage, prepaid wallet, complaints and contact details.

Every page works without JavaScript (plain forms and links). Every read goes through core.scope with
the consumer's login ("own" accounts), so another consumer's bill, receipt or request answers 404
exactly like one that does not exist. State changes are the services' (channels, payments,
servicedesk, customers); these views only translate forms to calls.
"""

from decimal import Decimal
from functools import wraps

from django.contrib.auth import login as auth_login
from django.contrib.auth import logout as auth_logout
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from urja.billing import documents, ledger
from urja.billing.models import Bill
from urja.billing.selectors import scoped_bill
from urja.channels.services import identity, otp
from urja.core import regdata
from urja.core.auth import TooManyAttempts, client_address
from urja.core.errors import DomainError
from urja.core.models import Role
from urja.core.permissions import role_of
from urja.core.scope import account_rule, scope_accounts
from urja.customers.models import Account, Consumer
from urja.customers.services import set_preferred_language
from urja.network.models import CareCentre
from urja.payments import gateways
from urja.payments import services as payments
from urja.payments.api import payments_in_scope
from urja.payments.models import GatewayOrder, PaymentStatus
from urja.payments.selectors import upi_intent

from . import auth, selectors, services

SESSION_ACCOUNT = "portal_account"
SESSION_TICKET = "portal_otp"
SESSION_CANDIDATES = "portal_candidates"
SESSION_APPLICANT = "portal_applicant"  # the proven mobile (E.164) of an applicant without an account
LANGUAGES = ("en", "hi", "or")


def _language(request) -> str:
    code = translation.get_language() or "en"
    return code if code in LANGUAGES else "en"


def _activate(response, language: str):
    """Remember the language for the next pages (Django's language cookie)."""
    from django.conf import settings

    response.set_cookie(settings.LANGUAGE_COOKIE_NAME, language, max_age=365 * 24 * 3600, samesite="Lax")
    return response


def consumer_required(view):
    """The signed-in consumer's current account as `request.portal_account` (the only one, or the one
    picked); staff and anonymous callers go to the sign-in page."""

    @wraps(view)
    def wrapped(request, *args, **kwargs):
        if role_of(request.user) != Role.CONSUMER:
            return redirect(f"{reverse('portal:login')}?next={request.path}")
        # the consumer comes with the account (every page names them); the section office does not: no
        # page a consumer opens every time shows it (its 12 columns were a fifth of this read's CPU)
        accounts = scope_accounts(request.user, Account.objects.select_related("consumer"))
        number = request.session.get(SESSION_ACCOUNT) or ""
        if number:  # picked before in this session: the account alone, by its number (still in scope)
            if account_rule(request.user) == "own":  # the consumer's own: by a statement built once
                account = selectors.picked_account(request.user.pk, number)
            else:
                account = accounts.filter(consumer_number=number).first()
            if account is not None:
                request.portal_account, request.portal_applicant = account, ""
                return view(request, *args, **kwargs)
        # none picked yet (or no longer in scope): the only account, else the picker. Whether there is
        # another to change to is the home's to ask, afresh on each visit (selectors.account_summary).
        mine = list(accounts.order_by("consumer_number")[:2])
        if len(mine) != 1:
            return redirect("portal:accounts")
        account = mine[0]
        request.session[SESSION_ACCOUNT] = account.consumer_number
        request.portal_account, request.portal_applicant = account, ""
        return view(request, *args, **kwargs)

    return wrapped


def landing(request):
    """Signed in: the consumer's home. Otherwise the contact card and the sign-in form."""
    if role_of(request.user) == Role.CONSUMER:
        return dashboard(request)
    if request.session.get(SESSION_APPLICANT):
        return redirect("portal:connections")
    channels = regdata.load("portal/contact_channels.toml")
    centres = CareCentre.objects.select_related("office").order_by("office__path", "name")
    return render(request, "portal/landing.html", {"channels": channels, "centres": centres})


# --- sign-in ------------------------------------------------------------------------------------


def login(request):
    """Step 1: the mobile number. The same answer whether or not the number is registered."""
    error, status = None, 200
    if request.method == "POST":
        mobile = request.POST.get("mobile", "")
        try:
            ticket = services.start_sign_in(mobile=mobile, client=client_address(request), language=_language(request))
        except (TooManyAttempts, otp.ResendTooSoon) as exc:
            error, status = _throttle_message(exc), 429
        except DomainError:
            error, status = _("Enter a valid 10-digit Indian mobile number."), 400
        else:
            request.session[SESSION_TICKET] = {"token": ticket.token, "mobile": identity.normalise_mobile(mobile)}
            return redirect("portal:login_code")
    return render(request, "portal/login.html", {"error": error, "values": request.POST}, status=status)


def _throttle_message(exc) -> str:
    if isinstance(exc, TooManyAttempts):
        minutes = max(1, -(-exc.retry_after // 60))
        return _("Too many wrong codes. For your security, try again in %(minutes)s minute(s).") % {"minutes": minutes}
    return _("A code was sent a moment ago. You can ask for a new one in %(seconds)s seconds.") % {
        "seconds": exc.retry_after
    }


def _masked(mobile: str) -> str:
    return f"{mobile[:3]} ••••• {mobile[-3:]}" if len(mobile) > 6 else mobile


def login_code(request):
    """Step 2: the six-digit code (or a new one after the cool-down)."""
    pending = request.session.get(SESSION_TICKET)
    if not pending:
        return redirect("portal:login")
    error, status = None, 200
    if request.method == "POST" and "resend" in request.POST:
        try:
            ticket = services.start_sign_in(
                mobile=pending["mobile"], client=client_address(request), language=_language(request)
            )
            request.session[SESSION_TICKET] = {**pending, "token": ticket.token}
        except (TooManyAttempts, otp.ResendTooSoon) as exc:
            error, status = _throttle_message(exc), 429
    elif request.method == "POST":
        try:
            who = services.finish_sign_in(
                token=pending["token"], code=request.POST.get("code", ""), client=client_address(request)
            )
        except TooManyAttempts as exc:
            error, status = _throttle_message(exc), 429
        except otp.WrongCode:
            error, status = _("The code is wrong or has expired. Check the SMS or ask for a new code."), 400
        else:
            del request.session[SESSION_TICKET]
            if who.applicant:
                return _applicant_signed_in(request, who.applicant)
            return _signed_in(request, who.consumers)
    context = {"error": error, "mobile": _masked(pending["mobile"])}
    return render(request, "portal/login_code.html", context, status=status)


def _applicant_signed_in(request, mobile: str):
    """A number no consumer has: the applicant's session (no login) sees their applications only."""
    auth_logout(request)  # a new session: nothing of an earlier sign-in carries over
    request.session[SESSION_APPLICANT] = mobile
    return redirect("portal:connections")


def _signed_in(request, consumers: list[Consumer]):
    request.session.pop(SESSION_APPLICANT, None)
    if len(consumers) == 1:
        user = identity.user_for(consumers[0])
        auth_login(request, user, backend=auth.PATH)
        response = redirect("portal:home")
        from django.conf import settings

        if settings.LANGUAGE_COOKIE_NAME in request.COOKIES:
            return response  # the language the consumer is reading in stays
        return _activate(response, consumers[0].preferred_language or "en")
    # several consumers share the number: the picker lists their accounts; picking one signs in as it
    request.session[SESSION_CANDIDATES] = [c.pk for c in consumers]
    return redirect("portal:accounts")


def accounts(request):
    """Pick the account to work with: the signed-in consumer's accounts, or — when the number belongs
    to several consumers — the accounts of each (picking one signs in as its consumer)."""
    candidates = request.session.get(SESSION_CANDIDATES) or []
    if role_of(request.user) == Role.CONSUMER:
        rows = scope_accounts(request.user, Account.objects.select_related("consumer"))
    elif candidates:
        rows = Account.objects.filter(consumer_id__in=candidates).select_related("consumer")
    else:
        return redirect("portal:login")
    rows = rows.order_by("consumer__name", "consumer_number")
    if request.method == "POST":
        account = rows.filter(consumer_number=request.POST.get("account", "")).first()
        if account is None:
            raise Http404
        if role_of(request.user) != Role.CONSUMER or account.consumer.user_id != request.user.pk:
            user = identity.user_for(account.consumer)
            auth_login(request, user, backend=auth.PATH)
        request.session[SESSION_ACCOUNT] = account.consumer_number
        return redirect("portal:home")
    return render(request, "portal/accounts.html", {"accounts": rows})


@require_POST
def logout(request):
    auth_logout(request)
    return redirect("portal:home")


# --- the account -----------------------------------------------------------------------------------


@consumer_required
def dashboard(request):
    account = request.portal_account
    summary = selectors.account_summary(account)
    return render(request, "portal/home.html", {"account": account, **summary})


@consumer_required
def bills(request):
    account = request.portal_account
    rows = selectors.bills(account, limit=24)
    return render(request, "portal/bills.html", {"account": account, "bills": rows})


def _own_bill(request, bill_number: str) -> Bill:
    try:
        bill = scoped_bill(request.user, bill_number)
    except DomainError as exc:
        raise Http404 from exc
    return bill


@consumer_required
def bill(request, bill_number: str):
    """The bill document in the consumer's language (or ?lang=), with the English copy linked beside."""
    bill = _own_bill(request, bill_number)
    language = request.GET.get("lang") or _language(request)
    return HttpResponse(documents.render_html(bill, language if language in LANGUAGES else "en"))


@consumer_required
def bill_pdf(request, bill_number: str):
    bill = _own_bill(request, bill_number)
    language = request.GET.get("lang") or _language(request)
    try:
        data = documents.render_pdf(bill, language if language in LANGUAGES else "en")
    except DomainError as exc:  # no PDF engine on this machine: the HTML copy prints the same
        return HttpResponse(exc.message, status=503, content_type="text/plain")
    response = HttpResponse(data, content_type="application/pdf")
    response["Content-Disposition"] = f'inline; filename="bill-{bill.bill_number}.pdf"'
    return response


@consumer_required
def usage(request):
    account = request.portal_account
    return render(request, "portal/usage.html", {"account": account, "chart": selectors.usage_chart(account)})


@consumer_required
def payments_list(request):
    account = request.portal_account
    rows = (
        payments_in_scope(request.user)
        .filter(account=account, status=PaymentStatus.POSTED)
        .order_by("-received_at")[:50]
    )
    return render(request, "portal/payments.html", {"account": account, "payments": rows})


@consumer_required
def pay(request):
    """Pay the balance (or another amount): card / net banking through the gateway's hosted page, or UPI
    (intent link and QR). The order is the account's; the receipt follows the gateway's callback."""
    account = request.portal_account
    due = max(ledger.balance(account=account), Decimal("0"))
    error = None
    if request.method == "POST":
        channel = "upi" if request.POST.get("method") == "upi" else "online"
        try:
            order = payments.create_order(
                consumer_number=account.consumer_number,
                amount=request.POST.get("amount", ""),
                channel=channel,
                gateway=gateways.default_gateway(),
            )
        except DomainError as exc:
            error = exc.message
        else:
            return redirect("portal:order", reference=order.reference)
    return render(request, "portal/pay.html", {"account": account, "due": due, "error": error})


@consumer_required
def order(request, reference: str):
    """An order of this account: where to pay it (gateway page, UPI link and QR) and, once the gateway's
    callback came, the receipt."""
    order = (
        GatewayOrder.objects.select_related("payment")
        .filter(reference=reference.strip().upper(), account=request.portal_account)
        .first()
    )
    if order is None:
        raise Http404
    intent = upi_intent(order)
    context = {
        "account": request.portal_account,
        "order": order,
        "upi_intent": intent,
        "qr": documents.qr_svg_data_uri(intent),
    }
    if order.status == GatewayOrder.Status.CREATED:
        try:  # the gateway's hosted checkout (the aggregator's order is created on the first visit)
            order_url = reverse("portal:order", args=[order.reference])
            context["checkout"] = gateways.get_gateway(order.gateway).checkout_url(order, return_url=order_url)
        except DomainError as exc:
            context["error"] = exc.message
    return render(request, "portal/order.html", context)


# --- profile: language and contacts ---------------------------------------------------------------------------


@consumer_required
def profile(request):
    consumer = request.portal_account.consumer
    error, status = None, 200
    pending = request.session.get("portal_contact")
    if request.method == "POST":
        action = request.POST.get("action")
        try:
            if action == "language":
                language = request.POST.get("language", "")
                set_preferred_language(actor=request.user, channel="website", consumer=consumer, language=language)
                translation.activate(language)
                return _activate(redirect("portal:profile"), language)
            if action == "contact":
                kind = request.POST.get("kind", "")
                ticket = identity.start_contact_change(
                    consumer=consumer, kind=kind, value=request.POST.get("value", ""), client=client_address(request)
                )
                request.session["portal_contact"] = {"token": ticket.token, "kind": kind}
                return redirect("portal:profile")
            if action == "verify" and pending:
                identity.finish_contact_change(
                    consumer=consumer, token=pending["token"], code=request.POST.get("code", ""),
                    client=client_address(request),
                )  # fmt: skip
                del request.session["portal_contact"]
                return redirect("portal:profile")
        except (TooManyAttempts, otp.ResendTooSoon) as exc:
            error, status = _throttle_message(exc), 429
        except otp.WrongCode:
            error, status = _("The code is wrong or has expired. Check the SMS or ask for a new code."), 400
        except DomainError as exc:
            error, status = exc.message, 400
    contacts = consumer.contacts.order_by("kind", "-is_primary", "value")
    context = {"account": request.portal_account, "consumer": consumer, "contacts": contacts, "pending": pending,
               "error": error}  # fmt: skip
    return render(request, "portal/profile.html", context, status=status)


# --- complaints and requests (channel matrix: what the website may lodge) ---------------------------------


def _own_request(request, number: str):
    from urja.servicedesk.models import ServiceRequest

    found = scope_accounts(
        request.user, ServiceRequest.objects.select_related("request_type", "office", "outage"), "account__"
    ).filter(number=number.strip().upper(), account=request.portal_account)
    item = found.first()
    if item is None:
        raise Http404
    return item


@consumer_required
def complaints(request):
    """The account's requests and complaints, and the form to lodge one of the types the channel
    matrix allows on the website."""
    from urja.servicedesk.services import register_request

    account = request.portal_account
    types = selectors.web_request_types()
    error, status = None, 200
    if request.method == "POST":
        code = request.POST.get("type", "")
        chosen = next((t for t in types if f"{t.type_code}/{t.subtype_code}" == code), None)
        if chosen is None:
            error, status = _("Choose what your request is about."), 400
        else:
            try:
                reg = register_request(
                    actor=request.user,
                    channel="website",
                    type_code=chosen.type_code,
                    subtype_code=chosen.subtype_code,
                    account=account,
                    description=request.POST.get("description", "")[:2000],
                    language=_language(request),
                )
            except DomainError as exc:
                error, status = exc.message, 400
            else:
                return redirect("portal:complaint", number=reg.request.number)
    rows = selectors.requests_of(account)
    context = {"account": account, "types": types, "requests": rows, "error": error}
    return render(request, "portal/complaints.html", context, status=status)


@consumer_required
def complaint(request, number: str):
    from urja.servicedesk import selectors as desk

    item = _own_request(request, number)
    view = desk.status_view(item)
    feedback = None
    if item.status == desk.states_of(item).closed:
        feedback = reverse("servicedesk:feedback", args=[desk.feedback_token(item)])
    context = {"account": request.portal_account, "r": item, "view": view, "timeline": desk.timeline(item),
               "feedback": feedback}  # fmt: skip
    return render(request, "portal/complaint.html", context)


def applicant_or_consumer(view):
    """A signed-in consumer (as consumer_required) or an applicant's session (a mobile proven by a
    sign-in code, no account): `request.portal_account` is None and `request.portal_applicant` the
    number. Anyone else goes to the sign-in page."""

    @wraps(view)
    def wrapped(request, *args, **kwargs):
        if role_of(request.user) == Role.CONSUMER:
            return consumer_required(view)(request, *args, **kwargs)
        mobile = request.session.get(SESSION_APPLICANT)
        if not mobile or request.user.is_authenticated:
            return redirect(f"{reverse('portal:login')}?next={request.path}")
        request.portal_account, request.portal_applicant = None, mobile
        return view(request, *args, **kwargs)

    return wrapped


@applicant_or_consumer
def connections(request):
    """The new-connection applications of the consumer (or of the applicant's number), each with its
    tracking page (connections app)."""
    if request.portal_account is None:
        rows = selectors.applications_of_mobile(request.portal_applicant)
    else:
        rows = selectors.applications_of(request.portal_account.consumer)
    context = {"account": request.portal_account, "applicant": request.portal_applicant, "applications": rows}
    return render(request, "portal/connections.html", context)


# --- new connection: apply and track (connections app's services) --------------------------------------------

AREA_CLASSES = ("municipal", "metro", "rural", "hilly_rural")
SUPPLY_TYPES = ("lt_1ph", "lt_3ph", "ht", "temporary")
CATEGORIES = ("domestic", "general_purpose", "irrigation", "industrial")


def _own_application(request, number: str):
    """One of the caller's applications (the consumer's, or those lodged with the applicant's number);
    another's answers 404 exactly like one that does not exist."""
    item = selectors.own_application(
        number=number,
        consumer=request.portal_account.consumer if request.portal_account is not None else None,
        mobile=request.portal_applicant,
    )
    if item is None:
        raise Http404
    return item


def _mobile_of(consumer) -> str:
    contact = consumer.contacts.filter(kind="mobile").order_by("-verified", "-is_primary", "id").first()
    return contact.value if contact else ""


@applicant_or_consumer
def apply(request):
    """A new-connection application lodged on the website (the channel matrix's `website` column):
    the checklist of the applicant type, typed proofs, premises and geo point, supply, load, category,
    urban or rural. A consumer applies as themself, in their account's section; an applicant gives
    their name and picks the section office, and the application carries the number they proved.
    The connections app checks everything; errors come back on the form."""
    from urja.connections import rules as conn_rules
    from urja.connections import services as conn

    account = request.portal_account
    types = conn.matrix()["applicant_types"]
    applicant_type = request.POST.get("applicant_type") or request.GET.get("applicant_type") or "owner"
    if applicant_type not in types:
        applicant_type = "owner"
    context = {
        "account": account,
        "applicant": request.portal_applicant,
        "sections": selectors.section_offices() if account is None else (),
        "applicant_types": types,
        "applicant_type": applicant_type,
        "checklist": conn_rules.checklist(conn.matrix(), applicant_type),
        "area_classes": AREA_CLASSES,
        "supply_types": SUPPLY_TYPES,
        "categories": CATEGORIES,
        "values": request.POST,
    }
    if request.method == "POST" and request.POST.get("submit"):
        documents_in = [
            conn.DocumentIn(
                code,
                request.POST.get(f"proof_{code}", ""),
                request.POST.get(f"number_{code}", ""),
                request.FILES.get(f"file_{code}"),
            )
            for code in request.POST.getlist("documents")
        ]
        if account is not None:
            consumer, actor = account.consumer, request.user
            who = {"name": consumer.name, "mobile": _mobile_of(consumer), "section": account.section}
        else:  # an applicant: a new consumer is registered with the application (connections app)
            consumer, actor = None, None
            section = next((s for s in context["sections"] if str(s.pk) == request.POST.get("section")), None)
            if section is None:
                context["error"] = _("Choose the section office of the premises.")
                return render(request, "portal/apply.html", context, status=400)
            who = {"name": request.POST.get("name", "")[:200], "mobile": request.portal_applicant, "section": section}
        try:
            app = conn.register_application(
                actor=actor,
                channel="website",
                applicant_type=applicant_type,
                preferred_language=_language(request),
                premises_address=request.POST.get("premises_address", "")[:500],
                pincode=request.POST.get("pincode", "")[:6],
                latitude=request.POST.get("latitude", ""),
                longitude=request.POST.get("longitude", ""),
                area_class=request.POST.get("area_class", ""),
                supply_type=request.POST.get("supply_type", ""),
                load=request.POST.get("load", ""),
                category=request.POST.get("category", ""),
                documents=documents_in,
                consumer=consumer,
                **who,
            )
        except DomainError as exc:
            context["error"] = exc.message
            return render(request, "portal/apply.html", context, status=400)
        return redirect("portal:application", number=app.number)
    return render(request, "portal/apply.html", context)


@applicant_or_consumer
def application(request, number: str):
    """One of the caller's applications: its stage, timeline, the demand note and — while it is
    unpaid — paying it through the gateway (an order on the application's pending account; the
    gateway's callback posts the payment, and the 60 s sweep of the connections app moves the
    application on). Receipts of what was paid are linked. A GET changes nothing."""
    from urja.connections import services as conn

    app = _own_application(request, number)
    outstanding = conn.outstanding(app)
    if request.method == "POST":
        if outstanding <= 0 or app.account_id is None or app.status != "dn_issued":
            return render(request, "portal/application.html", _application_context(request, app, outstanding,
                          _("Nothing to pay on this application now.")), status=400)  # fmt: skip
        try:
            order = payments.create_order(
                consumer_number=app.account.consumer_number,
                amount=str(outstanding),
                channel="online",
                gateway=gateways.default_gateway(),
            )
            checkout = gateways.get_gateway(order.gateway).checkout_url(
                order, return_url=reverse("portal:application", args=[app.number])
            )
        except DomainError as exc:
            return render(request, "portal/application.html",
                          _application_context(request, app, outstanding, exc.message), status=400)  # fmt: skip
        return redirect(checkout)
    return render(request, "portal/application.html", _application_context(request, app, outstanding, None))


@applicant_or_consumer
def receipt(request, number: str):
    """A receipt of the consumer's (any of their accounts), or — for an applicant — of a payment on the
    pending account of one of their applications (the demand note paid online)."""
    if request.portal_account is not None:
        found = payments_in_scope(request.user)
    else:
        found = selectors.applicant_payments(request.portal_applicant)
    payment = found.filter(receipt_number=number.strip().upper()).first()
    if payment is None:
        raise Http404
    verify = f"{reverse('payments:verify')}?number={payment.receipt_number}&code={payment.verification_code}"
    context = {"account": request.portal_account, "applicant": request.portal_applicant, "p": payment,
               "verify": verify}  # fmt: skip
    return render(request, "portal/receipt.html", context)


def _application_context(request, app, outstanding, error) -> dict:
    """What the application page shows. Read-only: a demand note paid at the gateway but not yet
    settled shows as received; settling it is the connections sweep's (every 60 s), never a page's."""
    from urja.core.models import AuditEvent

    history = AuditEvent.objects.filter(object_type="connections.application", object_id=str(app.pk)).order_by("at")
    steps = [{"at": e.at, "stage": (e.changes or {}).get("to") or "registered"} for e in history
             if (e.changes or {}).get("to") or e.action == "connection.registered"]  # fmt: skip
    receipts = list(selectors.application_payments(app).order_by("-received_at")[:10]) if app.account_id else []
    return {
        "account": request.portal_account,
        "applicant": request.portal_applicant,
        "a": app,
        "outstanding": outstanding,
        "note": getattr(app, "demand_note", None) if hasattr(app, "demand_note") else None,
        "settling": app.status == "dn_issued" and outstanding <= 0 and bool(receipts),
        "receipts": receipts,
        "history": steps,
        "error": error,
    }


# --- change requests the channel matrix allows on the website (connections app's changes) --------------------

CHANGE_FIELDS = {"load_change": ("load", "unit"), "category_change": ("category",)}


def web_change_kinds() -> list[str]:
    """The change kinds whose channel-matrix row has the website column (read from the SoP schedule
    through connections.check_channel, so the matrix stays the one source)."""
    from urja.connections import changes as conn_changes

    allowed = []
    for kind, _row in conn_changes.CHANNEL_ROW.items():
        if kind not in CHANGE_FIELDS:
            continue  # a kind the portal has no form for is lodged at a counter
        try:
            conn_changes.check_channel("website", row=conn_changes.CHANNEL_ROW[kind])
        except DomainError:
            continue
        allowed.append(str(kind))
    return allowed


@consumer_required
def changes(request):
    """Lodge a change request allowed on the website (e.g. load enhancement) and see the account's
    change requests with their status."""
    from urja.connections import changes as conn_changes
    from urja.connections.models import ChangeRequest

    account = request.portal_account
    kinds = web_change_kinds()
    error, status = None, 200
    if request.method == "POST":
        kind = request.POST.get("kind", "")
        if kind not in kinds:
            error, status = _("Choose what you want to change."), 400
        else:
            details = {f: request.POST.get(f, "")[:40] for f in CHANGE_FIELDS[kind] if request.POST.get(f)}
            try:
                conn_changes.request_change(
                    actor=request.user, channel="website", account=account, kind=kind, details=details
                )
            except DomainError as exc:
                error, status = exc.message, exc.status
            else:
                return redirect("portal:changes")
    rows = ChangeRequest.objects.filter(account=account).order_by("-requested_at")[:20]
    context = {"account": account, "kinds": kinds, "rows": rows, "error": error, "categories": CATEGORIES,
               "values": request.POST}  # fmt: skip
    return render(request, "portal/changes.html", context, status=status)
