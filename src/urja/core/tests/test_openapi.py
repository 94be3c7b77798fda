import json
from pathlib import Path

from django.conf import settings

from urja.core.api import api


def test_committed_openapi_schema_matches_the_code():
    committed = Path(settings.BASE_DIR) / "docs" / "openapi.json"
    live = json.loads(json.dumps(api.get_openapi_schema(path_prefix="/api/v1/"), sort_keys=True))
    assert json.loads(committed.read_text(encoding="utf-8")) == live, (
        "docs/openapi.json is stale: run `make openapi` and commit it"
    )


def test_every_error_response_uses_the_common_format(client):
    response = client.get("/api/v1/no-such-endpoint")
    assert response.status_code == 404
