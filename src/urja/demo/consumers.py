"""Demo consumers and accounts, two ways.

* `create_with_services` — through `customers.services` (register_consumer, add_contact,
  open_account, change_account_status): every rule, audit event and key-account assignment
  applies. Used for the default demo (a few thousand) and for the special accounts.
* `create_in_bulk` — DISCOM scale: consumer numbers allocated in bulk per division through
  `core.services.allocate_numbers` (via `customers.services.new_consumer_numbers`), rows
  written with PostgreSQL COPY (psycopg 3 `cursor.copy`) or, on SQLite, `bulk_create`. The
  rules are applied once per load profile instead of once per row: every profile's load is
  checked with `customers.services.validate_load` before anything is written, and accounts
  above the key-account threshold get the key-account manager the service would pick.
"""

from collections import defaultdict
from datetime import date, datetime
from decimal import Decimal

from django.db import connection, transaction
from django.utils import timezone

from .generator import PROFILES, ConsumerSpec, Profile

CHANNEL = "import"


def validated_profiles() -> list[Profile]:
    """The demo's load profiles, each checked against its supply type's load range."""
    from urja.customers.services import validate_load

    for p in PROFILES:
        validate_load(supply_type=p.supply_type, load=p.load, unit=p.unit)
    return list(PROFILES)


def needs_key_account_manager(profile_or_load, unit: str | None = None) -> bool:
    from urja.customers import rules
    from urja.customers.services import _power_factor, kam_threshold_kw

    if isinstance(profile_or_load, Profile):
        load, unit = profile_or_load.load, profile_or_load.unit
    else:
        load = Decimal(str(profile_or_load))
    return rules.load_in_kw(load, unit, _power_factor()) > kam_threshold_kw()


class Lookups:
    """Office, feeder and DT objects by id, for the service path (which wants instances)."""

    def __init__(self):
        from urja.network.models import DistributionTransformer, Feeder, Office

        self.offices = Office.objects.in_bulk()
        self.feeders = Feeder.objects.in_bulk()
        self.dts = DistributionTransformer.objects.in_bulk()


def create_with_services(
    specs: list[ConsumerSpec],
    *,
    actor,
    lookups: Lookups,
    group=None,
    minigrid_site=None,
    package_code: str = "",
    consumer=None,
) -> list:
    """One consumer + contacts + account per spec (or, with `consumer`, accounts of that consumer)."""
    from urja.customers import services
    from urja.customers.models import Account

    accounts = []
    dates = []
    whatsapp: list[int] = []
    for s in specs:
        owner = consumer
        if owner is None:
            contacts = [services.ContactInput("mobile", s.mobile, True)]
            if s.email:
                contacts.append(services.ContactInput("email", s.email, True))
            owner = services.register_consumer(
                actor=actor,
                channel=CHANNEL,
                name=s.name,
                kind=s.kind,
                applicant_type=s.applicant_type,
                guardian_name=s.guardian_name,
                aadhaar=s.aadhaar,
                preferred_language=s.language,
                contacts=contacts,
            )
            if s.whatsapp:
                whatsapp.append(owner.pk)
        p = s.profile
        account = services.open_account(
            actor=actor,
            channel=CHANNEL,
            consumer=owner,
            section=lookups.offices[s.section.id],
            premises_address=s.address,
            category=p.category,
            sub_category=p.sub_category,
            supply_type=p.supply_type,
            sanctioned_load=p.load,
            load_unit=p.unit,
            area=s.area,
            pincode=s.pincode,
            latitude=Decimal(s.latitude),
            longitude=Decimal(s.longitude),
            feeder=lookups.feeders.get(s.feeder_id),
            transformer=lookups.dts.get(s.transformer_id),
            bill_cycle=s.bill_cycle,
            route=s.route,
            is_prepaid=s.is_prepaid,
            group=group,
            minigrid_site=minigrid_site,
            package_code=package_code,
        )
        if s.status != "active":
            account = services.change_account_status(
                actor=actor,
                channel=CHANNEL,
                account=account,
                status=s.status,
                reason="Demo data: disconnected for non-payment"
                if s.status == "temp_disconnected"
                else "Demo data: consumer asked for permanent disconnection",
            )
        account.connected_on = s.connected_on
        dates.append(account)
        accounts.append(account)
    # Connection dates in the past (open_account stamps today): demo history for bills and ageing.
    Account.objects.bulk_update(dates, ["connected_on"], batch_size=500)
    # WhatsApp opt-in (register_consumer has no such input; add_contact per consumer is slow).
    from urja.customers.models import Contact

    for start in range(0, len(whatsapp), 500):
        Contact.objects.filter(consumer_id__in=whatsapp[start : start + 500], kind="mobile").update(
            whatsapp_opt_in=True
        )
    return accounts


