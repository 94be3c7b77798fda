"""The consumer portal end to end: OTP sign-in (same answer registered or not, lockout, cool-down,
expiry, reuse), home with balance and the latest bill, bill HTML/PDF, pay through the development
gateway to a verifiable receipt, another consumer's records answering 404, complaints by the channel
matrix with the timeline, and a contact change confirmed by a code sent to the new number."""

import re
import shutil
from datetime import date, timedelta

import pytest
from django.utils import timezone

from urja.billing import services as billing
from urja.billing.models import Bill
from urja.billing.tests.conftest import metered_account, steady
from urja.channels.models import OneTimeCode
from urja.channels.services import otp
from urja.core.models import AuthThrottle
from urja.customers.models import Contact
from urja.notifications.models import OutboxMessage
from urja.tariffs import services as tariffs

MOBILE = "9437012345"
E164 = "+919437012345"


@pytest.fixture
def billed(offices):
    # tariff orders only (data/tariffs/ may also hold the back office's navigation.toml)
    for path in sorted(tariffs.tariff_dir().glob("*.toml")):
        if path.name != "navigation.toml":
            tariffs.load_file(path=path)
    account = metered_account(offices["section1"], mobile=MOBILE, readings=steady(250))
    metered_account(offices["section1"], name="Rabi Das", mobile="9861000002", readings=steady(100))
    run = billing.create_run(cycle="C01", period="2025-06", bill_date=date(2025, 7, 2))
    billing.start_run(run=run)
    return account


def last_code(to: str = E164) -> str:
    message = OutboxMessage.objects.filter(event="contact.verify_otp", to=to).order_by("-id").first()
    assert message is not None, f"no code sent to {to}"
    return re.search(r"\b(\d{6})\b", message.body).group(1)


def sign_in(client, mobile: str = MOBILE):
    assert client.post("/portal/login/", {"mobile": mobile})["Location"] == "/portal/login/code/"
    return client.post("/portal/login/code/", {"code": last_code()})


def test_sign_in_home_bill_pay_receipt(client, billed):
    page = client.get("/portal/login/")
    assert page.status_code == 200 and 'name="mobile"' in page.content.decode()
    client.post("/portal/login/", {"mobile": MOBILE})
    message = OutboxMessage.objects.get(event="contact.verify_otp")
    assert message.channel == "sms" and message.to == E164
    code = last_code()
    row = OneTimeCode.objects.get()
    assert code not in row.code_hash and len(row.code_hash) == 64  # only a keyed hash is kept
    wrong = "000000" if code != "000000" else "111111"
    assert client.post("/portal/login/code/", {"code": wrong}).status_code == 400
    response = client.post("/portal/login/code/", {"code": code})
    assert response.status_code == 302 and response["Location"] == "/portal/"

    bill = Bill.objects.get(account=billed)
    home = client.get("/portal/").content.decode()
    assert billed.consumer_number in home and bill.bill_number in home
    assert f"₹{bill.net_payable}" in home  # nothing paid yet: the balance is the bill
    document = client.get(f"/portal/bills/{bill.bill_number}/?lang=hi").content.decode()
    assert "बिजली बिल" in document and bill.bill_number in document
    assert "Electricity Bill" in client.get(f"/portal/bills/{bill.bill_number}/?lang=en").content.decode()
    if shutil.which("chromium") or shutil.which("chromium-browser"):
        pdf = client.get(f"/portal/bills/{bill.bill_number}/pdf/")
        assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    assert client.get("/portal/usage/").status_code == 200

    response = client.post("/portal/pay/", {"amount": "500", "method": "online"})
    order_url = response["Location"]
    order_page = client.get(order_url).content.decode()
    assert "upi://pay?" in order_page and "data:image/svg+xml" in order_page  # UPI intent and QR
    reference = order_url.rstrip("/").rsplit("/", 1)[1]
    gateway = client.post(f"/payments/gateway/dev/{reference}/?next={order_url}", {"outcome": "success"})
    assert f'href="{order_url}"' in gateway.content.decode()  # back to the portal
    done = client.get(order_url).content.decode()
    number = re.search(r"/portal/receipts/([^/]+)/", done).group(1)
    receipt = client.get(f"/portal/receipts/{number}/").content.decode()
    assert "₹500.00" in receipt
    code = re.search(r"code=([A-Z0-9-]+)", receipt).group(1)
    check = client.get("/payments/verify/", {"number": number, "code": code}).content.decode()
    assert "500" in check
    assert number in client.get("/portal/payments/").content.decode()
    home = client.get("/portal/").content.decode()
    assert f"₹{bill.net_payable - 500}" in home

    assert client.post("/portal/logout/").status_code == 302
    assert client.get("/portal/bills/")["Location"].startswith("/portal/login/")


