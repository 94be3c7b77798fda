"""Billing pages: bill run console, account bill history (360° panel), bill PDF/HTML, verification."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from urja.core.errors import DomainError, Forbidden
from urja.core.permissions import require_role, role_of
from urja.core.scope import office_covers, scope_accounts

from . import documents, ledger, selectors, services
from .models import Bill, BillCycle, BillException, BillRun, NoteStatus, RunStatus

RUN_ROLES = ("billing_officer", "manager")


def _require_role(request, *roles: str) -> None:
    # Pages answer a role outside `roles` with Django's 403; the domain Forbidden is for the API's handler.
    try:
        require_role(request.user, *roles)
    except Forbidden as exc:
        raise PermissionDenied(exc.message) from exc


def _bill_for(request, bill_number: str) -> Bill:
    # another consumer's or another office's bill is a 404 like a bill that does not exist (never 403)
    return selectors.scoped_bill(request.user, bill_number)


@login_required
def account_panel(request, consumer_number: str):
    """Fragment for the 360° page: the account's last 12 bills with PDF links."""
    from urja.customers.models import Account

    account = get_object_or_404(scope_accounts(request.user, Account.objects.all()), consumer_number=consumer_number)
    bills = services.bill_history(account=account, months=12)
    return render(
        request,
        "billing/_account_panel.html",
        {"account": account, "bills": bills, "balance": ledger.balance(account=account)},
    )


@login_required
def bill_pdf(request, bill_number: str):
    try:
        bill = _bill_for(request, bill_number)
        data = documents.render_pdf(bill, request.GET.get("lang"))
    except DomainError as exc:
        return HttpResponse(exc.message, status=exc.status, content_type="text/plain")
    response = HttpResponse(data, content_type="application/pdf")
    response["Content-Disposition"] = f'inline; filename="bill-{bill.bill_number}.pdf"'
    return response


@login_required
def bill_html(request, bill_number: str):
    try:
        bill = _bill_for(request, bill_number)
    except DomainError as exc:
        return HttpResponse(exc.message, status=exc.status, content_type="text/plain")
    return HttpResponse(documents.render_html(bill, request.GET.get("lang")))


def verify(request):
    """Public check of a printed bill: the verification code must match the bill number."""
    number, code = request.GET.get("bill", "").strip().upper(), request.GET.get("code", "").strip().upper()
    bill = Bill.objects.filter(bill_number=number).select_related("account").first() if number else None
    valid = bool(bill and code and services.verification_code(bill) == code)
    return render(request, "billing/verify.html", {"number": number, "code": code, "bill": bill, "valid": valid})


def _divisions(user):
    """Divisions the user may bill: those under its office (admin and utility staff: all)."""
    from urja.core.scope import scope_offices
    from urja.network.models import Office, OfficeLevel

    return scope_offices(user, Office.objects.filter(level=OfficeLevel.DIVISION), "path").order_by("name")


def _cycles() -> list[dict]:
    """The cycles of data/billing/cycles.toml (created on first use) and any made since, by code."""
    from urja.core import regdata

    cycles = {row["code"]: row["name"] for row in regdata.load("billing/cycles.toml")["cycle"]}
    cycles.update(BillCycle.objects.values_list("code", "name"))
    return [{"code": code, "name": name} for code, name in sorted(cycles.items())]


def _scope_choice(request, code: str) -> tuple[str, str]:
    """(path, name) of the chosen division within the user's scope; '' = every division the user covers."""
    from urja.core.permissions import office_path_of

    if code:
        division = _divisions(request.user).filter(code=code).first()
        if division is None:
            raise DomainError("choose one of your divisions", code="division_not_in_scope")
        return division.path, division.name
    return office_path_of(request.user) or "", _("all my divisions")


def _runs_in_scope(user):
    """Runs with a division of the user's office (below it, or above it: a utility-wide run), or none yet."""
    from django.db.models import Q

    from urja.core.permissions import office_path_of

    runs = BillRun.objects.select_related("cycle")
    mine = office_path_of(user)
    if not mine:  # admin and utility staff: every run
        return runs
    parts = [p for p in mine.strip("/").split("/") if p]
    above = ["/" + "/".join(parts[: i + 1]) + "/" for i in range(len(parts))]
    touching = Q(partitions__division_path__startswith=mine) | Q(partitions__division_path__in=above)
    return runs.filter(touching | Q(partitions__isnull=True)).distinct()


