"""core.jobs.kick: many calls while a run is queued and not begun cost one task message (the WhatsApp
webhook kicks the answering job once per message); a run that has begun lets the next call send
another; a refusing broker defers the run and leaves no flag behind. On a real Redis (CI's
URJA_TEST_REDIS_URL, a database of its own)."""

import os
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.test import TestCase

from urja.core import jobs
from urja.core.models import DeferredTask
from urja.core.tests.test_jobs import UNREACHABLE, broker

KEY = "test.kick"
TASK = "urja.core.tasks.ping"


@pytest.fixture
def redis_broker():
    url = os.environ.get("URJA_TEST_REDIS_URL")
    if not url:
        pytest.skip("URJA_TEST_REDIS_URL not set (CI sets it after starting Redis)")
    import redis

    isolated = urlunsplit(urlsplit(url)._replace(path="/11"))
    client = redis.Redis.from_url(isolated)
    client.flushdb()
    with broker(isolated):
        yield client
    client.flushdb()


def _kick(times: int, key: str = KEY) -> None:
    with TestCase.captureOnCommitCallbacks(execute=True):
        for _ in range(times):
            jobs.kick(TASK, key=key)


@pytest.mark.services
@pytest.mark.django_db
def test_kicks_while_a_run_waits_send_one_message(redis_broker):
    _kick(5)
    assert redis_broker.llen("celery") == 1
    assert 0 < redis_broker.ttl("urja:kick:" + KEY) <= jobs.KICK_TTL_SECONDS
    _kick(3)
    assert redis_broker.llen("celery") == 1  # still not begun: nothing more to send
    jobs.kick_taken(KEY)  # the run begins: what is committed after this needs a run of its own
    _kick(4)
    assert redis_broker.llen("celery") == 2
    _kick(2, key="another.key")  # another flag: its own run
    assert redis_broker.llen("celery") == 3


@pytest.mark.services
@pytest.mark.django_db
def test_a_run_the_broker_refuses_is_deferred_and_the_next_kick_tries_again(redis_broker, monkeypatch):
    refusals = []

    def refuse(name, args, kwargs):
        refusals.append(name)
        raise ConnectionError("refused")

    monkeypatch.setattr(jobs, "_publish", refuse)
    _kick(1)
    assert DeferredTask.objects.filter(task=TASK).count() == 1
    assert not redis_broker.exists("urja:kick:" + KEY)  # no flag left to hold back the next kick
    _kick(1)
    assert refusals == [TASK, TASK] and DeferredTask.objects.filter(task=TASK).count() == 2


@pytest.mark.django_db
def test_with_redis_unreachable_every_kick_is_deferred():
    with broker(UNREACHABLE):
        _kick(2)
    assert DeferredTask.objects.filter(task=TASK).count() == 2


@pytest.mark.django_db
def test_without_a_broker_each_kick_runs_the_task(monkeypatch):
    ran = []
    monkeypatch.setattr(jobs, "enqueue_background", lambda name: ran.append(name))
    _kick(3)
    assert ran == [TASK] * 3  # the embedded default: cheap, and the run finds what is waiting
