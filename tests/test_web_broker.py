"""The web workers' broker transport (urja/gunicorn_conf.py `redis_transport`): issue 13's
whatsapp_webhook bench sends one task per WhatsApp message, and kombu's Redis transport built a redis
client for each (~550 Python calls, a third of a send). In tests/ because the composition root
(gunicorn_conf) is above every app's layer."""

import json
import os
from urllib.parse import urlsplit, urlunsplit

import pytest

from urja.core import jobs


def test_a_web_worker_sends_its_tasks_through_one_redis_client(monkeypatch):
    """kombu's Redis transport builds a redis client for every task it sends (~550 Python calls, a third
    of a send: one per WhatsApp message). The web workers' transport (gunicorn_conf.redis_transport)
    keeps one per channel, and builds another only when kombu has replaced the channel's connection
    pool (after a broker error). No broker needed: nothing is sent."""
    import redis
    from kombu import Connection

    from urja import gunicorn_conf

    transport = Connection("redis://127.0.0.1:1/0", transport=gunicorn_conf.redis_transport()).get_transport_cls()
    channel = transport.Channel.__new__(transport.Channel)  # the constructor would ping the broker
    channel.Client, channel._pool = redis.Redis, redis.ConnectionPool(host="127.0.0.1", port=1)
    built = []
    init = redis.Redis.__init__
    monkeypatch.setattr(redis.Redis, "__init__", lambda self, *a, **k: built.append(1) or init(self, *a, **k))
    clients = []
    for _ in range(5):
        with channel.conn_or_acquire() as sending:
            clients.append(sending)
    assert len(built) == 1 and all(c is clients[0] for c in clients)
    channel._pool = redis.ConnectionPool(host="127.0.0.1", port=1)  # kombu dropped the old pool
    with channel.conn_or_acquire() as sending:
        assert sending is not clients[0] and sending.connection_pool is channel._pool
    assert len(built) == 2


@pytest.mark.services
@pytest.mark.django_db
def test_tasks_sent_through_a_real_redis_are_celery_messages(monkeypatch):
    """The same transport on a real Redis (CI's URJA_TEST_REDIS_URL, a database of its own): every task
    arrives as Celery's message, and after the first send none builds a client."""
    url = os.environ.get("URJA_TEST_REDIS_URL")
    if not url:
        pytest.skip("URJA_TEST_REDIS_URL not set (CI sets it after starting Redis)")
    import redis

    from urja import gunicorn_conf
    from urja.celery import app
    from urja.core.tests.test_jobs import broker

    isolated = urlunsplit(urlsplit(url)._replace(path="/12"))
    queue = redis.Redis.from_url(isolated)
    queue.delete("celery")
    saved = app.conf.broker_transport
    app.conf.broker_transport = gunicorn_conf.redis_transport()
    built = []
    init = redis.Redis.__init__
    try:
        with broker(isolated):
            assert jobs.send("urja.core.tasks.ping", 1)
            monkeypatch.setattr(redis.Redis, "__init__", lambda self, *a, **k: built.append(1) or init(self, *a, **k))
            for pk in range(2, 6):
                assert jobs.send("urja.core.tasks.ping", pk)
        assert queue.llen("celery") == 5 and not built
        sent = [json.loads(m) for m in queue.lrange("celery", 0, -1)]
        assert {m["headers"]["task"] for m in sent} == {"urja.core.tasks.ping"}
        assert sorted(m["headers"]["argsrepr"] for m in sent) == [f"[{pk}]" for pk in range(1, 6)]
    finally:
        app.conf.broker_transport = saved
        queue.delete("celery")
