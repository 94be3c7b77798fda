"""Issue 15 part 2 (and meter shifting of issue 12): the staff pages for meter work and reading-file
uploads — forms keep their values and show {code, message} on refusal, nothing changes then; roles and
scope answer like the API; the upload's per-row report and its CSV."""

import csv
import io
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from urja.demo import testing
from urja.metering import selectors, services
from urja.metering.models import ImportBatch, Installation, Meter, MeterTest, Reading, SheetEntry
from urja.notifications.models import OutboxMessage

from .conftest import days_ago


@pytest.fixture
def eng(client, engineer):
    client.force_login(engineer)
    return client


def test_register_keeps_values_and_explains_refusal(eng):
    bad = eng.post(
        "/metering/work/register/",
        {
            "serial": "GM 1!",
            "make": "Genus",
            "meter_type": "static",
            "phase": "1",
            "multiplying_factor": "1",
            "register_digits": "6",
            "ownership": "utility",
            "seals": "S1",
        },
    )
    page = bad.content.decode()
    assert bad.status_code == 400 and "invalid_serial" in page and 'value="Genus"' in page
    assert not Meter.objects.exists()
    ok = eng.post(
        "/metering/work/register/",
        {
            "serial": "gm0001",
            "make": "Genus",
            "meter_type": "static",
            "phase": "3",
            "multiplying_factor": "1",
            "register_digits": "6",
            "ownership": "utility",
            "seals": "S1, S2",
        },
    )
    assert ok.status_code == 302 and ok["Location"] == "/metering/meters/GM0001/"
    meter = Meter.objects.get(serial="GM0001")
    assert meter.phase == 3 and meter.seals == ["S1", "S2"] and meter.status == "in_store"


def test_install_replace_shift_seals_remove(eng, account, make_meter):
    old, new = make_meter("OLD001"), make_meter("NEW001")
    cn = account.consumer_number
    r = eng.post(
        "/metering/work/install/",
        {
            "consumer_number": cn,
            "serial": "OLD001",
            "initial_kwh": "10",
            "location": "Verandah",
            "acknowledged_by": "Basanti",
        },
    )
    assert r.status_code == 302
    inst = selectors.current_installation(account)
    assert inst.meter == old and inst.initial_kwh == 10 and inst.location == "Verandah"
    # the final reading below the initial one is refused, the form keeps what was typed
    bad = eng.post(
        "/metering/work/replace/",
        {
            "consumer_number": cn,
            "final_kwh": "5",
            "serial": "NEW001",
            "initial_kwh": "0",
            "reason": "burnt",
            "old_meter_status": "burnt",
        },
    )
    assert bad.status_code == 400 and 'value="NEW001"' in bad.content.decode()
    assert selectors.current_installation(account).meter == old
    ok = eng.post(
        "/metering/work/replace/",
        {
            "consumer_number": cn,
            "final_kwh": "250",
            "serial": "NEW001",
            "initial_kwh": "3",
            "reason": "burnt",
            "old_meter_status": "burnt",
        },
    )
    assert ok.status_code == 302
    old.refresh_from_db()
    closed = Installation.objects.get(meter=old)
    assert closed.final_kwh == 250 and old.status == "burnt"
    assert selectors.current_installation(account).meter == new
    assert eng.post("/metering/work/shift/", {"consumer_number": cn, "location": ""}).status_code == 400
    assert eng.post("/metering/work/shift/", {"consumer_number": cn, "location": "Gate pillar"}).status_code == 302
    assert selectors.current_installation(account).location == "Gate pillar"
    assert SheetEntry.objects.filter(meter=new, kind="shift").exists()
    assert eng.post("/metering/work/seals/", {"serial": "NEW001", "seals": "A9", "reason": "new"}).status_code == 302
    new.refresh_from_db()
    assert new.seals == ["A9"]
    r = eng.post(
        "/metering/work/remove/", {"consumer_number": cn, "final_kwh": "9", "reason": "PDC", "meter_status": "removed"}
    )
    assert r.status_code == 302 and selectors.current_installation(account) is None


def test_test_notice_goes_to_outbox_and_test_needs_it(eng, account, installed, django_capture_on_commit_callbacks):
    serial = installed.meter.serial
    today = timezone.localdate()
    soon = eng.post("/metering/work/notice/", {"serial": serial, "test_on": str(today + timedelta(days=2))})
    assert soon.status_code == 400 and "insufficient_notice" in soon.content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        ok = eng.post("/metering/work/notice/", {"serial": serial, "test_on": str(today + timedelta(days=3))})
    assert ok.status_code == 302
    assert OutboxMessage.objects.filter(event="meter.test_notice").exists()
    bad = eng.post(
        "/metering/work/test/",
        {
            "serial": serial,
            "notice_given_on": str(today - timedelta(days=1)),
            "tested_on": str(today),
            "error_percent": "4",
        },
    )
    assert bad.status_code == 400 and not MeterTest.objects.exists()
    ok = eng.post(
        "/metering/work/test/",
        {
            "serial": serial,
            "notice_given_on": str(today - timedelta(days=3)),
            "tested_on": str(today),
            "error_percent": "4",
        },
    )
    assert ok.status_code == 302 and MeterTest.objects.get().result == "fast"


