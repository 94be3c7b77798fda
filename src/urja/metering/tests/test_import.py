import json
from datetime import timedelta

import pytest
from django.utils import timezone

from urja.core.errors import DomainError
from urja.metering import importer, services
from urja.metering.models import ImportRowError, Reading

from .conftest import days_ago


@pytest.fixture
def meters(account, make_meter):
    m1 = make_meter("AMR0001", meter_type="amr", register_digits=5)
    services.install_meter(account=account, meter=m1, actor=None, channel="system", installed_at=days_ago(90))
    make_meter("AMR0002", meter_type="amr")  # in store: never installed
    return m1


def ts(days):
    return (timezone.now() - timedelta(days=days)).isoformat(timespec="seconds")


GOOD = [
    ["AMR0001", ts(60), "120.5", "130", "1.2", "", "40", "10", "70.5"],
    ["amr0001", ts(30), "250", "", "", "", "", "", ""],
]
BAD = [
    (["NOPE", ts(20), "1", "", "", "", "", "", ""], "unknown_meter"),
    (["AMR0001", "yesterday", "1", "", "", "", "", "", ""], "invalid_timestamp"),
    (["AMR0001", "2025-02-30T10:00:00+05:30", "1", "", "", "", "", "", ""], "invalid_timestamp"),
    (["AMR0001", (timezone.now() + timedelta(days=2)).isoformat(), "1", "", "", "", "", "", ""], "timestamp_in_future"),
    (["AMR0001", ts(10), "", "", "", "", "", "", ""], "missing_register"),
    (["AMR0001", ts(11), "-5", "", "", "", "", "", ""], "negative_register"),
    (["AMR0001", ts(12), "12a", "", "", "", "", "", ""], "non_numeric_register"),
    (["AMR0001", ts(13), "12", "x", "", "", "", "", ""], "non_numeric_register"),
    (["AMR0001", ts(14), "100000", "", "", "", "", "", ""], "register_out_of_range"),
    (["AMR0002", ts(15), "5", "", "", "", "", "", ""], "meter_not_installed"),
]
HEADER = "meter_serial,read_at,kwh,kvah,md_kw,md_kva,tod_peak,tod_solar,tod_normal"


