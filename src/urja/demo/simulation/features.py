"""This wave's features in the simulated month (issue 10, remaining part), through their services:

* new connections (`connections.services`): applications → site inspection → demand note → paid
  through payments (counter, gateway webhook, UPI reconciliation; replays) → energized (meter,
  account, deposit) → the new account read, billed and paid in the later months; some rejected;
* BBPS (`payments.bbps`): bill fetch then payment posting with a BBPS reference, replays of the
  same reference (and one with another amount, refused);
* outages from smart meters: last-gasp / power-restore events through the MQTT gateway on a DT with
  a boundary meter; `reports.outages.run_detector` declares, restores and compensates;
* meter shifting within the premises (`connections.shifting`): requested at the care centre,
  inspected, demand note on the ledger, the consumer's dues and the note taken at the counter, the
  meter shifted by the crew; a payment of less than the dues before the note does not pay it;
* line and DT-structure shifting (`connections.shifting`, kinds in turn): requested by the consumer, a
  builder or an affected party, inspected naming the DT or feeder, demand note paid (after a note-sized
  payment that goes to older dues, with faults), the work done early next month — a DT's geo point moved;
* energy accounting (`reports.services.compute_period`) of the month and the one before;
* mini-grid (`minigrid.services`): customers with smart prepaid meters, recharges at the site's
  counter, package changes (request → approve → top-up paid → meter reprogrammed, acks through the
  gateway → in force), daily charges by the prepaid day job;
* WhatsApp and SMS (`channels`, issue 13): consumers say "Hi" and ask for their bill on WhatsApp and
  by SMS (`BILL <consumer number>`), stored as the webhooks store them and answered by the kicked job;
  Meta redelivers a message (nothing stored twice) and a consumer asks for another's bill (refused,
  nothing disclosed); the invariants check that every message is answered once and that each bill
  reply tells the latest bill and what the ledger said was owed.

`Features` is a mixin of `driver.Simulation` (it uses its clock, rng, staff, stats and notes)."""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from django.utils import timezone

from urja.core.calendars import IST
from urja.core.errors import DomainError

# Scale (docs/simulation.md): per month, 1 application per 200 consumers, 1 outage per 500,
# 1 BBPS payer per 100 (at least 1, 1, 2); mini-grid customers 2 (3 from 300 consumers) — counted on
# at most driver.DETAIL_CONSUMERS consumers (`n_detail`), a fixed sample beyond.
APPLICATIONS_PER = 200
OUTAGES_PER = 500
BBPS_PER = 100
CONVERSATIONS_PER = 100  # consumers writing to the bot a month: 1 per 100 (at least 2)
OUTAGE_HOURS = 20  # beyond every DT timeline of no_power_supply (urban 4 h, rural 18 h): compensated
# Line and DT-structure shifting: one a month, the kinds in turn (a DT structure first, so that a short run
# moves one); the simulated work (estimate in rupees, route length in metres, structures moved) and where to.
NETWORK_KINDS = ("dt_shifting", "lt_line_shifting", "11kv_line_shifting", "33kv_line_shifting")
NETWORK_WORK = {
    "dt_shifting": ("62000", None, None),
    "lt_line_shifting": ("18500", 60, 2),
    "11kv_line_shifting": ("96000", 240, 4),
    "33kv_line_shifting": ("185000", 420, 5),
}
NETWORK_WHERE = {
    "dt_shifting": "the DT in front of the gate, to the corner of the plot",
    "lt_line_shifting": "the LT line across the plot, to the road edge",
    "11kv_line_shifting": "the 11 kV line over the new building, along the boundary wall",
    "33kv_line_shifting": "the 33 kV line across the plot, to the road margin",
}


@dataclass
class Applied:
    application_id: int
    outcome: str  # energize | reject
    channel: str  # counter | online | upi


def _midnight(d: date) -> datetime:
    return datetime.combine(d, datetime.min.time(), IST)


