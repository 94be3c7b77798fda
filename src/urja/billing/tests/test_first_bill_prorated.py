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

    energized 21-06-2025 but recorded after June's run (pending when it ran): no bill for June; the meter read
    100 kWh on 30-06-2025 and 400 kWh on 31-07-2025. July's run bills it from the connection day:
    first bill 21-06-2025 – 31-07-2025: month factor 10/30 + 31/31 = 4/3
      slab widths  50 × 4/3 = 66.67 → 67;  150 × 4/3 = 200 → slabs 0–67, 67–267, above 267
      units        400 − 0 (from the installation reading, not the 30 June one)
      energy       67 × 3.00 + 200 × 4.00 + 133 × 5.00 = 201.00 + 800.00 + 665.00 = ₹1,666.00
      fixed        2 kW × ₹20 × 4/3 = 53.333                                    = ₹53.33
      bill                                                                     = ₹1,719.33
      (billed as before — July alone from the 30 June reading: 50 × 3 + 150 × 4 + 100 × 5 + 40 = ₹1,290.00,
       the 100 kWh of 21–30 June never billed)
    energized 01-06-2025, the previous period's first day, never billed, 250 kWh by 31-07: factor 1 + 1 = 2,
      slabs 0–100, 100–400: 100 × 3.00 + 150 × 4.00 + 2 × 20 × 2 = 300 + 600 + 80 = ₹980.00
    energized 31-05-2025, before the previous period (as bulk and demo accounts with old connection dates):
      July alone, 300 → 500 kWh: 50 × 3.00 + 150 × 4.00 + 40 = ₹790.00
