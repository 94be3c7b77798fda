"""Sign-in: the failed-attempt throttle, password sign-in through it, and bearer-token checks.

Every way to sign in with a secret goes through a `Throttle` (the staff login page, the admin login,
`POST /api/v1/auth/tokens`; an OTP login will use `Throttle("otp")` with its own `[throttle.otp]`
rule in data/core/security.toml). Failures are counted per username and per client address in the
database (core.AuthThrottle), so every gunicorn worker sees the same count.
"""

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import authenticate
from django.db import transaction
from django.utils import timezone

from . import regdata
from .errors import DomainError
from .models import ApiToken, AuthThrottle, password_stamp

SECURITY_DATA = "core/security.toml"


class TooManyAttempts(DomainError):
    """Sign-in refused without looking at the secret: too many recent failures (API: 429 + Retry-After)."""

    status = 429
    code = "too_many_attempts"

    def __init__(self, retry_after: int):
        minutes = max(1, math.ceil(retry_after / 60))
        super().__init__(
            f"too many failed sign-in attempts; try again in {minutes} minute(s)",
            details={"retry_after": retry_after},
        )
        self.retry_after = retry_after
        self.headers = {"Retry-After": str(retry_after)}


class InvalidToken(DomainError):
    status = 401
    code = "invalid_token"


class TokenExpired(InvalidToken):
    code = "token_expired"


@dataclass(frozen=True)
class ThrottleRule:
    username_failures: int
    address_failures: int
    window: timedelta
    lockout: timedelta


def throttle_rule(kind: str) -> ThrottleRule:
    row = regdata.load(SECURITY_DATA)["throttle"][kind]
    return ThrottleRule(
        username_failures=int(row["username_failures"]),
        address_failures=int(row["address_failures"]),
        window=timedelta(minutes=float(row["window_minutes"])),
        lockout=timedelta(minutes=float(row["lockout_minutes"])),
    )


def client_address(request) -> str:
    """The client's address: REMOTE_ADDR, or — behind settings.URJA_PROXY_COUNT reverse proxies that
    append to X-Forwarded-For — the entry the outermost trusted proxy wrote (earlier entries are
    whatever the client sent, so they are not trusted)."""
    proxies = settings.URJA_PROXY_COUNT
    if proxies:
        hops = [h.strip() for h in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if h.strip()]
        if len(hops) >= proxies:
            return hops[-proxies][:150]
    return (request.META.get("REMOTE_ADDR") or "unknown")[:150]


def _identity_key(identity: str) -> str:
    # casefolded and cut to the column: "Admin" and "admin" share one counter
    return identity.strip().casefold()[:150]


class Throttle:
    """Failed-attempt counter and lockout for one kind of sign-in (`kind` names a [throttle.<kind>]
    rule). Call `check` before looking at the secret, then `failed` or `succeeded`."""

    def __init__(self, kind: str):
        self.kind = kind

    def _keys(self, identity: str | None, address: str | None, rule: ThrottleRule) -> list[tuple[str, str, int]]:
        keys = []
        if identity:
            keys.append((f"{self.kind}:username", _identity_key(identity), rule.username_failures))
        if address:
            keys.append((f"{self.kind}:address", address[:150], rule.address_failures))
        return keys

    def check(self, *, identity: str | None, address: str | None, now: datetime | None = None) -> None:
        """Raise TooManyAttempts while the username or the address is locked out."""
        now = now or timezone.now()
        rule = throttle_rule(self.kind)
        locked = []
        for scope, key, _limit in self._keys(identity, address, rule):
            until = (
                AuthThrottle.objects.filter(scope=scope, key=key, locked_until__gt=now)
                .values_list("locked_until", flat=True)
                .first()
            )
            if until is not None:
                locked.append(until)
        if locked:
            raise TooManyAttempts(retry_after=max(1, math.ceil((max(locked) - now).total_seconds())))

    def failed(self, *, identity: str | None, address: str | None, now: datetime | None = None) -> None:
        """Count a failure; the one that reaches the limit within the window starts the lockout."""
        now = now or timezone.now()
        rule = throttle_rule(self.kind)
        with transaction.atomic():
            for scope, key, limit in self._keys(identity, address, rule):
                row, _ = AuthThrottle.objects.select_for_update().get_or_create(
                    scope=scope, key=key, defaults={"window_started_at": now}
                )
                if row.locked_until and row.locked_until > now:
                    continue  # attempts during a lockout were refused unseen; they do not extend it
                if now - row.window_started_at >= rule.window:
                    row.failures, row.window_started_at = 0, now
                row.failures += 1
                if row.failures >= limit:
                    # locked; after the lockout the key starts afresh with a full allowance
                    row.locked_until, row.failures, row.window_started_at = now + rule.lockout, 0, now
                row.save(update_fields=["failures", "window_started_at", "locked_until"])

    def succeeded(self, *, identity: str) -> None:
        """A correct secret clears the username's count. The address count stays: otherwise an attacker
        could reset it by signing in to an account of their own between guesses."""
        AuthThrottle.objects.filter(scope=f"{self.kind}:username", key=_identity_key(identity)).delete()


PASSWORD = Throttle("password")


def authenticate_password(request, *, username: str, password: str):
    """Django's authenticate() behind the password throttle: the user, or None for wrong credentials;
    raises TooManyAttempts (before the password is even checked) while locked out."""
    address = client_address(request)
    PASSWORD.check(identity=username, address=address)
    user = authenticate(request, username=username, password=password)
    if user is None:
        PASSWORD.failed(identity=username, address=address)
        return None
    PASSWORD.succeeded(identity=username)
    return user


def purge_throttle(*, now: datetime | None = None) -> int:
    """Delete counters nobody needs any more (window over, not locked); returns how many."""
    now = now or timezone.now()
    longest = max(
        (throttle_rule(kind).window for kind in regdata.load(SECURITY_DATA)["throttle"]), default=timedelta(0)
    )
    stale = AuthThrottle.objects.filter(window_started_at__lt=now - longest).exclude(locked_until__gt=now)
    return stale.delete()[0]


# --- bearer tokens -------------------------------------------------------------------------------


def revoke_tokens(*, user, reason: str) -> int:
    """Revoke every live token of `user` (password changed, user deactivated, admin action)."""
    return ApiToken.objects.filter(user=user, revoked=False).update(revoked=True, revoked_reason=reason)


def validate_token(record: ApiToken, *, now: datetime | None = None) -> None:
    """Raise InvalidToken / TokenExpired unless `record` (with its user loaded) may be used now.
    A token of a deactivated user, or one issued under a password since changed, is revoked for good
    (a later reactivation does not bring it back)."""
    if record.revoked:
        raise InvalidToken("this token has been revoked; sign in again", details={"reason": record.revoked_reason})
    user = record.user
    reason = ""
    if not user.is_active:
        reason = "user_deactivated"
    elif record.password_stamp != password_stamp(user):
        reason = "password_changed"
    if reason:
        ApiToken.objects.filter(pk=record.pk).update(revoked=True, revoked_reason=reason)
        raise InvalidToken("this token has been revoked; sign in again", details={"reason": reason})
    if record.expires_at <= (now or timezone.now()):
        expired_at = record.expires_at.isoformat()
        raise TokenExpired("this token has expired; sign in again", details={"expired_at": expired_at})
