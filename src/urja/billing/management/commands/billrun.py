"""`urja billrun --cycle C01 --period 2025-05 [--dry-run] [--bill-date …] [--enqueue] [--resume]`."""

import json
from datetime import date

from django.core.management.base import BaseCommand, CommandError

from urja.billing import services
from urja.core.errors import DomainError


class Command(BaseCommand):
    help = "Run (or resume) the bill run of a cycle and period; --dry-run shows totals and exceptions only."

    def add_arguments(self, parser):
        parser.add_argument("--cycle", required=True)
        parser.add_argument("--period", required=True, help="YYYY-MM")
        parser.add_argument("--dry-run", action="store_true")
        parser.add_argument("--bill-date", default=None)
        parser.add_argument("--enqueue", action="store_true", help="one Celery task per division partition")
        parser.add_argument("--resume", action="store_true", help="take over partitions left running by a dead worker")
        parser.add_argument("--json", dest="as_json", action="store_true")

    def handle(self, *args, cycle, period, dry_run, bill_date, enqueue, resume, as_json=False, **o):
        try:
            run = services.create_run(
                cycle=cycle,
                period=period,
                dry_run=dry_run,
                bill_date=date.fromisoformat(bill_date) if bill_date else None,
            )
            if dry_run:
                run = services.dry_run_report(run=run)
            else:
                run = services.start_run(run=run, enqueue=enqueue, force=resume)
        except DomainError as exc:
            raise CommandError(f"{exc.code}: {exc.message}") from exc
        progress = services.run_progress(run)
        if as_json:
            self.stdout.write(json.dumps({**progress, "report": run.report}, default=str))
            return
        self.stdout.write(
            f"run {run.pk} {run.cycle.code} {run.period} ({run.period_start}..{run.period_end}) {run.status}: "
            f"{progress['done']}/{progress['accounts_due']} accounts, {progress['bills']} bills, "
            f"{progress['statements']} statements, {progress['exceptions']} exceptions"
        )
        for k, v in (run.totals or {}).items():
            self.stdout.write(f"  {k:10} {v}")
        for e in (run.report or {}).get("exceptions", [])[:20]:
            self.stdout.write(f"  ! {e['kind']:14} account {e['account_id']}: {e['message']}")
