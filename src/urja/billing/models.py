"""Billing: the append-only account ledger (bills, bill runs and deposits build on it)."""

from django.conf import settings
from django.db import models


class EntryType(models.TextChoices):
    BILL_CHARGE = "bill_charge", "Bill charge"
    PAYMENT = "payment", "Payment"
    ADJUSTMENT = "adjustment", "Adjustment"
    CREDIT_NOTE = "credit_note", "Credit note"
    DEBIT_NOTE = "debit_note", "Debit note"
    DPS = "dps", "Delayed payment surcharge"
    REBATE = "rebate", "Rebate"
    SUBSIDY = "subsidy", "Government subsidy"
    DEPOSIT = "deposit", "Security deposit"
    DEPOSIT_REFUND = "deposit_refund", "Security deposit refund"
    DEPOSIT_INTEREST = "deposit_interest", "Interest on security deposit"
    ADVANCE_INTEREST = "advance_interest", "Interest on advance payment"
    COMPENSATION = "compensation", "Compensation (standards of performance)"
    WRITE_OFF = "write_off", "Write-off"
    REVERSAL = "reversal", "Reversal"
    REFUND = "refund", "Refund"
    CHARGE = "charge", "Other charge (fees, cheque bounce)"
    INSTALMENT = "instalment", "Appliance instalment"
    ESTIMATE_WITHDRAWAL = "estimate_withdrawal", "Withdrawal of over-estimated units"


class LedgerEntry(models.Model):
    """One movement on an account. Positive = the consumer owes more (debit); negative = credit.

    Append-only: corrections are new entries (a reversal points at what it reverses). The
    balance of an account is the sum of its entries; nothing stores it.
    """

    # Indexes are few on purpose: bill runs and payment files append millions of rows, and
    # every index is paid per row. (account, posted_at) serves the account's statement/balance.
    account = models.ForeignKey("customers.Account", on_delete=models.PROTECT, related_name="ledger", db_index=False)
    entry_type = models.CharField(max_length=20, choices=EntryType.choices)
    amount = models.DecimalField(max_digits=14, decimal_places=2)
    posted_at = models.DateTimeField()
    # the day the amount falls due (bills) — arrears ageing counts from here
    due_date = models.DateField(null=True, blank=True)
    description = models.CharField(max_length=200)
    reference_type = models.CharField(max_length=40, blank=True)
    reference_id = models.CharField(max_length=64, blank=True)
    # A retried post with the same key returns the first entry: no double posting.
    # Both uniques are partial (non-NULL only), so the many rows without one cost no index entry.
    idempotency_key = models.CharField(max_length=120, null=True, blank=True)
    reverses = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="reversals", db_index=False
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, db_index=False
    )
    channel = models.CharField(max_length=20, default="system")

    class Meta:
        indexes = [
            models.Index(fields=["account", "posted_at"]),
            models.Index(fields=["reference_type", "reference_id"]),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["idempotency_key"],
                condition=models.Q(idempotency_key__isnull=False),
                name="ledger_idempotency_key_unique",
            ),
            # at most one reversal per entry
            models.UniqueConstraint(
                fields=["reverses"], condition=models.Q(reverses__isnull=False), name="ledger_one_reversal"
            ),
        ]
        ordering = ["posted_at", "id"]

    def __str__(self) -> str:
        return f"{self.account_id} {self.entry_type} {self.amount}"

    def save(self, *args, **kwargs):
        if self.pk:
            raise ValueError("ledger entries are append-only; post a correcting entry instead")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ValueError("ledger entries are append-only")


# ---------------------------------------------------------------------------------------
# Bill cycles, bill runs and bills

from urja.core.states import StateMachine  # noqa: E402


class BillCycle(models.Model):
    """A group of accounts read and billed together (Account.bill_cycle holds the code)."""

    class Frequency(models.TextChoices):
        MONTHLY = "monthly", "Monthly"
        BIMONTHLY = "bimonthly", "Bimonthly"

    code = models.CharField(max_length=12, unique=True)
    name = models.CharField(max_length=80)
    frequency = models.CharField(max_length=10, choices=Frequency.choices, default=Frequency.MONTHLY)
    routes = models.JSONField(default=list, blank=True, help_text="route / book codes (empty: every route)")
    active = models.BooleanField(default=True)

    def __str__(self) -> str:
        return f"{self.code} {self.name}"


