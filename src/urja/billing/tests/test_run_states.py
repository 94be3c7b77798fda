"""Bill-run and partition status changes follow their machines and are audited (issue 11, part 4)."""

from datetime import date

import pytest

from urja.billing import runs, services
from urja.billing.models import (
    PARTITION_STATUS,
    BillRun,
    BillRunPartition,
    PartitionStatus,
    RunStatus,
)
from urja.core.errors import TransitionNotAllowed
from urja.core.models import AuditEvent

from .conftest import steady

JUNE = dict(cycle="C01", period="2025-06", bill_date=date(2025, 7, 2))


def _moves(obj, action=None):
    events = AuditEvent.objects.filter(object_type=obj._meta.label_lower, object_id=str(obj.pk)).order_by("id")
    return [(e.action, e.changes["from"], e.changes["to"]) for e in events if "to" in e.changes and "from" in e.changes]


def test_dry_run_report_is_checked_and_audited(make_account):
    # the defect: dry_run_report wrote status=dry_run with no check and no audit
    make_account()
    run = services.create_run(**JUNE, dry_run=True)
    run = services.dry_run_report(run=run, actor=None, channel="system")
    assert run.status == RunStatus.DRY_RUN and run.bills == 1
    assert _moves(run) == [("billrun.dry_run_report", "planned", "dry_run")]
    # a dry run no longer planned (cancelled) is not turned into a report behind the machine's back
    BillRun.objects.filter(pk=run.pk).update(status=RunStatus.CANCELLED)
    run.refresh_from_db()
    with pytest.raises(TransitionNotAllowed):
        services.dry_run_report(run=run)
    run.refresh_from_db()
    assert run.status == RunStatus.CANCELLED


def test_rebill_exceptions_moves_partitions_and_run_through_their_machines(make_account):
    # the defect: rebill_exceptions reset partitions to pending by hand (no machine, no audit)
    make_account()
    spike = make_account(readings=steady(100, last=2600))  # waits for VEE review: an exception
    run = services.start_run(run=services.create_run(**JUNE))
    assert run.status == RunStatus.COMPLETED_WITH_EXCEPTIONS
    part = run.partitions.get()
    assert [m[1:] for m in _moves(part)] == [("pending", "running"), ("running", "done")]
    run = services.rebill_exceptions(run=run, actor=None, channel="system")
    part.refresh_from_db()
    assert part.status == PartitionStatus.PENDING and part.cursor == 0
    assert _moves(part)[-1] == ("billrun.partition_reset", "done", "pending")
    assert ("billrun.rebill_exceptions", "completed_exc", "running") in _moves(run)
    assert spike.pk  # still an exception when billed again: the run completes with exceptions
    run = services.start_run(run=run)
    assert run.status == RunStatus.COMPLETED_WITH_EXCEPTIONS
    assert _moves(run)[-1] == ("billrun.completed", "running", "completed_exc")


def test_partition_claim_is_built_from_the_machine(make_account):
    make_account()
    run = services.create_run(**JUNE)
    part = run.partitions.get()
    assert PARTITION_STATUS.sources_of(PartitionStatus.RUNNING) - {PartitionStatus.RUNNING} == {"pending", "failed"}
    BillRunPartition.objects.filter(pk=part.pk).update(status=PartitionStatus.DONE)
    assert runs.claim_partition(part.pk, force=True) is False  # done is never claimed, forced or not
    assert BillRunPartition.objects.get(pk=part.pk).status == PartitionStatus.DONE
    BillRunPartition.objects.filter(pk=part.pk).update(status=PartitionStatus.FAILED)
    assert runs.claim_partition(part.pk) is True
    assert _moves(part)[-1] == ("billrun.partition_claimed", "failed", "running")


def test_a_failing_worker_does_not_mark_a_partition_taken_over_by_another(make_account, monkeypatch):
    make_account()
    run = services.create_run(**JUNE)
    BillRun.objects.filter(pk=run.pk).update(status=RunStatus.RUNNING)
    part = run.partitions.get()

    def boom(*args, **kwargs):
        raise RuntimeError("database went away")

    class TakenOver:  # another worker took the partition over while this one was failing
        @staticmethod
        def exception(*args):
            BillRunPartition.objects.filter(pk=part.pk).update(claimed_by="other:1")

        warning = staticmethod(runs.log.warning)

    monkeypatch.setattr(runs, "log", TakenOver)
    monkeypatch.setattr(runs, "fetch_accounts", boom)
    with pytest.raises(RuntimeError):
        runs.process_partition(part.pk)
    part.refresh_from_db()
    assert part.status == PartitionStatus.RUNNING and part.claimed_by == "other:1" and part.error == ""

    def boom_own(*args, **kwargs):
        raise RuntimeError("disk full")

    BillRunPartition.objects.filter(pk=part.pk).update(status=PartitionStatus.PENDING)
    monkeypatch.undo()
    monkeypatch.setattr(runs, "fetch_accounts", boom_own)
    with pytest.raises(RuntimeError):
        runs.process_partition(part.pk)
    part.refresh_from_db()
    assert part.status == PartitionStatus.FAILED and part.error == "disk full"
    assert _moves(part)[-1] == ("billrun.partition_failed", "running", "failed")
