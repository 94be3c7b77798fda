import pytest
from django.urls import reverse

from urja.core.models import ApiToken
from urja.demo.testing import staff_user
from urja.notifications.models import OutboxMessage

pytestmark = pytest.mark.django_db


def test_outbox_page_is_staff_only_and_scoped(client, cre, messages_of_two_divisions, offices):
    mine, other = messages_of_two_divisions
    url = reverse("notifications:outbox")
    assert url == "/notifications/outbox/"
    response = client.get(url)
    assert response.status_code == 302 and "/login/" in response["Location"]
    consumer_user = staff_user("consumer", None)
    client.force_login(consumer_user)
    assert client.get(url).status_code == 403
    client.force_login(cre)  # CRE of division 1: sees section 1 only
    page = client.get(url).content.decode()
    assert mine.consumer_number in page and other.consumer_number not in page
    # the OTP (no account, consumer of division 1) is listed but its code is hidden
    assert "contact.verify_otp" in page and "918273" not in page and "one-time code hidden" in page


def test_outbox_filters(client, admin_user, messages_of_two_divisions, settings):
    mine, other = messages_of_two_divisions
    client.force_login(admin_user)
    url = reverse("notifications:outbox")
    page = client.get(url, {"q": other.consumer_number}).content.decode()
    assert other.consumer_number in page and "Ramesh" not in page and mine.consumer_number not in page
    OutboxMessage.objects.filter(account=other).update(status="dead", last_error="invalid number (400)")
    page = client.get(url, {"status": "dead"}).content.decode()
    assert "invalid number (400)" in page and mine.consumer_number not in page
    assert "Queue again" in page
    assert "No message matches" in client.get(url, {"channel": "email"}).content.decode()
    fragment = client.get(url, {"status": "dead"}, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="outbox-rows")
    assert b"<html" not in fragment.content and b"invalid number" in fragment.content


def test_requeue_from_the_page(client, admin_user, messages_of_two_divisions, django_capture_on_commit_callbacks):
    _, other = messages_of_two_divisions
    message = OutboxMessage.objects.get(account=other)
    OutboxMessage.objects.filter(pk=message.pk).update(status="dead")
    client.force_login(admin_user)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("notifications:requeue", args=[message.pk]), {"next": "https://evil.example/"})
    assert response.status_code == 302 and response["Location"] == "/notifications/outbox/"
    message.refresh_from_db()
    assert message.status == "sent"  # re-queued, then delivered by the dev channel on commit


def test_account_panel(client, cre, messages_of_two_divisions):
    mine, other = messages_of_two_divisions
    client.force_login(cre)
    url = reverse("notifications:account_panel", args=[mine.consumer_number])
    body = client.get(url).content.decode()
    assert "bill.issued" in body and "+919437011111" in body and "<html" not in body
    assert "contact.verify_otp" in body and "918273" not in body
    # out of scope and unknown accounts: the same 404
    assert client.get(reverse("notifications:account_panel", args=[other.consumer_number])).status_code == 404
    assert client.get(reverse("notifications:account_panel", args=["XX0000000000"])).status_code == 404


def test_api_outbox(client, cre, admin_user, messages_of_two_divisions):
    mine, other = messages_of_two_divisions
    url = "/api/v1/notifications/outbox"
    assert client.get(url).status_code == 401
    _, raw = ApiToken.issue(user=cre, name="test")
    auth = {"HTTP_AUTHORIZATION": f"Bearer {raw}"}
    data = client.get(url, **auth).json()
    assert data["count"] == 2
    assert {i["consumer_number"] for i in data["items"]} == {mine.consumer_number, None}
    otp = next(i for i in data["items"] if i["event"] == "contact.verify_otp")
    assert "918273" not in otp["body"] and otp["language"] == "hi"
    client.force_login(admin_user)
    data = client.get(url, {"consumer_number": other.consumer_number.lower()}).json()
    assert data["count"] == 1 and data["items"][0]["to"] == "+919437022222"
    assert client.get(url, {"channel": "sms", "status": "queued"}).json()["count"] == 3
    assert client.get(url, {"status": "sent"}).json()["count"] == 0
    bad = client.get(url, {"status": "lost"})
    assert bad.status_code == 400 and bad.json()["code"] == "invalid_status"
    consumer_user = staff_user("consumer", None)
    client.force_login(consumer_user)
    assert client.get(url).status_code == 403


def test_admin_lists_read_only(client, admin_user, messages_of_two_divisions):
    client.force_login(admin_user)
    response = client.get("/admin/notifications/outboxmessage/")
    assert response.status_code == 200 and b"bill.issued" in response.content
    message = OutboxMessage.objects.get(event="contact.verify_otp")
    detail = client.get(f"/admin/notifications/outboxmessage/{message.pk}/change/").content.decode()
    assert "918273" not in detail
    assert client.get("/admin/notifications/outboxmessage/add/").status_code == 403
