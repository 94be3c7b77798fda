"""Consumers, accounts, contacts and KYC documents. Staff see only their office's subtree."""

from datetime import date, datetime
from decimal import Decimal

from ninja import Field, File, Form, Router, Schema, UploadedFile
from ninja.pagination import paginate

from urja.core import boundary
from urja.core.boundary import ColumnText, Quantity, Text
from urja.core.errors import DomainError
from urja.core.models import Channel, Role
from urja.core.permissions import office_path_of, require_role
from urja.network.models import Office

from . import selectors, services
from .models import Account, Consumer, Contact

router = Router(tags=["customers"])

WRITE_ROLES = (Role.CRE, Role.FIELD_AGENT, Role.ENGINEER, Role.BILLING_OFFICER, Role.MANAGER)
STATUS_ROLES = (Role.ENGINEER, Role.BILLING_OFFICER, Role.MANAGER)


class ContactIn(Schema):
    kind: Text(10) = Field(..., description="mobile or email")
    value: ColumnText(Contact, "value")
    verified: bool = False
    whatsapp_opt_in: bool = False


def _no_verified_by_staff(contacts) -> None:
    """Staff cannot mark a contact verified (issue 13.5): a code sent to it verifies it (the consumer's
    portal sign-in or contact change), and a staff edit needs the consumer's consent by code
    (POST /api/v1/channels/consent)."""
    if any(c.verified for c in contacts):
        raise DomainError(
            "a contact is verified only by a one-time code sent to it; staff cannot mark it verified "
            "(ask the consumer's consent: POST /api/v1/channels/consent)",
            code="verification_needs_otp",
        )


def _no_change_without_consent(consumer: Consumer) -> None:
    """A consumer with a verified mobile changes contacts only with their consent by code (issue 13.5):
    the new contact becomes the primary one, where bills and codes go."""
    if selectors.verified_mobile(consumer):
        raise DomainError(
            "this consumer has a verified mobile: a new contact needs the consumer's consent by code "
            "(POST /api/v1/channels/consent, then /api/v1/channels/consent/confirm)",
            code="consent_required",
            status=409,
        )


class ContactOut(Schema):
    id: int
    kind: str
    value: str
    is_primary: bool
    verified: bool
    whatsapp_opt_in: bool


class DocumentOut(Schema):
    id: int
    document_code: str
    proof_type: str
    number_masked: str
    uploaded_at: datetime
    verified: bool


class ConsumerIn(Schema):
    name: ColumnText(Consumer, "name")
    kind: ColumnText(Consumer, "kind") = "person"
    applicant_type: ColumnText(Consumer, "applicant_type") = "owner"
    guardian_name: ColumnText(Consumer, "guardian_name") = ""
    aadhaar: Text(20) = Field("", description="12 digits; validated (Verhoeff) and stored masked")
    preferred_language: Text(10) = "en"
    contacts: list[ContactIn] = Field([], max_length=20)


class ConsumerOut(Schema):
    id: int
    name: str
    kind: str
    applicant_type: str
    guardian_name: str
    aadhaar_masked: str
    preferred_language: str
    contacts: list[ContactOut]

    @staticmethod
    def resolve_contacts(obj):
        return list(obj.contacts.all())


class AccountIn(Schema):
    consumer_id: int = Field(..., ge=1, le=boundary.bounds().max_integer)
    section: Text(40) = Field(..., description="office code of the section")
    premises_address: ColumnText(Account, "premises_address", multiline=True)
    pincode: ColumnText(Account, "pincode") = ""
    latitude: Quantity(places=6, allow_negative=True) | None = None
    longitude: Quantity(places=6, allow_negative=True) | None = None
    category: ColumnText(Account, "category")
    sub_category: ColumnText(Account, "sub_category") = "general"
    supply_type: ColumnText(Account, "supply_type") = Field(..., description="lt_1ph, lt_3ph, ht, eht or temporary")
    sanctioned_load: Quantity(places=3)
    load_unit: ColumnText(Account, "load_unit") = "kW"
    area: ColumnText(Account, "area") = "urban"
    bill_cycle: ColumnText(Account, "bill_cycle") = "C01"
    route: ColumnText(Account, "route") = ""
    transformer: Text(24) | None = Field(None, description="code of the DT it is fed from: one of the section's")
    is_prepaid: bool = False


class AccountOut(Schema):
    consumer_number: str
    consumer_id: int
    consumer_name: str = Field(..., alias="consumer.name")
    premises_address: str
    pincode: str
    latitude: Decimal | None
    longitude: Decimal | None
    category: str
    sub_category: str
    supply_type: str
    sanctioned_load: Decimal
    load_unit: str
    area: str
    section: str = Field(..., alias="section.code")
    bill_cycle: str
    route: str
    status: str
    is_prepaid: bool
    key_account_manager: str | None = Field(None, alias="key_account_manager.username")
    connected_on: date | None


class AccountStatusIn(Schema):
    status: ColumnText(Account, "status")
    reason: Text(multiline=True)


class LoadIn(Schema):
    sanctioned_load: Quantity(places=3)
    load_unit: ColumnText(Account, "load_unit") = "kW"
    supply_type: ColumnText(Account, "supply_type") | None = None


def _accounts(request):
    return selectors.accounts_in_scope(request.auth)


def _account(request, consumer_number: str) -> Account:
    number = services.validate_consumer_number(consumer_number)
    return selectors.scoped_account(request.auth, number)  # unknown and out of scope: the same 404


