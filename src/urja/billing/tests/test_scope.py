"""Bills out of scope answer exactly like bills that do not exist (issue 11, part 1)."""

from datetime import date

import pytest

from urja.billing import services
from urja.billing.models import Bill
from urja.demo.testing import staff_user

JUNE = dict(cycle="C01", period="2025-06", bill_date=date(2025, 7, 2))


@pytest.fixture
def billed(make_account):
    account = make_account()
    services.start_run(run=services.create_run(**JUNE))
    return Bill.objects.get(account=account)


def _masked(response, number):
    return response.status_code, response.content.decode().replace(number, "N")


def test_out_of_scope_bill_api_is_the_nonexistent_answer(client, billed, offices):
    client.force_login(staff_user("billing_officer", offices["division2"]))
    far = client.get(f"/api/v1/billing/bills/{billed.bill_number}")
    missing_number = billed.bill_number[:-3] + "999"
    none = client.get(f"/api/v1/billing/bills/{missing_number}")
    assert far.status_code == 404 and far.json()["code"] == "bill_not_found"
    assert billed.account.consumer_number not in far.content.decode()
    assert "scope" not in far.json()["message"]
    assert _masked(far, billed.bill_number) == _masked(none, missing_number)
    client.force_login(staff_user("billing_officer", offices["division1"]))
    assert client.get(f"/api/v1/billing/bills/{billed.bill_number}").status_code == 200


def test_out_of_scope_bill_pages_are_404_like_nonexistent_never_403(client, billed, offices, django_user_model):
    missing_number = billed.bill_number[:-3] + "999"
    users = [staff_user("cre", offices["division2"]), django_user_model.objects.create_user("stranger", password="p")]
    for user in users:
        client.force_login(user)
        for page in ("/billing/bills/{}/", "/billing/bills/{}/pdf/"):
            far = client.get(page.format(billed.bill_number))
            none = client.get(page.format(missing_number))
            assert far.status_code == none.status_code == 404, (user, page)
            assert _masked(far, billed.bill_number) == _masked(none, missing_number)


def test_key_account_manager_sees_no_domestic_bill(client, billed, offices):
    client.force_login(staff_user("key_account_manager", offices["utility"]))
    assert client.get(f"/api/v1/billing/bills/{billed.bill_number}").status_code == 404
    assert client.get(f"/api/v1/billing/accounts/{billed.account.consumer_number}/bills").status_code == 404