def test_unregistered_number_gets_the_same_answer_and_signs_in_as_an_applicant_only(client, billed):
    registered = client.post("/portal/login/", {"mobile": MOBILE})
    page_registered = client.get("/portal/login/code/").content.decode()
    other = type(client)()
    unregistered = other.post("/portal/login/", {"mobile": "9861000001"})
    page_unregistered = other.get("/portal/login/code/").content.decode()
    assert registered.status_code == unregistered.status_code == 302
    assert registered["Location"] == unregistered["Location"]
    assert page_registered.replace("943 ••••• 345", "X").count("X") >= 1
    assert page_unregistered.replace("+91 ••••• 001", "").count("6-digit") == page_registered.count("6-digit")
    # a code goes out either way (an applicant needs it to apply), and it opens no account
    code = last_code("+919861000001")
    for guess in ("000000", "123456"):
        if guess != code:
            assert other.post("/portal/login/code/", {"code": guess}).status_code == 400
    assert other.post("/portal/login/code/", {"code": code})["Location"] == "/portal/connections/"
    assert other.get("/portal/bills/")["Location"].startswith("/portal/login/")
    assert billed.consumer_number not in other.get("/portal/connections/").content.decode()


def test_five_wrong_codes_lock_the_number_and_the_address_for_15_minutes(client, billed):
    client.post("/portal/login/", {"mobile": MOBILE})
    code = last_code()
    wrong = "000000" if code != "000000" else "111111"
    for _ in range(5):
        assert client.post("/portal/login/code/", {"code": wrong}).status_code == 400
    locked = client.post("/portal/login/code/", {"code": code})  # even the right code
    assert locked.status_code == 429 and "15 minute" in locked.content.decode()
    assert client.get("/portal/bills/").status_code == 302
    # the number is locked from another address, and this address for another number
    other = type(client)(REMOTE_ADDR="10.9.9.9")
    assert other.post("/portal/login/", {"mobile": MOBILE}).status_code == 429
    assert client.post("/portal/login/", {"mobile": "9861000001"}).status_code == 429
    assert set(AuthThrottle.objects.values_list("scope", flat=True)) == {"otp:username", "otp:address"}


def test_code_expires_is_used_once_and_a_resend_waits(billed):
    ticket = otp.issue(purpose="login", address=E164, client="1.1.1.1", language="en", consumer=billed.consumer)
    with pytest.raises(otp.ResendTooSoon):
        otp.issue(purpose="login", address=E164, client="1.1.1.1", language="en")
    code = last_code()
    later = timezone.now() + timedelta(minutes=5, seconds=1)
    with pytest.raises(otp.WrongCode):
        otp.check(token=ticket.token, code=code, client="1.1.1.1", now=later)
    # a new code after the cool-down voids the old one; it works once
    fresh = otp.issue(
        purpose="login", address=E164, client="1.1.1.1", language="en", now=timezone.now() + timedelta(seconds=61)
    )
    with pytest.raises(otp.WrongCode):
        otp.check(token=ticket.token, code=code, client="1.1.1.1")
    new_code = last_code()
    assert otp.check(token=fresh.token, code=new_code, client="1.1.1.1").used_at is not None
    with pytest.raises(otp.WrongCode):
        otp.check(token=fresh.token, code=new_code, client="1.1.1.1")


def test_another_consumers_bill_receipt_and_order_answer_404(client, billed):
    theirs = Bill.objects.exclude(account=billed).get()
    sign_in(client)
    assert client.get(f"/portal/bills/{theirs.bill_number}/").status_code == 404
    assert client.get("/portal/bills/NOSUCHBILL/").status_code == 404
    assert client.get("/portal/receipts/NOSUCH/").status_code == 404
    assert client.get("/portal/complaints/NOSUCH/").status_code == 404


def test_staff_are_sent_to_the_sign_in_page(client, cre):
    client.force_login(cre)
    assert client.get("/portal/bills/")["Location"].startswith("/portal/login/")


