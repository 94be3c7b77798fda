"""WhatsApp webhook under load: the real server on loopback, 500 inbound messages/s from locust.

Starts gunicorn with the production settings (urja/gunicorn_conf.py; tasks go to a Redis broker, as
in production) against the bench database. locust (FastHttpUser, headless) posts Meta Cloud API
notifications — one text message each ("Hi", "bill", "status", "pay", a menu number), a unique
message id, signed with X-Hub-Signature-256 — from a pool of registered consumers' numbers, at a
constant rate (WA_RATE users × 1 request/s, each on its own phase of the second).

Two phases in the same run, same rate, same signed bodies:
  1. `POST /webhooks/ping` — the trivial view (no database): the floor of this server and client;
  2. `POST /webhooks/whatsapp` — signature check, one INSERT per message (unique by message id),
     the answering job (channels.tasks.answer_inbound) kicked on commit: one Redis SET while a run
     is queued, a task message when none is (core.jobs.kick).
Then a Celery worker (`celery -A urja worker`, WA_DRAIN_WORKERS processes, default 2, the broker the
webhook kicked) answers what was stored — the kicked runs of channels.tasks.answer_inbound (the
conversation, the reply worked out, the outbox row) and the replies' send tasks — as in production,
after the load so that it does not share the two cores with the webhook; the bench waits until every
timed message is answered and reports the rate (`replies_sent`: how many replies the worker had sent by
then; it is stopped there, sending goes on in production).

The rate is locust's own: requests answered over the time from the first request to the last (the
one-second ramp in which the users start on their phases of the second included); the locust process's
start and end are not counted.

Target: 500 messages/s answered 2xx, p95 < 200 ms. Figures: p95/p50/p99 of both phases and their
ratio, failures, accepted messages, replies queued, drain rate, server CPU.

Env: WA_RATE (default 500), WA_NUMBERS (registered numbers, default 200), WA_WORKERS / WA_THREADS
(default: urja/gunicorn_conf.py), WA_BROKER (default redis://127.0.0.1:6379/13), WA_DRAIN_WORKERS (2).
"""

import os
import tempfile
import time
from pathlib import Path

import redis

import common

NAME = "whatsapp_webhook"
DEFAULT_N = 10000
SECRET = "bench-app-secret"

ROOT = Path(__file__).resolve().parent.parent

LOCUSTFILE = """
import hashlib, hmac, json, os, random, time, uuid
import gevent
from locust import task
from locust.contrib.fasthttp import FastHttpUser

NUMBERS = json.loads(os.environ["WA_NUMBERS_JSON"])
SECRET = os.environ["WA_SECRET"].encode()
PATH = os.environ["WA_PATH"]
TEXTS = ["Hi", "bill", "status", "pay", "2", "नमस्ते", "ନମସ୍କାର"]


class Meta(FastHttpUser):
    def on_start(self):
        gevent.sleep(random.random())
        self.due = time.perf_counter()

    def wait_time(self):
        self.due = max(self.due + 1.0, time.perf_counter())
        return self.due - time.perf_counter()

    @task
    def message(self):
        sender = random.choice(NUMBERS)
        doc = {"object": "whatsapp_business_account", "entry": [{"id": "102290129340398", "changes": [{
            "field": "messages", "value": {
                "messaging_product": "whatsapp",
                "metadata": {"display_phone_number": "917777004758", "phone_number_id": "123456123"},
                "contacts": [{"profile": {"name": "Bench"}, "wa_id": sender}],
                "messages": [{"from": sender, "id": "wamid.BENCH" + uuid.uuid4().hex,
                              "timestamp": str(int(time.time())), "type": "text",
                              "text": {"body": random.choice(TEXTS)}}]}}]}]}
        body = json.dumps(doc).encode()
        sig = "sha256=" + hmac.new(SECRET, body, hashlib.sha256).hexdigest()
        self.client.post(PATH, data=body, name=PATH,
                         headers={"Content-Type": "application/json", "X-Hub-Signature-256": sig})
"""


def _setup(count: int) -> list[str]:
    """`count` registered consumers (one account, one mobile each) in the bench section; wa_ids."""
    from escalation_sweep import _setup_offices
    from urja.customers.models import Contact
    from urja.demo import testing

    section = _setup_offices()
    numbers = [f"93{i:08d}" for i in range(count)]
    have = set(
        Contact.objects.filter(kind="mobile", value__in=[f"+91{n}" for n in numbers]).values_list("value", flat=True)
    )
    for i, number in enumerate(numbers):
        if f"+91{number}" not in have:
            testing.domestic_account(section, name=f"WA Bench {i}", mobile=number)
    _vacuum()
    return [f"91{n}" for n in numbers]


def _vacuum() -> None:
    """VACUUM (ANALYZE) the tables a run churns (messages answered, replies claimed and sent: an
    update each). Production runs autovacuum; a server without it (this machine's: autovacuum = off)
    kept every earlier run's dead rows, and the webhook's p95 rose from 61 to 830 ms over a few runs."""
    from django.db import connection

    from urja.channels.models import Conversation, InboundMessage
    from urja.notifications.models import OutboxMessage

    tables = ", ".join(model._meta.db_table for model in (InboundMessage, OutboxMessage, Conversation))
    with connection.cursor() as cur:
        cur.execute(f"VACUUM (ANALYZE) {tables}")


