"""Print (or, with --write, rewrite in docs/ui.md) the pages each role is shown."""

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand

from urja.backoffice import pages_by_role


class Command(BaseCommand):
    help = "The pages by role, from the navigation table; --write updates docs/ui.md"

    def add_arguments(self, parser):
        parser.add_argument("--write", action="store_true", help="rewrite the section of docs/ui.md")

    def handle(self, *args, write: bool = False, **options):
        if not write:
            self.stdout.write(pages_by_role.section())
            return
        doc = Path(settings.BASE_DIR) / "docs" / "ui.md"
        doc.write_text(pages_by_role.rewrite(doc.read_text(encoding="utf-8")), encoding="utf-8")
        self.stdout.write(f"rewrote {doc}")
