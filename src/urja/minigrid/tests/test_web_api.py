"""The console pages and /api/v1/minigrid/: the operator's day, bad input, scope."""

import json
import random

import pytest
from django.test import Client

from urja.core.models import ApiToken
from urja.demo.testing import staff_user
from urja.minigrid import demo, services
from urja.minigrid.models import PackageChange, WaterDay

pytestmark = pytest.mark.django_db


def bearer(user) -> dict:
    _, raw = ApiToken.issue(user=user, name="test")
    return {"HTTP_AUTHORIZATION": f"Bearer {raw}"}


def login(user) -> Client:
    c = Client()
    c.force_login(user)
    return c


def test_operator_console_recharge_and_receipt(customer, operator):
    c = login(operator)
    page = c.get("/minigrid/")
    assert page.status_code == 200 and customer.customer_id in page.content.decode()
    r = c.post(
        "/minigrid/recharge/", {"customer_id": customer.customer_id, "amount": "250", "mode": "cash", "key": "abc123"}
    )
    assert r.status_code == 302 and "/minigrid/receipt/" in r["Location"]
    receipt = c.get(r["Location"])
    assert receipt.status_code == 200 and customer.customer_id in receipt.content.decode()


def test_staff_elsewhere_see_no_site(customer, offices):
    other = staff_user("field_agent", offices["section2"])
    page = login(other).get("/minigrid/")
    assert page.status_code == 200 and customer.customer_id not in page.content.decode()
    r = login(other).get("/api/v1/minigrid/customers", **bearer(other))
    assert r.status_code == 404 and r.json()["code"] == "site_not_found"


def test_api_package_change_flow_and_bad_input(customer, operator, mgagent):
    r = Client().post(
        f"/api/v1/minigrid/customers/{customer.customer_id}/package-changes",
        data=json.dumps({"to_package": "MG-SOLAR-100W"}),
        content_type="application/json",
        **bearer(mgagent),
    )
    assert r.status_code == 201, r.content
    number = r.json()["number"]
    # the agent may not decide
    r = Client().post(
        f"/api/v1/minigrid/package-changes/{number}/decision",
        data=json.dumps({"approve": True}),
        content_type="application/json",
        **bearer(mgagent),
    )
    assert r.status_code == 403
    r = Client().post(
        f"/api/v1/minigrid/package-changes/{number}/decision",
        data=json.dumps({"approve": True}),
        content_type="application/json",
        **bearer(operator),
    )
    assert r.status_code == 200 and r.json()["status"] == "approved"
    r = Client().post(
        "/api/v1/minigrid/customers/MG01-99999/recharge",
        data=json.dumps({"amount": "10", "mode": "cash", "idempotency_key": "z"}),
        content_type="application/json",
        **bearer(operator),
    )
    assert r.status_code == 404
    r = Client().post(
        "/api/v1/minigrid/water",
        data=json.dumps(
            {"day": "2026-01-01", "litres_produced": 10, "litres_sold": 20, "kwh_used": "1", "revenue": "5"}
        ),
        content_type="application/json",
        **bearer(operator),
    )
    assert r.status_code == 400 and r.json()["code"] == "sold_above_produced"
    assert not WaterDay.objects.exists()
    r = Client().get("/api/v1/minigrid/site", **bearer(operator))
    assert r.json()["customers"]["active"] == 1 and r.json()["open_package_changes"] == 1


def test_demo_hook_is_idempotent(site, operator):
    for i in range(5):
        services.add_customer(
            actor=operator,
            channel="backoffice",
            site=site,
            name=f"Demo {i}",
            mobile="",
            address="",
            package_code="MG-SOLAR-50W",
        )
    accounts = [c.account for c in site.customers.all()]
    demo.populate(accounts=accounts, site=site, rng=random.Random(1))
    counts = (PackageChange.objects.count(), WaterDay.objects.count(), site.customers.count())
    assert counts[0] >= 3 and counts[1] == 7
    demo.populate(accounts=accounts, site=site, rng=random.Random(1))
    assert (PackageChange.objects.count(), WaterDay.objects.count(), site.customers.count()) == counts
