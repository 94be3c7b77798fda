"""A bill run started from the web returns at once in the embedded default (no broker): its
partitions run in the background worker thread, and the run's progress shows them advancing."""

import threading
import time

import pytest

from urja.billing import runs
from urja.billing.models import Bill
from urja.demo.testing import staff_user


@pytest.mark.django_db(transaction=True)
def test_a_run_started_from_the_web_returns_at_once_and_finishes_in_the_background(
    client, make_account, offices, settings, monkeypatch
):
    settings.URJA_BACKGROUND_THREADS = True
    account = make_account()
    gate = threading.Event()
    real = runs.process_partition

    def gated(partition_id, **kwargs):
        assert gate.wait(20)  # opened only once the response has arrived
        return real(partition_id, **kwargs)

    monkeypatch.setattr(runs, "process_partition", gated)
    client.force_login(staff_user("billing_officer", offices["division1"]))
    started = time.monotonic()
    response = client.post(
        "/api/v1/billing/runs",
        {"cycle": "C01", "period": "2025-06", "bill_date": "2025-07-02"},
        content_type="application/json",
    )
    assert response.status_code == 200, response.content
    assert time.monotonic() - started < 10
    run = response.json()
    assert run["status"] == "running" and run["done"] == 0 and run["accounts_due"] == 1
    gate.set()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        progress = client.get(f"/api/v1/billing/runs/{run['run']}").json()
        if progress["status"] == "completed":
            break
        time.sleep(0.1)
    assert progress["status"] == "completed" and progress["done"] == 1 and progress["bills"] == 1
    assert Bill.objects.filter(account=account).count() == 1
