"""Property tests (issue 14.2): the accounting is additive up the network, and the set-based atoms
equal a plain Python sum over the same bills and payments."""

from collections import defaultdict
from datetime import datetime
from decimal import Decimal as D
from itertools import count

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from urja.core.calendars import IST
from urja.reports import accounting, services
from urja.reports.accounting import Atom, Input
from urja.reports.tests import factories as f

# offices: utility 1 → divisions 2, 3 → sections 4, 5 (under 2) and 6 (under 3)
OFFICE_PARENT = {1: None, 2: 1, 3: 1, 4: 2, 5: 2, 6: 3}
OFFICE_LEVEL = {1: "utility", 2: "division", 3: "division", 4: "section", 5: "section", 6: "section"}
FACTS = ("metered_kwh", "estimated_kwh", "assessed_kwh", "prepaid_kwh", "billed_amount", "collected_amount")

money = st.decimals(min_value=0, max_value=100000, places=2)
kwh = st.decimals(min_value=0, max_value=50000, places=3)


@st.composite
def networks(draw):
    n_feeders = draw(st.integers(1, 6))
    feeder_office = {100 + i: draw(st.sampled_from([4, 5, 6])) for i in range(n_feeders)}
    dt_feeder = {}
    for i in range(draw(st.integers(0, 12))):
        dt_feeder[1000 + i] = draw(st.sampled_from(sorted(feeder_office)))
    net = accounting.Network(dt_feeder, feeder_office, OFFICE_PARENT, OFFICE_LEVEL)
    atoms = []
    for _ in range(draw(st.integers(0, 25))):
        feeder = draw(st.sampled_from(sorted(feeder_office)))
        dts = [d for d, fd in dt_feeder.items() if fd == feeder]
        dt = draw(st.sampled_from([None, *dts]))
        atoms.append(
            Atom(dt, feeder, feeder_office[feeder], draw(st.sampled_from(["domestic", "irrigation"])),
                 draw(kwh), draw(kwh), draw(kwh), draw(kwh), draw(money), draw(money), draw(st.integers(0, 50)))
        )  # fmt: skip
    dt_inputs = {d: Input(draw(kwh), "measured") for d in dt_feeder if draw(st.booleans())}
    feeder_inputs = {fd: Input(draw(kwh), "measured") for fd in feeder_office if draw(st.booleans())}
    return net, atoms, dt_inputs, feeder_inputs


def _facts(sums):
    return (*(getattr(sums, x) for x in FACTS), sums.accounts)


def _plus(*many):
    return tuple(sum(col) for col in zip(*many, strict=True))


@settings(max_examples=300, deadline=None)
@given(networks())
def test_dts_sum_to_their_feeder_and_feeders_to_their_division(case):
    net, atoms, dt_inputs, feeder_inputs = case
    nodes = accounting.rollup(atoms, net, dt_inputs, feeder_inputs)
    zero = (D(0),) * len(FACTS) + (0,)
    for feeder in net.feeder_office:
        dts = [nodes[("dt", d)] for d, fd in net.dt_feeder.items() if fd == feeder]
        direct = [a for a in atoms if a.feeder_id == feeder and a.transformer_id is None]
        expected = _plus(
            zero, *(_facts(n.total) for n in dts), *((*(getattr(a, x) for x in FACTS), a.accounts) for a in direct)
        )
        assert _facts(nodes[("feeder", feeder)].total) == expected
        # without a feeder meter, the feeder's input is exactly its DTs' (or missing if one is)
        if feeder not in feeder_inputs:
            ins = [n.input.kwh for n in dts]
            got = nodes[("feeder", feeder)].input.kwh
            assert got == (sum(ins, D(0)) if ins and None not in ins else None)
        # per category rows add up to the total
        cats = nodes[("feeder", feeder)].by_category.values()
        assert _plus(zero, *(_facts(c) for c in cats)) == _facts(nodes[("feeder", feeder)].total)
    for office in OFFICE_PARENT:
        if ("division", office) in nodes or ("section", office) in nodes or ("utility", office) in nodes:
            node = nodes[(OFFICE_LEVEL[office], office)]
            feeders = [fd for fd, o in net.feeder_office.items() if office in net.office_chain(o)]
            assert _facts(node.total) == _plus(zero, *(_facts(nodes[("feeder", fd)].total) for fd in feeders))
            ins = [nodes[("feeder", fd)].input.kwh for fd in feeders]
            assert node.input.kwh == (sum(ins, D(0)) if ins and None not in ins else None)
            children = [o for o, p in OFFICE_PARENT.items() if p == office and (OFFICE_LEVEL[o], o) in nodes]
            if children:
                assert _facts(node.total) == _plus(zero, *(_facts(nodes[(OFFICE_LEVEL[c], c)].total) for c in children))


