"""The consumer portal under load: a consumer's home (balance, latest bill, last payment) and bill list
at 200 requests/s from locust, against gunicorn with the production settings, on N accounts.

Setup (not timed, kept between runs: a rerun adds only what is missing): N consumers and accounts in
a bench office tree (PBU…), PORTAL_BILLS monthly bills each (default 6, so 6 N bills), their ledger
charges, and the previous bill paid online (one posted payment and its ledger credit per account) —
set-based on the server (INSERT … SELECT generate_series), then ANALYZE. PORTAL_USERS consumers spread
over the N accounts (default 200, one per locust user) get a login and a signed-in session (the
server's session engine: the database, or read through Redis — `cached_db` — with URJA_REDIS_URL set),
the account already picked, so the timed requests are the pages only.

Two phases in the same run, same rate, same cookies:
  1. `GET /webhooks/ping` — the trivial view (no database, the session never read): the floor of
     this server and client;
  2. `GET /portal/` and `GET /portal/bills/` alternately — session and user lookup, the scoped
     account, the ledger balance, the latest bill, the last payment / the last 24 bills, rendered.
Each user sends one request a second on its own phase of the second (as request_api).

Target: p95 < 100 ms at 200 requests/s with N = 1,000,000. Figures: p95/p50/p99 of both phases and
their ratio, failures, achieved rate, server+locust CPU, the setup time and the query plans of the
per-account reads (index scans, not sequential scans).

Before the load, `page_costs`: each page through Django's WSGI handler in this process — queries,
CPU ms and Python function calls per page (the last does not move with the machine's load).

The load average of the machine (1 minute) before the load and after it is in the output (`load_before`,
`load_after`): the machine is shared, and every figure is read next to it.

Env: N (accounts), URJA_REDIS_URL (sessions through Redis), PORTAL_RATE (default 200), PORTAL_BILLS (default 6), PORTAL_USERS (default 200),
PORTAL_WORKERS / PORTAL_THREADS (default: urja/gunicorn_conf.py), PORTAL_SECONDS (default 30; 0: the
page costs only), PORTAL_PROFILE=<page> (that page's CPU profile to stderr).
"""

import os
import tempfile
import time
from pathlib import Path

import common

NAME = "portal_api"
DEFAULT_N = 1_000_000
PREFIX = "PB"  # consumer numbers PB0000000001 …, bench offices PBU / PBC / PBD0 …

ROOT = Path(__file__).resolve().parent.parent

LOCUSTFILE = """
import json, os, random, time
import gevent
from locust import task
from locust.contrib.fasthttp import FastHttpUser

SESSIONS = json.loads(os.environ["PB_SESSIONS"])
PATHS = json.loads(os.environ["PB_PATHS"])
COUNTER = iter(range(10**9))


class Consumer(FastHttpUser):
    def on_start(self):
        self.cookie = "sessionid=" + SESSIONS[next(COUNTER) % len(SESSIONS)]
        self.turn = random.randrange(len(PATHS))
        gevent.sleep(random.random())
        self.due = time.perf_counter()

    def wait_time(self):
        self.due = max(self.due + 1.0, time.perf_counter())
        return self.due - time.perf_counter()

    @task
    def page(self):
        self.turn = (self.turn + 1) % len(PATHS)
        path = PATHS[self.turn]
        with self.client.get(path, name=path, headers={"Cookie": self.cookie}, catch_response=True) as r:
            if r.status_code != 200:
                r.failure(f"status {r.status_code}")
"""


def _exec(sql: str, params=None) -> int:
    from django.db import connection

    with connection.cursor() as c:
        c.execute(sql, params)
        return c.rowcount


def _offices() -> list:
    from urja.network.models import Office
    from urja.network.services import create_office

    def office(code, name, level, parent=None):
        return Office.objects.filter(code=code).first() or create_office(
            code=code, name=name, level=level, parent=parent
        )

    root = office(f"{PREFIX}U", "Portal bench utility", "utility")
    circle = office(f"{PREFIX}C", "Portal bench circle", "circle", root)
    sections = []
    for i in range(4):
        div = office(f"{PREFIX}D{i}", f"Portal bench division {i}", "division", circle)
        sub = office(f"{PREFIX}S{i}", f"Portal bench sub-division {i}", "subdivision", div)
        sections.append(office(f"{PREFIX}X{i}", f"Portal bench section {i}", "section", sub))
    return sections