def write_csv(tmp_path, rows, name="amr.csv"):
    path = tmp_path / name
    lines = [HEADER] + [",".join(r) for r in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_csv_import_is_idempotent_with_row_errors(meters, tmp_path, django_capture_on_commit_callbacks):
    rows = [GOOD[0], BAD[0][0], GOOD[1], GOOD[1]] + [b for b, _ in BAD[1:]]
    path = write_csv(tmp_path, rows)
    with django_capture_on_commit_callbacks(execute=True):
        batch = importer.import_file(path=path, actor=None, channel="import")
    assert (batch.rows, batch.inserted, batch.rejected, batch.duplicates) == (13, 2, 10, 1)
    errors = list(ImportRowError.objects.filter(batch=batch).values_list("row_number", "code"))
    assert errors == [(2, "unknown_meter")] + [(i, code) for i, (_, code) in enumerate(BAD[1:], start=5)]
    first = Reading.objects.get(meter=meters, kwh="120.5")
    assert first.tod == {"peak": "40", "solar": "10", "normal": "70.5"} and first.kvah == 130
    assert first.vee_status == "passed"  # validated by the VEE job after the import
    again = importer.import_file(path=path, actor=None, channel="import")
    assert (again.inserted, again.duplicates, again.rejected) == (0, 3, 10)
    assert f"batch {batch.pk}" in again.message
    assert Reading.objects.filter(meter=meters).count() == 3  # installation + 2


def test_json_array_and_lines(meters, tmp_path):
    objs = [
        {"meter_serial": "AMR0001", "read_at": ts(50), "kwh": 100, "tod": {"peak": 12.5}},
        {"meter_serial": "AMR0001", "read_at": ts(40), "kwh": "150.25", "md_kw": 2},
        {"meter_serial": "AMR0001", "read_at": ts(35), "kwh": True},
        {"meter_serial": "AMR0001", "read_at": ts(34), "kwh": 1, "colour": "red"},
        ["not", "an", "object"],
    ]
    path = tmp_path / "batch.json"
    path.write_text(json.dumps({"readings": objs}, indent=1))
    batch = importer.import_file(path=path, actor=None, channel="import", source="field_agent")
    assert (batch.rows, batch.inserted, batch.rejected) == (5, 2, 3)
    assert list(batch.errors.values_list("code", flat=True)) == ["non_numeric_register", "invalid_row", "invalid_row"]
    assert Reading.objects.get(kwh=100).tod == {"peak": "12.5"}
    lines = tmp_path / "batch.jsonl"
    lines.write_text("\n".join(json.dumps(o) for o in objs[:2]) + "\n{broken\n")
    batch2 = importer.import_file(path=lines, actor=None, channel="import", source="field_agent")
    assert (batch2.rows, batch2.inserted, batch2.duplicates, batch2.rejected) == (3, 0, 2, 1)


def test_streamed_json_array_parser_handles_chunk_boundaries(monkeypatch, tmp_path):
    monkeypatch.setattr(importer, "CHUNK", 7)
    objs = [{"a": i, "s": "x" * (i % 13), "n": {"k": [1, 2]}} for i in range(200)]
    path = tmp_path / "a.json"
    path.write_text(json.dumps(objs))
    with open(path, "rb") as fh:
        assert list(importer.iter_json_array(fh)) == objs


@pytest.mark.parametrize(
    ("content", "code"),
    [
        ("meter_serial,read_at\nX,Y\n", "invalid_file"),  # kwh column missing
        ("meter_serial,read_at,kwh,colour\n", "invalid_file"),
        ("", "invalid_file"),
    ],
)
def test_bad_files_are_rejected_whole(meters, tmp_path, content, code):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(DomainError) as err:
        importer.import_file(path=path, actor=None, channel="import")
    assert err.value.code == code
    assert Reading.objects.filter(source="amr").count() == 0


def test_ragged_csv_changes_nothing(meters, tmp_path):
    path = tmp_path / "ragged.csv"
    path.write_text(HEADER + "\n" + ",".join(GOOD[0]) + "\nAMR0001,2025-01-01T00:00:00Z\n")
    with pytest.raises(DomainError) as err:
        importer.import_file(path=path, actor=None, channel="import")
    assert err.value.code == "invalid_file"
    assert Reading.objects.filter(source="amr").count() == 0


def test_castable_file_takes_the_fast_path_with_the_same_codes(meters, tmp_path):
    """Every value casts: on PostgreSQL the pattern-free path runs; the codes are those of the careful path."""
    rows = [GOOD[0]] + [
        b
        for b, code in BAD
        if code
        in {"unknown_meter", "timestamp_in_future", "negative_register", "register_out_of_range", "meter_not_installed"}
    ]
    batch = importer.import_file(path=write_csv(tmp_path, rows), actor=None, channel="import")
    assert batch.inserted == 1
    assert list(batch.errors.values_list("code", flat=True)) == [
        "unknown_meter",
        "timestamp_in_future",
        "negative_register",
        "register_out_of_range",
        "meter_not_installed",
    ]


def test_overlapping_file_adds_only_the_new_readings(meters, tmp_path):
    """An AMR window sent again with one new day: the known readings are duplicates, the new one lands
    (on PostgreSQL the plain insert hits the duplicate and the ON CONFLICT path takes over)."""
    first = importer.import_file(path=write_csv(tmp_path, GOOD, "a.csv"), actor=None, channel="import")
    assert (first.inserted, first.duplicates, first.rejected) == (2, 0, 0)
    newer = ["AMR0001", ts(5), "300", "", "", "", "", "", ""]
    overlap = importer.import_file(path=write_csv(tmp_path, [*GOOD, newer], "b.csv"), actor=None, channel="import")
    assert (overlap.rows, overlap.inserted, overlap.duplicates, overlap.rejected) == (3, 1, 2, 0)
    assert sorted(Reading.objects.filter(meter=meters, source="amr").values_list("kwh", flat=True)) == [120.5, 250, 300]
    assert overlap.first_reading_id == overlap.last_reading_id == Reading.objects.get(kwh=300).pk


def test_vee_job_works_batch_by_batch_and_resumes_across_its_limit(meters, tmp_path):
    batch = importer.import_file(path=write_csv(tmp_path, GOOD), actor=None, channel="import", enqueue_vee=False)
    assert (batch.inserted, batch.vee_done) == (2, False)
    assert services.run_vee_pending(limit=1) == 1  # the oldest reading of the batch first
    statuses = dict(Reading.objects.filter(batch=batch).values_list("kwh", "vee_status"))
    assert statuses[120.5] == "passed" and statuses[250] == "pending"
    batch.refresh_from_db()
    assert not batch.vee_done
    assert services.run_vee_pending(limit=10) == 1
    batch.refresh_from_db()
    assert batch.vee_done and not Reading.objects.filter(batch=batch, vee_status="pending").exists()
    assert services.run_vee_pending(limit=10) == 0  # nothing left: the done batch is not read again


def test_file_readings_are_stamped_with_the_application_clock(meters, tmp_path, monkeypatch):
    # The bill run tells late readings by created_at; a file stamped with the database's clock looked
    # late to a run living at another time (the simulation's months), unlike every other reading.
    stamp = timezone.now() - timedelta(days=10)
    path = write_csv(tmp_path, [GOOD[0]])
    monkeypatch.setattr(timezone, "now", lambda: stamp)
    importer.import_file(path=path, actor=None, channel="import")
    assert Reading.objects.get(meter=meters, kwh="120.5").created_at == stamp
