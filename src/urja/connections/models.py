"""Applications for a new connection and requests that change or end one (issue 12).

Every status field has its machine here, as data; services move it with core.states.transition.
"""

from django.conf import settings
from django.db import models

from urja.core.states import StateMachine


class ApplicationStatus(models.TextChoices):
    REGISTERED = "registered", "Registered"
    INSPECTED = "inspected", "Site inspected"
    DN_ISSUED = "dn_issued", "Demand note issued"
    DN_PAID = "dn_paid", "Demand note paid"
    ENERGIZED = "energized", "Energized"
    REJECTED = "rejected", "Rejected"
    WITHDRAWN = "withdrawn", "Withdrawn"


APPLICATION_STATUS = StateMachine(
    "connection application",
    {
        ApplicationStatus.REGISTERED: {
            ApplicationStatus.INSPECTED,
            ApplicationStatus.REJECTED,
            ApplicationStatus.WITHDRAWN,
        },
        ApplicationStatus.INSPECTED: {
            ApplicationStatus.DN_ISSUED,
            ApplicationStatus.REJECTED,
            ApplicationStatus.WITHDRAWN,
        },
        ApplicationStatus.DN_ISSUED: {
            ApplicationStatus.DN_PAID,
            ApplicationStatus.REJECTED,
            ApplicationStatus.WITHDRAWN,
        },
        ApplicationStatus.DN_PAID: {ApplicationStatus.ENERGIZED, ApplicationStatus.REJECTED},
        ApplicationStatus.ENERGIZED: set(),
        ApplicationStatus.REJECTED: set(),
        ApplicationStatus.WITHDRAWN: set(),
    },
)
OPEN_APPLICATION = (
    ApplicationStatus.REGISTERED,
    ApplicationStatus.INSPECTED,
    ApplicationStatus.DN_ISSUED,
    ApplicationStatus.DN_PAID,
)


class AreaClass(models.TextChoices):
    """Rights of Consumers Rules 2020 r. 4: the cap depends on the kind of area."""

    METRO = "metro", "Metropolitan"
    MUNICIPAL = "municipal", "Other municipal"
    RURAL = "rural", "Rural"
    HILLY_RURAL = "hilly_rural", "Hilly rural"


class MeterOption(models.TextChoices):
    UTILITY = "utility", "Utility meter (meter rent)"
    PURCHASE = "purchase", "Bought from the utility (meter cost on the demand note)"
    OWN = "own", "Consumer's own certified meter"


