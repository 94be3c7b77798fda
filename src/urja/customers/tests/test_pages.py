"""Issue 15 part 2: a CRE registers a consumer with the KYC documents of the document matrix, opens the
connection and lands on the 360° page — and bad input (a missing document, a wrong file or proof, a
load out of the supply type's range, a bad PIN, another office) changes nothing."""

import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from urja.core.models import AuditEvent
from urja.customers import services
from urja.customers.models import Account, Consumer, Contact, KycDocument
from urja.demo import testing

AADHAAR = "234123412346"  # a valid Verhoeff number (the API test's)


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


def pdf(name="doc.pdf"):
    return SimpleUploadedFile(name, b"%PDF-1.4\n1 0 obj\n", content_type="application/pdf")


def jpeg(name="photo.jpg"):
    return SimpleUploadedFile(name, b"\xff\xd8\xff\xe0\x00\x10JFIF", content_type="image/jpeg")


def owner_post(**changes):
    data = {
        "applicant_type": "owner",
        "kind": "person",
        "name": "Sunita  Behera",
        "guardian_name": "Ramesh Behera",
        "mobile": "94370 12345",
        "email": "",
        "aadhaar": "",
        "preferred_language": "or",
        "channel": "care_centre",
        "doc_identity_proof_proof": "aadhaar",
        "doc_identity_proof_number": AADHAAR,
        "doc_identity_proof_file": pdf("aadhaar.pdf"),
        "doc_photograph_file": jpeg(),
        "doc_ownership_proof_proof": "sale_deed",
        "doc_ownership_proof_number": "SD-2019-4471",
        "doc_ownership_proof_file": pdf("deed.pdf"),
    }
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


def counts():
    return (
        Consumer.objects.count(),
        KycDocument.objects.count(),
        Contact.objects.count(),
        Account.objects.count(),
        AuditEvent.objects.count(),
    )


@pytest.fixture
def cre_client(client, cre):
    client.force_login(cre)
    return client


def _consumer_with_documents(actor, *, name="Sunita Behera"):
    return services.register_consumer_with_documents(
        actor=actor,
        channel="care_centre",
        name=name,
        applicant_type="owner",
        contacts=[services.ContactInput("mobile", "9437012345")],
        documents=[
            services.DocumentUpload("identity_proof", "voter_id", "OR/12/345/678", pdf()),
            services.DocumentUpload("photograph", file=jpeg()),
            services.DocumentUpload("ownership_proof", "land_record", "KH-221", pdf()),
        ],
    )


def account_post(office, **changes):
    data = {
        "section": office.code,
        "premises_address": "Plot 12, Station Road, Balasore",
        "pincode": "756001",
        "area": "urban",
        "supply_type": "lt_1ph",
        "category": "domestic",
        "sub_category": "general",
        "sanctioned_load": "3",
        "load_unit": "kW",
        "bill_cycle": "C01",  # the section has no DT registered: cycle and route place it
        "route": f"{office.code}-R01",
    }
    data.update(changes)
    return data


# --- register a consumer --------------------------------------------------------------------------


def test_the_form_lists_the_checklist_of_the_applicant_type(cre_client):
    html = cre_client.get("/customers/new/").content.decode()
    assert 'name="doc_identity_proof_file"' in html and 'name="doc_ownership_proof_file"' in html
    assert "doc_certificate_of_incorporation_file" not in html
    html = cre_client.get("/customers/new/", {"applicant_type": "company"}).content.decode()
    for code in ("authorised_person_id", "certificate_of_incorporation", "memorandum_articles", "authorisation_letter"):
        assert f'name="doc_{code}_file"' in html
    assert "doc_identity_proof_file" not in html
    # the optional line of the matrix (conditional) is offered but not required
    assert "doc_category_licence_file" not in html  # required_for = [] → on no checklist


