"""Energy accounting per month and network node, stored per period (recomputed by an idempotent job),
loss-hunting inspections, and outages detected from smart meters."""

from django.conf import settings
from django.db import models

from urja.core.states import StateMachine


class Level(models.TextChoices):
    DT = "dt", "Distribution transformer"
    FEEDER = "feeder", "Feeder"
    SECTION = "section", "Section"
    SUBDIVISION = "subdivision", "Sub-division"
    DIVISION = "division", "Division"
    CIRCLE = "circle", "Circle"
    UTILITY = "utility", "Utility"


OFFICE_LEVELS = (Level.SECTION, Level.SUBDIVISION, Level.DIVISION, Level.CIRCLE, Level.UTILITY)


class InputStatus(models.TextChoices):
    MEASURED = "measured", "Measured by the boundary meter"
    SUM_OF_PARTS = "sum_of_parts", "Sum of the nodes below"
    ESTIMATED = "estimated", "Estimated (flagged)"
    MISSING = "missing", "No input reading (flagged)"
    NOT_APPLICABLE = "n/a", "Not applicable (per-category row)"


class EnergyBalance(models.Model):
    """One node's month: input energy, billed energy by kind, amounts billed and collected. A row with
    category "" is the node's total; rows with a category split billing and collection by category
    (input energy is not metered per category). Ratios are stored for ranking; None where undefined."""

    period = models.CharField(max_length=7, help_text="YYYY-MM")
    level = models.CharField(max_length=12, choices=Level.choices)
    node_id = models.BigIntegerField(help_text="DT, feeder or office id")
    code = models.CharField(max_length=24)
    name = models.CharField(max_length=120)
    parent_level = models.CharField(max_length=12, blank=True)
    parent_id = models.BigIntegerField(null=True, blank=True)
    office_path = models.CharField(max_length=255, help_text="for scoping: the node's (or its feeder's) office path")
    category = models.CharField(max_length=24, blank=True, default="")
    input_kwh = models.DecimalField(max_digits=16, decimal_places=3, null=True, blank=True)
    input_status = models.CharField(max_length=14, choices=InputStatus.choices)
    flags = models.JSONField(default=list, blank=True, help_text="[{code, message}]")
    metered_kwh = models.DecimalField(max_digits=16, decimal_places=3, default=0)
    estimated_kwh = models.DecimalField(max_digits=16, decimal_places=3, default=0)
    assessed_kwh = models.DecimalField(max_digits=16, decimal_places=3, default=0)
    prepaid_kwh = models.DecimalField(max_digits=16, decimal_places=3, default=0)
    billed_kwh = models.DecimalField(max_digits=16, decimal_places=3, default=0)
    billed_amount = models.DecimalField(max_digits=16, decimal_places=2, default=0)
    collected_amount = models.DecimalField(max_digits=16, decimal_places=2, default=0)
    accounts = models.PositiveIntegerField(default=0)
    billing_efficiency = models.DecimalField(max_digits=9, decimal_places=6, null=True, blank=True)
    collection_efficiency = models.DecimalField(max_digits=9, decimal_places=6, null=True, blank=True)
    atc_loss = models.DecimalField(max_digits=9, decimal_places=6, null=True, blank=True)
    computed_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["period", "level", "node_id", "category"], name="energy_balance_unique")
        ]
        indexes = [
            models.Index(fields=["period", "level", "atc_loss"], name="energy_balance_rank"),
            models.Index(fields=["level", "node_id", "period"], name="energy_balance_trend"),
            models.Index(fields=["period", "parent_level", "parent_id"], name="energy_balance_children"),
        ]
        ordering = ["period", "level", "code"]

    def __str__(self) -> str:
        return f"{self.period} {self.level} {self.code} {self.category or 'all'}"


