"""Tariff orders and their versions (schedules), loaded from data/tariffs/*.toml.

The file text is stored with its hash: a version is immutable once loaded, so a bill can always
be recomputed line by line from its inputs and the version it was billed on.
"""

from django.conf import settings
from django.db import models


class TariffOrder(models.Model):
    code = models.CharField(max_length=64, unique=True)
    kind = models.CharField(max_length=10, default="order")  # order | packages
    regulator = models.CharField(max_length=40)
    reference = models.CharField(max_length=255)
    order_date = models.DateField(null=True, blank=True)
    effective_from = models.DateField()
    effective_to = models.DateField(null=True, blank=True)
    source = models.JSONField(default=dict)
    fees = models.JSONField(default=dict)
    file_name = models.CharField(max_length=255)
    text = models.TextField()
    sha256 = models.CharField(max_length=64)
    loaded_at = models.DateTimeField(auto_now_add=True)
    loaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)

    class Meta:
        ordering = ["regulator", "-effective_from"]

    def __str__(self) -> str:
        return f"{self.reference} ({self.effective_from} – {self.effective_to or 'open'})"


class TariffVersion(models.Model):
    """One schedule (category / sub-category / package) of one order, with its effective dates."""

    order = models.ForeignKey(TariffOrder, on_delete=models.PROTECT, related_name="versions")
    schedule_code = models.CharField(max_length=64, db_index=True)
    name = models.CharField(max_length=160)
    category = models.CharField(max_length=24, db_index=True)
    sub_categories = models.JSONField(default=list)
    areas = models.JSONField(default=list)
    supply_types = models.JSONField(default=list, help_text="empty: every supply type")
    effective_from = models.DateField()
    effective_to = models.DateField(null=True, blank=True)
    package_id = models.CharField(max_length=40, blank=True, help_text="mini-grid package ID (seed 001)")
    unconfirmed = models.JSONField(default=list, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["order", "schedule_code"], name="tariff_version_unique")]
        ordering = ["category", "schedule_code", "effective_from"]

    def __str__(self) -> str:
        return f"{self.schedule_code} {self.effective_from} – {self.effective_to or 'open'}"

    def schedule(self):
        from .services import schedule_of

        return schedule_of(self)
