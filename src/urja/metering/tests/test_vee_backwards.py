"""A register that goes backwards (no rollover, no replacement) is held for review, whichever way the
reading arrives: recorded, smart-meter batch, imported file, or late (older than the latest reading)."""

from datetime import date, timedelta
from decimal import Decimal

import pytest

from urja.core.errors import DomainError
from urja.core.models import ApiToken
from urja.demo.testing import staff_user
from urja.metering import consumption as calc
from urja.metering import importer, services
from urja.metering.models import Reading

from .conftest import local


def read(account, kwh, when, **kw):
    kw.setdefault("source", "amr")
    return services.record_reading(actor=None, channel="system", account=account, read_at=when, kwh=kwh, **kw)


@pytest.fixture
def history(account, make_meter):
    """A 6-digit meter installed at 0 with actual readings up to 485.490 on 15 April 2025."""
    meter = make_meter()
    services.install_meter(
        account=account, meter=meter, actor=None, channel="system", installed_at=local(2025, 1, 1), initial_kwh="0"
    )
    for month, kwh in [(2, "160"), (3, "320"), (4, "485.490")]:
        assert read(account, kwh, local(2025, month, 15)).vee_status == "passed"
    return meter


def test_485_to_0_on_a_six_digit_register_is_not_a_rollover():
    assert not calc.is_rollover(Decimal("485.490"), Decimal("0.000"), 6)
    assert calc.is_rollover(Decimal("999870"), Decimal("12"), 6)
    with pytest.raises(calc.RegisterError) as err:
        calc.register_delta(Decimal("485.490"), Decimal("0.000"), 6)
    assert err.value.code == "negative_consumption"


def test_register_went_backwards_goes_to_review_naming_both_values(client, offices, account, history):
    r = read(account, "0.000", local(2025, 5, 15))
    assert r.vee_status == "review"
    assert r.exceptions == [
        {
            "rule": "negative_consumption",
            "severity": "review",
            "message": "register went backwards from 485.490 to 0.000 without rollover or replacement",
        }
    ]
    # The bill for the period is held, and billed on an estimate meanwhile, never on negative units.
    bc = services.billing_consumption(account=account, period_start=date(2025, 4, 15), period_end=date(2025, 5, 20))
    assert bc.held is True and bc.kwh >= 0
    # The review queue lists it: API and page.
    officer = staff_user("billing_officer", offices["division1"])
    _, token = ApiToken.issue(user=officer, name="t")
    queue = client.get("/api/v1/metering/review-queue", HTTP_AUTHORIZATION=f"Bearer {token}").json()
    assert [(q["id"], q["exceptions"][0]["rule"]) for q in queue] == [(r.pk, "negative_consumption")]
    client.force_login(officer)
    page = client.get("/metering/review/").content.decode()
    assert "Nothing to review" not in page and "1 reading waits for review" in page
    assert "register went backwards from 485.490 to 0.000" in page


def test_late_reading_is_checked_against_its_true_neighbours(account, history):
    """A reading older than the latest one arrives late: it must fit between the readings around it."""
    fits = read(account, "400", local(2025, 3, 30))
    assert fits.vee_status == "passed"  # 320 (15 Mar) ≤ 400 ≤ 485.490 (15 Apr)
    too_high = read(account, "900", local(2025, 3, 31), source="staff")
    assert too_high.vee_status == "review"
    assert too_high.exceptions[0]["rule"] == "negative_consumption"
    assert "from 900.000 to 485.490" in too_high.exceptions[0]["message"]
    too_low = read(account, "100", local(2025, 3, 1))
    assert too_low.vee_status == "review"
    assert "from 160.000 to 100.000" in too_low.exceptions[0]["message"]


def _smart_meter_read_backwards(account, make_meter):
    """A smart meter whose gateway stores four monthly registers, the last one back at zero (pending VEE)."""
    meter = make_meter(meter_type="smart")
    services.install_meter(
        account=account, meter=meter, actor=None, channel="system", installed_at=local(2025, 1, 1), initial_kwh="0"
    )
    items = [
        {"serial": meter.serial, "ts": local(2025, m, 15, 0), "kwh": Decimal(k)}
        for m, k in [(2, "160"), (3, "320"), (4, "485.490"), (5, "0.000")]
    ]
    services.store_smart_batch(readings=items, intervals=[], events=[])
    return meter


