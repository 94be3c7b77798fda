"""Issue 15 part 4: an HT bill fit to print shows the maximum demand against the contract demand, the
power factor of the period, the time-of-day split and the electricity duty the tariff levies — every
figure checked against a hand computation.

The tariff is a test order (figures chosen to be computed by hand), so the test does not move when the
placeholder HT figures of data/tariffs are replaced from the gazette:

    HT industrial, contract demand 200 kVA, one month (June 2025), meter MF 1
    readings (kWh, kVAh, peak, off-peak): 31-05 40,000 44,500 8,000 10,000; 30-06 70,000 77,000 14,000 17,000
    units         = 70,000 − 40,000 kWh                         = 30,000 kWh
    energy        = 30,000 kWh × ₹5.00                          = ₹1,50,000.00
    ToD peak      = (14,000 − 8,000) = 6,000 kWh × +₹0.50        = ₹3,000.00
    ToD off-peak  = (17,000 − 10,000) = 7,000 kWh × −₹0.25       = −₹1,750.00
    billing demand = max(MD 150 kVA, 80% × 200 kVA = 160 kVA)   = 160 kVA
    demand charge = 160 kVA × ₹250                              = ₹40,000.00
    duty base     = 1,50,000 + 3,000 − 1,750 + 40,000           = ₹1,91,250.00
    electricity duty = 5% × 1,91,250                            = ₹9,562.50
    bill          = 1,91,250.00 + 9,562.50                      = ₹2,00,812.50
    power factor  = 30,000 kWh ÷ (77,000 − 44,500 = 32,500 kVAh) = 0.923
    MD against CD = 150 ÷ 200                                   = 75.0%
"""

import re
from datetime import date, datetime
from decimal import Decimal as D

import pytest

from urja.billing import documents, services
from urja.billing.models import Bill, BillException
from urja.core.calendars import IST
from urja.customers.models import Account
from urja.demo import testing
from urja.metering import services as metering
from urja.tariffs import services as tariffs

HT_ORDER = """
[source]
document = "Test order for the HT bill test: round figures to compute by hand"

[order]
code = "test-ht-2025"
regulator = "OERC"
reference = "test order"
order_date = 2025-01-01
effective_from = 2025-01-01
power_factor = 0.9
slab_rounding = "unit"
bill_rounding = "paise"

[[schedule]]
code = "test.ht.industrial"
name = "HT Industrial"
category = "industrial"
sub_categories = ["large"]
supply_types = ["ht"]

[schedule.energy]
method = "telescopic"
slabs = [{ rate = "5.00" }]

[[schedule.fixed]]
code = "DC"
name = "Demand charge"
basis = "billing_demand"
billing_demand_percent = 80
unit = "kVA"
rate = "250"

[[schedule.tod]]
code = "TOD_PEAK"
name = "Peak hours surcharge"
start = "18:00"
end = "22:00"
adder = "0.50"
smart_meter_only = false  # an HT meter records its ToD registers

[[schedule.tod]]
code = "TOD_OFFPEAK"
name = "Off-peak hours rebate"
start = "00:00"
end = "06:00"
adder = "-0.25"
smart_meter_only = false

[[schedule.rider]]
code = "ED"
name = "Electricity duty"
percent = "5"
base = ["energy", "tod", "fixed"]
"""


def local(y, m, d, h=12) -> datetime:
    return datetime(y, m, d, h, tzinfo=IST)


def make_ht_bill(offices, *, md: str = "150", kvah: bool = True, serial: str = "HT0042001") -> Bill:
    """The HT bill of June 2025 described above (`md`: the June MD in kVA; `kvah`: the meter records kVAh)."""
    tariffs.load_text(text=HT_ORDER, file_name="test_ht_order.toml")
    account = testing.domestic_account(
        offices["section1"],
        name="Kalinga Steel Ltd",
        supply_type="ht",
        load="200",
        unit="kVA",
        category="industrial",
        sub_category="large",
    )
    Account.objects.filter(pk=account.pk).update(connected_on=date(2025, 5, 1))
    meter = metering.register_meter(serial=serial, make="Secure", meter_type="static", actor=None, channel="system")
    metering.install_meter(
        account=account, meter=meter, actor=None, channel="system", installed_at=local(2025, 5, 1),
        initial_kwh="10000", initial_kvah="12000" if kvah else None, initial_tod={"peak": "2000", "offpeak": "3000"},
    )  # fmt: skip
    for when, kwh, kvah_read, tod, demand in (  # May as June, so the month is not a spike for VEE
        (local(2025, 5, 31), "40000", "44500", {"peak": "8000", "offpeak": "10000"}, "140"),
        (local(2025, 6, 30), "70000", "77000", {"peak": "14000", "offpeak": "17000"}, md),
    ):
        metering.record_reading(
            actor=None, channel="system", source="amr", account=account, read_at=when,
            kwh=kwh, kvah=kvah_read if kvah else None, tod=tod, md_kva=demand,
        )  # fmt: skip
    run = services.create_run(cycle="C01", period="2025-06", bill_date=date(2025, 7, 2))
    services.start_run(run=run)
    assert not BillException.objects.filter(account=account).exists()  # billed: no VEE hold, no missing tariff
    return Bill.objects.get(account=account)


