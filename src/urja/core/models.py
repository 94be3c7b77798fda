"""Platform models: number series, audit trail, staff roles and API tokens."""

import hashlib
import secrets
from datetime import timedelta

from django.conf import settings
from django.db import models
from django.utils import timezone


class NumberSeries(models.Model):
    """A named counter rendered through a template (see core.ids). One row per series key,
    e.g. 'consumer:OD-BED', 'request', 'receipt:CCC01:counter'. Allocation takes a row lock."""

    key = models.CharField(max_length=80, unique=True)
    template = models.CharField(max_length=80)
    next_value = models.BigIntegerField(default=1)

    def __str__(self) -> str:
        return f"{self.key} ({self.template})"


class Channel(models.TextChoices):
    """Touch points through which a change was made (channel matrix, regulations.md §3)."""

    CALL_CENTRE = "call_centre", "Call centre (1912)"
    CARE_CENTRE = "care_centre", "Customer care centre"
    ANUBHAV_KENDRA = "anubhav_kendra", "Anubhav Kendra"
    WEBSITE = "website", "Website / portal"
    EMAIL = "email", "E-mail"
    APP = "app", "Mobile app"
    SECTION_OFFICE = "section_office", "Section office"
    WHATSAPP = "whatsapp", "WhatsApp"
    SMS = "sms", "SMS"
    FIELD_AGENT = "field_agent", "Field agent"
    CAMP = "camp", "Camp"
    BACKOFFICE = "backoffice", "Back office"
    API = "api", "API"
    SYSTEM = "system", "System (job)"
    IMPORT = "import", "File import"


class AuditEvent(models.Model):
    """Who changed what, when, and through which channel. Append-only."""

    at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    actor_label = models.CharField(max_length=150, blank=True)
    channel = models.CharField(max_length=20, choices=Channel.choices)
    action = models.CharField(max_length=80)
    object_type = models.CharField(max_length=80)
    object_id = models.CharField(max_length=64)
    changes = models.JSONField(default=dict, blank=True)

    class Meta:
        indexes = [models.Index(fields=["object_type", "object_id", "at"])]
        ordering = ["-at", "-id"]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.actor_label} {self.action} {self.object_type}#{self.object_id}"

    def save(self, *args, **kwargs):
        if self.pk:
            raise ValueError("audit events are append-only")
        super().save(*args, **kwargs)


class Role(models.TextChoices):
    CONSUMER = "consumer", "Consumer"
    FIELD_AGENT = "field_agent", "Field agent / meter reader"
    CRE = "cre", "Customer relationship executive"
    ENGINEER = "engineer", "Engineer / crew"
    BILLING_OFFICER = "billing_officer", "Billing officer"
    MANAGER = "manager", "Manager"
    KEY_ACCOUNT_MANAGER = "key_account_manager", "Key account manager"
    MINIGRID_OPERATOR = "mgoperator", "Mini-grid operator"
    ADMIN = "admin", "Administrator"


class StaffProfile(models.Model):
    """A staff member's role and office. Scope: the office and everything below it."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="staff")
    role = models.CharField(max_length=24, choices=Role.choices)
    office = models.ForeignKey("network.Office", null=True, blank=True, on_delete=models.PROTECT)
    mobile = models.CharField(max_length=16, blank=True)
    cash_limit = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    # A field agent's beat: the route codes (Account.route) the agent works, comma-separated. Empty:
    # every route of the office. Read by core.scope where permissions.toml draws a role's accounts by "routes".
    routes = models.CharField(max_length=200, blank=True)

    def __str__(self) -> str:
        return f"{self.user} ({self.get_role_display()})"

    @property
    def route_codes(self) -> list[str]:
        return [code.strip() for code in self.routes.split(",") if code.strip()]


def hash_token(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def password_stamp(user) -> str:
    """A fingerprint of the user's current password hash: a token issued under another password (the
    password was changed since, by any path — admin, `changepassword`, a reset) no longer matches."""
    return hashlib.sha256(f"urja-token:{user.password}".encode()).hexdigest()


class ApiToken(models.Model):
    """Bearer token for apps (field-agent app, gateways). Only the hash is stored. A token is valid until
    `expires_at` (settings.URJA_API_TOKEN_TTL), while its user is active and keeps the password it was
    issued under; `revoked` (with a reason) is final."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=80)
    token_hash = models.CharField(max_length=64, unique=True)
    prefix = models.CharField(max_length=8)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    password_stamp = models.CharField(max_length=64, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked = models.BooleanField(default=False)
    revoked_reason = models.CharField(max_length=40, blank=True)

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @classmethod
    def issue(cls, *, user, name: str, ttl: timedelta | None = None) -> tuple["ApiToken", str]:
        raw = "urja_" + secrets.token_urlsafe(32)
        expires_at = timezone.now() + (ttl if ttl is not None else settings.URJA_API_TOKEN_TTL)
        token = cls.objects.create(
            user=user,
            name=name,
            token_hash=hash_token(raw),
            prefix=raw[5:13],
            expires_at=expires_at,
            password_stamp=password_stamp(user),
        )
        return token, raw


class AuthThrottle(models.Model):
    """Failed sign-in attempts for one key — a username or a client address — of one kind of sign-in
    (`scope` such as 'password:username'; an OTP login adds 'otp:…'). In the database so that every
    gunicorn worker counts the same attempts (the embedded default has no shared cache)."""

    scope = models.CharField(max_length=40)
    key = models.CharField(max_length=150)
    failures = models.PositiveIntegerField(default=0)
    window_started_at = models.DateTimeField()
    locked_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["scope", "key"], name="core_auththrottle_scope_key")]

    def __str__(self) -> str:
        return f"{self.scope} {self.key}: {self.failures} failure(s)"


class DeferredTask(models.Model):
    """A task call the broker refused after its transaction committed (core.jobs.send). The periodic
    `core.retry_deferred` job enqueues it again once the broker is back and deletes the row; tasks are
    idempotent, so a call sent twice (a crash between send and delete) changes nothing twice."""

    task = models.CharField(max_length=200)
    args = models.JSONField(default=list, blank=True)
    kwargs = models.JSONField(default=dict, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    next_try_at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["next_try_at", "id"]

    def __str__(self) -> str:
        return f"{self.task}{tuple(self.args)} ({self.attempts} attempts)"


class JobStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class BackgroundJob(models.Model):
    """A long job started by a person (collections sweep, …) that runs outside the web request and
    reports its progress. `scope` is the office path it works on ('' = the whole utility); at most one
    job of a kind is queued or running per scope, so a double click starts nothing twice."""

    kind = models.CharField(max_length=80)
    scope = models.CharField(max_length=255, blank=True)
    params = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=10, choices=JobStatus.choices, default=JobStatus.QUEUED)
    stage = models.CharField(max_length=40, blank=True)
    done = models.PositiveIntegerField(default=0)
    total = models.PositiveIntegerField(default=0)
    result = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["kind", "scope"],
                condition=models.Q(status__in=["queued", "running"]),
                name="core_backgroundjob_one_active",
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} #{self.pk} {self.status} {self.done}/{self.total}"