"""

from datetime import date, timedelta
from decimal import Decimal as D
from types import SimpleNamespace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from urja.billing import documents, runs, services
from urja.billing.models import Bill, BillException, BillRun
from urja.billing.tests.test_ht_bill import local
from urja.core.errors import DomainError
from urja.customers.models import Account, AccountStatus
from urja.demo import testing
from urja.demo.simulation import invariants
from urja.metering import services as metering
from urja.tariffs import engine, vector
from urja.tariffs import services as tariffs
from urja.tariffs.tests.test_vector import draw_versions, schedules

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
    old = connection(  # connected before June and May (billed before, or bulk data): the whole month, same units
        offices["section1"], connected=date(2025, 4, 30), name="Old Customer",
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


def test_a_first_bill_after_the_previous_periods_run_covers_the_days_from_energization(offices):
    tariffs.load_text(text=ORDER, file_name="test_prorata_order.toml")
    late = connection(
        offices["section1"], connected=date(2025, 6, 21),
        readings=[(local(2025, 6, 30), "100"), (local(2025, 7, 31), "400")],
    )  # fmt: skip
    first_day = connection(
        offices["section1"], connected=date(2025, 6, 1), name="Lata Das", readings=[(local(2025, 7, 31), "250")]
    )
    before = connection(
        offices["section1"], connected=date(2025, 5, 31), name="Old Bulk",
        readings=[(local(2025, 6, 30), "300"), (local(2025, 7, 31), "500")],
    )  # fmt: skip
    new = [late, first_day, before]
    # June's run went before their energization was recorded: pending then, so not billed for June
    Account.objects.filter(pk__in=[a.pk for a in new]).update(status=AccountStatus.PENDING)
    bill_month("2025-06", date(2025, 7, 2))
    june_run = BillRun.objects.get(period="2025-06")
    assert not Bill.objects.filter(account__in=new).exists()
    Account.objects.filter(pk__in=[a.pk for a in new]).update(status=AccountStatus.ACTIVE)
    mark = Bill.objects.order_by("-pk").values_list("pk", flat=True).first() or 0

    bill_month("2025-07", date(2025, 8, 2))
    assert not BillException.objects.exists()
    first = Bill.objects.get(account=late)
    assert (first.period_start, first.period_end) == (date(2025, 6, 21), date(2025, 7, 31))
    assert first.units == D("400") and D(first.opening_kwh) == 0  # from the installation reading
    assert first.energy == D("1666.00") and first.fixed == D("53.33") and first.total == D("1719.33")
    lines = {ln.code: ln for ln in services.bill_lines(first).lines}  # the scalar engine agrees line by line
    assert [(c, lines[c].base, lines[c].amount) for c in ("EC1", "EC2", "EC3")] == [
        ("EC1", D("67"), D("201.00")), ("EC2", D("200"), D("800.00")), ("EC3", D("133"), D("665.00")),
    ]  # fmt: skip
    assert lines["FC"].amount == D("53.33")
    assert "month factor 1.3333 for 21-06-2025 to 31-07-2025" in lines["FC"].explanation
    assert sum(ln.amount for ln in lines.values()) == first.total
    # the printed period is the real one
    assert "21-06-2025 – 31-07-2025" in documents.render_html(first, "en")

    whole_two = Bill.objects.get(account=first_day)
    assert (whole_two.period_start, whole_two.units) == (date(2025, 6, 1), D("250"))
    assert whole_two.energy == D("900.00") and whole_two.fixed == D("80.00") and whole_two.total == D("980.00")
    july = Bill.objects.get(account=before)
    assert (july.period_start, july.units, july.total) == (date(2025, 7, 1), D("200"), D("790.00"))
    # the simulation's invariant: every bill line is what the scalar engine computes for the stored period
    assert invariants.bill_lines_match_engine(invariants.Scope(month="2025-07", bill_after=mark)) == []

    # a resumed July run finds the three billed; June's run scanned again (a rebill) finds the two first bills
    # that cover June's days (the one from 31 May has none of them: June is still unbilled for it)
    rows, _ = runs.fetch_accounts(first.run, None, 0, 1000)
    assert not {a.pk for a in new} & {r[runs.A_ID] for r in rows}
    rows, _ = runs.fetch_accounts(june_run, None, 0, 1000)
    assert {a.pk for a in new} & {r[runs.A_ID] for r in rows} == {before.pk}

    bill_month("2025-08", date(2025, 9, 2))  # then a whole month, as for any account
    august = Bill.objects.get(account=late, period_start=date(2025, 8, 1))
    assert august.period_end == date(2025, 8, 31) and august.fixed == D("40.00")


def test_a_connection_billed_in_the_previous_period_is_billed_for_the_period(new_connection):
    """Energized 21 June and billed by June's run: July's bill is July, whatever the connection day."""
    bill_month("2025-06", date(2025, 7, 2))
    run = services.create_run(cycle="C01", period="2025-07", bill_date=date(2025, 8, 2))
    rows, _ = runs.fetch_accounts(run, None, 0, 1000)
    row = next(r for r in rows if r[runs.A_ID] == new_connection.pk)
    assert row[runs.A_CONNECTED] == date(2025, 6, 21) and runs.previous_period_run(run)
    assert runs.billing_start(run, row[runs.A_CONNECTED], billed_before=True, previous_run=True) == date(2025, 7, 1)
    assert runs.billing_start(run, row[runs.A_CONNECTED], billed_before=False, previous_run=True) == date(2025, 6, 21)


def test_without_a_run_of_the_previous_period_the_first_run_bills_its_own_period(offices):
    """A cycle's first run (go-live, bulk or demo data): an account connected in the previous period and never
    billed here is billed for the period alone — its earlier days are the earlier system's, or a run of the
    previous period still to come bills them from the connection day."""
    tariffs.load_text(text=ORDER, file_name="test_prorata_order.toml")
    account = connection(
        offices["section1"], connected=date(2025, 6, 21),
        readings=[(local(2025, 6, 30), "100"), (local(2025, 7, 31), "300")],
    )  # fmt: skip
    run = services.create_run(cycle="C01", period="2025-07", bill_date=date(2025, 8, 2))
    assert not runs.previous_period_run(run)
    services.start_run(run=run)
    july = Bill.objects.get(account=account)
    assert (july.period_start, july.units, july.total) == (date(2025, 7, 1), D("200"), D("790.00"))
    june = services.create_run(cycle="C01", period="2025-06", bill_date=date(2025, 8, 3))
    assert not runs.previous_period_run(june)  # no run of May
    services.start_run(run=june)  # June run afterwards: from the connection day, its own units
    first = Bill.objects.get(account=account, period_end=date(2025, 6, 30))
    assert (first.period_start, first.units, first.total) == (date(2025, 6, 21), D("100"), D("429.33"))


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


# --- the run's tariff segments for a bill that starts on its first billed day (a connection day inside the
# period, or one in the cycle's previous period for an account never billed) are the reference split of the
# bill's own period, and the vector engine bills them as the scalar engine does (pure, no database)


def _split(versions, end):
    def split(day):
        try:
            return engine.segments_for(versions, day, end)
        except engine.TariffGap as exc:
            return DomainError(str(exc), code="missing_tariff")

    return split


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data())
def test_segments_from_the_first_billed_day_are_the_reference_split(data):
    if data.draw(st.booleans()):  # a cycle's period: a month or two from the 1st
        start = date(2024, 1, 1) + timedelta(days=data.draw(st.integers(0, 400)))
        start = start.replace(day=1)
        months = data.draw(st.sampled_from([1, 2]))
        after = (start + timedelta(days=31 * months)).replace(day=1)
        end = after - timedelta(days=1)
        prev = runs.previous_start(start, end)
        assert prev.day == 1 and (start - prev).days in ((28, 29, 30, 31) if months == 1 else range(59, 63))
    else:  # any stretch of days, as the engine takes them
        start = date(2024, 1, 1) + timedelta(days=data.draw(st.integers(0, 400)))
        end = start + timedelta(days=data.draw(st.integers(0, 62)))
        prev = runs.previous_start(start, end)
        assert prev < start
    if data.draw(st.booleans()):  # versions over both periods, perhaps changing inside them
        versions = draw_versions(data, prev, end)
    else:  # a tariff that began inside the previous period: days before it have none
        versions = [data.draw(schedules(start=prev + timedelta(days=data.draw(st.integers(1, (start - prev).days)))))]
    connected = prev + timedelta(days=data.draw(st.integers(-40, (end - prev).days)))
    billed, previous_run = data.draw(st.booleans()), data.draw(st.booleans())
    run = SimpleNamespace(period_start=start, period_end=end)
    first = runs.billing_start(run, connected, billed_before=billed, previous_run=previous_run)
    from_connection = connected > start or (previous_run and not billed and prev <= connected < start)
    assert first == (connected if from_connection else start)

    segs = runs.segments_from(_split(versions, end), start, end, first)
    reference = _split(versions, end)(first)
    if isinstance(reference, DomainError):  # a connection day before the tariff began: the account's exception
        assert isinstance(segs, DomainError) and segs.code == "missing_tariff"
        return
    assert segs == reference

    units = data.draw(st.decimals(min_value=0, max_value=3000, places=3))
    load = data.draw(st.decimals(min_value=D("0.1"), max_value=40, places=3))
    bill = engine.calculate(reference, engine.BillInput(period_start=first, period_end=end, units=units,
                                                        sanctioned_load=load))  # fmt: skip
    result = vector.calculate(segs, vector.Batch(units=[int(units * 1000)], load=[int(load * 1000)],
                                                 load_kva=[False]))  # fmt: skip
    assert int(result.total[0]) == int(bill.total * 100)