@pytest.fixture
def ht_bill(offices):
    return make_ht_bill(offices)


def _text(html: str) -> str:
    """The page's words with tags dropped and spaces collapsed, for reading figures next to their labels."""
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def test_the_ht_bill_is_billed_as_computed_by_hand(ht_bill):
    assert ht_bill.units == D("30000") and ht_bill.recorded_md == D("150")
    assert ht_bill.sanctioned_load == D("200") and ht_bill.load_unit == "kVA"
    assert ht_bill.energy == D("150000.00")
    assert ht_bill.tod == D("1250.00")  # 3,000.00 − 1,750.00
    assert ht_bill.fixed == D("40000.00")  # billing demand 160 kVA: 80% of 200 kVA above the MD of 150
    assert ht_bill.riders == D("9562.50")  # 5% of 1,91,250.00
    assert ht_bill.current_charges == ht_bill.total == ht_bill.net_payable == D("200812.50")


def test_the_page_shows_md_against_contract_demand_pf_and_the_meter(ht_bill):
    text = _text(documents.render_html(ht_bill, "en"))
    assert "Meter No.: HT0042001 · Multiplying factor (MF): 1" in text
    assert "(read on 31-05-2025)" in text and "(read on 30-06-2025)" in text
    assert "Demand and power factor (HT)" in text
    assert "Maximum demand recorded: 150 kVA" in text
    assert "Contract demand: 200 kVA · 75.0% of contract demand" in text
    assert "Power factor: 0.923" in text
    # the demand charge says how the billing demand was found
    assert re.search(r"Demand charge 160 kVA \(80% of sanctioned load\) × Rs 250/kVA/month .*? 40,000\.00", text)
    assert "Net payable 2,00,812.50" in text
    assert "Rupees Two Lakh Eight Hundred Twelve And Fifty Paise Only" in text
    for language in ("hi", "or"):  # the same figures on the Hindi and Odia bills
        page = _text(documents.render_html(ht_bill, language))
        assert "75.0%" in page and "0.923" in page and "2,00,812.50" in page


def test_the_page_shows_the_time_of_day_split(ht_bill):
    text = _text(documents.render_html(ht_bill, "en"))
    assert "Time-of-day consumption Time of day Units (kWh)" in text
    assert re.search(r"Peak[^0-9]*? 6,?000\b", text) and re.search(r"Off-?peak[^0-9]*? 7,?000\b", text), text


def test_a_tariff_that_levies_no_duty_prints_no_duty_row(ht_bill):
    context = documents.context(ht_bill, "en")
    assert context["levies_duty"] is True and context["ht"] is True
    assert context["md_share"] == D("75.0") and context["meter"]["pf"] == D("0.923")
    lt = documents.context(_lt_bill(ht_bill), "en")  # the LT domestic order's ED is kept at 0%: not levied
    assert lt["levies_duty"] is False and lt["ht"] is False


LT_ORDER = """
[source]
document = "Test order: LT domestic with the duty kept in the file at 0% (not levied)"

[order]
code = "test-lt-2025"
regulator = "OERC"
reference = "test order"
order_date = 2025-01-01
effective_from = 2025-01-01
power_factor = 0.9

[[schedule]]
code = "test.lt.domestic"
name = "LT Domestic"
category = "domestic"

[schedule.energy]
method = "telescopic"
slabs = [{ upto = 50, rate = "3.00" }, { rate = "5.00" }]

[[schedule.rider]]
code = "ED"
name = "Electricity duty"
percent = "0"
base = ["energy"]
"""


def _lt_bill(ht_bill):
    """An LT domestic bill of July 2025 whose tariff keeps the duty at 0%."""
    from urja.billing.tests.conftest import metered_account, steady

    tariffs.load_text(text=LT_ORDER, file_name="test_lt_order.toml")
    account = metered_account(ht_bill.account.section, readings=steady(250, months=7))
    run = services.create_run(cycle="C01", period="2025-07", bill_date=date(2025, 8, 2))
    services.start_run(run=run)
    return Bill.objects.get(account=account, period_start=date(2025, 7, 1))