def test_ratios_never_divide_by_zero():
    assert accounting.ratios(D(5), D(0), D(0), D(3)) == (None, None, None)
    assert accounting.ratios(D(0), D(10), D(100), D(0)) == (D(0), D(0), D(1))


_period = count(1)
BILL = st.tuples(
    st.integers(0, 3),  # which account
    st.sampled_from(["actual", "estimated", "provisional", "unmetered", "prepaid"]),
    st.decimals(min_value=0, max_value=9999, places=3),
    st.decimals(min_value=0, max_value=99999, places=2),
)
PAY = st.tuples(
    st.integers(0, 3), st.decimals(min_value=1, max_value=9999, places=2), st.sampled_from(["posted", "failed"])
)


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(bills=st.lists(BILL, max_size=8, unique_by=lambda b: b[0]), pays=st.lists(PAY, max_size=8))
def test_set_based_atoms_equal_a_python_sum(offices, bills, pays):
    k = next(_period)
    period = f"{2000 + k:04d}-03"
    fd = f.feeder(offices["circle"])  # a circle feeder: its DTs serve both sections
    dts = [f.dt(fd), f.dt(fd)]
    accounts = [
        f.account(offices["section1"], transformer=dts[0]),
        f.account(offices["section1"], transformer=dts[0], category="irrigation", supply_type="lt_1ph"),
        f.account(offices["section2"], transformer=dts[1]),
        f.account(offices["section2"], feeder_=fd),
    ]
    expected = defaultdict(lambda: defaultdict(D))
    for i, status, units, total in bills:
        a = accounts[i]
        key = (a.transformer_id, a.feeder_id, a.section_id, a.category)
        prepaid = status == "prepaid"
        unmetered = status == "unmetered"
        if unmetered:
            units = units if units > 0 else D(0)
        f.bill(a, period=period, units=units, total=total, status="actual" if prepaid else status,
               metered=not unmetered, prepaid=prepaid)  # fmt: skip
        e = expected[key]
        if prepaid:
            e["prepaid_kwh"] += units
        elif unmetered:
            from urja.reports import assessment

            table, unit_kw = assessment.norms(services.config())
            e["assessed_kwh"] += (
                units
                if units > 0
                else assessment.category_kwh(
                    load=a.sanctioned_load,
                    load_unit=a.load_unit,
                    category=a.category,
                    days=31,
                    table=table,
                    units=unit_kw,
                )
            )
        elif status in ("estimated", "provisional"):
            e["estimated_kwh"] += units
        else:
            e["metered_kwh"] += units
        e["billed_amount"] += total
        e["accounts"] += 1
    for i, amount, status in pays:
        a = accounts[i]
        f.payment(a, amount=amount, at=datetime(2000 + k, 3, 10, tzinfo=IST), status=status)
        if status == "posted":
            expected[(a.transformer_id, a.feeder_id, a.section_id, a.category)]["collected_amount"] += amount
    got = {
        (a.transformer_id, a.feeder_id, a.section_id, a.category): {
            x: getattr(a, x) for x in (*FACTS, "accounts") if getattr(a, x)
        }
        for a in services.atoms(period)
    }
    want = {key: {x: v for x, v in e.items() if v} for key, e in expected.items()}
    assert {k2: v for k2, v in got.items() if v} == {k2: v for k2, v in want.items() if v}
