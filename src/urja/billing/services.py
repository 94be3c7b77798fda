"""Billing services: bill cycles and runs, bill lines, history, revisions, final bills, deposits.

The only code (with ledger.py and runs.py) that changes bills, runs and ledger entries.
"""

from __future__ import annotations

import calendar
import dataclasses
import hashlib
import hmac
from datetime import date, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.db.models import Q, Sum
from django.utils import timezone

from urja.core import regdata
from urja.core.errors import Conflict, DomainError, Forbidden, NotFound
from urja.core.money import parse_amount
from urja.core.services import allocate_numbers, record_audit
from urja.core.states import transition
from urja.tariffs import engine
from urja.tariffs import services as tariffs

from . import ledger, runs
from .models import (
    NOTE_STATUS,
    PARTITION_STATUS,
    RUN_STATUS,
    Bill,
    BillCycle,
    BillException,
    BillRevision,
    BillRun,
    BillRunPartition,
    EntryType,
    LedgerEntry,
    NoteStatus,
    PartitionStatus,
    RunStatus,
)


def config() -> dict:
    return regdata.load("billing/billing.toml")


# ---------------------------------------------------------------------------------------
# Cycles and periods


def get_cycle(code: str) -> BillCycle:
    """A bill cycle by code; cycles listed in data/billing/cycles.toml are created on first use."""
    cycle = BillCycle.objects.filter(code=code).first()
    if cycle:
        return cycle
    for row in regdata.load("billing/cycles.toml")["cycle"]:
        if row["code"] == code:
            cycle, _ = BillCycle.objects.get_or_create(
                code=code,
                defaults={
                    "name": row["name"],
                    "frequency": row.get("frequency", "monthly"),
                    "routes": row.get("routes", []),
                },
            )
            return cycle
    raise NotFound(f"no bill cycle {code!r}", code="unknown_cycle")


def period_dates(period: str, frequency: str) -> tuple[date, date]:
    try:
        year, month = (int(x) for x in period.split("-"))
        end = date(year, month, calendar.monthrange(year, month)[1])
    except (ValueError, TypeError) as exc:
        raise DomainError(f"period must be YYYY-MM, got {period!r}", code="invalid_period") from exc
    if frequency == BillCycle.Frequency.BIMONTHLY:
        prev = (end.replace(day=1) - timedelta(days=1)).replace(day=1)
        return prev, end
    return end.replace(day=1), end


# ---------------------------------------------------------------------------------------
# Runs


@transaction.atomic
def create_run(
    *,
    cycle: str,
    period: str,
    dry_run: bool = False,
    bill_date: date | None = None,
    actor=None,
    channel: str = "system",
) -> BillRun:
    """Plan a bill run. A missing tariff stops it here, before anything is written.

    A real run bills a period that has ended (period_end before today) and is dated no later than
    today (default: today); a dry run may preview a period still running. Re-running a real run for
    the same cycle and period returns the existing run (to resume it)."""
    cyc = get_cycle(cycle)
    start, end = period_dates(period, cyc.frequency)
    today = timezone.localdate()
    if not dry_run:
        _check_period_ended(period=period, period_end=end, today=today)
        existing = BillRun.objects.filter(cycle=cyc, period=period, dry_run=False).first()
        if existing:
            return existing
    bill_date = bill_date or max(today, end + timedelta(days=1))
    if bill_date <= end:
        raise DomainError("the bill date must be after the period", code="invalid_bill_date")
    if not dry_run and bill_date > today:
        # A bill dated ahead would start its due date and rebates from a day that has not come.
        raise DomainError(
            f"the bill date {bill_date:%d-%m-%Y} is in the future; a bill is dated today ({today:%d-%m-%Y}) or earlier",
            code="bill_date_in_future",
            details={"bill_date": bill_date.isoformat(), "today": today.isoformat()},
        )
    run = BillRun(
        cycle=cyc,
        period=period,
        period_start=start,
        period_end=end,
        bill_date=bill_date,
        due_date=bill_date + timedelta(days=int(config()["bill"]["due_days"])),
        dry_run=dry_run,
        created_by=actor if getattr(actor, "pk", None) else None,
    )
    missing = runs.check_tariffs(run)
    if missing:
        raise DomainError(
            f"bill run {cycle} {period} stopped before writing anything: no tariff for "
            + "; ".join(f"{m['tariff']} ({', '.join('..'.join(x) for x in m.get('missing', []))})" for m in missing),
            code="missing_tariff",
            details={"missing": missing},
        )
    run.save()
    from urja.network.models import Office, OfficeLevel

    paths = {}
    for division in Office.objects.filter(level=OfficeLevel.DIVISION):
        count = runs.due_accounts(run, division.path).count()
        if count:
            paths[division] = count
    run.accounts_due = sum(paths.values())
    run.save(update_fields=["accounts_due"])
    BillRunPartition.objects.bulk_create(
        [BillRunPartition(run=run, division=d, division_path=d.path, accounts_due=n) for d, n in paths.items()]
    )
    record_audit(
        actor=actor,
        channel=channel,
        action="billrun.created",
        obj=run,
        changes={"cycle": cycle, "period": period, "dry_run": dry_run, "accounts_due": run.accounts_due},
    )
    return run


