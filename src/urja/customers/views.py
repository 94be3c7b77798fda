"""Staff pages of the customers app (issue 15 part 2): register a consumer with the KYC documents of
the document matrix, a consumer's page (details, checklist, documents, connections → 360° page),
add a document, open an account. Thin: every change goes through customers.services; a consumer,
office or document outside the staff member's scope answers exactly like one that does not exist."""

from functools import wraps

from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, Http404
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from urja.core.errors import DomainError, NotFound
from urja.core.models import Channel, Role
from urja.core.permissions import ALL_STAFF_ROLES, role_of
from urja.core.scope import scope_offices
from urja.network.models import Office, OfficeLevel

from . import selectors, services
from .forms import AccountForm, ConsumerForm, DocumentForm, add_service_error

# Who registers consumers, takes their documents and opens their connections on the web (the API's
# open_account roles; the administrator always may).
REGISTER_ROLES = (Role.CRE, Role.ENGINEER, Role.MANAGER, Role.ADMIN)


def staff_required(view):
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if role_of(request.user) not in ALL_STAFF_ROLES:
            raise PermissionDenied
        return view(request, *args, **kwargs)

    return wrapper


def _may_register(user) -> bool:
    return role_of(user) in REGISTER_ROLES


def _require_register(user) -> None:
    if not _may_register(user):
        raise PermissionDenied


def _consumer_or_404(user, consumer_id: int):
    try:
        return selectors.scoped_consumer(user, consumer_id)
    except NotFound:
        raise Http404("no such consumer") from None  # out of scope: the same answer as nonexistent


def _sections(user):
    return scope_offices(user, Office.objects.filter(level=OfficeLevel.SECTION), "path").order_by("name", "code")


def _applicant_type(request) -> str:
    wanted = request.POST.get("applicant_type") or request.GET.get("applicant_type") or "owner"
    allowed = services.regdata.load("customers/document_matrix.toml")["applicant_types"]
    return wanted if wanted in allowed else "owner"


@staff_required
def register(request):
    """A new consumer with the checklist of its applicant type; the applicant type's select reloads the
    checklist (HTMX, or the 'Show the documents' button without JavaScript)."""
    _require_register(request.user)
    applicant_type = _applicant_type(request)
    if request.method == "POST":
        form = ConsumerForm(request.POST, request.FILES, applicant_type=applicant_type)
        if form.is_valid():
            data = form.cleaned_data
            try:
                consumer = services.register_consumer_with_documents(
                    actor=request.user,
                    channel=data["channel"],
                    name=data["name"],
                    kind=data["kind"],
                    applicant_type=applicant_type,
                    guardian_name=data["guardian_name"],
                    aadhaar=data["aadhaar"],
                    preferred_language=data["preferred_language"],
                    contacts=form.contacts(),
                    documents=form.documents,
                )
            except DomainError as exc:
                add_service_error(form, exc)
            else:
                messages.success(
                    request,
                    _("%(name)s registered with %(n)s documents. Open a connection next.")
                    % {"name": consumer.name, "n": len(form.documents)},
                )
                return redirect("customers:consumer", consumer_id=consumer.pk)
        status = 400
    else:
        form = ConsumerForm(applicant_type=applicant_type, initial={"applicant_type": applicant_type})
        status = 200
    return render(request, "customers/register.html", {"form": form}, status=status)


def _consumer_context(request, consumer, **forms) -> dict:
    user = request.user
    types = services.document_types()
    given = {}
    documents = list(consumer.documents.order_by("-uploaded_at"))
    for doc in documents:
        given.setdefault(doc.document_code, doc)
    checklist = [
        {"doc": d, "given": given.get(d["code"])} for d in services.required_documents(consumer.applicant_type)
    ]
    return {
        "consumer": consumer,
        "contacts": consumer.contacts.order_by("kind", "-is_primary", "id"),
        "documents": [(doc, types.get(doc.document_code, {})) for doc in documents],
        "checklist": checklist,
        "missing": services.consumer_missing_documents(consumer=consumer),
        "accounts": selectors.accounts_in_scope(user).filter(consumer=consumer).order_by("consumer_number"),
        "may_register": _may_register(user),
        "document_form": forms.get("document_form") or DocumentForm(),
    }


