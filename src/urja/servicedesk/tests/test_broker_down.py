"""A registration with the broker down: the request is committed and answers 201, the message call is
stored as a DeferredTask (core.jobs) and sent later."""

import os
import time
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.test import Client
from django.utils import timezone

from urja.core import jobs
from urja.core.models import ApiToken, DeferredTask
from urja.core.tests.test_jobs import UNREACHABLE, broker
from urja.demo import testing
from urja.notifications.models import OutboxMessage
from urja.servicedesk import catalogue


def _register(offices):
    catalogue.load_file("servicedesk/oerc_sop.toml")
    account = testing.domestic_account(offices["section1"])
    _, raw = ApiToken.issue(user=testing.staff_user("cre", offices["division1"]), name="t")
    body = {"type": "meter_faulty", "subtype": "meter_stuck", "channel": "call_centre"}
    return Client(headers={"Authorization": f"Bearer {raw}"}).post(
        "/api/v1/servicedesk/requests", {**body, "consumer_number": account.consumer_number}, "application/json"
    )


@pytest.mark.django_db(transaction=True)
def test_registration_answers_201_with_the_broker_down_and_the_message_call_is_deferred(offices):
    started = time.monotonic()
    with broker(UNREACHABLE):
        response = _register(offices)
    assert response.status_code == 201, response.content  # was 500: the on_commit .delay() raised
    message = OutboxMessage.objects.get()
    deferred = DeferredTask.objects.get()
    assert (deferred.task, deferred.args) == ("urja.notifications.tasks.send_message", [message.pk])
    assert "111" in deferred.last_error or "refused" in deferred.last_error.lower()
    assert deferred.next_try_at > timezone.now()
    assert time.monotonic() - started < 15


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_deferred_registration_message_is_enqueued_on_a_real_redis_once_it_is_back(offices):
    url = os.environ.get("URJA_TEST_REDIS_URL")
    if not url:
        pytest.skip("URJA_TEST_REDIS_URL not set (CI sets it after starting Redis)")
    import redis

    with broker(UNREACHABLE):
        assert _register(offices).status_code == 201
    deferred = DeferredTask.objects.get()
    # A database of its own on that Redis, so no worker of anybody else's picks the message up.
    parts = urlsplit(url)
    isolated = urlunsplit(parts._replace(path="/14"))
    client = redis.Redis.from_url(isolated)
    client.delete("celery")
    try:
        with broker(isolated):
            counts = jobs.retry_deferred(now=deferred.next_try_at)
        assert counts == {"sent": 1, "failed": 0}
        assert not DeferredTask.objects.exists()
        assert client.llen("celery") == 1
        assert b"urja.notifications.tasks.send_message" in client.lindex("celery", 0)
    finally:
        client.delete("celery")