def test_cre_registers_a_consumer_with_kyc(cre_client, cre):
    response = cre_client.post("/customers/new/", owner_post())
    assert response.status_code == 302, response.content.decode()[:3000]
    consumer = Consumer.objects.get()
    assert response["Location"] == f"/customers/consumers/{consumer.pk}/"
    assert consumer.name == "Sunita Behera" and consumer.applicant_type == "owner"
    assert consumer.preferred_language == "or" and consumer.aadhaar_masked == "XXXX XXXX 2346"
    docs = {d.document_code: d for d in consumer.documents.all()}
    assert set(docs) == {"identity_proof", "photograph", "ownership_proof"}
    assert docs["identity_proof"].proof_type == "aadhaar" and docs["identity_proof"].number_masked == "XXXX XXXX 2346"
    assert docs["ownership_proof"].number_masked == "XXXXXXXX4471"
    assert docs["photograph"].file.read().startswith(b"\xff\xd8\xff")
    mobile = consumer.contacts.get()
    assert mobile.value == "+919437012345" and not mobile.verified  # staff never verify a contact
    actions = list(AuditEvent.objects.filter(actor=cre).values_list("action", flat=True))
    assert actions.count("consumer.registered") == 1 and actions.count("kyc.document_added") == 3

    page = cre_client.get(response["Location"])
    html = page.content.decode()
    assert page.status_code == 200 and 'id="kyc-complete"' in html and "Sunita Behera" in html
    assert f"/customers/consumers/{consumer.pk}/accounts/new/" in html
    # the file is served to staff in scope, through the scoped view only
    doc = docs["ownership_proof"]
    served = cre_client.get(f"/customers/consumers/{consumer.pk}/documents/{doc.pk}/")
    assert served.status_code == 200 and b"".join(served.streaming_content).startswith(b"%PDF")


def test_an_organisation_registers_with_its_own_checklist(cre_client):
    post = {
        "applicant_type": "company",
        "kind": "organisation",
        "name": "Kalinga Rice Mill Pvt Ltd",
        "mobile": "9437012346",
        "preferred_language": "en",
        "channel": "section_office",
        "doc_authorised_person_id_proof": "pan",
        "doc_authorised_person_id_number": "ABCDE1234F",
        "doc_authorised_person_id_file": pdf(),
        "doc_photograph_file": jpeg(),
        "doc_ownership_proof_proof": "land_record",
        "doc_ownership_proof_file": pdf(),
        "doc_certificate_of_incorporation_file": pdf(),
        "doc_memorandum_articles_file": pdf(),
        "doc_authorisation_letter_file": pdf(),
    }
    response = cre_client.post("/customers/new/", post)
    assert response.status_code == 302, response.content.decode()[:3000]
    consumer = Consumer.objects.get()
    assert consumer.kind == "organisation" and consumer.documents.count() == 6


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"doc_ownership_proof_file": None, "doc_ownership_proof_proof": "", "doc_ownership_proof_number": ""},
         "doc_ownership_proof_file", "Upload the Ownership proof"),
        ({"doc_photograph_file": SimpleUploadedFile("photo.jpg", b"just text", content_type="image/jpeg")},
         "doc_photograph_file", "only PDF, JPEG, PNG files are accepted"),
        ({"doc_identity_proof_file": SimpleUploadedFile("e.pdf", b"", content_type="application/pdf")},
         "doc_identity_proof_file", "The submitted file is empty"),
        ({"doc_ownership_proof_proof": "pan"}, "doc_ownership_proof_proof", "Select a valid choice"),
        ({"doc_ownership_proof_proof": ""}, "doc_ownership_proof_proof", "Say which proof this is"),
        ({"doc_identity_proof_number": "234123412345"}, "doc_identity_proof_number", "Aadhaar number is not valid"),
        ({"aadhaar": "1234 5678 9012"}, "aadhaar", "Aadhaar number is not valid"),
        ({"mobile": "12345"}, "mobile", "Not a valid Indian mobile number"),
        ({"name": ""}, "name", "This field is required"),
        ({"kind": "robot"}, "kind", "Select a valid choice"),
    ],
)  # fmt: skip
def test_bad_registration_changes_nothing(cre_client, changes, field, words):
    before = counts()
    response = cre_client.post("/customers/new/", owner_post(**changes))
    html = response.content.decode()
    assert response.status_code == 400
    assert f'id="id_{field}-error"' in html and words in html, html[:200]
    assert "Nothing was saved" in html
    assert counts() == before


