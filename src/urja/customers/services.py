"""Consumer and account services: the only code that changes consumers, accounts and contacts."""

from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from urja.core import boundary, ids, regdata
from urja.core.errors import DomainError, NotFound
from urja.core.models import Role, StaffProfile
from urja.core.services import allocate_numbers, record_audit
from urja.core.states import transition
from urja.network.models import DistributionTransformer, Feeder, Office, OfficeLevel

from . import rules
from .models import ACCOUNT_STATUS, Account, AccountGroup, AccountStatus, Consumer, Contact, KycDocument
from .selectors import _path_ids, section_transformers

CONSUMER_NUMBER_TEMPLATE = getattr(settings, "URJA_CONSUMER_NUMBER_TEMPLATE", "{division:3}{seq:8}{check}")


def _power_factor() -> Decimal:
    return Decimal(str(regdata.load("customers/supply_types.toml")["power_factor"]))


def supply_type_table() -> dict[str, rules.SupplyType]:
    return rules.supply_types(regdata.load("customers/supply_types.toml"))


def kam_threshold_kw() -> Decimal:
    return Decimal(str(regdata.load("customers/key_accounts.toml")["threshold_kw"]))


def validate_load(*, supply_type: str, load: object, unit: str) -> Decimal:
    types = supply_type_table()
    if supply_type not in types:
        raise DomainError(
            f"unknown supply type {supply_type!r}", code="unknown_supply_type", details={"allowed": sorted(types)}
        )
    if unit not in ("kW", "kVA"):
        raise DomainError(f"load unit must be kW or kVA, got {unit!r}", code="invalid_load_unit")
    try:  # the boundary's rule: ASCII digits, no exponent, bounded
        value = boundary.parse_quantity(load, name="sanctioned load")
    except boundary.InvalidInput as exc:
        raise DomainError(exc.message, code="invalid_load") from exc
    problem = rules.load_problem(types[supply_type], value, unit, _power_factor())
    if problem:
        raise DomainError(
            problem, code="load_out_of_range", details={"supply_type": supply_type, "load": str(value), "unit": unit}
        )
    return value


def validate_consumer_number(number: str) -> str:
    number = number.strip().upper()
    if not ids.has_valid_check(number):
        raise DomainError(
            f"{number!r} is not a valid consumer number (check digit does not match)", code="invalid_consumer_number"
        )
    return number


def get_account(*, consumer_number: str) -> Account:
    number = validate_consumer_number(consumer_number)
    try:
        return Account.objects.select_related("consumer", "section").get(consumer_number=number)
    except Account.DoesNotExist as exc:
        raise NotFound(f"no account with consumer number {number}", code="account_not_found") from exc


def division_of(section: Office) -> Office:
    if section.level == OfficeLevel.DIVISION:
        return section
    division = section.ancestor_at(OfficeLevel.DIVISION)
    if division is None:
        raise DomainError(f"office {section.code} is not under a division", code="office_not_in_division")
    return division


def new_consumer_numbers(*, section: Office, count: int = 1) -> list[str]:
    division = division_of(section)
    return allocate_numbers(
        key=f"consumer:{division.pk}",
        template=CONSUMER_NUMBER_TEMPLATE,
        count=count,
        fields={"division": f"{division.pk:03d}"},
    )


@dataclass
class ContactInput:
    kind: str
    value: str
    verified: bool = False


def normalise_contact(kind: str, value: str) -> str:
    if kind == Contact.Kind.MOBILE:
        mobile = rules.normalise_mobile(value)
        if not mobile:
            raise DomainError(f"{value!r} is not a valid Indian mobile number", code="invalid_mobile")
        return mobile
    if kind == Contact.Kind.EMAIL:
        from django.core.exceptions import ValidationError
        from django.core.validators import validate_email

        try:
            validate_email(value)
        except ValidationError as exc:
            raise DomainError(f"{value!r} is not a valid e-mail address", code="invalid_email") from exc
        return value.strip().lower()
    raise DomainError(f"unknown contact kind {kind!r}", code="invalid_contact_kind")


def _office(code_or_obj) -> Office:
    if isinstance(code_or_obj, Office):
        return code_or_obj
    try:
        return Office.objects.get(code=code_or_obj)
    except Office.DoesNotExist as exc:
        raise DomainError(f"unknown office {code_or_obj!r}", code="unknown_office") from exc


