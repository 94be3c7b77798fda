"""New connections on PostgreSQL: the whole application workflow through the services, and the
lateness sweep over a large backlog of open applications.

1. `FLOW` applications (env CONNECTIONS_FLOW, default 200) each go registration → site inspection →
   demand note (pending account, ledger lines, deposit) → payment through payments (gateway
   callback) → settlement → energization (meter installed, account active, welcome message):
   applications a second through every check, ledger entry, audit event and message.
2. `n` open applications (bulk-inserted, default 200,000 — a large DISCOM's open new-connection work
   is tens of thousands) of which 1% have reached an escalation tier: the timed `escalate_late` must
   find them through the indexed pointer (not by scanning every open application), escalate each
   once, and a second sweep at the same moment must escalate nothing.
"""

import os
import time
from datetime import timedelta

NAME = "connections"
DEFAULT_N = 200_000
BALASORE = ("21.4945", "86.9332")


def _setup():
    from urja.demo.testing import office_tree, staff_user
    from urja.servicedesk import catalogue
    from urja.tariffs import services as tariffs
    from urja.tariffs.models import TariffOrder

    if not TariffOrder.objects.filter(code__startswith="oerc").exists():
        from django.conf import settings

        for path in sorted((settings.DATA_DIR / "tariffs").glob("oerc_rst_*.toml")):
            tariffs.load_file(path=path)
    try:
        catalogue.active_schedule()
    except Exception:
        for path in catalogue.default_files():
            catalogue.load_file(path)
    run_tag = f"{int(time.time()) % 100000}"  # a new tree and staff per run (codes and usernames are unique)
    offices = office_tree(prefix=f"N{run_tag}")
    cre = staff_user("cre", offices["division1"], username=f"ncb{run_tag}cre")
    engineer = staff_user("engineer", offices["division1"], username=f"ncb{run_tag}eng")
    for level in ("subdivision1", "division1", "circle", "utility"):
        staff_user("manager", offices[level], username=f"ncb{run_tag}{level}")
    return offices, cre, engineer


def _flow(count: int, offices, cre, engineer, tag: str) -> float:
    from urja.connections import services
    from urja.metering import services as metering
    from urja.payments import services as payments

    docs = [
        services.DocumentIn("identity_proof", "voter_id", "OR/01/1"),
        services.DocumentIn("photograph"),
        services.DocumentIn("ownership_proof", "sale_deed", "SD1"),
    ]
    start = time.perf_counter()
    for i in range(count):
        app = services.register_application(
            actor=cre, channel="care_centre", name=f"Bench {i}", mobile=f"97{tag[-2:]}{i:06d}", applicant_type="owner",
            premises_address="Bench Road", latitude=BALASORE[0], longitude=BALASORE[1], area_class="municipal",
            section=offices["section1"], supply_type="lt_1ph", load="2", category="domestic", documents=docs,
        )  # fmt: skip
        services.record_inspection(
            actor=engineer, channel="section_office", application=app, feasible=True, distance_m=9
        )
        services.issue_demand_note(actor=engineer, channel="section_office", application=app)
        app.refresh_from_db()
        order = payments.create_order(consumer_number=app.account.consumer_number, amount=services.outstanding(app))
        payments.simulate_gateway(order=order, outcome="success")
        assert services.settle_demand_note(application=app)
        app.refresh_from_db()
        serial = f"NCB{tag}{i:06d}"
        metering.register_meter(serial=serial, make="Bench", meter_type="static", actor=None, channel="system")
        services.energize(actor=engineer, channel="section_office", application=app, meter_serial=serial)
    return time.perf_counter() - start


def _backlog(n: int, offices, cre) -> int:
    """n open applications (one consumer), 1% of them past their first tier."""
    from django.db import connection

    from urja.connections.models import Application
    from urja.connections.services import clock
    from urja.customers import services as customers

    Application.objects.filter(number__startswith="NCBK").delete()
    consumer = customers.register_consumer(actor=None, channel="system", name="Backlog applicant")
    section = offices["section1"]
    now = clock.now()
    due_every = 100
    rows = []
    for i in range(n):
        late = i % due_every == 0
        registered = now - timedelta(days=9 if late else 1)
        rows.append(
            Application(
                number=f"NCBK{i:09d}", channel="care_centre", consumer=consumer, mobile="+919700000000",
                premises_address="Backlog", latitude=BALASORE[0], longitude=BALASORE[1], area_class="municipal",
                area="urban", section=section, office_path=section.path, supply_type="lt_1ph", load=2,
                category="domestic", application_fee=50, fee_order="oerc", registered_at=registered,
                dn_due_at=registered + timedelta(days=7),
                next_escalation_at=registered + timedelta(days=5 if late else 6),
            )
        )  # fmt: skip
        if len(rows) == 20_000:
            Application.objects.bulk_create(rows)
            rows = []
    Application.objects.bulk_create(rows)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE connections_application")
    return (n + due_every - 1) // due_every


def run(n: int) -> dict:
    from urja.connections import services
    from urja.connections.models import Escalation

    offices, cre, engineer = _setup()
    flow = int(os.environ.get("CONNECTIONS_FLOW", "200"))
    tag = f"{int(time.time()) % 10000:04d}"
    flow_seconds = _flow(flow, offices, cre, engineer, tag)
    due = _backlog(n, offices, cre)
    start = time.perf_counter()
    made = services.escalate_late()
    seconds = time.perf_counter() - start
    again_start = time.perf_counter()
    again = services.escalate_late()
    again_seconds = time.perf_counter() - again_start
    escalated = Escalation.objects.filter(application__number__startswith="NCBK").values("application").distinct()
    return {
        "n": n,
        "seconds": seconds,
        "due": due,
        "escalations": made,
        "applications_escalated": escalated.count(),
        "second_sweep_escalations": again,
        "second_sweep_seconds": round(again_seconds, 3),
        "flow_applications": flow,
        "flow_seconds": round(flow_seconds, 2),
        "flow_per_s": round(flow / flow_seconds, 2) if flow_seconds else None,
    }
