"""The vectorised engine agrees with the scalar reference to the paisa (hypothesis)."""

from datetime import date, timedelta
from decimal import Decimal

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from urja.tariffs import engine, schema, vector

D = Decimal


def money_st(lo="0", hi="500", places=2):
    return st.decimals(min_value=D(lo), max_value=D(hi), places=places, allow_nan=False, allow_infinity=False)


@st.composite
def schedules(draw, code="T", start=date(2024, 1, 1), end=None):
    n_slabs = draw(st.integers(1, 4))
    bounds = sorted(draw(st.sets(st.integers(1, 600), min_size=n_slabs - 1, max_size=n_slabs - 1)))
    slabs = [schema.Slab(D(b), draw(money_st("0", "12"))) for b in bounds] + [
        schema.Slab(None, draw(money_st("0", "12")))
    ]
    energy = schema.Energy(draw(st.sampled_from(["telescopic", "volumetric"])), tuple(slabs), draw(st.booleans()))
    fixed = []
    for i in range(draw(st.integers(0, 2))):
        nb = draw(st.integers(1, 3))
        bb = sorted(draw(st.sets(st.integers(1, 30), min_size=nb - 1, max_size=nb - 1)))
        brackets = (
            *tuple(schema.Bracket(D(b), draw(money_st("0", "300"))) for b in bb),
            schema.Bracket(None, draw(money_st("0", "300"))),
        )
        fixed.append(
            schema.FixedCharge(
                code=f"FC{i}",
                name="Fixed",
                basis=draw(st.sampled_from(["sanctioned_load", "recorded_md", "billing_demand", "connection"])),
                unit=draw(st.sampled_from(["kW", "kVA"])),
                brackets=brackets,
                bracket_mode=draw(st.sampled_from(["slab_reached", "telescopic"])),
                minimum_load=D(draw(st.integers(0, 2))),
                load_rounding=draw(st.sampled_from(["none", "ceil"])),
                billing_demand_percent=D(draw(st.sampled_from([0, 75, 100]))),
            )
        )
    monthly = (
        [
            schema.MonthlyCharge(
                code="MR",
                name="Meter rent",
                amount=draw(money_st("0", "100")),
                waive_upto_load_kw=draw(st.sampled_from([None, D(2)])),
                waive_if_consumer_meter=draw(st.booleans()),
                meter_types=draw(st.sampled_from([(), ("smart",)])),
            )
        ]
        if draw(st.booleans())
        else []
    )
    tod = []
    if draw(st.booleans()):
        tod.append(
            schema.TodWindow(
                "PEAK",
                "Peak",
                schema.time(18),
                schema.time(0),
                adder=draw(money_st("-1", "1")),
                min_load_kw=D(draw(st.integers(0, 5))),
            )
        )
    if draw(st.booleans()):
        tod.append(
            schema.TodWindow(
                "SOLAR",
                "Solar",
                schema.time(8),
                schema.time(16),
                multiplier=draw(money_st("0.5", "1.5")),
                smart_meter_only=draw(st.booleans()),
            )
        )
    riders = []
    names = ["energy", "fixed", "tod", "monthly"]
    for i in range(draw(st.integers(0, 3))):
        base = tuple(draw(st.lists(st.sampled_from(names), min_size=1, max_size=3, unique=True)))
        riders.append(schema.Rider(f"R{i}", "Rider", draw(money_st("0", "20", 2)), base))
        names.append(f"R{i}")
    subsidies = []
    if draw(st.booleans()):
        subsidies.append(
            schema.Subsidy(
                "S1", "Subsidy", draw(money_st("0", "100")), ("current",), units_upto=D(draw(st.integers(1, 300)))
            )
        )
    if draw(st.booleans()):
        subsidies.append(
            schema.Subsidy(
                "S2",
                "Subsidy 2",
                D(50),
                ("energy", "fixed"),
                units_above=D(100),
                units_upto=D(400),
                cap_per_month=draw(money_st("1", "900")),
            )
        )
    rebates = [
        schema.Rebate("EB", "E-bill", "fixed", D(10), when=(("e_bill", True),)),
        schema.Rebate("PP", "Prepaid", "percent", D(4), base=("net",), when=(("prepaid", True),)),
        schema.Rebate("RP", "Rural prompt", "per_unit", D("0.10"), when=(("area", "rural"),), on_payment="by_due_date"),
        schema.Rebate("DG", "Digital", "percent", D(4), base=("net",), on_payment="digital"),
    ]
    minimum = (
        schema.Minimum(draw(money_st("0", "200")), draw(money_st("0", "30")), ("energy", "fixed"))
        if draw(st.booleans())
        else None
    )
    dps = schema.Dps(
        draw(money_st("0", "3")),
        draw(st.sampled_from(["month", "year"])),
        draw(st.sampled_from(["started_month", "day"])),
        draw(st.booleans()),
    )
    return schema.Schedule(
        code=code,
        name="Test",
        order_code="test",
        category="domestic",
        sub_categories=("general",),
        areas=("urban", "rural"),
        supply_types=(),
        effective_from=start,
        effective_to=end,
        energy=energy if draw(st.booleans()) or not fixed else None,
        fixed=tuple(fixed),
        monthly=tuple(monthly),
        tod=tuple(tod),
        riders=tuple(riders),
        subsidies=tuple(subsidies),
        rebates=tuple(rebates),
        minimum=minimum,
        dps=dps,
        slab_rounding=draw(st.sampled_from(["none", "unit", "floor", "ceil"])),
        bill_rounding=draw(st.sampled_from(["paise", "rupee"])),
        power_factor=draw(st.sampled_from([D("0.9"), D("0.85"), D("1")])),
    )