@transaction.atomic
def register_consumer(
    *,
    actor,
    channel: str,
    name: str,
    kind: str = Consumer.Kind.PERSON,
    applicant_type: str = "owner",
    guardian_name: str = "",
    aadhaar: str = "",
    preferred_language: str = "en",
    contacts: list[ContactInput] | None = None,
) -> Consumer:
    name = " ".join(name.split())
    if not name:
        raise DomainError("consumer name is required", code="name_required")
    if kind not in Consumer.Kind.values:
        raise DomainError("a consumer is a person or an organisation", code="invalid_consumer_kind")
    matrix = regdata.load("customers/document_matrix.toml")
    if applicant_type not in matrix["applicant_types"]:
        raise DomainError(
            f"unknown applicant type {applicant_type!r}",
            code="unknown_applicant_type",
            details={"allowed": matrix["applicant_types"]},
        )
    if preferred_language not in ("en", "hi", "or"):
        raise DomainError("preferred language must be en, hi or or", code="invalid_language")
    masked = ""
    if aadhaar:
        if not rules.aadhaar_valid(aadhaar):
            raise DomainError(
                "Aadhaar number is not valid (12 digits with a Verhoeff check digit)", code="invalid_aadhaar"
            )
        masked = rules.mask_aadhaar(aadhaar)
    normalised = [(c.kind, normalise_contact(c.kind, c.value), c.verified) for c in contacts or []]
    consumer = Consumer.objects.create(
        name=name,
        kind=kind,
        applicant_type=applicant_type,
        guardian_name=guardian_name,
        aadhaar_masked=masked,
        preferred_language=preferred_language,
    )
    for kind_, value, verified in normalised:
        Contact.objects.create(
            consumer=consumer,
            kind=kind_,
            value=value,
            verified=verified,
            verified_at=timezone.now() if verified else None,
        )
    record_audit(
        actor=actor,
        channel=channel,
        action="consumer.registered",
        obj=consumer,
        changes={"name": name, "applicant_type": applicant_type},
    )
    return consumer


# --- placing a connection on the network and in a bill cycle (issue 12) ---------------------------


def bill_cycle_codes() -> list[str]:
    """The bill cycles of the utility's billing calendar (data/billing/cycles.toml; billing creates the
    rows on first use, so the data file, not the table, is the list)."""
    return [row["code"] for row in regdata.load("billing/cycles.toml")["cycle"] if row.get("active", True)]


def _transformer(value):
    if value in (None, ""):
        return None
    if isinstance(value, DistributionTransformer):
        return value
    found = DistributionTransformer.objects.select_related("feeder").filter(code=str(value).strip()).first()
    if found is None:
        raise DomainError(f"unknown distribution transformer {value!r}", code="unknown_transformer")
    return found


def _feeder(value):
    if value in (None, ""):
        return None
    if isinstance(value, Feeder):
        return value
    found = Feeder.objects.filter(code=str(value).strip()).first()
    if found is None:
        raise DomainError(f"unknown feeder {value!r}", code="unknown_feeder")
    return found


@dataclass(frozen=True)
class Placement:
    feeder: object
    transformer: object
    bill_cycle: str
    route: str


