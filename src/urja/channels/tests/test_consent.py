"""Consent by OTP (issue 13.5): a staff edit of a consumer's mobile / e-mail happens only with the code
sent to the consumer's verified mobile; staff can no longer mark a contact verified."""

import re

from urja.customers.models import Contact
from urja.demo import testing
from urja.notifications.models import OutboxMessage


def test_field_agent_edit_needs_the_consumers_code(client, offices, account):
    agent = testing.staff_user("field_agent", offices["section1"])
    client.force_login(agent)
    start = client.post("/api/v1/channels/consent", {"consumer_number": account.consumer_number, "kind": "mobile",
                        "value": "9861077777"}, content_type="application/json")  # fmt: skip
    assert start.status_code == 201, start.content
    token = start.json()["token"]
    message = OutboxMessage.objects.get(event="contact.verify_otp")
    assert message.to == "+919437012345"  # the consumer's verified mobile, not the new number
    assert not Contact.objects.filter(value="+919861077777").exists()
    code = re.search(r"\b(\d{6})\b", message.body).group(1)
    wrong = "000000" if code != "000000" else "111111"
    body = {"consumer_number": account.consumer_number, "token": token, "code": wrong}
    bad = client.post("/api/v1/channels/consent/confirm", body, content_type="application/json")
    assert bad.status_code == 400 and bad.json()["code"] == "wrong_code"
    assert not Contact.objects.filter(value="+919861077777").exists()
    body["code"] = code
    ok = client.post("/api/v1/channels/consent/confirm", body, content_type="application/json")
    assert ok.status_code == 200 and ok.json()["is_primary"] and not ok.json()["verified"]
    assert client.post("/api/v1/channels/consent/confirm", body, content_type="application/json").status_code == 400


def test_staff_cannot_mark_a_contact_verified(client, cre, account):
    client.force_login(cre)
    response = client.post(f"/api/v1/customers/consumers/{account.consumer_id}/contacts",
                           {"kind": "mobile", "value": "9861012345", "verified": True},
                           content_type="application/json")  # fmt: skip
    assert response.status_code == 400 and response.json()["code"] == "verification_needs_otp"
    assert not Contact.objects.filter(value="+919861012345").exists()


def test_a_staff_api_contact_needs_consent_when_the_consumer_has_a_verified_mobile(client, cre, account, offices):
    client.force_login(cre)
    url = f"/api/v1/customers/consumers/{account.consumer_id}/contacts"
    response = client.post(url, {"kind": "mobile", "value": "9861012345"}, content_type="application/json")
    assert response.status_code == 409 and response.json()["code"] == "consent_required"
    assert "/api/v1/channels/consent" in response.json()["message"]
    assert not Contact.objects.filter(value="+919861012345").exists()
    bad = client.post(url, {"kind": "mobile", "value": "55555"}, content_type="application/json")
    assert bad.status_code == 400 and bad.json()["code"] == "invalid_mobile"  # the number is told first
    unverified = testing.domestic_account(offices["section1"], mobile=None)
    url = f"/api/v1/customers/consumers/{unverified.consumer_id}/contacts"
    response = client.post(url, {"kind": "mobile", "value": "9861012345"}, content_type="application/json")
    assert response.status_code == 201 and not response.json()["verified"]  # nothing to ask: added unverified


def test_out_of_scope_account_answers_like_none(client, offices):
    other = testing.domestic_account(offices["section2"], mobile="9437066666")
    agent = testing.staff_user("field_agent", offices["section1"])
    client.force_login(agent)
    response = client.post("/api/v1/channels/consent", {"consumer_number": other.consumer_number, "kind": "mobile",
                           "value": "9861077777"}, content_type="application/json")  # fmt: skip
    assert response.status_code == 404
    assert not OutboxMessage.objects.exists()
