"""Print the OpenAPI schema (docs/openapi.json is this output, checked by a test)."""

import json

from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Print the OpenAPI schema of /api/v1/ as JSON"

    def handle(self, *args, **options):
        from urja.core.api import api

        self.stdout.write(
            json.dumps(api.get_openapi_schema(path_prefix="/api/v1/"), indent=1, sort_keys=True, ensure_ascii=False)
        )
