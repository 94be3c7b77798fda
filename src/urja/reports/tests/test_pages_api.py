"""The managers' pages and API (issue 14.6): scoped drill-down, exports, recompute."""

import io
import zipfile

import pytest

from urja.core.models import ApiToken
from urja.demo import testing
from urja.reports import services
from urja.reports.tests.test_accounting import P, net  # noqa: F401  (fixture)


def bearer(user):
    _, raw = ApiToken.issue(user=user, name="test")
    return {"HTTP_AUTHORIZATION": f"Bearer {raw}"}


@pytest.fixture
def computed(net):  # noqa: F811
    services.compute_period(period=P)
    return net


def test_division_manager_drills_down_and_never_sees_another_division(client, computed):
    offices = computed["offices"]
    manager = testing.staff_user("manager", offices["division1"])
    client.force_login(manager)
    page = client.get("/reports/", {"period": P})
    assert page.status_code == 200
    html = page.content.decode()
    assert offices["division1"].name in html and "44.59%" in html  # the division's AT&C loss
    feeder = client.get(f"/reports/node/feeder/{computed['f1'].pk}/", {"period": P}).content.decode()
    assert "DT1" in feeder and "37.82%" in feeder and "33.33%" in feeder
    dt = client.get(f"/reports/node/dt/{computed['dt1'].pk}/", {"period": P}).content.decode()
    assert "92.20%" in dt and "general_purpose" in dt
    # out of scope answers like nonexistent
    other = client.get(f"/reports/node/feeder/{computed['f2'].pk}/", {"period": P})
    missing = client.get("/reports/node/feeder/999999/", {"period": P})
    assert other.status_code == missing.status_code == 404
    cre = testing.staff_user("cre", offices["division1"])
    client.force_login(cre)
    assert client.get("/reports/", {"period": P}).status_code == 403


def test_exports_csv_and_xlsx(client, computed):
    client.force_login(testing.staff_user("manager", computed["offices"]["division1"]))
    url = f"/reports/node/feeder/{computed['f1'].pk}/"
    csv_text = client.get(url, {"period": P, "format": "csv"}).content.decode()
    lines = csv_text.strip().splitlines()
    assert lines[0].startswith("Period,Level,Code") and len(lines) == 4  # the feeder and its two DTs
    assert "F1" in lines[1] and "1500.000" in lines[1]
    xlsx = client.get(url, {"period": P, "format": "xlsx"}).content
    with zipfile.ZipFile(io.BytesIO(xlsx)) as z:
        sheet = z.read("xl/worksheets/sheet1.xml").decode()
    assert "DT1" in sheet and "AT&amp;C loss" in sheet


def test_api_node_and_losses_scoped(client, computed):
    offices = computed["offices"]
    head = testing.staff_user("manager", offices["utility"])
    res = client.get(f"/api/v1/reports/energy/dt/{computed['dt1'].pk}", {"period": P}, **bearer(head))
    assert res.status_code == 200
    body = res.json()
    assert body["node"]["atc_loss"] == "0.378186" and len(body["trend"]) == 1
    assert {c["category"] for c in body["categories"]} == {"domestic", "general_purpose"}
    ranked = client.get("/api/v1/reports/dt-losses", {"period": P}, **bearer(head)).json()
    assert [r["code"] for r in ranked] == ["DT1", "DT2"]  # DT3 has no known loss
    div2 = testing.staff_user("manager", offices["division2"])
    res = client.get(f"/api/v1/reports/energy/dt/{computed['dt1'].pk}", {"period": P}, **bearer(div2))
    assert res.status_code == 404
    bad = client.post("/api/v1/reports/energy/compute", {"period": "2026-13"}, content_type="application/json",
                      **bearer(head))  # fmt: skip
    assert bad.status_code == 400 and bad.json()["code"] == "invalid_period"
    ok = client.post("/api/v1/reports/energy/compute", {"period": P}, content_type="application/json", **bearer(head))
    assert ok.status_code == 201 and ok.json()["period"] == P
