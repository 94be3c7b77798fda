"""One-time codes: issue (through the notifications outbox) and check.

    ticket = issue(purpose="login", address="+919437112233", client=ip, language="or", consumer=c)
    row = check(token=ticket.token, code="123456", client=ip)      # raises WrongCode / TooManyAttempts

Rules (data/channels/otp.toml and [throttle.otp] of data/core/security.toml): 6 random digits, only a
keyed hash stored, valid 5 minutes, used once, void after 5 wrong tries; 5 failures in 15 minutes lock
the number and the client address for 15 minutes (core.auth.Throttle, shared with password sign-in);
a resend cool-down per number and purpose. `issue` with `send=False` creates the same row without
sending anything, so a caller can answer alike whether or not the number is registered.
"""

import hashlib
import hmac
import math
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from urja.core import regdata
from urja.core.auth import Throttle, TooManyAttempts
from urja.core.errors import DomainError

from ..models import OneTimeCode

OTP = Throttle("otp")
__all__ = ["OTP", "ResendTooSoon", "Ticket", "TooManyAttempts", "WrongCode", "check", "issue", "rules"]


class WrongCode(DomainError):
    """Wrong, expired, used or unknown code: one answer for all (nothing tells which)."""

    status = 400
    code = "wrong_code"

    def __init__(self):
        super().__init__("the code is wrong or has expired; ask for a new one")


class ResendTooSoon(DomainError):
    status = 429
    code = "resend_too_soon"

    def __init__(self, retry_after: int):
        super().__init__(
            f"a code was sent a moment ago; you can ask for a new one in {retry_after} seconds",
            details={"retry_after": retry_after},
        )
        self.retry_after = retry_after
        self.headers = {"Retry-After": str(retry_after)}


@dataclass(frozen=True)
class Rules:
    digits: int
    valid: timedelta
    max_attempts: int
    cooldown: timedelta


def rules() -> Rules:
    data = regdata.load("channels/otp.toml")
    return Rules(
        digits=int(data["digits"]),
        valid=timedelta(minutes=float(data["valid_minutes"])),
        max_attempts=int(data["max_attempts"]),
        cooldown=timedelta(seconds=float(data["resend_cooldown_seconds"])),
    )


def _hash(token: str, code: str) -> str:
    return hmac.new(settings.SECRET_KEY.encode(), f"otp:{token}:{code}".encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Ticket:
    token: str
    expires_at: datetime
    resend_at: datetime


def issue(
    *,
    purpose: str,
    address: str,
    client: str,
    language: str,
    consumer=None,
    payload: dict | None = None,
    send: bool = True,
    channel: str = "sms",
    now: datetime | None = None,
) -> Ticket:
    """A new code for `address` (already normalised), sent as contact.verify_otp through the outbox
    when `send`. Raises TooManyAttempts while the number or the client is locked out, ResendTooSoon
    within the cool-down of the last code for this number and purpose (sent or not)."""
    from urja.notifications.services import notify_address

    if purpose not in OneTimeCode.Purpose.values:
        raise DomainError(f"unknown code purpose {purpose!r}", code="invalid_purpose")
    now = now or timezone.now()
    rule = rules()
    OTP.check(identity=address, address=client, now=now)
    with transaction.atomic():
        last = (
            OneTimeCode.objects.select_for_update()
            .filter(purpose=purpose, address=address)
            .order_by("-created_at")
            .first()
        )
        if last is not None and now - last.created_at < rule.cooldown:
            wait = math.ceil((last.created_at + rule.cooldown - now).total_seconds())
            raise ResendTooSoon(max(1, wait))
        # earlier live codes of this number and purpose stop working: only the newest counts
        OneTimeCode.objects.filter(purpose=purpose, address=address, used_at__isnull=True).update(used_at=now)
        token = secrets.token_urlsafe(24)
        code = f"{secrets.randbelow(10**rule.digits):0{rule.digits}d}"
        row = OneTimeCode.objects.create(
            token=token,
            purpose=purpose,
            address=address,
            code_hash=_hash(token, code),
            consumer=consumer,
            payload=payload or {},
            sent=send,
            client=client[:150],
            created_at=now,
            expires_at=now + rule.valid,
        )
        if send:
            notify_address(
                event="contact.verify_otp",
                channel=channel,
                to=address,
                language=language,
                context={"otp": code, "minutes": int(rule.valid.total_seconds() // 60)},
                idempotency_key=f"otp:{row.pk}",
                consumer=consumer,
            )
    return Ticket(token=token, expires_at=row.expires_at, resend_at=now + rule.cooldown)


def check(
    *, token: str, code: str, client: str, purpose: str | None = None, now: datetime | None = None
) -> OneTimeCode:
    """The code's row, marked used, when `code` is right for `token`; otherwise WrongCode (counted
    against the number and the client) or TooManyAttempts (checked before the code is looked at)."""
    now = now or timezone.now()
    row = OneTimeCode.objects.filter(token=str(token)[:43]).first() if token else None
    address = row.address if row is not None else None
    OTP.check(identity=address, address=client, now=now)
    code = (code or "").strip()
    good = (
        row is not None
        and (purpose is None or row.purpose == purpose)
        and row.used_at is None
        and row.expires_at > now
        and row.attempts < rules().max_attempts
        and code.isdigit()
        and hmac.compare_digest(row.code_hash, _hash(row.token, code))
    )
    if good:
        # used once: a concurrent check with the same code finds used_at set and fails
        good = OneTimeCode.objects.filter(pk=row.pk, used_at__isnull=True).update(used_at=now) == 1
    if not good:
        if row is not None and row.used_at is None:
            OneTimeCode.objects.filter(pk=row.pk).update(attempts=row.attempts + 1)
        OTP.failed(identity=address, address=client, now=now)
        raise WrongCode()
    OTP.succeeded(identity=address)
    row.used_at = now
    return row