# --- The page recomputes its lines from the bill (services.bill_lines). The bill run stores the ToD units it
# billed (kWh by the tariff's window code), so the printed ToD lines and the duty on a base with ToD are the
# ones billed (issue 15 part 4: before, the run wrote no tod_units and the page printed duty 9,500.00).


def test_the_printed_lines_add_up_to_the_bill(ht_bill):
    assert ht_bill.tod_units == {"TOD_PEAK": "6000.000", "TOD_OFFPEAK": "7000.000"}
    computation = services.bill_lines(ht_bill)
    # the single-bill path (engine on the stored inputs) and the run path (vectorised) agree, group by group
    totals = computation.totals()
    for group, stored in (("energy", ht_bill.energy), ("tod", ht_bill.tod), ("fixed", ht_bill.fixed),
                          ("rider", ht_bill.riders), ("total", ht_bill.total)):  # fmt: skip
        assert totals[group] == stored, group
    lines = {ln.code: ln for ln in computation.lines}
    assert lines["TOD_PEAK"].base == D("6000") and lines["TOD_PEAK"].amount == D("3000.00")
    assert lines["TOD_OFFPEAK"].base == D("7000") and lines["TOD_OFFPEAK"].amount == D("-1750.00")
    assert lines["ED"].amount == D("9562.50")
    text = _text(documents.render_html(ht_bill, "en"))
    assert "Electricity duty (Current charges) 9,562.50" in text


def test_the_time_of_day_zones_are_named_with_their_hours_and_grouped(ht_bill):
    text = _text(documents.render_html(ht_bill, "en"))
    assert "Peak hours surcharge (18:00–22:00) 6,000" in text
    assert "Off-peak hours rebate (00:00–06:00) 7,000" in text
    # in the order file's order (peak first), not the meter's alphabetical one (offpeak, peak)
    assert [t["zone"] for t in documents.context(ht_bill, "en")["tod"]] == ["peak", "offpeak"]
    odia = _text(documents.render_html(ht_bill, "or"))  # the zones in Odia, figures grouped in the computation
    assert "ପିକ୍ ଘଣ୍ଟା ଅଧିଭାର (18:00–22:00) 6,000" in odia and "ଅଫ୍-ପିକ୍ ଘଣ୍ଟା ରିହାତି (00:00–06:00) 7,000" in odia
    assert "30,000 kWh × ₹5/kWh" in odia and "5% × ₹1,91,250" in odia and "Off-peak" not in odia


def test_a_single_rate_energy_line_names_no_slab(ht_bill):
    assert "slab above 0" not in _text(documents.render_html(ht_bill, "en"))


def test_md_above_contract_demand_is_billed_and_shown_and_an_unread_pf_says_so(offices):
    """MD 230 kVA on a 200 kVA contract: billed on the actual MD (230 × ₹250 = ₹57,500.00), shown as 115.0%
    of contract demand; a meter without a kVAh register gives no power factor, and the bill says it was not
    read (no figure is made up). Duty 5% × (1,50,000 + 1,250 + 57,500 = 2,08,750) = ₹10,437.50."""
    bill = make_ht_bill(offices, md="230", kvah=False, serial="HT0042002")
    assert bill.recorded_md == D("230") and bill.fixed == D("57500.00") and bill.riders == D("10437.50")
    context = documents.context(bill, "en")
    assert context["md_share"] == D("115.0") and context["meter"]["pf"] is None
    text = _text(documents.render_html(bill, "en"))
    assert "Contract demand: 200 kVA · 115.0% of contract demand" in text
    assert "Power factor: not read" in text
    assert re.search(r"Demand charge 230 kVA \(recorded MD\) × Rs 250/kVA/month .*? 57,500\.00", text)


def test_the_time_of_day_table_prints_the_units_billed_not_a_later_register(ht_bill):
    """The ToD table and the ToD lines both come from the units the run billed: a register corrected after
    the run (peak 14,000 → 15,000 on the closing reading) does not make the table say 7,000 beside a line
    charged on 6,000; a zone the tariff has no window for still comes from the registers."""
    from urja.metering.models import Reading

    closing = Reading.objects.get(account_id=ht_bill.account_id, kwh=ht_bill.closing_kwh)
    opening = Reading.objects.filter(account_id=ht_bill.account_id, kwh=ht_bill.opening_kwh).get()
    Reading.objects.filter(pk=opening.pk).update(tod={**opening.tod, "normal": "20000"})
    Reading.objects.filter(pk=closing.pk).update(tod={"peak": "15000", "offpeak": "17000", "normal": "31000"})
    table = {t["zone"]: t["units"] for t in documents.context(ht_bill, "en")["tod"]}
    assert table == {"peak": D("6000.000"), "offpeak": D("7000.000"), "normal": D("11000.000")}