def _check_period_ended(*, period: str, period_end: date, today: date) -> None:
    """No bill for a period that has not ended: its readings would be last period's."""
    if period_end >= today:
        first = period_end + timedelta(days=1)
        raise DomainError(
            f"the period {period} ends on {period_end:%d-%m-%Y} and has not ended yet; "
            f"its bill run can start on {first:%d-%m-%Y}",
            code="period_not_ended",
            details={"period": period, "period_end": period_end.isoformat(), "first_run_date": first.isoformat()},
        )


def start_run(
    *,
    run: BillRun,
    actor=None,
    channel: str = "system",
    enqueue: bool = False,
    force: bool = False,
    scope_path: str | None = None,
) -> BillRun:
    """Start (or resume) a real run: one partition task per division. With `scope_path` (an office
    path), only the divisions under it; the others stay pending for their own officers."""
    if run.dry_run:
        raise DomainError("a dry run is not started; use dry_run_report", code="dry_run")
    # a run planned before this rule (or by hand) is not started early either
    _check_period_ended(period=run.period, period_end=run.period_end, today=timezone.localdate())
    parts = run.partitions.exclude(status=PartitionStatus.DONE)
    if scope_path is not None:
        parts = parts.filter(division_path__startswith=scope_path)
    ids = list(parts.values_list("pk", flat=True))
    if scope_path is not None and not ids:
        raise Conflict("nothing left to bill in your divisions for this run", code="nothing_to_bill")
    with transaction.atomic():
        locked = BillRun.objects.select_for_update().get(pk=run.pk)
        if locked.status == RunStatus.COMPLETED:
            return locked
        if locked.status != RunStatus.RUNNING:
            RUN_STATUS.check(locked.status, RunStatus.RUNNING)
            locked.started_at = locked.started_at or timezone.now()
            transition(
                locked,
                RUN_STATUS,
                RunStatus.RUNNING,
                actor=actor,
                channel=channel,
                extra_fields=("started_at",),
                action="billrun.started",
                changes={"scope": scope_path or "all"} if scope_path is not None else None,
            )
    if enqueue:
        from urja.core.jobs import enqueue_background

        from .tasks import process_partition

        for pid in ids:
            # a worker's task with a broker; the embedded default's background thread otherwise
            enqueue_background(process_partition, pid)
    else:
        for pid in ids:
            runs.process_partition(pid, force=force)
    runs.finish_run_if_done(run.pk)
    run.refresh_from_db()
    return run


def dry_run_report(*, run: BillRun, actor=None, channel: str = "system") -> BillRun:
    if not run.dry_run:
        raise DomainError("only a dry run produces a report without writing", code="not_dry_run")
    RUN_STATUS.check(run.status, RunStatus.DRY_RUN)  # refused before the (long) computation
    report = runs.dry_run(run)
    with transaction.atomic():
        run = BillRun.objects.select_for_update().get(pk=run.pk)
        run.report = report
        run.bills = report["counts"].get("bills", 0)
        run.statements = report["counts"].get("statements", 0)
        run.exceptions = report["counts"].get("exceptions", 0)
        run.totals = report["totals"]
        run.finished_at = timezone.now()
        transition(
            run,
            RUN_STATUS,
            RunStatus.DRY_RUN,
            actor=actor,
            channel=channel,
            extra_fields=("report", "bills", "statements", "exceptions", "totals", "finished_at"),
            action="billrun.dry_run_report",
            changes={"bills": run.bills, "statements": run.statements, "exceptions": run.exceptions},
        )
    return run