def setup(n: int, bills: int) -> dict:
    """N accounts with `bills` bills, ledger and one payment each (only the missing ones are added)."""
    from django.db import connection, transaction

    from urja.customers.models import Account

    started = time.perf_counter()
    sections = _offices()
    have = Account.objects.filter(consumer_number__startswith=PREFIX).count()
    ids = "ARRAY[" + ",".join(str(s.pk) for s in sections) + "]"
    paths = "ARRAY[" + ",".join(f"'{s.path}'" for s in sections) + "]"
    step = 200_000
    for first in range(have + 1, n + 1, step):
        with transaction.atomic():  # a chunk is all in or not at all: a rerun adds exactly what is missing
            _chunk(first, min(n, first + step - 1), bills, ids, paths)
        print(f"portal_api setup: {min(n, first + step - 1)} accounts in {time.perf_counter() - started:.0f} s",
              flush=True)  # fmt: skip
    if have < n:
        with connection.cursor() as c:
            c.execute(
                "ANALYZE customers_consumer; ANALYZE customers_account; ANALYZE billing_bill;"
                " ANALYZE billing_ledgerentry; ANALYZE payments_payment"
            )
    return {
        "setup_seconds": round(time.perf_counter() - started, 1),
        "accounts_added": max(0, n - have),
    }


def _chunk(first: int, last: int, bills: int, ids: str, paths: str) -> None:
    """One chunk of accounts g = first … last: consumers, accounts, bills, ledger, one payment."""
    g = "generate_series(%s::bigint, %s::bigint) g"
    # consumer and account: the account number carries g; the consumer is found by its name
    _exec(
        "INSERT INTO customers_consumer (name, kind, applicant_type, guardian_name, aadhaar_masked,"
        " preferred_language, created_at) SELECT 'PB Consumer ' || g, 'person', 'owner', '', '',"
        f" (ARRAY['en','hi','or'])[1 + g %% 3], now() FROM {g}",
        [first, last],
    )
    _exec(
        "INSERT INTO customers_account (consumer_number, consumer_id, premises_address, pincode, category,"
        " sub_category, supply_type, sanctioned_load, load_unit, area, section_id, office_path, package_code,"
        " bill_cycle, route, status, is_prepaid, connected_on, created_at)"
        f" SELECT '{PREFIX}' || lpad(g::text, 10, '0'), c.id, 'House ' || g, '756001', 'domestic', 'general',"
        f"  'lt_1ph', 2, 'kW', 'urban', ({ids})[1 + g %% 4], ({paths})[1 + g %% 4], '', 'C01', 'R1', 'active',"
        "  false, DATE '2024-01-01', now()"
        f" FROM {g} JOIN customers_consumer c ON c.name = 'PB Consumer ' || g",
        [first, last],
    )
    accounts = (
        f"SELECT a.id, substr(a.consumer_number, 3)::bigint AS g FROM customers_account a"
        f" WHERE a.consumer_number BETWEEN '{PREFIX}' || lpad(%s::text, 10, '0')"
        f" AND '{PREFIX}' || lpad(%s::text, 10, '0')"
    )
    # bills: month m = 0 … bills-1 from 2025-01; amount varies by account and month
    _exec(
        "INSERT INTO billing_bill (kind, bill_number, period_start, period_end, bill_date, due_date,"
        " tariff_versions, units, units_status, sanctioned_load, load_unit, area, metered, meter_type,"
        " consumer_meter, e_bill, prepaid, overdue_principal, overdue_days, energy, tod, fixed, monthly, minimum,"
        " riders, subsidy, rebate, dps, extra, rounding, total, rebate_by_due_date, rebate_digital, arrears,"
        " net_payable, language, created_at, account_id, units_withdrawn)"
        " SELECT 'bill', 'PBB' || lpad(a.g::text, 10, '0') || lpad(m::text, 2, '0'), p, (p + interval '1 month'"
        "  - interval '1 day')::date, (p + interval '1 month' + interval '1 day')::date,"
        "  (p + interval '1 month' + interval '15 days')::date, '', 100 + (a.g + m) %% 200, 'actual', 2, 'kW',"
        "  'urban', true, 'static', false, false, false, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,"
        "  400 + (a.g * 7 + m * 13) %% 900, 0, 0, 0, 400 + (a.g * 7 + m * 13) %% 900, 'en', now(), a.id, 0"
        f" FROM ({accounts}) a, generate_series(0, %s - 1) m,"
        "  LATERAL (SELECT (DATE '2025-01-01' + m * interval '1 month')::date AS p) d",
        [first, last, bills],
    )
    _exec(
        "INSERT INTO billing_ledgerentry (entry_type, amount, posted_at, due_date, description, reference_type,"
        " reference_id, channel, account_id)"
        " SELECT 'bill_charge', b.net_payable, b.bill_date + time '10:00', b.due_date, 'Bill ' || b.bill_number,"
        "  'bill', b.bill_number, 'system', b.account_id"
        f" FROM billing_bill b JOIN ({accounts}) a ON a.id = b.account_id",
        [first, last],
    )
    # the bill before the latest paid online: its ledger credit, then the posted payment (_payments)
    _exec(
        "INSERT INTO billing_ledgerentry (entry_type, amount, posted_at, description, reference_type,"
        " reference_id, channel, account_id)"
        " SELECT 'payment', -b.net_payable, b.bill_date + time '18:00' + interval '5 days', 'Online payment',"
        "  'payment', 'PBP' || b.bill_number, 'website', b.account_id FROM billing_bill b"
        f" JOIN ({accounts}) a ON a.id = b.account_id"
        " WHERE b.period_start = (DATE '2025-01-01' + (%s - 2) * interval '1 month')::date",
        [first, last, bills],
    )
    _payments(f"e.account_id IN (SELECT id FROM ({accounts}) a)", [first, last])


