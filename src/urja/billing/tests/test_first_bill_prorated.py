"""Issue 10: the first bill of a new connection covers the days from energization, and its fixed charges
and slab widths are pro-rated to them (the engine's month factor); the final bill likewise to the closing
date. Figures computed by hand on a test order (so they do not move when data/tariffs changes):

    LT domestic, 2 kW; slabs 0–50 ₹3.00, 51–200 ₹4.00, above ₹5.00 a month; fixed ₹20/kW/month; unit rounding
    energized 21-06-2025, meter from 0 kWh; read 100 kWh on 30-06-2025, 300 kWh on 31-07-2025

    first bill 21-06-2025 – 30-06-2025: 10 of June's 30 days, month factor 1/3
      slab widths  50 × 1/3 = 16.67 → 17;  150 × 1/3 = 50 → slabs 0–17, 17–67, above 67
      energy       17 × 3.00 + 50 × 4.00 + 33 × 5.00 = 51.00 + 200.00 + 165.00 = ₹416.00
      fixed        2 kW × ₹20 × 1/3                                            = ₹13.33
      bill                                                                     = ₹429.33
      (unprorated it would be 50 × 3 + 50 × 4 + 40 = ₹390.00 — fewer units in the dearer slabs, a whole month's fixed)
    second bill July, whole month: 50 × 3.00 + 150 × 4.00 + 2 × 20 = 150 + 600 + 40 = ₹790.00

    final bill, disconnected 10-07-2025 on 40 kWh: 10 of July's 31 days, factor 10/31
      slab widths  50 × 10/31 = 16.13 → 16;  150 × 10/31 = 48.39 → 48 → slabs 0–16, 16–64
      energy       16 × 3.00 + 24 × 4.00 = 48.00 + 96.00                      = ₹144.00
      fixed        2 × 20 × 10/31 = 12.903                                    = ₹12.90
      bill                                                                     = ₹156.90
"""

from datetime import date, timedelta
from decimal import Decimal as D
from types import SimpleNamespace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from urja.billing import runs, services
from urja.billing.models import Bill, BillException
from urja.billing.tests.test_ht_bill import local
from urja.customers.models import Account, AccountStatus
from urja.demo import testing
from urja.metering import services as metering
from urja.tariffs import engine, vector
from urja.tariffs import services as tariffs
from urja.tariffs.tests.test_vector import draw_versions

ORDER = """
[source]
document = "Test order for the pro-rated first and final bills: round figures to compute by hand"

[order]
code = "test-prorata-2025"
regulator = "OERC"
reference = "test order"
order_date = 2025-01-01
effective_from = 2025-01-01
power_factor = 0.9
slab_rounding = "unit"
bill_rounding = "paise"

[[schedule]]
code = "test.lt.domestic.prorata"
name = "LT Domestic"
category = "domestic"

[schedule.energy]
method = "telescopic"
slabs = [{ upto = 50, rate = "3.00" }, { upto = 200, rate = "4.00" }, { rate = "5.00" }]

[[schedule.fixed]]
code = "FC"
name = "Monthly fixed charge"
basis = "sanctioned_load"
unit = "kW"
rate = "20"
"""


_serial = iter(range(1, 10_000))


def connection(section, *, connected: date, readings, name="Manoj Sahu"):
    """A 2 kW domestic account energized on `connected` (meter from 0 kWh that day) with readings."""
    account = testing.domestic_account(section, name=name, mobile=None)
    Account.objects.filter(pk=account.pk).update(connected_on=connected)
    meter = metering.register_meter(
        serial=f"PR{next(_serial):06d}", make="Genus", meter_type="static", actor=None, channel="system"
    )
    metering.install_meter(
        account=account, meter=meter, actor=None, channel="system",
        installed_at=local(connected.year, connected.month, connected.day, 10), initial_kwh="0",
    )  # fmt: skip
    for when, kwh in readings:
        metering.record_reading(actor=None, channel="system", source="amr", account=account, read_at=when, kwh=kwh)
    account.refresh_from_db()
    return account


def bill_month(period: str, bill_date: date) -> None:
    run = services.create_run(cycle="C01", period=period, bill_date=bill_date)
    services.start_run(run=run)


@pytest.fixture
def new_connection(offices):
    tariffs.load_text(text=ORDER, file_name="test_prorata_order.toml")
    return connection(
        offices["section1"],
        connected=date(2025, 6, 21),
        readings=[(local(2025, 6, 30), "100"), (local(2025, 7, 31), "300")],
    )


