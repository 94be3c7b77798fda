"""Gunicorn settings for production: `gunicorn -c python:urja.gunicorn_conf urja.wsgi:application`.

Env: WEB_BIND (default 127.0.0.1:8000), WEB_WORKERS (default 2 per core), WEB_THREADS (default 1),
WEB_ACCESS_LOG (a path, or "-" for stderr; default none: the reverse proxy logs requests).

Why these choices (measured with bench/request_api.py, see docs/benchmarks.md):
* single-threaded (sync) workers, two per core: a registration waits for PostgreSQL about as long
  as it computes, so two processes per core keep the cores busy. Threads inside a worker were
  slower at the same load (p95 94-110 ms against 43-76 ms for 3-4 sync workers): the threads
  take turns on the GIL around every one of a request's ~20 database round trips. Sync workers
  do not keep connections alive, so they belong behind a reverse proxy (as usual in production);
* the application is imported once in the master before forking (preload_app): workers start at
  once and share the imported code, URL patterns, API schema, holiday calendars, notification
  templates and the broker client copy-on-write, instead of each building them on its first
  requests (~0.5 s of work per worker, during which its requests queue);
* no database or broker connection is opened in the master, and each worker drops any database
  connection it might have inherited, so no connection is ever shared between processes;
* with a Redis broker, the workers send tasks through a Redis transport that keeps one client per
  broker channel (`redis_transport`): kombu's builds a new redis client for every task it sends
  (~550 Python calls, a third of a send), and a WhatsApp webhook sends one task per message
  (bench/whatsapp_webhook.py, docs/benchmarks.md). The connections, their pool and the messages
  are kombu's own; only the client object in front of the pool is kept.
"""

import os

bind = os.environ.get("WEB_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("WEB_WORKERS") or 2 * (os.cpu_count() or 1))
threads = int(os.environ.get("WEB_THREADS") or 1)
worker_class = "gthread" if threads > 1 else "sync"
preload_app = True
accesslog = os.environ.get("WEB_ACCESS_LOG") or None
# a worker that stops answering (stuck on a lock, a dead backend) is replaced
timeout = 60
graceful_timeout = 30


def when_ready(server) -> None:
    """Runs in the master before the workers are forked."""
    warm()


def post_fork(server, worker) -> None:
    from django.db import connections

    connections.close_all()


def warm() -> None:
    """Build what every request needs and that touches neither the database nor the broker."""
    from django.conf import settings
    from django.urls import get_resolver

    from urja.core import calendars
    from urja.notifications import rendering

    len(get_resolver().url_patterns)  # imports every app's views and builds the API schema
    calendars.calendar_for(state=settings.URJA_STATE)  # the state's holidays for five years
    rendering.validate()  # parses the notification templates file and compiles every text
    if settings.CELERY_BROKER_URL:
        from kombu import Connection

        from urja.celery import app

        if app.conf.broker_url.startswith("redis://") and not app.conf.broker_transport:
            app.conf.broker_transport = redis_transport()
        # imports the broker's transport (the redis client: ~0.4 s) without connecting to it
        Connection(app.conf.broker_url).get_transport_cls()
        app.finalize()
        len(app.amqp.queues)  # builds the message protocol and task queues (still no connection)


def redis_transport():
    """kombu's Redis transport, but a channel sends through one redis client, built again only when
    kombu replaces the channel's connection pool (after a broker error), instead of one per task."""
    from kombu.transport import redis

    class OneClientChannel(redis.Channel):
        _sending_client = None

        def _create_client(self, asynchronous=False):
            if asynchronous:  # the consumer's client (a Celery worker's); kombu keeps that one itself
                return super()._create_client(asynchronous=True)
            pool = self.pool
            client = self._sending_client
            if client is None or client.connection_pool is not pool:
                client = self._sending_client = super()._create_client()
            return client

    class Transport(redis.Transport):
        Channel = OneClientChannel

    return Transport
