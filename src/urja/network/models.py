"""The utility's organisation and network: offices (circle → division → sub-division →
section), customer care centres, feeders, distribution transformers, mini-grid sites."""

from datetime import time

from django.db import models


class OfficeLevel(models.TextChoices):
    UTILITY = "utility", "Utility (head office)"
    CIRCLE = "circle", "Circle"
    DIVISION = "division", "Division"
    SUBDIVISION = "subdivision", "Sub-division"
    SECTION = "section", "Section"


LEVEL_ORDER = [
    OfficeLevel.UTILITY,
    OfficeLevel.CIRCLE,
    OfficeLevel.DIVISION,
    OfficeLevel.SUBDIVISION,
    OfficeLevel.SECTION,
]


class Office(models.Model):
    code = models.CharField(max_length=16, unique=True)
    name = models.CharField(max_length=120)
    level = models.CharField(max_length=12, choices=OfficeLevel.choices)
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="children")
    # Materialised path "/<id>/<id>/…/" for fast subtree scoping (staff see their subtree).
    path = models.CharField(max_length=255, db_index=True, editable=False, default="")
    state = models.CharField(max_length=6, default="OD", help_text="ISO 3166-2:IN subdivision for holidays")
    address = models.TextField(blank=True)
    phone = models.CharField(max_length=32, blank=True)
    opens = models.TimeField(default=time(9, 30))
    closes = models.TimeField(default=time(17, 30))
    workdays = models.CharField(max_length=7, default="0123456"[:6], help_text="weekday digits, Mon=0")

    class Meta:
        ordering = ["path"]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_level_display()})"

    def ancestors(self) -> list["Office"]:
        ids = [int(p) for p in self.path.strip("/").split("/") if p]
        by_id = Office.objects.in_bulk(ids)
        return [by_id[i] for i in ids if i in by_id]

    def ancestor_at(self, level: str) -> "Office | None":
        return next((o for o in self.ancestors() if o.level == level), None)

    def calendar(self):
        """The office's working calendar: its state's holidays and Saturday rule, and the holidays the
        state's file declares for this office or an office above it (data/holidays/<state>.toml)."""
        from django.conf import settings

        from urja.core.calendars import calendar_for, state_rules

        offices: tuple[str, ...] = ()
        if state_rules(self.state, str(settings.DATA_DIR)).office_holidays:
            offices = (self.code, *(o.code for o in self.ancestors()))
        return calendar_for(
            state=self.state,
            opens=self.opens,
            closes=self.closes,
            workdays=frozenset(int(d) for d in self.workdays),
            offices=offices,
        )


class CareCentre(models.Model):
    """Customer care centre (seed 003, Annexure A), with its officer in charge and hours."""

    office = models.ForeignKey(Office, on_delete=models.PROTECT, related_name="care_centres")
    name = models.CharField(max_length=120)
    address = models.TextField()
    officer_in_charge = models.CharField(max_length=120)
    phone = models.CharField(max_length=32, blank=True)
    hours = models.CharField(max_length=120, default="Monday to Saturday, 9:30 AM to 5:30 PM (except public holidays)")
    is_anubhav_kendra = models.BooleanField(default=False)

    def __str__(self) -> str:
        return self.name


class Feeder(models.Model):
    code = models.CharField(max_length=24, unique=True)
    name = models.CharField(max_length=120)
    office = models.ForeignKey(Office, on_delete=models.PROTECT, related_name="feeders")
    voltage_kv = models.DecimalField(max_digits=6, decimal_places=2, default=11)

    def __str__(self) -> str:
        return f"{self.code} {self.name}"


class DistributionTransformer(models.Model):
    code = models.CharField(max_length=24, unique=True)
    feeder = models.ForeignKey(Feeder, on_delete=models.PROTECT, related_name="transformers")
    capacity_kva = models.DecimalField(max_digits=8, decimal_places=1)
    latitude = models.DecimalField(max_digits=9, decimal_places=6, null=True, blank=True)
    longitude = models.DecimalField(max_digits=9, decimal_places=6, null=True, blank=True)

    def __str__(self) -> str:
        return self.code


class MiniGridSite(models.Model):
    """A mini-grid plant (seed 001): its own packages, agents and prepaid customers."""

    code = models.CharField(max_length=8, unique=True, help_text="used in customer and package IDs")
    name = models.CharField(max_length=120)
    office = models.ForeignKey(Office, on_delete=models.PROTECT, related_name="minigrid_sites")
    village = models.CharField(max_length=120)
    district = models.CharField(max_length=80)
    capacity_kw = models.DecimalField(max_digits=8, decimal_places=2)
    storage_kwh = models.DecimalField(max_digits=8, decimal_places=2, default=0)
    operator = models.CharField(max_length=120)
    # the site's distribution point on the network (its own feeder and DT): the site's accounts hang on it,
    # so energy accounting and outages see them (network.services.site_transformer creates it)
    transformer = models.OneToOneField(
        DistributionTransformer, null=True, blank=True, on_delete=models.PROTECT, related_name="minigrid_site"
    )

    def __str__(self) -> str:
        return f"{self.code} {self.name}"