def test_the_service_refuses_a_missing_document_and_writes_nothing(cre):
    before = counts()
    with pytest.raises(services.DomainError) as exc:
        services.register_consumer_with_documents(
            actor=cre,
            channel="care_centre",
            name="Sunita Behera",
            applicant_type="tenant",
            documents=[services.DocumentUpload("identity_proof", "voter_id", "X1", pdf())],
        )
    assert exc.value.code == "documents_missing"
    assert set(exc.value.details["missing"]) == {"photograph", "ownership_proof", "tenancy_proof", "owner_noc"}
    with pytest.raises(services.DomainError) as exc:
        services.register_consumer_with_documents(
            actor=cre,
            channel="care_centre",
            name="Sunita Behera",
            applicant_type="owner",
            documents=[
                services.DocumentUpload("identity_proof", "voter_id", "X1", pdf()),
                services.DocumentUpload("photograph", file=SimpleUploadedFile("p.gif", b"GIF89a....")),
                services.DocumentUpload("ownership_proof", "land_record", "KH-1", pdf()),
            ],
        )
    assert exc.value.code == "invalid_file" and exc.value.details == {"document": "photograph"}
    assert counts() == before


def test_roles_that_do_not_open_accounts_are_refused(client, offices):
    for role in ("billing_officer", "field_agent", "key_account_manager"):
        client.force_login(testing.staff_user(role, offices["division1"]))
        assert client.get("/customers/new/").status_code == 403
        assert client.post("/customers/new/", owner_post()).status_code == 403
    assert Consumer.objects.count() == 0


# --- open the connection --------------------------------------------------------------------------


def test_cre_opens_the_connection_and_lands_on_the_360_page(cre_client, cre, offices):
    consumer = _consumer_with_documents(cre)
    form = cre_client.get(f"/customers/consumers/{consumer.pk}/accounts/new/").content.decode()
    assert offices["section1"].code in form and offices["section2"].code not in form  # own office only
    response = cre_client.post(f"/customers/consumers/{consumer.pk}/accounts/new/", account_post(offices["section1"]))
    assert response.status_code == 302, response.content.decode()[:3000]
    account = Account.objects.get()
    assert response["Location"] == f"/backoffice/accounts/{account.consumer_number}/"
    assert account.consumer == consumer and account.section == offices["section1"]
    assert account.pincode == "756001" and str(account.sanctioned_load) == "3.000" and account.status == "active"
    assert AuditEvent.objects.filter(actor=cre, action="account.opened").count() == 1
    page = cre_client.get(response["Location"])
    assert page.status_code == 200 and account.consumer_number in page.content.decode()
    # the consumer's page links the connection to its 360° view
    html = cre_client.get(f"/customers/consumers/{consumer.pk}/").content.decode()
    assert f"/backoffice/accounts/{account.consumer_number}/" in html


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"sanctioned_load": "7"}, "sanctioned_load", "LT single phase allows at most 5.0 kW; got 7 kW"),
        ({"supply_type": "lt_3ph", "sanctioned_load": "3"}, "sanctioned_load", "needs a load at least 5.5 kW"),
        ({"supply_type": "ht", "sanctioned_load": "50", "load_unit": "kVA"}, "sanctioned_load", "above 70.0 kVA"),
        ({"sanctioned_load": "1e3"}, "sanctioned_load", "sanctioned load"),
        ({"sanctioned_load": "abc"}, "sanctioned_load", "sanctioned load"),
        ({"pincode": "056001"}, "pincode", "A PIN code is 6 digits"),
        ({"pincode": "75600"}, "pincode", "at least 6 characters"),
        ({"premises_address": "   "}, "premises_address", "This field is required"),
        ({"category": "casino"}, "category", "Select a valid choice"),
        ({"sub_category": "bpl_kutir_jyoti", "category": "industrial"}, "sub_category", "unknown sub-category"),
        ({"section": "NOPE"}, "section", "Select a valid choice"),
    ],
)  # fmt: skip
def test_bad_account_changes_nothing(cre_client, cre, offices, changes, field, words):
    consumer = _consumer_with_documents(cre)
    before = counts()
    response = cre_client.post(
        f"/customers/consumers/{consumer.pk}/accounts/new/", account_post(offices["section1"], **changes)
    )
    html = response.content.decode()
    assert response.status_code == 400
    assert f'id="id_{field}-error"' in html and words in html, html[-3000:]
    assert counts() == before