def test_contact_change_needs_a_code_sent_to_the_new_number(client, billed):
    sign_in(client)
    client.post("/portal/profile/", {"action": "contact", "kind": "mobile", "value": "9861000009"})
    assert not Contact.objects.filter(value="+919861000009").exists()  # nothing until the code returns
    code = last_code("+919861000009")
    assert client.post("/portal/profile/", {"action": "verify", "code": "99999x"}).status_code == 400
    client.post("/portal/profile/", {"action": "verify", "code": code})
    contact = Contact.objects.get(value="+919861000009")
    assert contact.verified and contact.is_primary and contact.consumer_id == billed.consumer_id
    assert not Contact.objects.get(value=E164).is_primary
    client.post("/portal/profile/", {"action": "language", "language": "or"})
    billed.consumer.refresh_from_db()
    assert billed.consumer.preferred_language == "or"


def test_lodge_and_track_a_complaint_allowed_on_the_website(client, billed):
    from urja.servicedesk import catalogue

    catalogue.load_file("servicedesk/oerc_sop.toml")
    sign_in(client)
    page = client.get("/portal/complaints/").content.decode()
    assert "no_power_supply/" in page
    choice = re.search(r'value="(no_power_supply/[^"]+)"', page).group(1)
    response = client.post("/portal/complaints/", {"type": choice, "description": "No supply since morning"})
    assert response.status_code == 302
    detail = client.get(response["Location"]).content.decode()
    assert 'class="timeline"' in detail and "no_power_supply" not in detail
    number = response["Location"].rstrip("/").rsplit("/", 1)[1]
    assert number in client.get("/portal/complaints/").content.decode()
    refused = client.post("/portal/complaints/", {"type": "nonsense/x"})
    assert refused.status_code == 400


def test_a_consumer_with_a_password_lands_on_the_portal(client, billed):
    """The demo `consumer` signs in on the staff login page and must end on a working portal."""
    from urja.core.models import StaffProfile
    from urja.customers.models import Consumer

    user = type(billed.consumer).user.field.related_model.objects.create_user(username="consumer", password="x-12345")
    StaffProfile.objects.create(user=user, role="consumer")
    Consumer.objects.filter(pk=billed.consumer_id).update(user=user)
    response = client.post("/login/", {"username": "consumer", "password": "x-12345"}, follow=True)
    assert response.status_code == 200 and response.redirect_chain[-1][0] in ("/portal/", "http://testserver/portal/")
    assert Bill.objects.get(account=billed).bill_number in response.content.decode()


def test_connections_page_lists_the_consumers_applications(client, billed):
    sign_in(client)
    page = client.get("/portal/connections/")
    assert page.status_code == 200 and "/connections/track/" in page.content.decode()


def test_a_consumer_with_two_accounts_picks_one_and_can_change(client, billed):
    from urja.customers import services as customers

    second = customers.open_account(
        actor=None, channel="system", consumer=billed.consumer, section=billed.section,
        premises_address="Shop 3, Station Road, Balasore", supply_type="lt_1ph", sanctioned_load="1",
        category="domestic",
    )  # fmt: skip
    assert sign_in(client)["Location"] == "/portal/"
    assert client.get("/portal/")["Location"] == "/portal/accounts/"  # two accounts: pick one first
    picker = client.get("/portal/accounts/").content.decode()
    assert billed.consumer_number in picker and second.consumer_number in picker
    client.post("/portal/accounts/", {"account": second.consumer_number})
    home = client.get("/portal/").content.decode()
    assert second.consumer_number in home and "/portal/accounts/" in home  # "Change account"
    assert client.post("/portal/accounts/", {"account": "NOSUCH"}).status_code == 404
    client.post("/portal/accounts/", {"account": billed.consumer_number})
    home = client.get("/portal/").content.decode()
    assert billed.consumer_number in home and Bill.objects.get(account=billed).bill_number in home


def test_a_consumer_with_one_account_has_no_picker(client, billed):
    sign_in(client)
    home = client.get("/portal/").content.decode()
    assert billed.consumer_number in home and "/portal/accounts/" not in home


def test_an_account_opened_during_the_session_can_be_changed_to_at_once(client, billed):
    """The home asks afresh whether there is another account: one opened while the consumer is signed
    in (at the counter, or by their own application) shows "Change account" on the next visit."""
    from urja.customers import services as customers

    sign_in(client)
    assert "/portal/accounts/" not in client.get("/portal/").content.decode()
    second = customers.open_account(
        actor=None, channel="system", consumer=billed.consumer, section=billed.section,
        premises_address="Shop 3, Station Road, Balasore", supply_type="lt_1ph", sanctioned_load="1",
        category="domestic",
    )  # fmt: skip
    home = client.get("/portal/").content.decode()
    assert billed.consumer_number in home and "/portal/accounts/" in home  # still the picked account
    assert second.consumer_number in client.get("/portal/accounts/").content.decode()
