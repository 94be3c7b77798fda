"""Bill runs end to end: hand-computed bills, ledger, exceptions, dry run, resume after a kill."""

from datetime import date
from decimal import Decimal as D

import pytest

from urja.billing import ledger, runs, services
from urja.billing.models import Bill, BillException, BillRun, EntryType, InstalmentPlan, LedgerEntry, RunStatus
from urja.core.errors import DomainError
from urja.customers.models import Account

from .conftest import metered_account, steady

JUNE = dict(cycle="C01", period="2025-06", bill_date=date(2025, 7, 2))


def run_june(**kw):
    run = services.create_run(**{**JUNE, **kw})
    return services.start_run(run=run)


def test_bill_run_bills_domestic_account_to_the_paisa(make_account):
    account = make_account()  # 2250 → 2500 in June: 250 units, 2 kW, urban
    run = run_june()
    assert run.status == RunStatus.COMPLETED
    bill = Bill.objects.get(account=account)
    # 50×2.90 + 150×4.70 + 50×5.70 = 1135.00; fixed 2 kW × 20 = 40.00
    assert (bill.units, bill.energy, bill.fixed, bill.total) == (
        D("250.000"),
        D("1135.00"),
        D("175.00") - D("135.00"),
        D("1175.00"),
    )
    assert bill.due_date == date(2025, 7, 9)  # bill date + 7 days (data/billing/billing.toml)
    assert bill.units_status == "actual" and bill.opening_kwh == D("2250.000") and bill.closing_kwh == D("2500.000")
    assert bill.rebate_digital == D("-47.00")  # 4% of 1175, offered if paid digitally
    assert bill.bill_number.startswith("B") and len(bill.bill_number) == 1 + 3 + 4 + 7
    entries = list(LedgerEntry.objects.filter(account=account))
    assert [(e.entry_type, e.amount, e.due_date) for e in entries] == [
        (EntryType.BILL_CHARGE, D("1175.00"), date(2025, 7, 9))
    ]
    assert ledger.balance(account=account) == D("1175.00")
    # the line-by-line computation is reproduced from the stored inputs
    lines = services.bill_lines(bill)
    assert lines.total == bill.total and [ln.code for ln in lines.lines][:3] == ["EC1", "EC2", "EC3"]
    # running again for the same cycle and period resumes the same run: nothing billed twice
    again = run_june()
    assert again.pk == run.pk and Bill.objects.filter(account=account).count() == 1


def test_second_month_dps_on_unpaid_previous_bill(make_account):
    acc = make_account(category="irrigation", load="5", readings=steady(300, months=7, last=3000))
    run_june()
    june = Bill.objects.get(account=acc)
    # 300 × 1.50 = 450; 5 kW × 20 = 100 → 550.00, due 9 July, not paid
    assert june.total == D("550.00")
    july_run = services.create_run(cycle="C01", period="2025-07", bill_date=date(2025, 8, 2))
    services.start_run(run=july_run)
    july = Bill.objects.get(account=acc, period_start=date(2025, 7, 1))
    # 200 × 1.50 = 300; 100 fixed; DPS 1.25% × 1 started month (24 days late) × 550 = 6.875 → 6.88
    assert (july.overdue_principal, july.overdue_days, july.dps) == (D("550.00"), 24, D("6.88"))
    assert july.total == D("406.88") and july.arrears == D("550.00") and july.net_payable == D("956.88")
    dps = LedgerEntry.objects.get(account=acc, entry_type=EntryType.DPS)
    assert dps.amount == D("6.88")


def test_exceptions_queue_and_no_bill_for_them(make_account, offices):
    good = make_account()
    spike = make_account(readings=steady(100, last=2600))
    run = run_june()
    assert run.status == RunStatus.COMPLETED_WITH_EXCEPTIONS
    assert Bill.objects.filter(account=good).exists() and not Bill.objects.filter(account=spike).exists()
    exc = BillException.objects.get(run=run)
    assert (exc.account_id, exc.kind) == (spike.pk, "vee_failed")
    assert not LedgerEntry.objects.filter(account=spike).exists()


