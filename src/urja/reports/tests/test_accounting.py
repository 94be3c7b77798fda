"""Energy accounting on a hand-computed network (issue 14.2): every figure to the unit."""

from datetime import datetime
from decimal import Decimal as D

import pytest

from urja.core.calendars import IST
from urja.reports import services
from urja.reports.models import AccountingRun, EnergyBalance
from urja.reports.tests import factories as f

P = "2026-10"


def at(y, m, d, h=12):
    return datetime(y, m, d, h, tzinfo=IST)


@pytest.fixture
def net(offices):
    s1, s2 = offices["section1"], offices["section2"]
    f1, f2 = f.feeder(s1, "F1"), f.feeder(s2, "F2")
    dt1, dt2, dt3 = f.dt(f1, "DT1"), f.dt(f1, "DT2"), f.dt(f2, "DT3")
    # F1 head meter, MF 10: (10150 - 10000) x 10 = 1500 kWh
    f.boundary_meter(
        node_feeder=f1, installed_at=at(2026, 1, 1), mf="10",
        readings=[(at(2026, 9, 30, 23), "10000"), (at(2026, 10, 31, 23), "10150")],
    )  # fmt: skip
    # DT1: 1500 - 500 = 1000 kWh; a reading after the month is ignored
    f.boundary_meter(
        node_dt=dt1, installed_at=at(2026, 1, 1),
        readings=[(at(2026, 9, 30, 22), "500"), (at(2026, 10, 15), "900"), (at(2026, 10, 31, 22), "1500"),
                  (at(2026, 11, 2), "1600")],
    )  # fmt: skip
    # DT2: installed on 10 Oct at register 0, 300 at the end: 300 kWh
    f.boundary_meter(node_dt=dt2, installed_at=at(2026, 10, 10), readings=[(at(2026, 10, 31, 20), "300")])
    a1 = f.account(s1, transformer=dt1)
    a2 = f.account(s1, transformer=dt1)
    a3 = f.account(s1, transformer=dt1, category="general_purpose", load="3", supply_type="lt_1ph")
    a4 = f.account(s1, transformer=dt2, is_prepaid=True)
    a5 = f.account(s2, transformer=dt3)
    f.bill(a1, period=P, units="400", total="2400")
    f.bill(a2, period=P, units="150", total="900", status="estimated")
    f.bill(a3, period=P, units="0", total="1000", status="unmetered", metered=False)  # assessed 3 x 31 x 8 x 0.5
    f.bill(a4, period=P, units="200", total="1100", prepaid=True, kind="statement")
    f.bill(a5, period=P, units="100", total="600")
    f.bill(a5, period="2026-09", units="999", total="9999")  # another month
    f.payment(a1, amount="2000", at=at(2026, 10, 15))
    f.payment(a2, amount="900", at=at(2026, 10, 20))
    f.payment(a4, amount="1100", at=at(2026, 10, 3))
    f.payment(a5, amount="300", at=at(2026, 10, 31, 23))
    f.payment(a5, amount="500", at=at(2026, 10, 5), status="failed")  # not collected
    f.payment(a5, amount="700", at=at(2026, 11, 1, 0))  # next month (IST)
    return {"offices": offices, "f1": f1, "f2": f2, "dt1": dt1, "dt2": dt2, "dt3": dt3}


def row(level, node_id, category=""):
    return EnergyBalance.objects.get(period=P, level=level, node_id=node_id, category=category)