def run_progress(run: BillRun) -> dict:
    parts = list(run.partitions.select_related("division"))
    done = sum(p.done for p in parts)
    return {
        "run": run.pk,
        "cycle": run.cycle.code,
        "period": run.period,
        "status": run.status,
        "dry_run": run.dry_run,
        "accounts_due": run.accounts_due,
        "done": done,
        "percent": round(100 * done / run.accounts_due, 1) if run.accounts_due else 100.0,
        "bills": sum(p.bills for p in parts) if not run.dry_run else run.bills,
        "statements": sum(p.statements for p in parts) if not run.dry_run else run.statements,
        "exceptions": sum(p.exceptions for p in parts) if not run.dry_run else run.exceptions,
        "totals": run.totals,
        "partitions": [
            {"division": p.division.name, "status": p.status, "due": p.accounts_due, "done": p.done, "bills": p.bills}
            for p in parts
        ],
    }


@transaction.atomic
def resolve_exception(*, exception: BillException, actor, note: str, channel: str = "backoffice") -> BillException:
    """An officer closes a bill-run exception (dealt with outside the run: no bill for the account
    in this run, and rebill_exceptions leaves it alone). The note says what was done."""
    if not note.strip():
        raise DomainError("say how the exception was resolved", code="note_required")
    exc = BillException.objects.select_for_update().get(pk=exception.pk)
    if exc.resolved:
        raise Conflict("exception already resolved", code="already_resolved")
    exc.resolved, exc.resolved_by, exc.resolved_at = True, actor, timezone.now()
    exc.details = {**exc.details, "resolution": note.strip()}
    exc.save()
    run = BillRun.objects.select_for_update().get(pk=exc.run_id)
    if run.status != RunStatus.RUNNING:  # a finished run counts its open exceptions (finish_run_if_done)
        run.exceptions = run.exception_rows.filter(resolved=False).count()
        run.save(update_fields=["exceptions"])
    record_audit(
        actor=actor,
        channel=channel,
        action="billrun.exception_resolved",
        obj=exc.account,
        changes={"run": exc.run_id, "kind": exc.kind, "note": note.strip()},
    )
    return exc


@transaction.atomic
def rebill_exceptions(*, run: BillRun, actor=None, channel: str = "system") -> BillRun:
    """After officers fixed readings or tariffs: bill the run's open-exception accounts again
    (then start_run). The whole run is scanned again; accounts billed already are skipped."""
    run = BillRun.objects.select_for_update().get(pk=run.pk)
    if run.dry_run:
        raise DomainError("a dry run bills nothing; plan a real run", code="dry_run")
    if run.status != RunStatus.COMPLETED_WITH_EXCEPTIONS:
        # a running run would have its partitions reset under its workers
        raise Conflict(f"only a run completed with exceptions is billed again (this one is {run.status})",
                       code="run_not_completed_with_exceptions")  # fmt: skip
    ids = list(run.exception_rows.filter(resolved=False).values_list("account_id", flat=True))
    if not ids:
        raise DomainError("the run has no open exception to bill again", code="no_open_exceptions")
    from urja.customers.models import Account

    # every account of the run with an exception (open or resolved) is scanned and counted again as
    # done; the open ones are deleted here and counted again if they fail again
    path = dict(Account.objects.filter(pk__in=run.exception_rows.values("account_id")).values_list("id", "office_path"))
    BillException.objects.filter(run=run, account_id__in=ids).delete()
    RUN_STATUS.check(run.status, RunStatus.RUNNING)
    for part in BillRunPartition.objects.select_for_update().filter(run=run):
        mine = {a for a, p in path.items() if p.startswith(part.division_path)}
        part.cursor = 0
        part.done = max(part.done - len(mine), 0)
        part.exceptions = max(part.exceptions - len(mine.intersection(ids)), 0)
        transition(
            part,
            PARTITION_STATUS,
            PartitionStatus.PENDING,
            actor=actor,
            channel=channel,
            reason="open exceptions billed again",
            extra_fields=("cursor", "done", "exceptions"),
            action="billrun.partition_reset",
        )
    transition(
        run,
        RUN_STATUS,
        RunStatus.RUNNING,
        actor=actor,
        channel=channel,
        action="billrun.rebill_exceptions",
        changes={"accounts": len(ids)},
    )
    return run


# ---------------------------------------------------------------------------------------
# Bills: lines, history, verification