def test_unmetered_account_gets_a_fixed_charge_bill_and_prepaid_a_statement(offices, tariffs_loaded):
    from urja.demo.testing import domestic_account

    unmetered = domestic_account(offices["section1"], mobile=None, load="3")
    Account.objects.filter(pk=unmetered.pk).update(connected_on=date(2025, 1, 1))
    prepaid = metered_account(offices["section2"], is_prepaid=True, readings=steady(100))
    run = run_june()
    assert (run.bills, run.statements) == (1, 1) and services.run_progress(run)["statements"] == 1
    bill = Bill.objects.get(account=unmetered)
    assert (bill.metered, bill.units_status, bill.energy, bill.fixed, bill.total) == (
        False,
        "unmetered",
        0,
        D("60.00"),
        D("60.00"),
    )
    statement = Bill.objects.get(account=prepaid)
    # 50×2.90 + 50×4.70 = 380; fixed 40; prepaid rebate 4% of 420 = 16.80
    assert statement.kind == "statement" and statement.rebate == D("-16.80") and statement.total == D("403.20")
    assert statement.due_date is None and not LedgerEntry.objects.filter(account=prepaid).exists()


def test_missing_tariff_stops_the_run_before_writing(make_account, offices):
    make_account()
    make_account(category="minigrid", sub_category="household", package_code="MG-NONE")  # no such package
    with pytest.raises(DomainError) as exc:
        services.create_run(**JUNE)
    assert exc.value.code == "missing_tariff"
    assert "minigrid/household/urban/lt_1ph/MG-NONE" in exc.value.message
    assert not BillRun.objects.exists() and not Bill.objects.exists()


def test_dry_run_writes_nothing(make_account):
    make_account()
    make_account(readings=steady(100))
    run = services.create_run(**JUNE, dry_run=True)
    run = services.dry_run_report(run=run)
    assert run.report["counts"] == {"accounts": 2, "bills": 2, "statements": 0, "exceptions": 0}
    # 1175.00 + (50×2.90 + 50×4.70 + 40 = 420.00)
    assert run.totals["total"] == "1595.00"
    assert not Bill.objects.exists() and not LedgerEntry.objects.exists()


def test_killed_half_way_resumes_exactly(make_account, monkeypatch):
    accounts = [make_account(section="section1") for _ in range(7)]
    cfg = {**runs.config(), "bill": {**runs.config()["bill"], "chunk_size": 2}}
    monkeypatch.setattr(runs, "config", lambda: cfg)
    run = services.create_run(**JUNE)
    part = run.partitions.get()
    services.start_run  # noqa: B018
    BillRun.objects.filter(pk=run.pk).update(status=RunStatus.RUNNING)
    # one chunk commits, then the worker dies in the middle of the second chunk
    assert runs.process_partition(part.pk, stop_after_chunks=1) == "running"
    real_write = runs.write_chunk

    def dying(*args, **kwargs):
        real_write(*args, **kwargs)  # bills and ledger rows are written ...
        raise KeyboardInterrupt("killed")  # ... and the process dies before the commit

    monkeypatch.setattr(runs, "write_chunk", dying)
    with pytest.raises(KeyboardInterrupt):
        runs.process_partition(part.pk, force=True)
    assert Bill.objects.count() == 2  # only the committed chunk
    monkeypatch.setattr(runs, "write_chunk", real_write)
    run.refresh_from_db()
    run = services.start_run(run=run, force=True)
    assert run.status == RunStatus.COMPLETED
    assert sorted(Bill.objects.values_list("account_id", flat=True)) == sorted(a.pk for a in accounts)
    numbers = sorted(Bill.objects.values_list("bill_number", flat=True))
    assert len(set(numbers)) == 7 and [int(n[-7:]) for n in numbers] == list(range(1, 8))  # no gap, no duplicate
    assert LedgerEntry.objects.filter(entry_type=EntryType.BILL_CHARGE).count() == 7
    assert run.bills == 7 and run.totals["total"] == "8225.00"


def test_rebilling_exceptions_bills_only_the_fixed_accounts(make_account, monkeypatch):
    from urja.metering import services as metering
    from urja.metering.models import Reading

    good = [make_account() for _ in range(4)]  # with chunks of 2, the first two chunks are all billed already
    spike = make_account(readings=steady(100, last=2600))
    cfg = {**runs.config(), "bill": {**runs.config()["bill"], "chunk_size": 2}}
    monkeypatch.setattr(runs, "config", lambda: cfg)
    run = run_june()
    assert run.status == RunStatus.COMPLETED_WITH_EXCEPTIONS and Bill.objects.count() == 4
    first = dict(Bill.objects.values_list("account_id", "bill_number"))
    # the officer accepts the spike; the run bills that account and nothing twice
    reading = Reading.objects.get(account=spike, vee_status="review")
    metering.review_reading(reading=reading, action="accept", actor=None, channel="backoffice")
    run = services.start_run(run=services.rebill_exceptions(run=run))
    assert run.status == RunStatus.COMPLETED and run.bills == 5 and run.exceptions == 0
    assert {a: n for a, n in Bill.objects.values_list("account_id", "bill_number") if a != spike.pk} == first
    assert sorted(Bill.objects.values_list("account_id", flat=True)) == sorted(a.pk for a in [*good, spike])
    assert LedgerEntry.objects.filter(entry_type=EntryType.BILL_CHARGE).count() == 5
    assert run.partitions.get().cursor == spike.pk


