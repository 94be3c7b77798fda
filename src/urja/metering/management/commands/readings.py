"""`urja readings import FILE [--source amr] [--format csv|json|jsonl]`."""

from django.core.management.base import BaseCommand, CommandError

from urja.core.errors import DomainError
from urja.metering import importer


class Command(BaseCommand):
    help = "Reading files: `urja readings import FILE` (CSV or JSON; see docs/metering.md)."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        imp = sub.add_parser("import", help="import a reading file (idempotent)")
        imp.add_argument("file")
        imp.add_argument("--source", default="amr", choices=importer.SOURCES)
        imp.add_argument("--format", dest="file_format", default=None, choices=["csv", "json", "jsonl"])
        imp.add_argument("--bill-cycle", default=None, help="the cycle the file was read for (rows of others reported)")
        imp.add_argument("--errors", type=int, default=20, help="row errors to print")

    def handle(self, *args, action, file, source, file_format, errors, bill_cycle=None, **options):
        try:
            batch = importer.import_file(
                path=file, actor=None, channel="import", source=source, file_format=file_format, bill_cycle=bill_cycle
            )
        except DomainError as exc:
            raise CommandError(f"{exc.code}: {exc.message}") from exc
        self.stdout.write(
            f"batch {batch.pk}: {batch.rows} rows, {batch.inserted} inserted, {batch.duplicates} duplicates, "
            f"{batch.rejected} rejected in {batch.seconds:.2f}s"
        )
        if batch.message:
            self.stdout.write(batch.message)
        for err in batch.errors.all()[:errors]:
            self.stdout.write(f"  row {err.row_number}: {err.code}: {err.message}  [{err.raw}]")
