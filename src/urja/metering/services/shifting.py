"""Meter shifting within the premises: from the meter pages and API, and as the field work of a
connections change request (issue 12).

The meter moves within the premises: the open installation keeps the meter and its readings, its
location changes, and the meter particulars sheet (append-only) records where from, where to, the new
geo point and the request, so the meter's record keeps its history.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from django.db import transaction

from urja.core import boundary
from urja.core.errors import DomainError
from urja.core.services import record_audit
from urja.customers.models import Account
from urja.metering.models import Installation, SheetEntry
from urja.metering.services._base import _sheet
from urja.metering.services.registry import _check_at, _installed_for_update


def _coordinate(value: object, *, name: str, bound: int) -> Decimal | None:
    if value in (None, ""):
        return None
    try:
        number = boundary.parse_quantity(value, name=name, places=6, allow_negative=True)
    except boundary.InvalidInput as exc:
        raise DomainError(exc.message, code="invalid_geo_point", details=exc.details) from exc
    if abs(number) > bound:
        raise DomainError(f"{name} must be within ±{bound} degrees", code="invalid_geo_point")
    return number


def last_geo_point(installation: Installation) -> dict | None:
    """The meter's geo point as its sheet last recorded it on this installation (None: never shifted)."""
    entry = (
        SheetEntry.objects.filter(meter=installation.meter, account=installation.account, kind=SheetEntry.Kind.SHIFT)
        .filter(details__has_key="latitude")  # the last shift that recorded a point, not the last shift
        .order_by("-at", "-id")
        .first()
    )
    if entry is None:
        return None
    return {"latitude": entry.details["latitude"], "longitude": entry.details["longitude"]}


@transaction.atomic
def shift_meter(
    *,
    account: Account,
    location: str,
    actor,
    channel: str,
    latitude: object = None,
    longitude: object = None,
    reference: str = "",
    shifted_at: datetime | None = None,
    acknowledged_by: str = "",
) -> Installation:
    """Move the account's meter to `location` (and geo point) within the premises — for the change
    request `reference` when a connections request asked for it; one sheet entry and one audit event.
    Nothing changes on a refusal."""
    at = _check_at(shifted_at)
    location = " ".join(str(location or "").split())
    if not location:
        raise DomainError("the new location is required", code="location_required")
    if len(location) > Installation._meta.get_field("location").max_length:
        raise DomainError("the new location is too long", code="location_too_long")
    lat = _coordinate(latitude, name="latitude", bound=90)
    lon = _coordinate(longitude, name="longitude", bound=180)
    if (lat is None) != (lon is None):
        raise DomainError("give both latitude and longitude, or neither", code="invalid_geo_point")
    inst = _installed_for_update(account)
    old, old_geo = inst.location, last_geo_point(inst)
    inst.location = location
    inst.save(update_fields=["location"])
    details = {"from": old, "to": location, "reference": reference, "from_geo": old_geo}
    if lat is not None:
        details.update(latitude=str(lat), longitude=str(lon))
    _sheet(
        meter=inst.meter,
        account=account,
        kind=SheetEntry.Kind.SHIFT,
        at=at,
        summary=f"Shifted from {old or '—'} to {location}" + (f" ({reference})" if reference else ""),
        details=details,
        actor=actor,
        channel=channel,
        acknowledged_by=acknowledged_by,
    )
    record_audit(actor=actor, channel=channel, action="meter.shifted", obj=inst, changes=details)
    return inst
