"""Helpers for benchmarks: a fixed organisation and bulk accounts to work on."""

import time
from contextlib import contextmanager


@contextmanager
def timer(result: dict):
    start = time.perf_counter()
    yield
    result["seconds"] = time.perf_counter() - start


def raw_copy(path, *, columns: str, index: str, unique: bool = False) -> float:
    """Seconds to COPY the CSV at `path` (with a header row) into a temporary table of `columns` with
    one index on the columns `index` names: the ceiling a file import is measured against (no
    validation, no lookups, one indexed table)."""
    from django.db import connection, transaction

    with transaction.atomic(), connection.cursor() as cur:
        cur.execute(f"CREATE TEMP TABLE raw_copy ({columns}) ON COMMIT DROP")
        cur.execute(f"CREATE {'UNIQUE ' if unique else ''}INDEX ON raw_copy ({index})")
        started = time.perf_counter()
        with (
            cur.connection.cursor() as pcur,
            pcur.copy("COPY raw_copy FROM STDIN (FORMAT csv, HEADER)") as copy,
            open(path, "rb") as fh,
        ):
            while chunk := fh.read(1 << 20):
                copy.write(chunk)
        return time.perf_counter() - started


def bulk_accounts(n: int, *, office_prefix: str, number_prefix: str, name: str):
    """n plain domestic accounts (one consumer each) in a new test section, bulk-inserted."""
    from decimal import Decimal

    from urja.customers.models import Account, Consumer
    from urja.demo.testing import office_tree

    section = office_tree(prefix=office_prefix)["section1"]
    consumers = Consumer.objects.bulk_create([Consumer(name=f"{name} {i}") for i in range(n)], batch_size=5000)
    accounts = Account.objects.bulk_create(
        [
            Account(
                consumer_number=f"{number_prefix}{i:08d}",
                consumer=c,
                premises_address="Bench",
                category="domestic",
                supply_type="lt_1ph",
                sanctioned_load=Decimal(2),
                section=section,
                office_path=section.path,
            )
            for i, c in enumerate(consumers)
        ],
        batch_size=5000,
    )
    return section, accounts


# --- HTTP load benchmarks: a production web server and a locust load generator ---------------------

ROOT = __import__("pathlib").Path(__file__).resolve().parent.parent


def children_cpu() -> float:
    """CPU seconds of the finished child processes (server, load generator)."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, timeout: float = 60) -> None:
    import socket

    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError("the server did not start")


@contextmanager
def web_server(env: dict, port: int):
    """gunicorn with the production settings (urja/gunicorn_conf.py) on `port`, stopped on exit."""
    import subprocess
    import sys
    from pathlib import Path

    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "gunicorn"), "-c", "python:urja.gunicorn_conf", "urja.wsgi:application"],
        env={**env, "WEB_BIND": f"127.0.0.1:{port}"}, cwd=ROOT,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_for_port(port)
        yield server
    finally:
        stop(server)


def stop(process, timeout: float = 10) -> None:
    """Terminate a child process (a server, a worker); kill it when it has not ended after `timeout` s."""
    import subprocess

    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def locust(locustfile: str, *, port: int, rate: int, duration: int, env: dict, log=None) -> tuple[float, dict]:
    """Run `locustfile` headless with `rate` users for `duration` s against the local server:
    (wall seconds, locust's "Aggregated" stats row)."""
    import csv
    import subprocess
    import sys
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "locustfile.py"
        path.write_text(locustfile)
        prefix = str(Path(tmp) / "stats")
        started = time.perf_counter()
        subprocess.run(
            [str(Path(sys.executable).parent / "locust"), "-f", str(path), "--headless", "--users", str(rate),
             "--spawn-rate", str(rate), "--run-time", f"{duration}s", "--host", f"http://127.0.0.1:{port}",
             "--csv", prefix, "--only-summary", "--loglevel", "WARNING"],
            env=env, cwd=tmp, check=False, stdout=subprocess.DEVNULL, stderr=log or subprocess.DEVNULL,
        )  # fmt: skip
        seconds = time.perf_counter() - started
        with open(f"{prefix}_stats.csv", newline="") as fh:
            return seconds, {row["Name"]: row for row in csv.DictReader(fh)}["Aggregated"]