def check_placement(
    *,
    section: Office,
    feeder=None,
    transformer=None,
    bill_cycle: str = "",
    route: str = "",
    required: bool = False,
    minigrid_site=None,
) -> Placement:
    """Where a connection sits: its DT (and the DT's feeder) must be one of its section's; with
    `required` (the open-account page, energization) a DT is needed wherever the section has any, the
    bill cycle must be one of the billing calendar's and the route one of this section's (a route
    read in another section, or in another cycle here, is refused). Raises DomainError (400), with
    nothing changed."""
    transformer, feeder = _transformer(transformer), _feeder(feeder)
    allowed = set(_path_ids(section))
    if transformer is not None:
        if transformer.feeder.office_id not in allowed:
            raise DomainError(
                f"DT {transformer.code} is not on a feeder of section {section.code}",
                code="transformer_not_in_section",
                details={"transformer": transformer.code, "section": section.code},
            )
        node_of = getattr(transformer, "minigrid_site", None)  # the reverse one-to-one: None when absent
        if node_of is not None and node_of.pk != getattr(minigrid_site, "pk", None):
            raise DomainError(
                f"DT {transformer.code} is the node of mini-grid site {node_of.code}: only its accounts hang on it",
                code="transformer_of_minigrid",
                details={"transformer": transformer.code, "site": node_of.code},
            )
        if feeder is not None and feeder.pk != transformer.feeder_id:
            raise DomainError(
                f"DT {transformer.code} is on feeder {transformer.feeder.code}, not {feeder.code}",
                code="feeder_mismatch",
                details={"transformer": transformer.code, "feeder": feeder.code},
            )
        feeder = transformer.feeder
    elif feeder is not None and feeder.office_id not in allowed:
        raise DomainError(
            f"feeder {feeder.code} is not a feeder of section {section.code}",
            code="feeder_not_in_section",
            details={"feeder": feeder.code, "section": section.code},
        )
    route = " ".join(str(route or "").split()).upper()
    if len(route) > Account._meta.get_field("route").max_length:
        raise DomainError("the route code is too long", code="invalid_route")
    bill_cycle = str(bill_cycle or "").strip().upper()
    if required:
        if transformer is None and section_transformers(section).exists():
            raise DomainError(
                f"choose the DT of section {section.code} the connection is fed from",
                code="transformer_required",
            )
        cycles = bill_cycle_codes()
        if bill_cycle not in cycles:
            raise DomainError(f"unknown bill cycle {bill_cycle!r}", code="unknown_cycle", details={"allowed": cycles})
        if not route:
            raise DomainError("give the meter-reading route (book) of the section", code="route_required")
        # the (bill_cycle, route) index answers both questions
        elsewhere = Account.objects.filter(bill_cycle__in=cycles, route=route).exclude(section=section)
        if elsewhere.exists():
            raise DomainError(
                f"route {route} is read in another section",
                code="route_of_another_section",
                details={"route": route, "section": section.code},
            )
        other = (
            Account.objects.filter(bill_cycle__in=cycles, route=route, section=section)
            .exclude(bill_cycle=bill_cycle)
            .values_list("bill_cycle", flat=True)
            .first()
        )
        if other:
            raise DomainError(
                f"route {route} is read in bill cycle {other}, not {bill_cycle}",
                code="route_in_another_cycle",
                details={"route": route, "bill_cycle": other},
            )
    return Placement(feeder=feeder, transformer=transformer, bill_cycle=bill_cycle, route=route)


@transaction.atomic
def place_account(*, actor, channel: str, account: Account, transformer=None, bill_cycle: str, route: str) -> Account:
    """Put a (new) connection on the network and in a bill cycle and route of its section, so that it
    is billed and counted in energy accounting (energization of a new connection)."""
    account = Account.objects.select_for_update().select_related("section").get(pk=account.pk)
    where = check_placement(
        section=account.section,
        transformer=transformer,
        bill_cycle=bill_cycle,
        route=route,
        required=True,
        minigrid_site=account.minigrid_site,
    )
    before = {
        "transformer": account.transformer.code if account.transformer_id else None,
        "bill_cycle": account.bill_cycle,
        "route": account.route,
    }
    account.feeder, account.transformer = where.feeder, where.transformer
    account.bill_cycle, account.route = where.bill_cycle, where.route
    account.save(update_fields=["feeder", "transformer", "bill_cycle", "route"])
    record_audit(
        actor=actor,
        channel=channel,
        action="account.placed",
        obj=account,
        changes={
            "from": before,
            "feeder": where.feeder.code if where.feeder else None,
            "transformer": where.transformer.code if where.transformer else None,
            "bill_cycle": where.bill_cycle,
            "route": where.route,
        },
    )
    return account


