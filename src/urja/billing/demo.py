"""Demo bills: `populate` (called by `urja demo` after metering's readings) loads the tariffs and
runs the bill runs of the demo's cycles for the recent months the shipped tariffs cover."""

from __future__ import annotations

from datetime import date, timedelta

from django.utils import timezone

from urja.core.errors import DomainError


def _months_before(today: date, n: int) -> list[str]:
    out, y, m = [], today.year, today.month
    for _ in range(n):
        y, m = (y, m - 1) if m > 1 else (y - 1, 12)
        out.append(f"{y}-{m:02d}")
    return list(reversed(out))


def populate(*, accounts=None, stdout=None, months: int = 3, today: date | None = None) -> dict:
    from urja.tariffs import services as tariffs

    from . import services
    from .models import BillRun

    say = stdout or (lambda line: None)
    tariffs.load_all()
    today = today or timezone.localdate()
    from urja.customers.models import Account

    cycles = sorted(set(Account.objects.values_list("bill_cycle", flat=True).distinct()))
    made = {"runs": 0, "bills": 0, "skipped": 0}
    for cycle in cycles:
        try:
            services.get_cycle(cycle)
        except DomainError:
            made["skipped"] += 1
            continue
        billable = []
        for period in _months_before(today, 12):
            probe = BillRun(cycle=services.get_cycle(cycle), period=period)
            probe.period_start, probe.period_end = services.period_dates(period, probe.cycle.frequency)
            probe.bill_date = probe.period_end + timedelta(days=2)
            from . import runs

            if not runs.check_tariffs(probe):
                billable.append(period)
        for period in billable[-months:]:
            _start, end = services.period_dates(period, services.get_cycle(cycle).frequency)
            try:
                # dated two days after the period, but never after today (a bill is not dated ahead)
                bill_date = min(end + timedelta(days=2), timezone.localdate())
                run = services.create_run(cycle=cycle, period=period, bill_date=bill_date)
                run = services.start_run(run=run)
            except DomainError as exc:
                say(f"billing demo: {cycle} {period} not billed: {exc.message}")
                made["skipped"] += 1
                continue
            made["runs"] += 1
            made["bills"] += run.bills + run.statements
            say(
                f"billing demo: {cycle} {period}: {run.bills} bills, {run.statements} statements, {run.exceptions} exc."
            )
    return made