class Application(models.Model):
    class Kind(models.TextChoices):
        NEW = "new", "New connection"
        TEMPORARY = "temporary", "Temporary connection"

    number = models.CharField(max_length=20, unique=True)
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.NEW)
    status = models.CharField(max_length=12, choices=ApplicationStatus.choices, default=ApplicationStatus.REGISTERED)
    channel = models.CharField(max_length=20)
    # the applicant: a customers.Consumer (documents are its KYC documents)
    consumer = models.ForeignKey("customers.Consumer", on_delete=models.PROTECT, related_name="applications")
    mobile = models.CharField(max_length=16, db_index=True, help_text="E.164; with the number, the tracking key")
    # premises and supply
    premises_address = models.TextField()
    pincode = models.CharField(max_length=6, blank=True)
    latitude = models.DecimalField(max_digits=9, decimal_places=6)
    longitude = models.DecimalField(max_digits=9, decimal_places=6)
    area_class = models.CharField(max_length=12, choices=AreaClass.choices)
    area = models.CharField(max_length=5)  # urban / rural, from the area class
    section = models.ForeignKey("network.Office", on_delete=models.PROTECT, related_name="applications")
    office_path = models.CharField(max_length=255, db_index=True, editable=False)
    supply_type = models.CharField(max_length=12)
    load = models.DecimalField(max_digits=10, decimal_places=3)
    load_unit = models.CharField(max_length=3, default="kW")
    category = models.CharField(max_length=24)
    sub_category = models.CharField(max_length=24, default="general")
    meter_option = models.CharField(max_length=10, choices=MeterOption.choices, default=MeterOption.UTILITY)
    temporary_until = models.DateField(null=True, blank=True)
    # fees and checks at registration
    application_fee = models.DecimalField(max_digits=12, decimal_places=2)
    fee_order = models.CharField(max_length=64, help_text="tariff order whose [fees] priced the application")
    fast_track = models.BooleanField(default=False)
    fast_track_note = models.CharField(max_length=200, blank=True)
    # the clock
    registered_at = models.DateTimeField()
    dn_due_at = models.DateTimeField(null=True, blank=True)
    connection_due_at = models.DateTimeField(null=True, blank=True)
    cap_due_at = models.DateTimeField(null=True, blank=True, help_text="Rights of Consumers Rules cap")
    dn_paid_at = models.DateTimeField(null=True, blank=True)
    energized_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    escalation_level = models.PositiveSmallIntegerField(default=0)
    # when the next escalation tier is reached (None: paused, waiting for the applicant's payment, or
    # closed): the sweep reads only the rows whose moment has come (an index, not a scan)
    next_escalation_at = models.DateTimeField(null=True, blank=True, db_index=True)
    rejection_code = models.CharField(max_length=40, blank=True)
    rejection_reason = models.CharField(max_length=500, blank=True)
    account = models.OneToOneField(
        "customers.Account", null=True, blank=True, on_delete=models.PROTECT, related_name="application"
    )
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)

    class Meta:
        indexes = [models.Index(fields=["status", "office_path"])]
        ordering = ["-registered_at"]

    def __str__(self) -> str:
        return self.number


class ApplicationDocument(models.Model):
    """A document the applicant gave against one line of the checklist (typed by the document matrix);
    the file itself is the consumer's KYC document."""

    application = models.ForeignKey(Application, on_delete=models.CASCADE, related_name="documents")
    document = models.ForeignKey("customers.KycDocument", on_delete=models.PROTECT, related_name="+")
    document_code = models.CharField(max_length=40)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["application", "document_code"], name="application_document_once")
        ]

    def __str__(self) -> str:
        return f"{self.document_code} of {self.application_id}"


class Pause(models.Model):
    """The clock stopped for a reason attributable to the applicant (recorded), seed 003 table note."""

    application = models.ForeignKey(Application, on_delete=models.CASCADE, related_name="pauses")
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    reason = models.CharField(max_length=300)
    started_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)

    def __str__(self) -> str:
        return f"pause of {self.application_id} from {self.started_at:%Y-%m-%d}"


class Inspection(models.Model):
    application = models.OneToOneField(Application, on_delete=models.CASCADE, related_name="inspection")
    engineer = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    inspected_at = models.DateTimeField()
    feasible = models.BooleanField()
    distance_m = models.PositiveIntegerField(help_text="to the nearest connecting point")
    right_of_way_issue = models.BooleanField(default=False)
    extension_needed = models.BooleanField(default=False)
    extension_estimate = models.DecimalField(max_digits=12, decimal_places=2, default=0)
    # the connecting point: the section's DT the service line is drawn from (energization places the
    # account on it unless the engineer then chooses another)
    transformer = models.ForeignKey(
        "network.DistributionTransformer", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    notes = models.TextField(blank=True)

    def __str__(self) -> str:
        return f"inspection of {self.application_id}"


class DemandNoteStatus(models.TextChoices):
    ISSUED = "issued", "Issued"
    PAID = "paid", "Paid"
    CANCELLED = "cancelled", "Cancelled"


DEMAND_NOTE_STATUS = StateMachine(
    "demand note",
    {
        DemandNoteStatus.ISSUED: {DemandNoteStatus.PAID, DemandNoteStatus.CANCELLED},
        DemandNoteStatus.PAID: set(),
        DemandNoteStatus.CANCELLED: set(),
    },
)


class DemandNote(models.Model):
    application = models.OneToOneField(Application, on_delete=models.CASCADE, related_name="demand_note")
    number = models.CharField(max_length=20, unique=True)
    status = models.CharField(max_length=10, choices=DemandNoteStatus.choices, default=DemandNoteStatus.ISSUED)
    issued_at = models.DateTimeField()
    lines = models.JSONField(default=list, help_text="[{code, label, amount}] in the order charged")
    total = models.DecimalField(max_digits=12, decimal_places=2)
    deposit = models.DecimalField(max_digits=12, decimal_places=2)
    estimated_monthly_bill = models.DecimalField(max_digits=12, decimal_places=2)
    paid_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return self.number


class TierReached(models.Model):
    """A tier of the service desk's escalation table reached by a late application or change
    request: the level, its title and the office told."""

    level = models.PositiveSmallIntegerField()
    title = models.CharField(max_length=120)
    office = models.ForeignKey("network.Office", on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField()

    class Meta:
        abstract = True


class Escalation(TierReached):
    """A tier of the service desk's escalation table reached by a late application (once per level)."""

    application = models.ForeignKey(Application, on_delete=models.CASCADE, related_name="escalations")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["application", "level"], name="application_escalation_once")]

    def __str__(self) -> str:
        return f"{self.application_id} level {self.level}"