def bill_input(bill: Bill) -> engine.BillInput:
    return engine.BillInput(
        period_start=bill.period_start,
        period_end=bill.period_end,
        units=bill.units,
        sanctioned_load=bill.sanctioned_load,
        load_unit=bill.load_unit,
        recorded_md=bill.recorded_md,
        tod_units={k: Decimal(v) for k, v in (bill.tod_units or {}).items()},
        area=bill.area,
        metered=bill.metered,
        meter_type=bill.meter_type,
        meter_owner="consumer" if bill.consumer_meter else "utility",
        e_bill=bill.e_bill,
        prepaid=bill.prepaid,
        overdue_principal=bill.overdue_principal,
        overdue_days=bill.overdue_days,
        extra_charges=(("INSTALMENT", "Appliance instalment", bill.extra),) if bill.extra else (),
    )


def bill_lines(bill: Bill, *, units: Decimal | None = None) -> engine.Bill:
    """The bill's line-by-line computation, reproduced from its stored inputs and tariff versions
    (with `units` instead of the bill's: what the bill would have been on other units)."""
    from urja.tariffs.models import TariffVersion

    ids = [int(x) for x in bill.tariff_versions.split(",") if x]
    versions = list(TariffVersion.objects.filter(pk__in=ids).select_related("order"))
    segments = engine.segments_for([tariffs.schedule_of(v) for v in versions], bill.period_start, bill.period_end)
    inp = bill_input(bill)
    return engine.calculate(segments, inp if units is None else dataclasses.replace(inp, units=units))


def verification_code(bill: Bill) -> str:
    """HMAC over the bill's identity and amount: printed on the bill, checked by /billing/verify/."""
    message = f"{bill.bill_number}|{bill.account_id}|{bill.total}|{bill.net_payable}|{bill.due_date}".encode()
    digest = hmac.new(settings.SECRET_KEY.encode(), message, hashlib.sha256).hexdigest().upper()
    return f"{digest[:4]}-{digest[4:8]}-{digest[8:12]}"


def get_bill(*, bill_number: str) -> Bill:
    try:
        return Bill.objects.select_related("account", "account__consumer", "run").get(
            bill_number=bill_number.strip().upper()
        )
    except Bill.DoesNotExist as exc:
        raise NotFound(f"no bill {bill_number}", code="bill_not_found") from exc


def bill_history(*, account, months: int = 12) -> list[Bill]:
    return list(Bill.objects.filter(account=account).order_by("-period_start", "-id")[:months])


# ---------------------------------------------------------------------------------------
# Corrections: credit / debit notes with maker-checker; payment rebates; final bill


def _credit_room(bill: Bill) -> Decimal:
    """What credit notes may still take off a bill: its total with approved debit notes, less approved credit notes."""
    notes = bill.revisions.filter(status=NoteStatus.APPROVED).aggregate(
        debit=Sum("amount", filter=Q(kind="debit_note")), credit=Sum("amount", filter=Q(kind="credit_note"))
    )
    return bill.total + (notes["debit"] or 0) - (notes["credit"] or 0)


@transaction.atomic
def propose_revision(
    *, bill: Bill, kind: str, amount: object, reason: str, actor, channel: str = "backoffice"
) -> BillRevision:
    if kind not in ("credit_note", "debit_note"):
        raise DomainError("kind must be credit_note or debit_note", code="invalid_kind")
    if not reason.strip():
        raise DomainError("a reason is required for a bill revision", code="reason_required")
    if not getattr(actor, "pk", None):
        raise Forbidden("a revision needs a named maker", code="maker_required")
    try:
        value = parse_amount(amount)
    except ValueError as exc:
        raise DomainError(str(exc), code="invalid_amount") from exc
    if kind == "credit_note" and value > _credit_room(bill):
        raise DomainError("a credit note cannot exceed the bill", code="credit_exceeds_bill")
    revision = BillRevision.objects.create(bill=bill, kind=kind, amount=value, reason=reason.strip(), proposed_by=actor)
    record_audit(
        actor=actor,
        channel=channel,
        action="bill.revision_proposed",
        obj=bill.account,
        changes={"bill": bill.bill_number, "kind": kind, "amount": value, "reason": reason},
    )
    return revision