def _payments(accounts: str, params: list) -> int:
    """The posted payment of each bench ledger credit of `accounts` (SQL on e.account_id) that has none.
    (Until 2026-12-05 the payments were inserted in the statement that inserted the credits, joined to
    the ledger table, where the new credits are not yet visible: the bench had no payment rows; the
    signed-in sample's are added by `sessions`.)"""
    return _exec(
        "INSERT INTO payments_payment (channel, method, idempotency_key, consumer_number, amount, status,"
        " received_at, posted_at, reference, instrument_number, instrument_bank, receipt_number,"
        " verification_code, allocation, suspense_reason, payg_token, notes, account_id, ledger_entry_id,"
        " suspense_code)"
        " SELECT 'online', 'upi', 'bench:' || e.id, a.consumer_number, -e.amount, 'posted',"
        "  e.posted_at, e.posted_at, 'PBTXN' || e.id, '', '', 'PBR' || lpad(e.id::text, 12, '0'), 'PB00', '{}',"
        "  '', '', '', e.account_id, e.id, ''"
        " FROM billing_ledgerentry e JOIN customers_account a ON a.id = e.account_id"
        f" WHERE {accounts} AND e.entry_type = 'payment' AND e.reference_id LIKE 'PBP%%'"
        "  AND NOT EXISTS (SELECT 1 FROM payments_payment p WHERE p.ledger_entry_id = e.id)",
        params,
    )