# ---- bulk -------------------------------------------------------------------------------------


def _text(value: str) -> str:
    """COPY text format: escape the characters that have a meaning there."""
    if "\\" in value or "\t" in value or "\n" in value or "\r" in value:
        value = value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    return value


def _copy_value(value) -> str:
    if value is None:
        return "\\N"
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, datetime | date):
        return value.isoformat()
    return _text(str(value))


def _extra_columns(model, known: list[str]) -> tuple[list[str], str]:
    """Columns the row builders do not know about (added by later migrations): their defaults."""
    extra, values = [], []
    for f in model._meta.concrete_fields:
        if f.primary_key or f.column in known:
            continue
        extra.append(f.column)
        values.append(_copy_value(f.get_default()))
    return extra, "".join("\t" + v for v in values)


class BulkWriter:
    """Writes chunks of consumer specs: consumers, contacts (mobile, e-mail) and accounts."""

    CONSUMER_COLS = [
        "id",
        "name",
        "kind",
        "applicant_type",
        "guardian_name",
        "aadhaar_masked",
        "preferred_language",
        "user_id",
        "created_at",
    ]
    CONTACT_COLS = ["consumer_id", "kind", "value", "is_primary", "verified", "verified_at", "whatsapp_opt_in"]
    ACCOUNT_COLS = [
        "consumer_number",
        "consumer_id",
        "premises_address",
        "pincode",
        "latitude",
        "longitude",
        "category",
        "sub_category",
        "supply_type",
        "sanctioned_load",
        "load_unit",
        "area",
        "section_id",
        "office_path",
        "feeder_id",
        "transformer_id",
        "minigrid_site_id",
        "package_code",
        "bill_cycle",
        "route",
        "status",
        "is_prepaid",
        "group_id",
        "key_account_manager_id",
        "connected_on",
        "created_at",
    ]

    def __init__(self, *, lookups_offices: dict, kam_threshold_profiles: set[Profile]):
        from urja.customers.models import Account, Consumer, Contact

        self.offices = lookups_offices
        self.kam_profiles = kam_threshold_profiles
        self._kam_by_section: dict[int, int | None] = {}
        self._sequence: str | None = None
        self.postgres = connection.vendor == "postgresql"
        self.consumer_extra = _extra_columns(Consumer, self.CONSUMER_COLS)
        self.contact_extra = _extra_columns(Contact, self.CONTACT_COLS)
        self.account_extra = _extra_columns(Account, self.ACCOUNT_COLS)

    def kam_for(self, section_id: int) -> int | None:
        """The key-account manager `customers.services` would pick for a section (cached)."""
        from urja.customers.services import pick_key_account_manager

        if section_id not in self._kam_by_section:
            user = pick_key_account_manager(self.offices[section_id])
            self._kam_by_section[section_id] = user.pk if user else None
        return self._kam_by_section[section_id]

    def prepare(self, section_ids) -> None:
        """Look up everything per section up front (the fast load must not query the customer
        tables while it holds them)."""
        for section_id in section_ids:
            self.kam_for(section_id)
        if self.postgres:
            self.reserve_consumer_ids(1)  # resolves the sequence name

    def numbers_for(self, specs: list[ConsumerSpec]) -> list[str]:
        """Consumer numbers for the specs, allocated in one call per division."""
        from urja.customers.services import new_consumer_numbers

        by_division: dict[int, list[int]] = defaultdict(list)
        for i, s in enumerate(specs):
            by_division[s.division.id].append(i)
        numbers: list[str] = [""] * len(specs)
        for division_id, positions in by_division.items():
            division = self.offices[division_id]
            for pos, number in zip(
                positions, new_consumer_numbers(section=division, count=len(positions)), strict=True
            ):
                numbers[pos] = number
        return numbers

    def write(self, specs: list[ConsumerSpec]) -> int:
        numbers = self.numbers_for(specs)
        if self.postgres:
            self._copy(specs, numbers)
        else:
            self._bulk_create(specs, numbers)
        return len(specs)

    # -- PostgreSQL: COPY ----------------------------------------------------------------------
    def reserve_consumer_ids(self, count: int) -> list[int]:
        """Ids from the consumer table's identity sequence (never handed out twice)."""
        with connection.cursor() as cur:
            if self._sequence is None:
                cur.execute("SELECT pg_get_serial_sequence('customers_consumer', 'id')")
                self._sequence = cur.fetchone()[0]
            cur.execute("SELECT nextval(%s) FROM generate_series(1, %s)", [self._sequence, count])
            return [row[0] for row in cur.fetchall()]

    def _copy(self, specs: list[ConsumerSpec], numbers: list[str]) -> None:
        batches = self.format_copy(specs, numbers, self.reserve_consumer_ids(len(specs)))
        with connection.cursor() as django_cursor:
            for table, columns, text in batches:
                copy_text(django_cursor.cursor, table, columns, text)  # .cursor: the psycopg cursor

    def format_copy(
        self, specs: list[ConsumerSpec], numbers: list[str], consumer_ids: list[int]
    ) -> list[tuple[str, list[str], str]]:
        """COPY text for the three tables: [(table, columns, text), …]. The generator's strings
        carry no tab, newline or backslash (`ConsumerGenerator` cleans its lists), so they go
        in as they are."""
        now = timezone.now().isoformat()
        c_extra_cols, c_extra = self.consumer_extra
        k_extra_cols, k_extra = self.contact_extra
        a_extra_cols, a_extra = self.account_extra
        kam_profiles, kam_for = self.kam_profiles, self.kam_for
        consumers, contacts, accounts = [], [], []
        for s, cid, number in zip(specs, consumer_ids, numbers, strict=True):
            masked = f"XXXX XXXX {s.aadhaar[-4:]}" if s.aadhaar else ""
            consumers.append(
                f"{cid}\t{s.name}\t{s.kind}\t{s.applicant_type}\t{s.guardian_name}\t{masked}\t"
                f"{s.language}\t\\N\t{now}{c_extra}\n"
            )
            contacts.append(f"{cid}\tmobile\t{s.mobile}\tt\tt\t{now}\t{'t' if s.whatsapp else 'f'}{k_extra}\n")
            if s.email:
                contacts.append(f"{cid}\temail\t{s.email}\tt\tt\t{now}\tf{k_extra}\n")
            p = s.profile
            section = s.section
            kam = kam_for(section.id) if p in kam_profiles else None
            accounts.append(
                f"{number}\t{cid}\t{s.address}\t{s.pincode}\t{s.latitude}\t{s.longitude}\t"
                f"{p.category}\t{p.sub_category}\t{p.supply_type}\t{p.load}\t{p.unit}\t{s.area}\t"
                f"{section.id}\t{section.path}\t{_null(s.feeder_id)}\t{_null(s.transformer_id)}\t\\N\t\t"
                f"{s.bill_cycle}\t{s.route}\t{s.status}\t{'t' if s.is_prepaid else 'f'}\t\\N\t{_null(kam)}\t"
                f"{s.connected_on.isoformat()}\t{now}{a_extra}\n"
            )
        return [
            ("customers_consumer", self.CONSUMER_COLS + c_extra_cols, "".join(consumers)),
            ("customers_contact", self.CONTACT_COLS + k_extra_cols, "".join(contacts)),
            ("customers_account", self.ACCOUNT_COLS + a_extra_cols, "".join(accounts)),
        ]

    # -- SQLite (and any other database): multi-row INSERTs ---------------------------------
    def _bulk_create(self, specs: list[ConsumerSpec], numbers: list[str]) -> None:
        """Plain `executemany` (Django's bulk_create costs ~1 ms per account here). The ids of
        the new consumers follow the current maximum: SQLite holds the write lock for the whole
        transaction (transaction_mode IMMEDIATE), so nobody else can take them."""
        from urja.customers.models import Account, Consumer, Contact

        ops = connection.ops
        now = ops.adapt_datetimefield_value(timezone.now())
        c_extra_cols, c_extra = _extra_values(Consumer, self.CONSUMER_COLS)
        k_extra_cols, k_extra = _extra_values(Contact, self.CONTACT_COLS)
        a_extra_cols, a_extra = _extra_values(Account, self.ACCOUNT_COLS)
        with connection.cursor() as cur:
            cur.execute("SELECT COALESCE(MAX(id), 0) FROM customers_consumer")
            first_id = cur.fetchone()[0] + 1
            consumers, contacts, accounts = [], [], []
            for cid, (s, number) in enumerate(zip(specs, numbers, strict=True), start=first_id):
                masked = f"XXXX XXXX {s.aadhaar[-4:]}" if s.aadhaar else ""
                consumers.append(
                    (cid, s.name, s.kind, s.applicant_type, s.guardian_name, masked, s.language, None, now, *c_extra)
                )
                contacts.append((cid, "mobile", s.mobile, True, True, now, s.whatsapp, *k_extra))
                if s.email:
                    contacts.append((cid, "email", s.email, True, True, now, False, *k_extra))
                p = s.profile
                kam = self.kam_for(s.section.id) if p in self.kam_profiles else None
                accounts.append(
                    (
                        number,
                        cid,
                        s.address,
                        s.pincode,
                        s.latitude,
                        s.longitude,
                        p.category,
                        p.sub_category,
                        p.supply_type,
                        str(p.load),
                        p.unit,
                        s.area,
                        s.section.id,
                        s.section.path,
                        s.feeder_id,
                        s.transformer_id,
                        None,
                        "",
                        s.bill_cycle,
                        s.route,
                        s.status,
                        s.is_prepaid,
                        None,
                        kam,
                        s.connected_on.isoformat(),
                        now,
                        *a_extra,
                    )
                )
            _insert_many(cur, "customers_consumer", self.CONSUMER_COLS + c_extra_cols, consumers)
            _insert_many(cur, "customers_contact", self.CONTACT_COLS + k_extra_cols, contacts)
            _insert_many(cur, "customers_account", self.ACCOUNT_COLS + a_extra_cols, accounts)