class Compensation(models.Model):
    """Compensation for a late connection (service desk's engine and rule), credited to the new account."""

    application = models.OneToOneField(Application, on_delete=models.PROTECT, related_name="compensation")
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    units_late = models.PositiveIntegerField()
    basis = models.CharField(max_length=10)
    rule = models.JSONField(default=dict)
    ledger_entry_id = models.BigIntegerField(null=True)
    created_at = models.DateTimeField()

    # --- requests on an existing account ----------------------------------------------------------------

    def __str__(self) -> str:
        return f"Rs {self.amount} for {self.application_id}"


class ChangeKind(models.TextChoices):
    LOAD_CHANGE = "load_change", "Load enhancement / reduction"
    NAME_CHANGE = "name_change", "Name change / transfer of ownership"
    CATEGORY_CHANGE = "category_change", "Category change"
    TEMPORARY_DISCONNECTION = "temp_disconnection", "Temporary disconnection on request"
    PERMANENT_DISCONNECTION = "perm_disconnection", "Permanent disconnection / move-out"
    METER_SHIFTING = "meter_shifting", "Meter shifting within the premises"
    LT_LINE_SHIFTING = "lt_line_shifting", "Shifting of an LT line"
    LINE_11KV_SHIFTING = "11kv_line_shifting", "Shifting of an 11 kV line"
    LINE_33KV_SHIFTING = "33kv_line_shifting", "Shifting of a 33 kV line"
    DT_SHIFTING = "dt_shifting", "Shifting of a DT structure"


# The kinds of shifting on request (seed 003 "Shifting": meter 15 days, LT line 30, 11 kV 60, 33 kV 90,
# DT structure 90): one machine, one module (shifting.py), their rules in data/connections/connections.toml.
SHIFTING_KINDS = (
    ChangeKind.METER_SHIFTING,
    ChangeKind.LT_LINE_SHIFTING,
    ChangeKind.LINE_11KV_SHIFTING,
    ChangeKind.LINE_33KV_SHIFTING,
    ChangeKind.DT_SHIFTING,
)


class ChangeStatus(models.TextChoices):
    REQUESTED = "requested", "Requested"
    INSPECTED = "inspected", "Site inspected"
    APPROVED = "approved", "Approved (awaiting payment)"
    SCHEDULED = "scheduled", "Scheduled (applies from its effective date)"
    FIELD_WORK = "field_work", "Paid: field work due"
    APPLIED = "applied", "Applied"
    REJECTED = "rejected", "Rejected"


