"""An applicant without an account on the portal: sign-in by mobile and code (the same answer as a
registered number), apply for a new connection, see only the applications of their number, pay the
demand note through the development gateway, see the receipt; the application moves on when the
connections sweep settles the payment — never because a page was read."""

import re
from datetime import timedelta

from django.utils import timezone

from urja.channels.models import OneTimeCode
from urja.connections import services as conn
from urja.connections.models import Application, ApplicationStatus, DemandNote
from urja.connections.tests.conftest import BALASORE, engineer, loaded, owner_documents  # noqa: F401
from urja.core.models import AuditEvent
from urja.core.templatetags.urja_format import rupees
from urja.customers.models import Consumer
from urja.demo import testing
from urja.notifications.models import OutboxMessage
from urja.payments.models import Payment

MOBILE = "9861055501"
E164 = "+919861055501"


def last_code(to: str = E164) -> str:
    message = OutboxMessage.objects.filter(event="contact.verify_otp", to=to).order_by("-id").first()
    assert message is not None, f"no code sent to {to}"
    return re.search(r"\b(\d{6})\b", message.body).group(1)


def sign_in(client, mobile: str = MOBILE, to: str = E164):
    assert client.post("/portal/login/", {"mobile": mobile})["Location"] == "/portal/login/code/"
    return client.post("/portal/login/code/", {"code": last_code(to)})


def application_form(offices, **extra) -> dict:
    form = {
        "applicant_type": "owner",
        "name": "Sasmita Behera",
        "section": str(offices["section1"].pk),
        "documents": ["identity_proof", "photograph", "ownership_proof"],
        "proof_identity_proof": "voter_id",
        "number_identity_proof": "OR/05/123/456",
        "proof_ownership_proof": "land_record",
        "number_ownership_proof": "KH-1021",
        "premises_address": "House 12, Motiganj, Balasore",
        "pincode": "756003",
        "latitude": BALASORE[0],
        "longitude": BALASORE[1],
        "area_class": "municipal",
        "supply_type": "lt_1ph",
        "load": "2",
        "category": "domestic",
        "submit": "1",
    }
    form.update(extra)
    return form


def _counts() -> tuple:
    return (Application.objects.count(), Consumer.objects.count(), AuditEvent.objects.count())


def test_an_applicant_signs_in_applies_and_tracks(client, offices, loaded):  # noqa: F811
    response = sign_in(client)
    assert response.status_code == 302 and response["Location"] == "/portal/connections/"
    row = OneTimeCode.objects.get(address=E164)
    assert row.sent and row.consumer_id is None and row.used_at is not None
    listing = client.get("/portal/connections/").content.decode()
    assert E164 in listing and "/portal/connections/apply/" in listing
    # an applicant's session is not a consumer's: no bills, payments or profile
    for page in ("/portal/bills/", "/portal/pay/", "/portal/profile/", "/portal/complaints/"):
        assert client.get(page)["Location"].startswith("/portal/login/")
    assert client.get("/portal/")["Location"] == "/portal/connections/"

    form = client.get("/portal/connections/apply/").content.decode()
    assert 'name="name"' in form and 'name="section"' in form and offices["section1"].name in form
    before = _counts()
    refused = client.post("/portal/connections/apply/", application_form(offices, section=""))
    assert refused.status_code == 400 and "section office" in refused.content.decode()
    outside = client.post("/portal/connections/apply/", application_form(offices, latitude="28.61"))
    assert outside.status_code == 400 and "outside" in outside.content.decode()
    other_section = client.post("/portal/connections/apply/", application_form(offices, section="999999"))
    assert other_section.status_code == 400
    assert _counts() == before  # nothing registered, no consumer, no audit

    response = client.post("/portal/connections/apply/", application_form(offices))
    assert response.status_code == 302
    app = Application.objects.get()
    assert response["Location"] == f"/portal/connections/{app.number}/"
    assert app.mobile == E164 and app.channel == "website" and app.section_id == offices["section1"].pk
    assert app.consumer.name == "Sasmita Behera" and app.consumer.user_id is None
    page = client.get(response["Location"]).content.decode()
    assert app.number in page and 'id="application-status"' in page and 'class="timeline"' in page
    assert app.number in client.get("/portal/connections/").content.decode()

    assert client.post("/portal/logout/").status_code == 302
    assert client.get(response["Location"])["Location"].startswith("/portal/login/")


def test_an_applicant_sees_only_the_applications_of_their_number(client, offices, loaded, cre, owner_documents):  # noqa: F811
    def counter(mobile: str) -> Application:
        return conn.register_application(
            actor=cre, channel="care_centre", name="Counter Applicant", mobile=mobile, applicant_type="owner",
            premises_address="House 9, Balasore", latitude=BALASORE[0], longitude=BALASORE[1],
            area_class="municipal", section=offices["section1"], supply_type="lt_1ph", load="2",
            category="domestic", documents=owner_documents,
        )  # fmt: skip

    mine = counter(MOBILE)  # lodged at a counter with this number: theirs
    theirs = counter("9861055599")
    sign_in(client)
    listing = client.get("/portal/connections/").content.decode()
    assert mine.number in listing and theirs.number not in listing
    assert client.get(f"/portal/connections/{mine.number}/").status_code == 200
    assert client.get(f"/portal/connections/{theirs.number}/").status_code == 404
    assert client.get("/portal/connections/NC260000000X/").status_code == 404
    assert client.post(f"/portal/connections/{theirs.number}/").status_code == 404