@transaction.atomic
def open_account(
    *,
    actor,
    channel: str,
    consumer: Consumer,
    section,
    premises_address: str,
    category: str,
    supply_type: str,
    sanctioned_load: object,
    load_unit: str = "kW",
    sub_category: str = "general",
    area: str = "urban",
    pincode: str = "",
    latitude: object = None,
    longitude: object = None,
    feeder=None,
    transformer=None,
    bill_cycle: str = "C01",
    route: str = "",
    is_prepaid: bool = False,
    group=None,
    minigrid_site=None,
    package_code: str = "",
    pending: bool = False,
    placement_required: bool = False,
) -> Account:
    """`pending`: opened for a new connection's demand note (status pending, no connection date);
    `activate_account` makes it active when the supply is on. The DT (and its feeder) must be the
    section's (`check_placement`); `placement_required` (the open-account page) also demands the DT,
    a bill cycle of the billing calendar and a route of the section."""
    section = _office(section)
    where = check_placement(
        section=section,
        feeder=feeder,
        transformer=transformer,
        bill_cycle=bill_cycle,
        route=route,
        required=placement_required,
        minigrid_site=minigrid_site,
    )
    feeder, transformer = where.feeder, where.transformer
    if placement_required:
        bill_cycle, route = where.bill_cycle, where.route
    load = validate_load(supply_type=supply_type, load=sanctioned_load, unit=load_unit)
    categories = {c["code"]: c for c in regdata.load("customers/categories.toml")["category"]}
    if category not in categories:
        raise DomainError(
            f"unknown category {category!r}", code="unknown_category", details={"allowed": sorted(categories)}
        )
    if sub_category not in categories[category]["sub_categories"]:
        raise DomainError(
            f"unknown sub-category {sub_category!r} for {category}",
            code="unknown_sub_category",
            details={"allowed": categories[category]["sub_categories"]},
        )
    if area not in Account.Area.values:
        raise DomainError("area must be urban or rural", code="invalid_area")
    if not premises_address.strip():
        raise DomainError("premises address is required", code="address_required")
    number = new_consumer_numbers(section=section)[0]
    account = Account.objects.create(
        consumer_number=number,
        consumer=consumer,
        premises_address=premises_address.strip(),
        pincode=pincode,
        latitude=latitude,
        longitude=longitude,
        category=category,
        sub_category=sub_category,
        supply_type=supply_type,
        sanctioned_load=load,
        load_unit=load_unit,
        area=area,
        section=section,
        office_path=section.path,
        feeder=feeder,
        transformer=transformer,
        bill_cycle=bill_cycle,
        route=route,
        is_prepaid=is_prepaid,
        group=group,
        minigrid_site=minigrid_site,
        package_code=package_code,
        connected_on=None if pending else timezone.localdate(),
        **({"status": AccountStatus.PENDING} if pending else {}),
    )
    record_audit(
        actor=actor,
        channel=channel,
        action="account.opened",
        obj=account,
        changes={"consumer_number": number, "supply_type": supply_type, "load": f"{load} {load_unit}"},
    )
    assign_key_account_manager(account=account)
    return account


def pick_key_account_manager(section: Office):
    """The key-account manager nearest above the section, with the fewest key accounts."""
    ancestor_ids = _path_ids(section)
    candidates = (
        StaffProfile.objects.filter(role=Role.KEY_ACCOUNT_MANAGER)
        .filter(Q(office_id__in=ancestor_ids) | Q(office__isnull=True))
        .select_related("office", "user")
        .annotate(load=Count("user__key_accounts"))
    )
    if not candidates:
        return None
    depth = {oid: i for i, oid in enumerate(ancestor_ids)}
    best = min(candidates, key=lambda p: (-depth.get(p.office_id, -1), p.load, p.pk))
    return best.user


def assign_key_account_manager(*, account: Account) -> None:
    """Seed 000: every account above the threshold has a key-account manager; none below it."""
    load_kw = rules.load_in_kw(account.sanctioned_load, account.load_unit, _power_factor())
    wanted = load_kw > kam_threshold_kw()
    if wanted and account.key_account_manager_id is None:
        manager = pick_key_account_manager(account.section)
        if manager is not None:
            account.key_account_manager = manager
            account.save(update_fields=["key_account_manager"])
            record_audit(
                actor=None,
                channel="system",
                action="account.kam_assigned",
                obj=account,
                changes={"key_account_manager": manager.get_username()},
            )
    elif not wanted and account.key_account_manager_id is not None:
        account.key_account_manager = None
        account.save(update_fields=["key_account_manager"])
        record_audit(actor=None, channel="system", action="account.kam_released", obj=account, changes={})


@transaction.atomic
def change_sanctioned_load(
    *, actor, channel: str, account: Account, load: object, unit: str, supply_type: str | None = None
) -> Account:
    account = Account.objects.select_for_update().select_related("section").get(pk=account.pk)
    supply_type = supply_type or account.supply_type
    value = validate_load(supply_type=supply_type, load=load, unit=unit)
    before = f"{account.sanctioned_load} {account.load_unit} {account.supply_type}"
    account.sanctioned_load, account.load_unit, account.supply_type = value, unit, supply_type
    account.save(update_fields=["sanctioned_load", "load_unit", "supply_type"])
    record_audit(
        actor=actor,
        channel=channel,
        action="account.load_changed",
        obj=account,
        changes={"from": before, "to": f"{value} {unit} {supply_type}"},
    )
    assign_key_account_manager(account=account)
    return account