# Load, name and category changes and disconnections on request.
REQUEST_STATUS = StateMachine(
    "change request",
    {
        ChangeStatus.REQUESTED: {
            ChangeStatus.APPROVED,
            ChangeStatus.SCHEDULED,
            ChangeStatus.APPLIED,
            ChangeStatus.REJECTED,
        },
        ChangeStatus.APPROVED: {ChangeStatus.SCHEDULED, ChangeStatus.APPLIED, ChangeStatus.REJECTED},
        ChangeStatus.SCHEDULED: {ChangeStatus.APPLIED, ChangeStatus.REJECTED},
        ChangeStatus.APPLIED: set(),
        ChangeStatus.REJECTED: set(),
    },
)
# Shifting (a meter, a line, a DT structure): site inspection (feasibility, new location, estimate) →
# demand note (approved, awaiting payment; skipped when nothing is charged) → paid, field work due →
# done (applied); rejected with reasons until the consumer has paid.
SHIFTING_STATUS = StateMachine(
    "shifting request",
    {
        ChangeStatus.REQUESTED: {ChangeStatus.INSPECTED, ChangeStatus.REJECTED},
        ChangeStatus.INSPECTED: {ChangeStatus.APPROVED, ChangeStatus.FIELD_WORK, ChangeStatus.REJECTED},
        ChangeStatus.APPROVED: {ChangeStatus.FIELD_WORK, ChangeStatus.REJECTED},
        ChangeStatus.FIELD_WORK: {ChangeStatus.APPLIED},
        ChangeStatus.APPLIED: set(),
        ChangeStatus.REJECTED: set(),
    },
)
# The status field's whole machine (every move some kind may make); services move a request by the
# machine of its kind (`machine_for`).
CHANGE_STATUS = StateMachine(
    "change request (any kind)",
    {
        state: REQUEST_STATUS.allowed(state) | SHIFTING_STATUS.allowed(state)
        for state in REQUEST_STATUS.states | SHIFTING_STATUS.states
    },
)
OPEN_CHANGE = [s for s in ChangeStatus.values if s not in (ChangeStatus.APPLIED, ChangeStatus.REJECTED)]


def machine_for(kind: str) -> StateMachine:
    return SHIFTING_STATUS if kind in SHIFTING_KINDS else REQUEST_STATUS


class ChangeRequest(models.Model):
    number = models.CharField(max_length=20, unique=True)
    kind = models.CharField(max_length=20, choices=ChangeKind.choices)
    status = models.CharField(max_length=10, choices=ChangeStatus.choices, default=ChangeStatus.REQUESTED)
    account = models.ForeignKey("customers.Account", on_delete=models.PROTECT, related_name="change_requests")
    office_path = models.CharField(max_length=255, db_index=True, editable=False)
    channel = models.CharField(max_length=20)
    details = models.JSONField(default=dict, help_text="what is asked: new load, new name, new category …")
    requested_at = models.DateTimeField()
    effective_on = models.DateField(null=True, blank=True)
    charge = models.DecimalField(max_digits=12, decimal_places=2, default=0)
    decided_at = models.DateTimeField(null=True, blank=True)
    applied_at = models.DateTimeField(null=True, blank=True)
    due_at = models.DateTimeField(null=True, blank=True)
    reason = models.CharField(max_length=500, blank=True)
    outcome = models.JSONField(default=dict, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    # a request on the SoP clock (a shifting) climbs the service desk's escalation tiers as applications do
    escalation_level = models.PositiveSmallIntegerField(default=0)
    next_escalation_at = models.DateTimeField(null=True, blank=True, db_index=True)

    class Meta:
        ordering = ["-requested_at"]

    def __str__(self) -> str:
        return self.number


class ChangeEscalation(TierReached):
    """A tier of the service desk's escalation table reached by a late change request (once per level)."""

    change_request = models.ForeignKey(ChangeRequest, on_delete=models.CASCADE, related_name="escalations")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["change_request", "level"], name="change_request_escalation_once")
        ]

    def __str__(self) -> str:
        return f"{self.change_request_id} level {self.level}"