class RunStatus(models.TextChoices):
    PLANNED = "planned", "Planned"
    RUNNING = "running", "Running"
    COMPLETED = "completed", "Completed"
    COMPLETED_WITH_EXCEPTIONS = "completed_exc", "Completed with exceptions"
    DRY_RUN = "dry_run", "Dry run (nothing written)"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


RUN_STATUS = StateMachine(
    "bill run",
    {
        RunStatus.PLANNED: {RunStatus.RUNNING, RunStatus.CANCELLED, RunStatus.DRY_RUN},
        RunStatus.RUNNING: {RunStatus.COMPLETED, RunStatus.COMPLETED_WITH_EXCEPTIONS, RunStatus.FAILED},
        RunStatus.FAILED: {RunStatus.RUNNING, RunStatus.CANCELLED},
        RunStatus.COMPLETED_WITH_EXCEPTIONS: {RunStatus.RUNNING, RunStatus.COMPLETED_WITH_EXCEPTIONS},
        RunStatus.COMPLETED: set(),
        RunStatus.DRY_RUN: {RunStatus.DRY_RUN},  # the report computed again (after fixes); nothing is written
        RunStatus.CANCELLED: set(),
    },
)


class BillRun(models.Model):
    cycle = models.ForeignKey(BillCycle, on_delete=models.PROTECT, related_name="runs")
    period = models.CharField(max_length=7, help_text="YYYY-MM (the last month of the period)")
    period_start = models.DateField()
    period_end = models.DateField()
    bill_date = models.DateField()
    due_date = models.DateField()
    dry_run = models.BooleanField(default=False)
    status = models.CharField(max_length=16, choices=RunStatus.choices, default=RunStatus.PLANNED)
    accounts_due = models.PositiveIntegerField(default=0)
    bills = models.PositiveIntegerField(default=0)
    statements = models.PositiveIntegerField(default=0)
    exceptions = models.PositiveIntegerField(default=0)
    totals = models.JSONField(default=dict, blank=True)
    report = models.JSONField(default=dict, blank=True, help_text="dry-run totals and exceptions")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["cycle", "period"], condition=models.Q(dry_run=False), name="one_real_run_per_cycle_period"
            )
        ]

    def __str__(self) -> str:
        return f"{self.cycle.code} {self.period}{' (dry run)' if self.dry_run else ''}"


class PartitionStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


P = PartitionStatus
# pending/failed → running: a worker claims it (runs.claim_partition, a conditional UPDATE);
# running → running: another worker takes over an expired (or, forced, a live) claim;
# running → done | failed; done → pending: rebill_exceptions scans the partition again.
PARTITION_STATUS = StateMachine(
    "bill run partition",
    {
        P.PENDING: {P.RUNNING},
        P.RUNNING: {P.RUNNING, P.DONE, P.FAILED},
        P.FAILED: {P.RUNNING},
        P.DONE: {P.PENDING},
    },
)


class BillRunPartition(models.Model):
    """Cycle × division: the unit of work a Celery worker claims. `cursor` = last account id done."""

    run = models.ForeignKey(BillRun, on_delete=models.CASCADE, related_name="partitions")
    division = models.ForeignKey("network.Office", on_delete=models.PROTECT)
    division_path = models.CharField(max_length=255)
    status = models.CharField(max_length=10, choices=PartitionStatus.choices, default=PartitionStatus.PENDING)
    accounts_due = models.PositiveIntegerField(default=0)
    done = models.PositiveIntegerField(default=0)
    bills = models.PositiveIntegerField(default=0)
    # counted here, not on the run: one row updated by every partition's chunks would make the
    # workers of a run wait on each other's commits
    statements = models.PositiveIntegerField(default=0)
    exceptions = models.PositiveIntegerField(default=0)
    cursor = models.BigIntegerField(default=0)
    totals = models.JSONField(default=dict, blank=True)
    claimed_by = models.CharField(max_length=120, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "division"], name="one_partition_per_division")]

    def __str__(self) -> str:
        return f"{self.run} / {self.division_id}"