def test_registered_and_unregistered_numbers_get_the_same_answer(client, offices, loaded):  # noqa: F811
    testing.domestic_account(offices["section1"], name="Rabi Das", mobile="9861000002")
    registered = client.post("/portal/login/", {"mobile": "9861000002"})
    page_registered = client.get("/portal/login/code/").content.decode()
    other = type(client)()
    unregistered = other.post("/portal/login/", {"mobile": MOBILE})
    page_unregistered = other.get("/portal/login/code/").content.decode()
    assert registered.status_code == unregistered.status_code == 302
    assert registered["Location"] == unregistered["Location"]

    def same(page: str, masked: str) -> str:  # the page less the number and the per-session CSRF tokens
        return re.sub(r'(csrfmiddlewaretoken" value="|X-CSRFToken": ")[^"]+', "", page.replace(masked, "N"))

    assert same(page_registered, "+91 ••••• 002") == same(page_unregistered, "+91 ••••• 501")
    assert last_code("+919861000002") and last_code(E164)  # both got a code
    # the cool-down and wrong codes answer alike too
    assert client.post("/portal/login/code/", {"resend": "1"}).status_code == 429
    assert other.post("/portal/login/code/", {"resend": "1"}).status_code == 429
    for c in (client, other):
        assert c.post("/portal/login/code/", {"code": "12345x"}).status_code == 400
    # a reused code does not sign in again
    code = last_code(E164)
    assert other.post("/portal/login/code/", {"code": code}).status_code == 302
    again = type(client)()
    again.post("/portal/login/", {"mobile": MOBILE})  # within the cool-down: refused, no new ticket
    assert again.get("/portal/login/code/")["Location"] == "/portal/login/"


def _to_demand_note(client, offices, engineer) -> Application:  # noqa: F811
    sign_in(client)
    client.post("/portal/connections/apply/", application_form(offices))
    app = Application.objects.get()
    conn.record_inspection(actor=engineer, channel="section_office", application=app, feasible=True, distance_m=20)
    conn.issue_demand_note(actor=engineer, channel="section_office", application=app)
    app.refresh_from_db()
    return app


def test_the_demand_note_is_paid_on_the_web_and_the_sweep_moves_the_application(client, offices, loaded, engineer):  # noqa: F811
    app = _to_demand_note(client, offices, engineer)
    url = f"/portal/connections/{app.number}/"
    due = conn.outstanding(app)
    assert due == app.demand_note.total > app.application_fee > 0  # the fee is a line of the note
    page = client.get(url).content.decode()
    assert app.demand_note.number in page and rupees(due) in page and "Pay the demand note" in page

    response = client.post(url)
    assert response.status_code == 302 and "/payments/gateway/dev/" in response["Location"]
    assert f"next={url.replace('/', '%2F')}" in response["Location"]
    gateway = client.post(response["Location"], {"outcome": "success"})
    assert f'href="{url}"' in gateway.content.decode()  # back to the application
    payment = Payment.objects.get(account=app.account)
    assert payment.amount == due and payment.channel == "online"

    # reading the page changes nothing: the application waits for the sweep
    before = (AuditEvent.objects.count(), DemandNote.objects.get().status)
    page = client.get(url).content.decode()
    client.get(url)
    app.refresh_from_db()
    assert app.status == ApplicationStatus.DN_ISSUED and app.dn_paid_at is None
    assert (AuditEvent.objects.count(), DemandNote.objects.get().status) == before
    assert 'id="application-paid"' in page and payment.receipt_number in page
    assert "Pay the demand note" not in page

    receipt = client.get(f"/portal/receipts/{payment.receipt_number}/").content.decode()
    assert f"₹{payment.amount}" in receipt and payment.verification_code in receipt
    assert client.get("/portal/receipts/NOSUCH/").status_code == 404
    assert client.post(url).status_code == 400  # nothing left to pay: no second order

    assert conn.sweep_paid_demand_notes() == 1
    app.refresh_from_db()
    assert app.status == ApplicationStatus.DN_PAID and app.dn_paid_at is not None
    assert DemandNote.objects.get().status == "paid"

    # with the pending account open, the number now signs in as the consumer, who sees the application
    OneTimeCode.objects.update(created_at=timezone.now() - timedelta(minutes=10))  # past the cool-down
    fresh = type(client)()
    assert sign_in(fresh)["Location"] == "/portal/"
    assert app.number in fresh.get("/portal/connections/").content.decode()
    assert fresh.get(f"/portal/receipts/{payment.receipt_number}/").status_code == 200


def test_a_failed_gateway_payment_leaves_the_note_to_pay(client, offices, loaded, engineer):  # noqa: F811
    app = _to_demand_note(client, offices, engineer)
    url = f"/portal/connections/{app.number}/"
    response = client.post(url)
    client.post(response["Location"], {"outcome": "failure"})
    assert not Payment.objects.filter(account=app.account).exists()
    page = client.get(url).content.decode()
    assert "Pay the demand note" in page and 'id="application-paid"' not in page
    assert conn.sweep_paid_demand_notes() == 0


def test_another_applicant_cannot_pay_or_read_receipts(client, offices, loaded, engineer):  # noqa: F811
    from urja.payments.models import GatewayOrder

    app = _to_demand_note(client, offices, engineer)
    url = f"/portal/connections/{app.number}/"
    client.post(client.post(url)["Location"], {"outcome": "success"})
    receipt = Payment.objects.get(account=app.account).receipt_number
    stranger = type(client)()
    sign_in(stranger, "9861055577", "+919861055577")
    assert stranger.get(url).status_code == 404
    assert stranger.post(url).status_code == 404
    assert stranger.get(f"/portal/receipts/{receipt}/").status_code == 404
    assert GatewayOrder.objects.count() == 1