class Features:
    # ---- setup ---------------------------------------------------------------------------------

    def setup_features(self) -> None:
        from urja.servicedesk.demo import _ensure_catalogue

        _ensure_catalogue()  # the SoP schedule: outages and new connections are judged by it
        self.applications: list[Applied] = []
        self.to_energize: list[int] = []  # applications paid, connected on the next 1st
        self.mg: list = []  # mini-grid Connections (smart prepaid, package-priced)
        self.mg_customers: dict[int, object] = {}  # account id -> SiteCustomer
        self.outage_dts: list[int] = []
        self.network_due: list[int] = []  # line / DT-structure shiftings paid, worked early next month
        self.network_accounts: set[int] = set()  # accounts with one open
        self._setup_outage_dts()
        if self.demo:
            self.note("demo: new connections and the mini-grid are left to their demo hooks")
        else:
            self._setup_minigrid()

    def _setup_outage_dts(self) -> None:
        """Boundary meters on the DTs with the most simulated consumers (a DT's own meter's last
        gasp declares the outage on it, whatever share of its consumers have smart meters)."""
        from urja.metering import boundary
        from urja.metering import services as metering
        from urja.metering.models import BoundaryInstallation
        from urja.network.models import DistributionTransformer

        per_dt: dict[int, int] = {}
        for conn in self.connections:
            dt = conn.account.transformer_id
            if dt and not conn.account.is_prepaid:
                per_dt[dt] = per_dt.get(dt, 0) + 1
        wanted = max(1, self.n_detail // OUTAGES_PER)
        ranked = sorted(per_dt, key=lambda d: (-per_dt[d], d))[:wanted]
        for dt_id in ranked:
            if not BoundaryInstallation.objects.filter(transformer_id=dt_id, removed_at__isnull=True).exists():
                meter = metering.register_meter(
                    serial=self.serial("DT"),
                    make="Secure",
                    meter_type="ct_pt_ht",
                    phase=3,
                    register_digits=8,
                    actor=self.engineer,
                    channel="backoffice",
                )
                boundary.install_boundary_meter(
                    meter=meter,
                    actor=self.engineer,
                    channel="backoffice",
                    transformer=DistributionTransformer.objects.get(pk=dt_id),
                    installed_at=self.clock.current,
                )
            self.outage_dts.append(dt_id)
        self.note(f"outages: boundary meters on {len(self.outage_dts)} DT(s) of the simulated consumers")

    def _setup_minigrid(self) -> None:
        from urja.demo import DEMO_SERIES  # noqa: F401  (the demo's numbering is already loaded)
        from urja.metering import services as metering
        from urja.minigrid import services as mg
        from urja.minigrid.demo import _operator
        from urja.network.models import MiniGridSite

        from .driver import Connection, Meter

        site = getattr(self.org, "minigrid_site", None) or MiniGridSite.objects.order_by("pk").first()
        if site is None:
            self.note("no mini-grid site: mini-grid not simulated")
            return
        self.mg_site, self.mg_operator = site, _operator(site)
        codes = sorted(mg.packages(site))
        prepaid = [c for c in codes if mg.package_of(site, c).get("mode") == "prepaid"]
        if not prepaid:
            self.note(f"mini-grid site {site.code} has no prepaid package: mini-grid not simulated")
            return
        self.mg_packages = prepaid
        n = 1 + self.n_detail // 300  # each adds a prepaid day's charge and message a day
        for i in range(n):
            self.clock.tick(60)
            customer = mg.add_customer(
                actor=self.mg_operator,
                channel="field_agent",
                site=site,
                name=f"Simulated MG customer {self.seed}-{i + 1}",
                mobile=f"9437{self.seed % 100:02d}{i:04d}",
                address=f"House {i + 1}, {site.village}",
                package_code=prepaid[i % len(prepaid)],
            )
            meter = metering.register_meter(
                serial=self.serial("MG"),
                make="Genus",
                meter_type="smart_prepaid",
                actor=None,
                channel="system",
            )
            metering.install_meter(
                account=customer.account,
                meter=meter,
                actor=None,
                channel="system",
                installed_at=self.clock.current,
                initial_kwh=0,
            )
            package = mg.package_of(site, customer.account.package_code)
            kwh = float(Decimal(str(package.get("max_load_w", 100))) / 1000 * mg.hours_per_day(package) * 30 / 3)
            conn = Connection(
                account=customer.account,
                meter=Meter(meter.serial, "smart_prepaid", Decimal(1), 6, Decimal(0)),
                monthly_kwh=max(kwh, 3.0),
                payer="prompt",
                channel="minigrid",
            )
            self.mg.append(conn)
            self.mg_customers[customer.account.pk] = customer
        self.note(f"mini-grid site {site.code}: {n} customers with smart prepaid meters (packages {prepaid})")

    # ---- outages -----------------------------------------------------------------------------

    def outages(self, y: int, m: int) -> None:
        """Last gasps from a DT's meters early in the month (the 2nd, after the bill runs), restores
        OUTAGE_HOURS later; the detector (its periodic job, run as the gateway's events arrive)
        declares, restores and compensates every consumer of the DT."""
        from urja.metering.models import BoundaryInstallation, Installation, SmartMeterEvent
        from urja.reports import outages as detector
        from urja.servicedesk.models import Outage

        if not self.outage_dts:
            return
        k = self.months.index((y, m))
        dt = self.outage_dts[k % len(self.outage_dts)]
        serials = list(
            BoundaryInstallation.objects.filter(transformer_id=dt, removed_at__isnull=True).values_list(
                "meter__serial", flat=True
            )
        )
        serials += list(
            Installation.objects.filter(
                removed_at__isnull=True, account__transformer_id=dt, meter__meter_type__in=["smart", "smart_prepaid"]
            ).values_list("meter__serial", flat=True)
        )
        start = max(self.clock.current, _midnight(date(y, m, 2)).replace(hour=7)) + timedelta(minutes=5)
        back = start + timedelta(hours=OUTAGE_HOURS)
        before = set(Outage.objects.values_list("pk", flat=True))

        def send(kind: str, at: datetime) -> list:
            msgs = [(s, {"event": kind, "ts": (at + timedelta(seconds=i)).isoformat()}) for i, s in enumerate(serials)]
            self._publish_events(msgs)
            return msgs

        self.clock.set(start + timedelta(minutes=1))
        fails = send("power_fail", start)
        self.clock.set(start + timedelta(minutes=2))
        declared = detector.run_detector(now=self.clock.current)["declared"]
        if self.faults:  # the meters re-send their last gasps (QoS 1 redelivery): nothing new declared
            self._publish_events(fails)
            again = detector.run_detector(now=self.clock.current)["declared"]
            self.report.faults_seen.append(f"last gasps re-sent: declared again {again}")
        self.clock.set(back + timedelta(minutes=1))
        restores = send("power_restore", back)
        self.clock.set(back + timedelta(minutes=2))
        restored = detector.run_detector(now=self.clock.current)["restored"]
        if self.faults:
            self._publish_events(restores)
            detector.run_detector(now=self.clock.current)
        new = Outage.objects.exclude(pk__in=before)
        self.stats.outages += new.count()
        events = SmartMeterEvent.objects.filter(meter__serial__in=serials, at__gte=start).count()
        if not declared:
            self.note(f"{y}-{m:02d}: outage on DT {dt} not declared from {len(serials)} meters ({events} events)")
        elif not restored:
            self.note(f"{y}-{m:02d}: outage {declared} declared but not restored by the detector")

    def _publish_events(self, messages: list[tuple[str, dict]]) -> None:
        from urja.metering import mqtt

        gw = self._gateway()
        for serial, body in messages:
            gw.inbox.put((mqtt.topic(serial, "events"), json.dumps(body).encode()))
        while not gw.inbox.empty():
            gw.drain()

    # ---- BBPS ------------------------------------------------------------------------------------

    def bbps_payment(self, *, conn, bill, amount: Decimal, on_time: bool, key: str) -> bool:
        """A consumer pays through a BBPS agent: the bill fetched, then the payment posted with its
        BBPS reference (a replay of the same reference returns the first payment). Returns whether
        a payment was made."""
        from urja.payments import bbps

        number = conn.account.consumer_number
        fetched = bbps.fetch_bill(consumer_number=number)
        self.checker.observe(
            "bbps_fetch",
            {
                "consumer_number": number,
                "account_id": conn.account.pk,
                "bill_number": fetched["bill_number"],
                "bill_amount": str(fetched["bill_amount"]),
                "late_payment_amount": str(fetched["late_payment_amount"]),
                "early_payment_amount": str(fetched["early_payment_amount"]),
                "at": timezone.now().isoformat(),
            },
        )
        self.clock.tick(45)  # the agent reads the bill to the consumer, who pays
        due = fetched["early_payment_amount"] if on_time else fetched["bill_amount"]
        amount = min(amount, due) if conn.payer == "partial" else due
        if amount <= 0:
            return False
        reference = f"BB{self.seed % 100:02d}{key.split(':')[-1]}{conn.account.pk:07d}"
        mode = self.rng.choice(["UPI", "Internet Banking", "Debit Card", "Wallet"])
        first = bbps.post_payment(
            consumer_number=number, amount=amount, bbps_reference=reference, payment_mode=mode, paid_at=timezone.now()
        )
        if self.faults or self.rng.random() < 0.3:  # the BBPOU retries (no response seen)
            again = bbps.post_payment(
                consumer_number=number, amount=amount, bbps_reference=reference, payment_mode=mode
            )
            self.report.faults_seen.append(f"BBPS reference {reference} posted again: receipt {again.receipt_number}")
            if again.pk != first.pk:
                self.bad_input(
                    kind="bbps_replay",
                    consumer_number=number,
                    landed=False,
                    detail=f"BBPS reference {reference} posted twice: {first.receipt_number}, {again.receipt_number}",
                )
            try:  # the same reference with another amount: refused, nothing posted
                bbps.post_payment(
                    consumer_number=number,
                    amount=amount + Decimal("1.00"),
                    bbps_reference=reference,
                    payment_mode=mode,
                )
                landed, detail = False, "accepted"
            except DomainError as exc:
                landed, detail = True, f"refused {exc.code}"
            self.bad_input(
                kind="bbps_reference_other_amount",
                consumer_number=number,
                landed=landed,
                detail=f"BBPS reference {reference} again with another amount: {detail}",
            )
        self.stats.bbps += 1
        return True

    # ---- new connections ---------------------------------------------------------------------------

    def connections_phase(self, y: int, m: int) -> None:
        """The month's applications, on the 28th evening at the section office: registered,
        inspected (every third month one more, not feasible: rejected), demand note, paid (counter,
        gateway, UPI; replays); energized early next month (`energize_paid`), then read, billed, paid."""
        from urja.connections import services as conn_services
        from urja.connections.demo import OWNER_DOCS, PLACES

        if self.demo:
            return
        k = self.months.index((y, m))
        n = max(1, self.n_detail // APPLICATIONS_PER)
        sections = []
        for c in self.connections:
            if c.account.section.level == "section" and c.account.section not in sections:
                sections.append(c.account.section)
        if not sections:
            self.note("no section among the simulated accounts: no new connections")
            return
        self.clock.at(date(y, m, 28), 19, 30)
        # n applications that go through to the supply (their demand notes paid on the counter, the
        # gateway and UPI in turn), and in every third month one more found not feasible
        plan = [("energize", ("counter", "online", "upi")[(k * n + i) % 3]) for i in range(n)]
        if k % 3 == 1:
            plan.append(("reject", ""))
        for i, (outcome, channel) in enumerate(plan):
            serial_no = k * (n + 1) + i
            place = PLACES[serial_no % 2]  # around Balasore (inside the licence area)
            self.clock.tick(120)
            try:
                app = conn_services.register_application(
                    actor=self.cre,
                    channel="care_centre",
                    name=f"Simulated applicant {self.seed}-{serial_no + 1}",
                    mobile=f"9861{self.seed % 100:02d}{serial_no:04d}",
                    applicant_type="owner",
                    premises_address=f"House {serial_no + 1}, {place[0]}",
                    latitude=place[1],
                    longitude=place[2],
                    area_class=place[3],
                    section=sections[serial_no % len(sections)],
                    supply_type="lt_1ph",
                    load=str(1 + serial_no % 3),
                    category="domestic",
                    documents=OWNER_DOCS,
                )
            except DomainError as exc:
                self.note(f"application refused ({exc.code}): {exc.message}")
                continue
            self.stats.applications += 1
            self.applications.append(Applied(app.pk, outcome, channel))
            self._advance_application(app, outcome=outcome, channel=channel, key=f"{y}{m:02d}{i}")

    def _advance_application(self, app, *, outcome: str, channel: str, key: str) -> None:
        from urja.connections import services as conn_services

        self.clock.tick(1800)
        if outcome == "reject":
            conn_services.record_inspection(
                actor=self.engineer,
                channel="section_office",
                application=app,
                feasible=False,
                distance_m=640,
                notes="no LT line within 640 m; an 11 kV extension needs right of way (simulated)",
            )
            self.stats.rejected += 1
            return
        conn_services.record_inspection(
            actor=self.engineer, channel="section_office", application=app, feasible=True, distance_m=18
        )
        self.clock.tick(1800)
        conn_services.issue_demand_note(actor=self.engineer, channel="section_office", application=app)
        app.refresh_from_db()
        self.clock.tick(1800)
        self._pay_demand_note(app, channel=channel, key=key)
        app.refresh_from_db()
        if app.status != "dn_paid":
            self.note(f"application {app.number}: demand note not settled after payment ({app.status})")
            return
        self.to_energize.append(app.pk)

    def energize_paid(self, y: int, m: int) -> None:
        """Early in the month (after the previous period's bill runs of the 2nd), the crew connects
        the applications paid last month: meter installed, account active from today."""
        from urja.connections import services as conn_services
        from urja.connections.models import Application
        from urja.metering import services as metering

        pending, self.to_energize = self.to_energize, []
        if not pending:
            return
        self.clock.at(date(y, m, 2), 10)
        for app in Application.objects.filter(pk__in=pending).select_related("account").order_by("pk"):
            self.clock.tick(1800)
            meter = metering.register_meter(
                serial=self.serial("NC"), make="Genus", meter_type="static", actor=self.engineer, channel="backoffice"
            )
            app = conn_services.energize(
                actor=self.engineer, channel="section_office", application=app, meter_serial=meter.serial
            )
            self.stats.energized += 1
            self._connect(app, meter.serial)

    def _pay_demand_note(self, app, *, channel: str, key: str) -> None:
        from urja.connections import selectors as conn_selectors
        from urja.connections import services as conn_services
        from urja.payments import services as pay

        number = app.account.consumer_number
        amount = conn_selectors.outstanding(app)
        idem = f"sim{self.seed}:dn:{app.number}"
        if channel == "counter":
            self._cashier_session()
            conn_services.pay_demand_note(actor=self.cre, channel="counter", application=app, idempotency_key=idem)
            if self.faults:  # the counter's request replayed (a double click, a retried POST)
                from urja.payments.models import Payment

                again = pay.take_payment(
                    actor=self.cre,
                    channel="counter",
                    consumer_number=number,
                    amount=amount,
                    idempotency_key=idem,
                    reference=app.demand_note.number,
                    notify=False,
                )
                held = Payment.objects.filter(idempotency_key__endswith=idem).count()
                self.report.faults_seen.append(
                    f"demand note {app.demand_note.number} payment replayed at the counter: receipt "
                    f"{again.receipt_number}, {held} payment(s) for the key"
                )
        else:
            order = pay.create_order(consumer_number=number, amount=amount, channel=channel)
            if channel == "upi":
                pay.reconcile_upi(
                    actor=self.billing_officer, reference=order.reference, amount=amount, utr=f"UTRDN{app.pk:010d}"
                )
                if self.faults:  # the bank statement's line reconciled again
                    with contextlib.suppress(DomainError):
                        pay.reconcile_upi(
                            actor=self.billing_officer,
                            reference=order.reference,
                            amount=amount,
                            utr=f"UTRDN{app.pk:010d}",
                        )
                    self.report.faults_seen.append("demand note UPI line reconciled twice")
            else:
                body, header = pay.dev_gateway_event(order=order, outcome="success")
                pay.handle_webhook(gateway=order.gateway, body=body, signature=header)
                if self.faults:
                    pay.handle_webhook(gateway=order.gateway, body=body, signature=header)
                    self.report.faults_seen.append("demand note webhook delivered twice")
            # the periodic job settles notes paid on channels that do not call connections
            conn_services.sweep_paid_demand_notes()
        self.stats.payments += 1

    def _connect(self, app, serial: str) -> None:
        """The energized account joins the simulated connections: read, billed and paid from now."""
        from .driver import Connection, Meter

        app.account.refresh_from_db()
        conn = Connection(
            account=app.account,
            meter=Meter(serial, "static", Decimal(1), 6, Decimal(0)),
            monthly_kwh=float(app.load) * 60,
            payer="prompt",
            channel="counter",
            since=app.energized_at,
        )
        self.connections.append(conn)
        self.by_cycle[app.account.bill_cycle].append(conn)

    # ---- meter shifting ------------------------------------------------------------------------------

    def meter_shifting(self, y: int, m: int) -> None:
        """One meter shifted within the premises a month, on the 28th evening after the applications:
        requested at the care centre, inspected (new location, geo point, estimate), demand note on the
        ledger. With faults the consumer first pays part of what is owed at the counter, which the
        ledger's allocation order gives to the older dues: the note must stay unpaid. Then the counter
        takes what settles the note and the crew shifts the meter."""
        from urja.connections import changes, shifting

        if self.demo:
            return
        pool = [
            c for c in self.connections if not c.closed and not c.account.is_prepaid and c.account.status == "active"
        ]
        if not pool:
            return
        if self.faults:  # a consumer who owes, so that a payment can go to older dues than the note
            pool = [c for c in pool if c.payer in ("never", "late", "partial")] or pool
        conn = pool[(self.months.index((y, m)) * 37 + self.seed) % len(pool)]
        self.clock.tick(600)
        try:
            change = changes.request_change(
                actor=self.cre, channel="care_centre", account=conn.account, kind="meter_shifting",
                details={"location": "inside the verandah, east wall (simulated)"},
            )  # fmt: skip
        except DomainError as exc:
            self.note(f"meter shifting refused ({exc.code}): {exc.message}")
            return
        self.clock.tick(1800)
        change = shifting.inspect(
            actor=self.engineer, channel="section_office", change=change, feasible=True,
            new_location="verandah, east wall", latitude="21.494600", longitude="86.933300", estimate="650",
        )  # fmt: skip
        change = self._shifting_note_paid(change, account=conn.account, what="meter shifting")
        if change is None:
            return
        self.clock.tick(3 * 3600)
        shifting.complete(actor=self.engineer, channel="section_office", change=change, acknowledged_by="the consumer")
        self.stats.shiftings += 1

    # ---- line and DT-structure shifting --------------------------------------------------------------

    def network_shifting(self, y: int, m: int) -> None:
        """One line or DT-structure shifting a month, of a rotating kind (a DT structure, an LT line, an
        11 kV line, a 33 kV line), on the 28th evening after the meter shifting: requested at the care
        centre (by the consumer, a builder or another affected party, through the account), inspected
        naming the element (the account's DT, or a feeder of the kind's voltage in the section), with
        the route and structures (a DT's new geo point), the estimate as the demand note on the ledger.
        With faults a note-sized payment first, which goes to older dues; then the counter takes what
        settles the note. The crew does the work early next month (`network_field_work`)."""
        from urja.connections import changes, shifting

        if self.demo:
            return
        k = self.months.index((y, m))
        kind = NETWORK_KINDS[k % len(NETWORK_KINDS)]
        pool = [
            c for c in self.connections
            if not c.closed and not c.account.is_prepaid and c.account.status == "active"
            and c.account.transformer_id and c.account.minigrid_site_id is None
            and c.account.pk not in self.network_accounts
        ]  # fmt: skip
        if self.faults:  # a consumer who owes, so that a payment can go to older dues than the note
            pool = [c for c in pool if c.payer in ("never", "late", "partial")] or pool
        if not pool:
            return
        start = (k * 53 + self.seed + 11) % len(pool)
        conn = pool[start]
        if self.faults:  # the first from there who owes now (none does before the first bills)
            from urja.billing import ledger

            turn = pool[start:] + pool[:start]
            conn = next((c for c in turn[:20] if ledger.balance(account=c.account) > 0), conn)
        account = conn.account
        account.refresh_from_db()
        requester = ("consumer", "builder", "affected_party")[k % 3]
        estimate, length, structures = NETWORK_WORK[kind]
        inspection: dict = {"estimate": estimate}
        if kind in ("dt_shifting", "lt_line_shifting"):
            dt = shifting.elements(kind, account=account)
            dt = next((d for d in dt if d.pk == account.transformer_id), dt[0] if dt else None)
            if dt is None or (kind == "dt_shifting" and dt.latitude is None):
                self.note(f"{kind}: no DT with a geo point in {account.section.code}")
                return
            inspection["element"] = dt.code
            if kind == "dt_shifting":  # about 45 m north-east, off the new plot's frontage
                inspection.update(latitude=str(dt.latitude + Decimal("0.0003")),
                                  longitude=str(dt.longitude + Decimal("0.0003")))  # fmt: skip
        else:
            feeders = shifting.elements(kind, account=account)
            if not feeders:
                self.note(f"{kind}: no feeder of its voltage in {account.section.code}")
                return
            inspection["element"] = feeders[k % len(feeders)].code
        if length:
            inspection.update(route_length_m=str(length), structures=str(structures))
        self.clock.at(date(y, m, 28), 21)
        try:
            change = changes.request_change(
                actor=self.cre, channel="care_centre", account=account, kind=kind,
                details={"location": NETWORK_WHERE[kind], "reason": "a new building on the plot (simulated)",
                         "requester": requester,
                         "requested_by": "" if requester == "consumer" else f"Simulated {requester} {self.seed}-{k}"},
            )  # fmt: skip
        except DomainError as exc:
            self.note(f"{kind} refused ({exc.code}): {exc.message}")
            return
        self.network_accounts.add(account.pk)
        self.clock.tick(1800)
        change = shifting.inspect(actor=self.engineer, channel="section_office", change=change, feasible=True,
                                  **inspection)  # fmt: skip
        change = self._shifting_note_paid(change, account=account, what=kind)
        if change is None:
            return
        self.network_due.append(change.pk)

    def _shifting_note_paid(self, change, *, account, what: str):
        """A shifting's demand note issued and paid at the counter; with faults, first a payment the size
        of the note while older dues are open (the allocation order gives it to them, so the note stays
        unpaid). The change in field work, or None (noted) when the note did not settle."""
        from urja.connections import shifting
        from urja.connections.models import ChangeStatus
        from urja.payments import services as pay

        change = shifting.issue_demand_note(actor=self.engineer, channel="section_office", change=change)
        self.clock.tick(1800)
        self._cashier_session()
        due = shifting.still_to_pay(change)
        if self.faults and due > change.charge:
            pay.take_payment(
                actor=self.cre, channel="counter", consumer_number=account.consumer_number, amount=change.charge,
                idempotency_key=f"sim{self.seed}:shift-part:{change.number}", notify=False,
            )  # fmt: skip
            self.stats.payments += 1
            if shifting.settle_payment(change=change):
                self.note(f"{what} {change.number}: a payment short of the dues before its note paid it")
            self.report.faults_seen.append(f"{what} {change.number}: a payment the size of the note went to older dues")
        change.refresh_from_db()
        change = shifting.pay_demand_note(
            actor=self.cre, channel="counter", change=change, idempotency_key=f"sim{self.seed}:shift:{change.number}"
        )
        self.stats.payments += 1
        if change.status != ChangeStatus.FIELD_WORK:
            self.note(f"{what} {change.number}: demand note not settled after payment ({change.status})")
            return None
        return change

    def network_field_work(self, y: int, m: int) -> None:
        """On the 3rd (after the outage of the 2nd), the crew does the line and DT-structure shiftings
        paid last month: the work recorded as built; a DT structure's geo point moves on the network. The
        last month's stays due at the end of the run (its DT must not have moved)."""
        from urja.connections import shifting
        from urja.connections.models import ChangeRequest

        due, self.network_due = self.network_due, []
        if not due:
            return
        self.clock.at(date(y, m, 3), 11)
        for change in ChangeRequest.objects.filter(pk__in=due).order_by("pk"):
            self.clock.tick(3 * 3600)
            shifting.complete(
                actor=self.engineer, channel="section_office", change=change, acknowledged_by="the requester",
                notes=f"{change.get_kind_display()}: work done as inspected, tested and charged (simulated)",
            )  # fmt: skip
            self.stats.network_shiftings += 1
            self.network_accounts.discard(change.account_id)

    # ---- WhatsApp and SMS --------------------------------------------------------------------------

    def _bot_mobile(self, conn) -> str | None:
        """The consumer's mobile when it names them alone and they hold one account (a shared number
        is answered with an account picker, another conversation)."""
        from urja.channels.services import identity
        from urja.customers.models import Contact

        mobile = (
            Contact.objects.filter(consumer_id=conn.account.consumer_id, kind=Contact.Kind.MOBILE)
            .values_list("value", flat=True)
            .first()
        )
        if not mobile:
            return None
        holders = identity.consumers_with_mobile(mobile)
        if [c.pk for c in holders] != [conn.account.consumer_id] or holders[0].accounts.count() != 1:
            return None
        return mobile

    def conversations(self, y: int, m: int) -> None:
        """The 28th evening: consumers write to the bot — "Hi" and "bill" on WhatsApp, `BILL <their
        number>` by SMS — stored as the webhooks store them (`bot.accept`) and answered as the job the
        webhooks kick answers them (`bot.answer_all_pending`: its runs, here). Faults: Meta redelivers a
        message; a consumer asks by SMS for another consumer's bill."""
        from urja.billing.models import Bill, LedgerEntry
        from urja.channels.models import InboundMessage
        from urja.channels.services import bot

        rng = self.rng
        self.clock.at(date(y, m, 28), 18, 30)
        want = max(2, self.n_detail // CONVERSATIONS_PER)
        pool = [c for c in self.connections[: self.n_detail] if not c.closed and c.account.bills.exists()]
        rng.shuffle(pool)
        talking: list[tuple] = []
        for conn in pool[: want * 3]:
            mobile = self._bot_mobile(conn)
            if mobile:
                talking.append((conn, mobile))
            if len(talking) == want:
                break
        stored: list[tuple] = []  # (message, connection, asks for the bill)
        for i, (conn, mobile) in enumerate(talking):
            number = conn.account.consumer_number
            wa_id = mobile.lstrip("+")
            for text in ("Hi", "bill"):
                self.clock.tick(20)
                inbound = bot.Inbound(channel="whatsapp", message_id=f"wamid.SIM{self.serial('W')}", sender=wa_id,
                                      text=text, payload={"type": "text", "text": {"body": text}})  # fmt: skip
                stored.append((bot.accept(inbound), conn, text == "bill"))
            if i % 2 == 0:  # and by SMS, the keyword with the consumer number
                self.clock.tick(60)
                sms = bot.Inbound(channel="sms", message_id=f"SIM{self.serial('S')}", sender=mobile,
                                  text=f"BILL {number}")  # fmt: skip
                stored.append((bot.accept(sms), conn, True))
        if talking and (self.faults or rng.random() < 0.3):
            first = next(m for m, _, _ in stored if m.channel == "whatsapp")
            redelivered = bot.Inbound(channel="whatsapp", message_id=first.message_id, sender=first.sender.lstrip("+"),
                                      text=first.text)  # fmt: skip
            again = bot.accept(redelivered)
            self.report.faults_seen.append(f"WhatsApp message {first.message_id} delivered again")
            self.bad_input(
                kind="whatsapp_redelivery",
                consumer_number=talking[0][0].account.consumer_number,
                landed=again is None,
                detail=f"{first.message_id} stored {'once' if again is None else 'twice'}",
            )
        asking_for_another = None
        if len(talking) >= 2 and (self.faults or rng.random() < 0.3):
            (conn, mobile), (other, _) = talking[0], talking[1]
            self.clock.tick(60)
            asking = bot.Inbound(channel="sms", message_id=f"SIM{self.serial('S')}", sender=mobile,
                                 text=f"BILL {other.account.consumer_number}")  # fmt: skip
            asking_for_another = bot.accept(asking)
            stored.append((asking_for_another, conn, False))
        entry_upto = LedgerEntry.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
        bill_upto = Bill.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
        bot.answer_all_pending()  # the runs of the job the webhooks kick (channels.tasks.answer_inbound)
        for message, conn, asks_bill in stored:
            observed = {"message_pk": message.pk, "consumer_number": conn.account.consumer_number}
            self.checker.observe("bot_message", observed)
            if asks_bill:
                self.checker.observe(
                    "bot_bill", {**observed, "account_id": conn.account.pk, "entry_upto": entry_upto,
                                 "bill_upto": bill_upto},
                )  # fmt: skip
        if asking_for_another is not None:
            answered = InboundMessage.objects.get(pk=asking_for_another.pk)
            other_number = talking[1][0].account.consumer_number
            self.bad_input(
                kind="bill_of_another_consumer",
                consumer_number=talking[0][0].account.consumer_number,
                landed=answered.intent == "not_yours" and other_number not in answered.reply,
                detail=f"asked by SMS for {other_number}: {answered.intent}",
            )
        self.stats.conversations += len(talking)

    # ---- energy accounting -------------------------------------------------------------------------

    def energy_accounting(self, y: int, m: int) -> None:
        """The hourly job's work after the bill runs: the period just billed (the job recomputes the
        month before too, for its late payments; the simulation checks each period once, billed)."""
        from urja.reports import services as reports

        period = f"{y}-{m:02d}"
        reports.compute_period(period=period)
        self.checker.observe("accounting_period", period)

    # ---- mini-grid -----------------------------------------------------------------------------------

    def minigrid(self, y: int, m: int) -> None:
        """On the 1st at the site: the periodic package-change job, each customer's recharge (cash
        or mobile wallet; replayed with --faults), and one package change a month through every step."""
        from urja.minigrid import services as mg
        from urja.minigrid.models import PackageChange

        if not self.mg:
            return
        k = self.months.index((y, m))
        self.clock.at(date(y, m, 1), 8, 30)
        mg.run_package_changes()
        self._meters_answer()
        mg.run_package_changes()
        for i, conn in enumerate(self.mg):
            customer = self.mg_customers[conn.account.pk]
            self.clock.tick(120)
            mode = "cash" if (i + k) % 2 == 0 else "mobile_wallet"
            key = f"sim{self.seed}:mg:{customer.customer_id}:{y}{m:02d}"
            amount = Decimal(self.rng.choice([200, 300, 500]))
            if k == 0:
                amount += mg.credit_of(customer).copy_abs() if mg.credit_of(customer) > 0 else 0
            args = dict(
                actor=self.mg_operator, customer=customer, amount=amount, mode=mode, idempotency_key=key,
                reference=f"PTM{self.seed}{y}{m:02d}{i}",
            )  # fmt: skip
            first = mg.recharge(**args)
            if self.faults and i == 0:
                again = mg.recharge(**args)
                if again.pk != first.pk:
                    self.bad_input(
                        kind="minigrid_recharge_replayed",
                        consumer_number=conn.account.consumer_number,
                        landed=False,
                        detail=f"a replayed recharge posted twice: {first.receipt_number}, {again.receipt_number}",
                    )
            self.stats.mg_recharges += 1
        # one package change a month, its top-up paid by a recharge, the meter reprogrammed
        conn = self.mg[k % len(self.mg)]
        customer = self.mg_customers[conn.account.pk]
        customer.refresh_from_db()
        customer.account.refresh_from_db()
        target = next((p for p in self.mg_packages if p != customer.account.package_code), None)
        open_change = PackageChange.objects.filter(
            customer=customer, status__in=["requested", "approved", "scheduled", "programming"]
        ).exists()
        if target is None or open_change or customer.account.status != "active":
            return
        self.clock.tick(600)
        change = mg.request_package_change(
            actor=self.mg_operator,
            channel="field_agent",
            customer=customer,
            to_package=target,
            when="next_period" if k % 2 else "now",
        )
        self.clock.tick(600)
        change = mg.decide(actor=self.mg_operator, channel="backoffice", change=change, approve=True)
        owed = mg.credit_of(customer)
        if owed > 0:  # the deposit top-up of the bigger package
            self.clock.tick(300)
            mg.recharge(
                actor=self.mg_operator,
                customer=customer,
                amount=owed + Decimal(100),
                mode="cash",
                idempotency_key=f"sim{self.seed}:mg:topup:{change.number}",
            )
        change = mg.advance(change=change)
        self._meters_answer()
        change = mg.advance(change=change)
        self.stats.mg_changes += 1
        if change.status not in ("in_force", "scheduled"):
            self.note(f"{y}-{m:02d}: package change {change.number} left {change.status}")

    def _meters_answer(self) -> None:
        """The gateway publishes the queued meter commands and the meters acknowledge them (acks
        through the gateway's inbox, as from the broker)."""
        from urja.metering import mqtt

        gw = self._gateway()

        class Wire:  # the broker connection: what the gateway publishes, the meters answer
            def __init__(self):
                self.published: list = []

            def publish(self, topic, payload, qos=1):
                self.published.append((topic, payload))

        real_client, wire = gw.client, Wire()
        gw.client = wire
        gw.connected.set()
        try:
            gw.dispatch()
        finally:
            gw.client = real_client
            gw.connected.clear()
        for topic, payload in wire.published:
            serial = mqtt.parse_topic(topic.replace("/commands", "/acks"))[0]
            command_id = json.loads(payload)["command_id"]
            body = json.dumps({"command_id": command_id, "status": "ok"}).encode()
            gw.inbox.put((mqtt.topic(serial, "acks"), body))
        while not gw.inbox.empty():
            gw.drain()
