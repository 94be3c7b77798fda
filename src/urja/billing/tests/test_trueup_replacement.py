"""Readings recorded after the account was billed, dated into the billed period: a meter replacement
recorded late (backdated into a month billed on an estimate) and a late actual reading.

The next bill opens at the reading the previous bill closed on, not at the late reading: over the
estimated months the units billed, less those withdrawn, equal the old meter's advance to its final
reading plus the new meter's advance from its installation reading, and the charges follow.
Found by `urja simulate --months 3 --consumers 300 --seed 1 --faults` (account 007000000186: a
provisional September, the replacement of 28 September recorded on 10 October; the October bill
opened at the new meter's installation reading and the old meter's 320.52 units were never billed).
"""

from datetime import date
from decimal import Decimal as D

import pytest

from urja.billing import runs, services
from urja.billing.models import Bill, EntryType, LedgerEntry
from urja.metering import services as metering

from .conftest import local, steady

JUNE, JULY = date(2025, 6, 1), date(2025, 7, 1)


def bill_month(period: str, bill_date: date):
    return services.start_run(run=services.create_run(cycle="C01", period=period, bill_date=bill_date))


def bill_of(account, start: date) -> Bill:
    return Bill.objects.get(account=account, period_start=start, kind=Bill.Kind.BILL)


def replace(account, *, at, final_kwh, initial_kwh="0"):
    new = metering.register_meter(
        serial=f"RP{account.pk:06d}", make="Genus", meter_type="static", actor=None, channel="system"
    )
    metering.replace_meter(
        account=account,
        new_meter=new,
        final_kwh=final_kwh,
        initial_kwh=initial_kwh,
        reason="burnt",
        actor=None,
        channel="system",
        replaced_at=at,
    )


def june_visit(account, visit: str) -> None:
    if visit == "door_locked":  # a provisional reading on 10 June; else the June bill estimates on 30 June
        metering.record_reading(
            actor=None, channel="system", source="staff", account=account, read_at=local(2025, 6, 10), status=visit
        )


def assert_bill_matches_engine(bill: Bill) -> None:
    lines = services.bill_lines(bill)
    assert lines.total == bill.total


@pytest.mark.parametrize("visit", ["door_locked", "no_visit"])
def test_late_replacement_after_an_estimated_month_bills_old_and_new_meter(make_account, visit):
    # 250 units a month to 31 May (2250); June billed on an estimate; then the replacement of 20 June
    # (old meter final 2450: 200 units since May; new meter from 0) is recorded, after the June bill.
    account = make_account(readings=steady(250, months=5))
    june_visit(account, visit)
    bill_month("2025-06", date(2025, 7, 2))
    june = bill_of(account, JUNE)
    assert june.units_status in ("estimated", "provisional")
    replace(account, at=local(2025, 6, 20), final_kwh="2450")
    metering.record_reading(
        actor=None, channel="system", source="amr", account=account, read_at=local(2025, 7, 31), kwh="150"
    )
    bill_month("2025-07", date(2025, 8, 2))
    july = bill_of(account, JULY)
    assert july.units_status == "actual"
    # old meter 2250 → 2450 plus new meter 0 → 150, over June and July together
    assert june.units + july.units - july.units_withdrawn == D("350.000")
    assert july.units >= 0 and july.units_withdrawn >= 0
    assert_bill_matches_engine(july)


def test_late_replacement_recorded_on_time_or_late_bills_the_same_units(make_account):
    # The same history, the replacement recorded before the June bill (on time) and after it (late).
    on_time = make_account(readings=steady(250, months=5))
    late = make_account(readings=steady(250, months=5))
    replace(on_time, at=local(2025, 6, 20), final_kwh="2450")
    bill_month("2025-06", date(2025, 7, 2))
    replace(late, at=local(2025, 6, 20), final_kwh="2450")
    for account in (on_time, late):
        metering.record_reading(
            actor=None, channel="system", source="amr", account=account, read_at=local(2025, 7, 31), kwh="150"
        )
    bill_month("2025-07", date(2025, 8, 2))
    assert bill_of(on_time, JUNE).units == D("200.000") and bill_of(on_time, JULY).units == D("150.000")
    june, july = bill_of(late, JUNE), bill_of(late, JULY)
    assert june.units_status == "estimated"
    assert june.units + july.units - july.units_withdrawn == D("350.000")


def test_late_replacement_over_estimate_is_withdrawn(make_account):
    # The old meter ran only 50 units to its removal and the new one 20 more: 70 units against an
    # estimate of about 250 — the July bill charges 0 and withdraws the rest from the June bill.
    account = make_account(readings=steady(250, months=5))
    bill_month("2025-06", date(2025, 7, 2))
    june = bill_of(account, JUNE)
    assert june.units > 70
    replace(account, at=local(2025, 6, 20), final_kwh="2300")
    metering.record_reading(
        actor=None, channel="system", source="amr", account=account, read_at=local(2025, 7, 31), kwh="20"
    )
    bill_month("2025-07", date(2025, 8, 2))
    july = bill_of(account, JULY)
    assert july.units == 0
    assert july.units_withdrawn == june.units - D("70.000")
    credit = LedgerEntry.objects.get(account=account, entry_type=EntryType.ESTIMATE_WITHDRAWAL)
    assert credit.amount == services.bill_lines(june, units=D("70.000")).total - june.total < 0
    assert credit.reference_id == july.bill_number