@login_required
def console(request):
    _require_role(request, *RUN_ROLES, "cre", "key_account_manager")
    from urja.core import listing

    # the runs touching the user's divisions: status, cycle, period (YYYY-MM prefix) and started-on dates;
    # 30 a page; the same rows as CSV / Excel
    filters = listing.read_filters(request)
    status, cycle = request.GET.get("status", ""), request.GET.get("cycle", "")
    runs = _runs_in_scope(request.user)
    if status in RunStatus.values:
        runs = runs.filter(status=status)
    if cycle:
        runs = runs.filter(cycle__code=cycle)
    if filters.q:
        runs = runs.filter(period__startswith=filters.q)
    runs = listing.by_dates(runs, filters, "created_at").order_by("-created_at", "-pk")
    if listing.wants_export(request):
        from decimal import Decimal, InvalidOperation

        def total(r):
            try:
                return Decimal(str((r.totals or {}).get("total", "")))
            except InvalidOperation:
                return None

        header = ["Run", "Cycle", "Period", "Scope", "Dry run / review", "Status", "Accounts", "Bills", "Exceptions",
                  "Total billed", "Bill date", "Due date", "Created", "Finished"]  # fmt: skip
        rows = (
            [r.pk, r.cycle.code, r.period, (r.report or {}).get("scope_name", ""), r.dry_run, r.status,
             r.accounts_due, r.bills, r.exceptions, total(r), r.bill_date, r.due_date, r.created_at, r.finished_at]
            for r in runs.iterator(chunk_size=2000)
        )  # fmt: skip
        return listing.export_response(request, "bill-runs", header, rows)
    context = listing.pager(request, runs, per_page=30)
    return render(
        request,
        "billing/console.html",
        {
            **context,
            "runs": context["page"].object_list,
            "filters": filters,
            "f": {"status": status, "cycle": cycle},
            "statuses": RunStatus.choices,
            "error": request.GET.get("error", ""),
            "cycles": _cycles(),
            "divisions": _divisions(request.user),
            "can_act": role_of(request.user) in (*RUN_ROLES, "admin"),
        },
    )


@login_required
@require_POST
def create_run(request):
    """By hand: a review of the chosen division(s) first (default), or straight to billing."""
    _require_role(request, *RUN_ROLES)
    from . import review

    cycle, period = request.POST.get("cycle", "").strip(), request.POST.get("period", "").strip()
    try:
        scope_path, scope_name = _scope_choice(request, request.POST.get("division", "").strip())
        if request.POST.get("review") == "on":
            run = review.plan_review(
                cycle=cycle, period=period, scope_path=scope_path, scope_name=str(scope_name), actor=request.user
            )
        else:
            run = services.create_run(cycle=cycle, period=period, actor=request.user, channel="backoffice")
            run = review.start_in_scope(run=run, scope_path=scope_path, actor=request.user)
    except DomainError as exc:
        from urllib.parse import urlencode

        return redirect(f"/billing/runs/?{urlencode({'error': exc.message})}")
    return redirect("billing:run", pk=run.pk)


@login_required
@require_POST
def approve_review(request, pk: int):
    _require_role(request, *RUN_ROLES)
    from . import review

    preview = get_object_or_404(BillRun, pk=pk, dry_run=True)
    scope = preview.report.get("scope_path", "")
    if not office_covers(request.user, scope):
        raise Http404("no such review")  # another office's review answers like one that does not exist
    try:
        run = review.approve(preview=preview, actor=request.user)
    except DomainError as exc:
        messages.error(request, exc.message)
        return redirect("billing:run", pk=preview.pk)
    messages.success(request, _("Approved: the bills are being written and posted."))
    return redirect("billing:run", pk=run.pk)


