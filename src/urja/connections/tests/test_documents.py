"""Typed document uploads on the connections API: POST /applications/{number}/documents (multipart)
checked against the document matrix for the applicant's type and the matrix's [upload] limits.
Every refusal is {code, message, details} and changes nothing; another office's application answers
like a missing one."""

from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from urja.connections import selectors, services
from urja.connections.models import ApplicationDocument, ApplicationStatus
from urja.core.models import AuditEvent
from urja.customers.models import KycDocument
from urja.demo.testing import staff_user

from .test_api import bearer, body

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 40


def _apply(c, offices, cre) -> str:
    r = c.post("/api/v1/connections/applications", body(offices), content_type="application/json", **bearer(cre))
    assert r.status_code == 201, r.json()
    return r.json()["number"]


def _upload(c, number, user, *, code="ownership_proof", proof_type="land_record", name="deed.pdf", data=PDF, **kw):
    form = {"code": code, "proof_type": proof_type, "proof_number": "KH-22", **kw}
    if data is not None:
        form["file"] = SimpleUploadedFile(name, data, content_type="application/pdf")
    return c.post(f"/api/v1/connections/applications/{number}/documents", form, **bearer(user))


def _state():
    return (KycDocument.objects.count(), ApplicationDocument.objects.count(), AuditEvent.objects.count())


def test_an_upload_replaces_the_typed_line_with_its_file(offices, loaded, cre):
    c = Client()
    number = _apply(c, offices, cre)
    listed = c.get(f"/api/v1/connections/applications/{number}/documents", **bearer(cre)).json()
    assert {d["code"]: d["has_file"] for d in listed} == {
        "identity_proof": False, "photograph": False, "ownership_proof": False,
    }  # fmt: skip
    r = _upload(c, number, cre)
    assert r.status_code == 201, r.json()
    assert r.json()["code"] == "ownership_proof" and r.json()["has_file"] is True
    assert r.json()["proof_type"] == "land_record" and r.json()["number_masked"].endswith("-22")
    line = ApplicationDocument.objects.get(application__number=number, document_code="ownership_proof")
    assert line.document.file.read().startswith(b"%PDF")
    photo = _upload(c, number, cre, code="photograph", proof_type="", name="me.png", data=PNG)
    assert photo.status_code == 201 and photo.json()["has_file"] is True
    # a conditional line of the matrix not given at registration may be added; the number is masked
    assert ApplicationDocument.objects.filter(application__number=number).count() == 3
    event = AuditEvent.objects.filter(action="connection.document_added").order_by("id").last()
    assert event.changes["kind"] == "png" and event.changes["replaced"] is True


def test_bad_uploads_get_a_specific_4xx_and_change_nothing(offices, loaded, cre, settings):
    c = Client()
    number = _apply(c, offices, cre)
    before = _state()
    big = PDF + b"0" * (5 * 1024 * 1024)
    cases = [
        (dict(data=b"MZ\x90\x00 not a pdf", name="deed.pdf"), 415, "unsupported_file_type"),  # the name lies
        (dict(data=b"GIF89a" + b"\x00" * 20, name="deed.gif"), 415, "unsupported_file_type"),
        (dict(data=big), 413, "file_too_large"),
        (dict(data=b""), 400, "file_empty"),
        (dict(code="tenancy_proof", proof_type="rent_agreement"), 400, "document_not_on_checklist"),
        (dict(code="no_such_document"), 400, "unknown_document_type"),
        (dict(proof_type="pan"), 400, "proof_type_not_accepted"),
        (dict(code="identity_proof", proof_type="aadhaar", proof_number="1234"), 400, "invalid_aadhaar"),
        (dict(data=None), 422, "validation_error"),  # no file part at all
    ]
    for kw, status, code in cases:
        r = _upload(c, number, cre, **kw)
        answer = r.json()
        assert (r.status_code, answer.get("code")) == (status, code), (kw.get("code"), answer)
        assert set(answer) == {"code", "message", "details"} and answer["message"]
    assert _state() == before
    too_big = _upload(c, number, cre, data=big).json()
    assert too_big["details"]["max_bytes"] == 5 * 1024 * 1024 and "5 MB" in too_big["message"]


def test_out_of_scope_missing_or_closed_applications(offices, loaded, cre, engineer):
    c = Client()
    number = _apply(c, offices, cre)
    other = staff_user("cre", offices["division2"])
    before = _state()
    theirs = _upload(c, number, other)
    missing = _upload(c, "NC2600000000", other)
    assert theirs.status_code == missing.status_code == 404
    assert theirs.json()["code"] == missing.json()["code"] == "application_not_found"
    assert theirs.json()["message"] == missing.json()["message"].replace("NC2600000000", number)
    assert c.get(f"/api/v1/connections/applications/{number}/documents", **bearer(other)).status_code == 404
    anonymous = c.post(f"/api/v1/connections/applications/{number}/documents", {"code": "photograph"})
    assert anonymous.status_code == 401
    assert _state() == before
    app = services.reject(
        actor=engineer, channel="section_office", application=selectors.track(number=number, mobile="9437998877"),
        code="docs", reason="withdrawn by the applicant",
    )  # fmt: skip
    assert app.status == ApplicationStatus.REJECTED
    before = _state()
    closed = _upload(c, number, cre)
    assert closed.status_code == 409 and closed.json()["code"] == "application_closed"
    assert _state() == before


def test_registration_checks_the_files_it_is_given(apply, owner_documents):
    """The portal's path: a file given with a line at registration meets the same checks."""
    import pytest

    from urja.connections.models import Application
    from urja.core.errors import DomainError

    bad = [services.DocumentIn(d.code, d.proof_type, d.number) for d in owner_documents]
    bad[1] = services.DocumentIn("photograph", file=SimpleUploadedFile("me.jpg", b"not an image", "image/jpeg"))
    with pytest.raises(DomainError) as err:
        apply(documents=bad)
    assert (err.value.code, err.value.status) == ("unsupported_file_type", 415)
    assert not Application.objects.exists() and not KycDocument.objects.exists()
