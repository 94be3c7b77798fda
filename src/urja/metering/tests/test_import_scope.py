"""A reading file writes readings only for the accounts its uploader may see; a row out of scope is
reported exactly like a row for a meter that does not exist (issue 11, one scope rule). Runs on
SQLite (batched Python validation) and PostgreSQL (set-based SQL) alike."""

import json
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.utils import timezone

from urja.core.models import ApiToken
from urja.demo import testing
from urja.metering import importer, services
from urja.metering.models import ImportRowError, Installation, Reading

from .conftest import days_ago

HEADER = "meter_serial,read_at,kwh"


def ts(days):
    return (timezone.now() - timedelta(days=days)).isoformat(timespec="seconds")


@pytest.fixture
def area(offices, make_meter):
    """Division 1's billing officer; a meter in division 1, one in division 2, one that served a
    division 2 account until 50 days ago and a division 1 account since, and one in store."""
    mine = testing.domestic_account(offices["section1"])
    also_mine = testing.domestic_account(offices["section1"], name="Rina Das", mobile="9437012346")
    theirs = testing.domestic_account(offices["section2"], name="Hari Sahu", mobile="9437012347")
    meter_in, meter_out, moved = make_meter("SCP0001"), make_meter("SCP0002"), make_meter("SCP0003")
    make_meter("SCP0004")  # in store: never installed
    services.install_meter(account=mine, meter=meter_in, actor=None, channel="system", installed_at=days_ago(90))
    services.install_meter(account=theirs, meter=meter_out, actor=None, channel="system", installed_at=days_ago(90))
    Installation.objects.create(meter=moved, account=theirs, installed_at=days_ago(100), removed_at=days_ago(95))
    services.install_meter(account=also_mine, meter=moved, actor=None, channel="system", installed_at=days_ago(50))
    officer = testing.staff_user("billing_officer", offices["division1"])
    return {"mine": mine, "also_mine": also_mine, "theirs": theirs, "officer": officer}


def write(tmp_path, rows, name="amr.csv"):
    path = tmp_path / name
    path.write_text("\n".join([HEADER, *(",".join(r) for r in rows)]) + "\n")
    return path


def report(batch):
    return list(ImportRowError.objects.filter(batch=batch).order_by("row_number").values_list("row_number", "code"))


@pytest.mark.django_db
def test_rows_out_of_scope_are_refused_as_unknown(area, tmp_path):
    rows = [
        ["SCP0001", ts(30), "120"],  # 1 in scope
        ["SCP0002", ts(30), "120"],  # 2 installed in division 2: as if no such meter
        ["NOPE0001", ts(30), "120"],  # 3 no such meter
        ["SCP0002", "yesterday", "120"],  # 4 out of scope answers before any other check ...
        ["NOPE0001", "yesterday", "120"],  # 5 ... exactly as a serial no meter has
        ["SCP0003", ts(97), "10"],  # 6 read while the meter served division 2: no such installation
        ["SCP0004", ts(30), "10"],  # 7 in store: not installed (the same answer)
        ["SCP0003", ts(20), "15"],  # 8 the moved meter, now on a division 1 account
    ]
    batch = importer.import_file(path=write(tmp_path, rows), actor=area["officer"], channel="import")
    assert (batch.rows, batch.inserted, batch.rejected) == (8, 2, 6)
    assert report(batch) == [
        (2, "unknown_meter"),
        (3, "unknown_meter"),
        (4, "unknown_meter"),
        (5, "unknown_meter"),
        (6, "meter_not_installed"),
        (7, "meter_not_installed"),
    ]
    messages = dict(ImportRowError.objects.filter(batch=batch).values_list("row_number", "message"))
    assert messages[2] == messages[3] == messages[4] == messages[5] == importer.MESSAGES["unknown_meter"]
    assert messages[6] == messages[7]
    assert not Reading.objects.filter(account=area["theirs"], batch=batch).exists()
    assert set(Reading.objects.filter(batch=batch).values_list("account_id", "kwh")) == {
        (area["mine"].pk, 120),
        (area["also_mine"].pk, 15),
    }


@pytest.mark.django_db
def test_the_same_file_from_the_whole_utility_writes_every_row(area, tmp_path):
    rows = [["SCP0001", ts(30), "120"], ["SCP0002", ts(30), "130"], ["SCP0003", ts(97), "10"]]
    path = write(tmp_path, rows)
    scoped = importer.import_file(path=path, actor=area["officer"], channel="import")
    assert (scoped.inserted, scoped.rejected) == (1, 2)
    admin = testing.staff_user("admin", None)
    full = importer.import_file(path=path, actor=admin, channel="import")  # the same file again
    assert (full.inserted, full.rejected, full.duplicates) == (2, 0, 1)
    cli = importer.import_file(path=path, actor=None, channel="import")  # urja readings import
    assert (cli.inserted, cli.rejected, cli.duplicates) == (0, 0, 3)
    assert Reading.objects.filter(account=area["theirs"], source="amr").count() == 2


@pytest.mark.django_db
def test_json_rows_out_of_scope_too(area, tmp_path):
    path = tmp_path / "mobile.jsonl"
    lines = [
        {"meter_serial": "SCP0002", "read_at": ts(10), "kwh": "5"},
        {"meter_serial": "SCP0001", "read_at": ts(10), "kwh": "125"},
    ]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    batch = importer.import_file(path=path, actor=area["officer"], channel="import", source="field_agent")
    assert (batch.inserted, report(batch)) == (1, [(1, "unknown_meter")])


@pytest.mark.django_db
def test_field_agent_file_keeps_to_the_agents_section(area, offices, tmp_path):
    agent = testing.staff_user("field_agent", offices["section2"])
    rows = [["SCP0001", ts(30), "120"], ["SCP0002", ts(30), "130"]]
    batch = importer.import_file(path=write(tmp_path, rows), actor=agent, channel="field_agent", source="field_agent")
    assert (batch.inserted, report(batch)) == (1, [(1, "unknown_meter")])
    assert Reading.objects.get(batch=batch).account == area["theirs"]


@pytest.mark.django_db
def test_upload_through_the_api_is_scoped(area, tmp_path):
    _, raw = ApiToken.issue(user=area["officer"], name="test")
    body = "\n".join([HEADER, f"SCP0002,{ts(30)},120", f"NOPE0001,{ts(30)},120"]).encode() + b"\n"
    res = Client().post(
        "/api/v1/metering/imports",
        data={"file": SimpleUploadedFile("amr.csv", body)},
        HTTP_AUTHORIZATION=f"Bearer {raw}",
    )
    assert res.status_code == 201 and (res.json()["inserted"], res.json()["rejected"]) == (0, 2)
    errors = Client().get(f"/api/v1/metering/imports/{res.json()['id']}/errors", HTTP_AUTHORIZATION=f"Bearer {raw}")
    first, second = errors.json()
    assert (
        (first["code"], first["message"])
        == (second["code"], second["message"])
        == (
            "unknown_meter",
            importer.MESSAGES["unknown_meter"],
        )
    )
    assert not Reading.objects.filter(account=area["theirs"], source="amr").exists()