@transaction.atomic
def activate_account(*, actor, channel: str, account: Account, connected_on, reason: str) -> Account:
    """A pending account's supply is on (a new connection energized): active from `connected_on`."""
    account = Account.objects.select_for_update().get(pk=account.pk)
    account.connected_on = connected_on
    transition(
        account,
        ACCOUNT_STATUS,
        AccountStatus.ACTIVE,
        actor=actor,
        channel=channel,
        reason=reason,
        extra_fields=["connected_on"],
        action="account.status_changed",
        changes={"connected_on": connected_on},
    )
    return account


@transaction.atomic
def change_category(*, actor, channel: str, account: Account, category: str, sub_category: str = "general") -> Account:
    """The account's tariff category (a category-change request applied from its effective date)."""
    categories = {c["code"]: c for c in regdata.load("customers/categories.toml")["category"]}
    if category not in categories or sub_category not in categories[category]["sub_categories"]:
        raise DomainError(
            f"unknown category {category}/{sub_category}",
            code="unknown_category",
            details={"allowed": sorted(categories)},
        )
    account = Account.objects.select_for_update().get(pk=account.pk)
    before = f"{account.category}/{account.sub_category}"
    account.category, account.sub_category = category, sub_category
    account.save(update_fields=["category", "sub_category"])
    record_audit(
        actor=actor,
        channel=channel,
        action="account.category_changed",
        obj=account,
        changes={"from": before, "to": f"{category}/{sub_category}"},
    )
    return account


@transaction.atomic
def transfer_account(*, actor, channel: str, account: Account, consumer: Consumer, reason: str) -> Account:
    """Name change / transfer of ownership: the connection passes to `consumer` (its dues stay with the
    account: settled before, or carried by the new holder)."""
    account = Account.objects.select_for_update().get(pk=account.pk)
    before = account.consumer_id
    account.consumer = consumer
    account.save(update_fields=["consumer"])
    record_audit(
        actor=actor,
        channel=channel,
        action="account.transferred",
        obj=account,
        changes={"from_consumer": before, "to_consumer": consumer.pk, "name": consumer.name, "reason": reason},
    )
    return account


@transaction.atomic
def change_package(*, actor, channel: str, account: Account, package_code: str) -> Account:
    """A mini-grid connection's package (the tariff's package list): the one write of
    Account.package_code after the account is opened (a package change put in force)."""
    before = account.package_code
    if before == package_code:
        return account
    account.package_code = package_code
    account.save(update_fields=["package_code"])
    record_audit(
        actor=actor, channel=channel, action="account.package_changed", obj=account,
        changes={"from": before, "to": package_code},
    )  # fmt: skip
    return account


@transaction.atomic
def change_account_status(*, actor, channel: str, account: Account, status: str, reason: str) -> Account:
    account = Account.objects.select_for_update().get(pk=account.pk)
    ACCOUNT_STATUS.check(account.status, status)
    if not reason.strip():
        raise DomainError("a reason is required to change an account's status", code="reason_required")
    transition(
        account, ACCOUNT_STATUS, status, actor=actor, channel=channel, reason=reason, action="account.status_changed"
    )
    return account


@transaction.atomic
def add_contact(
    *,
    actor,
    channel: str,
    consumer: Consumer,
    kind: str,
    value: str,
    verified: bool = False,
    whatsapp_opt_in: bool = False,
) -> Contact:
    normalised = normalise_contact(kind, value)
    contact, created = Contact.objects.get_or_create(
        consumer=consumer,
        kind=kind,
        value=normalised,
        defaults={
            "verified": verified,
            "verified_at": timezone.now() if verified else None,
            "whatsapp_opt_in": whatsapp_opt_in,
        },
    )
    if created:
        # The newest contact of a kind becomes the primary one.
        Contact.objects.filter(consumer=consumer, kind=kind).exclude(pk=contact.pk).update(is_primary=False)
        record_audit(
            actor=actor,
            channel=channel,
            action="contact.added",
            obj=consumer,
            changes={"kind": kind, "value": normalised, "verified": verified},
        )
    return contact