def test_late_actual_reading_after_an_actual_bill_is_not_the_opening(make_account, monkeypatch):
    # June billed on an actual reading of 10 June (2300); a reading of 25 June (2400) is recorded after
    # the June bill. July (2500) bills 200 units: from where June stopped, not 100 from the late reading.
    account = make_account(readings=[*steady(250, months=5), (local(2025, 6, 10), "2300")])
    bill_month("2025-06", date(2025, 7, 2))
    assert bill_of(account, JUNE).units == D("50.000")
    for when, kwh in ((local(2025, 6, 25), "2400"), (local(2025, 7, 31), "2500")):
        metering.record_reading(actor=None, channel="system", source="amr", account=account, read_at=when, kwh=kwh)
    routed: set[int] = set()
    slow = runs._slow_path

    def spy(run, ids, idx, result, *, dry_run):
        routed.update(int(ids[i]) for i in idx)
        return slow(run, ids, idx, result, dry_run=dry_run)

    monkeypatch.setattr(runs, "_slow_path", spy)
    bill_month("2025-07", date(2025, 8, 2))
    assert account.pk in routed  # the fast path would have opened at the late reading
    july = bill_of(account, JULY)
    assert july.units == D("200.000") and D(july.opening_kwh) == D("2300.000")
    assert_bill_matches_engine(july)


def test_a_reading_recorded_before_the_bill_still_opens_the_next_period(make_account, monkeypatch):
    # The ordinary case stays on the fast path: every reading before July was known to the June bill.
    account = make_account(readings=[*steady(250, months=5), (local(2025, 6, 25), "2400")])
    bill_month("2025-06", date(2025, 7, 2))
    metering.record_reading(
        actor=None, channel="system", source="amr", account=account, read_at=local(2025, 7, 31), kwh="2500"
    )
    routed: set[int] = set()
    slow = runs._slow_path

    def spy(run, ids, idx, result, *, dry_run):
        routed.update(int(ids[i]) for i in idx)
        return slow(run, ids, idx, result, dry_run=dry_run)

    monkeypatch.setattr(runs, "_slow_path", spy)
    bill_month("2025-07", date(2025, 8, 2))
    assert account.pk not in routed
    assert bill_of(account, JULY).units == D("100.000")


def test_metering_rule_with_and_without_billed_at(make_account):
    # metering's rule itself: with the moment of the last bill the late reading is not the opening
    account = make_account(readings=[*steady(250, months=5), (local(2025, 6, 10), "2300")])
    bill_month("2025-06", date(2025, 7, 2))
    billed_at = bill_of(account, JUNE).created_at
    metering.record_reading(
        actor=None, channel="system", source="amr", account=account, read_at=local(2025, 6, 25), kwh="2400"
    )
    metering.record_reading(
        actor=None, channel="system", source="amr", account=account, read_at=local(2025, 7, 31), kwh="2500"
    )
    args = dict(account=account, period_start=date(2025, 6, 30), period_end=date(2025, 7, 31))
    assert metering.billing_consumption(**args, billed_at=billed_at).kwh == D("200.000")
    assert metering.billing_consumption(**args).kwh == D("100.000")  # a preview without the bill's moment


# --- the simulation's check of it -----------------------------------------------------------------


def _trueup_violations(account) -> list:
    import random

    from urja.demo.simulation import invariants

    found = invariants.estimates_trued_up(invariants.Scope(month="test", rng=random.Random(0)))
    return [v for v in found if v.consumer_number == account.consumer_number]


def test_invariant_measures_from_the_reading_the_last_actual_bill_closed_on(make_account):
    # Simulate seed 3 (account 007000000070): June billed on its actual reading of 10 June; then a
    # replacement of 20 June is recorded (after the June bill), July is door locked (provisional on
    # the new meter), August actual. The bills are right (June + 2300 → 2400 on the old meter + the
    # new meter's 0 → 80); the check measured from the new meter's installation reading (a false
    # `estimate_trued_up`) — it now starts where the June bill closed.
    account = make_account(readings=[*steady(250, months=5), (local(2025, 6, 10), "2300")])
    bill_month("2025-06", date(2025, 7, 2))
    replace(account, at=local(2025, 6, 20), final_kwh="2400")
    metering.record_reading(
        actor=None, channel="system", source="staff", account=account, read_at=local(2025, 7, 10), status="door_locked"
    )
    bill_month("2025-07", date(2025, 8, 2))
    metering.record_reading(
        actor=None, channel="system", source="amr", account=account, read_at=local(2025, 8, 10), kwh="80"
    )
    bill_month("2025-08", date(2025, 9, 2))
    july, august = bill_of(account, JULY), bill_of(account, date(2025, 8, 1))
    assert july.units_status == "provisional" and august.units_status == "actual"
    assert july.units + august.units - august.units_withdrawn == D("180.000")  # 100 old + 80 new
    assert _trueup_violations(account) == []
    # and it still catches a chain that does not add up
    Bill.objects.filter(pk=august.pk).update(units=august.units + 5)
    assert [v.rule for v in _trueup_violations(account)] == ["estimate_trued_up"]
