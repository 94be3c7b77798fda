"""The input boundary on metering: register values in ASCII digits on the API, the review page and
import files; reading times not before the earliest year; a file that is not UTF-8 is refused (4xx)."""

from datetime import datetime

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from urja.core.models import ApiToken
from urja.demo.testing import staff_user
from urja.metering import importer, services
from urja.metering.models import Reading

from .conftest import days_ago

pytestmark = pytest.mark.django_db
PHOTO = b"\xff\xd8\xff\xe0fake-jpeg"


def bearer(user):
    _, raw = ApiToken.issue(user=user, name="test")
    return {"HTTP_AUTHORIZATION": f"Bearer {raw}"}


@pytest.fixture
def on_account(account, make_meter):
    meter = make_meter("BD000001", meter_type="smart")
    services.install_meter(account=account, meter=meter, actor=None, channel="system", installed_at=days_ago(60))
    return meter


@pytest.mark.parametrize("kwh", ["६२०", "６２０", "٦٢٠", "6.2e2"])
def test_a_reading_in_other_digits_or_exponent_form_is_refused(client, offices, account, on_account, kwh):
    agent = staff_user("field_agent", offices["division1"])
    data = {
        "read_at": days_ago(1).isoformat(),
        "source": "field_agent",
        "consumer_number": account.consumer_number,
        "kwh": kwh,
        "photo": SimpleUploadedFile("m.jpg", PHOTO, content_type="image/jpeg"),
    }
    res = client.post("/api/v1/metering/readings", data=data, **bearer(agent))
    assert (res.status_code, res.json()["code"]) == (400, "non_numeric_register")
    assert "0-9" in res.json()["message"] or "exponent" in res.json()["message"]
    assert not Reading.objects.filter(source="field_agent").exists()


def test_a_reading_from_year_one_is_refused(account, on_account):
    from urja.core.errors import DomainError

    with pytest.raises(DomainError) as caught:
        services.record_reading(
            actor=None,
            channel="system",
            source="staff",
            read_at=datetime(1, 1, 1, tzinfo=timezone.get_current_timezone()),
            account=account,
            kwh="10",
        )
    assert caught.value.code == "timestamp_too_early"


def test_import_file_rows_follow_the_same_rules(tmp_path, account, on_account):
    ok = days_ago(2).isoformat()
    path = tmp_path / "amr.csv"
    path.write_text(
        "meter_serial,read_at,kwh\n"
        f"BD000001,{ok},15\n"
        f"BD000001,{days_ago(3).isoformat()},१५\n"
        f"BD000001,{days_ago(4).isoformat()},1e3\n"
        "BD000001,1900-01-01T00:00:00+05:30,15\n",
        encoding="utf-8",
    )
    batch = importer.import_file(path=path, actor=None, channel="system", enqueue_vee=False)
    codes = sorted(batch.errors.values_list("code", flat=True))
    assert codes == ["non_numeric_register", "non_numeric_register", "timestamp_too_early"]
    assert batch.inserted == 1


def test_a_file_that_is_not_utf8_is_a_4xx_not_a_500(client, offices):
    officer = staff_user("billing_officer", offices["division1"])
    upload = SimpleUploadedFile("file", b"\x8av2ir\xeb{")
    res = client.post("/api/v1/metering/imports", data={"file": upload}, **bearer(officer))
    assert res.status_code == 400, res.content
    assert res.json()["code"] == "invalid_file"
