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


def test_error_responses_use_the_common_format(client):
    """401, 422 and a service's DomainError all answer {code, message, details}."""
    responses = [
        client.get("/api/v1/customers/accounts"),  # not authenticated
        client.post("/api/v1/auth/tokens", {"username": 5}, content_type="application/json"),  # schema
        client.get("/api/v1/customers/document-matrix/alien"),  # DomainError from the endpoint
    ]
    assert [r.status_code for r in responses] == [401, 422, 400]
    for response in responses:
        body = response.json()
        assert set(body) == {"code", "message", "details"}
        assert body["code"] and body["message"]


def test_every_schema_of_the_api_has_a_name_of_its_own():
    """The OpenAPI lists schemas by class name, so two apps' classes of one name (`ChangeOut` of connections
    and of the mini-grid, `OrderOut` of payments and of connections …) would document one answer for the
    other's operations: the last one written wins, silently."""
    from collections import defaultdict

    from ninja import Schema

    api.get_openapi_schema(path_prefix="/api/v1/")  # every router's schemas imported
    where = defaultdict(set)

    def walk(cls):
        for sub in cls.__subclasses__():
            if sub.__module__.startswith("urja.") and ".tests." not in sub.__module__:
                where[sub.__name__].add(sub.__module__)
            walk(sub)

    walk(Schema)
    assert {name: sorted(mods) for name, mods in where.items() if len(mods) > 1} == {}