@login_required
@require_POST
def start_scope(request, pk: int):
    """Start the run's pending partitions under the officer's office (another division's are theirs)."""
    _require_role(request, *RUN_ROLES)
    from urja.core.permissions import office_path_of

    from . import review

    run = get_object_or_404(BillRun, pk=pk, dry_run=False)
    try:
        review.start_in_scope(run=run, scope_path=office_path_of(request.user) or "", actor=request.user)
    except DomainError as exc:
        messages.error(request, exc.message)
    return redirect("billing:run", pk=run.pk)


def _exceptions_in_scope(request, run: BillRun):
    """The run's exceptions on accounts of the user's office (and below)."""
    return selectors.exceptions_in_scope(request.user, run)


@login_required
def run_detail(request, pk: int):
    _require_role(request, *RUN_ROLES, "cre", "key_account_manager")
    # a run the console does not list for the user (no division of theirs) answers as one that does not exist
    run = get_object_or_404(_runs_in_scope(request.user), pk=pk)
    from urja.core import listing

    # the run's exceptions in the user's offices: open / resolved / all, by kind, a consumer number
    # prefix; 50 a page; the same rows as CSV or Excel (?format=csv|xlsx)
    state, kind = request.GET.get("state", ""), request.GET.get("kind", "")
    q = request.GET.get("q", "").strip().upper()[:20]
    rows = _exceptions_in_scope(request, run).select_related("account", "account__consumer", "resolved_by")
    if state in ("open", "resolved"):
        rows = rows.filter(resolved=state == "resolved")
    if kind in BillException.Kind.values:
        rows = rows.filter(kind=kind)
    if q:
        rows = rows.filter(account__consumer_number__startswith=q)
    rows = rows.order_by("resolved", "kind", "id")
    if listing.wants_export(request):
        header = ["consumer_number", "name", "kind", "message", "resolved", "resolved_by", "resolved_at", "resolution"]
        data = (
            [e.account.consumer_number, e.account.consumer.name, e.get_kind_display(), e.message, e.resolved,
             e.resolved_by.get_username() if e.resolved_by else "", e.resolved_at,
             (e.details or {}).get("resolution", "")]
            for e in rows.iterator(chunk_size=2000)
        )  # fmt: skip
        return listing.export_response(request, f"bill-run-{run.pk}-exceptions", header, data)
    progress = services.run_progress(run)
    template = "billing/_progress.html" if request.headers.get("HX-Request") else "billing/run.html"
    pager = listing.pager(request, rows)
    can_act = role_of(request.user) in (*RUN_ROLES, "admin")
    from urja.core.permissions import office_path_of

    mine = office_path_of(request.user) or ""
    pending_mine = [p for p in run.partitions.filter(status="pending") if p.division_path.startswith(mine)]
    context = {
        "run": run,
        "p": progress,
        **pager,
        "exceptions": pager["page"].object_list,
        "f": {"state": state, "kind": kind, "q": q},
        "kinds": BillException.Kind.choices,
        "can_act": can_act,
        "pending_mine": pending_mine,
    }
    return render(request, template, context)


@login_required
@require_POST
def resolve_exception(request, pk: int, exception_id: int):
    _require_role(request, *RUN_ROLES)
    run = get_object_or_404(BillRun, pk=pk)
    # an exception outside the officer's office answers like one that does not exist
    exc = get_object_or_404(_exceptions_in_scope(request, run).select_related("account"), pk=exception_id)
    try:
        services.resolve_exception(
            exception=exc, actor=request.user, note=request.POST.get("note", ""), channel="backoffice"
        )
    except DomainError as err:
        messages.error(request, err.message)
    else:
        messages.success(request, _("Exception of account %(account)s resolved.") % {"account": exc.account})
    return redirect("billing:run", pk=run.pk)


@login_required
@require_POST
def rebill_exceptions(request, pk: int):
    _require_role(request, *RUN_ROLES)
    run = get_object_or_404(BillRun, pk=pk)
    try:
        run = services.rebill_exceptions(run=run, actor=request.user, channel="backoffice")
        services.start_run(run=run, actor=request.user, enqueue=True)
    except DomainError as err:
        messages.error(request, err.message)
    else:
        messages.success(request, _("The open exceptions are being billed again."))
    return redirect("billing:run", pk=run.pk)