class ChangeInspection(models.Model):
    """The engineer's site visit for a request that needs one (a shifting): feasible or not, where the
    meter, line or structure goes, and the estimate charged on the demand note. A line or DT structure
    shifting also names the network element (the feeder of an 11 / 33 kV line, the DT of an LT line or
    of the structure) with the route length and the structures to move."""

    change_request = models.OneToOneField(ChangeRequest, on_delete=models.CASCADE, related_name="inspection")
    engineer = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    inspected_at = models.DateTimeField()
    feasible = models.BooleanField()
    new_location = models.CharField(max_length=200, blank=True, help_text="where on the premises")
    latitude = models.DecimalField(max_digits=9, decimal_places=6, null=True, blank=True)
    longitude = models.DecimalField(max_digits=9, decimal_places=6, null=True, blank=True)
    estimate = models.DecimalField(max_digits=12, decimal_places=2, default=0, help_text="material and labour, Rs")
    route_length_m = models.PositiveIntegerField(null=True, blank=True, help_text="line shifting: new route, metres")
    structures = models.PositiveSmallIntegerField(null=True, blank=True, help_text="poles / structures to move")
    feeder = models.ForeignKey(
        "network.Feeder", null=True, blank=True, on_delete=models.PROTECT, related_name="+", help_text="11 / 33 kV line"
    )
    transformer = models.ForeignKey(
        "network.DistributionTransformer", null=True, blank=True, on_delete=models.PROTECT, related_name="+",
        help_text="LT line's DT, or the DT structure moved",
    )  # fmt: skip
    notes = models.TextField(blank=True)

    def __str__(self) -> str:
        return f"inspection of {self.change_request_id}"


class OrderKind(models.TextChoices):
    DISCONNECT = "disconnect", "Disconnection"
    RECONNECT = "reconnect", "Reconnection"


class OrderStatus(models.TextChoices):
    OPEN = "open", "Open (field)"
    SENT = "sent", "Sent to the smart meter"
    DONE = "done", "Done"
    CANCELLED = "cancelled", "Cancelled"


ORDER_STATUS = StateMachine(
    "disconnection / reconnection order",
    {
        OrderStatus.OPEN: {OrderStatus.DONE, OrderStatus.CANCELLED, OrderStatus.SENT},
        OrderStatus.SENT: {OrderStatus.DONE, OrderStatus.OPEN, OrderStatus.CANCELLED},
        OrderStatus.DONE: set(),
        OrderStatus.CANCELLED: set(),
    },
)


class Order(models.Model):
    """A disconnection or reconnection to carry out: remotely (smart meter) or in the field (photo proof)."""

    number = models.CharField(max_length=20, unique=True)
    kind = models.CharField(max_length=10, choices=OrderKind.choices)
    status = models.CharField(max_length=10, choices=OrderStatus.choices, default=OrderStatus.OPEN)
    account = models.ForeignKey("customers.Account", on_delete=models.PROTECT, related_name="connection_orders")
    office_path = models.CharField(max_length=255, db_index=True, editable=False)
    reason = models.CharField(max_length=40, help_text="non_payment / consumer_request / permanent / paid")
    account_status = models.CharField(max_length=20, help_text="the account status the order leads to")
    created_at = models.DateTimeField()
    due_at = models.DateTimeField(null=True, blank=True)
    done_at = models.DateTimeField(null=True, blank=True)
    command_id = models.CharField(max_length=64, blank=True)
    photo = models.FileField(upload_to="connections/orders/%Y/%m/", blank=True)
    notes = models.CharField(max_length=500, blank=True)
    change_request = models.ForeignKey(
        ChangeRequest, null=True, blank=True, on_delete=models.PROTECT, related_name="orders"
    )
    compensation = models.DecimalField(max_digits=12, decimal_places=2, default=0)
    done_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["account", "kind"],
                condition=models.Q(status__in=["open", "sent"]),
                name="one_open_order_per_kind",
            )
        ]

    def __str__(self) -> str:
        return self.number
