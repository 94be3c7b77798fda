"""Registration API under load: the real server on loopback, 100 requests/s from locust (headless).

Starts gunicorn with the production settings (urja/gunicorn_conf.py: the app preloaded, two sync
workers per core; tasks queued to a Redis broker) against the bench database, warms it up with
requests the channel matrix refuses (nothing is written), then locust drives
POST /api/v1/servicedesk/requests at a constant 100 requests/s (100 users × 1 request/s, each on
its own phase of the second) with a CRE's API token: complaints and requests of several types on a
pool of accounts, through the channels the matrix allows (repeats of an open request exercise the
"linked, not duplicated" path). N is the number of requests to send (the run lasts N / 100
seconds). Target: p95 < 100 ms.

Every run starts from the same state: requests left open on the bench accounts by an earlier run
are closed first, so the mix of new registrations and linked repeats does not drift from run to run
(with 300 accounts and 7 types, about 3/4 of N=1500 requests are new registrations). The result
reports how many were created and linked, and the CPU seconds used by the server (all gunicorn
processes, start-up included) and by locust.

Env: REQUEST_API_RATE (default 100 requests/s), REQUEST_API_ACCOUNTS (default 300),
REQUEST_API_WORKERS / REQUEST_API_THREADS (default: those of urja/gunicorn_conf.py).
"""

import os
from pathlib import Path

import common

NAME = "request_api"
DEFAULT_N = 3000

ROOT = Path(__file__).resolve().parent.parent

LOCUSTFILE = """
import json, os, random, time
import gevent
from locust import HttpUser, task

ACCOUNTS = json.loads(os.environ["SD_ACCOUNTS"])
TOKEN = os.environ["SD_TOKEN"]
KINDS = [
    ("no_power_supply", "no_power_supply", "call_centre"),
    ("no_power_supply", "line_breakdown", "whatsapp"),
    ("meter_faulty", "meter_stuck", "call_centre"),
    ("meter_reading", "meter_reading", "app"),
    ("bill_revision", "disputed_bill", "care_centre"),
    ("voltage_fluctuation", "voltage_fluctuation", "website"),
    ("meter_testing", "meter_running_fast", "email"),
    ("shifting", "meter_shifting", "section_office"),
]


class Desk(HttpUser):
    # One client sending one request a second on its own schedule. Clients are not in step: each
    # starts at a random moment of the first second and keeps that phase (a request is due 1 s
    # after the previous one was due, or at once when late). locust's constant_throughput(1) paces
    # from the moment the user object was created instead, so 100 users created together send
    # together: bursts of ~60 requests within 100 ms every second (see docs/benchmarks.md).

    def on_start(self):
        gevent.sleep(random.random())
        self.due = time.perf_counter()

    def wait_time(self):
        self.due = max(self.due + 1.0, time.perf_counter())
        return self.due - time.perf_counter()

    @task
    def register(self):
        kind, subtype, channel = random.choice(KINDS)
        self.client.post(
            "/api/v1/servicedesk/requests",
            json={"type": kind, "subtype": subtype, "channel": channel,
                  "consumer_number": random.choice(ACCOUNTS), "description": "load test"},
            headers={"Authorization": "Bearer " + TOKEN},
            name="POST /servicedesk/requests",
        )
"""


def _setup(accounts: int) -> tuple[list[str], str]:
    from escalation_sweep import _setup_offices
    from urja.core.models import ApiToken, Role, StaffProfile
    from urja.customers.models import Account
    from urja.demo import testing
    from urja.servicedesk import catalogue

    try:
        catalogue.active_schedule()
    except Exception:
        catalogue.load_file("servicedesk/oerc_sop.toml")
    section = _setup_offices()
    _close_left_open(section)
    have = list(Account.objects.filter(section=section).values_list("consumer_number", flat=True)[:accounts])
    for i in range(len(have), accounts):
        acc = testing.domestic_account(section, name=f"Bench Consumer {i}", mobile=f"94{i:08d}"[:10])
        have.append(acc.consumer_number)
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.filter(username="bench_cre").first()
    if user is None:
        user = get_user_model().objects.create_user(username="bench_cre", password="bench-pass-1")
        StaffProfile.objects.create(user=user, role=Role.CRE, office=section)
    _, raw = ApiToken.issue(user=user, name="bench")
    return have, raw