def sessions(n: int, users: int) -> list[str]:
    """Signed-in sessions of `users` consumers spread over the N accounts (login created once)."""
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model

    from urja.core.models import Role, StaffProfile
    from urja.customers.models import Account, Consumer
    from urja.portal import auth

    User = get_user_model()
    SessionStore = _session_store()
    keys = []
    for i in range(users):
        g = 1 + i * max(1, n // users)
        account = Account.objects.select_related("consumer").get(consumer_number=f"{PREFIX}{g:010d}")
        user = account.consumer.user
        if user is None:
            user = User(username=f"pb-consumer-{g}", first_name=account.consumer.name)
            user.set_unusable_password()
            user.save()
            StaffProfile.objects.create(user=user, role=Role.CONSUMER, office=None)
            Consumer.objects.filter(pk=account.consumer_id).update(user=user)
        _payments("e.account_id = %s", [account.pk])  # a database set up before the fix has none
        session = SessionStore()
        session[SESSION_KEY] = str(user.pk)
        session[BACKEND_SESSION_KEY] = auth.PATH  # as the portal signs a consumer in
        session[HASH_SESSION_KEY] = user.get_session_auth_hash()
        session["portal_account"] = account.consumer_number
        session.create()
        keys.append(session.session_key)
    return keys


def _session_store():
    """The session engine the server uses (settings.SESSION_ENGINE), so the bench's sessions are real."""
    from importlib import import_module

    from django.conf import settings

    return import_module(settings.SESSION_ENGINE).SessionStore


def plans(n: int) -> dict:
    """EXPLAIN of the per-account reads on one bench account: which index each uses."""
    from django.db import connection

    from urja.billing.models import Bill
    from urja.customers.models import Account
    from urja.portal import selectors

    account = Account.objects.get(consumer_number=f"{PREFIX}{max(1, n // 2):010d}")
    queries = {"bill_list": Bill.objects.filter(account=account).order_by("-period_start", "-id")[:24]}
    out = {}
    for name, qs in queries.items():
        sql, params = qs.query.sql_with_params()
        with connection.cursor() as c:
            c.execute("EXPLAIN " + sql, params)
            out[name] = " | ".join(row[0].strip() for row in c.fetchall())[:300]
    with connection.cursor() as c:
        # the home's one statement: latest bill, balance, last payment, another account (portal.selectors)
        c.execute("EXPLAIN " + selectors._home_sql(), selectors._home_params(account))
        out["home"] = " | ".join(row[0].strip() for row in c.fetchall())[:600]
    selectors.account_summary(account)  # the selector runs
    return out


def page_costs(key: str, rounds: int = 200) -> dict:
    """Per-request cost of each hot page, measured in this process through Django's WSGI handler with
    the production middleware (no HTTP, no locust): queries per page (on PostgreSQL, JIT's SET
    statements included) and CPU ms per page (process time, after a warm-up). Unlike p95 on a shared
    machine, these do not move with the load of other processes, so before/after compare honestly."""
    import cProfile
    import pstats
    import time
    from io import BytesIO

    from django.core.handlers.wsgi import WSGIHandler
    from django.db import connection, reset_queries

    handler = WSGIHandler()
    # (the bill document is not among them: the bench's set-based bills have no tariff or readings to
    # print; its budget is a test, portal/tests/test_page_budgets.py)
    pages = {
        "home": "/portal/",
        "bills": "/portal/bills/",
        "payments": "/portal/payments/",
        "trivial": "/webhooks/ping",
    }

    def call(path: str) -> int:
        status = []
        environ = {"REQUEST_METHOD": "GET", "PATH_INFO": path, "QUERY_STRING": "", "SERVER_NAME": "127.0.0.1",
                   "SERVER_PORT": "80", "HTTP_HOST": "127.0.0.1", "HTTP_COOKIE": f"sessionid={key}",
                   "REMOTE_ADDR": "127.0.0.1", "wsgi.input": BytesIO(), "wsgi.url_scheme": "http",
                   "wsgi.errors": BytesIO(), "wsgi.version": (1, 0), "wsgi.multithread": False,
                   "wsgi.multiprocess": True, "wsgi.run_once": False}  # fmt: skip
        body = handler(environ, lambda s, h, *a: status.append(s))
        b"".join(body)
        body.close()
        return int(status[0].split()[0])

    out = {}
    for name, path in pages.items():
        for _ in range(5):
            assert call(path) == 200, path
        connection.force_debug_cursor = True
        reset_queries()
        call(path)
        queries = len(connection.queries)
        connection.force_debug_cursor = False
        started = time.process_time()
        for _ in range(rounds):
            call(path)
        cpu_ms = (time.process_time() - started) * 1000 / rounds
        # Python function calls per page: a deterministic proxy of the CPU, which the load moves ±30 %
        counter = cProfile.Profile()
        counter.runcall(lambda p=path: [call(p) for _ in range(20)])
        calls = pstats.Stats(counter).total_calls / 20
        out[name] = {"queries": queries, "cpu_ms": round(cpu_ms, 2), "python_calls": int(calls)}
        if os.environ.get("PORTAL_PROFILE") == name:  # where a page's CPU goes, to stderr
            import sys

            profile = cProfile.Profile(time.process_time)  # CPU, not the waits on the server
            profile.runcall(lambda p=path: [call(p) for _ in range(rounds)])
            pstats.Stats(profile, stream=sys.stderr).sort_stats(
                os.environ.get("PORTAL_PROFILE_SORT", "tottime")
            ).print_stats(45)
    return out


def _locust(port: int, paths: list[str], rate: int, duration: int, keys: list[str], env: dict) -> dict:
    import json

    with open(Path(tempfile.gettempdir()) / "portal_api_locust.log", "a") as log:
        seconds, total = common.locust(
            LOCUSTFILE, port=port, rate=rate, duration=duration, log=log,
            env={**env, "PB_SESSIONS": json.dumps(keys), "PB_PATHS": json.dumps(paths)},
        )  # fmt: skip

    def ms(key: str) -> float | None:
        return None if total[key] == "N/A" else float(total[key])

    return {
        "n": int(total["Request Count"]),
        "seconds": seconds,
        "p50_ms": ms("50%"),
        "p95_ms": ms("95%"),
        "p99_ms": ms("99%"),
        "failures": int(total["Failure Count"]),
        "rps": round(float(total["Requests/s"]), 1),
    }


def run(n: int) -> dict:
    rate = int(os.environ.get("PORTAL_RATE", "200"))
    bills = int(os.environ.get("PORTAL_BILLS", "6"))
    prepared = setup(n, bills)
    keys = sessions(n, int(os.environ.get("PORTAL_USERS", "200")))
    query_plans = plans(n)
    costs = page_costs(keys[0])
    duration = int(os.environ.get("PORTAL_SECONDS", "30"))
    if duration == 0:  # PORTAL_SECONDS=0: the per-page costs only, no load
        return {"n": 0, "seconds": 0, "accounts": n, "page_costs": costs, **prepared}
    port = common.free_port()
    env = {
        **os.environ,
        "DEBUG": "0",
        "LOG_LEVEL": "WARNING",
        "PYTHONPATH": str(ROOT / "src"),
        "WEB_WORKERS": os.environ.get("PORTAL_WORKERS", ""),
        "WEB_THREADS": os.environ.get("PORTAL_THREADS", ""),
    }
    pages = ["/portal/", "/portal/bills/"]
    load_before = round(os.getloadavg()[0], 2)
    cpu_before = common.children_cpu()
    with common.web_server(env, port):
        # warm-up of both paths: every worker has opened its database connection and compiled the
        # templates; the target is a sustained rate, not a cold start. Not counted.
        _locust(port, ["/webhooks/ping"], rate, 5, keys, env)
        _locust(port, pages, rate // 4, 8, keys, env)
        trivial = _locust(port, ["/webhooks/ping"], rate, duration, keys, env)
        portal = _locust(port, pages, rate, duration, keys, env)
    cpu = common.children_cpu() - cpu_before
    load_after = round(os.getloadavg()[0], 2)
    return {
        "n": portal["n"],  # requests served (per_s: the achieved rate)
        "seconds": portal["seconds"],
        "accounts": n,
        "p95_ms": portal["p95_ms"],
        "p50_ms": portal["p50_ms"],
        "p99_ms": portal["p99_ms"],
        "failures": portal["failures"],
        "achieved_rps": portal["rps"],
        "trivial_p95_ms": trivial["p95_ms"],
        "trivial_p50_ms": trivial["p50_ms"],
        "trivial_rps": trivial["rps"],
        "trivial_failures": trivial["failures"],
        "ratio": round(portal["p95_ms"] / trivial["p95_ms"], 2) if trivial["p95_ms"] else None,
        "bills_per_account": bills,
        "server_and_locust_cpu_s": round(cpu, 1),
        "target_rps": rate,
        "load_before": load_before,
        "load_after": load_after,
        "session_engine": _session_store().__module__.rsplit(".", 1)[-1],
        "workers": os.environ.get("PORTAL_WORKERS") or "default",
        "threads": os.environ.get("PORTAL_THREADS") or "1",
        "target_p95_ms": 100,
        **prepared,
        "page_costs": costs,
        "plans": query_plans,
    }
