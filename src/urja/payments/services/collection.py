"""Collection automation: flagging overdue accounts, written disconnection notices, settling paid
cases, and the sweep as a background job."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.utils import timezone

from urja.core.services import allocate_numbers, record_audit
from urja.core.states import transition
from urja.customers.models import Account, AccountStatus
from urja.payments import seams, selectors
from urja.payments.models import (
    COLLECTION_STATUS,
    CollectionCase,
)
from urja.payments.selectors import (
    OPEN_CASE,
    _collection_data,
    credit_limit_for,
    overdue_amounts,
)

SWEEP_PROGRESS_EVERY = 200  # accounts between two progress reports of a sweep job
NOTICE_BATCH = 200  # flagged cases whose notices are issued in one transaction (and sent by one task)


def sweep_collections(*, today: date | None = None, office_path: str = "", progress=None) -> dict:
    """Flag accounts overdue past grace or above their credit limit; settle cases that are paid;
    move cases whose notice period has run out to 'due for disconnection'. Only accounts under
    `office_path` ('' = the whole utility). Idempotent and resumable: each change is its own
    transaction guarded by the case's current status, so a second (or concurrent, or restarted)
    sweep the same day changes nothing twice. `progress(done, total)` is told every few hundred."""
    today = today or timezone.localdate()
    minimum = Decimal(_collection_data()["flag"]["minimum_overdue"])
    counts = {"flagged": 0, "settled": 0, "due": 0}
    cases = CollectionCase.objects.filter(status__in=OPEN_CASE)
    accounts = Account.objects.filter(is_prepaid=False)
    if office_path:
        cases = cases.filter(account__office_path__startswith=office_path)
        accounts = accounts.filter(office_path__startswith=office_path)
    open_cases = {c.account_id: c for c in cases}
    categories, statuses = {}, {}
    for pk, category, status in accounts.values_list("id", "category", "status"):
        categories[pk], statuses[pk] = category, status
    owing = set()
    # Read everything before writing: on SQLite an open read cursor cannot become a writer.
    rows = list(overdue_amounts(today=today, office_path=office_path))
    total, done = len(rows) + len(open_cases), 0
    if progress:
        progress(0, total)
    for account_id, balance, overdue in rows:
        done += 1
        if progress and done % SWEEP_PROGRESS_EVERY == 0:
            progress(done, total)
        if statuses.get(account_id) != AccountStatus.ACTIVE:
            continue
        reason = None
        if overdue >= minimum:
            reason = CollectionCase.Reason.OVERDUE
        elif balance > credit_limit_for(categories.get(account_id, "")):
            reason = CollectionCase.Reason.CREDIT_LIMIT
        if reason is None:
            continue
        owing.add(account_id)
        if account_id in open_cases:
            continue
        try:
            with transaction.atomic():
                CollectionCase.objects.create(
                    account_id=account_id,
                    reason=reason,
                    flagged_on=today,
                    amount_due=overdue if reason == CollectionCase.Reason.OVERDUE else balance,
                )
            counts["flagged"] += 1
        except IntegrityError:
            continue
    for account_id, case in open_cases.items():
        done += 1
        if progress and done % SWEEP_PROGRESS_EVERY == 0:
            progress(done, total)
        if account_id not in owing:
            target = CollectionCase.Status.SETTLED
        elif case.status == CollectionCase.Status.NOTICE_SENT and case.pay_by and today > case.pay_by:
            target = CollectionCase.Status.DISCONNECTION_DUE
        else:
            continue
        with transaction.atomic():
            # a payment or another sweep may have moved the case since it was read: re-check locked
            case = CollectionCase.objects.select_for_update().get(pk=case.pk)
            if case.status not in OPEN_CASE or case.status == target:
                continue
            if target == CollectionCase.Status.DISCONNECTION_DUE and case.status != CollectionCase.Status.NOTICE_SENT:
                continue
            _transition_case(case, target, today=today)
        counts["settled" if target == CollectionCase.Status.SETTLED else "due"] += 1
    if progress:
        progress(total, total)
    return counts


def _transition_case(case: CollectionCase, status: str, *, today: date) -> None:
    COLLECTION_STATUS.check(case.status, status)
    if status in (CollectionCase.Status.SETTLED, CollectionCase.Status.CLOSED):
        case.closed_on = today
    transition(
        case,
        COLLECTION_STATUS,
        status,
        actor=None,
        channel="system",
        action=f"collection.{status}",
        extra_fields=["closed_on"],
    )


def settle_collection_cases(
    *, settled: dict[int, tuple[Decimal, date]], open_cases: list[tuple[int, int]] | None = None
) -> int:
    """After payments: settle the open collection cases of the accounts (id → (balance now, day paid))
    whose balance is below the flagging minimum. `open_cases`: (case, account) of the cases open
    among these accounts when read (selectors.open_collection_cases), if the caller read them
    already — each is settled only if still open under its lock. Returns how many were settled."""
    minimum = Decimal(_collection_data()["flag"]["minimum_overdue"])
    paid = {pk: day for pk, (balance, day) in settled.items() if balance is not None and balance < minimum}
    if open_cases is None:
        # few accounts have an open case: find them with one lookup, then lock and settle those
        open_cases = selectors.open_collection_cases(paid)
    case_ids = [case_id for case_id, account_id in open_cases if account_id in paid]
    if not case_ids:
        return 0
    count = 0
    for case in CollectionCase.objects.select_for_update().filter(pk__in=case_ids, status__in=OPEN_CASE):
        _transition_case(case, CollectionCase.Status.SETTLED, today=paid[case.account_id])
        count += 1
    return count


def issue_disconnection_notices(
    *, today: date | None = None, limit: int | None = None, office_path: str = "", progress=None
) -> int:
    """Send the written notice (15 working days, data) for every flagged case (under `office_path`,
    if given). Idempotent: a case gets its notice once, under its row lock."""
    today = today or timezone.localdate()
    days = int(_collection_data()["notice"]["working_days"])
    sent = 0
    cases = CollectionCase.objects.filter(status=CollectionCase.Status.FLAGGED)
    if office_path:
        cases = cases.filter(account__office_path__startswith=office_path)
    ids = cases.order_by("id").values_list("pk", flat=True)
    ids = list(ids[:limit] if limit else ids)  # read before writing (SQLite: a cursor cannot write)
    if progress:
        progress(0, len(ids))
    # Cases in groups of NOTICE_BATCH, one transaction each: a group's notices are numbered, moved
    # and their messages queued together (sent by one task after the commit) — a notice a commit and
    # a send task each was most of a utility-wide sweep. A failure rolls back its group (and stops
    # the sweep, as before); those cases stay flagged for the next sweep — a case gets its notice
    # once, under its lock.
    for start in range(0, len(ids), NOTICE_BATCH):
        group = ids[start : start + NOTICE_BATCH]
        with transaction.atomic():
            notices = []
            for case_id in group:
                notice = _issue_notice(case_id, today=today, days=days)
                if notice is not None:
                    notices.append(notice)
            seams.notify_consumers(event="disconnection.notice", notices=notices)
        sent += len(notices)
        if progress:
            progress(min(start + NOTICE_BATCH, len(ids)), len(ids))
    if progress:
        progress(len(ids), len(ids))
    return sent


def _issue_notice(case_id: int, *, today: date, days: int):
    """Number, date and send one flagged case's notice (inside the caller's transaction, under the
    case's row lock); its message as (consumer, context, key), or None when it is no longer flagged."""
    case = (
        CollectionCase.objects.select_for_update()
        .select_related("account__consumer", "account__section")
        .get(pk=case_id)
    )
    if case.status != CollectionCase.Status.FLAGGED:
        return None
    account = case.account
    pay_by = account.section.calendar().add_working_days(today, days)
    case.notice_number = allocate_numbers(key="disconnection-notice", template="DN{yy}{seq:08}")[0]
    case.notice_date = today
    case.pay_by = pay_by
    _transition_case(case, CollectionCase.Status.NOTICE_SENT, today=today)
    CollectionCase.objects.filter(pk=case.pk).update(notice_number=case.notice_number, notice_date=today, pay_by=pay_by)
    context = {
        "consumer_number": account.consumer_number,
        "amount": case.amount_due,
        "disconnect_date": pay_by,
        "notice_number": case.notice_number,
    }
    return account.consumer, context, f"disconnection.notice:{case.pk}"


COLLECTIONS_SWEEP = "payments.collections_sweep"


def start_collections_sweep(*, actor, office_path: str, channel: str = "api"):
    """Start the collections sweep (flagging, then notices) for `office_path` ('' = the whole
    utility) as a background job; (job, created). While one is queued or running for the same scope,
    that one is returned: a double click does not sweep twice."""
    from urja.core import jobs

    job, created = jobs.start_job(kind=COLLECTIONS_SWEEP, actor=actor, scope=office_path)
    if created:
        record_audit(
            actor=actor, channel=channel, action="collections.sweep_started", obj=job, changes={"scope": office_path}
        )
    return job, created


def collections_sweep_job(*, job, progress) -> dict:
    """The background job's body (core.jobs.run_job): sweep, then notices, within the job's scope."""
    progress(0, stage="flagging")
    counts = sweep_collections(office_path=job.scope, progress=progress)
    progress(0, total=0, stage="notices")
    counts["notices"] = issue_disconnection_notices(office_path=job.scope, progress=progress)
    return counts
