"""Issue 15 part 5: the outbox list has the shared filters (consumer number / address / name, office, queued
from–to), the shared pager and the filtered list as CSV / Excel — within the user's scope, one-time codes
hidden in the download as on the page."""

import csv
import datetime as dt
import io

import pytest
from django.utils import timezone

from urja.demo.testing import domestic_account
from urja.notifications import services
from urja.notifications.models import OutboxMessage
from urja.notifications.tests.conftest import BILL

pytestmark = pytest.mark.django_db

URL = "/notifications/outbox/"


def _csv(response) -> list[list[str]]:
    assert response["Content-Type"].startswith("text/csv")
    return list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode("utf-8-sig"))))


def test_shared_filters(client, admin_user, offices, messages_of_two_divisions):
    mine, other = messages_of_two_divisions
    client.force_login(admin_user)
    by_name = client.get(URL, {"q": "gita"}).content.decode()
    assert other.consumer_number in by_name and mine.consumer_number not in by_name
    by_office = client.get(URL, {"office": offices["division2"].code}).content.decode()
    assert other.consumer_number in by_office and mine.consumer_number not in by_office
    assert 'name="from"' in by_office and 'name="office"' in by_office
    old = timezone.now() - dt.timedelta(days=40)
    OutboxMessage.objects.filter(account=other).update(created_at=old)
    recent = client.get(URL, {"from": (timezone.localdate() - dt.timedelta(days=7)).isoformat()}).content.decode()
    assert mine.consumer_number in recent and other.consumer_number not in recent
    back_then = client.get(URL, {"to": (timezone.localdate() - dt.timedelta(days=30)).isoformat()}).content.decode()
    assert other.consumer_number in back_then and mine.consumer_number not in back_then


def test_export_is_the_filtered_scoped_list_with_codes_hidden(client, cre, messages_of_two_divisions):
    mine, other = messages_of_two_divisions
    client.force_login(cre)  # CRE of division 1
    page = client.get(URL).content.decode()
    assert "format=csv" in page and "format=xlsx" in page and "2 rows" in page  # the bill and the OTP of division 1
    rows = _csv(client.get(URL, {"format": "csv"}))
    assert rows[0][:4] == ["Queued", "Event", "Channel", "To"]
    body = "\n".join(",".join(r) for r in rows[1:])
    assert mine.consumer_number in body and other.consumer_number not in body  # scope
    assert "918273" not in body and "one-time code hidden" in body  # the OTP, as on the page
    # another division's office is ignored like an unknown code: the filter never widens the list
    wider = _csv(client.get(URL, {"format": "csv", "office": "NOPE"}))
    assert len(wider) == len(rows)
    no_email = _csv(client.get(URL, {"format": "csv", "channel": "email"}))
    assert len(no_email) == 1  # header only: no e-mail sent
    xlsx = client.get(URL, {"format": "xlsx", "status": "sent"})
    assert xlsx.status_code == 200 and b"".join(xlsx.streaming_content)[:2] == b"PK"
    assert 'filename="messages-sent.xlsx"' in xlsx["Content-Disposition"]


def test_pages_of_fifty_keep_the_filters(client, admin_user, offices):
    account = domestic_account(offices["section1"], name="Ramesh Sahu", mobile="9437011111")
    for i in range(51):
        services.notify(
            event="bill.issued", consumer=account.consumer, account=account, context=BILL, idempotency_key=f"p{i}"
        )
    client.force_login(admin_user)
    first = client.get(URL, {"channel": "sms"}).content.decode()
    assert "51 rows" in first and "page 1 of 2" in first and "channel=sms&amp;page=2" in first
    second = client.get(URL, {"channel": "sms", "page": 2}).content.decode()
    assert second.count('<tr id="msg-') == 1