def _close_left_open(section) -> None:
    """Close what earlier runs left open on the bench accounts (bench data only, set-based)."""
    from django.utils import timezone

    from urja.servicedesk.models import EscalationClock, ServiceRequest

    left = ServiceRequest.objects.filter(account__section=section).exclude(status__in=["closed", "cancelled"])
    EscalationClock.objects.filter(request__in=left).update(next_escalation_ts=None)
    left.update(status="closed", closed_at=timezone.now(), resolution_code="bench_reset")


def _registered_since(moment) -> tuple[int, int]:
    """(requests created, repeats linked) on the bench accounts since `moment`."""
    from urja.servicedesk.models import RequestEvent

    events = RequestEvent.objects.filter(at__gte=moment, request__account__section__code="BSWX")
    return events.filter(kind="registered").count(), events.filter(kind="repeat").count()


def _purge(broker: str) -> None:
    if broker.startswith("redis://"):
        import redis

        redis.Redis.from_url(broker).flushdb()


def _warm_up(port: int, token: str, requests: int = 48) -> None:
    """Before the timed load: registrations the channel matrix refuses (nothing is written), sent
    in parallel so that every worker has opened its database connection and read the catalogue
    once. The target is a sustained rate, not a cold start."""
    import http.client
    import json
    from concurrent.futures import ThreadPoolExecutor

    body = json.dumps({"type": "bill_revision", "subtype": "disputed_bill", "channel": "whatsapp"})

    def one(_):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            headers = {"Authorization": "Bearer " + token, "Content-Type": "application/json"}
            conn.request("POST", "/api/v1/servicedesk/requests", body=body, headers=headers)
            return conn.getresponse().status
        finally:
            conn.close()

    with ThreadPoolExecutor(16) as pool:
        statuses = list(pool.map(one, range(requests)))
    if any(status != 400 for status in statuses):
        raise RuntimeError(f"warm-up: expected 400 (channel not allowed), got {sorted(set(statuses))}")


def run(n: int) -> dict:
    import json

    rate = int(os.environ.get("REQUEST_API_RATE", "100"))
    accounts, token = _setup(int(os.environ.get("REQUEST_API_ACCOUNTS", "300")))
    duration = max(5, round(n / rate))
    port = common.free_port()
    # Production configuration: tasks (the acknowledgement SMS) go to a Redis broker instead of
    # running inside the request (REQUEST_API_BROKER; the queue is emptied afterwards).
    broker = os.environ.get("REQUEST_API_BROKER", "redis://127.0.0.1:6379/14")
    env = {
        **os.environ,
        "DEBUG": "0",
        "LOG_LEVEL": "WARNING",
        "PYTHONPATH": str(ROOT / "src"),
        "CELERY_BROKER_URL": broker,
        # the production settings (urja/gunicorn_conf.py); REQUEST_API_WORKERS / _THREADS override them
        "WEB_WORKERS": os.environ.get("REQUEST_API_WORKERS", ""),
        "WEB_THREADS": os.environ.get("REQUEST_API_THREADS", ""),
    }
    from django.utils import timezone

    began = timezone.now()
    cpu_before = common.children_cpu()
    try:
        with common.web_server(env, port):
            _warm_up(port, token)
            seconds, total = common.locust(
                LOCUSTFILE, port=port, rate=rate, duration=duration,
                env={**env, "SD_ACCOUNTS": json.dumps(accounts), "SD_TOKEN": token},
            )  # fmt: skip
            locust_cpu = common.children_cpu() - cpu_before
    finally:
        _purge(broker)
    server_cpu = common.children_cpu() - cpu_before - locust_cpu
    created, linked = _registered_since(began)
    count = int(total["Request Count"])
    return {
        "n": count,
        "seconds": seconds,
        "p95_ms": float(total["95%"]),
        "p50_ms": float(total["50%"]),
        "p99_ms": float(total["99%"]),
        "failures": int(total["Failure Count"]),
        "achieved_rps": round(float(total["Requests/s"]), 1),
        "created": created,
        "linked": linked,
        "server_cpu_s": round(server_cpu, 1),
        "locust_cpu_s": round(locust_cpu, 1),
        "target_rps": rate,
        "target_p95_ms": 100,
    }
