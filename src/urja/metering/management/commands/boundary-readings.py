"""`urja boundary-readings FILE [--format csv|json|jsonl]`: feeder-head and DT meter readings."""

from django.core.management.base import BaseCommand, CommandError

from urja.core.errors import DomainError
from urja.metering import boundary


class Command(BaseCommand):
    help = "Import boundary-meter readings: rows node (feeder:<code> | dt:<code>), meter_serial, read_at, kwh."

    def add_arguments(self, parser):
        parser.add_argument("file")
        parser.add_argument("--format", dest="file_format", default=None, choices=["csv", "json", "jsonl"])
        parser.add_argument("--errors", type=int, default=20, help="row errors to print")

    def handle(self, *args, file, file_format, errors, **options):
        try:
            batch = boundary.import_file(path=file, file_format=file_format)
        except DomainError as exc:
            raise CommandError(f"{exc.code}: {exc.message}") from exc
        self.stdout.write(
            f"batch {batch.pk}: {batch.rows} rows, {batch.inserted} inserted, {batch.duplicates} duplicates, "
            f"{batch.rejected} rejected in {batch.seconds:.2f}s"
        )
        for err in batch.errors.all()[:errors]:
            self.stdout.write(f"  row {err.row_number}: {err.code}: {err.message}  [{err.raw}]")