accounts = st.fixed_dictionaries(
    {
        "units": st.decimals(min_value=0, max_value=3000, places=3),
        "load": st.decimals(min_value=D("0.1"), max_value=40, places=3),
        "kva": st.booleans(),
        "md": st.one_of(st.none(), st.decimals(min_value=0, max_value=50, places=3)),
        "peak": st.one_of(st.none(), st.decimals(min_value=0, max_value=500, places=3)),
        "solar": st.one_of(st.none(), st.decimals(min_value=0, max_value=500, places=3)),
        "rural": st.booleans(),
        "metered": st.booleans(),
        "meter_type": st.sampled_from(["static", "smart", "prepaid"]),
        "consumer_meter": st.booleans(),
        "e_bill": st.booleans(),
        "prepaid": st.booleans(),
        "overdue": money_st("0", "50000"),
        "overdue_days": st.integers(0, 400),
    }
)


def draw_versions(data, start: date, end: date) -> list:
    """One tariff version over [start, end], or two when a drawn change day falls inside it."""
    change = data.draw(st.one_of(st.none(), st.integers(1, 60)))
    if change is not None and start + timedelta(days=change) <= end:
        cut = start + timedelta(days=change)
        return [
            data.draw(schedules(start=date(2020, 1, 1), end=cut - timedelta(days=1))),
            data.draw(schedules(start=cut)),
        ]
    return [data.draw(schedules(start=date(2020, 1, 1)))]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data(), rows=st.lists(accounts, min_size=1, max_size=12))
def test_vector_agrees_with_scalar(data, rows):
    start = date(2024, 1, 1) + timedelta(days=data.draw(st.integers(0, 400)))
    end = start + timedelta(days=data.draw(st.integers(0, 70)))
    versions = draw_versions(data, start, end)
    segments = engine.segments_for(versions, start, end)

    batch = vector.Batch(
        units=[int(r["units"] * 1000) for r in rows],
        load=[int(r["load"] * 1000) for r in rows],
        load_kva=[r["kva"] for r in rows],
        md=[-1 if r["md"] is None else int(r["md"] * 1000) for r in rows],
        tod={
            "PEAK": [-1 if r["peak"] is None else int(r["peak"] * 1000) for r in rows],
            "SOLAR": [-1 if r["solar"] is None else int(r["solar"] * 1000) for r in rows],
        },
        rural=[r["rural"] for r in rows],
        metered=[r["metered"] for r in rows],
        meter_type=[vector.METER_TYPES[r["meter_type"]] for r in rows],
        consumer_meter=[r["consumer_meter"] for r in rows],
        e_bill=[r["e_bill"] for r in rows],
        prepaid=[r["prepaid"] for r in rows],
        overdue=[int(r["overdue"] * 100) for r in rows],
        overdue_days=[r["overdue_days"] for r in rows],
    )
    result = vector.calculate(segments, batch)
    for i, r in enumerate(rows):
        tod = {k: r[k.lower()] for k in ("PEAK", "SOLAR") if r[k.lower()] is not None}
        bill = engine.calculate(
            segments,
            engine.BillInput(
                period_start=start,
                period_end=end,
                units=r["units"],
                sanctioned_load=r["load"],
                load_unit="kVA" if r["kva"] else "kW",
                recorded_md=r["md"],
                tod_units=tod,
                area="rural" if r["rural"] else "urban",
                metered=r["metered"],
                meter_type=r["meter_type"],
                meter_owner="consumer" if r["consumer_meter"] else "utility",
                e_bill=r["e_bill"],
                prepaid=r["prepaid"],
                overdue_principal=r["overdue"],
                overdue_days=r["overdue_days"],
            ),
        )
        scalar_codes = {c: int(a * 100) for c, a in bill.by_code().items() if a}
        vector_codes = {c: int(a[i]) for c, a in result.codes.items() if a[i]}
        assert vector_codes == scalar_codes, (i, r)
        assert int(result.total[i]) == int(bill.total * 100)
        assert int(result.conditional("by_due_date")[i]) == int(bill.conditional("by_due_date") * 100)
        for group in engine.TOTAL_GROUPS:
            assert int(result.groups[group][i]) == int(bill.group_total(group) * 100), group


def test_vector_handles_two_million_rows_shape():
    """Amounts stay int64 and exact for large loads and consumption (no overflow)."""
    s = schema.parse_file("data/tariffs/derc_domestic_2024_25.toml").schedules[0]
    segs = engine.segments_for([s], date(2024, 6, 1), date(2024, 7, 31))
    units = np.array([0, 199_000, 400_000, 9_999_999_999], dtype=np.int64)
    result = vector.calculate(segs, vector.Batch(units=units, load=np.full(4, 90_000), load_kva=np.zeros(4, bool)))
    for i, u in enumerate(units):
        bill = engine.calculate(
            segs, engine.BillInput(date(2024, 6, 1), date(2024, 7, 31), units=D(int(u)) / 1000, sanctioned_load=D(90))
        )
        assert int(result.total[i]) == int(bill.total * 100)