@transaction.atomic
def set_preferred_language(*, actor, channel: str, consumer: Consumer, language: str) -> Consumer:
    if language not in ("en", "hi", "or"):
        raise DomainError("preferred language must be en, hi or or", code="invalid_language")
    before = consumer.preferred_language
    consumer.preferred_language = language
    consumer.save(update_fields=["preferred_language"])
    record_audit(
        actor=actor,
        channel=channel,
        action="consumer.language_changed",
        obj=consumer,
        changes={"from": before, "to": language},
    )
    return consumer


def document_types() -> dict[str, dict]:
    return {d["code"]: d for d in regdata.load("customers/document_matrix.toml")["document"]}


def required_documents(applicant_type: str) -> list[dict]:
    return [d for d in document_types().values() if applicant_type in d.get("required_for", [])]


def upload_limits() -> tuple[list[str], int]:
    """The file kinds and the size a KYC document may have (document matrix [upload])."""
    upload = regdata.load("customers/document_matrix.toml").get("upload", {})
    return list(upload.get("kinds", ["pdf", "jpeg", "png"])), int(upload.get("max_bytes", 5 * 1024 * 1024))


def document_file_problem(file) -> str | None:
    """None when `file` (an uploaded file) is a PDF, JPEG or PNG within the size limit; else why not."""
    kinds, max_bytes = upload_limits()
    file.seek(0)
    head = file.read(16)
    file.seek(0)
    return rules.file_problem(head=head, size=file.size or 0, kinds=kinds, max_bytes=max_bytes)


def _check_document(*, document_code: str, proof_type: str, number: str, file) -> str:
    """Validate one KYC document against the matrix (nothing written); return the number masked."""
    types = document_types()
    if document_code not in types:
        raise DomainError(
            f"unknown document type {document_code!r}", code="unknown_document_type", details={"allowed": sorted(types)}
        )
    allowed_proofs = types[document_code].get("any_of", [])
    if proof_type and allowed_proofs and proof_type not in allowed_proofs:
        raise DomainError(
            f"{proof_type!r} is not accepted as {types[document_code]['name']}",
            code="proof_type_not_accepted",
            details={"allowed": allowed_proofs, "document": document_code},
        )
    if file:
        problem = document_file_problem(file)
        if problem:
            raise DomainError(
                f"{types[document_code]['name']}: {problem}", code="invalid_file", details={"document": document_code}
            )
    if proof_type == "aadhaar":
        if not rules.aadhaar_valid(number):
            raise DomainError(
                "Aadhaar number is not valid (12 digits with a Verhoeff check digit)",
                code="invalid_aadhaar",
                details={"document": document_code},
            )
        return rules.mask_aadhaar(number)
    return ("X" * max(len(number) - 4, 0)) + number[-4:] if number else ""


@transaction.atomic
def add_kyc_document(
    *, actor, channel: str, consumer: Consumer, document_code: str, proof_type: str = "", number: str = "", file=None
) -> KycDocument:
    masked = _check_document(document_code=document_code, proof_type=proof_type, number=number, file=file)
    if proof_type == "aadhaar" and not consumer.aadhaar_masked:
        consumer.aadhaar_masked = masked
        consumer.save(update_fields=["aadhaar_masked"])
    document = KycDocument.objects.create(
        consumer=consumer, document_code=document_code, proof_type=proof_type, number_masked=masked, file=file or ""
    )
    record_audit(
        actor=actor,
        channel=channel,
        action="kyc.document_added",
        obj=consumer,
        changes={"document": document_code, "proof": proof_type, "number": masked},
    )
    return document


@dataclass(frozen=True)
class DocumentUpload:
    """One line of the checklist as given: the document, which proof of its 'any of', its number, the file."""

    document_code: str
    proof_type: str = ""
    number: str = ""
    file: object = None


def missing_documents(*, applicant_type: str, given: set[str] | list[str]) -> list[dict]:
    """The documents the matrix requires of `applicant_type` (conditional ones excepted) not in `given`."""
    return [d for d in required_documents(applicant_type) if not d.get("conditional") and d["code"] not in given]


