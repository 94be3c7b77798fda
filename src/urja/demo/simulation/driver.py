"""The month loop of `urja simulate` (issue 10): a utility's meter-to-cash and service chain,
month after month, through the public services only.

Time: the simulated months are the last N complete months; each event happens at its own date
on the simulation clock (`clock.simulated_time`), so due dates, surcharges, SLA clocks and
audit trails see the dates a real utility would. Every random choice comes from one seeded
`random.Random`, so a run is reproducible on an empty database.

Per month (k = 0 … N-1, period p_k):

1. readings of p_k on each cycle's read day: field agent with a photo, consumer self-reading,
   door locked, meter defective (→ estimated), no visit (→ the bill run estimates), AMR file
   (metering.importer), smart meters through `store_smart_batch` (the MQTT gateway's entry) with
   ToD registers and MD; a meter replacement and a register rollover; bad input (duplicates,
   out-of-order, a file of the wrong cycle);
2. money for the bills of p_{k-1}: counter (cashier session, cash and cheque), field agent (cash,
   deposited), gateway orders with signed webhooks (a retry), UPI reconciliation, a bank
   settlement file; partial, late, advance payments, a cheque bounce; prepaid recharges and
   daily charges; collections sweep and disconnection notices; a load change, a credit note
   (maker-checker), a permanent disconnection with its final bill and a payment for it;
3. the bill runs of p_k on their bill date (with --faults: a worker killed mid-partition);
4. the invariants (`invariants.Checker`); a violation stops the run (unless keep_going).
"""

from __future__ import annotations

import calendar
import csv
import io
import json
import logging
import random
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from django.core.files.base import ContentFile
from django.db import transaction
from django.utils import timezone

from urja.core.calendars import IST
from urja.core.errors import DomainError

from .clock import SimClock, simulated_time
from .features import BBPS_PER, Features
from .invariants import Checker, Violation

log = logging.getLogger("urja.simulate")

# A 1×1 JPEG: the field agent's meter photo (record_reading needs one for a field reading).
PHOTO = bytes.fromhex(
    "ffd8ffe000104a46494600010100000100010000ffdb004300080606070605080707070909080a0c140d0c0b0b0c1912130f14"
    "1d1a1f1e1d1a1c1c20242e2720222c231c1c2837292c30313434341f27393d38323c2e333432ffc0000b080001000101011100"
    "ffc4001f0000010501010101010100000000000000000102030405060708090a0bffc400b5100002010303020403050504040000"
    "017d01020300041105122131410613516107227114328191a1082342b1c11552d1f02433627282090a161718191a2526272829"
    "2a3435363738393a434445464748494a535455565758595a636465666768696a737475767778797a838485868788898a929394"
    "95969798999aa2a3a4a5a6a7a8a9aab2b3b4b5b6b7b8b9bac2c3c4c5c6c7c8c9cad2d3d4d5d6d7d8d9dae1e2e3e4e5e6e7e8e9"
    "eaf1f2f3f4f5f6f7f8f9faffda0008010100003f00fbd0ffd9"
)
SEASON = {1: 0.8, 2: 0.85, 3: 1.0, 4: 1.25, 5: 1.4, 6: 1.3, 7: 1.1, 8: 1.05, 9: 1.05, 10: 0.95, 11: 0.85, 12: 0.8}
CYCLES_MONTHLY = ("C01", "C02", "C03", "C04", "HT")
# Per cycle and month, this many static meters are read one by one through `record_reading`
# (photo, self-reading, duplicates, late readings); the others' register values come in the field
# agents' handheld file (`importer.import_file(source="field_agent")`, VEE per batch). Door-locked
# and defective visits always go one by one (they carry no register value).
FIELD_DETAIL = 40
# Per payment channel and month, this many payments go through that channel's service one by
# one; the rest of the month's payers pay through the bank aggregator's settlement file
# (`payments.services.import_settlement`, the bulk path).
PAYMENT_DETAIL = 40
# The per-event samples that grow with the utility — applications, complaints, BBPS payers, DTs
# with a boundary meter for the outages, mini-grid customers, deposit holders — follow the number
# of consumers up to this many and stay there beyond (docs/simulation.md, "Cost"): at 20,000
# consumers a month has the 2,000-consumer run's events one by one, and the bulk paths (handheld
# and AMR files, the gateway, the settlement file, the bill runs and their e-bills) carry the rest.
DETAIL_CONSUMERS = 2000


@dataclass
class MonthStats:
    month: str
    bills: int = 0
    statements: int = 0
    payments: int = 0
    readings: int = 0
    exceptions: int = 0
    suspense: int = 0
    reviewed: int = 0
    requests: int = 0
    prepaid_charged: int = 0
    closed_late: int = 0
    reconnections: int = 0
    applications: int = 0
    energized: int = 0
    rejected: int = 0
    shiftings: int = 0
    network_shiftings: int = 0
    bbps: int = 0
    outages: int = 0
    mg_recharges: int = 0
    mg_changes: int = 0
    conversations: int = 0
    violations: int = 0
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    def line(self) -> str:
        return (
            f"{self.month}: bills {self.bills}, statements {self.statements}, payments {self.payments}, "
            f"readings {self.readings} ({self.reviewed} reviewed), exceptions {self.exceptions}, "
            f"suspense {self.suspense}, requests {self.requests} ({self.closed_late} late), "
            f"applications {self.applications} ({self.energized} energized, {self.rejected} rejected), "
            f"meter shiftings {self.shiftings}, line/DT shiftings {self.network_shiftings}, "
            f"BBPS {self.bbps}, outages {self.outages}, "
            f"mini-grid recharges {self.mg_recharges} "
            f"changes {self.mg_changes}, bot conversations {self.conversations}, "
            f"violations {self.violations} ({self.seconds:.1f}s)"
        )