def test_the_first_bill_covers_the_days_from_energization_pro_rated(new_connection, offices):
    old = connection(  # connected before June: billed for the whole month on the same units
        offices["section1"], connected=date(2025, 5, 1), name="Old Customer",
        readings=[(local(2025, 5, 31), "0"), (local(2025, 6, 30), "100")],
    )  # fmt: skip
    bill_month("2025-06", date(2025, 7, 2))
    assert not BillException.objects.exists()
    first = Bill.objects.get(account=new_connection)
    assert (first.period_start, first.period_end) == (date(2025, 6, 21), date(2025, 6, 30))
    assert first.units == D("100")
    assert first.energy == D("416.00") and first.fixed == D("13.33") and first.total == D("429.33")
    lines = {ln.code: ln for ln in services.bill_lines(first).lines}  # the single-bill path agrees
    assert [(c, lines[c].base, lines[c].amount) for c in ("EC1", "EC2", "EC3")] == [
        ("EC1", D("17"), D("51.00")), ("EC2", D("50"), D("200.00")), ("EC3", D("33"), D("165.00")),
    ]  # fmt: skip
    assert lines["FC"].amount == D("13.33")
    assert "month factor 0.3333 for 21-06-2025 to 30-06-2025" in lines["FC"].explanation
    assert sum(ln.amount for ln in lines.values()) == first.total

    whole = Bill.objects.get(account=old)
    assert whole.period_start == date(2025, 6, 1) and whole.total == D("390.00")

    # a resumed or repeated run finds the account billed (its bill starts inside the period, not on the 1st)
    run = first.run
    rows, _ = runs.fetch_accounts(run, None, 0, 1000)
    assert new_connection.pk not in {r[runs.A_ID] for r in rows}

    bill_month("2025-07", date(2025, 8, 2))  # the second bill is a whole month
    july = Bill.objects.get(account=new_connection, period_start=date(2025, 7, 1))
    assert july.units == D("200") and july.energy == D("750.00") and july.fixed == D("40.00")
    assert july.total == D("790.00")


def test_the_final_bill_is_pro_rated_to_the_closing_date(new_connection):
    bill_month("2025-06", date(2025, 7, 2))
    Account.objects.filter(pk=new_connection.pk).update(status=AccountStatus.PERMANENTLY_DISCONNECTED)
    new_connection.refresh_from_db()
    final = services.final_bill(account=new_connection, closing_kwh_units="40", disconnected_on=date(2025, 7, 10))
    assert (final.period_start, final.period_end) == (date(2025, 7, 1), date(2025, 7, 10))
    assert final.energy == D("144.00") and final.fixed == D("12.90") and final.total == D("156.90")
    lines = {ln.code: ln for ln in services.bill_lines(final).lines}
    assert [(c, lines[c].base) for c in ("EC1", "EC2")] == [("EC1", D("16")), ("EC2", D("24"))]
    assert final.net_payable == final.arrears + D("156.90")


def test_a_final_bill_before_any_bill_runs_from_the_connection_day(offices):
    """Energized 21-06-2025 and closed 25-06-2025 before its first bill: 5 of June's 30 days, factor 1/6.
    Slabs 50/6 = 8.33 → 8, 150/6 = 25 → 0–8, 8–33; 20 kWh = 8 × 3.00 + 12 × 4.00 = ₹72.00; fixed 40/6 = ₹6.67."""
    tariffs.load_text(text=ORDER, file_name="test_prorata_order.toml")
    account = connection(offices["section1"], connected=date(2025, 6, 21), readings=[])
    Account.objects.filter(pk=account.pk).update(status=AccountStatus.PERMANENTLY_DISCONNECTED)
    account.refresh_from_db()
    final = services.final_bill(account=account, closing_kwh_units="20", disconnected_on=date(2025, 6, 25))
    assert (final.period_start, final.period_end) == (date(2025, 6, 21), date(2025, 6, 25))
    assert final.energy == D("72.00") and final.fixed == D("6.67") and final.total == D("78.67")


# --- the run cuts its period's tariff segments to the connection day: the same split (and so the same bill)
# as the reference engine's for the shorter period (pure, no database)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data())
def test_segments_cut_to_the_connection_day_are_the_reference_split(data):
    start = date(2024, 1, 1) + timedelta(days=data.draw(st.integers(0, 400)))
    end = start + timedelta(days=data.draw(st.integers(0, 62)))
    versions = draw_versions(data, start, end)
    connected = start + timedelta(days=data.draw(st.integers(-40, (end - start).days)))
    run = SimpleNamespace(period_start=start, period_end=end)
    first = runs.billing_start(run, connected)
    assert first == max(start, connected)
    cut_segments = runs.from_day(engine.segments_for(versions, start, end), first)
    assert cut_segments == engine.segments_for(versions, first, end)

    units = data.draw(st.decimals(min_value=0, max_value=3000, places=3))
    load = data.draw(st.decimals(min_value=D("0.1"), max_value=40, places=3))
    bill = engine.calculate(
        engine.segments_for(versions, first, end),
        engine.BillInput(period_start=first, period_end=end, units=units, sanctioned_load=load),
    )
    result = vector.calculate(cut_segments, vector.Batch(units=[int(units * 1000)], load=[int(load * 1000)],
                                                         load_kva=[False]))  # fmt: skip
    assert int(result.total[0]) == int(bill.total * 100)