class Bill(models.Model):
    """An issued bill (or a prepaid statement, or a final bill). Never edited: corrections are notes.

    The inputs (units, load, flags, tariff versions) are stored, so the line-by-line computation can
    be reproduced exactly (`billing.services.bill_lines`); the group totals are stored as issued.
    """

    class Kind(models.TextChoices):
        BILL = "bill", "Bill"
        STATEMENT = "statement", "Prepaid statement"
        FINAL = "final", "Final bill"

    account = models.ForeignKey("customers.Account", on_delete=models.PROTECT, related_name="bills", db_index=False)
    run = models.ForeignKey(BillRun, null=True, blank=True, on_delete=models.PROTECT, db_index=False)
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.BILL)
    bill_number = models.CharField(max_length=32)  # unique by a constraint (see Meta)
    period_start = models.DateField()
    period_end = models.DateField()
    bill_date = models.DateField()
    due_date = models.DateField(null=True, blank=True)
    tariff_versions = models.CharField(max_length=120, help_text="ids of the tariff versions, comma-separated")
    units = models.DecimalField(max_digits=14, decimal_places=3, default=0)
    units_status = models.CharField(max_length=12, default="actual", help_text="actual/estimated/provisional/unmetered")
    # Over-estimated units of earlier estimated bills withdrawn by this bill's actual reading (≥ 0):
    # the estimated bills' units less these equal the register advance (see docs/billing.md).
    units_withdrawn = models.DecimalField(max_digits=14, decimal_places=3, default=0)
    opening_kwh = models.DecimalField(max_digits=14, decimal_places=3, null=True, blank=True)
    closing_kwh = models.DecimalField(max_digits=14, decimal_places=3, null=True, blank=True)
    recorded_md = models.DecimalField(max_digits=10, decimal_places=3, null=True, blank=True)
    tod_units = models.JSONField(null=True, blank=True)
    sanctioned_load = models.DecimalField(max_digits=10, decimal_places=3)
    load_unit = models.CharField(max_length=3, default="kW")
    area = models.CharField(max_length=5, default="urban")
    metered = models.BooleanField(default=True)
    meter_type = models.CharField(max_length=12, default="static")
    consumer_meter = models.BooleanField(default=False)
    e_bill = models.BooleanField(default=False)
    prepaid = models.BooleanField(default=False)
    overdue_principal = models.DecimalField(max_digits=14, decimal_places=2, default=0)
    overdue_days = models.IntegerField(default=0)
    # group totals as issued (Rs)
    energy = models.DecimalField(max_digits=14, decimal_places=2, default=0)
    tod = models.DecimalField(max_digits=14, decimal_places=2, default=0)
    fixed = models.DecimalField(max_digits=14, decimal_places=2, default=0)
    monthly = models.DecimalField(max_digits=14, decimal_places=2, default=0)
    minimum = models.DecimalField(max_digits=14, decimal_places=2, default=0)
    riders = models.DecimalField(max_digits=14, decimal_places=2, default=0)
    subsidy = models.DecimalField(max_digits=14, decimal_places=2, default=0)
    rebate = models.DecimalField(max_digits=14, decimal_places=2, default=0)
    dps = models.DecimalField(max_digits=14, decimal_places=2, default=0)
    extra = models.DecimalField(max_digits=14, decimal_places=2, default=0)
    rounding = models.DecimalField(max_digits=14, decimal_places=2, default=0)
    total = models.DecimalField(max_digits=14, decimal_places=2, help_text="this bill's amount")
    rebate_by_due_date = models.DecimalField(max_digits=14, decimal_places=2, default=0)
    rebate_digital = models.DecimalField(max_digits=14, decimal_places=2, default=0)
    arrears = models.DecimalField(max_digits=14, decimal_places=2, default=0, help_text="balance before this bill")
    net_payable = models.DecimalField(max_digits=14, decimal_places=2)
    language = models.CharField(max_length=2, default="en")
    created_at = models.DateTimeField()

    class Meta:
        # Few indexes (the key and these two), as a bill run writes millions of rows and pays every
        # index per row. The account's bills (history, arrears, final bill) are found through the
        # leading account of the first; the number is unique by a constraint rather than unique=True
        # on the field, which on PostgreSQL also builds a LIKE index that no query uses.
        constraints = [
            models.UniqueConstraint(fields=["account", "period_start", "kind"], name="one_bill_per_account_period"),
            models.UniqueConstraint(fields=["bill_number"], name="bill_number_unique"),
        ]
        ordering = ["-bill_date", "-id"]

    def __str__(self) -> str:
        return self.bill_number

    @property
    def current_charges(self):
        return self.energy + self.tod + self.fixed + self.monthly + self.minimum + self.riders


