"""Bill runs started by hand (issue 15 part 3): within the officer's scope, reviewed before posting.

    preview = plan_review(cycle="C01", period="2026-11", scope_path=division.path, actor=officer)
        a dry run of the officer's divisions, computed in the background (tasks.preview_run):
        totals, counts and exceptions — nothing written, no e-bill sent
    run = approve(preview=preview, actor=officer)
        the real run of the cycle and period (one per cycle and period), whose partitions in the
        reviewed scope only are started in the background; bills are written, posted to the ledger
        and e-bills queued then (runs.process_partition)
    run = start_in_scope(run=run, scope_path=..., actor=...)   # the same without a review

A run's partitions are per division; an officer starts the partitions under its office, another
division's officer starts theirs (the run completes when all are done). Partitions left pending are
not taken over by the sweep (only running ones are).
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
from django.db import transaction
from django.utils import timezone

from urja.core.errors import Conflict, DomainError
from urja.core.services import record_audit
from urja.core.states import transition

from . import runs, services
from .models import RUN_STATUS, BillRun, BillRunPartition, PartitionStatus, RunStatus

REVIEW = "review"


def plan_review(*, cycle: str, period: str, scope_path: str, scope_name: str = "", actor, channel: str = "backoffice"):
    """A dry run of `scope_path`'s accounts for review, its report computed in the background."""
    _start, end = services.period_dates(period, services.get_cycle(cycle).frequency)
    services._check_period_ended(period=period, period_end=end, today=timezone.localdate())  # before writing
    run = services.create_run(cycle=cycle, period=period, dry_run=True, actor=actor, channel=channel)
    run.report = {REVIEW: True, "scope_path": scope_path, "scope_name": scope_name, "computing": True}
    run.save(update_fields=["report"])
    from urja.core.jobs import enqueue_background

    from .tasks import preview_run

    enqueue_background(preview_run, run.pk)
    return run


def preview(run: BillRun) -> dict:
    """runs.dry_run for the accounts under the review's scope only (division by division)."""
    scope = run.report.get("scope_path", "")
    segcache = runs.SegmentCache(run)
    chunk = int(runs.config()["bill"]["chunk_size"])
    totals: dict[str, int] = defaultdict(int)
    counts: dict[str, int] = defaultdict(int)
    exceptions: list[dict] = []
    for part in run.partitions.filter(division_path__startswith=scope).order_by("division_path"):
        cursor = 0
        while True:
            with transaction.atomic():
                runs._chunk_settings()
                rows, scanned_to = runs.fetch_accounts(run, part.division_path, cursor, chunk)
                out = runs.compute_chunk(run, rows, segcache, dry_run=True) if rows else None
                transaction.set_rollback(True)  # nothing the computation touched is kept
            if scanned_to is None:
                break
            cursor = scanned_to
            if out is None:
                continue
            for key, value in out.totals.items():
                totals[key] += value
            counts["accounts"] += len(rows)
            prepaid = np.fromiter((r[runs.A_PREPAID] for r in rows), dtype=bool, count=len(rows))
            counts["bills"] += int((out.good & ~prepaid).sum())
            counts["statements"] += int((out.good & prepaid).sum())
            counts["exceptions"] += len(out.exceptions)
            for account_id, kind, message, _details in out.exceptions[: max(0, 500 - len(exceptions))]:
                exceptions.append({"account_id": account_id, "kind": kind, "message": message})
    return {
        "counts": dict(counts),
        "totals": {k: (runs._milli(v) if k == "units_m" else runs._rs(v)) for k, v in totals.items()},
        "exceptions": exceptions,
    }


def compute_preview(run_id: int) -> BillRun:
    """The background half of plan_review: the report, then the dry run's status."""
    run = BillRun.objects.get(pk=run_id)
    if run.status != RunStatus.PLANNED:
        return run
    report = preview(run)
    with transaction.atomic():
        run = BillRun.objects.select_for_update().get(pk=run_id)
        run.report = {**run.report, **report, "computing": False}
        run.bills = report["counts"].get("bills", 0)
        run.statements = report["counts"].get("statements", 0)
        run.exceptions = report["counts"].get("exceptions", 0)
        run.totals = report["totals"]
        run.finished_at = timezone.now()
        transition(
            run,
            RUN_STATUS,
            RunStatus.DRY_RUN,
            actor=run.created_by,
            channel="system",
            extra_fields=("report", "bills", "statements", "exceptions", "totals", "finished_at"),
            action="billrun.review_ready",
            changes={"bills": run.bills, "statements": run.statements, "exceptions": run.exceptions},
        )
    return run


def start_in_scope(*, run: BillRun, scope_path: str, actor, channel: str = "backoffice") -> BillRun:
    """Start the real run's partitions under `scope_path` in the background (the others stay pending)."""
    return services.start_run(run=run, actor=actor, channel=channel, enqueue=True, scope_path=scope_path)


def approve(*, preview: BillRun, actor, channel: str = "backoffice") -> BillRun:
    """The reviewed scope is billed for real: the cycle and period's run, its partitions in scope started."""
    if not preview.dry_run or not preview.report.get(REVIEW):
        raise DomainError("only a review can be approved", code="not_a_review")
    if preview.status != RunStatus.DRY_RUN:
        raise Conflict("the review is still being computed", code="review_not_ready")
    if preview.report.get("approved_run"):
        return BillRun.objects.get(pk=preview.report["approved_run"])
    scope = preview.report.get("scope_path", "")
    run = services.create_run(cycle=preview.cycle.code, period=preview.period, actor=actor, channel=channel)
    run = start_in_scope(run=run, scope_path=scope, actor=actor, channel=channel)
    BillRun.objects.filter(pk=preview.pk).update(report={**preview.report, "approved_run": run.pk})
    record_audit(
        actor=actor,
        channel=channel,
        action="billrun.review_approved",
        obj=preview,
        changes={"run": run.pk, "scope": scope or "all", "bills": preview.bills, "exceptions": preview.exceptions},
    )
    return run


def pending_partitions(run: BillRun) -> list[BillRunPartition]:
    return list(run.partitions.filter(status=PartitionStatus.PENDING).select_related("division"))
