"""Service desk: the SoP catalogue (versioned, loaded from data/servicedesk/*.toml), service
requests and complaints with their SLA clock, escalations, compensation, outages, hearings and
feedback. State changes happen only in services.py."""

from django.conf import settings
from django.db import models
from django.db.models import Q

from urja.core.states import StateMachine


class SopSchedule(models.Model):
    """One loaded catalogue file (a regulator's schedule): versioned, with an effective date."""

    code = models.CharField(max_length=40)
    state = models.CharField(max_length=6, help_text="ISO 3166-2:IN subdivision the schedule applies to")
    version = models.PositiveIntegerField()
    title = models.CharField(max_length=200)
    effective_from = models.DateField()
    source = models.JSONField(default=dict, help_text="the file's [source] citation")
    document = models.JSONField(default=dict, help_text="the whole parsed file (settings, workflows, rules)")
    file_path = models.CharField(max_length=255)
    sha256 = models.CharField(max_length=64)
    loaded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["code", "version"], name="sop_schedule_version")]
        ordering = ["state", "-effective_from", "-version"]

    def __str__(self) -> str:
        return f"{self.code} v{self.version} ({self.state}, from {self.effective_from})"


class RequestType(models.Model):
    """One catalogue row: a type / sub-type with its timeline, channels, owner and workflow."""

    class Kind(models.TextChoices):
        REQUEST = "request", "Request"
        COMPLAINT = "complaint", "Complaint"

    schedule = models.ForeignKey(SopSchedule, on_delete=models.PROTECT, related_name="types")
    type_code = models.CharField(max_length=40)
    type_name = models.CharField(max_length=120)
    subtype_code = models.CharField(max_length=40)
    name = models.CharField(max_length=160)
    kind = models.CharField(max_length=10, choices=Kind.choices)
    workflow = models.CharField(max_length=20)
    office_level = models.CharField(max_length=12)
    team = models.CharField(max_length=30)
    requires_account = models.BooleanField(default=True)
    channel_row = models.CharField(max_length=40)
    channels = models.JSONField(default=list, help_text="matrix columns where it may be lodged")
    unit = models.CharField(max_length=24)
    value = models.PositiveIntegerField(null=True, blank=True)
    urban_value = models.PositiveIntegerField(null=True, blank=True)
    rural_value = models.PositiveIntegerField(null=True, blank=True)
    escalation_key = models.CharField(max_length=30)
    compensation_key = models.CharField(max_length=30, blank=True)
    outage_check = models.BooleanField(default=False)
    confirmed = models.BooleanField(default=True, help_text="False: timeline is a configurable placeholder")
    note = models.CharField(max_length=255, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["schedule", "type_code", "subtype_code"], name="request_type_unique")
        ]
        ordering = ["schedule", "type_code", "subtype_code"]

    def __str__(self) -> str:
        return f"{self.type_name} / {self.name}"

    def timeline_value(self, area: str) -> int:
        if area == "rural" and self.rural_value:
            return self.rural_value
        if area == "urban" and self.urban_value:
            return self.urban_value
        return self.value or self.urban_value or self.rural_value or 1


class EscalationTier(models.Model):
    """A tier of a type's escalation ladder: reached at `fraction` of the SLA span."""

    request_type = models.ForeignKey(RequestType, on_delete=models.CASCADE, related_name="tiers")
    level = models.PositiveSmallIntegerField()
    title = models.CharField(max_length=80)
    fraction = models.FloatField()
    office_level = models.CharField(max_length=12)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["request_type", "level"], name="tier_level_unique")]
        ordering = ["request_type", "level"]

    def __str__(self) -> str:
        return f"L{self.level} {self.title} at {self.fraction:g}"


class Outage(models.Model):
    """A known interruption on a feeder or a distribution transformer (planned or not)."""

    class Kind(models.TextChoices):
        PLANNED = "planned", "Planned (shutdown)"
        UNPLANNED = "unplanned", "Unplanned (fault)"

    class Status(models.TextChoices):
        ANNOUNCED = "announced", "Announced"
        ACTIVE = "active", "Active"
        RESTORED = "restored", "Restored"
        CANCELLED = "cancelled", "Cancelled"

    number = models.CharField(max_length=20, unique=True)
    kind = models.CharField(max_length=10, choices=Kind.choices)
    status = models.CharField(max_length=10, choices=Status.choices)
    feeder = models.ForeignKey("network.Feeder", null=True, blank=True, on_delete=models.PROTECT)
    transformer = models.ForeignKey("network.DistributionTransformer", null=True, blank=True, on_delete=models.PROTECT)
    office = models.ForeignKey("network.Office", on_delete=models.PROTECT, related_name="outages")
    reason = models.CharField(max_length=200)
    starts_at = models.DateTimeField()
    expected_restore_at = models.DateTimeField(null=True, blank=True)
    restored_at = models.DateTimeField(null=True, blank=True)
    announced_at = models.DateTimeField(null=True, blank=True)
    affected_accounts = models.PositiveIntegerField(default=0)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["status", "feeder"]), models.Index(fields=["status", "transformer"])]
        ordering = ["-starts_at"]

    def __str__(self) -> str:
        return f"{self.number} ({self.get_status_display()})"