class BillException(models.Model):
    class Kind(models.TextChoices):
        NO_READING = "no_reading", "No reading"
        VEE_FAILED = "vee_failed", "Reading failed validation / waits for review"
        NEGATIVE_BILL = "negative_bill", "Negative bill"
        MISSING_TARIFF = "missing_tariff", "Missing tariff"
        METER_ERROR = "meter_error", "Meter / register error"
        IMPLAUSIBLE_DEMAND = "implausible_demand", "Billed demand implausible for the contract demand"

    run = models.ForeignKey(BillRun, on_delete=models.CASCADE, related_name="exception_rows")
    account = models.ForeignKey("customers.Account", on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(max_length=24, choices=Kind.choices)
    message = models.CharField(max_length=240)
    details = models.JSONField(default=dict, blank=True)
    resolved = models.BooleanField(default=False)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    resolved_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "account"], name="one_exception_per_run_account")]
        ordering = ["kind", "id"]

    def __str__(self) -> str:
        return f"{self.kind} {self.account_id}"


class InstalmentPlan(models.Model):
    """Appliance bought on instalments, recovered with the electricity bill (seed 001)."""

    account = models.ForeignKey("customers.Account", on_delete=models.PROTECT, related_name="instalment_plans")
    description = models.CharField(max_length=120)
    amount_per_bill = models.DecimalField(max_digits=12, decimal_places=2)
    instalments = models.PositiveIntegerField()
    billed = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.description} ({self.billed}/{self.instalments})"

    @property
    def active(self) -> bool:
        return self.billed < self.instalments


class SecurityDeposit(models.Model):
    """Security deposit of an account (OERC Supply Code regs 52-55; seed 001). Movements are ledger
    entries of type deposit / deposit_refund / deposit_interest; this row holds what is required."""

    account = models.OneToOneField("customers.Account", on_delete=models.PROTECT, related_name="security_deposit")
    required = models.DecimalField(max_digits=12, decimal_places=2, default=0)
    held = models.DecimalField(max_digits=12, decimal_places=2, default=0)
    additional_demanded = models.DecimalField(max_digits=12, decimal_places=2, default=0)
    additional_due_on = models.DateField(null=True, blank=True)
    last_reviewed_on = models.DateField(null=True, blank=True)
    interest_credited_for = models.CharField(max_length=7, blank=True, help_text="last FY credited, e.g. 2024-25")
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"deposit of {self.account_id}: held {self.held}, required {self.required}"


class NoteStatus(models.TextChoices):
    PROPOSED = "proposed", "Proposed (maker)"
    APPROVED = "approved", "Approved and posted (checker)"
    REJECTED = "rejected", "Rejected"


NOTE_STATUS = StateMachine(
    "bill revision",
    {
        NoteStatus.PROPOSED: {NoteStatus.APPROVED, NoteStatus.REJECTED},
        NoteStatus.APPROVED: set(),
        NoteStatus.REJECTED: set(),
    },
)


class BillRevision(models.Model):
    """A credit or debit note against a bill, proposed by a maker and approved by a different checker."""

    bill = models.ForeignKey(Bill, on_delete=models.PROTECT, related_name="revisions")
    kind = models.CharField(max_length=11, choices=[("credit_note", "Credit note"), ("debit_note", "Debit note")])
    amount = models.DecimalField(
        max_digits=12, decimal_places=2, help_text="positive; the note's sign follows its kind"
    )
    reason = models.TextField()
    status = models.CharField(max_length=10, choices=NoteStatus.choices, default=NoteStatus.PROPOSED)
    note_number = models.CharField(max_length=32, blank=True)
    proposed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    decision_note = models.CharField(max_length=240, blank=True)
    ledger_entry = models.OneToOneField(LedgerEntry, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    decided_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.kind} {self.amount} on {self.bill_id} ({self.status})"
