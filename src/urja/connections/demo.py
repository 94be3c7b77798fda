"""Demo data for connections: `populate(accounts, staff, rng)` (a hook of `urja demo`, after the
service desk's: its SoP catalogue must be loaded; the tariff orders must be loaded for the fees).

Applications at every stage — fresh, late and escalated (keyed in from paper days ago), inspected,
demand note issued (one with a bought meter and a line extension, one temporary), paid, a Mo Bidyut
fast-track one connected within its 48 hours, one connected on the ordinary timeline, one rejected
at inspection and one withdrawn — and on existing accounts a load enhancement, a category change, a
disconnection at the consumer's request and a disconnection for non-payment followed by payment and
its reconnection order; meter shiftings (one keyed in late from a camp, escalated), and one shifting of
each other kind — an LT line shifted and paid, an 11 kV line asked by a builder with its demand note
awaiting payment, a 33 kV line awaiting its inspection, a DT structure moved (its geo point on the
network). Everything goes through the services; a rerun adds nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta

from django.core.files.base import ContentFile

from urja.core.errors import DomainError

from . import changes, selectors, services, shifting
from .models import Application

log = logging.getLogger("urja.demo")

# around Balasore, Bhadrak and Baripada (inside the licence area of data/connections/connections.toml)
PLACES = [
    ("Motiganj, Balasore", "21.4945", "86.9332", "municipal"),
    ("Chandipur Road, Balasore", "21.4700", "87.0100", "rural"),
    ("Charampa, Bhadrak", "21.0548", "86.4958", "municipal"),
    ("Dhamnagar, Bhadrak", "21.0200", "86.4400", "rural"),
    ("Baripada town", "21.9333", "86.7333", "municipal"),
    ("Udala, Mayurbhanj", "21.5800", "86.5700", "hilly_rural"),
]
NAMES = [
    "Sasmita Nayak", "Bijay Kumar Das", "Prativa Mohanty", "Ramesh Chandra Jena", "Lipika Sahu", "Ajit Behera",
    "Mamata Rout", "Sanjay Patra", "Kabita Pradhan", "Debasish Mallick", "Sunil Giri", "Puspa Sethi",
    "Hari Prasad Panda", "Rina Parida", "Tapan Barik",
]  # fmt: skip
OWNER_DOCS = [
    services.DocumentIn("identity_proof", "voter_id", "OR/05/123/456"),
    services.DocumentIn("photograph"),
    services.DocumentIn("ownership_proof", "land_record", "KH-1021"),
]
PHOTO = bytes.fromhex("ffd8ffe000104a46494600010100000100010000ffd9")  # a minimal JPEG


def populate(*, accounts, staff, rng, stdout: Callable[[str], None] | None = None) -> dict:
    if Application.objects.exists():
        return {"skipped": "connections demo data exists"}
    from urja.servicedesk import catalogue

    try:
        catalogue.active_schedule()
    except DomainError:
        for path in catalogue.default_files():
            catalogue.load_file(path)
    cre = staff.get("cre")
    engineer = staff.get("engineer") or cre
    sections = []
    for account in accounts:
        if account.section.level == "section" and account.section not in sections:
            sections.append(account.section)
        if len(sections) >= 3:
            break
    if not sections:
        return {"skipped": "no section office among the demo accounts"}
    counts: dict[str, int] = {}
    mobiles = iter(f"98610{n:05d}" for n in rng.sample(range(10000, 99999), 60))
    names = iter(NAMES * 4)

    def apply(**kw) -> Application | None:
        place = rng.choice(PLACES)
        args = dict(
            actor=cre,
            channel="care_centre",
            name=next(names),
            mobile=next(mobiles),
            applicant_type="owner",
            premises_address=f"House {rng.randint(1, 300)}, {place[0]}",
            latitude=place[1],
            longitude=place[2],
            area_class=place[3],
            section=rng.choice(sections),
            supply_type="lt_1ph",
            load=str(rng.choice([1, 2, 3, 4])),
            category="domestic",
            documents=OWNER_DOCS,
        )
        args.update(kw)
        try:
            return services.register_application(**args)
        except DomainError as exc:  # e.g. a random mobile that has dues on a demo account
            log.info("demo application skipped: %s", exc.message)
            return None

    def inspect(app, **kw):
        args = dict(feasible=True, distance_m=rng.randint(5, 28))
        args.update(kw)
        services.record_inspection(actor=engineer, channel="section_office", application=app, **args)

    def issue(app):
        services.issue_demand_note(actor=engineer, channel="section_office", application=app)
        app.refresh_from_db()

    def pay(app):
        from urja.payments import services as payments

        order = payments.create_order(consumer_number=app.account.consumer_number, amount=selectors.outstanding(app))
        payments.simulate_gateway(order=order, outcome="success")
        services.settle_demand_note(application=app)
        app.refresh_from_db()

    serials = iter(f"DEMONC{n:05d}" for n in range(1, 1000))

    def energize(app):
        from urja.metering import services as metering

        serial = next(serials)
        metering.register_meter(serial=serial, make="Genus", meter_type="static", actor=None, channel="system")
        services.energize(actor=engineer, channel="section_office", application=app, meter_serial=serial)

    def count(stage: str) -> None:
        counts[stage] = counts.get(stage, 0) + 1

    now = services.clock.now()
    for _ in range(3):
        if apply():
            count("registered")
    for days in (8, 12):  # keyed in from paper: late, escalated below
        if apply(received_at=now - timedelta(days=days), channel="camp"):
            count("registered_late")
    for _ in range(2):
        if app := apply():
            inspect(app)
            count("inspected")
    if app := apply(meter_option="purchase"):
        inspect(app, distance_m=140, extension_needed=True)
        issue(app)
        count("dn_issued")
    if app := apply():
        inspect(app)
        issue(app)
        count("dn_issued")
    until = services.timezone.localdate(now) + timedelta(days=40)
    if app := apply(supply_type="temporary", temporary_until=until, category="general_purpose", load="3"):
        inspect(app)
        issue(app)
        count("temporary_dn_issued")
    for _ in range(2):
        if app := apply():
            inspect(app)
            issue(app)
            pay(app)
            count("dn_paid")
    if app := apply():  # Mo Bidyut: connected within its 48 hours
        inspect(app, distance_m=12)
        issue(app)
        pay(app)
        energize(app)
        count("fast_track_energized")
    if app := apply(supply_type="lt_3ph", load="8", category="general_purpose"):
        inspect(app, distance_m=25)
        issue(app)
        pay(app)
        energize(app)
        count("energized")
    if app := apply():
        inspect(app, feasible=False, distance_m=950, notes="no LT line within 950 m; 11 kV extension needs RoW")
        count("rejected")
    if app := apply():
        services.reject(
            actor=cre, channel="care_centre", application=app, code="other", reason="applicant moved", withdrawn=True
        )
        count("withdrawn")
    counts["escalations"] = services.escalate_late()
    counts.update(_account_requests(accounts, cre=cre, engineer=engineer))
    counts.update(_network_shiftings(accounts, cre=cre, engineer=engineer))
    counts["change_escalations"] = shifting.escalate_late()
    if stdout:
        stdout(f"connections: {', '.join(f'{k} {v}' for k, v in sorted(counts.items()))}")
    return counts


def _account_requests(accounts, *, cre, engineer) -> dict[str, int]:
    """Change requests and orders on existing demo accounts."""
    from urja.billing import ledger
    from urja.payments import services as payments

    done: dict[str, int] = {}
    active = [a for a in accounts if a.status == "active" and not a.is_prepaid and a.category == "domestic"]
    active = [a for a in active if a.supply_type == "lt_1ph"][:7]
    if len(active) < 4:
        return done

    def attempt(label: str, fn) -> None:
        try:
            fn()
            done[label] = done.get(label, 0) + 1
        except DomainError as exc:
            log.info("demo %s skipped: %s", label, exc.message)

    attempt(
        "load_change_requested",
        lambda: changes.request_change(
            actor=cre, channel="care_centre", account=active[0], kind="load_change", details={"load": "7", "unit": "kW"}
        ),
    )

    def category():
        change = changes.request_change(
            actor=cre, channel="care_centre", account=active[1], kind="category_change",
            details={"category": "general_purpose"},
        )  # fmt: skip
        changes.decide(actor=engineer, channel="backoffice", change=change, approve=True)

    attempt("category_change_scheduled", category)
    attempt(
        "disconnection_requested",
        lambda: changes.request_change(
            actor=cre, channel="care_centre", account=active[2], kind="temp_disconnection", details={}
        ),
    )

    def non_payment():
        account = active[3]
        if ledger.balance(account=account) <= 0:
            ledger.post_entry(
                account=account,
                entry_type="bill_charge",
                amount="640.00",
                description="Demo: unpaid bill",
                idempotency_key=f"demo:arrears:{account.pk}",
            )
        order = changes.order_disconnection(actor=engineer, channel="section_office", account=account)
        changes.complete_order(actor=engineer, channel="section_office", order=order,
                               photo=ContentFile(PHOTO, name="disconnected.jpg"))  # fmt: skip
        dues = ledger.balance(account=account)
        gateway_order = payments.create_order(consumer_number=account.consumer_number, amount=dues)
        payments.simulate_gateway(order=gateway_order, outcome="success")
        changes.reconnect_paid()

    attempt("disconnected_then_reconnection_ordered", non_payment)

    def shifting_request(account, *, through: bool) -> None:
        change = changes.request_change(
            actor=cre, channel="care_centre", account=account, kind="meter_shifting",
            details={"location": "verandah, east wall", "reason": "house extension"},
        )  # fmt: skip
        change = shifting.inspect(
            actor=engineer, channel="section_office", change=change, feasible=True,
            new_location="verandah, east wall, 1.5 m high", estimate="650",
            latitude=account.latitude, longitude=account.longitude, notes="service cable 6 m",
        )  # fmt: skip
        change = shifting.issue_demand_note(actor=engineer, channel="section_office", change=change)
        if not through:
            return  # awaiting the consumer's payment
        gateway_order = payments.create_order(consumer_number=account.consumer_number, amount=change.charge)
        payments.simulate_gateway(order=gateway_order, outcome="success")
        shifting.settle_payments()
        change.refresh_from_db()
        shifting.complete(actor=engineer, channel="section_office", change=change, acknowledged_by="consumer")

    if len(active) > 4:
        attempt("meter_shifting_awaiting_payment", lambda: shifting_request(active[4], through=False))
    if len(active) > 5:
        attempt("meter_shifted", lambda: shifting_request(active[5], through=True))
    if len(active) > 6:
        # received at a camp 25 days ago and keyed in now, still awaiting its inspection: late, escalated
        attempt(
            "meter_shifting_late",
            lambda: changes.request_change(
                actor=cre, channel="camp", account=active[6], kind="meter_shifting",
                details={"location": "outside the boundary wall", "reason": "meter reader cannot enter"},
                received_at=services.clock.now() - timedelta(days=25),
            ),
        )  # fmt: skip
    return done


def _network_shiftings(accounts, *, cre, engineer) -> dict[str, int]:
    """One shifting of each network kind, on accounts fed from a DT of their section."""
    from decimal import Decimal

    from urja.payments import services as payments

    done: dict[str, int] = {}
    placed = []
    for account in reversed(accounts):  # the last ones: away from the other requests' accounts
        if account.status != "active" or not account.transformer_id or account.minigrid_site_id:
            continue
        if account.transformer.latitude is not None:
            placed.append(account)
        if len(placed) == 4:
            break
    if len(placed) < 4:
        return done

    def feeder_of(account, kv: str) -> str:
        found = shifting.elements(f"{kv}kv_line_shifting", account=account)
        return found[0].code if found else ""

    def run(account, kind: str, stage: str, *, inspect: dict | None = None, builder: bool = False) -> None:
        try:
            change = changes.request_change(
                actor=cre, channel="care_centre", account=account, kind=kind,
                details={"location": "the line across the new plot to the road edge" if kind != "dt_shifting"
                         else "the DT in front of the gate, to the corner of the plot",
                         "reason": "new building", "requester": "builder" if builder else "consumer",
                         "requested_by": "Maa Tarini Constructions" if builder else ""},
            )  # fmt: skip
            if stage == "requested":
                done[f"{kind}_requested"] = 1
                return
            change = shifting.inspect(actor=engineer, channel="section_office", change=change, feasible=True,
                                      **(inspect or {}))  # fmt: skip
            change = shifting.issue_demand_note(actor=engineer, channel="section_office", change=change)
            if stage == "awaiting_payment":
                done[f"{kind}_awaiting_payment"] = 1
                return
            if change.charge > 0:
                order = payments.create_order(consumer_number=account.consumer_number, amount=change.charge)
                payments.simulate_gateway(order=order, outcome="success")
                shifting.settle_payments()
                change.refresh_from_db()
            shifting.complete(actor=engineer, channel="section_office", change=change,
                              notes="work done as inspected; line charged and tested")  # fmt: skip
            done[f"{kind}_done"] = 1
        except DomainError as exc:
            log.info("demo %s skipped: %s", kind, exc.message)

    lt, hv11, hv33, dt = placed
    lt_work = {"element": lt.transformer.code, "route_length_m": "60", "structures": "2", "estimate": "18500"}
    run(lt, "lt_line_shifting", "done", inspect=lt_work)
    hv_work = {"element": feeder_of(hv11, "11"), "route_length_m": "240", "structures": "4", "estimate": "96000"}
    run(hv11, "11kv_line_shifting", "awaiting_payment", builder=True, inspect=hv_work)
    run(hv33, "33kv_line_shifting", "requested")
    point = dt.transformer
    run(dt, "dt_shifting", "done",
        inspect={"element": point.code, "latitude": str(Decimal(str(point.latitude)) + Decimal("0.0004")),
                 "longitude": str(Decimal(str(point.longitude)) + Decimal("0.0004")), "estimate": "0"})  # fmt: skip
    return done
