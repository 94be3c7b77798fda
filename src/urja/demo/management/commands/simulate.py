"""`urja simulate --months N --consumers N --seed S [--faults]` (docs/simulation.md)."""

import json
import sys

from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Simulate months of meter-to-cash and service through the services; check the invariants monthly."

    def add_arguments(self, parser):
        parser.add_argument("--months", type=int, default=3)
        parser.add_argument("--consumers", type=int, default=300)
        parser.add_argument("--seed", type=int, default=1)
        parser.add_argument("--faults", action="store_true", help="inject faults (dead worker, replays, …)")
        parser.add_argument("--keep-going", action="store_true", help="do not stop at the first violating month")
        parser.add_argument("--json", dest="json_path", default="", help="also write the JSON summary to this file")

    def handle(self, *args, months, consumers, seed, faults, keep_going, json_path, **options):
        import logging

        from urja.demo.simulation import simulate

        # thousands of eager task results and dev-channel messages would drown the monthly lines
        for name in (
            "celery",
            "urja.notifications",
            "urja.billing",
            "urja.metering",
            "urja.payments",
            "urja.core.jobs",
            "urja.reports",
            "urja.servicedesk",
            "urja.connections",
            "urja.minigrid",
        ):
            logging.getLogger(name).setLevel(logging.WARNING)
        # the faults are deliberate: their warnings (deferred calls, a partition taken over) are in the report
        for name in ("urja.core.jobs", "urja.billing.runs"):
            logging.getLogger(name).setLevel(logging.ERROR)

        report = simulate(
            months=months,
            consumers=consumers,
            seed=seed,
            faults=faults,
            keep_going=keep_going,
            stdout=lambda line: self.stdout.write(line),
        )
        summary = json.dumps(report.as_dict(), indent=2, default=str)
        self.stdout.write(summary)
        if json_path:
            with open(json_path, "w") as fh:
                fh.write(summary)
        if not report.ok:
            sys.exit(1)
