"""Registration API under load: the real server on loopback, 100 requests/s from locust (headless).

Starts gunicorn (the production server: REQUEST_API_WORKERS processes, default 3, tasks queued to
a Redis broker) against the bench database, then locust drives
POST /api/v1/servicedesk/requests at a constant 100 requests/s (100 users × 1 request/s) with a
CRE's API token: complaints and requests of several types on a pool of accounts, through the
channels the matrix allows (repeats of an open request exercise the "linked, not duplicated" path).
N is the number of requests to send (the run lasts N / 100 seconds). Target: p95 < 100 ms.

Env: REQUEST_API_RATE (default 100 requests/s), REQUEST_API_ACCOUNTS (default 300).
"""

import csv
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

NAME = "request_api"
DEFAULT_N = 3000

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent

LOCUSTFILE = """
import json, os, random
from locust import HttpUser, constant_throughput, task

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
    wait_time = constant_throughput(1)

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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _setup(accounts: int) -> tuple[list[str], str]:
    from escalation_sweep import _setup_offices
    from urja.core import testing
    from urja.core.models import ApiToken, Role, StaffProfile
    from urja.customers.models import Account
    from urja.servicedesk import catalogue

    try:
        catalogue.active_schedule()
    except Exception:
        catalogue.load_file("servicedesk/oerc_sop.toml")
    section = _setup_offices()
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


def _purge(broker: str) -> None:
    if broker.startswith("redis://"):
        import redis

        redis.Redis.from_url(broker).flushdb()


def _wait_for(port: int, timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError("the server did not start")


def run(n: int) -> dict:
    import json

    rate = int(os.environ.get("REQUEST_API_RATE", "100"))
    accounts, token = _setup(int(os.environ.get("REQUEST_API_ACCOUNTS", "300")))
    duration = max(5, round(n / rate))
    port = _free_port()
    # Production configuration: tasks (the acknowledgement SMS) go to a Redis broker instead of
    # running inside the request (REQUEST_API_BROKER; the queue is emptied afterwards).
    broker = os.environ.get("REQUEST_API_BROKER", "redis://127.0.0.1:6379/14")
    env = {
        **os.environ,
        "DEBUG": "0",
        "LOG_LEVEL": "WARNING",
        "PYTHONPATH": str(ROOT / "src"),
        "CELERY_BROKER_URL": broker,
    }
    workers = os.environ.get("REQUEST_API_WORKERS", "3")
    server = subprocess.Popen(
        [
            str(VENV_BIN / "gunicorn"),
            "urja.wsgi:application",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            workers,
            "--access-logfile",
            "/dev/null",
        ],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for(port)
        with tempfile.TemporaryDirectory() as tmp:
            locustfile = Path(tmp) / "locustfile.py"
            locustfile.write_text(LOCUSTFILE)
            prefix = str(Path(tmp) / "stats")
            started = time.perf_counter()
            subprocess.run(
                [
                    str(VENV_BIN / "locust"),
                    "-f",
                    str(locustfile),
                    "--headless",
                    "--users",
                    str(rate),
                    "--spawn-rate",
                    str(rate),
                    "--run-time",
                    f"{duration}s",
                    "--host",
                    f"http://127.0.0.1:{port}",
                    "--csv",
                    prefix,
                    "--only-summary",
                    "--loglevel",
                    "WARNING",
                ],
                env={**env, "SD_ACCOUNTS": json.dumps(accounts), "SD_TOKEN": token},
                cwd=tmp,
                check=False,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            seconds = time.perf_counter() - started
            with open(f"{prefix}_stats.csv", newline="") as fh:
                rows = {row["Name"]: row for row in csv.DictReader(fh)}
    finally:
        _purge(broker)
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
    total = rows["Aggregated"]
    count = int(total["Request Count"])
    return {
        "n": count,
        "seconds": seconds,
        "p95_ms": float(total["95%"]),
        "p50_ms": float(total["50%"]),
        "p99_ms": float(total["99%"]),
        "failures": int(total["Failure Count"]),
        "achieved_rps": round(float(total["Requests/s"]), 1),
        "target_rps": rate,
        "target_p95_ms": 100,
    }