@transaction.atomic
def decide_revision(
    *, revision: BillRevision, approve: bool, actor, note: str = "", channel: str = "backoffice"
) -> BillRevision:
    rev = BillRevision.objects.select_for_update().select_related("bill", "bill__account").get(pk=revision.pk)
    target = NoteStatus.APPROVED if approve else NoteStatus.REJECTED
    NOTE_STATUS.check(rev.status, target)
    if not getattr(actor, "pk", None) or actor.pk == rev.proposed_by_id:
        raise Forbidden("the checker must be a different person from the maker", code="maker_checker")
    if approve and rev.kind == "credit_note":
        # Checked again here: notes proposed while another was pending could together exceed the bill.
        # The bill row lock makes two checkers approving notes of one bill take turns.
        Bill.objects.select_for_update().filter(pk=rev.bill_id).first()
        if rev.amount > _credit_room(rev.bill):
            raise DomainError("a credit note cannot exceed the bill", code="credit_exceeds_bill")
    rev.decided_by, rev.decided_at, rev.decision_note = actor, timezone.now(), note
    if approve:
        rev.note_number = allocate_numbers(key="billnote", template=config()["bill"]["note_template"])[0]
        sign = -1 if rev.kind == "credit_note" else 1
        rev.ledger_entry = ledger.post_entry(
            account=rev.bill.account,
            entry_type=EntryType.CREDIT_NOTE if rev.kind == "credit_note" else EntryType.DEBIT_NOTE,
            amount=sign * rev.amount,
            description=f"{rev.get_kind_display()} {rev.note_number} on bill {rev.bill.bill_number}: {rev.reason}"[
                :200
            ],
            actor=actor,
            channel=channel,
            reference_type="bill_revision",
            reference_id=str(rev.pk),
            idempotency_key=f"revision:{rev.pk}",
            due_date=rev.bill.due_date,
        )
    transition(
        rev,
        NOTE_STATUS,
        target,
        actor=actor,
        channel=channel,
        reason=note,
        extra_fields=("decided_by", "decided_at", "decision_note", "note_number", "ledger_entry"),
        action=f"billrevision.{target}",
    )
    record_audit(
        actor=actor,
        channel=channel,
        action=f"bill.revision_{target}",
        obj=rev.bill.account,
        changes={"revision": rev.pk, "note": rev.note_number, "amount": rev.amount},
    )
    return rev


@transaction.atomic
def apply_payment_rebates(
    *, bill: Bill, paid_on: date, digital: bool, actor=None, channel: str = "system"
) -> list[LedgerEntry]:
    """Rebates the bill offered on condition of payment (by the due date, digitally): called by payments
    when the bill is paid in full. Idempotent per bill."""
    return [
        _post_rebate(bill, key, label, amount, actor=actor, channel=channel)
        for key, label, amount in _rebates_earned(bill, paid_on=paid_on, digital=digital)
    ]


def _rebates_earned(bill: Bill, *, paid_on: date, digital: bool) -> list[tuple[str, str, Decimal]]:
    """(key, label, amount < 0) of the bill's conditional rebates that a payment on `paid_on` earns.

    A rebate is a credit: one the bill offers as zero or more (a bill gone wrong upstream, e.g. on
    negative units) earns nothing and is logged, so the payment that triggered it still posts."""
    offered = [
        ("due", "Prompt", bill.rebate_by_due_date, bool(bill.due_date and paid_on <= bill.due_date)),
        ("digital", "Digital", bill.rebate_digital, digital),
    ]
    earned = []
    for key, label, amount, condition_met in offered:
        if not condition_met or not amount:
            continue
        if amount > 0:
            import logging  # here, not at the top: only this rare path logs

            logging.getLogger(__name__).warning(
                "bill %s offers a %s rebate of +%s (not a credit): not credited", bill.bill_number, key, amount
            )
            continue
        earned.append((key, label, amount))
    return earned


def _post_rebate(bill: Bill, key: str, label: str, amount: Decimal, *, actor, channel: str) -> LedgerEntry:
    return ledger.post_entry(
        account=bill.account,
        entry_type=EntryType.REBATE,
        amount=amount,
        description=f"{label} payment rebate, bill {bill.bill_number}",
        actor=actor,
        channel=channel,
        reference_type="bill",
        reference_id=bill.bill_number,
        idempotency_key=f"bill:{bill.bill_number}:rebate_{key}",
    )