class OutageAccount(models.Model):
    """One account an outage affected, fixed when the outage is declared (the network may change after:
    a consumer moved to another DT, an account opened later). Its own power-fail and restore times where
    its smart meter reported them (last gasp / restore), else the outage's; its award once judged."""

    # A feeder outage stores 10,000+ rows in one statement: lean on writes — the rows come from a join of
    # existing accounts, DTs and meters (no database constraint checks them again, as for readings) and no
    # index beyond what the queries use (the unique key leads with the outage).
    outage = models.ForeignKey(Outage, on_delete=models.PROTECT, related_name="affected", db_index=False)
    account = models.ForeignKey("customers.Account", on_delete=models.DO_NOTHING, db_constraint=False, related_name="+")
    transformer = models.ForeignKey(
        "network.DistributionTransformer", null=True, blank=True, on_delete=models.DO_NOTHING, db_constraint=False,
        db_index=False, related_name="+",
    )  # fmt: skip
    # the smart meter installed on the account when the outage was declared (none: no meter to report)
    meter = models.ForeignKey(
        "metering.Meter", null=True, blank=True, on_delete=models.DO_NOTHING, db_constraint=False, db_index=False,
        related_name="+",
    )  # fmt: skip
    failed_at = models.DateTimeField(help_text="its meter's last gasp, else the outage's start")
    fail_reported = models.BooleanField(default=False, help_text="the last gasp came from its own meter")
    restored_at = models.DateTimeField(null=True, blank=True, help_text="its meter's restore, else the outage's")
    restore_reported = models.BooleanField(default=False, help_text="the restore came from its own meter")
    supplied = models.BooleanField(
        default=False, help_text="its meter recorded energy during the outage and reported no failure: never out"
    )
    award = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    units_late = models.PositiveIntegerField(null=True, blank=True)
    judged_at = models.DateTimeField(null=True, blank=True, help_text="when its compensation was decided (once)")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["outage", "account"], name="one_row_per_outage_account")]
        indexes = [
            # the detector's pass: the rows still waiting for a restore, and those to judge
            models.Index(fields=["meter"], condition=Q(restored_at__isnull=True), name="outage_account_open"),
            models.Index(fields=["outage"], condition=Q(judged_at__isnull=True), name="outage_account_unjudged"),
        ]
        ordering = ["outage", "account"]

    def __str__(self) -> str:
        return f"{self.account_id} in outage {self.outage_id}"


OS = Outage.Status
# A planned outage is announced, becomes active at its start (the periodic sweep) and is restored,
# or is cancelled before it begins; an unplanned one starts active. Restoring an announced outage
# whose start has passed (before the sweep ran) is allowed: supply is back either way.
OUTAGE_STATUS = StateMachine(
    "outage",
    {
        OS.ANNOUNCED: {OS.ACTIVE, OS.RESTORED, OS.CANCELLED},
        OS.ACTIVE: {OS.RESTORED},
        OS.RESTORED: set(),
        OS.CANCELLED: set(),
    },
)


