"""Escalation sweep over N open service requests on PostgreSQL (target: 1,000,000 in < 10 s).

Builds N open requests (set-based INSERT … SELECT generate_series) over four catalogue types with
different clocks (4-hour supply complaints, 7-, 15- and 30-day requests), registered at random
moments so that they sit at every point of their SLA. They are built as the previous sweep
"an hour ago" left them (levels, next escalation moments, escalation rows); the timed sweep then
runs at "now": it must scan all N open requests' escalation pointers, escalate everything that
crossed a tier in the hour (the backlog of a scheduler that was down for an hour) and notify the
holders. A second sweep at the same moment
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
    section = get("BSWX", "Bench Section", "section", sub)
    _managers([utility, circle, division, sub])
    return section


def _managers(offices) -> None:
    """A manager at each tier's office, so the sweep has holders to notify."""
    from django.contrib.auth import get_user_model

    from urja.core.models import Role, StaffProfile

    User = get_user_model()
    for office in offices:
        username = f"bench_mgr_{office.code.lower()}"
        if not User.objects.filter(username=username).exists():
            user = User.objects.create_user(username=username, password=None)
            StaffProfile.objects.create(user=user, role=Role.MANAGER, office=office)


def _clear(cursor):
    cursor.execute("SELECT EXISTS (SELECT 1 FROM servicedesk_servicerequest WHERE number NOT LIKE 'BENCH%%')")
    if not cursor.fetchone()[0]:
        cursor.execute(
            "TRUNCATE servicedesk_escalation, servicedesk_escalationclock, servicedesk_requestevent, "
            "servicedesk_requestpause, servicedesk_servicerequest CASCADE"
        )
        return
    cursor.execute(
        "DELETE FROM servicedesk_escalation WHERE request_id IN "
        "(SELECT id FROM servicedesk_servicerequest WHERE number LIKE 'BENCH%%')"
    )
    cursor.execute(
        "DELETE FROM servicedesk_escalationclock WHERE request_id IN "
        "(SELECT id FROM servicedesk_servicerequest WHERE number LIKE 'BENCH%%')"
    )
    cursor.execute("DELETE FROM servicedesk_servicerequest WHERE number LIKE 'BENCH%%'")


def build(n: int, now_ts: int, prev_ts: int) -> dict:
    """N open requests, brought up to date as of the previous sweep at `prev_ts`: their levels,
    next escalation moments and the escalation rows of the tiers already reached."""
    from django.db import connection, transaction

    from urja.servicedesk import catalogue
    from urja.servicedesk.models import EscalationTier, RequestType

    try:
        schedule = catalogue.active_schedule()
    except Exception:
        schedule, _ = catalogue.load_file("servicedesk/oerc_sop.toml")
    section = _setup_offices()
    values, params = [], {}
    for i, (type_code, subtype, span) in enumerate(TYPES):
        rt = RequestType.objects.get(schedule=schedule, type_code=type_code, subtype_code=subtype)
        fractions = list(
            EscalationTier.objects.filter(request_type=rt).order_by("level").values_list("fraction", flat=True)
        )
        values.append(f"(%(i{i})s, %(t{i})s, %(s{i})s, %(f{i})s::float8[])")
        params.update({f"i{i}": i, f"t{i}": rt.pk, f"s{i}": span, f"f{i}": fractions})
    params.update({"office": section.pk, "path": section.path, "now": now_ts, "prev": prev_ts, "n": n, "k": len(TYPES)})
    with transaction.atomic(), connection.cursor() as cursor:
        _clear(cursor)
        cursor.execute(
            f"""
            WITH kinds(idx, type_id, span, fracs) AS (VALUES {", ".join(values)}),
            x AS (
                SELECT g, k.type_id, k.span, k.fracs,
                       %(now)s - floor(random() * 2.2 * k.span)::bigint AS cs
                FROM generate_series(1, %(n)s) AS g JOIN kinds k ON k.idx = g %% %(k)s
            )
            INSERT INTO servicedesk_servicerequest (
                number, request_type_id, type_code, subtype_code, workflow, status, contact_name, contact_mobile,
                language, channel, description, details, office_id, office_path, team, area, registered_at,
                clock_start, timeline_unit, timeline_value, due_at, resolution_code, resolution_notes,
                repeat_contacts, reopen_count
            )
            SELECT 'BENCH' || lpad(x.g::text, 10, '0'), rt.id, rt.type_code, rt.subtype_code, rt.workflow,
                   'registered', '', '', 'en', 'call_centre', '', '{{}}'::jsonb, %(office)s, %(path)s, rt.team,
                   'urban', to_timestamp(x.cs), to_timestamp(x.cs), rt.unit, 1, to_timestamp(x.cs + x.span),
                   '', '', 0, 0
            FROM x JOIN servicedesk_requesttype rt ON rt.id = x.type_id
            """,
            params,
        )
        # the escalation pointers, as the previous sweep left them
        cursor.execute(
            f"""
            WITH kinds(idx, type_id, span, fracs) AS (VALUES {", ".join(values)}),
            x AS (
                SELECT r.id, r.request_type_id, r.office_id, extract(epoch FROM r.clock_start)::bigint AS cs, k.span,
                       k.fracs
                FROM servicedesk_servicerequest r JOIN kinds k ON k.type_id = r.request_type_id
                WHERE r.number LIKE 'BENCH%%'
            )
            INSERT INTO servicedesk_escalationclock (
                request_id, request_type_id, office_id, clock_start_ts, span_seconds, paused_seconds,
                next_escalation_ts, escalation_level
            )
            SELECT x.id, x.request_type_id, x.office_id, x.cs, x.span, 0,
                   (SELECT MIN(CEIL(x.cs + f * x.span))::bigint FROM unnest(x.fracs) f
                     WHERE x.cs + f * x.span > %(prev)s),
                   (SELECT COUNT(*) FROM unnest(x.fracs) f WHERE x.cs + f * x.span <= %(prev)s)
            FROM x
            """,
            params,
        )
        cursor.execute(
            """
            INSERT INTO servicedesk_escalation (request_id, level, title, office_level, reason, fraction, sweep,
                                                created_at)
            SELECT c.request_id, t.level, t.title, t.office_level, 'sla', t.fraction, 'bench-history',
                   to_timestamp(%(prev)s)
            FROM servicedesk_escalationclock c
            JOIN servicedesk_escalationtier t ON t.request_type_id = c.request_type_id AND t.level <= c.escalation_level
            """,
            params,
        )
        history = cursor.rowcount
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE servicedesk_servicerequest")
        cursor.execute("VACUUM ANALYZE servicedesk_escalation")
        cursor.execute("VACUUM ANALYZE servicedesk_escalationclock")
    return {"history_escalations": history}


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
    built = build(n, int(now.timestamp()), int((now - timedelta(minutes=backlog)).timestamp()))
    build_seconds = time.perf_counter() - t0
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
            "build_seconds": round(build_seconds, 1),
            "history_escalations": built["history_escalations"],
            "target_seconds": 10,
        }
    )
    return result