@dataclass
class SimulationReport:
    months: int
    consumers: int
    seed: int
    faults: bool
    database: str = ""
    seconds: float = 0.0
    per_month: list[MonthStats] = field(default_factory=list)
    violations: list[Violation] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    bad_input: list[dict] = field(default_factory=list)
    faults_seen: list[str] = field(default_factory=list)
    stopped_at: str = ""
    phase_seconds: dict[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.violations

    def totals(self) -> dict:
        keys = (
            "bills",
            "statements",
            "payments",
            "readings",
            "reviewed",
            "exceptions",
            "suspense",
            "requests",
            "closed_late",
            "reconnections",
            "prepaid_charged",
            "applications",
            "energized",
            "rejected",
            "shiftings",
            "network_shiftings",
            "bbps",
            "outages",
            "mg_recharges",
            "mg_changes",
            "conversations",
        )
        return {k: sum(getattr(m, k) for m in self.per_month) for k in keys}

    def as_dict(self) -> dict:
        return {
            "months": self.months,
            "consumers": self.consumers,
            "seed": self.seed,
            "faults": self.faults,
            "database": self.database,
            "seconds": round(self.seconds, 1),
            "consumer_months": self.months * self.consumers,
            **self.totals(),
            "violations": len(self.violations),
            "violation_list": [v.as_dict() for v in self.violations[:200]],
            "stopped_at": self.stopped_at,
            "phase_seconds": {k: round(v, 1) for k, v in self.phase_seconds.items()},
            "bad_input": self.bad_input,
            "faults_seen": self.faults_seen,
            "notes": self.notes,
            "per_month": [m.line() for m in self.per_month],
        }


@dataclass
class Meter:
    """What the simulation knows of a connection's meter (the truth the readings report)."""

    serial: str
    kind: str  # static | smart | smart_prepaid | amr | ct_pt_ht
    mf: Decimal
    digits: int
    register: Decimal  # the register as the meter shows it (raw, before MF)
    tod: dict[str, Decimal] = field(default_factory=dict)
    kvah: Decimal | None = None  # the kVAh register of AMR / HT meters


@dataclass
class Connection:
    account: object
    meter: Meter
    monthly_kwh: float
    payer: str  # prompt | late | partial | advance | never
    channel: str  # counter | cheque | field_agent | online | upi | bank
    closed: bool = False
    since: datetime | None = None  # a new connection: energized at


def last_complete_months(today: date, n: int) -> list[tuple[int, int]]:
    """The last n months whose bill date (period end + 2 days) is before today."""
    y, m = today.year, today.month
    months = []
    # the current month is never simulated; the previous one only when its bill date has passed
    y, m = (y, m - 1) if m > 1 else (y - 1, 12)
    if today <= date(y, m, calendar.monthrange(y, m)[1]) + timedelta(days=2):
        y, m = (y, m - 1) if m > 1 else (y - 1, 12)
    for _ in range(n):
        months.append((y, m))
        y, m = (y, m - 1) if m > 1 else (y - 1, 12)
    return list(reversed(months))


def month_end(y: int, m: int) -> date:
    return date(y, m, calendar.monthrange(y, m)[1])


def next_month(y: int, m: int) -> tuple[int, int]:
    return (y, m + 1) if m < 12 else (y + 1, 1)


class Simulation(Features):
    def __init__(
        self,
        *,
        months: int,
        consumers: int,
        seed: int,
        faults: bool,
        stdout: Callable[[str], None],
        keep_going: bool = False,
        today: date | None = None,
        demo: bool = False,
    ):
        self.n_months, self.n_consumers, self.seed, self.faults = months, consumers, seed, faults
        # the size the per-event samples follow (DETAIL_CONSUMERS)
        self.n_detail = min(consumers, DETAIL_CONSUMERS)
        self.say = stdout
        self.keep_going = keep_going
        # the demo's simulation leaves new connections and the mini-grid to their demo hooks, which
        # build them at every stage and skip when their tables already hold data
        self.demo = demo
        self.rng = random.Random(seed)
        self.today = today or timezone.localdate()
        self.months = last_complete_months(self.today, months)
        y0, m0 = self.months[0]
        setup_day = date(y0, m0, 1) - timedelta(days=20)
        self.clock = SimClock(
            datetime.combine(setup_day, datetime.min.time(), IST).replace(hour=9), limit=timezone.now()
        )
        self.report = SimulationReport(months=months, consumers=consumers, seed=seed, faults=faults)
        self.connections: list[Connection] = []
        self.by_cycle: dict[str, list[Connection]] = defaultdict(list)
        self.tmp = Path(tempfile.mkdtemp(prefix="urja-sim-"))
        self.checker = Checker(seed=seed)
        self.seen_violations: set[tuple] = set()
        self.bad: list[dict] = []
        self.planted: set[int] = set()  # ids of readings fed as bad input
        self.open_requests: list[tuple] = []  # (closing moment, late, reopen, request id)
        self.session = None
        self.stats: MonthStats | None = None
        self._serial = 0

    # ---- helpers -----------------------------------------------------------------------

    def note(self, text: str) -> None:
        if text not in self.report.notes:
            self.report.notes.append(text)
            log.info(text)

    def bad_input(self, *, kind: str, consumer_number: str, landed: bool, detail: str) -> None:
        entry = {
            "month": self.stats.month if self.stats else "",
            "kind": kind,
            "consumer_number": consumer_number,
            "landed": landed,
            "detail": detail,
        }
        self.bad.append(entry)
        self.report.bad_input.append(entry)

    def serial(self, prefix: str) -> str:
        self._serial += 1
        return f"{prefix}{self.seed % 1000:03d}{self._serial:07d}"

    # ---- setup -------------------------------------------------------------------------

    def setup(self) -> None:
        from urja.core.services import allocate_numbers
        from urja.demo import DEMO_SERIES, build_organisation, ensure_staff
        from urja.demo.consumers import Lookups, create_with_services, validated_profiles
        from urja.demo.generator import ConsumerGenerator, Profile
        from urja.demo.organisation import people_data
        from urja.tariffs import services as tariffs

        rng = self.rng
        with transaction.atomic():
            tariffs.load_all()
            self.org = build_organisation(seed=self.seed)
            self.staff = ensure_staff()
        self.billing_officer, self.cre, self.engineer = self.staff["billing"], self.staff["cre"], self.staff["engineer"]
        self.agent, self.admin, self.manager = self.staff["agent"], self.staff["admin"], self.staff["manager"]
        # Every simulated connection is in Balasore division (BED): the demo staff's own scope
        # (CRE, engineer and billing officer at BED, the field agent at its first section).
        divisions = [i for i in self.org.infos if i.code == "BED"] or list(self.org.infos)
        generator = ConsumerGenerator(
            divisions=divisions, people=people_data(), profiles=validated_profiles(), seed=self.seed
        )
        n = self.n_consumers
        n_ht = max(1, n // 150)
        connected = self.clock.today() - timedelta(days=30)
        with transaction.atomic():
            first = int(allocate_numbers(key=DEMO_SERIES, template="{seq}", count=n)[0])
            specs = []
            for i in range(n):
                spec = generator.make(rng, first + i)
                spec.status, spec.connected_on = "active", connected
                if spec.profile.supply_type == "temporary":
                    spec.profile = Profile("domestic", "general", "lt_1ph", Decimal("2"), "kW", 0)
                if i < n_ht or (spec.profile.supply_type in ("ht", "eht")):
                    load = Decimal(rng.choice(["150", "300", "500"])) if i < n_ht else spec.profile.load
                    spec.profile = Profile("industrial", "medium", "ht", load, "kVA", 0)
                    spec.feeder_id, spec.transformer_id = spec.section.ht_feeder, None
                    spec.bill_cycle, spec.route, spec.is_prepaid = "HT", f"{spec.section.code}-HT", False
                elif i % 40 == 7 and i < 40 * 5 and i < n // 2:  # at most 5 prepaid (a message and a charge a day)
                    spec.profile = Profile("domestic", "general", "lt_1ph", Decimal("2"), "kW", 0)
                    spec.is_prepaid = True
                else:
                    spec.is_prepaid = False
                specs.append(spec)
            accounts = []
            lookups = Lookups()
            detail = min(n, DETAIL_CONSUMERS)
            for start in range(0, detail, 200):
                accounts += create_with_services(specs[start : min(start + 200, detail)], actor=None, lookups=lookups)
        if n > detail:
            accounts += self._bulk_consumers(specs[detail:], lookups)
        self.note(
            f"{n} consumers created in division BED ({n_ht} HT, {sum(1 for s in specs if s.is_prepaid)} prepaid): "
            f"{detail} through customers.services"
            + (f", {n - detail} through the demo's bulk path" if n > detail else "")
        )
        self._meters(accounts)
        self._tariff_changes()
        self.setup_features()

    def _bulk_consumers(self, specs: list, lookups) -> list:
        """The consumers beyond DETAIL_CONSUMERS through the demo's bulk path (`BulkWriter`: the
        numbering service's consumer numbers, the key-account manager `customers.services` would
        pick; COPY on PostgreSQL) — what `urja demo` uses at DISCOM scale. They are opened active
        with the specs' connection date, as those through the services are (the prepaid ones and
        the first HT ones are in the detail part)."""
        from urja.customers.models import Account
        from urja.demo.consumers import BulkWriter, needs_key_account_manager

        last_id = Account.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
        kam = {s.profile for s in specs if needs_key_account_manager(s.profile)}
        writer = BulkWriter(lookups_offices=lookups.offices, kam_threshold_profiles=kam)
        for start in range(0, len(specs), 5000):
            with transaction.atomic():
                writer.write(specs[start : start + 5000])
        return list(Account.objects.filter(pk__gt=last_id).order_by("pk"))

    def _tariff_changes(self) -> None:
        """Say whether a tariff order changes inside the simulated window (a period billed on two
        versions). The simulation does not load a made-up order: the shipped ones decide."""
        from urja.tariffs.models import TariffVersion

        first, last = date(*self.months[0], 1), month_end(*self.months[-1])
        starts = sorted(
            set(
                TariffVersion.objects.filter(effective_from__gt=first, effective_from__lte=last).values_list(
                    "effective_from", flat=True
                )
            )
        )
        if starts:
            self.note(f"tariff orders change inside the window on {', '.join(map(str, starts))}: billed split")
        else:
            self.note(
                "no tariff change inside the simulated window (the shipped orders change on "
                "1 April 2025); a split period is not exercised"
            )
        self.note("category change not simulated: customers.services has no service for it")

    def _meters(self, accounts: list) -> None:
        from urja.customers.models import Account
        from urja.metering import services as metering
        from urja.metering.models import MeterType

        rng = self.rng
        accounts = list(Account.objects.filter(pk__in=[a.pk for a in accounts]).select_related("section", "consumer"))
        rollover_done = False
        payers = (("prompt", 55), ("late", 15), ("partial", 10), ("advance", 4), ("never", 6), ("prompt", 10))
        channels = (("counter", 30), ("cheque", 5), ("field_agent", 15), ("online", 20), ("upi", 15), ("bank", 15))
        with transaction.atomic():
            for i, account in enumerate(accounts):
                load = float(account.sanctioned_load) * (0.8 if account.load_unit == "kVA" else 1)
                if account.supply_type in ("ht", "eht"):
                    kind, mf = MeterType.CT_PT_HT, Decimal(40)
                elif account.is_prepaid:
                    kind, mf = MeterType.SMART_PREPAID, Decimal(1)
                elif load > 11:
                    kind, mf = MeterType.AMR, Decimal(1)
                else:
                    kind, mf = (MeterType.SMART if i % 4 == 0 else MeterType.STATIC), Decimal(1)
                prefix = {"smart": "SM", "smart_prepaid": "SP", "amr": "AM", "ct_pt_ht": "HT"}.get(kind, "ST")
                meter = metering.register_meter(
                    serial=self.serial(prefix),
                    make=rng.choice(["Genus", "Secure", "HPL", "L&T"]),
                    meter_type=kind,
                    actor=self.engineer,
                    channel="backoffice",
                    phase=3 if kind in (MeterType.AMR, MeterType.CT_PT_HT) or account.supply_type == "lt_3ph" else 1,
                    multiplying_factor=mf,
                    register_digits=6,
                )
                initial = Decimal(rng.randint(0, 9000))
                if kind == MeterType.STATIC and not rollover_done and i > 3:
                    initial, rollover_done = Decimal("999700"), True  # rolls over in the first months
                tod = {z: Decimal(0) for z in ("peak", "solar", "normal")} if kind != MeterType.STATIC else {}
                kvah = (initial * Decimal("1.03")).quantize(Decimal("0.001")) if kind in ("amr", "ct_pt_ht") else None
                metering.install_meter(
                    account=account,
                    meter=meter,
                    actor=self.engineer,
                    channel="backoffice",
                    installed_at=self.clock.current,
                    initial_kwh=initial,
                    initial_kvah=kvah,
                    initial_tod={k: str(v) for k, v in tod.items()} or None,
                )
                monthly = max(30.0, load * rng.uniform(40, 100)) if kind != MeterType.CT_PT_HT else load * 200
                conn = Connection(
                    account=account,
                    meter=Meter(meter.serial, kind, mf, 6, initial, tod, kvah),
                    monthly_kwh=monthly,
                    payer=_weighted(rng, payers),
                    channel=_weighted(rng, channels),
                )
                self.connections.append(conn)
                self.by_cycle[account.bill_cycle].append(conn)
        self.note(
            "meters: "
            + ", ".join(f"{k} {v}" for k, v in sorted(Counter(c.meter.kind for c in self.connections).items()))
        )

    # ---- readings ------------------------------------------------------------------------

    def _advance(self, conn: Connection, y: int, m: int) -> Decimal:
        """This month's consumption on the meter's registers (raw, before MF); returns kWh used."""
        units = Decimal(str(round(conn.monthly_kwh * SEASON[m] * self.rng.uniform(0.85, 1.15), 1)))
        raw = (units / conn.meter.mf).quantize(Decimal("0.001"))
        size = Decimal(10**conn.meter.digits)
        conn.meter.register = (conn.meter.register + raw) % size
        if conn.meter.kvah is not None:  # power factor about 0.97
            conn.meter.kvah = (conn.meter.kvah + (raw * Decimal("1.03")).quantize(Decimal("0.001"))) % size
        if conn.meter.tod:
            peak = (raw * Decimal("0.2")).quantize(Decimal("0.001"))
            solar = (raw * Decimal("0.3")).quantize(Decimal("0.001"))
            for zone, part in (("peak", peak), ("solar", solar), ("normal", raw - peak - solar)):
                conn.meter.tod[zone] = (conn.meter.tod[zone] + part) % size
        return units

    def readings(self, y: int, m: int) -> None:
        from urja.metering import importer
        from urja.metering import services as metering
        from urja.metering.models import ReadingSource, ReadingStatus
        from urja.metering.selectors import read_day

        rng, stats = self.rng, self.stats
        k = self.months.index((y, m))
        for cycle in sorted(self.by_cycle):
            conns = [c for c in self.by_cycle[cycle] if not c.closed]
            if not conns:
                continue
            day = date(y, m, min(read_day(cycle), 28))
            smart, amr, handheld = [], [], []
            for n, conn in enumerate(conns):
                at = datetime.combine(day, datetime.min.time(), IST).replace(hour=9 + n % 8, minute=(n * 7) % 60)
                self.clock.set(at + timedelta(minutes=1))
                meter, account = conn.meter, conn.account
                # a meter replacement in the second month (the old meter read out, the new starts at 0)
                if k == 1 and n == 2 and meter.kind == "static":
                    self._replace_meter(conn, at - timedelta(days=12), y, m)
                    meter = conn.meter
                elif meter.kind != "smart_prepaid":
                    self._advance(conn, y, m)
                kind = meter.kind
                if kind == "smart_prepaid":
                    continue  # its daily midnight registers (prepaid_days) are its readings
                if conn.since is not None and at <= conn.since:
                    continue  # connected after this cycle's read day: read from next month
                if kind == "smart":
                    smart.append((conn, at))
                    continue
                if kind in ("amr", "ct_pt_ht"):
                    amr.append((conn, at))
                    continue
                roll = rng.random()
                tod = None
                try:
                    if roll < 0.06:  # a visit with no register value: door locked or meter defective
                        metering.record_reading(
                            actor=self.agent,
                            channel="field_agent",
                            source=ReadingSource.FIELD_AGENT,
                            read_at=at,
                            account=account,
                            status=ReadingStatus.DOOR_LOCKED if roll < 0.04 else ReadingStatus.METER_DEFECTIVE,
                        )
                    elif roll < 0.08:
                        continue  # no visit this month: the bill run estimates
                    elif n >= FIELD_DETAIL:
                        handheld.append((conn, at))
                        continue
                    elif roll < 0.18:
                        metering.record_reading(
                            actor=None,
                            channel="website",
                            source=ReadingSource.SELF,
                            read_at=at,
                            account=account,
                            kwh=meter.register,
                            tod=tod,
                        )
                    else:
                        reading = metering.record_reading(
                            actor=self.agent,
                            channel="field_agent",
                            source=ReadingSource.FIELD_AGENT,
                            read_at=at,
                            account=account,
                            kwh=meter.register,
                            photo=ContentFile(PHOTO, name=f"{meter.serial}-{y}{m:02d}.jpg"),
                            latitude=account.latitude,
                            longitude=account.longitude,
                        )
                        if n == 5:  # bad input: the same reading sent again (a sync retried)
                            self._duplicate_reading(conn, at)
                        if n == 6 and k >= 1:  # bad input: an older reading arriving late
                            self._out_of_order_reading(conn, at, reading)
                    stats.readings += 1
                except DomainError as exc:
                    self.note(f"reading refused ({exc.code}) for {account.consumer_number} in {y}-{m:02d}")
            if smart:
                self._smart_batch(smart)
                stats.readings += len(smart)
            if handheld:
                self._handheld_file(cycle, handheld, y, m)
            if amr:
                path = self.tmp / f"amr-{cycle}-{y}{m:02d}.csv"
                with path.open("w", newline="") as fh:
                    w = csv.writer(fh)
                    w.writerow(importer.columns())
                    for conn, at in amr:
                        md = conn.account.sanctioned_load * Decimal(str(rng.uniform(0.4, 0.9))) / conn.meter.mf
                        w.writerow(
                            [
                                conn.meter.serial,
                                at.isoformat(),
                                conn.meter.register,
                                conn.meter.kvah if conn.meter.kvah is not None else "",
                                "",
                                md.quantize(Decimal("0.001")),
                                *[conn.meter.tod.get(z, "") for z in importer.tod_zones()],
                            ]
                        )
                batch = importer.import_file(path=path, actor=self.billing_officer, channel="import", bill_cycle=cycle)
                stats.readings += batch.inserted
                if batch.rejected:
                    self.note(f"AMR file {path.name}: {batch.rejected} rows rejected")
                if self.faults and k == 0:  # the same file imported twice: nothing doubled
                    again = importer.import_file(path=path, actor=self.billing_officer, channel="import")
                    self.report.faults_seen.append(
                        f"AMR file {path.name} imported twice: second batch inserted {again.inserted}, "
                        f"duplicates {again.duplicates}"
                    )
                    self.bad_input(
                        kind="file_imported_twice",
                        consumer_number="",
                        landed=again.inserted == 0 and again.duplicates == batch.inserted,
                        detail=f"second import of {path.name}: inserted {again.inserted}, "
                        f"duplicates {again.duplicates}",
                    )
                if k == 1 and cycle == "HT":
                    self._wrong_cycle_file(amr, y, m)
        metering.run_vee_pending()

    def _handheld_file(self, cycle: str, items: list, y: int, m: int) -> None:
        """The field agents' handheld devices upload the day's register values as one file."""
        from urja.metering import importer

        # a file is imported in its uploader's scope: the agent uploads his section's, the billing
        # office the other sections' agents' files
        own = [(c, at) for c, at in items if c.account.section_id == self.agent.staff.office_id]
        others = [(c, at) for c, at in items if c.account.section_id != self.agent.staff.office_id]
        for actor, channel, rows, suffix in (
            (self.agent, "field_agent", own, ""),
            (self.billing_officer, "import", others, "-office"),
        ):
            if not rows:
                continue
            path = self.tmp / f"handheld-{cycle}-{y}{m:02d}{suffix}.csv"
            with path.open("w", newline="") as fh:
                w = csv.writer(fh)
                w.writerow(importer.columns())
                width = len(importer.columns())
                for conn, at in rows:
                    w.writerow([conn.meter.serial, at.isoformat(), conn.meter.register] + [""] * (width - 3))
            batch = importer.import_file(
                path=path, actor=actor, channel=channel, source="field_agent", bill_cycle=cycle
            )
            self.stats.readings += batch.inserted
            if batch.rejected:
                self.note(f"handheld file {path.name}: {batch.rejected} rows rejected")

    def _gateway(self):
        """The MQTT gateway, fed through its inbox (no broker connection): messages are parsed,
        stored with `store_smart_batch` and validated exactly as from Mosquitto."""
        if getattr(self, "_gw", None) is None:
            from urja.metering.gateway import Gateway

            self._gw = Gateway("mqtt://127.0.0.1:1883")
        return self._gw

    def _publish(self, messages: list[tuple[str, dict]]) -> dict:
        from urja.metering import mqtt

        gw = self._gateway()
        for serial, body in messages:
            gw.inbox.put((mqtt.topic(serial, "readings"), json.dumps(body, default=str).encode()))
        out: dict = {}
        while not gw.inbox.empty():
            for k, v in gw.drain().items():
                out[k] = out.get(k, 0) + v if isinstance(v, int) else v
        return out

    def _smart_batch(self, items: list) -> None:
        messages = []
        for conn, at in items:
            md = Decimal(str(round(float(conn.account.sanctioned_load) * self.rng.uniform(0.3, 0.8), 3)))
            body = {
                "ts": at.isoformat(),
                "registers": {
                    "kwh": str(conn.meter.register),
                    "md_kw": str(md),
                    "tod": {k: str(v) for k, v in conn.meter.tod.items()},
                },
                "intervals": [{"ts": (at - timedelta(minutes=30)).isoformat(), "minutes": 30, "kwh": "0.4"}],
            }
            messages.append((conn.meter.serial, body))
        self._publish(messages)
        if self.faults:  # the meters re-send (QoS 1 redelivery): nothing doubles
            result = self._publish(messages[:5])
            self.report.faults_seen.append(f"smart meter messages re-sent: {result}")

    def _replace_meter(self, conn: Connection, at: datetime, y: int, m: int) -> None:
        """The month's use split: 60 % on the old meter until `at`, the rest on the new one."""
        from urja.metering import services as metering

        new = metering.register_meter(
            serial=self.serial("ST"), make="Genus", meter_type="static", actor=self.engineer, channel="backoffice"
        )
        before = conn.meter.register
        self._advance(conn, y, m)
        used = (conn.meter.register - before) % Decimal(10**conn.meter.digits)
        conn.meter.register = before
        self._advance_part(conn, (used * Decimal("0.6")).quantize(Decimal("0.001")))
        rest = used - (used * Decimal("0.6")).quantize(Decimal("0.001"))
        metering.replace_meter(
            account=conn.account,
            new_meter=new,
            final_kwh=conn.meter.register,
            reason="meter found defective on inspection (simulated)",
            actor=self.engineer,
            channel="backoffice",
            replaced_at=at,
            initial_kwh=0,
        )
        conn.meter = Meter(new.serial, "static", Decimal(1), 6, rest, {})
        self.note(f"meter replaced on {conn.account.consumer_number} on {at.date()}")

    def _advance_part(self, conn: Connection, raw: Decimal) -> None:
        conn.meter.register = (conn.meter.register + raw) % Decimal(10**conn.meter.digits)

    def _duplicate_reading(self, conn: Connection, at: datetime) -> None:
        from urja.metering import services as metering

        try:
            metering.record_reading(
                actor=self.agent,
                channel="field_agent",
                source="field_agent",
                read_at=at,
                account=conn.account,
                kwh=conn.meter.register,
                photo=ContentFile(PHOTO, name="dup.jpg"),
            )
        except DomainError as exc:
            self.bad_input(
                kind="duplicate_reading",
                consumer_number=conn.account.consumer_number,
                landed=exc.code == "duplicate_reading",
                detail=f"refused: {exc.code}",
            )
            return
        self.bad_input(
            kind="duplicate_reading",
            consumer_number=conn.account.consumer_number,
            landed=False,
            detail="a second identical reading was stored",
        )

    def _out_of_order_reading(self, conn: Connection, at: datetime, latest) -> None:
        """A reading dated before the latest one, with a register above it (it cannot be both)."""
        from urja.metering import services as metering
        from urja.metering.models import VeeStatus

        earlier = at - timedelta(days=2)
        value = (conn.meter.register + Decimal("150")) % Decimal(10**conn.meter.digits)
        try:
            reading = metering.record_reading(
                actor=self.staff["engineer"],
                channel="backoffice",
                source="staff",
                read_at=earlier,
                account=conn.account,
                kwh=value,
            )
        except DomainError as exc:
            self.bad_input(
                kind="out_of_order_reading",
                consumer_number=conn.account.consumer_number,
                landed=True,
                detail=f"refused: {exc.code}",
            )
            return
        self.planted.add(reading.pk)
        reading.refresh_from_db()
        latest.refresh_from_db()
        landed = reading.vee_status not in (VeeStatus.PASSED, VeeStatus.PENDING) or latest.vee_status not in (
            VeeStatus.PASSED,
            VeeStatus.PENDING,
        )
        self.bad_input(
            kind="out_of_order_reading",
            consumer_number=conn.account.consumer_number,
            landed=landed,
            detail=f"reading of {earlier.date()} ({value}) after the one of {at.date()} ({latest.kwh}): "
            f"VEE {reading.vee_status} {[e.get('rule') for e in reading.exceptions or []]}, "
            f"later reading VEE {latest.vee_status}",
        )
        if not landed:
            self.note(
                f"out-of-order reading on {conn.account.consumer_number} passed VEE (metering VEE; helper D): "
                "it would be billed as the period's closing reading"
            )

    def _wrong_cycle_file(self, amr: list, y: int, m: int) -> None:
        """A reading file from the wrong cycle: the HT meters' readings sent in the file declared
        for cycle C01 (import_file bill_cycle=). Each row must be reported, none imported."""
        from urja.metering import importer
        from urja.metering.models import ImportRowError

        path = self.tmp / f"amr-C01-wrong-{y}{m:02d}.csv"
        conn, at = amr[0]
        with path.open("w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(importer.columns())
            w.writerow([conn.meter.serial, (at + timedelta(minutes=1)).isoformat(), conn.meter.register]
                       + [""] * (len(importer.columns()) - 3))  # fmt: skip
        self.clock.tick(600)
        try:
            batch = importer.import_file(path=path, actor=self.billing_officer, channel="import", bill_cycle="C01")
        except TypeError:  # an importer without declared cycles
            self.note("metering.importer has no bill_cycle: the wrong-cycle file is not checked")
            return
        codes = list(ImportRowError.objects.filter(batch=batch).values_list("code", flat=True))
        self.bad_input(
            kind="wrong_cycle_file",
            consumer_number=conn.account.consumer_number,
            landed=batch.inserted == 0 and bool(codes),
            detail=f"HT reading in the C01 file: inserted {batch.inserted}, rejected {batch.rejected} {codes}",
        )

    # ---- bill runs ---------------------------------------------------------------------------

    def bill_runs(self, y: int, m: int) -> None:
        from urja.billing import runs
        from urja.billing import services as billing
        from urja.billing.models import BillException, BillRun

        period = f"{y}-{m:02d}"
        bill_date = month_end(y, m) + timedelta(days=2)
        self.clock.at(bill_date, 6)
        k = self.months.index((y, m))
        for cycle in sorted(self.by_cycle):
            if cycle not in CYCLES_MONTHLY:
                continue
            if BillRun.objects.filter(cycle__code=cycle, period=period, dry_run=False).exists():
                self.note(f"bill run {cycle} {period} existed before the simulation: resumed, not recreated")
            self.clock.tick(60)
            run = billing.create_run(cycle=cycle, period=period, bill_date=bill_date, actor=self.billing_officer)
            if self.faults and k == min(1, len(self.months) - 1) and cycle == "C01":
                run = self._kill_worker(run)
            else:
                run = billing.start_run(run=run, actor=self.billing_officer)
            if run.status not in ("completed", "completed_exc"):
                self.note(f"bill run {cycle} {period} ended {run.status}")
            self.stats.bills += run.bills
            self.stats.statements += run.statements
            self.stats.exceptions += run.exceptions
        open_exc = BillException.objects.filter(run__period=period, resolved=False)
        for exc in open_exc.select_related("account")[:5]:
            self.note(f"{period} bill exception {exc.kind} on {exc.account.consumer_number}: {exc.message}")
        _ = runs  # the fault path below uses runs

    def _kill_worker(self, run):
        """A worker dies right after claiming a partition (kill -9): its claim stays, no heartbeat.
        The run is started with its partition tasks enqueued; the dead worker's task finds the
        partition claimed and returns; the periodic stale-partition sweep takes it over."""
        from urja.billing import runs
        from urja.billing import services as billing

        part = run.partitions.order_by("pk").first()
        if part is None:
            return billing.start_run(run=run, actor=self.billing_officer)
        with transaction.atomic():
            run = billing.start_run(run=run, actor=self.billing_officer, enqueue=True)
            status = runs.process_partition(part.pk, stop_after_chunks=0)  # claims, then "dies"
        part.refresh_from_db()
        run.refresh_from_db()
        self.report.faults_seen.append(
            f"bill run {run.cycle.code} {run.period}: worker killed after claiming partition {part.pk} "
            f"(partition {part.status}, {part.done} accounts done, run {run.status})"
        )
        stale = int(runs.config()["bill"].get("stale_partition_seconds", 300))
        self.clock.tick(stale + 60)  # nobody heartbeats: the claim expires
        sweep = getattr(runs, "sweep_partitions", None)
        if sweep is not None:
            result = sweep()
            run.refresh_from_db()
            self.report.faults_seen.append(f"stale partition sweep: {result}; run {run.status}")
            if run.status == "running":
                self.bad_input(
                    kind="dead_worker",
                    consumer_number="",
                    landed=False,
                    detail=f"run {run.cycle.code} {run.period} still running after the stale-partition sweep",
                )
        else:
            self.note("no stale-partition takeover job yet (helper A): start_run resumes the expired claim")
        _ = status
        return billing.start_run(run=run, actor=self.billing_officer)

    # ---- money ------------------------------------------------------------------------------

    def payments(self, y: int, m: int) -> None:
        """Payments in month (y, m) for the bills dated on its 2nd (the previous period's)."""
        from urja.billing.models import Bill
        from urja.payments import services as pay
        from urja.payments.selectors import cash_in_hand, ledger_balances, session_totals

        rng, stats = self.rng, self.stats
        bill_day = date(y, m, 2)
        due = bill_day + timedelta(days=7)
        bills = {
            b.account_id: b
            for b in Bill.objects.filter(
                bill_date=bill_day, kind=Bill.Kind.BILL, account_id__in=[c.account.pk for c in self.connections]
            )
        }
        self.clock.at(date(y, m, 3), 9)
        session = self._cashier_session()
        settlement_rows = []
        cheques = []
        events = []
        plan = []
        for conn in self.connections:
            if conn.closed or conn.account.is_prepaid:
                continue
            bill = bills.get(conn.account.pk)
            if bill is None:
                continue
            payer = conn.payer
            if payer == "never" or (payer == "prompt" and rng.random() < 0.05):
                continue
            on_time = payer in ("prompt", "advance")
            day = due - timedelta(days=rng.randint(0, 4)) if on_time else due + timedelta(days=rng.randint(3, 18))
            plan.append((day, rng.random(), conn, bill, on_time))
        plan.sort(key=lambda p: (p[0], p[1]))
        # what each payer owes, read once (one grouped query, not one a payer): a payer's balance
        # moves in this loop only by its own payment, so it is what `ledger.balance` reads at its turn
        balances = ledger_balances(p[2].account.pk for p in plan)
        per_channel: Counter = Counter()
        bbps_left = max(2, self.n_detail // BBPS_PER)
        for day, when, conn, bill, on_time in plan:
            # a moment in the day's office hours (the plan is sorted by it): the clock is set, never
            # pushed by a tick per payment (thousands of ticks would carry it weeks past the day)
            self.clock.set(datetime.combine(day, datetime.min.time(), IST) + timedelta(hours=9 + 9 * when))
            account = conn.account
            owed = balances[account.pk]
            if owed <= 0:
                continue
            channel = conn.channel
            if channel == "field_agent" and account.section_id != self.agent.staff.office_id:
                channel = "counter"
            if channel == "online" and bbps_left > 0:  # through a BBPS agent (bill fetch, then payment)
                bbps_left -= 1
                try:
                    if self.bbps_payment(
                        conn=conn, bill=bill, amount=(owed / 2).quantize(Decimal("0.01")), on_time=on_time,
                        key=f"{y}{m:02d}",
                    ):  # fmt: skip
                        stats.payments += 1
                except DomainError as exc:
                    self.note(f"BBPS payment refused ({exc.code}: {exc.message}) for {account.consumer_number}")
                continue
            per_channel[channel] += 1
            if per_channel[channel] > PAYMENT_DETAIL:
                channel = "bank"  # through the aggregator's settlement file
            digital = channel in ("online", "upi")
            amount = owed
            if on_time:
                amount += bill.rebate_by_due_date + (bill.rebate_digital if digital else 0)
            if conn.payer == "partial":
                amount = (owed / 2).quantize(Decimal("0.01"))
            if conn.payer == "advance":
                amount += Decimal(rng.choice([200, 500, 1000]))
            if amount <= 0:
                continue
            key = f"sim{self.seed}:{account.consumer_number}:{y}{m:02d}"
            try:
                if channel == "counter":
                    pay.take_payment(
                        actor=self.cre,
                        channel="counter",
                        consumer_number=account.consumer_number,
                        amount=amount,
                        idempotency_key=key,
                        notify=False,
                    )
                elif channel == "cheque":
                    p = pay.take_payment(
                        actor=self.cre,
                        channel="counter",
                        consumer_number=account.consumer_number,
                        amount=amount,
                        idempotency_key=key,
                        method="cheque",
                        instrument_number=f"{rng.randint(100000, 999999)}",
                        instrument_bank="State Bank of India",
                        instrument_date=day,
                        notify=False,
                    )
                    cheques.append(p)
                elif channel == "field_agent":
                    if cash_in_hand(agent=self.agent) + amount > Decimal("40000"):
                        pay.record_deposit(
                            actor=self.cre,
                            agent=self.agent,
                            amount=cash_in_hand(agent=self.agent),
                            reference=f"DEP-{key}",
                        )
                    pay.take_payment(
                        actor=self.agent,
                        channel="field_agent",
                        consumer_number=account.consumer_number,
                        amount=amount,
                        idempotency_key=key,
                        notify=False,
                    )
                elif channel in ("online", "upi"):
                    order = pay.create_order(consumer_number=account.consumer_number, amount=amount, channel=channel)
                    if channel == "upi" and rng.random() < 0.5:
                        pay.reconcile_upi(
                            actor=self.billing_officer,
                            reference=order.reference,
                            amount=amount,
                            utr=f"UTR{self.seed}{y}{m:02d}{account.pk:08d}",
                        )
                    else:
                        body, header = pay.dev_gateway_event(order=order, outcome="success")
                        events.append((body, header))
                        first = pay.handle_webhook(gateway=order.gateway, body=body, signature=header)
                        if self.faults or rng.random() < 0.1:  # the gateway retries (no ack seen)
                            again = pay.handle_webhook(gateway=order.gateway, body=body, signature=header)
                            if not again.replay or again.payment_id != first.payment_id:
                                self.bad_input(
                                    kind="webhook_twice",
                                    consumer_number=account.consumer_number,
                                    landed=False,
                                    detail=f"second delivery not a replay: {again}",
                                )
                else:
                    # the bank's file is imported on the 26th: its rows were paid on or before the 25th
                    settlement_rows.append((key, account.consumer_number, amount, min(day, date(y, m, 25))))
                    continue
                stats.payments += 1
            except DomainError as exc:
                self.note(f"payment refused ({exc.code}: {exc.message}) for {account.consumer_number}")
        if settlement_rows:
            self._settlement(settlement_rows, y, m)
        if cheques:  # one cheque a month comes back unpaid
            bounced = cheques[rng.randrange(len(cheques))]
            self.clock.tick(3600 * 24 * 2)
            pay.bounce_cheque(actor=self.billing_officer, payment=bounced, reason="insufficient funds (simulated)")
        if self.faults and events and len(events) >= 2:
            self._webhooks_out_of_order(y, m)
        self._bad_payments(y, m)
        # the cashier closes the day's session with the cash counted = expected
        self.clock.at(date(y, m, 28), 18)
        session.refresh_from_db()
        totals = session_totals(session)
        pay.close_session(actor=self.cre, session=session, counted_cash=totals["expected_cash"])
        if cash_in_hand(agent=self.agent) > 0:
            pay.record_deposit(
                actor=self.cre,
                agent=self.agent,
                amount=cash_in_hand(agent=self.agent),
                reference=f"DEP-{y}{m:02d}",
            )

    def _cashier_session(self):
        from urja.payments import services as pay
        from urja.payments.models import CashierSession

        session = CashierSession.objects.filter(cashier=self.cre, status="open").first()
        return session or pay.open_session(actor=self.cre, opening_balance="500.00")

    def review_queue(self, y: int, m: int) -> None:
        """The billing officer works the VEE review queue before the bill run: readings the
        simulation planted as bad input are replaced by an estimate, genuine ones accepted."""
        from urja.metering import services as metering
        from urja.metering.models import Reading, VeeStatus

        self.clock.at(month_end(y, m) + timedelta(days=1), 9)
        queue = Reading.objects.filter(
            vee_status=VeeStatus.REVIEW, account_id__in=[c.account.pk for c in self.connections]
        ).order_by("read_at", "pk")
        for reading in queue:
            self.clock.tick(30)
            planted = reading.pk in self.planted
            try:
                metering.review_reading(
                    reading=reading,
                    action="estimate" if planted else "accept",
                    actor=self.billing_officer,
                    channel="backoffice",
                    reason="reading out of sequence / from another cycle (simulated bad input)" if planted else "",
                )
            except DomainError as exc:
                self.note(f"review of reading {reading.pk} refused ({exc.code}): {exc.message}")
            self.stats.reviewed += 1

    def _settlement(self, rows: list, y: int, m: int) -> None:
        from urja.payments import services as pay

        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(["row_key", "consumer_number", "amount", "paid_at", "reference", "method"])
        for key, cn, amount, day in rows:
            w.writerow([key, cn, f"{amount:.2f}", day.isoformat(), f"SBI{abs(hash(key)) % 10**8}", "bank"])
        data = buf.getvalue().encode()
        self.clock.at(date(y, m, 26), 11)
        batch = pay.import_settlement(
            actor=self.billing_officer, source="SBI", filename=f"sbi-{y}{m:02d}.csv", stream=io.BytesIO(data)
        )
        self.stats.payments += getattr(batch, "posted", 0) or len(rows)
        if self.faults:  # the bank sends the same file again
            again = pay.import_settlement(
                actor=self.billing_officer, source="SBI", filename=f"sbi-{y}{m:02d}-again.csv", stream=io.BytesIO(data)
            )
            posted_again = getattr(again, "posted", None)
            self.report.faults_seen.append(f"settlement file imported twice: second batch posted {posted_again}")
            self.bad_input(
                kind="settlement_imported_twice",
                consumer_number="",
                landed=not posted_again,
                detail=f"second import of sbi-{y}{m:02d}.csv posted {posted_again}",
            )

    def _webhooks_out_of_order(self, y: int, m: int) -> None:
        """A failure event arriving after the success of the same order: the payment stands."""
        from urja.payments import services as pay
        from urja.payments.models import GatewayOrder, Payment

        conn = next(c for c in self.connections if not c.closed and not c.account.is_prepaid)
        order = pay.create_order(consumer_number=conn.account.consumer_number, amount=Decimal("100.00"))
        ok_body, ok_sig = pay.dev_gateway_event(order=order, outcome="success")
        fail_body, fail_sig = pay.dev_gateway_event(order=order, outcome="failure")
        pay.handle_webhook(gateway=order.gateway, body=ok_body, signature=ok_sig)
        pay.handle_webhook(gateway=order.gateway, body=fail_body, signature=fail_sig)
        order.refresh_from_db()
        txn = json.loads(ok_body)["data"]["txn_id"]
        paid = Payment.objects.filter(idempotency_key=f"dev:{txn}").first()
        landed = order.status == GatewayOrder.Status.PAID and paid is not None and paid.status == "posted"
        self.report.faults_seen.append(f"webhooks out of order (success then failure): order {order.status}")
        self.bad_input(
            kind="webhook_out_of_order",
            consumer_number=conn.account.consumer_number,
            landed=landed,
            detail=f"order {order.reference} after success+failure: {order.status}, payment "
            f"{paid.status if paid else 'none'}",
        )

    def _bad_payments(self, y: int, m: int) -> None:
        from urja.payments import services as pay
        from urja.payments import signing
        from urja.payments.models import GatewayEvent

        # a webhook for an order nobody created: captured money must land in suspense
        if (y, m) == self.months[min(1, len(self.months) - 1)]:
            event = {
                "id": f"evt_sim{self.seed}{y}{m:02d}",
                "type": "payment.succeeded",
                "data": {
                    "order_reference": f"UR{self.seed:04d}DEAD{m:02d}",
                    "amount": "750.00",
                    "txn_id": f"SIMTXN{self.seed}{y}{m:02d}",
                    "method": "card",
                },
            }
            body = json.dumps(event, separators=(",", ":")).encode()
            header = signing.signature_header(
                secret=signing.gateway_secret("dev"), timestamp=int(time.time()), body=body
            )
            result = pay.handle_webhook(gateway="dev", body=body, signature=header)
            from urja.payments.models import Payment

            in_suspense = Payment.objects.filter(
                idempotency_key=f"dev:{event['data']['txn_id']}", status="in_suspense"
            ).exists()
            seen = GatewayEvent.objects.filter(event_id=event["id"]).first()
            self.bad_input(
                kind="webhook_unknown_order",
                consumer_number="",
                landed=in_suspense,
                detail=f"webhook for unknown order {event['data']['order_reference']}: outcome {result.outcome}, "
                f"gateway event {'kept' if seen else 'not kept'}, suspense row {'yes' if in_suspense else 'no'}",
            )
        # a bank's settlement row for a closed (permanently disconnected) account: suspense
        for conn in self.connections:
            if conn.closed:
                self._closed_account_payment(conn, y, m)
                break

    def _closed_account_payment(self, conn: Connection, y: int, m: int) -> None:
        from urja.payments import services as pay
        from urja.payments.models import Payment

        key = f"sim{self.seed}:closed:{conn.account.consumer_number}:{y}{m:02d}"
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(["row_key", "consumer_number", "amount", "paid_at", "reference", "method"])
        w.writerow([key, conn.account.consumer_number, "300.00", date(y, m, 20).isoformat(), "CLOSED1", "bank"])
        self.clock.at(date(y, m, 26), 10)
        pay.import_settlement(
            actor=self.billing_officer,
            source="SBIC",
            filename=f"sbi-closed-{y}{m:02d}.csv",
            stream=io.BytesIO(buf.getvalue().encode()),
        )
        p = Payment.objects.filter(consumer_number=conn.account.consumer_number, idempotency_key__contains=key).first()
        self.stats.suspense += bool(p and p.status == "in_suspense")
        self.bad_input(
            kind="payment_closed_account",
            consumer_number=conn.account.consumer_number,
            landed=bool(p and p.status == "in_suspense" and p.suspense_reason and p.ledger_entry_id is None),
            detail=f"settlement row for a closed account: {p.status if p else 'no payment row'} "
            f"({p.suspense_reason if p else ''})",
        )

    def prepaid(self, y: int, m: int) -> None:
        from urja.payments import services as pay

        pre = [c for c in self.connections if c.account.is_prepaid and not c.closed]
        if not pre:
            return
        self.clock.at(date(y, m, 1), 8)
        self._cashier_session()
        for conn in pre:  # a recharge at the start of the month
            try:
                pay.take_payment(
                    actor=self.cre,
                    channel="counter",
                    consumer_number=conn.account.consumer_number,
                    amount=Decimal(self.rng.choice([300, 500, 800])),
                    idempotency_key=f"sim{self.seed}:recharge:{conn.account.consumer_number}:{y}{m:02d}",
                    notify=False,
                )
                self.stats.payments += 1
            except DomainError as exc:
                self.note(f"recharge refused ({exc.code}): {exc.message}")

    def prepaid_days(self, y: int, m: int) -> None:
        """Smart prepaid meters send their register at every midnight (through the gateway); the
        daily prepaid job charges each day's consumption to the wallet. Run as the month closes
        (the simulation lives a day's other events in phases, not hour by hour)."""
        from urja.payments import services as pay

        pre = [c for c in self.connections + self.mg if c.meter.kind == "smart_prepaid" and not c.closed]
        if not pre:
            return
        days = calendar.monthrange(y, m)[1]
        self.clock.at(month_end(y, m) + timedelta(days=1), 0, 30)
        first = self.months.index((y, m)) == 0

        def midnight(d: date) -> datetime:
            return datetime.combine(d, datetime.min.time(), IST)

        if first:  # the register at the midnight opening the first simulated month
            self._publish([(c.meter.serial, {"ts": midnight(date(y, m, 1)).isoformat(),
                                             "registers": {"kwh": str(c.meter.register)}}) for c in pre])  # fmt: skip
        for day in range(1, days + 1):
            messages = []
            for conn in pre:
                use = conn.monthly_kwh * SEASON[m] / days * self.rng.uniform(0.6, 1.4)
                self._advance_part(conn, Decimal(str(round(use, 3))))
                at = midnight(date(y, m, day) + timedelta(days=1))
                messages.append(
                    (conn.meter.serial, {"ts": at.isoformat(), "registers": {"kwh": str(conn.meter.register)}})
                )
            self._publish(messages)
            self.stats.readings += len(messages)
            result = pay.run_prepaid_day(day=date(y, m, day))
            self.stats.prepaid_charged += result.get("charged", 0)
            self.clock.tick(5)

    def collections(self, y: int, m: int) -> None:
        from urja.payments import services as pay

        self.clock.at(month_end(y, m), 8)
        result = pay.sweep_collections(today=self.clock.today())
        notices = pay.issue_disconnection_notices(today=self.clock.today())
        if notices:
            self.note(f"{y}-{m:02d}: {notices} disconnection notices ({result})")

    def corrections(self, y: int, m: int) -> None:
        """A load change, a credit note (maker-checker), a permanent disconnection + final bill."""
        from urja.billing import services as billing
        from urja.billing.models import Bill
        from urja.customers import services as customers

        k = self.months.index((y, m))
        open_conns = [c for c in self.connections if not c.closed and not c.account.is_prepaid]
        if not open_conns:
            return
        self.clock.at(date(y, m, 28), 19)
        conn = open_conns[(k * 7 + 3) % len(open_conns)]
        acc = conn.account
        if acc.supply_type.startswith("lt"):
            try:
                acc = customers.change_sanctioned_load(
                    actor=self.engineer,
                    channel="backoffice",
                    account=acc,
                    load=acc.sanctioned_load + 1,
                    unit=acc.load_unit,
                )
                conn.account = acc
            except (DomainError, TypeError) as exc:
                self.note(f"load change not made: {exc}")
        bill = Bill.objects.filter(account=open_conns[(k * 11 + 5) % len(open_conns)].account, kind="bill").first()
        if bill is not None and bill.total > 10:
            rev = billing.propose_revision(
                bill=bill,
                kind="credit_note",
                amount=(bill.total / 10).quantize(Decimal("0.01")),
                reason="meter reading disputed, partly upheld (simulated)",
                actor=self.cre,
            )
            billing.decide_revision(revision=rev, approve=True, actor=self.billing_officer, note="checked")
        if k == 0 and len(open_conns) > 10:
            # on a DT the outages visit when there is one: a closed connection has no supply to lose
            on_dt = [c for c in open_conns if c.account.transformer_id in self.outage_dts[:1]]
            self._final_bill(on_dt[-1] if len(on_dt) > 1 else open_conns[-1], date(y, m, 28))

    def _final_bill(self, conn: Connection, day: date) -> None:
        from urja.billing import services as billing
        from urja.customers import services as customers

        self.clock.at(day, 11)
        acc = customers.change_account_status(
            actor=self.engineer,
            channel="backoffice",
            account=conn.account,
            status="perm_disconnected",
            reason="consumer asked for permanent disconnection (simulated)",
        )
        conn.account, conn.closed = acc, True
        self.clock.at(day + timedelta(days=1), 11)  # the final bill the next working day
        bill = billing.final_bill(
            account=acc,
            closing_kwh_units=Decimal(str(round(conn.monthly_kwh / 2, 1))),
            disconnected_on=day,
            actor=self.billing_officer,
        )
        self.note(f"final bill {bill.bill_number} for {acc.consumer_number} ({bill.total})")

    # ---- service desk ----------------------------------------------------------------------

    def complaints(self, y: int, m: int) -> None:
        """Complaints through the CRE on their channels; the escalation sweep runs as the clock
        moves; most are closed in time, some late (a breach earns compensation once, even when a
        closed request is reopened and closed again). With --faults the broker is down meanwhile."""
        from urja.servicedesk import catalogue, escalation
        from urja.servicedesk import services as desk
        from urja.servicedesk.demo import _ensure_catalogue
        from urja.servicedesk.models import RequestType

        rng = self.rng
        k = self.months.index((y, m))
        schedule = _ensure_catalogue()
        kinds = [
            ("no_power_supply", "no_power_supply"),
            ("meter_faulty", "meter_stuck"),
            ("voltage_fluctuation", "voltage_fluctuation"),
            ("bill_revision", "disputed_bill"),
        ]
        n = max(3, min(len(self.connections), DETAIL_CONSUMERS) // 100)
        pool = [c for c in self.connections if not c.closed and c.account.status == "active"]
        broker_down = self.faults and k == min(1, len(self.months) - 1)
        outage = self._broker_down() if broker_down else None
        opened = []
        try:
            for i in range(n):
                conn = pool[rng.randrange(len(pool))]
                type_code, subtype = kinds[i % len(kinds)]
                rt = RequestType.objects.get(schedule=schedule, type_code=type_code, subtype_code=subtype)
                self.clock.at(date(y, m, 4), 18, i % 60)  # the evening's complaints
                try:
                    result = desk.register_request(
                        actor=self.cre,
                        channel=rt.channels[0] if rt.channels else "care_centre",
                        type_code=type_code,
                        subtype_code=subtype,
                        account=conn.account,
                        description=f"Simulated: {rt.name.lower()}.",
                    )
                except DomainError as exc:
                    self.note(f"request not registered ({exc.code}): {exc.message}")
                    continue
                if result.created:
                    opened.append(result.request)
                    self.stats.requests += 1
        finally:
            if outage is not None:
                self._broker_back(outage)
        _ = catalogue
        # the sweep every few hours of the following days, then the closures
        for moment in (datetime.combine(date(y, m, 4), datetime.min.time(), IST).replace(hour=22),):
            self.clock.set(moment)
            escalation.sweep(now=self.clock.current, notify=False)
        for i, request in enumerate(opened):
            request.refresh_from_db()
            late = i % 4 == 1 and request.due_at is not None
            when = request.due_at + timedelta(hours=6) if late else request.registered_at + timedelta(hours=2)
            self.open_requests.append((when, late, i == 1 and late, request.pk))
        self.clock.at(date(y, m, 5), 6)
        escalation.sweep(now=self.clock.current, notify=False)
        self._close_requests(until=datetime.combine(date(y, m, 5), datetime.min.time(), IST).replace(hour=8))

    def _close_requests(self, *, until: datetime) -> None:
        """Close the requests whose planned closing moment has come (a late one waits for it,
        even into a later month); one late request is reopened and closed again."""
        from urja.servicedesk import services as desk
        from urja.servicedesk.models import ServiceRequest

        due = sorted(r for r in self.open_requests if r[0] <= until)
        self.open_requests = [r for r in self.open_requests if r[0] > until]
        for when, late, reopen, pk in due:
            request = ServiceRequest.objects.get(pk=pk)
            if not desk.is_open(request):
                continue
            self.clock.set(max(when, self.clock.current))
            desk.close_request(
                actor=self.engineer,
                channel="backoffice",
                request=request,
                resolution_notes="Simulated: attended and resolved.",
            )
            self.stats.closed_late += late
            if reopen:  # reopened and closed again: compensation stays once per breach
                self.clock.tick(3600)
                desk.reopen_request(
                    actor=self.cre,
                    channel="care_centre",
                    request=ServiceRequest.objects.get(pk=pk),
                    reason="consumer says not resolved",
                )
                self.clock.tick(3600 * 24)
                desk.close_request(
                    actor=self.engineer,
                    channel="backoffice",
                    request=ServiceRequest.objects.get(pk=pk),
                    resolution_notes="Simulated: resolved on the second visit.",
                )

    def _broker_down(self):
        """The broker refuses every call until `_broker_back` (urja.core.jobs defers them)."""
        try:
            from urja.core import jobs
        except ImportError:
            self.note("no urja.core.jobs yet (helper C): broker outage not simulated")
            return None
        real = jobs._publish

        def refuse(name, args, kwargs):
            raise ConnectionError("simulated broker outage")

        jobs._publish = refuse
        before = jobs.DeferredTask.objects.count()
        # tasks run eagerly in the embedded default; an outage only shows through jobs.enqueue
        from urja.celery import app

        eager = app.conf.task_always_eager
        app.conf.task_always_eager = False
        return (jobs, real, before, eager)

    def _broker_back(self, outage) -> None:
        jobs, real, before, eager = outage
        from urja.celery import app

        jobs._publish = real
        app.conf.task_always_eager = eager
        jobs._down_until = 0.0
        deferred = jobs.DeferredTask.objects.count() - before
        self.clock.tick(600)
        result = jobs.retry_deferred(now=self.clock.current + timedelta(hours=2))
        left = jobs.DeferredTask.objects.count() - before
        self.report.faults_seen.append(
            f"broker down during registrations: {deferred} calls deferred; after it came back retry_deferred "
            f"gave {result}, {left} left"
        )
        if left > 0:
            self.bad_input(
                kind="broker_outage", consumer_number="", landed=False, detail=f"{left} deferred calls never sent"
            )

    # ---- deposits and reconnection -----------------------------------------------------------

    def _deposit_holders(self) -> list[Connection]:
        """Every tenth connection holds a deposit demanded at connection and reviewed yearly — of the
        first DETAIL_CONSUMERS (a fixed sample beyond: each is a demand and a counter payment)."""
        return [c for c in self.connections[:DETAIL_CONSUMERS:10] if not c.closed and not c.account.is_prepaid]

    def deposits(self, y: int, m: int) -> None:
        """Initial deposits at connection (setup); the annual review is `deposit_review`."""
        from urja.billing import deposits

        k = self.months.index((y, m))
        holders = self._deposit_holders()
        if k == 0:
            self.clock.at(date(y, m, 1), 8)
            from urja.payments import services as pay

            self._cashier_session()
            for conn in holders:
                entry = deposits.demand_initial(
                    account=conn.account,
                    estimated_monthly_bill=Decimal(str(round(conn.monthly_kwh * 6, 2))),
                    on=self.clock.today(),
                    actor=self.billing_officer,
                    channel="backoffice",
                )
                self.clock.tick(60)
                pay.take_payment(  # paid at the counter with the connection papers
                    actor=self.cre,
                    channel="counter",
                    consumer_number=conn.account.consumer_number,
                    amount=entry.amount,
                    idempotency_key=f"sim{self.seed}:deposit:{conn.account.consumer_number}",
                    notify=False,
                )
                self.stats.payments += 1

    def deposit_review(self, y: int, m: int) -> None:
        """The annual deposit review on 1 April (or, when the window has no April, on the 1st of
        its last month, for the FY then running) — on that day, before the bill run of the 2nd,
        so that bill's arrears show it. (Run at the start of April's own month it came after that
        bill run and posted a demand dated before it: `arrears_equal_ledger` over the whole demo.)"""
        from urja.billing import deposits

        k = self.months.index((y, m))
        ny, nm = next_month(y, m)
        holders = self._deposit_holders()
        no_april = not any(mm == 4 for _, mm in self.months)
        if nm == 4 or (no_april and k == max(0, len(self.months) - 2)):
            self.clock.at(date(ny, nm, 1), 8)
            actions = Counter()
            for conn in holders:
                result = deposits.annual_review(
                    account=conn.account, on=self.clock.today(), actor=self.billing_officer, channel="backoffice"
                )
                actions[result["action"]] += 1
            self.note(f"deposit annual review {ny}-{nm:02d}-01: {dict(actions)}")

    def reconnection(self, y: int, m: int) -> None:
        """An account with a disconnection notice is disconnected, pays in full, is reconnected."""
        from urja.billing import ledger
        from urja.customers import services as customers
        from urja.payments import services as pay
        from urja.payments.models import CollectionCase

        case = (
            CollectionCase.objects.filter(
                status__in=["notice_sent", "due"],
                account_id__in=[c.account.pk for c in self.connections if not c.closed],
            )
            .select_related("account")
            .order_by("pk")
            .first()
        )
        if case is None:
            return
        conn = next(c for c in self.connections if c.account.pk == case.account_id)
        self.clock.at(month_end(y, m), 10)
        acc = customers.change_account_status(
            actor=self.engineer,
            channel="field_agent",
            account=conn.account,
            status="temp_disconnected",
            reason=f"disconnection notice {case.notice_number} unpaid (simulated)",
        )
        self.clock.tick(3600 * 5)
        owed = ledger.balance(account=acc)
        if owed > 0:
            self._cashier_session()
            pay.take_payment(
                actor=self.cre,
                channel="counter",
                consumer_number=acc.consumer_number,
                amount=owed,
                idempotency_key=f"sim{self.seed}:reconnect:{acc.consumer_number}:{y}{m:02d}",
                notify=False,
            )
            self.stats.payments += 1
        self.clock.tick(3600 * 3)
        conn.account = customers.change_account_status(
            actor=self.engineer, channel="field_agent", account=acc, status="active", reason="dues paid; reconnected"
        )
        self.stats.reconnections += 1

    # ---- the loop -----------------------------------------------------------------------------

    def check(self, month: str) -> list[Violation]:
        extra = [
            Violation("bad_input_landed", month, e["consumer_number"], f"{e['kind']}: {e['detail']}")
            for e in self.bad
            if not e["landed"]
        ]
        self.bad = []
        found = []
        for v in self.checker.run(month=month, extra=extra):
            key = (v.rule, v.consumer_number, v.detail)
            if key not in self.seen_violations:
                self.seen_violations.add(key)
                found.append(v)
        return found

    def run(self) -> SimulationReport:
        from django.db import connection

        started = time.perf_counter()
        self.report.database = connection.vendor
        from django.test.utils import override_settings

        # Background work (core.jobs.enqueue_background: bill-run partitions, VEE of imported files)
        # runs inline after commit, not in the embedded worker thread: a month's events happen in
        # order, and the checks see the work done (the thread would race the next event).
        with simulated_time(self.clock), override_settings(URJA_BACKGROUND_THREADS=False):
            self.setup()
            self.checker.mark()
            for y, m in self.months:
                t0 = time.perf_counter()
                self.stats = MonthStats(month=f"{y}-{m:02d}")
                for phase in (
                    self.energize_paid,
                    self.outages,
                    self.network_field_work,
                    self.deposits,
                    self.readings,
                    self.prepaid,
                    self.minigrid,
                    self.complaints,
                    self.payments,
                    self.conversations,
                    self.corrections,
                    self.connections_phase,
                    self.meter_shifting,
                    self.network_shifting,
                    self.collections,
                    self.reconnection,
                    self.prepaid_days,
                    self.deposit_review,
                    self.review_queue,
                    self.bill_runs,
                    self.energy_accounting,
                ):
                    t_phase = time.perf_counter()
                    phase(y, m)
                    name = phase.__name__
                    self.report.phase_seconds[name] = self.report.phase_seconds.get(name, 0.0) + (
                        time.perf_counter() - t_phase
                    )
                t_check = time.perf_counter()
                from urja.payments.models import Payment

                self.stats.suspense = Payment.objects.filter(
                    status="in_suspense", account_id__in=[c.account.pk for c in self.connections]
                ).count()
                found = self.check(self.stats.month)
                self.report.phase_seconds["invariants"] = self.report.phase_seconds.get("invariants", 0.0) + (
                    time.perf_counter() - t_check
                )
                self.stats.violations = len(found)
                self.stats.seconds = time.perf_counter() - t0
                self.report.per_month.append(self.stats)
                self.report.violations += found
                self.say(self.stats.line())
                for v in found[:20]:
                    self.say(f"  VIOLATION {v}")
                if found and not self.keep_going:
                    self.report.stopped_at = self.stats.month
                    break
        self.report.seconds = time.perf_counter() - started
        return self.report


def _weighted(rng: random.Random, pairs) -> str:
    total = sum(w for _, w in pairs)
    x = rng.random() * total
    for value, w in pairs:
        x -= w
        if x < 0:
            return value
    return pairs[-1][0]


def simulate(
    *,
    months: int,
    consumers: int,
    seed: int,
    faults: bool = False,
    stdout: Callable[[str], None] = print,
    keep_going: bool = False,
) -> SimulationReport:
    """Simulate `months` months of `consumers` new consumers on the current database."""
    if months < 1 or consumers < 1:
        raise DomainError("months and consumers must be at least 1", code="invalid_simulation")
    return Simulation(
        months=months, consumers=consumers, seed=seed, faults=faults, stdout=stdout, keep_going=keep_going
    ).run()