def test_every_figure_of_a_hand_computed_network(net):
    run = services.compute_period(period=P)
    dt1 = row("dt", net["dt1"].pk)
    assert (dt1.input_kwh, dt1.input_status) == (D("1000.000"), "measured")
    assert (dt1.metered_kwh, dt1.estimated_kwh, dt1.assessed_kwh, dt1.prepaid_kwh) == (D(400), D(150), D(372), D(0))
    assert (dt1.billed_kwh, dt1.billed_amount, dt1.collected_amount, dt1.accounts) == (D(922), D(4300), D(2900), 3)
    assert (dt1.billing_efficiency, dt1.collection_efficiency, dt1.atc_loss) == (
        D("0.922"),
        D("0.674419"),
        D("0.378186"),
    )
    gp = row("dt", net["dt1"].pk, "general_purpose")
    assert (gp.assessed_kwh, gp.billed_amount, gp.collected_amount, gp.input_status) == (D(372), D(1000), D(0), "n/a")
    assert (gp.collection_efficiency, gp.atc_loss) == (D(0), None)
    dom = row("dt", net["dt1"].pk, "domestic")
    assert (dom.billed_kwh, dom.billed_amount, dom.collected_amount) == (D(550), D(3300), D(2900))

    dt2 = row("dt", net["dt2"].pk)
    assert (dt2.input_kwh, dt2.prepaid_kwh, dt2.billing_efficiency, dt2.collection_efficiency, dt2.atc_loss) == (
        D(300), D(200), D("0.666667"), D(1), D("0.333333"),
    )  # fmt: skip

    f1 = row("feeder", net["f1"].pk)
    assert (f1.input_kwh, f1.input_status, f1.billed_kwh, f1.billed_amount, f1.collected_amount) == (
        D(1500), "measured", D(1122), D(5400), D(4000),
    )  # fmt: skip
    assert (f1.billing_efficiency, f1.collection_efficiency, f1.atc_loss) == (D("0.748"), D("0.740741"), D("0.445926"))

    # DT3 has no meter: flagged with a reason, no loss computed (never a division by zero)
    dt3 = row("dt", net["dt3"].pk)
    assert (dt3.input_kwh, dt3.input_status, dt3.billing_efficiency, dt3.atc_loss) == (None, "missing", None, None)
    assert [fl["code"] for fl in dt3.flags] == ["no_input_reading"]
    assert (dt3.billed_kwh, dt3.collected_amount, dt3.collection_efficiency) == (D(100), D(300), D("0.5"))
    f2 = row("feeder", net["f2"].pk)
    assert (f2.input_kwh, f2.input_status, [fl["code"] for fl in f2.flags]) == (None, "missing", ["incomplete_input"])

    div1 = row("division", net["offices"]["division1"].pk)
    assert (div1.input_kwh, div1.billed_kwh, div1.atc_loss) == (D(1500), D(1122), D("0.445926"))
    util = row("utility", net["offices"]["utility"].pk)
    assert (util.billed_kwh, util.billed_amount, util.collected_amount, util.accounts) == (D(1222), D(6000), D(4300), 5)
    assert util.input_kwh is None  # F2 unmetered: the utility's input is incomplete, said so
    assert run.flagged >= 3 and run.rows == EnergyBalance.objects.filter(period=P).count()


def test_the_job_is_idempotent_and_estimates_a_missing_meter_from_its_last_month(net):
    services.compute_period(period=P)
    first = list(EnergyBalance.objects.filter(period=P).order_by("level", "node_id", "category").values_list(
        "level", "node_id", "category", "input_kwh", "billed_kwh", "collected_amount"))  # fmt: skip
    services.compute_period(period=P)
    again = list(EnergyBalance.objects.filter(period=P).order_by("level", "node_id", "category").values_list(
        "level", "node_id", "category", "input_kwh", "billed_kwh", "collected_amount"))  # fmt: skip
    assert first == again and AccountingRun.objects.filter(period=P).count() == 1
    # November: DT1 read once after the month began only on 2 Nov, no closing → its October input is used
    services.compute_period(period="2026-11")
    nov = EnergyBalance.objects.get(period="2026-11", level="dt", node_id=net["dt1"].pk, category="")
    assert (nov.input_kwh, nov.input_status) == (D("100.000"), "measured")
    services.compute_period(period="2026-12")
    dec = EnergyBalance.objects.get(period="2026-12", level="dt", node_id=net["dt1"].pk, category="")
    assert (dec.input_kwh, dec.input_status, [fl["code"] for fl in dec.flags]) == (
        D("100.000"), "estimated", ["estimated_previous"],
    )  # fmt: skip
    assert dec.billed_kwh == 0 and dec.collection_efficiency is None  # nothing billed: no ratio, no error


def test_bad_period_is_refused():
    from urja.core.errors import DomainError

    for bad in ("2026-13", "26-10", "", "2026-1"):
        with pytest.raises(DomainError) as e:
            services.compute_period(period=bad)
        assert e.value.code == "invalid_period"
