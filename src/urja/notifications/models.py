"""The notifications outbox: one row per message to send on one channel to one address.

Status machine (OUTBOX_STATUS):

    queued ──claim──▶ sending ──▶ sent
                        │  ├────▶ failed ──claim (when due)──▶ sending ...
                        │  └────▶ dead   (permanent failure, or attempts exhausted)
    failed ──▶ dead (a stuck 'sending' message that already used its last attempt)
    dead ──▶ queued (staff re-queue)

A worker only sends a message it has *claimed* with a conditional UPDATE (queued/failed → sending),
so two workers never send the same message.
"""

from django.db import models

from urja.core.states import StateMachine


class OutboxChannel(models.TextChoices):
    SMS = "sms", "SMS"
    WHATSAPP = "whatsapp", "WhatsApp"
    EMAIL = "email", "E-mail"


class OutboxStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    SENDING = "sending", "Sending"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed (will retry)"
    DEAD = "dead", "Dead (gave up)"


OUTBOX_STATUS = StateMachine(
    "outbox message",
    {
        OutboxStatus.QUEUED: {OutboxStatus.SENDING},
        OutboxStatus.SENDING: {OutboxStatus.SENT, OutboxStatus.FAILED, OutboxStatus.DEAD},
        OutboxStatus.FAILED: {OutboxStatus.SENDING, OutboxStatus.DEAD},
        OutboxStatus.SENT: set(),
        OutboxStatus.DEAD: {OutboxStatus.QUEUED},
    },
)


class OutboxMessage(models.Model):
    idempotency_key = models.CharField(max_length=200, unique=True)
    event = models.CharField(max_length=60)
    channel = models.CharField(max_length=10, choices=OutboxChannel.choices)
    to = models.CharField(max_length=254, help_text="E.164 mobile or e-mail address")
    language = models.CharField(max_length=2)
    subject = models.CharField(max_length=250, blank=True)
    body = models.TextField()
    # A channel-specific message shape the sender uses instead of plain `body` (the body stays the
    # readable text the back office shows): WhatsApp {"interactive": {...}} / {"document": {...}} and
    # {"window_until": iso, "template": {...}} (an approved template when the 24-hour window has
    # closed); SMS {"dlt_template_id": "..."} for a text whose DLT template is not its event's.
    payload = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=10, choices=OutboxStatus.choices, default=OutboxStatus.QUEUED)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    claimed_at = models.DateTimeField(null=True, blank=True, help_text="when the current 'sending' began")
    last_error = models.TextField(blank=True)
    provider_message_id = models.CharField(max_length=200, blank=True)
    # What the provider reported after sending (WhatsApp statuses webhook: delivered / read / failed).
    delivery_status = models.CharField(max_length=12, blank=True)
    delivery_at = models.DateTimeField(null=True, blank=True)
    consumer = models.ForeignKey(
        "customers.Consumer", null=True, blank=True, on_delete=models.SET_NULL, related_name="outbox_messages"
    )
    account = models.ForeignKey(
        "customers.Account", null=True, blank=True, on_delete=models.SET_NULL, related_name="outbox_messages"
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["status", "next_attempt_at"], name="outbox_due"),
            models.Index(fields=["account", "created_at"], name="outbox_account"),
            models.Index(fields=["consumer", "created_at"], name="outbox_consumer"),
        ]

    def __str__(self) -> str:
        return f"{self.event} → {self.channel}:{self.to} ({self.status})"
