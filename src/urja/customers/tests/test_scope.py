"""Consumers and accounts through core.scope (issue 11, part 1): a consumer with no account only for
staff of the office where it applied (or admin); the key-account manager only key accounts."""

import json

import pytest
from django.test import Client

from urja.core.models import ApiToken
from urja.demo.testing import domestic_account, staff_user


def bearer(user) -> dict:
    _, raw = ApiToken.issue(user=user, name="test")
    return {"HTTP_AUTHORIZATION": f"Bearer {raw}"}


@pytest.fixture
def client():
    return Client()


def _register(client, user, name="Gitanjali Pradhan"):
    response = client.post(
        "/api/v1/customers/consumers",
        json.dumps({"name": name, "contacts": [{"kind": "mobile", "value": "9437055555"}]}),
        content_type="application/json",
        **bearer(user),
    )
    assert response.status_code == 201, response.content
    return response.json()["id"]


def test_consumer_without_account_only_for_the_applying_office_and_admin(client, offices, admin_user):
    here = staff_user("cre", offices["division1"])
    there = staff_user("cre", offices["division2"])
    consumer_id = _register(client, here)
    missing = consumer_id + 1000
    assert client.get(f"/api/v1/customers/consumers/{consumer_id}", **bearer(here)).status_code == 200
    assert client.get(f"/api/v1/customers/consumers/{consumer_id}", **bearer(admin_user)).status_code == 200
    for url in ("/api/v1/customers/consumers/{}", "/api/v1/customers/consumers/{}/contacts"):
        far = client.get(url.format(consumer_id), **bearer(there))
        none = client.get(url.format(missing), **bearer(there))
        assert far.status_code == none.status_code == 404
        assert far.json()["code"] == none.json()["code"] == "consumer_not_found"
        assert far.json()["message"].replace(str(consumer_id), "N") == none.json()["message"].replace(str(missing), "N")
    # nor editable: adding a contact is refused like for a nonexistent consumer
    body = json.dumps({"kind": "mobile", "value": "9437066666"})
    far = client.post(
        f"/api/v1/customers/consumers/{consumer_id}/contacts", body, content_type="application/json", **bearer(there)
    )
    assert far.status_code == 404
    # another division cannot open an account for it either
    opened = client.post(
        "/api/v1/customers/accounts",
        json.dumps(
            {
                "consumer_id": consumer_id,
                "section": offices["section2"].code,
                "premises_address": "x",
                "category": "domestic",
                "supply_type": "lt_1ph",
                "sanctioned_load": "3",
            }
        ),
        content_type="application/json",
        **bearer(there),
    )
    assert opened.status_code == 404 and opened.json()["code"] == "consumer_not_found"


def test_key_account_manager_sees_key_accounts_and_groups_not_domestic(client, offices):
    from urja.customers.models import AccountGroup

    kam = staff_user("key_account_manager", offices["utility"])
    home = domestic_account(offices["section1"])
    factory = domestic_account(
        offices["section2"], name="Kalinga Steel", mobile="9437077777", load="150", supply_type="ht", unit="kVA",
        category="industrial", sub_category="large",
    )  # fmt: skip
    school = domestic_account(offices["section1"], name="Govt School", mobile="9437088888")
    school.group = AccountGroup.objects.create(name="School and Mass Education", kind="government")
    school.save(update_fields=["group"])
    seen = {a["consumer_number"] for a in client.get("/api/v1/customers/accounts", **bearer(kam)).json()["items"]}
    assert factory.consumer_number in seen and school.consumer_number in seen
    assert home.consumer_number not in seen
    far = client.get(f"/api/v1/customers/accounts/{home.consumer_number}", **bearer(kam))
    assert far.status_code == 404 and far.json()["code"] == "account_not_found"
    assert "scope" not in far.json()["message"]