# ---------------------------------------------------------------------------------------
# Issue 15 part 2: bill revisions (maker-checker), security deposits, final bills.
# Who may use them: billing officers and managers (as the API's revision routes); navigation.toml
# offers the pages to exactly these roles. Out-of-scope accounts, bills and revisions answer 404.

CORRECTION_ROLES = ("billing_officer", "manager")


def _not_found_as_404(fn):
    """A scoped lookup's NotFound becomes the page's 404 (out of scope answers like nonexistent)."""
    from urja.core.errors import NotFound

    try:
        return fn()
    except NotFound as exc:
        raise Http404(exc.message) from exc


@login_required
def revisions(request):
    """Proposed notes waiting for a checker, the recent decisions, and the form to propose one."""
    _require_role(request, *CORRECTION_ROLES)
    from django.db.models import Q

    from urja.core import listing

    form = {"bill": request.GET.get("bill", "").strip().upper(), "kind": "credit_note", "amount": "", "reason": ""}
    error = ""
    if request.method == "POST":
        form = {k: request.POST.get(k, "").strip() for k in ("bill", "kind", "amount", "reason")}
        form["bill"] = form["bill"].upper()
        try:
            bill = selectors.scoped_bill(request.user, form["bill"])
            revision = services.propose_revision(
                bill=bill, kind=form["kind"], amount=form["amount"], reason=form["reason"], actor=request.user
            )
        except DomainError as exc:
            error = exc.message
        else:
            messages.success(
                request,
                _("Proposed: %(kind)s on bill %(bill)s waits for another officer's approval.")
                % {"kind": revision.get_kind_display(), "bill": bill.bill_number},
            )
            return redirect("billing:revisions")
    rows = selectors.revisions_in_scope(request.user)
    # filters: status, kind, a bill or consumer number (prefix); 30 a page; the same rows as CSV or Excel
    status, kind = request.GET.get("status", ""), request.GET.get("kind", "")
    q = request.GET.get("q", "").strip().upper()[:32]
    if status in NoteStatus.values:
        rows = rows.filter(status=status)
    if kind in ("credit_note", "debit_note"):
        rows = rows.filter(kind=kind)
    if q:
        rows = rows.filter(Q(bill__bill_number__startswith=q) | Q(bill__account__consumer_number__startswith=q))
    rows = rows.order_by("-status", "-created_at", "-id")
    if listing.wants_export(request):
        from django.utils import timezone

        header = ["bill", "consumer_number", "kind", "amount", "reason", "proposed_by", "proposed_on", "status",
                  "note_number", "decided_by", "decided_on", "decision_note"]  # fmt: skip
        data = (
            [r.bill.bill_number, r.bill.account.consumer_number, r.get_kind_display(), r.amount, r.reason,
             r.proposed_by.get_username(), timezone.localtime(r.created_at).date(), r.get_status_display(),
             r.note_number, r.decided_by.get_username() if r.decided_by else "",
             timezone.localtime(r.decided_at).date() if r.decided_at else None, r.decision_note]
            for r in rows.iterator(chunk_size=2000)
        )  # fmt: skip
        return listing.export_response(request, "bill-revisions", header, data)
    pager = listing.pager(request, rows, per_page=30)
    return render(
        request,
        "billing/revisions.html",
        {
            **pager,
            "revisions": pager["page"].object_list,
            "form": form,
            "error": error,
            "me": request.user.pk,
            "f": {"status": status, "kind": kind, "q": q},
            "statuses": NoteStatus.values,
        },
        status=400 if error else 200,
    )


@login_required
@require_POST
def decide_revision(request, revision_id: int):
    _require_role(request, *CORRECTION_ROLES)
    revision = _not_found_as_404(lambda: selectors.scoped_revision(request.user, revision_id))
    approve = request.POST.get("decision") == "approve"
    try:
        rev = services.decide_revision(
            revision=revision, approve=approve, actor=request.user, note=request.POST.get("note", "").strip()
        )
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        if approve:
            messages.success(
                request, _("Approved: note %(note)s is posted to the account.") % {"note": rev.note_number}
            )
        else:
            messages.success(request, _("Rejected: nothing is posted."))
    return redirect("billing:revisions")


