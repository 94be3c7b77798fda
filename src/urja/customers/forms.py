"""Forms of the customers pages: register a consumer with the KYC checklist of the document matrix,
upload a document, open an account. They check shape and give per-field errors; the services
(customers.services) decide meaning and are checked again there."""

import re

from django import forms
from django.utils.translation import gettext_lazy as _

from urja.core.errors import DomainError
from urja.core.labels import label
from urja.core.models import Channel

from . import rules, services
from .models import Account, Consumer

LANGUAGES = [("en", "English"), ("hi", "हिन्दी"), ("or", "ଓଡ଼ିଆ")]
# Where the consumer is in front of the staff member registering them.
CHANNELS = [Channel.CARE_CENTRE, Channel.SECTION_OFFICE, Channel.ANUBHAV_KENDRA, Channel.CAMP]
PIN_RE = re.compile(r"[1-9][0-9]{5}")
ACCEPT = ".pdf,.jpg,.jpeg,.png,application/pdf,image/jpeg,image/png"


def applicant_type_choices():
    return [(t, label(t)) for t in services.regdata.load("customers/document_matrix.toml")["applicant_types"]]


def _file_field(required: bool, name: str) -> forms.FileField:
    return forms.FileField(
        label=_("File"),
        required=required,
        widget=forms.ClearableFileInput(attrs={"accept": ACCEPT}),
        error_messages={"required": _("Upload the %(name)s.") % {"name": name}},
    )


class DocumentFields:
    """The fields of one checklist line: which proof (when the matrix gives a choice), its number, the file."""

    def __init__(self, form: forms.Form, doc: dict, *, prefix: str, required: bool):
        self.form, self.doc, self.prefix = form, doc, prefix
        name = label(doc["code"])
        self.name = name
        if doc.get("any_of"):
            form.fields[f"{prefix}proof"] = forms.ChoiceField(
                label=_("Which proof"),
                required=False,
                choices=[("", "—")] + [(p, label(p)) for p in doc["any_of"]],
            )
        form.fields[f"{prefix}number"] = forms.CharField(
            label=_("Document number"), required=False, max_length=40, help_text=_("Stored masked: the last 4 only.")
        )
        form.fields[f"{prefix}file"] = _file_field(required, name)

    @property
    def bound_fields(self):
        names = (f"{self.prefix}proof", f"{self.prefix}number", f"{self.prefix}file")
        return [self.form[n] for n in names if n in self.form.fields]

    def clean(self, form, data) -> services.DocumentUpload | None:
        file = data.get(f"{self.prefix}file")
        proof = data.get(f"{self.prefix}proof", "")
        number = (data.get(f"{self.prefix}number") or "").strip()
        if not file:
            if proof or number:
                form.add_error(f"{self.prefix}file", _("Upload the %(name)s.") % {"name": self.name})
            return None
        problem = services.document_file_problem(file)
        if problem:
            form.add_error(f"{self.prefix}file", problem)
        if self.doc.get("any_of") and not proof:
            form.add_error(f"{self.prefix}proof", _("Say which proof this is."))
        if proof == "aadhaar" and not rules.aadhaar_valid(number):
            form.add_error(f"{self.prefix}number", _("Aadhaar number is not valid (12 digits with a check digit)."))
        return services.DocumentUpload(self.doc["code"], proof, number, file)


