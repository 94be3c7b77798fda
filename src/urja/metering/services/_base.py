"""What every metering service shares: register and coordinate parsing, the meter sheet entry."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from decimal import Decimal

from django.core.serializers.json import DjangoJSONEncoder
from django.utils import timezone

from urja.core import boundary
from urja.core.errors import DomainError
from urja.customers.models import Account
from urja.metering.models import (
    Meter,
    SheetEntry,
)

CLOCK_SKEW = timedelta(minutes=5)


MAX_REGISTER = Decimal("99999999999.999")


def _actor_name(actor) -> str:
    if actor is None:
        return "system"
    return actor.get_full_name() or actor.get_username()


def _decimal(name: str, value, *, required: bool = False, allow_none: bool = True) -> Decimal | None:
    if value is None or value == "":
        if required or not allow_none:
            raise DomainError(f"{name} is required", code="missing_register", details={"field": name})
        return None
    if isinstance(value, bool):
        raise DomainError(f"{name} must be a number", code="non_numeric_register", details={"field": name})
    try:  # the boundary's rule: ASCII digits, no exponent ("१००", "1e3" refused)
        number = boundary.parse_decimal(value, name=name, code="non_numeric_register")
    except boundary.InvalidInput as exc:
        raise DomainError(exc.message, code="non_numeric_register", details={"field": name}) from exc
    if not number.is_finite():
        raise DomainError(f"{name} {value!r} is not a number", code="non_numeric_register", details={"field": name})
    if number < 0:
        raise DomainError(f"{name} must not be negative", code="negative_register", details={"field": name})
    if number > MAX_REGISTER:
        raise DomainError(f"{name} {value} is too large", code="register_out_of_range", details={"field": name})
    return number.quantize(Decimal("0.001"))


def _coord(name: str, value, bound: int) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        number = boundary.parse_decimal(value, name=name, code="invalid_gps")
    except boundary.InvalidInput as exc:
        raise DomainError(f"{name} is not a number: {exc.message}", code="invalid_gps") from exc
    if not number.is_finite() or abs(number) > bound:
        raise DomainError(f"{name} out of range", code="invalid_gps")
    return number.quantize(Decimal("0.000001"))


def _tod(value) -> dict | None:
    if value in (None, {}, ""):
        return None
    if not isinstance(value, dict):
        raise DomainError("tod must be an object {zone: kWh}", code="invalid_tod")
    return {str(zone): str(_decimal(f"tod.{zone}", v, required=True)) for zone, v in value.items()}


def _sheet(
    *,
    meter: Meter,
    kind: str,
    summary: str,
    actor,
    channel: str,
    account: Account | None = None,
    at: datetime | None = None,
    details: dict | None = None,
    acknowledged_by: str = "",
) -> SheetEntry:
    return SheetEntry.objects.create(
        meter=meter,
        account=account,
        kind=kind,
        at=at or timezone.now(),
        summary=summary[:240],
        details=json.loads(json.dumps(details or {}, cls=DjangoJSONEncoder)),
        performed_by=actor if getattr(actor, "pk", None) else None,
        performed_by_name=_actor_name(actor),
        channel=channel,
        consumer_acknowledged=bool(acknowledged_by),
        acknowledged_by=acknowledged_by,
    )
