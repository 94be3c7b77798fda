"""Shipped tariffs against hand computations; loader errors; overlap; calculator (CLI + API)."""

from datetime import date
from decimal import Decimal as D
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command

from urja.core.errors import Conflict, DomainError
from urja.tariffs import schema, services
from urja.tariffs.models import TariffVersion

DATA = Path(__file__).resolve().parents[4] / "data" / "tariffs"


@pytest.fixture
def tariffs(db):
    services.load_all()


def calc(**kw):
    return services.calculate(**kw)


def codes(bill):
    return {c: a for c, a in bill.by_code().items() if a}


def test_oerc_domestic_telescopic_with_ebill(tariffs):
    bill = calc(period_start=date(2024, 5, 1), period_end=date(2024, 5, 31), units=250, sanctioned_load=2, e_bill=True)
    # 50 × 2.90 = 145.00; 150 × 4.70 = 705.00; 50 × 5.70 = 285.00; fixed 2 kW × 20 = 40.00; e-bill −10
    assert codes(bill) == {
        "EC1": D("145.00"),
        "EC2": D("705.00"),
        "EC3": D("285.00"),
        "FC": D("40.00"),
        "EBILL": D("-10.00"),
        "DIGITAL": D("-47.00"),
    }
    assert bill.total == D("1165.00")
    # digital payment rebate: 4% of (1135 + 40) = 47.00, only if paid digitally (not deducted)
    assert bill.conditional("digital") == D("-47.00")


def test_oerc_domestic_smart_meter_tod_and_meter_rent(tariffs):
    bill = calc(
        period_start=date(2025, 5, 1),
        period_end=date(2025, 5, 31),
        units=1000,
        sanctioned_load=12,
        meter_type="smart",
        tod_units={"TOD_SOLAR": 200, "TOD_PEAK": 300},
    )
    # EC 145 + 705 + 200×5.70=1140 + 600×6.10=3660; solar 200×−0.20=−40; peak 300×0.30=90;
    # FC 12×20=240; smart meter rent 60 (12 kW > 2 kW)
    c = codes(bill)
    assert c["EC4"] == D("3660.00") and c["TOD_SOLAR"] == D("-40.00") and c["TOD_PEAK"] == D("90.00")
    assert c["MR"] == D("60.00") and c["FC"] == D("240.00")
    assert bill.total == D("6000.00")


def test_smart_meter_rent_waived_up_to_2kw_and_no_tod_below_10kw(tariffs):
    bill = calc(
        period_start=date(2025, 5, 1),
        period_end=date(2025, 5, 31),
        units=100,
        sanctioned_load=2,
        meter_type="smart",
        tod_units={"TOD_PEAK": 50},
    )
    # 50×2.90 + 50×4.70 = 380; FC 40; meter rent waived; TOD only above 10 kW
    assert bill.total == D("420.00")
    rent = next(ln for ln in bill.lines if ln.code == "MR")
    assert rent.amount == 0 and "waived" in rent.explanation


def test_period_across_tariff_change_is_split_by_days_and_prorated(tariffs):
    bill = calc(
        period_start=date(2025, 3, 15), period_end=date(2025, 4, 14), units=420, sanctioned_load=3, area="rural"
    )
    assert [s.schedule.order_code for s in bill.segments] == ["oerc-rst-2024-25", "oerc-rst-2025-26"]
    # segment 1: 17 days of March (factor 17/31): slab widths 50→27, 150→82, 200→110 (rounded to units);
    # units 420 × 17/31 = 230.323: 27×2.90=78.30, 82×4.70=385.40, 110×5.70=627.00, 11.323×6.10=69.07;
    # fixed 3×20×17/31 = 32.90.  segment 2: 14 days of April (14/30): widths 23, 70, 93; units 189.677:
    # 66.70 + 329.00 + 530.10 + 3.677×6.10=22.43; fixed 3×20×14/30 = 28.00
    seg1 = [ln.amount for ln in bill.lines if ln.segment == 0 and ln.group != "conditional"]
    seg2 = [ln.amount for ln in bill.lines if ln.segment == 1 and ln.group != "conditional"]
    assert seg1 == [D("78.30"), D("385.40"), D("627.00"), D("69.07"), D("32.90")]
    assert seg2 == [D("66.70"), D("329.00"), D("530.10"), D("22.43"), D("28.00")]
    assert bill.total == D("2168.90")
    # rural prompt-payment rebate 10 paise/unit: 230.323 → 23.03, 189.677 → 18.97
    assert bill.payable_by_due_date == D("2168.90") - D("23.03") - D("18.97")


