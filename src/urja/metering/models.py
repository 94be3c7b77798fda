"""Meters, installations, readings (registers and intervals), VEE, imports, smart-meter commands.

State changes happen only in `services.py`; pure calculations live in `consumption.py`,
`vee.py` and `schedule.py`.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q

from urja.core.states import StateMachine


class MeterType(models.TextChoices):
    ELECTROMECHANICAL = "electromechanical", "Electromechanical"
    STATIC = "static", "Static (electronic)"
    AMR = "amr", "AMR (automatic meter reading)"
    SMART = "smart", "Smart (two-way)"
    SMART_PREPAID = "smart_prepaid", "Smart prepaid"
    LOAD_LIMITER = "load_limiter", "Load limiter (no register)"
    CT_PT_HT = "ct_pt_ht", "CT/PT-operated HT meter"


SMART_TYPES = frozenset({MeterType.SMART, MeterType.SMART_PREPAID})
# Load limiters have no energy register: no readings, but they can take a load limit.
REGISTERLESS_TYPES = frozenset({MeterType.LOAD_LIMITER})


class Ownership(models.TextChoices):
    UTILITY = "utility", "Utility (meter rent applies)"
    CONSUMER_BOUGHT = "consumer_bought", "Consumer-bought from a certified vendor (no meter rent)"
    CONSUMER_PAID_FULL = "consumer_paid_full", "Consumer paid the full cost (no meter rent)"


class MeterStatus(models.TextChoices):
    IN_STORE = "in_store", "In store"
    INSTALLED = "installed", "Installed"
    REMOVED = "removed", "Removed"
    DEFECTIVE = "defective", "Defective"
    BURNT = "burnt", "Burnt"
    UNDER_TEST = "under_test", "Under test"
    SCRAPPED = "scrapped", "Scrapped"


S = MeterStatus
METER_STATUS = StateMachine(
    "meter status",
    {
        S.IN_STORE: {S.INSTALLED, S.UNDER_TEST, S.DEFECTIVE, S.SCRAPPED},
        S.INSTALLED: {S.REMOVED, S.DEFECTIVE, S.BURNT, S.UNDER_TEST},
        S.UNDER_TEST: {S.IN_STORE, S.INSTALLED, S.DEFECTIVE},
        S.REMOVED: {S.IN_STORE, S.UNDER_TEST, S.DEFECTIVE, S.SCRAPPED},
        S.DEFECTIVE: {S.UNDER_TEST, S.IN_STORE, S.SCRAPPED},
        S.BURNT: {S.UNDER_TEST, S.SCRAPPED},
        S.SCRAPPED: set(),
    },
)


class Meter(models.Model):
    serial = models.CharField(max_length=32, unique=True)
    make = models.CharField(max_length=60)
    model = models.CharField(max_length=60, blank=True)
    meter_type = models.CharField(max_length=20, choices=MeterType.choices)
    phase = models.PositiveSmallIntegerField(default=1, choices=[(1, "Single phase"), (3, "Three phase")])
    multiplying_factor = models.DecimalField(max_digits=10, decimal_places=3, default=1)
    register_digits = models.PositiveSmallIntegerField(default=6, help_text="integer digits; wraps at 10^digits")
    ownership = models.CharField(max_length=20, choices=Ownership.choices, default=Ownership.UTILITY)
    seals = models.JSONField(default=list, blank=True)
    status = models.CharField(max_length=12, choices=MeterStatus.choices, default=MeterStatus.IN_STORE)
    store_office = models.ForeignKey("network.Office", null=True, blank=True, on_delete=models.PROTECT)
    # Smart-meter state as last acknowledged by the meter.
    relay_connected = models.BooleanField(default=True)
    load_limit_kw = models.DecimalField(max_digits=8, decimal_places=3, null=True, blank=True)
    supply_hours = models.JSONField(default=list, blank=True)
    last_seen_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["status", "meter_type"])]

    def __str__(self) -> str:
        return self.serial

    @property
    def is_smart(self) -> bool:
        return self.meter_type in SMART_TYPES

    @property
    def has_register(self) -> bool:
        return self.meter_type not in REGISTERLESS_TYPES


class Installation(models.Model):
    """Which meter served which account when, with the register values at both ends."""

    meter = models.ForeignKey(Meter, on_delete=models.PROTECT, related_name="installations")
    account = models.ForeignKey("customers.Account", on_delete=models.PROTECT, related_name="installations")
    installed_at = models.DateTimeField()
    removed_at = models.DateTimeField(null=True, blank=True)
    initial_kwh = models.DecimalField(max_digits=14, decimal_places=3, default=0)
    initial_kvah = models.DecimalField(max_digits=14, decimal_places=3, null=True, blank=True)
    initial_tod = models.JSONField(default=dict, blank=True)
    final_kwh = models.DecimalField(max_digits=14, decimal_places=3, null=True, blank=True)
    final_kvah = models.DecimalField(max_digits=14, decimal_places=3, null=True, blank=True)
    final_tod = models.JSONField(default=dict, blank=True)
    location = models.CharField(max_length=200, blank=True, help_text="where on the premises")
    reason = models.CharField(max_length=200, blank=True)
    removal_reason = models.CharField(max_length=200, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["account"], condition=Q(removed_at__isnull=True), name="one_open_per_account"
            ),
            models.UniqueConstraint(fields=["meter"], condition=Q(removed_at__isnull=True), name="one_open_per_meter"),
        ]
        indexes = [models.Index(fields=["account", "installed_at"]), models.Index(fields=["meter", "installed_at"])]
        ordering = ["installed_at", "id"]

    def __str__(self) -> str:
        return f"{self.meter_id}@{self.account_id} from {self.installed_at:%Y-%m-%d}"

    @property
    def is_open(self) -> bool:
        return self.removed_at is None


class SheetEntry(models.Model):
    """One line of the meter particulars sheet (OERC Supply Code reg. 102(vii)(c)). Append-only."""

    class Kind(models.TextChoices):
        REGISTERED = "registered", "Registered in store"
        INSTALLATION = "installation", "Installation"
        REMOVAL = "removal", "Removal"
        REPLACEMENT = "replacement", "Replacement"
        SEAL_CHANGE = "seal_change", "Seal change"
        FAULT = "fault", "Fault"
        REPAIR = "repair", "Repair"
        TEST = "test", "Test"
        SHIFT = "shift", "Shifting"
        STATUS = "status", "Status change"

    meter = models.ForeignKey(Meter, on_delete=models.PROTECT, related_name="sheet")
    account = models.ForeignKey("customers.Account", null=True, blank=True, on_delete=models.PROTECT)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    at = models.DateTimeField()
    summary = models.CharField(max_length=240)
    details = models.JSONField(default=dict, blank=True)
    performed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    performed_by_name = models.CharField(max_length=150)
    channel = models.CharField(max_length=20)
    consumer_acknowledged = models.BooleanField(default=False)
    acknowledged_by = models.CharField(max_length=150, blank=True, help_text="consumer or representative who signed")
    recorded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["at", "id"]
        indexes = [models.Index(fields=["meter", "at"])]

    def __str__(self) -> str:
        return f"{self.meter_id} {self.kind} {self.at:%Y-%m-%d}"

    def save(self, *args, **kwargs):
        if self.pk:
            raise ValueError("meter particulars sheet entries are append-only")
        super().save(*args, **kwargs)


class MeterTest(models.Model):
    class Result(models.TextChoices):
        OK = "ok", "Within limits"
        FAST = "fast", "Running fast"
        SLOW = "slow", "Running slow"
        STUCK = "stuck", "Stuck / not recording"
        CREEPING = "creeping", "Creeping"

    meter = models.ForeignKey(Meter, on_delete=models.PROTECT, related_name="tests")
    account = models.ForeignKey("customers.Account", null=True, blank=True, on_delete=models.PROTECT)
    notice_given_on = models.DateField()
    tested_on = models.DateField()
    error_percent = models.DecimalField(max_digits=6, decimal_places=2)
    result = models.CharField(max_length=10, choices=Result.choices)
    remarks = models.TextField(blank=True)
    tested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"test of {self.meter_id} on {self.tested_on}: {self.result}"


class ReadingSource(models.TextChoices):
    FIELD_AGENT = "field_agent", "Field agent (photo, GPS)"
    STAFF = "staff", "Staff entry"
    AMR = "amr", "AMR file"
    SMART_METER = "smart_meter", "Smart meter"
    SELF = "self", "Consumer self-reading"
    ESTIMATED = "estimated", "Estimated"
    INSTALLATION = "installation", "Installation / removal"


class ReadingStatus(models.TextChoices):
    ACTUAL = "actual", "Actual"
    ESTIMATED = "estimated", "Estimated"
    PROVISIONAL = "provisional", "Provisional"
    DOOR_LOCKED = "door_locked", "Door locked"
    METER_DEFECTIVE = "meter_defective", "Meter defective"


class VeeStatus(models.TextChoices):
    PENDING = "pending", "Not yet validated"
    PASSED = "passed", "Passed"
    FLAGGED = "flagged", "Passed with flags"
    REVIEW = "review", "Waiting for review"
    ACCEPTED = "accepted", "Accepted on review"
    EDITED = "edited", "Edited on review"
    REPLACED = "replaced", "Replaced by an estimate on review"


USABLE_VEE = (VeeStatus.PASSED, VeeStatus.FLAGGED, VeeStatus.ACCEPTED, VeeStatus.EDITED)
# Statuses carrying a register value billing may use.
REGISTER_STATUSES = (ReadingStatus.ACTUAL, ReadingStatus.ESTIMATED, ReadingStatus.PROVISIONAL)


class ImportBatch(models.Model):
    class State(models.TextChoices):
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    file_name = models.CharField(max_length=255)
    file_sha256 = models.CharField(max_length=64, db_index=True)
    file_format = models.CharField(max_length=8)
    source = models.CharField(max_length=16, choices=ReadingSource.choices, default=ReadingSource.AMR)
    state = models.CharField(max_length=8, choices=State.choices, default=State.RUNNING)
    rows = models.PositiveIntegerField(default=0)
    inserted = models.PositiveIntegerField(default=0)
    duplicates = models.PositiveIntegerField(default=0)
    rejected = models.PositiveIntegerField(default=0)
    message = models.TextField(blank=True)
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    seconds = models.FloatField(default=0)
    # Readings of the batch lie in this id range: the VEE job finds them by primary key (no extra
    # index on the readings table for "pending").
    first_reading_id = models.BigIntegerField(null=True, blank=True)
    last_reading_id = models.BigIntegerField(null=True, blank=True)
    vee_done = models.BooleanField(default=False)
    imported_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    def __str__(self) -> str:
        return f"import {self.pk} {self.file_name}"


class ImportRowError(models.Model):
    batch = models.ForeignKey(ImportBatch, on_delete=models.CASCADE, related_name="errors")
    row_number = models.PositiveIntegerField()
    code = models.CharField(max_length=40)
    message = models.CharField(max_length=240)
    raw = models.TextField(blank=True)

    class Meta:
        ordering = ["batch", "row_number"]

    def __str__(self) -> str:
        return f"row {self.row_number}: {self.code}"


class Reading(models.Model):
    """A register reading. Grows without bound: lean indexes, and no database foreign-key constraints
    (per-row deferred triggers would cost more than the bulk insert itself; references are made
    only by services and the importer, which join to the referenced rows). See docs/metering.md."""

    meter = models.ForeignKey(
        Meter, on_delete=models.PROTECT, db_index=False, db_constraint=False, related_name="readings"
    )
    account = models.ForeignKey("customers.Account", on_delete=models.PROTECT, db_index=False, db_constraint=False)
    installation = models.ForeignKey(Installation, on_delete=models.PROTECT, db_index=False, db_constraint=False)
    read_at = models.DateTimeField()
    source = models.CharField(max_length=16, choices=ReadingSource.choices)
    status = models.CharField(max_length=16, choices=ReadingStatus.choices, default=ReadingStatus.ACTUAL)
    kwh = models.DecimalField(max_digits=14, decimal_places=3, null=True, blank=True)
    kvah = models.DecimalField(max_digits=14, decimal_places=3, null=True, blank=True)
    md_kw = models.DecimalField(max_digits=10, decimal_places=3, null=True, blank=True)
    md_kva = models.DecimalField(max_digits=10, decimal_places=3, null=True, blank=True)
    tod = models.JSONField(null=True, blank=True, help_text='cumulative kWh per time-of-day zone {"peak": "12.5"}')
    photo = models.FileField(upload_to="readings/%Y/%m/", blank=True)
    latitude = models.DecimalField(max_digits=9, decimal_places=6, null=True, blank=True)
    longitude = models.DecimalField(max_digits=9, decimal_places=6, null=True, blank=True)
    reader = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, db_index=False
    )
    vee_status = models.CharField(max_length=10, choices=VeeStatus.choices, default=VeeStatus.PENDING)
    exceptions = models.JSONField(null=True, blank=True, help_text="failed VEE rules [{rule, severity, message}]")
    estimation_method = models.CharField(max_length=32, blank=True)
    original_kwh = models.DecimalField(max_digits=14, decimal_places=3, null=True, blank=True)
    review_reason = models.CharField(max_length=240, blank=True)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        db_index=False,
        db_constraint=False,
        related_name="+",
    )
    # Informational link, no database constraint: a constraint without an index would make every
    # delete on this large table scan it.
    reconciled_by = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, db_index=False, db_constraint=False, related_name="+"
    )
    batch = models.ForeignKey(
        ImportBatch, null=True, blank=True, on_delete=models.SET_NULL, db_index=False, db_constraint=False
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["meter", "read_at", "source"], name="reading_unique_meter_time_source")
        ]
        indexes = [
            models.Index(fields=["account", "read_at"], name="reading_account_time"),
            # The review queue: small, so inserts of pending/passed readings never touch it.
            models.Index(fields=["account"], condition=Q(vee_status="review"), name="reading_review_queue"),
            # Readings the gateway stored but did not validate (the VEE job's retry); imported rows carry a
            # batch and are found by its id range, so a file import never touches this index.
            models.Index(
                fields=["read_at"],
                condition=Q(vee_status="pending", batch__isnull=True),
                name="reading_pending_unbatched",
            ),
        ]
        ordering = ["read_at", "id"]

    def __str__(self) -> str:
        return f"{self.meter_id} {self.read_at:%Y-%m-%d} {self.kwh}"

    @property
    def is_usable(self) -> bool:
        return self.vee_status in USABLE_VEE and self.status in REGISTER_STATUSES and self.kwh is not None


class IntervalReading(models.Model):
    """15/30-minute interval energy from smart meters. Composite key (meter, ts): the partition key is
    part of the primary key, so on PostgreSQL the table converts to PARTITION BY RANGE (ts) by month."""

    pk = models.CompositePrimaryKey("meter_id", "ts")
    meter = models.ForeignKey(Meter, on_delete=models.DO_NOTHING, db_constraint=False, db_index=False)
    ts = models.DateTimeField(help_text="end of the interval")
    minutes = models.PositiveSmallIntegerField(default=30)
    kwh = models.DecimalField(max_digits=10, decimal_places=4)
    kvah = models.DecimalField(max_digits=10, decimal_places=4, null=True, blank=True)

    class Meta:
        ordering = ["meter_id", "ts"]

    def __str__(self) -> str:
        return f"{self.meter_id} {self.ts:%Y-%m-%d %H:%M} {self.kwh}"


class SmartMeterEvent(models.Model):
    class Kind(models.TextChoices):
        TAMPER = "tamper", "Tamper"
        COVER_OPEN = "cover_open", "Cover open"
        MAGNET = "magnet", "Magnetic interference"
        POWER_FAIL = "power_fail", "Power fail"
        POWER_RESTORE = "power_restore", "Power restore"
        RELAY_OPEN = "relay_open", "Relay opened"
        RELAY_CLOSED = "relay_closed", "Relay closed"
        OVERLOAD = "overload", "Load limit exceeded"

    meter = models.ForeignKey(Meter, on_delete=models.PROTECT, related_name="events", db_index=False)
    at = models.DateTimeField()
    kind = models.CharField(max_length=16, choices=Kind.choices)
    details = models.JSONField(default=dict, blank=True)
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["meter", "at", "kind"], name="smart_event_unique")]
        ordering = ["-at"]

    def __str__(self) -> str:
        return f"{self.meter_id} {self.kind} {self.at:%Y-%m-%d %H:%M}"


class DeadLetter(models.Model):
    """An inbound message the gateway refused, with the reason (never silently dropped)."""

    received_at = models.DateTimeField(auto_now_add=True, db_index=True)
    topic = models.CharField(max_length=200)
    payload = models.TextField()
    code = models.CharField(max_length=40)
    reason = models.CharField(max_length=400)

    class Meta:
        ordering = ["-received_at", "-id"]

    def __str__(self) -> str:
        return f"{self.topic}: {self.code}"


class CommandKind(models.TextChoices):
    DISCONNECT = "disconnect", "Disconnect"
    RECONNECT = "reconnect", "Reconnect"
    SET_LOAD_LIMIT = "set_load_limit", "Set load limit"
    SET_SUPPLY_HOURS = "set_supply_hours", "Set supply-hours window"
    TIME_SYNC = "time_sync", "Time sync"


class CommandStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    SENT = "sent", "Sent"
    ACKNOWLEDGED = "acknowledged", "Acknowledged"
    FAILED = "failed", "Failed"
    TIMED_OUT = "timed_out", "Timed out"
    CANCELLED = "cancelled", "Cancelled"


C = CommandStatus
# A command's life: queued → sent (claim_commands: one attempt) → acknowledged | failed (the meter's
# answer) | timed_out (no answer by the deadline). A timed-out command with attempts left is queued
# again at once by the sweep (timed_out → queued, both steps audited), and an officer may retry a
# failed or timed-out one (→ queued). The retry keeps the command id, so a meter that did act on an
# earlier attempt answers without acting twice; that earlier attempt's ack may arrive while the retry
# waits (queued → acknowledged | failed) or after the last timeout (timed_out → acknowledged | failed).
COMMAND_STATUS = StateMachine(
    "meter command",
    {
        C.QUEUED: {C.SENT, C.CANCELLED, C.ACKNOWLEDGED, C.FAILED},
        C.SENT: {C.ACKNOWLEDGED, C.FAILED, C.TIMED_OUT},
        C.TIMED_OUT: {C.QUEUED, C.ACKNOWLEDGED, C.FAILED},
        C.FAILED: {C.QUEUED},
        C.ACKNOWLEDGED: set(),
        C.CANCELLED: set(),
    },
)


class MeterCommand(models.Model):
    command_id = models.CharField(max_length=36, unique=True, help_text="echoed by the meter in its ack")
    meter = models.ForeignKey(Meter, on_delete=models.PROTECT, related_name="commands")
    account = models.ForeignKey("customers.Account", null=True, blank=True, on_delete=models.PROTECT)
    command = models.CharField(max_length=20, choices=CommandKind.choices)
    params = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=12, choices=CommandStatus.choices, default=CommandStatus.QUEUED)
    idempotency_key = models.CharField(max_length=120, null=True, blank=True, unique=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    max_attempts = models.PositiveSmallIntegerField(default=3)
    timeout_seconds = models.PositiveIntegerField(default=120)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    deadline_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    result = models.JSONField(default=dict, blank=True)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    channel = models.CharField(max_length=20)

    class Meta:
        indexes = [models.Index(fields=["status", "deadline_at"]), models.Index(fields=["meter", "created_at"])]
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.command} {self.meter_id} [{self.status}]"


class ReadCycle(models.Model):
    """Fixed reading day of a bill cycle (seed 003: fixed date ± 3 working days)."""

    code = models.CharField(max_length=12, unique=True)
    read_day = models.PositiveSmallIntegerField(help_text="day of month 1–28")

    def __str__(self) -> str:
        return f"{self.code} (day {self.read_day})"


class BoundaryInstallation(models.Model):
    """A boundary meter on a network node: the head of a feeder or a distribution transformer (the
    input side of energy accounting). Not an account's installation: no consumer, no bill."""

    meter = models.ForeignKey(Meter, on_delete=models.PROTECT, related_name="boundary_installations")
    feeder = models.ForeignKey("network.Feeder", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    transformer = models.ForeignKey(
        "network.DistributionTransformer", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    installed_at = models.DateTimeField()
    removed_at = models.DateTimeField(null=True, blank=True)
    initial_kwh = models.DecimalField(max_digits=14, decimal_places=3, default=0)
    final_kwh = models.DecimalField(max_digits=14, decimal_places=3, null=True, blank=True)

    class Meta:
        constraints = [
            # exactly one node: a DT meter names its DT (its feeder follows), a feeder-head meter its feeder
            models.CheckConstraint(
                condition=Q(feeder__isnull=True, transformer__isnull=False)
                | Q(feeder__isnull=False, transformer__isnull=True),
                name="boundary_one_node",
            ),
            models.UniqueConstraint(
                fields=["meter"], condition=Q(removed_at__isnull=True), name="boundary_one_open_per_meter"
            ),
            models.UniqueConstraint(
                fields=["transformer"],
                condition=Q(removed_at__isnull=True, transformer__isnull=False),
                name="boundary_one_open_per_dt",
            ),
            models.UniqueConstraint(
                fields=["feeder"],
                condition=Q(removed_at__isnull=True, feeder__isnull=False),
                name="boundary_one_open_per_feeder",
            ),
        ]
        ordering = ["installed_at", "id"]

    def __str__(self) -> str:
        node = f"DT {self.transformer_id}" if self.transformer_id else f"feeder {self.feeder_id}"
        return f"{self.meter_id}@{node}"


class BoundaryReading(models.Model):
    """A register reading of a boundary meter (kWh, before the meter's multiplying factor)."""

    meter = models.ForeignKey(Meter, on_delete=models.PROTECT, db_index=False, db_constraint=False, related_name="+")
    installation = models.ForeignKey(BoundaryInstallation, on_delete=models.PROTECT, related_name="readings")
    read_at = models.DateTimeField()
    source = models.CharField(max_length=16, choices=ReadingSource.choices)
    kwh = models.DecimalField(max_digits=14, decimal_places=3)
    batch = models.ForeignKey(
        ImportBatch, null=True, blank=True, on_delete=models.SET_NULL, db_index=False, db_constraint=False
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["meter", "read_at"], name="boundary_reading_unique")]
        indexes = [models.Index(fields=["installation", "read_at"], name="boundary_reading_inst_time")]
        ordering = ["read_at", "id"]

    def __str__(self) -> str:
        return f"{self.meter_id} {self.read_at:%Y-%m-%d %H:%M} {self.kwh}"