class AccountingRun(models.Model):
    """The last computation of a period (one row per period; the job replaces it)."""

    period = models.CharField(max_length=7, unique=True)
    computed_at = models.DateTimeField()
    seconds = models.FloatField(default=0)
    rows = models.PositiveIntegerField(default=0)
    flagged = models.PositiveIntegerField(default=0)
    totals = models.JSONField(default=dict, blank=True)

    def __str__(self) -> str:
        return f"energy accounting {self.period}"


class Inspection(models.Model):
    """A suspect account put on a field team's inspection list, and what the team found."""

    class Status(models.TextChoices):
        OPEN = "open", "To inspect"
        DONE = "done", "Inspected"
        CANCELLED = "cancelled", "Cancelled"

    class Outcome(models.TextChoices):
        NO_ISSUE = "no_issue", "No irregularity"
        THEFT = "theft", "Theft / unauthorised use (assessment billed)"
        METER_FAULT = "meter_fault", "Meter fault"
        PREMISES_VACANT = "vacant", "Premises vacant"
        LOAD_EXCEEDED = "load_exceeded", "Load above sanctioned (load change proposed)"

    account = models.ForeignKey("customers.Account", on_delete=models.PROTECT, related_name="+")
    transformer = models.ForeignKey("network.DistributionTransformer", null=True, on_delete=models.PROTECT)
    period = models.CharField(max_length=7)
    reasons = models.JSONField(default=list, help_text="[{code, message}] why the account is suspect")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    outcome = models.CharField(max_length=16, choices=Outcome.choices, blank=True)
    remarks = models.TextField(blank=True)
    assessed_kwh = models.DecimalField(max_digits=14, decimal_places=3, null=True, blank=True)
    assessed_amount = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    ledger_reference = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    inspected_at = models.DateTimeField(null=True, blank=True)
    inspected_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["account", "period"], name="one_inspection_per_account_period")]
        ordering = ["status", "-created_at"]

    def __str__(self) -> str:
        return f"inspection {self.account_id} {self.period} [{self.status}]"


IS = Inspection.Status
# An inspection is open on the list until the field team records what it found (done) or it is
# withdrawn (cancelled); neither comes back.
INSPECTION_STATUS = StateMachine("inspection", {IS.OPEN: {IS.DONE, IS.CANCELLED}, IS.DONE: set(), IS.CANCELLED: set()})


class DetectedOutage(models.Model):
    """The meters behind an outage the detector declared (the outage itself is servicedesk's)."""

    outage = models.OneToOneField("servicedesk.Outage", on_delete=models.PROTECT, related_name="detection")
    first_event_at = models.DateTimeField()
    meters_failed = models.PositiveIntegerField()
    meters_restored = models.PositiveIntegerField(default=0)
    failed_meter_ids = models.JSONField(default=list)
    restored_at = models.DateTimeField(null=True, blank=True, help_text="measured: the restore events")
    measured_minutes = models.PositiveIntegerField(null=True, blank=True)
    compensated = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"detected {self.outage_id}"


class EventCursor(models.Model):
    """How far the outage detector has read smart-meter events (one row; the job resumes from it)."""

    name = models.CharField(max_length=40, unique=True)
    last_event_id = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.name} at event {self.last_event_id}"


class OutageAward(models.Model):
    """Compensation credited to an affected consumer of an outage without a complaint (issue 14.5)."""

    outage = models.ForeignKey("servicedesk.Outage", on_delete=models.PROTECT, related_name="+")
    account = models.ForeignKey("customers.Account", on_delete=models.PROTECT, related_name="+")
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    units_late = models.PositiveIntegerField()
    basis = models.CharField(max_length=10)
    many_affected = models.BooleanField(default=False)
    capped = models.BooleanField(default=False)
    ledger_entry_id = models.BigIntegerField(help_text="billing.LedgerEntry of the credit")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["outage", "account"], name="one_outage_award_per_account")]

    def __str__(self) -> str:
        return f"Rs {self.amount} for outage {self.outage_id} to {self.account_id}"