def test_bpl_kutir_jyoti(tariffs):
    bill = calc(period_start=date(2025, 6, 1), period_end=date(2025, 6, 30), units=25, sub_category="bpl_kutir_jyoti")
    assert bill.total == D("70.00")


def test_irrigation_dps_simple_per_started_month(tariffs):
    bill = calc(
        period_start=date(2025, 6, 1),
        period_end=date(2025, 6, 30),
        units=300,
        sanctioned_load=D("4.5"),
        category="irrigation",
        overdue_principal=1000,
        overdue_days=45,
    )
    # 300 × 1.50 = 450; fixed ceil(4.5)=5 kW × 20 = 100; DPS 1.25% × 2 started months × 1000 = 25.00
    assert codes(bill) == {"EC1": D("450.00"), "FC": D("100.00"), "DPS": D("25.00")}


def test_dps_waived_for_lt_domestic(tariffs):
    bill = calc(
        period_start=date(2025, 6, 1), period_end=date(2025, 6, 30), units=10, overdue_principal=5000, overdue_days=90
    )
    dps = next(ln for ln in bill.lines if ln.code == "DPS")
    assert dps.amount == 0 and "waived" in dps.explanation


def test_derc_load_brackets_riders_and_capped_subsidy(tariffs):
    bill = calc(
        period_start=date(2024, 6, 1),
        period_end=date(2024, 6, 30),
        units=320,
        sanctioned_load=4,
        schedule="derc.domestic",
    )
    # EC 200×3 + 120×4.50 = 1140; FC 4 kW in the 2–5 kW bracket × 50 = 200; PPAC 8.75% of 1340 = 117.25;
    # SUR 8% = 107.20; PTS 7% = 93.80; ET 5% of 1658.25 = 82.91; current 1741.16; subsidy 50% capped 800
    c = codes(bill)
    assert c["FC"] == D("200.00") and c["PPAC"] == D("117.25") and c["ET"] == D("82.91")
    assert c["GNCTD_HALF"] == D("-800.00")
    assert bill.total == D("941.16")
    small = calc(
        period_start=date(2024, 6, 1),
        period_end=date(2024, 6, 30),
        units=150,
        sanctioned_load=D("1.5"),
        schedule="derc.domestic",
    )
    # 450 + 1.5×20=30 → 480; riders 42.00 + 38.40 + 33.60; ET 5% of 594 = 29.70; fully subsidised
    assert small.current_charges == D("623.70") and small.total == D("0.00")
    # recorded MD above the sanctioned load is billed (billing demand = higher of the two)
    md = calc(
        period_start=date(2024, 6, 1),
        period_end=date(2024, 6, 30),
        units=0,
        sanctioned_load=4,
        recorded_md=6,
        schedule="derc.domestic",
    )
    assert codes(md)["FC"] == D("600.00")  # 6 kW in the 5–15 kW bracket × 100


def test_minigrid_packages(tariffs):
    home = calc(
        period_start=date(2025, 6, 1),
        period_end=date(2025, 6, 30),
        units=40,
        category="minigrid",
        sub_category="household",
        package_code="MG-HOME-250W",
    )
    assert home.total == D("720.00")  # 40 × 18, per-unit package
    lite = calc(
        period_start=date(2025, 6, 1),
        period_end=date(2025, 6, 15),
        category="minigrid",
        sub_category="household",
        package_code="MG-SOLAR-100W",
    )
    assert lite.total == D("75.00")  # fixed 150/month × 15/30
    v = TariffVersion.objects.get(schedule_code="MG-SOLAR-100W")
    assert v.package_id == "MG01H0100W06FP"