@login_required
def deposits_due(request):
    """Accounts in scope whose security deposit has not been reviewed this financial year."""
    _require_role(request, *CORRECTION_ROLES)
    from django.db.models import Q
    from django.utils import timezone

    from urja.core import listing

    from . import deposits

    fy, fy_start, _end = deposits.financial_year(timezone.localdate())
    accounts = selectors.accounts_in_scope(request.user).filter(status="active")
    due = accounts.filter(
        Q(security_deposit__isnull=True)
        | Q(security_deposit__last_reviewed_on__isnull=True)
        | Q(security_deposit__last_reviewed_on__lt=fy_start)
    ).select_related("consumer", "security_deposit")
    query = request.GET.get("q", "").strip().upper()[:20]
    if query:
        due = due.filter(consumer_number__startswith=query)
    offices = _divisions(request.user)
    office_code = request.GET.get("office", "")
    office = next((o for o in offices if o.code == office_code), None)
    if office is not None:
        due = due.filter(office_path__startswith=office.path)
    due = due.order_by("consumer_number")
    if listing.wants_export(request):
        header = ["consumer_number", "name", "required", "held", "additional_demanded", "last_reviewed_on"]
        data = ([a.consumer_number, a.consumer.name, *_deposit_cells(a)] for a in due.iterator(chunk_size=2000))
        return listing.export_response(request, f"deposits-due-{fy}", header, data)
    pager = listing.pager(request, due)
    return render(
        request,
        "billing/deposits_due.html",
        {
            **pager,
            "accounts": pager["page"].object_list,
            "fy": fy,
            "q": query,
            "offices": offices,
            "office": office_code,
        },
    )


def _deposit_cells(account) -> list:
    record = getattr(account, "security_deposit", None)
    if record is None:
        return ["", "", "", ""]
    return [record.required, record.held, record.additional_demanded, record.last_reviewed_on]


@login_required
def deposit_account(request, consumer_number: str):
    """One account's security deposit: held, required, additional demanded; review, interest, apply."""
    _require_role(request, *CORRECTION_ROLES)
    from datetime import timedelta

    from django.utils import timezone

    from . import deposits
    from .models import LedgerEntry

    account = _not_found_as_404(lambda: selectors.scoped_account(request.user, consumer_number))
    today = timezone.localdate()
    fy, fy_start, _end = deposits.financial_year(today)
    prev_fy = deposits.financial_year(fy_start - timedelta(days=1))[0]
    form = {"action": "", "fy": prev_fy, "reason": ""}
    error = ""
    if request.method == "POST":
        form = {k: request.POST.get(k, "").strip() for k in ("action", "fy", "reason")}
        try:
            if form["action"] == "review":
                result = deposits.annual_review(account=account, on=today, actor=request.user, channel="backoffice")
                messages.success(request, _review_words(result))
            elif form["action"] == "interest":
                entry = deposits.credit_interest(
                    account=account, fy=form["fy"], actor=request.user, channel="backoffice"
                )
                messages.success(request, _("Interest credited.") if entry else _("No interest: nothing was held."))
            elif form["action"] == "apply":
                entry = deposits.apply_to_dues(
                    account=account, reason=form["reason"], actor=request.user, channel="backoffice"
                )
                messages.success(
                    request, _("The deposit is applied to the account.") if entry else _("No deposit is held.")
                )
            else:
                raise DomainError(_("Choose an action."), code="invalid_action")
        except DomainError as exc:
            error = exc.message
        else:
            return redirect("billing:deposit_account", consumer_number=account.consumer_number)
    record = getattr(account, "security_deposit", None) if hasattr(account, "security_deposit") else None
    entries = LedgerEntry.objects.filter(
        account=account, entry_type__in=("deposit", "deposit_refund", "deposit_interest")
    ).order_by("-posted_at")[:30]
    context = {
        "account": account,
        "record": record,
        "held": deposits.held(account),
        "entries": entries,
        "fy": fy,
        "form": form,
        "error": error,
        "interest_years": [row["fy"] for row in deposits.rules()["interest"]],
    }
    return render(request, "billing/deposit_account.html", context, status=400 if error else 200)


