"""`urja simulate` through the services on PostgreSQL (issue 10). n = consumer-months.

DEFAULT_N = 24,000 (12 months × 2,000 consumers, the issue's acceptance run). The issue's bench
size, 12 × 20,000 (`make bench B=simulate N=240000`), took 4,294 s (72 min) with 0 violations on the
2-core machine (2026-12-06 evening; docs/simulation.md, "Cost", "12 × 20,000"): not the default, so
that `make bench` stays short. Beyond 2,000 consumers the per-event samples stay at the
2,000-consumer figures and the rest go through the bulk paths (simulation.driver.DETAIL_CONSUMERS).

Runs on a database of its own (`<bench db>_sim`, dropped afterwards): the simulation bills the
cycles of the months it lives, so it needs a database whose last 12 months have not been billed.

JSON line (bench/run.py adds per_s = consumer-months/s and peak_rss_mb): n, seconds, violations
(must be 0), the time per phase, and `ratio` = total time / `baseline_seconds`, the baseline timed
in the same run: the bill runs of the same data (set-based, one statement per chunk) — how much the
per-event services (readings with VEE, payments, complaints, messages …) cost next to them.

Env: SIM_MONTHS (default 12), SIM_SEED (default 1), SIM_FAULTS (default 1).
"""

import os
import sys

import psycopg

from common import timer

NAME = "simulate"
DEFAULT_N = 24_000


def _admin_url(settings: dict) -> str:
    host, port = settings.get("HOST") or "127.0.0.1", settings.get("PORT") or 5432
    user, password = settings.get("USER") or "postgres", settings.get("PASSWORD") or ""
    auth = f"{user}:{password}@" if password else f"{user}@"
    return f"postgresql://{auth}{host}:{port}/postgres"


def run(n: int) -> dict:
    import logging

    from django.core.management import call_command
    from django.db import connections

    from urja.demo.simulation import simulate

    months = int(os.environ.get("SIM_MONTHS", "12"))
    consumers = max(1, n // months)
    conn = connections["default"]
    if conn.vendor != "postgresql":
        raise SystemExit("the simulate bench needs PostgreSQL (URJA_BENCH_DATABASE_URL)")
    for name in ("celery", "urja"):
        logging.getLogger(name).setLevel(logging.WARNING)
    for name in ("urja.core.jobs", "urja.billing.runs"):  # the deliberate faults' warnings
        logging.getLogger(name).setLevel(logging.ERROR)
    name = f"{conn.settings_dict['NAME']}_sim"
    admin = _admin_url(conn.settings_dict)
    with psycopg.connect(admin, autocommit=True) as pg:
        pg.execute(f'DROP DATABASE IF EXISTS "{name}"')
        pg.execute(f'CREATE DATABASE "{name}"')
    conn.close()
    conn.settings_dict["NAME"] = name
    try:
        call_command("migrate", verbosity=0)
        result: dict = {"n": consumers * months, "months": months, "consumers": consumers}
        with timer(result):
            report = simulate(
                months=months,
                consumers=consumers,
                seed=int(os.environ.get("SIM_SEED", "1")),
                faults=os.environ.get("SIM_FAULTS", "1") == "1",
                keep_going=True,
                # month-by-month progress on stderr; the JSON line stays alone on stdout
                stdout=lambda line: print(line, file=sys.stderr, flush=True),
            )
        summary = report.as_dict()
        result["violations"] = summary["violations"]
        result.update({k: summary[k] for k in ("bills", "payments", "readings", "requests")})
        phases = summary["phase_seconds"]
        result["phase_seconds"] = phases
        bill_runs = phases.get("bill_runs") or 0
        result["baseline"] = "bill_runs"
        result["baseline_seconds"] = round(bill_runs, 1)
        result["ratio"] = round(result["seconds"] / bill_runs, 1) if bill_runs else None
        result["ms_per_consumer_month"] = round(1000 * result["seconds"] / result["n"], 1)
    finally:
        conn.close()
        with psycopg.connect(admin, autocommit=True) as pg:
            pg.execute(f'DROP DATABASE IF EXISTS "{name}"')
    return result