def test_missing_tariff_is_reported(tariffs):
    with pytest.raises(DomainError) as exc:
        calc(period_start=date(2024, 3, 1), period_end=date(2024, 4, 30), units=10)
    assert exc.value.code == "missing_tariff"
    assert exc.value.details["missing"] == [["2024-03-01", "2024-03-31"]]


BAD = """[source]
document = "x"

[order]
code = "bad-1"
regulator = "X"
reference = "X"
effective_from = 2030-04-01

[[schedule]]
code = "x.domestic"
name = "X"
category = "domestic"

[schedule.energy]
slabs = [
  { upto = 50, rate = "2.90" },
  { upto = 40, rate = "4.70" },
]
"""


def test_malformed_file_names_file_line_and_field(db):
    with pytest.raises(DomainError) as exc:
        services.load_text(text=BAD, file_name="bad.toml")
    assert exc.value.code == "invalid_tariff_file"
    assert exc.value.details["file"] == "bad.toml"
    assert exc.value.details["field"] == "schedule[0].energy.slabs[1].upto"
    assert exc.value.details["line"] == 16  # the `slabs = [` line holding the bad slab
    assert "bad.toml:16" in exc.value.message
    with pytest.raises(DomainError) as exc:
        services.load_text(text=BAD.replace('rate = "2.90"', 'rate = "abc"'), file_name="bad.toml")
    assert exc.value.details["field"] == "schedule[0].energy.slabs[0].rate"
    with pytest.raises(DomainError) as exc:
        services.load_text(
            text=BAD.replace('name = "X"\ncategory', 'name = "X"\nfixd = 1\ncategory'), file_name="b.toml"
        )
    assert exc.value.details["field"] == "schedule[0].fixd" and exc.value.details["line"] == 13
    with pytest.raises(DomainError) as exc:
        services.load_text(text="[source\n", file_name="b.toml")
    assert exc.value.details["line"] == 1
    assert not TariffVersion.objects.exists()


def test_overlapping_versions_rejected_and_reload_idempotent(tariffs):
    text = (DATA / "oerc_rst_2025_26.toml").read_text()
    assert services.load_text(text=text, file_name="again.toml").created is False
    clash = text.replace('code = "oerc-rst-2025-26"', 'code = "oerc-rst-2025-26-amend"').replace(
        "effective_from = 2025-04-01", "effective_from = 2025-04-01\neffective_to = 2025-09-30"
    )  # the same start date: not a successor, a clash
    with pytest.raises(Conflict) as exc:
        services.load_text(text=clash, file_name="amend.toml")
    assert exc.value.code == "tariff_overlap"
    assert exc.value.details["clashes"][0]["clashes_with"] == "oerc-rst-2025-26/oerc.lt.domestic"
    changed = text.replace('rate = "2.90"', 'rate = "2.95"')
    with pytest.raises(Conflict) as exc:
        services.load_text(text=changed, file_name="changed.toml")
    assert exc.value.code == "tariff_order_changed"


def test_every_shipped_file_parses_and_cites_a_source():
    from urja.tariffs.services import tariff_files

    assert tariff_files(DATA)
    for path in tariff_files(DATA):
        parsed = schema.parse_file(path)
        assert parsed.source["document"]


def test_cli_load_and_calculate(db):
    out = StringIO()
    call_command("tariffs", "load", stdout=out)
    assert "oerc-rst-2025-26: loaded" in out.getvalue()
    out = StringIO()
    call_command(
        "tariffs",
        "calculate",
        "--from",
        "2024-05-01",
        "--to",
        "2024-05-31",
        "--units",
        "250",
        "--load",
        "2",
        "--e-bill",
        stdout=out,
    )
    assert "TOTAL" in out.getvalue() and "1165.00" in out.getvalue()