def _review_words(result: dict) -> str:
    from urja.core.money import format_inr

    def rupees_text(value):
        return format_inr(value, symbol=True)

    if result["action"] == "additional_demanded":
        return _("Reviewed: an additional deposit of %(amount)s is demanded, payable by %(due)s.") % {
            "amount": rupees_text(result["amount"]),
            "due": result["due_date"].strftime("%d-%m-%Y"),
        }
    if result["action"] == "surplus_refunded":
        return _("Reviewed: the surplus of %(amount)s is refunded through the bill.") % {
            "amount": rupees_text(result["amount"])
        }
    if "average_bill" not in result:
        return _("Reviewed: no bills in the last financial year, nothing to change.")
    return _("Reviewed: the deposit held meets the requirement.")


@login_required
def final_bills(request):
    """Permanently disconnected accounts in scope with no final bill yet, and the final bills issued."""
    _require_role(request, *CORRECTION_ROLES)
    from urja.core import listing

    # two lists on one page: ?list=issued shows the final bills issued, else the accounts awaiting
    # one; both filtered by a consumer number prefix, 50 a page, and exported as CSV or Excel
    show = "issued" if request.GET.get("list") == "issued" else "awaiting"
    q = request.GET.get("q", "").strip().upper()[:20]
    if show == "issued":
        rows = scope_accounts(request.user, Bill.objects.filter(kind=Bill.Kind.FINAL), "account__").select_related(
            "account", "account__consumer"
        )
        if q:
            rows = rows.filter(account__consumer_number__startswith=q)
        rows = rows.order_by("-bill_date", "-id")
        header = ["bill", "consumer_number", "name", "bill_date", "total", "net_payable"]

        def cells(b):
            return [b.bill_number, b.account.consumer_number, b.account.consumer.name, b.bill_date, b.total,
                    b.net_payable]  # fmt: skip
    else:
        accounts = selectors.accounts_in_scope(request.user).filter(status="perm_disconnected")
        rows = accounts.exclude(bills__kind=Bill.Kind.FINAL).select_related("consumer")
        if q:
            rows = rows.filter(consumer_number__startswith=q)
        rows = rows.order_by("consumer_number")
        header = ["consumer_number", "name", "status"]

        def cells(a):
            return [a.consumer_number, a.consumer.name, a.get_status_display()]

    if listing.wants_export(request):
        data = (cells(r) for r in rows.iterator(chunk_size=2000))
        return listing.export_response(request, f"final-bills-{show}", header, data)
    pager = listing.pager(request, rows)
    return render(
        request,
        "billing/final_bills.html",
        {
            **pager,
            "show": show,
            "rows": pager["page"].object_list,
            "q": q,
        },
    )


@login_required
def final_bill_issue(request, consumer_number: str):
    _require_role(request, *CORRECTION_ROLES)
    from datetime import date

    account = _not_found_as_404(lambda: selectors.scoped_account(request.user, consumer_number))
    form = {"units": "", "disconnected_on": ""}
    error = ""
    if request.method == "POST":
        form = {k: request.POST.get(k, "").strip() for k in ("units", "disconnected_on")}
        try:
            try:
                on = date.fromisoformat(form["disconnected_on"])
            except ValueError as exc:
                raise DomainError(_("Give the disconnection date."), code="invalid_date") from exc
            try:
                from decimal import Decimal, InvalidOperation

                units = Decimal(form["units"])
                if units < 0 or not units.is_finite():
                    raise InvalidOperation
            except (InvalidOperation, ValueError) as exc:
                raise DomainError(
                    _("Give the units of the special reading (0 or more)."), code="invalid_units"
                ) from exc
            bill = services.final_bill(account=account, closing_kwh_units=units, disconnected_on=on, actor=request.user)
        except DomainError as exc:
            error = exc.message
        else:
            messages.success(request, _("Final bill %(bill)s issued.") % {"bill": bill.bill_number})
            return redirect("billing:bill_html", bill_number=bill.bill_number)
    final = Bill.objects.filter(account=account, kind=Bill.Kind.FINAL).first()
    return render(
        request,
        "billing/final_bill_issue.html",
        {"account": account, "form": form, "error": error, "final": final},
        status=400 if error else 200,
    )
