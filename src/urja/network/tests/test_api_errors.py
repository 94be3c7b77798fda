"""An unexpected exception inside an endpoint answers a JSON 500 in the common error format."""

import pytest
from django.test import Client

from urja.core.tests.test_boundary import bearer
from urja.demo.testing import staff_user
from urja.network import api as network_api


@pytest.mark.django_db
def test_an_unexpected_exception_on_the_api_is_a_json_500(monkeypatch, offices):
    def boom(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(network_api.Office.objects, "select_related", boom)
    client = Client(raise_request_exception=False)
    res = client.get("/api/v1/network/offices/X", **bearer(staff_user("admin", None)))
    assert res.status_code == 500
    assert res.json() == {"code": "server_error", "message": res.json()["message"], "details": {}}
    assert "boom" not in res.json()["message"]  # no internals leak