def test_api_calculate_is_public(client, tariffs):
    body = {
        "period_start": "2024-05-01",
        "period_end": "2024-05-31",
        "units": "250",
        "sanctioned_load": "2",
        "e_bill": True,
    }
    response = client.post("/api/v1/tariffs/calculate", body, content_type="application/json")
    assert response.status_code == 200, response.content
    data = response.json()
    assert data["total"] == "1165.00"
    assert [ln["code"] for ln in data["lines"]][:3] == ["EC1", "EC2", "EC3"]
    assert data["lines"][0]["explanation"].startswith("50 kWh × Rs 2.90")
    bad = client.post(
        "/api/v1/tariffs/calculate", {**body, "period_end": "2024-04-01"}, content_type="application/json"
    )
    assert bad.status_code == 400 and bad.json()["code"] == "invalid_period"
    missing = client.post(
        "/api/v1/tariffs/calculate", {**body, "period_start": "2024-03-01"}, content_type="application/json"
    )
    assert missing.status_code == 400 and missing.json()["code"] == "missing_tariff"


def test_calculator_and_browser_pages(client, tariffs):
    page = client.get(
        "/tariffs/calculator/",
        {"period_start": "2024-05-01", "period_end": "2024-05-31", "units": "250", "sanctioned_load": "2"},
    )
    assert page.status_code == 200
    assert "1,175.00" in page.content.decode()
    browser = client.get("/tariffs/")
    assert browser.status_code == 200 and "oerc.lt.domestic" in browser.content.decode()
    detail = client.get(
        f"/tariffs/{TariffVersion.objects.get(schedule_code='derc.domestic', order__code='derc-domestic-2024-25').pk}/"
    )
    assert detail.status_code == 200 and "GNCTD" in detail.content.decode()


def test_next_order_ends_the_open_ended_one_and_a_crossing_period_is_split(tariffs):
    """FY 2025-26 is in force "until further orders"; loading FY 2026-27 ends it on 31 March 2026."""
    open_version = TariffVersion.objects.get(order__code="oerc-rst-2025-26", schedule_code="oerc.lt.domestic")
    assert open_version.effective_to is None
    text = (DATA / "oerc_rst_2025_26.toml").read_text()
    successor = (
        text.replace('code = "oerc-rst-2025-26"', 'code = "oerc-rst-2026-27-test"')
        .replace("effective_from = 2025-04-01", "effective_from = 2026-04-01")
        .replace('{ upto = 50, rate = "2.90" }', '{ upto = 50, rate = "3.10" }')
    )
    services.load_text(text=successor, file_name="oerc_rst_2026_27_test.toml")
    open_version.refresh_from_db()
    assert open_version.effective_to == date(2026, 3, 31)
    assert services.schedule_of(open_version).effective_to == date(2026, 3, 31)
    # 40 units over 16 March – 15 April: half the days at each year's first-slab rate.
    bill = services.calculate(
        period_start=date(2026, 3, 16), period_end=date(2026, 4, 15), units=D(40), sanctioned_load=D(1)
    )
    energy = [line for line in bill.lines if line.group == "energy"]
    assert {line.rate for line in energy} == {D("2.90"), D("3.10")}


def test_the_calculator_words_its_lines_in_the_page_language_with_indian_grouping(client, tariffs):
    """The calculator prints its lines as a bill does: in Hindi and Odia the bare computation (no English
    prose from the engine), in English the engine's explanation with its figures grouped (2,100 kWh above the
    400 kWh slab, not 2100 kWh; Rs 14,900.00)."""
    query = {"period_start": "2024-05-01", "period_end": "2024-05-31", "units": "2500", "sanctioned_load": "5"}
    english = client.get("/tariffs/calculator/", query, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "2,100 kWh × Rs 6.10" in english and "4% of Rs 14,900.00" in english
    assert "2100 kWh" not in english and "Rs 14900" not in english
    for language in ("hi", "or"):
        page = client.get("/tariffs/calculator/", query, HTTP_ACCEPT_LANGUAGE=language).content.decode()
        lines = page.split("bill-lines", 1)[1]
        assert "Rs " not in lines and " at Rs" not in lines and "consumption" not in lines, language
        assert "2,100 kWh × ₹6.10/kWh" in lines and "2100" not in lines, language
