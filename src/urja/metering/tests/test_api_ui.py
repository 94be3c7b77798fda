from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from urja.core.models import ApiToken, AuditEvent
from urja.demo.testing import domestic_account, staff_user
from urja.metering import demo, selectors, services
from urja.metering.models import MeterTest, Reading, SheetEntry

from .conftest import days_ago

PHOTO = b"\xff\xd8\xff\xe0fake-jpeg"


def bearer(user):
    _, raw = ApiToken.issue(user=user, name="test")
    return {"HTTP_AUTHORIZATION": f"Bearer {raw}"}


@pytest.fixture
def agent(offices):
    return staff_user("field_agent", offices["division1"])


@pytest.fixture
def meter_on_account(account, make_meter):
    meter = make_meter("FA000001")
    services.install_meter(
        account=account, meter=meter, actor=None, channel="system", installed_at=days_ago(60), initial_kwh="500"
    )
    return meter


def post_reading(client, user, **fields):
    data = {"read_at": days_ago(1).isoformat(), "source": "field_agent", **fields}
    return client.post("/api/v1/metering/readings", data=data, **bearer(user))


def test_field_agent_submits_a_reading_with_photo_and_gps(client, agent, account, meter_on_account):
    res = post_reading(
        client,
        agent,
        consumer_number=account.consumer_number,
        kwh="620.5",
        latitude="21.4942",
        longitude="86.9317",
        photo=SimpleUploadedFile("m.jpg", PHOTO, content_type="image/jpeg"),
    )
    assert res.status_code == 201, res.content
    body = res.json()
    assert body["kwh"] == "620.500" and body["meter"] == "FA000001" and body["photo_url"]
    reading = Reading.objects.get(pk=body["id"])
    assert reading.reader == agent and reading.latitude == Decimal("21.494200")
    assert AuditEvent.objects.filter(action="reading.recorded", object_id=str(reading.pk)).exists()


@pytest.mark.parametrize(
    ("fields", "status", "code"),
    [
        ({"kwh": "620"}, 400, "photo_required"),
        ({"kwh": "abc", "photo": True}, 400, "non_numeric_register"),
        ({"kwh": "-4", "photo": True}, 400, "negative_register"),
        ({"kwh": "600", "photo": True, "read_at": "future"}, 400, "timestamp_in_future"),
        ({"kwh": "600", "photo": True, "latitude": "123"}, 400, "invalid_gps"),
        ({"kwh": "600", "photo": True, "meter_serial": "NOSUCH", "consumer_number": None}, 404, "unknown_meter"),
    ],
)
def test_bad_readings_are_refused_and_nothing_is_stored(client, agent, account, meter_on_account, fields, status, code):
    fields = dict(fields)
    if fields.pop("photo", False):
        fields["photo"] = SimpleUploadedFile("m.jpg", PHOTO, content_type="image/jpeg")
    if fields.get("read_at") == "future":
        fields["read_at"] = (timezone.now() + timedelta(days=1)).isoformat()
    fields.setdefault("consumer_number", account.consumer_number)
    if fields["consumer_number"] is None:
        del fields["consumer_number"]
    res = post_reading(client, agent, **fields)
    assert (res.status_code, res.json()["code"]) == (status, code)
    assert Reading.objects.filter(source="field_agent").count() == 0


def test_duplicate_reading_conflicts(client, agent, account, meter_on_account):
    at = days_ago(2).isoformat()
    for expected in (201, 409):
        res = post_reading(
            client,
            agent,
            consumer_number=account.consumer_number,
            kwh="600",
            read_at=at,
            photo=SimpleUploadedFile("m.jpg", PHOTO, content_type="image/jpeg"),
        )
        assert res.status_code == expected
    assert res.json()["code"] == "duplicate_reading"


def test_other_divisions_accounts_are_invisible(client, offices, make_meter):
    other = domestic_account(offices["section2"], mobile="9437099999")
    services.install_meter(account=other, meter=make_meter(), actor=None, channel="system", installed_at=days_ago(5))
    user = staff_user("billing_officer", offices["division1"])
    res = client.get(f"/api/v1/metering/accounts/{other.consumer_number}/readings", **bearer(user))
    assert res.status_code == 404
    client.force_login(user)
    assert client.get(f"/metering/accounts/{other.consumer_number}/panel/").status_code == 404


