"""The input boundary on the service desk: a complaint's text is bounded (core.boundary)."""

import pytest

from urja.core.tests.test_boundary import bearer
from urja.servicedesk.models import ServiceRequest


@pytest.mark.django_db
def test_a_two_million_character_complaint_is_refused(client, offices, cre, account):
    body = {
        "type": "no_power_supply",
        "channel": "care_centre",
        "consumer_number": account.consumer_number,
        "description": "x" * 2_000_000,
    }
    res = client.post("/api/v1/servicedesk/requests", body, content_type="application/json", **bearer(cre))
    assert res.status_code == 422
    assert res.json()["code"] in ("validation_error", "invalid_text")
    assert not ServiceRequest.objects.exists()
