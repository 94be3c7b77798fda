"""Mini-grid site records (seed 001): the site's customers with their per-site ID and package in
force, package changes with the commands that reprogram the meter, the water unit's log and
appliance sales paid in instalments."""

from django.conf import settings
from django.db import models

from urja.core.states import StateMachine


class SiteCustomer(models.Model):
    """A mini-grid customer: the account with its per-site customer ID. The package in force is the
    account's (`Account.package_code`, written by customers.services.change_package), never a copy."""

    account = models.OneToOneField("customers.Account", on_delete=models.PROTECT, related_name="minigrid")
    site = models.ForeignKey("network.MiniGridSite", on_delete=models.PROTECT, related_name="customers")
    customer_id = models.CharField(max_length=24, unique=True)
    estimated_monthly_bill = models.DecimalField(max_digits=10, decimal_places=2, default=0)
    flagged_at = models.DateTimeField(null=True, blank=True, help_text="credit past the site's limit")
    flag_reason = models.CharField(max_length=200, blank=True)
    deactivation_command = models.ForeignKey(
        "metering.MeterCommand", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["customer_id"]

    def __str__(self) -> str:
        return self.customer_id

    @property
    def package_code(self) -> str:
        return self.account.package_code


class ChangeStatus(models.TextChoices):
    REQUESTED = "requested", "Requested"
    APPROVED = "approved", "Approved (awaiting payment)"
    SCHEDULED = "scheduled", "Paid (from the next period)"
    PROGRAMMING = "programming", "Reprogramming the meter"
    IN_FORCE = "in_force", "In force"
    REJECTED = "rejected", "Rejected"


CHANGE_STATUS = StateMachine(
    "package change",
    {
        ChangeStatus.REQUESTED: {ChangeStatus.APPROVED, ChangeStatus.REJECTED},
        ChangeStatus.APPROVED: {ChangeStatus.SCHEDULED, ChangeStatus.PROGRAMMING, ChangeStatus.REJECTED},
        ChangeStatus.SCHEDULED: {ChangeStatus.PROGRAMMING},
        ChangeStatus.PROGRAMMING: {ChangeStatus.IN_FORCE},
        ChangeStatus.IN_FORCE: set(),
        ChangeStatus.REJECTED: set(),
    },
)


class PackageChange(models.Model):
    class When(models.TextChoices):
        NOW = "now", "Now"
        NEXT_PERIOD = "next_period", "From the next period"

    number = models.CharField(max_length=24, unique=True)
    customer = models.ForeignKey(SiteCustomer, on_delete=models.PROTECT, related_name="package_changes")
    from_package = models.CharField(max_length=24)
    to_package = models.CharField(max_length=24)
    when = models.CharField(max_length=12, choices=When.choices, default=When.NOW)
    channel = models.CharField(max_length=20)
    status = models.CharField(max_length=12, choices=ChangeStatus.choices, default=ChangeStatus.REQUESTED)
    office_path = models.CharField(max_length=255, db_index=True, editable=False)
    charge = models.DecimalField(max_digits=10, decimal_places=2, default=0)
    effective_on = models.DateField(null=True, blank=True)
    reason = models.CharField(max_length=500, blank=True)
    rounds = models.PositiveSmallIntegerField(default=0, help_text="fresh command rounds sent")
    load_command = models.ForeignKey(
        "metering.MeterCommand", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    hours_command = models.ForeignKey(
        "metering.MeterCommand", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    requested_at = models.DateTimeField(auto_now_add=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    in_force_at = models.DateTimeField(null=True, blank=True)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)

    class Meta:
        ordering = ["-requested_at", "-id"]

    def __str__(self) -> str:
        return self.number


class WaterDay(models.Model):
    """The water purification unit's day (seed 001, 2.2.10): litres produced and sold, its own
    electricity use and revenue."""

    site = models.ForeignKey("network.MiniGridSite", on_delete=models.PROTECT, related_name="water_days")
    day = models.DateField()
    litres_produced = models.PositiveIntegerField()
    litres_sold = models.PositiveIntegerField()
    kwh_used = models.DecimalField(max_digits=10, decimal_places=3)
    revenue = models.DecimalField(max_digits=10, decimal_places=2)
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)

    class Meta:
        ordering = ["-day"]
        constraints = [models.UniqueConstraint(fields=["site", "day"], name="minigrid_water_day_once")]

    def __str__(self) -> str:
        return f"{self.site_id} {self.day}"


class PlanStatus(models.TextChoices):
    ACTIVE = "active", "Paying"
    COMPLETED = "completed", "Paid off"
    DEFAULTED = "defaulted", "Defaulted"


PLAN_STATUS = StateMachine(
    "instalment plan",
    {
        PlanStatus.ACTIVE: {PlanStatus.COMPLETED, PlanStatus.DEFAULTED},
        PlanStatus.DEFAULTED: {PlanStatus.ACTIVE, PlanStatus.COMPLETED},
        PlanStatus.COMPLETED: set(),
    },
)


class InstalmentPlan(models.Model):
    """An appliance sold on instalments paid with the electricity payments (seed 001, 2.2.10)."""

    customer = models.ForeignKey(SiteCustomer, on_delete=models.PROTECT, related_name="plans")
    appliance = models.CharField(max_length=80)
    price = models.DecimalField(max_digits=10, decimal_places=2)
    down_payment = models.DecimalField(max_digits=10, decimal_places=2, default=0)
    instalments = models.PositiveSmallIntegerField()
    first_due = models.DateField()
    status = models.CharField(max_length=10, choices=PlanStatus.choices, default=PlanStatus.ACTIVE)
    missed = models.PositiveSmallIntegerField(default=0)
    sold_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    sold_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-sold_at", "-id"]

    def __str__(self) -> str:
        return f"{self.appliance} ({self.customer_id})"


class InstalmentStatus(models.TextChoices):
    DUE = "due", "Due"
    CHARGED = "charged", "Charged with the bill"
    PAID = "paid", "Paid from the prepaid balance"
    MISSED = "missed", "Missed"


# A charged (post-paid) instalment still unpaid when the next falls due becomes missed.
INSTALMENT_STATUS = StateMachine(
    "instalment",
    {
        InstalmentStatus.DUE: {InstalmentStatus.CHARGED, InstalmentStatus.PAID, InstalmentStatus.MISSED},
        InstalmentStatus.CHARGED: {InstalmentStatus.MISSED},
        InstalmentStatus.PAID: set(),
        InstalmentStatus.MISSED: set(),
    },
)


class Instalment(models.Model):
    plan = models.ForeignKey(InstalmentPlan, on_delete=models.CASCADE, related_name="lines")
    seq = models.PositiveSmallIntegerField()
    due_on = models.DateField()
    amount = models.DecimalField(max_digits=10, decimal_places=2)
    status = models.CharField(max_length=8, choices=InstalmentStatus.choices, default=InstalmentStatus.DUE)
    ledger_entry = models.ForeignKey("billing.LedgerEntry", null=True, blank=True, on_delete=models.PROTECT)

    class Meta:
        ordering = ["plan", "seq"]
        constraints = [models.UniqueConstraint(fields=["plan", "seq"], name="minigrid_instalment_once")]

    def __str__(self) -> str:
        return f"{self.plan_id}/{self.seq}"