class ConsumerForm(forms.Form):
    """A consumer (person or organisation) with the documents the matrix requires of its applicant type."""

    applicant_type = forms.ChoiceField(label=_("Applicant type"))
    kind = forms.ChoiceField(
        label=_("Person or organisation"),
        choices=[(Consumer.Kind.PERSON, _("Person")), (Consumer.Kind.ORGANISATION, _("Organisation"))],
    )
    name = forms.CharField(label=_("Name"), max_length=160)
    guardian_name = forms.CharField(label=_("Father's / husband's name"), max_length=160, required=False)
    mobile = forms.CharField(label=_("Mobile"), max_length=20)
    email = forms.EmailField(label=_("E-mail"), required=False, max_length=254)
    aadhaar = forms.CharField(
        label=_("Aadhaar number"), max_length=20, required=False, help_text=_("Stored masked: the last 4 only.")
    )
    preferred_language = forms.ChoiceField(label=_("Preferred language"), choices=LANGUAGES)
    channel = forms.ChoiceField(label=_("Received at"))

    def __init__(self, *args, applicant_type: str = "owner", **kwargs):
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)
        self.fields["applicant_type"].choices = applicant_type_choices()
        self.fields["applicant_type"].initial = applicant_type
        self.fields["channel"].choices = [(c.value, label(c.value)) for c in CHANNELS]
        self.applicant_type_value = applicant_type
        self.checklist = [
            DocumentFields(self, d, prefix=f"doc_{d['code']}_", required=not d.get("conditional"))
            for d in services.required_documents(applicant_type)
        ]

    PERSON_FIELDS = ("kind", "name", "guardian_name", "mobile", "email", "aadhaar", "preferred_language", "channel")

    def consumer_fields(self):
        return [self[name] for name in self.PERSON_FIELDS]

    def applicant_type_label(self) -> str:
        return label(self.applicant_type_value)

    def clean_mobile(self):
        mobile = rules.normalise_mobile(self.cleaned_data["mobile"])
        if not mobile:
            raise forms.ValidationError(_("Not a valid Indian mobile number."))
        return mobile

    def clean_aadhaar(self):
        aadhaar = self.cleaned_data["aadhaar"].strip()
        if aadhaar and not rules.aadhaar_valid(aadhaar):
            raise forms.ValidationError(_("Aadhaar number is not valid (12 digits with a check digit)."))
        return aadhaar

    def clean(self):
        data = super().clean()
        self.documents = [d for d in (line.clean(self, data) for line in self.checklist) if d is not None]
        return data

    def contacts(self) -> list[services.ContactInput]:
        found = [services.ContactInput("mobile", self.cleaned_data["mobile"])]
        if self.cleaned_data.get("email"):
            found.append(services.ContactInput("email", self.cleaned_data["email"]))
        return found


class DocumentForm(forms.Form):
    """One more KYC document for a registered consumer: any line of the checklist."""

    document_code = forms.ChoiceField(label=_("Document"))
    proof_type = forms.ChoiceField(label=_("Which proof"), required=False)
    number = forms.CharField(
        label=_("Document number"), required=False, max_length=40, help_text=_("Stored masked: the last 4 only.")
    )
    file = forms.FileField(label=_("File"), widget=forms.ClearableFileInput(attrs={"accept": ACCEPT}))

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)
        types = services.document_types()
        self.fields["document_code"].choices = [("", "—")] + [(code, label(code)) for code in types]
        proofs = sorted({p for d in types.values() for p in d.get("any_of", [])})
        self.fields["proof_type"].choices = [("", "—")] + [(p, label(p)) for p in proofs]
        self.types = types

    def clean_file(self):
        file = self.cleaned_data["file"]
        problem = services.document_file_problem(file)
        if problem:
            raise forms.ValidationError(problem)
        return file

    def clean(self):
        data = super().clean()
        doc = self.types.get(data.get("document_code") or "")
        proof = data.get("proof_type") or ""
        if doc and doc.get("any_of"):
            if not proof:
                self.add_error("proof_type", _("Say which proof this is."))
            elif proof not in doc["any_of"]:
                self.add_error(
                    "proof_type",
                    _("%(proof)s is not accepted as %(doc)s.") % {"proof": label(proof), "doc": label(doc["code"])},
                )
        elif doc and proof:
            self.add_error("proof_type", _("This document takes no choice of proof."))
        if proof == "aadhaar" and not rules.aadhaar_valid((data.get("number") or "").strip()):
            self.add_error("number", _("Aadhaar number is not valid (12 digits with a check digit)."))
        return data