class ServiceRequest(models.Model):
    """A request or complaint: one number, one SLA clock, a workflow state."""

    number = models.CharField(max_length=24, unique=True)
    request_type = models.ForeignKey(RequestType, on_delete=models.PROTECT, related_name="requests")
    type_code = models.CharField(max_length=40)
    subtype_code = models.CharField(max_length=40)
    workflow = models.CharField(max_length=20)
    status = models.CharField(max_length=20, db_index=True)
    account = models.ForeignKey(
        "customers.Account", null=True, blank=True, on_delete=models.PROTECT, related_name="service_requests"
    )
    consumer = models.ForeignKey(
        "customers.Consumer", null=True, blank=True, on_delete=models.PROTECT, related_name="service_requests"
    )
    contact_name = models.CharField(max_length=160, blank=True)
    contact_mobile = models.CharField(max_length=16, blank=True, help_text="E.164")
    language = models.CharField(max_length=2, default="en")
    channel = models.CharField(max_length=20)
    description = models.TextField(blank=True)
    details = models.JSONField(default=dict, blank=True)
    office = models.ForeignKey("network.Office", on_delete=models.PROTECT, related_name="service_requests")
    office_path = models.CharField(max_length=255, db_index=True)
    team = models.CharField(max_length=30)
    assigned_to = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="assigned_requests"
    )
    area = models.CharField(max_length=5, default="urban")
    # --- SLA clock (see sla.py); *_ts are epoch seconds so the sweep can compute fractions in SQL
    registered_at = models.DateTimeField()
    clock_start = models.DateTimeField()
    timeline_unit = models.CharField(max_length=24)
    timeline_value = models.PositiveIntegerField()
    due_at = models.DateTimeField(null=True, blank=True, help_text="empty while the clock is paused")
    paused_since = models.DateTimeField(null=True, blank=True)
    # --- outcome
    closed_at = models.DateTimeField(null=True, blank=True)
    resolution_code = models.CharField(max_length=40, blank=True)
    resolution_notes = models.TextField(blank=True)
    breached = models.BooleanField(null=True, blank=True, help_text="set on closing: closed after the due moment")
    outage = models.ForeignKey(Outage, null=True, blank=True, on_delete=models.SET_NULL, related_name="requests")
    repeat_contacts = models.PositiveIntegerField(default=0, help_text="same complaint lodged again while open")
    reopen_count = models.PositiveSmallIntegerField(default=0)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        indexes = [
            models.Index(fields=["account", "type_code", "status"], name="sr_account_type"),
            models.Index(fields=["office_path", "status"], name="sr_office_status"),
            models.Index(fields=["registered_at"], name="sr_registered"),
        ]
        ordering = ["-registered_at", "-id"]

    def __str__(self) -> str:
        return self.number

    @property
    def escalation_level(self) -> int:
        clock = getattr(self, "esc_clock", None)
        return clock.escalation_level if clock is not None else 0


class EscalationClock(models.Model):
    """The escalation pointer of an open request, in a narrow table of its own: the sweep reads
    and rewrites only this (two indexes), never the wide, many-indexed request row.

    Epoch seconds so the sweep computes tier moments in SQL:
    tier reached when clock_start_ts + paused_seconds + fraction × span_seconds <= now."""

    request = models.OneToOneField(ServiceRequest, primary_key=True, on_delete=models.CASCADE, related_name="esc_clock")
    request_type = models.ForeignKey(RequestType, on_delete=models.PROTECT, db_index=False, related_name="+")
    # copy of the request's owning office: the sweep groups its notices by it without a join
    office = models.ForeignKey("network.Office", on_delete=models.PROTECT, db_index=False, related_name="+")
    clock_start_ts = models.BigIntegerField()
    span_seconds = models.BigIntegerField()
    paused_seconds = models.BigIntegerField(default=0)
    next_escalation_ts = models.BigIntegerField(null=True, blank=True, help_text="empty: closed, paused or top tier")
    escalation_level = models.PositiveSmallIntegerField(default=0)

    class Meta:
        indexes = [models.Index(fields=["next_escalation_ts"], name="sr_escalation_due")]

    def __str__(self) -> str:
        return f"{self.request_id} L{self.escalation_level} next {self.next_escalation_ts}"


class RequestPause(models.Model):
    """The clock stood still (reason attributable to the consumer); the charter excludes it."""

    request = models.ForeignKey(ServiceRequest, on_delete=models.CASCADE, related_name="pauses")
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    reason = models.CharField(max_length=200)

    class Meta:
        ordering = ["started_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["request"], condition=Q(ended_at__isnull=True), name="one_open_pause")
        ]

    def __str__(self) -> str:
        return f"pause of {self.request_id} from {self.started_at:%Y-%m-%d %H:%M}"


class Escalation(models.Model):
    """A request reached a tier. Unique per (request, level): never escalated twice to a level."""

    class Reason(models.TextChoices):
        SLA = "sla", "SLA fraction reached"
        CONSUMER = "consumer", "Escalated by the consumer"
        MANUAL = "manual", "Escalated by staff"

    # no separate index: the unique (request, level) constraint serves lookups by request
    request = models.ForeignKey(ServiceRequest, on_delete=models.CASCADE, related_name="escalations", db_index=False)
    level = models.PositiveSmallIntegerField()
    title = models.CharField(max_length=80)
    office_level = models.CharField(max_length=12)
    reason = models.CharField(max_length=10, choices=Reason.choices, default=Reason.SLA)
    fraction = models.FloatField(null=True, blank=True)
    sweep = models.CharField(max_length=36, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["request", "level"], name="escalation_once_per_level")]
        ordering = ["request", "level"]

    def __str__(self) -> str:
        return f"{self.request_id} L{self.level}"