def _locust(port: int, path: str, rate: int, duration: int, numbers: list[str], env: dict) -> dict:
    import json

    with open(Path(tempfile.gettempdir()) / "whatsapp_webhook_locust.log", "a") as log:
        seconds, total = common.locust(
            LOCUSTFILE, port=port, rate=rate, duration=duration, log=log,
            env={**env, "WA_NUMBERS_JSON": json.dumps(numbers), "WA_SECRET": SECRET, "WA_PATH": path},
        )  # fmt: skip

    def ms(key: str) -> float | None:
        return None if total[key] == "N/A" else float(total[key])

    count, rps = int(total["Request Count"]), float(total["Requests/s"])
    return {
        "n": count,
        # locust's own time from the first request to the last, not the process's start and end
        "seconds": count / rps if rps else seconds,
        "wall_seconds": round(seconds, 1),
        "p50_ms": ms("50%"),
        "p95_ms": ms("95%"),
        "p99_ms": ms("99%"),
        "failures": int(total["Failure Count"]),
        "rps": round(float(total["Requests/s"]), 1),
    }


def _last_pk() -> int:
    from urja.channels.models import InboundMessage

    return InboundMessage.objects.order_by("-pk").values_list("pk", flat=True).first() or 0


def _drain(first_pk: int, env: dict, timeout: float = 900) -> dict:
    """A Celery worker answers what the webhook stored: the kicked runs of channels.tasks.answer_inbound
    waiting in the broker, and the send tasks of the replies they queue. Times it until every message
    of the timed phase (pk >= first_pk) is answered; counts the replies queued."""
    import subprocess
    import sys

    from urja.channels.models import InboundMessage
    from urja.notifications.models import OutboxMessage

    mine = InboundMessage.objects.filter(message_id__startswith="wamid.BENCH", pk__gte=first_pk)
    accepted = mine.count()
    workers = os.environ.get("WA_DRAIN_WORKERS", "2")
    worker = subprocess.Popen(
        [str(Path(sys.executable).parent / "celery"), "-A", "urja", "worker", "--concurrency", workers,
         "--loglevel", "WARNING", "--without-heartbeat", "--without-mingle", "--without-gossip"],
        env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    started = time.perf_counter()
    first_answer = None
    try:
        while time.perf_counter() - started < timeout:
            waiting = mine.filter(intent="").count()
            if first_answer is None and waiting < accepted:
                first_answer = time.perf_counter()
            if not waiting:
                break
            time.sleep(0.25)
        finished = time.perf_counter()
    finally:
        common.stop(worker, timeout=30)  # a warm shutdown first: the worker finishes its current batch
    answered = accepted - mine.filter(intent="").count()
    seconds = finished - (first_answer or started)
    keys = [f"reply:whatsapp:{pk}:whatsapp" for pk in mine.values_list("pk", flat=True)]
    replies = OutboxMessage.objects.filter(event="channel.reply", idempotency_key__in=keys)
    return {
        "accepted": accepted,
        "answered": answered,
        "replies_queued": replies.count(),
        "replies_sent": replies.filter(status="sent").count(),
        "drain_workers": int(workers),
        "drain_seconds": round(seconds, 1),
        "drain_per_s": round(answered / seconds, 1) if seconds else None,
    }


def run(n: int) -> dict:
    rate = int(os.environ.get("WA_RATE", "500"))
    numbers = _setup(int(os.environ.get("WA_NUMBERS", "200")))
    duration = max(5, round(n / rate))
    port = common.free_port()
    broker = os.environ.get("WA_BROKER", "redis://127.0.0.1:6379/13")
    env = {
        **os.environ,
        "DEBUG": "0",
        "LOG_LEVEL": "WARNING",
        "PYTHONPATH": str(ROOT / "src"),
        "CELERY_BROKER_URL": broker,
        "URJA_WHATSAPP_APP_SECRET": SECRET,
        "WEB_WORKERS": os.environ.get("WA_WORKERS", ""),
        "WEB_THREADS": os.environ.get("WA_THREADS", ""),
    }
    cpu_before = common.children_cpu()
    redis.Redis.from_url(broker).flushdb()  # nothing left from an earlier run
    with common.web_server(env, port):
        # warm-up, both paths: every worker has imported the job module, opened its database and
        # broker connections (the first webhook request of a worker takes seconds); the target is a
        # sustained rate, not a cold start. Warm-up messages are not counted.
        _locust(port, "/webhooks/ping", rate, 5, numbers, env)
        _locust(port, "/webhooks/whatsapp", rate // 5, 8, numbers, env)
        first_pk = _last_pk() + 1
        trivial = _locust(port, "/webhooks/ping", rate, duration, numbers, env)
        webhook = _locust(port, "/webhooks/whatsapp", rate, duration, numbers, env)
    server_and_locust_cpu = common.children_cpu() - cpu_before
    try:
        drained = _drain(first_pk, env)
    finally:
        redis.Redis.from_url(broker).flushdb()
    return {
        "n": webhook["n"],
        "seconds": webhook["seconds"],
        "locust_wall_seconds": webhook["wall_seconds"],
        "p95_ms": webhook["p95_ms"],
        "p50_ms": webhook["p50_ms"],
        "p99_ms": webhook["p99_ms"],
        "failures": webhook["failures"],
        "achieved_rps": webhook["rps"],
        "trivial_p95_ms": trivial["p95_ms"],
        "trivial_p50_ms": trivial["p50_ms"],
        "trivial_rps": trivial["rps"],
        "trivial_failures": trivial["failures"],
        "p95_ratio_to_trivial": round(webhook["p95_ms"] / trivial["p95_ms"], 2) if trivial["p95_ms"] else None,
        **drained,
        "server_and_locust_cpu_s": round(server_and_locust_cpu, 1),
        "target_rps": rate,
        "target_p95_ms": 200,
    }