def test_route_book_refuses_a_month_that_does_not_exist(client, offices):
    user = staff_user("billing_officer", offices["division1"])
    res = client.get("/api/v1/metering/route-book?bill_cycle=C01&year=2025&month=13", **bearer(user))
    assert (res.status_code, res.json()["code"]) == (400, "invalid_period")
    client.force_login(user)
    assert client.get("/metering/route-book/?year=2025&month=13").status_code == 400
    assert client.get("/metering/route-book/?year=abc").status_code == 400
    assert client.get("/metering/route-book/?year=2025&month=6").status_code == 200


def test_review_queue_edit_and_ui(client, offices, installed):
    account = installed.account
    officer = staff_user("billing_officer", offices["division1"])
    for kwh, when in (("1100", (2025, 2, 15)), ("1200", (2025, 3, 15)), ("9000", (2025, 4, 15))):
        services.record_reading(
            actor=None,
            channel="system",
            account=account,
            source="amr",
            kwh=kwh,
            read_at=__import__("urja.metering.tests.conftest", fromlist=["local"]).local(*when),
        )
    queue = client.get("/api/v1/metering/review-queue", **bearer(officer)).json()
    assert [r["kwh"] for r in queue] == ["9000.000"]
    rid = queue[0]["id"]
    res = client.post(
        f"/api/v1/metering/readings/{rid}/review",
        data={"action": "edit", "kwh": "1300"},
        content_type="application/json",
        **bearer(officer),
    )
    assert res.json()["code"] == "reason_required"
    client.force_login(officer)
    page = client.get("/metering/review/")
    assert b"9000" in page.content and b"spike" in page.content
    res = client.post(
        f"/metering/review/{rid}/", {"action": "edit", "kwh": "1300", "reason": "misread digit"}, HTTP_HX_REQUEST="true"
    )
    assert res.status_code == 200 and b"misread digit" in res.content
    r = Reading.objects.get(pk=rid)
    assert (r.vee_status, r.kwh, r.original_kwh, r.reviewed_by) == ("edited", 1300, 9000, officer)
    panel = client.get(f"/metering/accounts/{account.consumer_number}/panel/")
    assert panel.status_code == 200 and b"<svg" in panel.content and installed.meter.serial.encode() in panel.content


def test_import_upload_and_commands_api(client, offices, account, make_meter):
    officer = staff_user("billing_officer", offices["division1"])
    smart = make_meter("SMAPI01", meter_type="smart")
    services.install_meter(account=account, meter=smart, actor=None, channel="system", installed_at=days_ago(20))
    csv = f"meter_serial,read_at,kwh\nSMAPI01,{days_ago(3).isoformat()},15\nSMAPI01,bad,1\n".encode()
    res = client.post("/api/v1/metering/imports", data={"file": SimpleUploadedFile("amr.csv", csv)}, **bearer(officer))
    assert res.status_code == 201, res.content
    batch = res.json()
    assert (batch["inserted"], batch["rejected"]) == (1, 1)
    errors = client.get(f"/api/v1/metering/imports/{batch['id']}/errors", **bearer(officer)).json()
    assert errors == [
        {"row_number": 2, "code": "invalid_timestamp", "message": errors[0]["message"], "raw": "SMAPI01,bad,1"}
    ]
    for query in ("offset=-1", "limit=-1"):  # the input boundary: a negative page bound is a 422
        res = client.get(f"/api/v1/metering/imports/{batch['id']}/errors?{query}", **bearer(officer))
        assert (res.status_code, res.json()["code"]) == (422, "validation_error")
    assert client.get("/api/v1/metering/meters?limit=-1", **bearer(officer)).status_code == 422
    missing = client.get(f"/api/v1/metering/imports/{batch['id'] + 1000}/errors", **bearer(officer))
    assert (missing.status_code, missing.json()["code"]) == (404, "import_not_found")
    body = {
        "consumer_number": account.consumer_number,
        "command": "set_supply_hours",
        "params": {"windows": [["18:00", "23:00"]]},
        "idempotency_key": "pkg:1",
    }
    first = client.post("/api/v1/metering/commands", data=body, content_type="application/json", **bearer(officer))
    again = client.post("/api/v1/metering/commands", data=body, content_type="application/json", **bearer(officer))
    assert first.status_code == 201 and first.json()["command_id"] == again.json()["command_id"]
    assert first.json()["status"] == "queued"
    client.force_login(officer)
    assert b"SMAPI01" in client.get("/metering/commands/").content