def _consumer(request, consumer_id: int) -> Consumer:
    return selectors.scoped_consumer(request.auth, consumer_id)


@router.get("/accounts", response=list[AccountOut])
@paginate
def list_accounts(
    request, q: str = "", status: str | None = None, category: str | None = None, section: str | None = None
):
    """Search by consumer number, mobile or name (prefix); filters by status, category, section."""
    qs = _accounts(request)
    if status:
        qs = qs.filter(status=status)
    if category:
        qs = qs.filter(category=category)
    if section:
        qs = qs.filter(section__code=section)
    if q:
        return list(services.search_accounts(queryset=qs, query=q, limit=100))
    return qs.order_by("consumer_number")


@router.get("/accounts/{consumer_number}", response=AccountOut)
def get_account(request, consumer_number: str):
    return _account(request, consumer_number)


@router.post("/accounts", response={201: AccountOut})
def open_account(request, payload: AccountIn):
    require_role(request.auth, Role.CRE, Role.ENGINEER, Role.MANAGER)
    consumer = _consumer(request, payload.consumer_id)
    scope = office_path_of(request.auth) or ""
    section = Office.objects.filter(code=payload.section, path__startswith=scope).first()
    if section is None:  # unknown or outside the user's offices: same answer
        raise DomainError(f"unknown office {payload.section!r}", code="unknown_office")
    data = payload.dict(exclude={"consumer_id", "section"})
    account = services.open_account(actor=request.auth, channel=Channel.API, consumer=consumer, section=section, **data)
    return 201, _account(request, account.consumer_number)


@router.post("/accounts/{consumer_number}/status", response=AccountOut)
def change_status(request, consumer_number: str, payload: AccountStatusIn):
    require_role(request.auth, *STATUS_ROLES)
    account = _account(request, consumer_number)
    services.change_account_status(
        actor=request.auth, channel=Channel.API, account=account, status=payload.status, reason=payload.reason
    )
    return _account(request, consumer_number)


@router.post("/accounts/{consumer_number}/load", response=AccountOut)
def change_load(request, consumer_number: str, payload: LoadIn):
    require_role(request.auth, Role.ENGINEER, Role.MANAGER, Role.CRE)
    account = _account(request, consumer_number)
    services.change_sanctioned_load(
        actor=request.auth,
        channel=Channel.API,
        account=account,
        load=payload.sanctioned_load,
        unit=payload.load_unit,
        supply_type=payload.supply_type,
    )
    return _account(request, consumer_number)


@router.post("/consumers", response={201: ConsumerOut})
def register_consumer(request, payload: ConsumerIn):
    require_role(request.auth, *WRITE_ROLES)
    _no_verified_by_staff(payload.contacts)
    contacts = [services.ContactInput(c.kind, c.value, False) for c in payload.contacts]
    consumer = services.register_consumer(
        actor=request.auth,
        channel=Channel.API,
        name=payload.name,
        kind=payload.kind,
        applicant_type=payload.applicant_type,
        guardian_name=payload.guardian_name,
        aadhaar=payload.aadhaar,
        preferred_language=payload.preferred_language,
        contacts=contacts,
    )
    return 201, consumer


@router.get("/consumers/{consumer_id}", response=ConsumerOut)
def get_consumer(request, consumer_id: int):
    return _consumer(request, consumer_id)


@router.get("/consumers/{consumer_id}/contacts", response=list[ContactOut])
def list_contacts(request, consumer_id: int):
    return list(_consumer(request, consumer_id).contacts.all())


@router.post("/consumers/{consumer_id}/contacts", response={201: ContactOut})
def add_contact(request, consumer_id: int, payload: ContactIn):
    require_role(request.auth, *WRITE_ROLES)
    _no_verified_by_staff([payload])
    consumer = _consumer(request, consumer_id)
    services.normalise_contact(payload.kind, payload.value)  # a bad number is told as such, consent or not
    _no_change_without_consent(consumer)
    return 201, services.add_contact(
        actor=request.auth,
        channel=Channel.API,
        consumer=consumer,
        kind=payload.kind,
        value=payload.value,
        whatsapp_opt_in=payload.whatsapp_opt_in,
    )


@router.get("/consumers/{consumer_id}/documents", response=list[DocumentOut])
def list_documents(request, consumer_id: int):
    return list(_consumer(request, consumer_id).documents.order_by("-uploaded_at"))


@router.post("/consumers/{consumer_id}/documents", response={201: DocumentOut})
def add_document(
    request,
    consumer_id: int,
    document_code: Form[str],
    proof_type: Form[str] = "",
    number: Form[str] = "",
    file: File[UploadedFile] | None = None,
):
    require_role(request.auth, *WRITE_ROLES)
    consumer = _consumer(request, consumer_id)
    return 201, services.add_kyc_document(
        actor=request.auth,
        channel=Channel.API,
        consumer=consumer,
        document_code=document_code,
        proof_type=proof_type,
        number=number,
        file=file,
    )


class RequiredDocumentOut(Schema):
    code: str
    name: str
    any_of: list[str] = []
    conditional: bool = False


@router.get("/document-matrix/{applicant_type}", response=list[RequiredDocumentOut], auth=None)
def document_matrix(request, applicant_type: str):
    """Public: the documents an applicant of this type must bring (seed 003 document matrix)."""
    from urja.core.regdata import load

    if applicant_type not in load("customers/document_matrix.toml")["applicant_types"]:
        raise DomainError(f"unknown applicant type {applicant_type!r}", code="unknown_applicant_type")
    return services.required_documents(applicant_type)
