"""Schemathesis over the whole API schema: no generated request — valid or not — may answer 5xx, and
every error answer is {code, message, details}.

The schema is the live one from the WSGI app (test_openapi.py proves it equals docs/openapi.json).
Requests carry an admin token, so they reach the endpoint bodies instead of stopping at 401.
Each operation gets a bounded number of positive (schema-valid) and negative (schema-violating)
examples; failures are collected over all operations and reported together, one line each.
"""

import contextlib
import os

import pytest
import schemathesis
from django.core.wsgi import get_wsgi_application
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hsettings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from urja.core.models import ApiToken
from urja.demo import testing

# Examples per operation and mode: ~100 operations x 2 modes x N requests. Kept so the whole run stays
# within about three minutes on SQLite; URJA_FUZZ_EXAMPLES raises it for a deeper local run.
EXAMPLES = int(os.environ.get("URJA_FUZZ_EXAMPLES", "12"))


def _is_error_body(response) -> bool:
    try:
        body = response.json()
    except ValueError:
        return False
    return isinstance(body, dict) and {"code", "message", "details"} <= set(body)


def _probe(operation, mode, auth, failures):
    @hsettings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,  # the same cases every run: a failure reproduces
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def probe(case):
        case.headers = {**(case.headers or {}), **auth}
        response = case.call()
        if response.status_code >= 500:
            kind = str(response.status_code)
        elif response.status_code >= 400 and not _is_error_body(response):
            kind = f"{response.status_code} not {{code, message, details}}"
        else:
            return
        failures.setdefault((operation.label, kind), case.as_curl_command())

    return probe


@pytest.mark.django_db(transaction=True)  # each request commits like production: a DB error cannot poison the rest
def test_no_generated_request_gets_a_server_error():
    offices = testing.office_tree()
    testing.domestic_account(offices["section1"])
    admin = testing.staff_user("admin", None)
    _, raw = ApiToken.issue(user=admin, name="fuzz")
    auth = {"Authorization": f"Bearer {raw}"}

    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", get_wsgi_application())
    failures: dict[tuple[str, str], str] = {}  # (operation, kind) -> one example
    operations = 0

    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            # Unsatisfiable: nothing in this operation can be made schema-violating (no parameters)
            with contextlib.suppress(Unsatisfiable):
                _probe(operation, mode, auth, failures)()

    assert operations >= 90, f"only {operations} operations loaded from the schema"
    report = "\n".join(f"{label} -> {kind}: {example}" for (label, kind), example in sorted(failures.items()))
    server_errors = sum(1 for _, kind in failures if kind.startswith("5"))
    assert not failures, f"{server_errors} operations answered 5xx, {len(failures)} failures in all:\n{report}"