def _extra_values(model, known: list[str]) -> tuple[list[str], tuple]:
    extra, values = [], []
    for f in model._meta.concrete_fields:
        if f.primary_key or f.column in known:
            continue
        extra.append(f.column)
        values.append(f.get_db_prep_save(f.get_default(), connection))
    return extra, tuple(values)


def _insert_many(cursor, table: str, columns: list[str], rows: list[tuple]) -> None:
    if not rows:
        return
    cols = ", ".join(f'"{c}"' for c in columns)
    marks = ", ".join(["%s"] * len(columns))
    cursor.executemany(f'INSERT INTO "{table}" ({cols}) VALUES ({marks})', rows)


def _null(value) -> str:
    return "\\N" if value is None else str(value)


def copy_text(cursor, table: str, columns: list[str], text: str) -> None:
    """COPY … FROM STDIN with psycopg 3 (`cursor` is a psycopg cursor)."""
    if not text:
        return
    cols = ", ".join(f'"{c}"' for c in columns)
    with cursor.copy(f'COPY "{table}" ({cols}) FROM STDIN') as copy:
        copy.write(text)


def create_in_bulk(*, count: int, generator, seed: int, writer: BulkWriter, chunk: int = 25_000, progress=None) -> int:
    """Generate and write `count` consumers in chunks (one transaction per chunk: bounded memory,
    and a failure loses at most the chunk in hand). Returns the number written."""
    import random

    from urja.core.services import allocate_numbers

    written = 0
    while written < count:
        size = min(chunk, count - written)
        with transaction.atomic():
            first = int(allocate_numbers(key=DEMO_SERIES, template="{seq}", count=size)[0])
            rng = random.Random(f"{seed}:{first}")
            specs = [generator.make(rng, first + i) for i in range(size)]
            writer.write(specs)
        written += size
        if progress:
            progress(written)
    return written


DEMO_SERIES = "demo:consumers"