def rebates_on_payment(*, account, paid_on: date, digital: bool, actor=None, channel: str = "system") -> list:
    """After a payment has posted: credit the latest bill's conditional rebates when the account is
    now paid in full, counting those rebates (the bill shows 'payable by the due date' net of them).
    The caller holds the account row lock. Idempotent: each rebate has its own ledger key."""
    bill = (
        Bill.objects.filter(account=account, kind=Bill.Kind.BILL, bill_date__lte=paid_on)
        .order_by("-bill_date", "-id")
        .first()
    )
    if bill is None:
        return []
    earned = _rebates_earned(bill, paid_on=paid_on, digital=digital)
    if not earned or ledger.balance(account=account) + sum(a for _, _, a in earned) > 0:
        return []
    return apply_payment_rebates(bill=bill, paid_on=paid_on, digital=digital, actor=actor, channel=channel)


@transaction.atomic
def final_bill(
    *, account, closing_kwh_units: object, disconnected_on: date, actor=None, channel: str = "backoffice"
) -> Bill:
    """Final bill on permanent disconnection (within 10 days, data/billing/billing.toml): from the day
    after the last bill's period to the disconnection date, on the special reading's units."""
    from urja.customers.models import AccountStatus

    if account.status != AccountStatus.PERMANENTLY_DISCONNECTED:
        raise DomainError("a final bill is for a permanently disconnected account", code="not_disconnected")
    if Bill.objects.filter(account=account, kind=Bill.Kind.FINAL).exists():
        raise Conflict("the account already has a final bill", code="final_bill_exists")
    last = Bill.objects.filter(account=account).exclude(kind=Bill.Kind.FINAL).order_by("-period_end").first()
    start = last.period_end + timedelta(days=1) if last else (account.connected_on or disconnected_on)
    if disconnected_on < start:
        raise DomainError("disconnection date is before the unbilled period", code="invalid_period")
    units = Decimal(str(closing_kwh_units)).quantize(Decimal("0.001"))
    bill_date = timezone.localdate()
    versions = tariffs.matching_versions(
        category=account.category,
        sub_category=account.sub_category,
        area=account.area,
        supply_type=account.supply_type,
        package_code=account.package_code,
        start=start,
        end=disconnected_on,
    )
    segs = tariffs.segments(versions=versions, start=start, end=disconnected_on, what=account.consumer_number)
    inp = engine.BillInput(
        period_start=start,
        period_end=disconnected_on,
        units=units,
        sanctioned_load=account.sanctioned_load,
        load_unit=account.load_unit,
        area=account.area,
    )
    calc = engine.calculate(segs, inp)
    t = calc.totals()
    arrears = ledger.balance(account=account)
    number = allocate_numbers(key="bill:final", template="F{yy}{seq:8}", today=bill_date)[0]
    bill = Bill.objects.create(
        account=account,
        kind=Bill.Kind.FINAL,
        bill_number=number,
        period_start=start,
        period_end=disconnected_on,
        bill_date=bill_date,
        due_date=bill_date + timedelta(days=int(config()["bill"]["due_days"])),
        tariff_versions=",".join(
            str(v.pk)
            for v in versions
            if any(s.schedule.code == v.schedule_code and s.schedule.order_code == v.order.code for s in segs)
        ),
        units=units,
        units_status="actual",
        sanctioned_load=account.sanctioned_load,
        load_unit=account.load_unit,
        area=account.area,
        energy=t["energy"],
        tod=t["tod"],
        fixed=t["fixed"],
        monthly=t["monthly"],
        minimum=t["minimum"],
        riders=t["rider"],
        subsidy=t["subsidy"],
        rebate=t["rebate"],
        dps=t["dps"],
        extra=t["extra"],
        rounding=t["rounding"],
        total=calc.total,
        arrears=arrears,
        net_payable=arrears + calc.total,
        language=account.consumer.preferred_language,
        created_at=timezone.now(),
    )
    charge = calc.current_charges + t["rounding"]
    if charge:
        ledger.post_entry(
            account=account,
            entry_type=EntryType.BILL_CHARGE,
            amount=charge,
            description=f"Final bill {number}",
            actor=actor,
            channel=channel,
            reference_type="bill",
            reference_id=number,
            idempotency_key=f"bill:{number}:bill_charge",
            due_date=bill.due_date,
        )
    if t["subsidy"]:
        ledger.post_entry(
            account=account,
            entry_type=EntryType.SUBSIDY,
            amount=t["subsidy"],
            description=f"Subsidy, final bill {number}",
            actor=actor,
            channel=channel,
            reference_type="bill",
            reference_id=number,
            idempotency_key=f"bill:{number}:subsidy",
            due_date=bill.due_date,
        )
    record_audit(
        actor=actor, channel=channel, action="bill.final", obj=account, changes={"bill": number, "total": calc.total}
    )
    return bill
