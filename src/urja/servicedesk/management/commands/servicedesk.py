"""`urja servicedesk load [FILE ...]` — load SoP schedules (default: data/servicedesk/*_sop.toml).
`urja servicedesk sweep` — run the escalation sweep once."""

import json

from django.core.management.base import BaseCommand, CommandError

from urja.core.errors import DomainError


class Command(BaseCommand):
    help = "Service desk: load the request catalogue (SoP schedule) or run the escalation sweep."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        load = sub.add_parser("load", help="load schedule files (idempotent)")
        load.add_argument("files", nargs="*", help="TOML files (default: data/servicedesk/*_sop.toml)")
        sub.add_parser("sweep", help="run the escalation sweep now")

    def handle(self, *args, action, **options):
        if action == "load":
            from urja.servicedesk import catalogue

            files = options["files"] or catalogue.default_files()
            if not files:
                raise CommandError("no schedule files found under data/servicedesk/")
            for path in files:
                try:
                    schedule, created = catalogue.load_file(path)
                except DomainError as exc:
                    raise CommandError(exc.message) from exc
                verb = "loaded" if created else "already loaded"
                self.stdout.write(f"{verb}: {schedule} — {schedule.types.count()} request types")
        elif action == "sweep":
            from urja.servicedesk.escalation import sweep

            self.stdout.write(json.dumps(sweep()))