def test_meter_side_actions_are_on_the_sheet(client, engineer, account, make_meter):
    meter = make_meter("OLD00001", seals=["A1"])
    services.install_meter(
        account=account,
        meter=meter,
        actor=engineer,
        channel="field_agent",
        installed_at=days_ago(40),
        initial_kwh="10",
        acknowledged_by="Sunita Behera",
    )
    from urja.core.errors import DomainError

    with pytest.raises(DomainError) as err:
        services.record_meter_test(
            meter=meter,
            notice_given_on=date.today() - timedelta(days=2),
            tested_on=date.today(),
            error_percent="1.0",
            actor=engineer,
            channel="field_agent",
        )
    assert err.value.code == "insufficient_notice" and not MeterTest.objects.exists()
    test = services.record_meter_test(
        meter=meter,
        notice_given_on=date.today() - timedelta(days=3),
        tested_on=date.today(),
        error_percent="5.2",
        actor=engineer,
        channel="field_agent",
    )
    meter.refresh_from_db()
    assert test.result == "fast" and meter.status == "defective"
    services.change_seals(meter=meter, seals=["B7", "B8"], reason="seal broken", actor=engineer, channel="field_agent")
    services.shift_meter(account=account, location="outside wall", actor=engineer, channel="field_agent")
    new = make_meter("NEW00001")
    services.replace_meter(
        account=account,
        new_meter=new,
        final_kwh="95",
        reason="running fast",
        actor=engineer,
        channel="field_agent",
        acknowledged_by="Sunita Behera",
    )
    kinds = list(SheetEntry.objects.filter(meter=meter).order_by("id").values_list("kind", flat=True))
    assert kinds == ["registered", "installation", "test", "seal_change", "shift", "replacement"]
    entry = SheetEntry.objects.filter(meter=meter, kind="replacement").get()
    assert entry.consumer_acknowledged and entry.performed_by == engineer
    with pytest.raises(ValueError):
        entry.save()  # append-only
    client.force_login(engineer)
    sheet = client.get("/metering/meters/OLD00001/sheet/")
    assert sheet.status_code == 200 and b"Sunita Behera" in sheet.content and b"running fast" in sheet.content
    services.record_reading(
        actor=None, channel="system", account=account, source="amr", kwh="50", read_at=timezone.now()
    )
    with pytest.raises(DomainError) as err:  # final reading below the last one: nothing changes
        services.replace_meter(
            account=account, new_meter=make_meter(), final_kwh="5", reason="x", actor=engineer, channel="field_agent"
        )
    assert err.value.code == "negative_consumption"
    assert selectors.current_installation(account).meter == new


def test_demo_populate_gives_meters_and_a_year_of_readings(offices):
    accounts = [domestic_account(offices["section1"], mobile=f"94370{i:05d}") for i in range(6)]
    result = demo.populate(accounts, months=12)
    assert result["meters"] == 6 and result["readings"] >= 6 * 12
    assert demo.populate(accounts) == {"meters": 0, "readings": 0}  # idempotent
    assert any(selectors.current_installation(a).meter.is_smart for a in accounts)
    series = selectors.consumption_series(accounts[1])
    assert sum(1 for r in series if r["kwh"]) >= 10
    today = timezone.localdate()
    bc = services.billing_consumption(
        account=accounts[1], period_start=today - timedelta(days=62), period_end=today - timedelta(days=31)
    )
    assert bc.kwh > 0