def test_backwards_smart_meter_reading_from_the_gateway_goes_to_review(account, make_meter):
    meter = _smart_meter_read_backwards(account, make_meter)
    ids = list(Reading.objects.filter(meter=meter, vee_status="pending").values_list("id", flat=True))
    assert services.validate_many(ids) == 4
    statuses = list(Reading.objects.filter(meter=meter, source="smart_meter").values_list("kwh", "vee_status"))
    assert statuses[-1] == (Decimal("0.000"), "review")
    assert {s for _, s in statuses[:-1]} == {"passed"}


def test_backwards_reading_in_an_imported_file_goes_to_review(account, history, tmp_path):
    path = tmp_path / "amr.csv"
    at = (local(2025, 5, 15) + timedelta(hours=1)).isoformat()
    path.write_text(f"meter_serial,read_at,kwh\n{history.serial},{at},0.000\n")
    batch = importer.import_file(path=path, actor=None, channel="import", enqueue_vee=False)
    assert batch.inserted == 1
    services.run_vee_pending()
    r = Reading.objects.get(batch=batch)
    assert r.vee_status == "review"
    assert r.exceptions[0]["message"] == "register went backwards from 485.490 to 0.000 without rollover or replacement"


def test_energy_rounds_half_up_like_the_bill_run():
    """Units × multiplying factor to 0.001 kWh half away from zero (the bill run's milli-kWh rule), not
    the decimal context's half-even: found by the bill-run property test (649.999 × 1.333 style cases)."""
    half = calc.Segment(Decimal("1.000"), Decimal("1.001"), 6, Decimal("0.5"))  # 0.0005
    assert calc.consumption([half]) == Decimal("0.001")
    assert calc.consumption([calc.Segment(Decimal("0"), Decimal("0.003"), 6, Decimal("2.5"))]) == Decimal("0.008")
    assert calc.tod_consumption([({"peak": "0"}, {"peak": "0.001"}, 6, Decimal("0.5"))]) == {"peak": Decimal("0.001")}


def test_a_backwards_reading_cannot_be_accepted_only_edited_or_estimated(account, history):
    r = read(account, "0.000", local(2025, 5, 15))
    with pytest.raises(DomainError) as err:
        services.review_reading(reading=r, action="accept", actor=None, channel="system")
    assert err.value.code == "cannot_accept"
    assert "from 485.490 to 0.000" in err.value.message
    # An edited value must fit below the next reading too (here a later one arrived meanwhile).
    read(account, "700", local(2025, 6, 15))
    with pytest.raises(DomainError) as err:
        services.review_reading(reading=r, action="edit", kwh="750", reason="misread", actor=None, channel="system")
    assert err.value.code == "negative_consumption"
    edited = services.review_reading(
        reading=r, action="edit", kwh="585.490", reason="misread", actor=None, channel="system"
    )
    assert (edited.vee_status, edited.kwh, edited.original_kwh) == ("edited", Decimal("585.490"), Decimal("0.000"))
    bc = services.billing_consumption(account=account, period_start=date(2025, 4, 15), period_end=date(2025, 5, 20))
    assert (bc.kwh, bc.status, bc.held) == (Decimal("100.000"), "actual", False)


def test_a_spike_can_still_be_accepted(account, history):
    spike = read(account, "2000", local(2025, 5, 15))
    assert spike.exceptions[0]["rule"] == "spike"
    accepted = services.review_reading(reading=spike, action="accept", actor=None, channel="system")
    assert accepted.vee_status == "accepted"


def test_the_vee_job_validates_smart_readings_the_gateway_left_pending(account, make_meter):
    meter = _smart_meter_read_backwards(account, make_meter)  # the gateway then failed to validate
    assert services.run_vee_pending(limit=3) == 3  # oldest first, within the job's limit
    assert services.run_vee_pending() == 1
    last = Reading.objects.get(meter=meter, read_at=local(2025, 5, 15, 0))
    assert last.vee_status == "review" and "from 485.490 to 0.000" in last.exceptions[0]["message"]
    assert services.run_vee_pending() == 0
