"""DISCOM-scale demo load: `urja demo --consumers N` into a fresh PostgreSQL database.

Runs in its own database (the bench database's name + "_demo", created, migrated and dropped
again) so the millions of rows do not pile up in the shared bench database. Measures the whole
`urja demo` (organisation, staff, special accounts, the service-path share and the bulk load)
without the other apps' hooks; the fast load's phases are reported too.
"""

import psycopg

from common import timer

NAME = "demo_scale"
DEFAULT_N = 1_000_000


def _admin_url(settings_dict: dict) -> str:
    host, port = settings_dict.get("HOST") or "127.0.0.1", settings_dict.get("PORT") or 5432
    user, password = settings_dict.get("USER") or "postgres", settings_dict.get("PASSWORD") or ""
    auth = f"{user}:{password}@" if password else f"{user}@"
    return f"postgresql://{auth}{host}:{port}/postgres"


def run(n: int) -> dict:
    from django.core.management import call_command
    from django.db import connections

    from urja.demo import build

    conn = connections["default"]
    if conn.vendor != "postgresql":
        raise SystemExit("demo_scale needs PostgreSQL (URJA_BENCH_DATABASE_URL)")
    name = f"{conn.settings_dict['NAME']}_demo"
    admin = _admin_url(conn.settings_dict)
    with psycopg.connect(admin, autocommit=True) as pg:
        pg.execute(f'DROP DATABASE IF EXISTS "{name}"')
        pg.execute(f'CREATE DATABASE "{name}"')
    conn.close()
    conn.settings_dict["NAME"] = name
    try:
        call_command("migrate", verbosity=0)
        result: dict = {"n": n}
        with timer(result):
            demo = build(consumers=n, hooks=False, stdout=lambda line: None)
        from urja.customers.models import Account

        result["accounts"] = Account.objects.count()
        result["path"] = demo.path
        result.update({f"fast_{k}_s": round(v, 1) for k, v in demo.timings.items()})
    finally:
        conn.close()
        with psycopg.connect(admin, autocommit=True) as pg:
            pg.execute(f'DROP DATABASE IF EXISTS "{name}"')
    return result