class RequestEvent(models.Model):
    """The request's timeline: state changes, notes, escalations, messages. Append-only."""

    class Kind(models.TextChoices):
        REGISTERED = "registered", "Registered"
        STATUS = "status", "Status change"
        NOTE = "note", "Note"
        ASSIGNED = "assigned", "Assigned"
        TRANSFERRED = "transferred", "Transferred"
        ESCALATED = "escalated", "Escalated"
        PAUSED = "paused", "Clock paused"
        RESUMED = "resumed", "Clock resumed"
        REPEAT = "repeat", "Lodged again"
        MESSAGE = "message", "Message to consumer"
        COMPENSATION = "compensation", "Compensation"
        HEARING = "hearing", "Hearing"
        FEEDBACK = "feedback", "Feedback"
        OUTAGE = "outage", "Outage"

    request = models.ForeignKey(ServiceRequest, on_delete=models.CASCADE, related_name="events")
    at = models.DateTimeField()
    kind = models.CharField(max_length=14, choices=Kind.choices)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    actor_label = models.CharField(max_length=150, blank=True)
    channel = models.CharField(max_length=20, blank=True)
    from_status = models.CharField(max_length=20, blank=True)
    to_status = models.CharField(max_length=20, blank=True)
    text = models.TextField(blank=True)
    data = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["at", "id"]
        indexes = [models.Index(fields=["request", "at"])]

    def __str__(self) -> str:
        return f"{self.request_id} {self.kind} {self.at:%Y-%m-%d %H:%M}"

    def save(self, *args, **kwargs):
        if self.pk:
            raise ValueError("request events are append-only")
        super().save(*args, **kwargs)


class CompensationAward(models.Model):
    """Compensation for a breached request, credited to the account's ledger (once)."""

    request = models.OneToOneField(ServiceRequest, on_delete=models.PROTECT, related_name="compensation")
    account = models.ForeignKey("customers.Account", on_delete=models.PROTECT, related_name="+")
    division = models.ForeignKey("network.Office", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    units_late = models.PositiveIntegerField()
    basis = models.CharField(max_length=10)
    capped = models.BooleanField(default=False)
    many_affected = models.BooleanField(default=False)
    rule = models.JSONField(default=dict)
    ledger_entry = models.ForeignKey("billing.LedgerEntry", null=True, blank=True, on_delete=models.PROTECT)
    month = models.DateField(help_text="first day of the month it was awarded (monthly report)")
    created_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["month", "division"])]

    def __str__(self) -> str:
        return f"Rs {self.amount} for {self.request_id}"


class Hearing(models.Model):
    """A sitting of the hearing and counselling cell on a billing / arrear dispute."""

    class Outcome(models.TextChoices):
        PENDING = "pending", "Pending"
        UPHELD = "upheld", "Consumer's claim upheld"
        PARTLY = "partly_upheld", "Partly upheld"
        REJECTED = "rejected", "Claim rejected"
        ADJOURNED = "adjourned", "Adjourned"

    request = models.ForeignKey(ServiceRequest, on_delete=models.CASCADE, related_name="hearings")
    scheduled_for = models.DateTimeField()
    venue = models.CharField(max_length=200)
    outcome = models.CharField(max_length=14, choices=Outcome.choices, default=Outcome.PENDING)
    notes = models.TextField(blank=True)
    # bill revision decided: negative = credit to the consumer, positive = further debit
    revision_amount = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    ledger_entry = models.ForeignKey("billing.LedgerEntry", null=True, blank=True, on_delete=models.PROTECT)
    decided_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)

    class Meta:
        ordering = ["scheduled_for", "id"]

    def __str__(self) -> str:
        return f"hearing {self.scheduled_for:%Y-%m-%d} on {self.request_id} ({self.outcome})"


class Feedback(models.Model):
    """The consumer's rating of a closed request (through the signed feedback link)."""

    request = models.ForeignKey(ServiceRequest, on_delete=models.CASCADE, related_name="feedback")
    rating = models.PositiveSmallIntegerField()
    comment = models.TextField(blank=True)
    satisfied = models.BooleanField()
    closure = models.PositiveSmallIntegerField(default=0, help_text="which closure (reopen count) it rates")
    created_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["request", "closure"], name="feedback_once_per_closure")]

    def __str__(self) -> str:
        return f"{self.rating}/5 on {self.request_id}"


class StaffNotice(models.Model):
    """An in-app notice to a staff member (escalations to the holder of a tier)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="servicedesk_notices")
    text = models.CharField(max_length=300)
    url = models.CharField(max_length=200, blank=True)
    key = models.CharField(max_length=120, unique=True)
    created_at = models.DateTimeField()
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.text
