"""Escalation sweep over N open service requests on PostgreSQL (target: 1,000,000 in < 10 s).

Builds N open requests (set-based INSERT … SELECT generate_series) over four catalogue types with
different clocks (4-hour supply complaints, 7-, 15- and 30-day requests), registered at random
moments so that they sit at every point of their SLA. A first sweep "an hour ago" brings them up to
date (as the periodic job would have); the timed sweep then runs at "now": it must scan all N open
requests' escalation pointers, escalate everything that crossed a tier in the hour (the backlog of
a scheduler that was down for an hour) and notify the holders. A second sweep at the same moment
must escalate nothing (idempotent).

Env: SWEEP_BACKLOG_MINUTES (default 60) — how long since the previous sweep.
"""

import os
import time

NAME = "escalation_sweep"
DEFAULT_N = 1_000_000

TYPES = [
    ("no_power_supply", "no_power_supply", 4 * 3600),
    ("meter_testing", "meter_running_fast", 7 * 86400),
    ("seal_replacement", "meter_seal_broken", 15 * 86400),
    ("meter_faulty", "meter_stuck", 30 * 86400),
]


def _setup_offices():
    from urja.network.models import Office
    from urja.network.services import create_office

    def get(code, name, level, parent=None):
        office = Office.objects.filter(code=code).first()
        return office or create_office(code=code, name=name, level=level, parent=parent)

    utility = get("BSWU", "Bench Utility", "utility")
    circle = get("BSWC", "Bench Circle", "circle", utility)
    division = get("BSWD", "Bench Division", "division", circle)
    sub = get("BSWS", "Bench Sub-division", "subdivision", division)
    return get("BSWX", "Bench Section", "section", sub)


def _clear(cursor):
    cursor.execute("SELECT EXISTS (SELECT 1 FROM servicedesk_servicerequest WHERE number NOT LIKE 'BENCH%%')")
    if not cursor.fetchone()[0]:
        cursor.execute(
            "TRUNCATE servicedesk_escalation, servicedesk_requestevent, servicedesk_requestpause, "
            "servicedesk_servicerequest CASCADE"
        )
        return
    cursor.execute(
        "DELETE FROM servicedesk_escalation WHERE request_id IN "
        "(SELECT id FROM servicedesk_servicerequest WHERE number LIKE 'BENCH%%')"
    )
    cursor.execute("DELETE FROM servicedesk_servicerequest WHERE number LIKE 'BENCH%%'")


def build(n: int, now_ts: int) -> dict:
    from django.db import connection, transaction

    from urja.servicedesk import catalogue
    from urja.servicedesk.models import RequestType

    try:
        schedule = catalogue.active_schedule()
    except Exception:
        schedule, _ = catalogue.load_file("servicedesk/oerc_sop.toml")
    section = _setup_offices()
    types = [(RequestType.objects.get(schedule=schedule, type_code=t, subtype_code=s), span) for t, s, span in TYPES]
    type_ids = [rt.pk for rt, _ in types]
    spans = [span for _, span in types]
    with transaction.atomic(), connection.cursor() as cursor:
        _clear(cursor)
        cursor.execute(
            """
            INSERT INTO servicedesk_servicerequest (
                number, request_type_id, type_code, subtype_code, workflow, status, contact_name, contact_mobile,
                language, channel, description, details, office_id, office_path, team, area, registered_at,
                clock_start, timeline_unit, timeline_value, due_at, clock_start_ts, span_seconds, paused_seconds,
                next_escalation_ts, escalation_level, resolution_code, resolution_notes, repeat_contacts,
                reopen_count
            )
            SELECT 'BENCH' || lpad(g::text, 10, '0'), rt.id, rt.type_code, rt.subtype_code, rt.workflow,
                   'registered', '', '', 'en', 'call_centre', '', '{}'::jsonb, %(office)s, %(path)s, rt.team,
                   'urban', to_timestamp(x.cs), to_timestamp(x.cs), rt.unit, 1, to_timestamp(x.cs + x.span),
                   x.cs, x.span, 0,
                   (SELECT CEIL(x.cs + MIN(t.fraction) * x.span)::bigint
                      FROM servicedesk_escalationtier t WHERE t.request_type_id = rt.id),
                   0, '', '', 0, 0
            FROM (
                SELECT g, (%(types)s::bigint[])[1 + g %% 4] AS type_id, (%(spans)s::bigint[])[1 + g %% 4] AS span,
                       %(now)s - floor(random() * 2.2 * (%(spans)s::bigint[])[1 + g %% 4])::bigint AS cs
                FROM generate_series(1, %(n)s) AS g
            ) x JOIN servicedesk_requesttype rt ON rt.id = x.type_id
            """,
            {"office": section.pk, "path": section.path, "types": type_ids, "spans": spans, "now": now_ts, "n": n},
        )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE servicedesk_servicerequest")
        cursor.execute("ANALYZE servicedesk_escalation")
    return {"types": len(types)}


def run(n: int) -> dict:
    from datetime import UTC, datetime, timedelta

    from django.db import connection

    from common import timer
    from urja.servicedesk.escalation import sweep

    if connection.vendor != "postgresql":
        raise SystemExit("the escalation sweep benchmark runs on PostgreSQL")
    backlog = int(os.environ.get("SWEEP_BACKLOG_MINUTES", "60"))
    now = datetime.now(UTC).replace(microsecond=0)
    t0 = time.perf_counter()
    build(n, int(now.timestamp()))
    built = time.perf_counter() - t0
    t1 = time.perf_counter()
    previous = sweep(now=now - timedelta(minutes=backlog))
    catch_up = time.perf_counter() - t1
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE servicedesk_servicerequest")
        cursor.execute("ANALYZE servicedesk_escalation")
    result: dict = {"n": n}
    with timer(result):
        current = sweep(now=now)
    t2 = time.perf_counter()
    again = sweep(now=now)
    repeat_seconds = time.perf_counter() - t2
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT COUNT(*) FROM servicedesk_escalation e JOIN servicedesk_servicerequest r ON r.id = e.request_id "
            "WHERE r.number LIKE 'BENCH%%'"
        )
        total_escalations = cursor.fetchone()[0]
    result.update(
        {
            "escalated": current["escalated"],
            "notices": current["notices"],
            "backlog_minutes": backlog,
            "repeat_sweep_escalated": again["escalated"],
            "repeat_sweep_seconds": round(repeat_seconds, 3),
            "escalation_rows": total_escalations,
            "build_seconds": round(built, 1),
            "catch_up_sweep_seconds": round(catch_up, 1),
            "catch_up_escalated": previous["escalated"],
            "target_seconds": 10,
        }
    )
    return result
