"""Outreach (issue 15.8; seeds 000 and 003): RWA monthly and IWA quarterly meetings, annual customer
meets, Nishta camps and Anubhav Kendra sessions as events of an office, with attendance, the issues
raised (each with an owner, a due date and a status: the follow-up) and the service requests
registered on the spot. The kinds, their cadence and the channel of on-the-spot requests are data
(data/outreach/events.toml). States change only through outreach.services (core.states.transition)."""

from django.conf import settings
from django.db import models

from urja.core.states import StateMachine


class OutreachEvent(models.Model):
    class Status(models.TextChoices):
        PLANNED = "planned", "Planned"
        HELD = "held", "Held"
        CLOSED = "closed", "Closed"
        CANCELLED = "cancelled", "Cancelled"

    kind = models.CharField(max_length=24, help_text="a kind of data/outreach/events.toml")
    office = models.ForeignKey("network.Office", on_delete=models.PROTECT, related_name="outreach_events")
    office_path = models.CharField(max_length=255, db_index=True, help_text="the office's path (scope)")
    held_on = models.DateField()
    venue = models.CharField(max_length=200)
    partner = models.CharField(max_length=160, blank=True, help_text="the RWA / IWA / village or group met")
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.PLANNED)
    attendance = models.PositiveIntegerField(null=True, blank=True)
    notes = models.TextField(blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-held_on", "-id"]
        indexes = [models.Index(fields=["office_path", "held_on"], name="outreach_event_scope_day")]

    def __str__(self) -> str:
        return f"{self.kind} {self.held_on} {self.venue}"


EVENT_STATUS = StateMachine(
    "outreach event",
    {
        OutreachEvent.Status.PLANNED: {OutreachEvent.Status.HELD, OutreachEvent.Status.CANCELLED},
        OutreachEvent.Status.HELD: {OutreachEvent.Status.CLOSED},
        OutreachEvent.Status.CLOSED: set(),
        OutreachEvent.Status.CANCELLED: set(),
    },
)


class EventIssue(models.Model):
    """An issue raised at an event: its follow-up has an owner, a due date and a status."""

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        IN_PROGRESS = "in_progress", "In progress"
        RESOLVED = "resolved", "Resolved"

    event = models.ForeignKey(OutreachEvent, on_delete=models.PROTECT, related_name="issues")
    text = models.CharField(max_length=500)
    raised_by = models.CharField(max_length=120, blank=True, help_text="who raised it (name, RWA, firm)")
    account = models.ForeignKey("customers.Account", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="outreach_issues")
    due_on = models.DateField()
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.OPEN)
    resolution = models.CharField(max_length=500, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["due_on", "id"]
        indexes = [models.Index(fields=["status", "due_on"], name="outreach_issue_followup")]

    def __str__(self) -> str:
        return f"{self.text[:40]} [{self.status}]"


ISSUE_STATUS = StateMachine(
    "outreach issue",
    {
        EventIssue.Status.OPEN: {EventIssue.Status.IN_PROGRESS, EventIssue.Status.RESOLVED},
        EventIssue.Status.IN_PROGRESS: {EventIssue.Status.RESOLVED, EventIssue.Status.OPEN},
        EventIssue.Status.RESOLVED: {EventIssue.Status.OPEN},  # reopened when the follow-up did not hold
    },
)


class EventRequest(models.Model):
    """A service request registered on the spot at an event (through the service desk)."""

    event = models.ForeignKey(OutreachEvent, on_delete=models.PROTECT, related_name="requests")
    request = models.OneToOneField(
        "servicedesk.ServiceRequest", on_delete=models.PROTECT, related_name="outreach_event_link"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.event_id}: {self.request_id}"