def test_another_offices_section_answers_like_a_nonexistent_one(cre_client, cre, offices):
    consumer = _consumer_with_documents(cre)
    url = f"/customers/consumers/{consumer.pk}/accounts/new/"
    far = cre_client.post(url, account_post(offices["section2"]))
    unknown = cre_client.post(url, account_post(offices["section2"], section="NOPE"))
    assert far.status_code == unknown.status_code == 400

    def error(response):
        return re.search(r'id="id_section-error">([^<]*)<', response.content.decode()).group(1)

    assert error(far).replace(offices["section2"].code, "NOPE") == error(unknown)
    assert "Select a valid choice" in error(far)
    assert Account.objects.count() == 0


def test_no_connection_without_the_required_documents(cre_client, cre, offices):
    consumer = services.register_consumer(actor=cre, channel="care_centre", name="Rabi Sahu")
    page = cre_client.get(f"/customers/consumers/{consumer.pk}/").content.decode()
    assert 'id="kyc-missing"' in page and "Identity proof of applicant" in page
    before = counts()
    response = cre_client.post(f"/customers/consumers/{consumer.pk}/accounts/new/", account_post(offices["section1"]))
    assert response.status_code == 400 and "Upload the missing documents first" in response.content.decode()
    assert counts() == before


# --- documents added later ------------------------------------------------------------------------


def test_add_a_document_on_the_consumer_page(cre_client, cre, offices):
    consumer = services.register_consumer(actor=cre, channel="care_centre", name="Rabi Sahu")
    url = f"/customers/consumers/{consumer.pk}/documents/"
    before = counts()
    bad = cre_client.post(url, {"document_code": "ownership_proof", "proof_type": "pan", "file": pdf()})
    assert bad.status_code == 400 and 'id="id_proof_type-error"' in bad.content.decode()
    assert "PAN card is not accepted as Ownership proof" in bad.content.decode()
    bad = cre_client.post(url, {"document_code": "photograph", "file": SimpleUploadedFile("x.png", b"<svg/>")})
    assert bad.status_code == 400 and 'id="id_file-error"' in bad.content.decode()
    bad = cre_client.post(url, {"document_code": "selfie", "file": jpeg()})
    assert bad.status_code == 400 and 'id="id_document_code-error"' in bad.content.decode()
    bad = cre_client.post(url, {"document_code": "photograph"})
    assert bad.status_code == 400 and 'id="id_file-error"' in bad.content.decode()
    assert counts() == before
    ok = cre_client.post(url, {"document_code": "photograph", "file": jpeg()})
    assert ok.status_code == 302
    assert consumer.documents.get().document_code == "photograph"


# --- scope ----------------------------------------------------------------------------------------


def test_another_offices_consumer_answers_like_a_nonexistent_one(cre_client, offices):
    other = testing.staff_user("cre", offices["division2"])
    far = _consumer_with_documents(other, name="Rabi Behera")
    doc = far.documents.first()
    missing = Consumer.objects.order_by("-pk").first().pk + 1000
    before = counts()
    for consumer_id in (far.pk, missing):
        assert cre_client.get(f"/customers/consumers/{consumer_id}/").status_code == 404
        assert cre_client.get(f"/customers/consumers/{consumer_id}/accounts/new/").status_code == 404
        assert (
            cre_client.post(
                f"/customers/consumers/{consumer_id}/accounts/new/", account_post(offices["section1"])
            ).status_code
            == 404
        )
        assert (
            cre_client.post(
                f"/customers/consumers/{consumer_id}/documents/", {"document_code": "photograph", "file": jpeg()}
            ).status_code
            == 404
        )
        assert cre_client.get(f"/customers/consumers/{consumer_id}/documents/{doc.pk}/").status_code == 404
    assert counts() == before


def test_anonymous_goes_to_login_and_the_navigation_offers_the_page(client, cre):
    assert client.get("/customers/new/")["Location"].startswith("/login/")
    client.force_login(cre)
    assert 'href="/customers/new/"' in client.get("/backoffice/").content.decode()