def test_roles_and_scope(client, offices, billing_officer, account, installed):
    client.force_login(billing_officer)
    assert client.get("/metering/work/").status_code == 403
    assert client.post("/metering/work/shift/", {"consumer_number": account.consumer_number}).status_code == 403
    other = testing.staff_user("engineer", offices["division2"], username="eng2")
    client.force_login(other)
    r = client.post("/metering/work/shift/", {"consumer_number": account.consumer_number, "location": "X"})
    assert r.status_code == 404 and selectors.current_installation(account).location == ""
    assert client.get("/metering/work/nope/").status_code == 404


HEADER = "meter_serial,read_at,kwh,kvah,md_kw,md_kva,tod_peak,tod_solar,tod_normal"


def test_upload_reports_rows_and_csv(client, billing_officer, account, make_meter):
    meter = make_meter("AMR0001", meter_type="amr")
    services.install_meter(account=account, meter=meter, actor=None, channel="system", installed_at=days_ago(90))
    good = f"AMR0001,{days_ago(30).isoformat(timespec='seconds')},120,,,,,,"
    bad = "NOPE,2025-01-01T10:00:00+05:30,1,,,,,,"
    body = "\n".join([HEADER, good, bad]) + "\n"
    client.force_login(billing_officer)
    assert client.get("/metering/imports/").status_code == 200
    missing = client.post("/metering/imports/", {"source": "amr", "bill_cycle": "C01"})
    assert missing.status_code == 400 and 'value="C01"' in missing.content.decode()
    r = client.post("/metering/imports/", {"source": "amr", "file": SimpleUploadedFile("amr.csv", body.encode())})
    batch = ImportBatch.objects.get()
    assert r.status_code == 302 and r["Location"] == f"/metering/imports/{batch.pk}/"
    assert (batch.inserted, batch.rejected) == (1, 1)
    assert Reading.objects.filter(meter=meter, source="amr").count() == 1
    page = client.get(r["Location"]).content.decode()
    assert "no meter with this serial" in page
    rows = list(csv.reader(io.StringIO(client.get(f"/metering/imports/{batch.pk}/report.csv").content.decode())))
    assert rows[0] == ["row", "outcome", "code", "message", "raw"]
    assert rows[1][:3] == ["2", "refused", "unknown_meter"]
    assert rows[-1] == ["rows", "2", "accepted", "1", "duplicates", "0", "refused", "1"]


def test_field_agent_cannot_upload(client, offices):
    client.force_login(testing.staff_user("field_agent", offices["section1"], username="fa"))
    assert client.get("/metering/imports/").status_code == 403


def test_review_queue_labelled_and_refusal_in_words_without_javascript(client, billing_officer, installed):
    reading = services.record_reading(
        account=installed.account, read_at=days_ago(5), kwh="1100", actor=None, channel="system", source="staff"
    )
    Reading.objects.filter(pk=reading.pk).update(vee_status="review")
    client.force_login(billing_officer)
    page = client.get("/metering/review/").content.decode()
    assert f'<label for="reason-{reading.pk}">' in page and f'<label for="kwh-{reading.pk}">' in page
    r = client.post(f"/metering/review/{reading.pk}/", {"action": "edit", "kwh": "1090"}, follow=True)
    assert "a reason is required" in r.content.decode()
    reading.refresh_from_db()
    assert reading.vee_status == "review" and reading.kwh == 1100
    client.post(f"/metering/review/{reading.pk}/", {"action": "edit", "kwh": "1090", "reason": "misread"})
    reading.refresh_from_db()
    assert reading.kwh == 1090 and reading.vee_status != "review"


def test_navigation_links_for_engineer_do_not_403(client, engineer, installed):
    client.force_login(engineer)
    page = client.get("/metering/meters/").content.decode()
    assert "/metering/work/" in page and "/metering/review/" not in page
    detail = client.get(f"/metering/meters/{installed.meter.serial}/").content.decode()
    assert "/metering/work/notice/?serial=" in detail
    form = client.get(f"/metering/work/notice/?serial={installed.meter.serial}").content.decode()
    assert f'value="{installed.meter.serial}"' in form