def consumer_missing_documents(*, consumer: Consumer) -> list[dict]:
    """The required documents of the consumer's applicant type that are not on file."""
    given = set(consumer.documents.values_list("document_code", flat=True))
    return missing_documents(applicant_type=consumer.applicant_type, given=given)


@transaction.atomic
def register_consumer_with_documents(
    *,
    actor,
    channel: str,
    name: str,
    applicant_type: str,
    documents: list[DocumentUpload],
    kind: str = Consumer.Kind.PERSON,
    guardian_name: str = "",
    aadhaar: str = "",
    preferred_language: str = "en",
    contacts: list[ContactInput] | None = None,
) -> Consumer:
    """Register a consumer with the KYC documents of the matrix's checklist for `applicant_type`:
    every required document given (conditional ones when they apply), each typed by its proof and a
    PDF, JPEG or PNG. Everything is checked before anything is written: a missing or wrong document
    registers nothing."""
    checklist = {d["code"] for d in required_documents(applicant_type)}
    codes = [d.document_code for d in documents]
    for code in codes:
        if code not in checklist:
            raise DomainError(
                f"{code!r} is not on the checklist of a {applicant_type} applicant",
                code="document_not_in_checklist",
                details={"document": code, "allowed": sorted(checklist)},
            )
    if len(set(codes)) != len(codes):
        raise DomainError("a document is given twice", code="duplicate_document")
    missing = missing_documents(applicant_type=applicant_type, given=set(codes))
    if missing:
        raise DomainError(
            "missing: " + "; ".join(d["name"] for d in missing),
            code="documents_missing",
            details={"missing": [d["code"] for d in missing]},
        )
    for doc in documents:
        _check_document(document_code=doc.document_code, proof_type=doc.proof_type, number=doc.number, file=doc.file)
    consumer = register_consumer(
        actor=actor,
        channel=channel,
        name=name,
        kind=kind,
        applicant_type=applicant_type,
        guardian_name=guardian_name,
        aadhaar=aadhaar,
        preferred_language=preferred_language,
        contacts=contacts,
    )
    for doc in documents:
        add_kyc_document(
            actor=actor,
            channel=channel,
            consumer=consumer,
            document_code=doc.document_code,
            proof_type=doc.proof_type,
            number=doc.number,
            file=doc.file,
        )
    return consumer


def _next_prefix(prefix: str) -> str:
    """The smallest string greater than every string starting with `prefix` (for range scans)."""
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


def search_accounts(*, queryset: QuerySet, query: str, limit: int = 20) -> QuerySet:
    """Find accounts by consumer number, mobile or name prefix — each an indexed lookup.

    Prefixes are range conditions (>= p AND < next(p)), which a plain b-tree index serves under
    any collation; LIKE 'p%' would need a pattern index on PostgreSQL with a non-C collation.
    """
    q = " ".join(query.split())
    if not q:
        return queryset.none()
    compact = q.replace(" ", "").replace("-", "")
    digits = compact.removeprefix("+")
    if digits.isdigit() and len(digits) >= 10:
        mobile = rules.normalise_mobile(compact) if len(digits) in (10, 11, 12) else None
        if mobile:
            # Resolve the contact first: an OR with a sub-select would defeat both indexes.
            consumer_ids = list(
                Contact.objects.filter(kind=Contact.Kind.MOBILE, value=mobile).values_list("consumer_id", flat=True)[
                    :100
                ]
            )
            return queryset.filter(Q(consumer_number=digits) | Q(consumer_id__in=consumer_ids))[:limit]
        return queryset.filter(consumer_number=digits)[:limit]
    if compact.isalnum() and any(ch.isdigit() for ch in compact):
        prefix = compact.upper()
        return queryset.filter(consumer_number__gte=prefix, consumer_number__lt=_next_prefix(prefix)).order_by(
            "consumer_number"
        )[:limit]
    from django.db.models.functions import Upper

    prefix = q.upper()
    return (
        queryset.annotate(_name=Upper("consumer__name"))
        .filter(_name__gte=prefix, _name__lt=_next_prefix(prefix), _name__startswith=prefix)
        .order_by("_name")
    )[:limit]


def create_group(*, actor, channel: str, name: str, kind: str, key_account_manager=None) -> AccountGroup:
    group = AccountGroup.objects.create(name=name, kind=kind, key_account_manager=key_account_manager)
    record_audit(actor=actor, channel=channel, action="group.created", obj=group, changes={"name": name})
    return group
