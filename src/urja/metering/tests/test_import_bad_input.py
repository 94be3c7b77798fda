"""Bad real-world reading files: each bad row lands in the per-row report or the VEE review queue with a
reason; nothing is dropped silently or recorded twice."""

from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from urja.core.errors import Conflict, DomainError
from urja.core.models import ApiToken
from urja.demo.testing import domestic_account, staff_user
from urja.metering import importer, services
from urja.metering.models import Reading

from .conftest import local


def at(y, m, d):
    return local(y, m, d).isoformat()


def write(tmp_path, rows, name="amr.csv"):
    path = tmp_path / name
    path.write_text("meter_serial,read_at,kwh\n" + "".join(f"{s},{t},{k}\n" for s, t, k in rows))
    return path


@pytest.fixture
def two_cycles(offices, make_meter):
    """AMR meters on an account in cycle C01 and one in cycle C05, installed on 1 Jan 2025 at 1000."""
    out = {}
    for cycle, serial in (("C01", "AMRC01"), ("C05", "AMRC05")):
        account = domestic_account(offices["section1"], mobile=None, bill_cycle=cycle)
        services.install_meter(
            account=account,
            meter=make_meter(serial, meter_type="amr"),
            actor=None,
            channel="system",
            installed_at=local(2025, 1, 1),
            initial_kwh="1000",
        )
        out[cycle] = account
    return out


def test_rows_of_another_bill_cycle_are_reported_with_both_cycles(two_cycles, tmp_path):
    rows = [("AMRC05", at(2025, 2, 5), "1100"), ("AMRC01", at(2025, 2, 5), "1120"), ("AMRC05", at(2025, 3, 5), "1200")]
    batch = importer.import_file(path=write(tmp_path, rows), actor=None, channel="import", bill_cycle="C05")
    assert (batch.rows, batch.inserted, batch.rejected, batch.duplicates) == (3, 2, 1, 0)
    assert list(batch.errors.values_list("row_number", "code", "message")) == [
        (2, "wrong_bill_cycle", "the account is in bill cycle C01, the file is for cycle C05")
    ]
    assert not Reading.objects.filter(account=two_cycles["C01"], source="amr").exists()
    # Sent again (on PostgreSQL the duplicates take the ON CONFLICT path): the same report, nothing new.
    again = importer.import_file(path=write(tmp_path, rows), actor=None, channel="import", bill_cycle="C05")
    assert (again.inserted, again.duplicates, again.rejected) == (0, 2, 1)
    assert list(again.errors.values_list("code", "message")) == [
        ("wrong_bill_cycle", "the account is in bill cycle C01, the file is for cycle C05")
    ]
    # The whole file from the wrong cycle: every row is reported, none is imported.
    wrong = importer.import_file(
        path=write(tmp_path, rows[:1] + rows[2:], "c05.csv"), actor=None, channel="import", bill_cycle="C01"
    )
    assert (wrong.inserted, wrong.rejected) == (0, 2)
    assert set(wrong.errors.values_list("code", flat=True)) == {"wrong_bill_cycle"}
    # Without a declared cycle the importer does not judge cycles.
    plain = importer.import_file(path=write(tmp_path, rows[1:2], "c01.csv"), actor=None, channel="import")
    assert (plain.inserted, plain.rejected) == (1, 0)


def test_a_bill_cycle_must_be_a_code(two_cycles, tmp_path):
    with pytest.raises(DomainError) as err:
        importer.import_file(path=write(tmp_path, []), actor=None, channel="import", bill_cycle="C01'; --")
    assert err.value.code == "invalid_bill_cycle"


def test_a_reading_recorded_and_imported_is_one_reading(two_cycles, tmp_path):
    account = two_cycles["C01"]
    services.record_reading(
        actor=None, channel="system", source="amr", account=account, read_at=local(2025, 2, 5), kwh="1100"
    )
    rows = [("AMRC01", at(2025, 2, 5), "1100"), ("AMRC01", at(2025, 3, 5), "1200")]
    path = write(tmp_path, rows)
    batch = importer.import_file(path=path, actor=None, channel="import", enqueue_vee=False)
    assert (batch.inserted, batch.duplicates, batch.rejected) == (1, 1, 0)
    # the same file again adds nothing, and says which batch had it
    again = importer.import_file(path=path, actor=None, channel="import", enqueue_vee=False)
    assert (again.inserted, again.duplicates) == (0, 2) and f"batch {batch.pk}" in again.message
    with pytest.raises(Conflict) as err:  # and recording an imported reading again is refused
        services.record_reading(
            actor=None, channel="system", source="amr", account=account, read_at=local(2025, 3, 5), kwh="1200"
        )
    assert err.value.code == "duplicate_reading"
    assert Reading.objects.filter(account=account, source="amr").count() == 2


def test_an_older_reading_in_a_later_file_is_checked_against_its_neighbours(two_cycles, tmp_path):
    account = two_cycles["C01"]
    first = [("AMRC01", at(2025, 2, 5), "1100"), ("AMRC01", at(2025, 4, 5), "1300")]
    importer.import_file(path=write(tmp_path, first), actor=None, channel="import", enqueue_vee=False)
    services.run_vee_pending()
    late = [("AMRC01", at(2025, 3, 5), "1350"), ("AMRC01", at(2025, 3, 6), "1210")]
    late_batch = importer.import_file(path=write(tmp_path, late, "late.csv"), actor=None, channel="import")
    services.run_vee_pending()
    got = {r.kwh: (r.vee_status, r.exceptions) for r in Reading.objects.filter(batch=late_batch)}
    status, exceptions = got[1350]
    assert status == "review"
    assert (
        exceptions[0]["message"] == "register went backwards from 1350.000 to 1300.000 without rollover or replacement"
    )
    assert got[1210][0] == "passed"
    assert Reading.objects.filter(account=account, vee_status="review").count() == 1


def test_upload_with_a_bill_cycle(client, offices, two_cycles):
    officer = staff_user("billing_officer", offices["division1"])
    _, token = ApiToken.issue(user=officer, name="t")
    body = f"meter_serial,read_at,kwh\nAMRC01,{(local(2025, 2, 5) + timedelta(hours=1)).isoformat()},1100\n"
    res = client.post(
        "/api/v1/metering/imports",
        {"file": SimpleUploadedFile("c05.csv", body.encode()), "bill_cycle": "C05"},
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )
    assert res.status_code == 201, res.content
    batch = res.json()
    assert (batch["inserted"], batch["rejected"]) == (0, 1)
    errors = client.get(f"/api/v1/metering/imports/{batch['id']}/errors", HTTP_AUTHORIZATION=f"Bearer {token}").json()
    assert [(e["code"], e["message"]) for e in errors] == [
        ("wrong_bill_cycle", "the account is in bill cycle C01, the file is for cycle C05")
    ]