def test_instalments_are_billed_and_counted(make_account):
    account = make_account()
    InstalmentPlan.objects.create(account=account, description="LED fan", amount_per_bill=D("150"), instalments=3)
    run_june()
    bill = Bill.objects.get(account=account)
    assert bill.extra == D("150.00") and bill.total == D("1325.00")
    assert LedgerEntry.objects.get(account=account, entry_type=EntryType.INSTALMENT).amount == D("150.00")
    assert InstalmentPlan.objects.get().billed == 1


def test_ebill_is_queued_through_notifications(make_account, django_capture_on_commit_callbacks):
    from django.utils import timezone

    from urja.notifications.models import OutboxMessage

    account = make_account(mobile="9437012345")
    with django_capture_on_commit_callbacks(execute=True):
        run_june(bill_date=timezone.localdate())  # June billed today (a late run)
    bill = Bill.objects.get(account=account)
    messages = OutboxMessage.objects.filter(event="bill.issued")
    assert messages.exists() and bill.bill_number in messages.first().body


def test_no_ebill_for_a_backfilled_old_bill(make_account, django_capture_on_commit_callbacks):
    from urja.notifications.models import OutboxMessage

    make_account(mobile="9437012345")
    with django_capture_on_commit_callbacks(execute=True):
        run_june()  # dated 2 July 2025: far older than ebill_max_age_days
    assert Bill.objects.count() == 1
    assert not OutboxMessage.objects.filter(event="bill.issued").exists()


def test_revision_maker_checker_and_final_bill(make_account, offices):
    from urja.core.errors import Forbidden
    from urja.customers import services as customers
    from urja.demo.testing import staff_user

    account = make_account()
    run_june()
    bill = Bill.objects.get(account=account)
    maker, checker = staff_user("billing_officer", offices["division1"]), staff_user("manager", offices["division1"])
    rev = services.propose_revision(
        bill=bill, kind="credit_note", amount="175", reason="meter read wrongly", actor=maker
    )
    with pytest.raises(Forbidden):
        services.decide_revision(revision=rev, approve=True, actor=maker)
    assert ledger.balance(account=account) == D("1175.00")  # nothing posted by the maker
    rev = services.decide_revision(revision=rev, approve=True, actor=checker)
    assert rev.ledger_entry.amount == D("-175.00") and ledger.balance(account=account) == D("1000.00")
    customers.change_account_status(
        actor=checker, channel="backoffice", account=account, status="perm_disconnected", reason="consumer request"
    )
    account.refresh_from_db()
    final = services.final_bill(
        account=account, closing_kwh_units="30", disconnected_on=date(2025, 7, 15), actor=checker
    )
    # 1–15 July (factor 15/31): widths 50→24 units; 24×2.90=69.60 + 6×4.70=28.20; fixed 2×20×15/31=19.35
    assert final.kind == "final" and final.total == D("117.15")
    assert final.arrears == D("1000.00") and final.net_payable == D("1117.15")


def test_credit_notes_together_cannot_exceed_the_bill(make_account, offices):
    from urja.core.errors import DomainError
    from urja.demo.testing import staff_user

    make_account()
    run_june()
    bill = Bill.objects.get()  # total 1175.00
    maker, checker = staff_user("billing_officer", offices["division1"]), staff_user("manager", offices["division1"])

    def propose(amount):
        return services.propose_revision(bill=bill, kind="credit_note", amount=amount, reason="x", actor=maker)

    first, pending = propose("1000"), propose("1000")  # each fits the bill on its own
    services.decide_revision(revision=first, approve=True, actor=checker)
    with pytest.raises(DomainError) as exc:  # approving the second would credit 2000 on a 1175 bill
        services.decide_revision(revision=pending, approve=True, actor=checker)
    assert exc.value.code == "credit_exceeds_bill"
    with pytest.raises(DomainError) as exc:
        propose("175.01")
    assert exc.value.code == "credit_exceeds_bill"
    assert propose("175").amount == D("175.00")  # the rest of the bill can still be credited
    assert ledger.balance(account=bill.account) == D("175.00")  # only the approved note was posted