class AccountForm(forms.Form):
    """A connection for a registered consumer: supply, category, load within the supply type's range,
    premises with PIN, and the section office (within the staff member's scope)."""

    section = forms.ChoiceField(label=_("Section office"))
    premises_address = forms.CharField(label=_("Premises address"), max_length=500, widget=forms.Textarea({"rows": 3}))
    pincode = forms.CharField(label=_("PIN code"), max_length=6, min_length=6)
    area = forms.ChoiceField(label=_("Area"), choices=[("urban", _("Urban")), ("rural", _("Rural"))])
    supply_type = forms.ChoiceField(label=_("Supply type"))
    category = forms.ChoiceField(label=_("Category"))
    sub_category = forms.ChoiceField(label=_("Sub-category"))
    sanctioned_load = forms.CharField(
        label=_("Sanctioned load"), max_length=20, widget=forms.TextInput({"inputmode": "decimal"})
    )
    load_unit = forms.ChoiceField(label=_("Load unit"), choices=Account.LoadUnit.choices)
    # where the connection sits: billed in its cycle and route, counted on its DT and feeder
    transformer = forms.ChoiceField(label=_("Distribution transformer (DT)"), required=False)
    bill_cycle = forms.ChoiceField(label=_("Bill cycle"))
    route = forms.CharField(label=_("Reading route (book)"), max_length=16)

    def __init__(self, *args, sections, **kwargs):
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)
        self.fields["section"].choices = [("", "—")] + [(s.code, f"{s.name} ({s.code})") for s in sections]
        # the DTs of each section, grouped by section (the service refuses a DT of another section)
        groups = []
        for s in sections:
            dts = [(d.code, f"{d.code} · {d.feeder.code} {d.feeder.name}") for d in services.section_transformers(s)]
            if dts:
                groups.append((f"{s.name} ({s.code})", dts))
        self.fields["transformer"].choices = [("", "—"), *groups]
        self.fields["bill_cycle"].choices = [(c, c) for c in services.bill_cycle_codes()]
        self.fields["route"].widget.attrs.update({"list": "route-list", "autocomplete": "off"})
        types = services.supply_type_table()
        self.fields["supply_type"].choices = [(t.code, f"{label(t.code)} ({self._range(t)})") for t in types.values()]
        categories = services.regdata.load("customers/categories.toml")["category"]
        self.fields["category"].choices = [(c["code"], label(c["code"])) for c in categories]
        subs = []
        for c in categories:
            subs += [s for s in c["sub_categories"] if s not in subs]
        self.fields["sub_category"].choices = [(s, label(s)) for s in subs]
        self.fields["sub_category"].initial = "general"

    @staticmethod
    def _range(t: rules.SupplyType) -> str:
        low = f"{'>' if t.min_exclusive else '≥'} {t.min_load.normalize()} {t.unit}"
        return f"{low}, ≤ {t.max_load.normalize()} {t.max_unit}" if t.max_load is not None else low

    def clean_pincode(self):
        pin = self.cleaned_data["pincode"].strip()
        if not PIN_RE.fullmatch(pin):
            raise forms.ValidationError(_("A PIN code is 6 digits, not starting with 0."))
        return pin

    def clean_premises_address(self):
        address = " ".join(self.cleaned_data["premises_address"].split())
        if not address:
            raise forms.ValidationError(_("Give the premises address."))
        return address

    def clean(self):
        data = super().clean()
        if data.get("supply_type") and data.get("sanctioned_load") and data.get("load_unit"):
            try:
                data["sanctioned_load"] = services.validate_load(
                    supply_type=data["supply_type"], load=data["sanctioned_load"], unit=data["load_unit"]
                )
            except DomainError as exc:
                self.add_error("sanctioned_load", exc.message)
        return data


# Which field a service error belongs to (a DomainError's code → the form's field).
ERROR_FIELDS = {
    "name_required": "name",
    "invalid_mobile": "mobile",
    "invalid_email": "email",
    "invalid_aadhaar": "aadhaar",
    "unknown_applicant_type": "applicant_type",
    "invalid_consumer_kind": "kind",
    "invalid_language": "preferred_language",
    "unknown_office": "section",
    "address_required": "premises_address",
    "unknown_supply_type": "supply_type",
    "invalid_load_unit": "load_unit",
    "invalid_load": "sanctioned_load",
    "load_out_of_range": "sanctioned_load",
    "unknown_category": "category",
    "unknown_sub_category": "sub_category",
    "invalid_area": "area",
    "unknown_transformer": "transformer",
    "transformer_not_in_section": "transformer",
    "transformer_required": "transformer",
    "feeder_mismatch": "transformer",
    "unknown_cycle": "bill_cycle",
    "route_required": "route",
    "invalid_route": "route",
    "route_of_another_section": "route",
    "route_in_another_cycle": "route",
}


def add_service_error(form: forms.Form, exc) -> None:
    """Show a service's DomainError on the field it is about (else above the form)."""
    field = ERROR_FIELDS.get(exc.code)
    document = exc.details.get("document") if isinstance(exc.details, dict) else None
    if document and f"doc_{document}_file" in form.fields:
        field = {"invalid_aadhaar": f"doc_{document}_number", "proof_type_not_accepted": f"doc_{document}_proof"}.get(
            exc.code, f"doc_{document}_file"
        )
    form.add_error(field if field in form.fields else None, exc.message)