@staff_required
def consumer(request, consumer_id: int):
    found = _consumer_or_404(request.user, consumer_id)
    return render(request, "customers/consumer.html", _consumer_context(request, found))


@require_POST
@staff_required
def add_document(request, consumer_id: int):
    found = _consumer_or_404(request.user, consumer_id)
    _require_register(request.user)
    form = DocumentForm(request.POST, request.FILES)
    if form.is_valid():
        data = form.cleaned_data
        try:
            services.add_kyc_document(
                actor=request.user,
                channel=Channel.BACKOFFICE,
                consumer=found,
                document_code=data["document_code"],
                proof_type=data["proof_type"],
                number=data["number"].strip(),
                file=data["file"],
            )
        except DomainError as exc:
            form.add_error(
                {"proof_type_not_accepted": "proof_type", "invalid_aadhaar": "number", "invalid_file": "file"}.get(
                    exc.code, "document_code"
                ),
                exc.message,
            )
        else:
            messages.success(request, _("Document saved."))
            return redirect("customers:consumer", consumer_id=found.pk)
    context = _consumer_context(request, found, document_form=form)
    return render(request, "customers/consumer.html", context, status=400)


@staff_required
def document_file(request, consumer_id: int, document_id: int):
    """The uploaded file, for staff who may see the consumer (never served by a plain URL)."""
    found = _consumer_or_404(request.user, consumer_id)
    doc = found.documents.filter(pk=document_id).exclude(file="").first()
    if doc is None:
        raise Http404("no such document")
    return FileResponse(doc.file.open("rb"), as_attachment=False, filename=doc.file.name.rsplit("/", 1)[-1])


@staff_required
def open_account(request, consumer_id: int):
    """A connection for a consumer whose required documents are on file; the 360° page follows."""
    found = _consumer_or_404(request.user, consumer_id)
    _require_register(request.user)
    sections = list(_sections(request.user))
    missing = services.consumer_missing_documents(consumer=found)
    context = {"consumer": found, "missing": missing}
    if request.method == "POST":
        form = AccountForm(request.POST, sections=sections)
        if missing:
            form.add_error(None, _("Upload the missing documents first."))
        elif form.is_valid():
            data = form.cleaned_data
            section = next(s for s in sections if s.code == data["section"])
            try:
                account = services.open_account(
                    actor=request.user,
                    channel=Channel.BACKOFFICE,
                    consumer=found,
                    section=section,
                    premises_address=data["premises_address"],
                    pincode=data["pincode"],
                    area=data["area"],
                    supply_type=data["supply_type"],
                    category=data["category"],
                    sub_category=data["sub_category"],
                    sanctioned_load=data["sanctioned_load"],
                    load_unit=data["load_unit"],
                    transformer=data["transformer"] or None,
                    bill_cycle=data["bill_cycle"],
                    route=data["route"],
                    placement_required=True,
                )
            except DomainError as exc:
                add_service_error(form, exc)
            else:
                messages.success(request, _("Connection %(number)s opened.") % {"number": account.consumer_number})
                return redirect("backoffice:account", consumer_number=account.consumer_number)
        return render(
            request,
            "customers/open_account.html",
            {**context, "form": form, "routes": selectors.routes_of_sections(sections)},
            status=400,
        )
    initial = {"section": sections[0].code} if len(sections) == 1 else {}
    if len(sections) == 1:  # the section's usual cycle and route to start from
        initial.update(selectors.usual_placement(sections[0]))
    form = AccountForm(sections=sections, initial={**initial, "sub_category": "general"})
    return render(
        request,
        "customers/open_account.html",
        {**context, "form": form, "routes": selectors.routes_of_sections(sections)},
    )
