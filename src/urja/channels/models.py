"""Consumer conversations: one-time codes (portal login, contact changes, consent) and the inbound
messages of the WhatsApp and SMS webhooks (kept by message id, so a redelivery changes nothing)."""

from django.db import models


class OneTimeCode(models.Model):
    """A one-time code sent to `address`. Only a keyed hash of the code is stored; the row is found by
    its random `token` (held in the caller's session or given to the API client), never by the code."""

    class Purpose(models.TextChoices):
        LOGIN = "login", "Portal login"
        CONTACT = "contact", "Verify a new mobile or e-mail"
        CONSENT = "consent", "Consumer's consent to a staff edit"

    token = models.CharField(max_length=43, unique=True)
    purpose = models.CharField(max_length=8, choices=Purpose.choices)
    address = models.CharField(max_length=254, help_text="E.164 mobile or lower-case e-mail the code went to")
    code_hash = models.CharField(max_length=64)
    consumer = models.ForeignKey(
        "customers.Consumer", null=True, blank=True, on_delete=models.CASCADE, related_name="one_time_codes"
    )
    # What the code confirms, e.g. {"kind": "mobile", "value": "+91…"} or a staff edit to apply.
    payload = models.JSONField(default=dict, blank=True)
    sent = models.BooleanField(default=False, help_text="false: nobody is registered there, nothing went out")
    client = models.CharField(max_length=150, blank=True)
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    attempts = models.PositiveSmallIntegerField(default=0)
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["purpose", "address", "-created_at"], name="otp_latest")]

    def __str__(self) -> str:
        return f"{self.purpose} code for {self.address}"


class InboundMessage(models.Model):
    """One message received on a webhook (WhatsApp or SMS), stored once by its provider id."""

    class Channel(models.TextChoices):
        WHATSAPP = "whatsapp", "WhatsApp"
        SMS = "sms", "SMS"

    channel = models.CharField(max_length=8, choices=Channel.choices)
    message_id = models.CharField(max_length=128)
    sender = models.CharField(max_length=20, help_text="E.164 mobile")
    kind = models.CharField(max_length=20, default="text")
    text = models.TextField(blank=True)
    payload = models.JSONField(default=dict, blank=True)
    consumer = models.ForeignKey("customers.Consumer", null=True, blank=True, on_delete=models.SET_NULL)
    intent = models.CharField(max_length=32, blank=True)
    reply = models.TextField(blank=True)
    received_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["channel", "message_id"], name="inbound_once")]
        indexes = [
            models.Index(fields=["channel", "sender", "-received_at"], name="inbound_by_sender"),
            # the messages waiting for an answer (bot.answer_pending, the sweep): a few rows, not the history
            models.Index(fields=["id"], condition=models.Q(intent=""), name="inbound_unanswered"),
        ]

    def __str__(self) -> str:
        return f"{self.channel} {self.message_id}"


class Conversation(models.Model):
    """Where a WhatsApp / SMS conversation with one number stands: a menu choice waiting for the
    account, an e-mail waiting for its code. Also when the consumer last wrote (the 24-hour window)."""

    channel = models.CharField(max_length=8, choices=InboundMessage.Channel.choices)
    sender = models.CharField(max_length=20)
    language = models.CharField(max_length=2, default="en")
    state = models.JSONField(default=dict, blank=True)
    last_inbound_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["channel", "sender"], name="one_conversation_per_number")]

    def __str__(self) -> str:
        return f"{self.channel} {self.sender}"
