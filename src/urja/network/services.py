"""Network services: creating offices keeps the materialised path right; a DT structure moved gets its
new geo point; a mini-grid site gets its node on the network (its own feeder and DT)."""

from __future__ import annotations

from decimal import Decimal

from django.db import transaction

from urja.core import regdata
from urja.core.errors import DomainError
from urja.core.services import record_audit

from .models import LEVEL_ORDER, DistributionTransformer, Feeder, MiniGridSite, Office


@transaction.atomic
def create_office(*, code: str, name: str, level: str, parent: Office | None = None, **extra) -> Office:
    if level not in LEVEL_ORDER:
        raise DomainError(f"unknown office level {level!r}", code="unknown_office_level")
    if parent is not None and LEVEL_ORDER.index(parent.level) >= LEVEL_ORDER.index(level):
        raise DomainError(f"a {level} cannot sit under a {parent.level}", code="bad_office_hierarchy")
    office = Office.objects.create(code=code, name=name, level=level, parent=parent, **extra)
    office.path = f"{parent.path if parent else '/'}{office.pk}/"
    office.save(update_fields=["path"])
    return office


def _degrees(value: object, *, name: str, bound: int) -> Decimal:
    try:
        number = Decimal(str(value)).quantize(Decimal("0.000001"))
    except ArithmeticError:
        raise DomainError(f"{name} must be decimal degrees", code="invalid_geo_point") from None
    if not number.is_finite() or abs(number) > bound:
        raise DomainError(f"{name} must be within ±{bound} degrees", code="invalid_geo_point")
    return number


@transaction.atomic
def move_transformer(
    *, transformer: DistributionTransformer, latitude: object, longitude: object, actor, channel: str, reason: str
) -> DistributionTransformer:
    """A DT structure shifted (connections' shifting on request): its geo point changes, audited with the
    point before and the reason (the request number)."""
    lat = _degrees(latitude, name="latitude", bound=90)
    lon = _degrees(longitude, name="longitude", bound=180)
    dt = DistributionTransformer.objects.select_for_update().get(pk=transformer.pk)
    before = {"latitude": str(dt.latitude) if dt.latitude is not None else None,
              "longitude": str(dt.longitude) if dt.longitude is not None else None}  # fmt: skip
    dt.latitude, dt.longitude = lat, lon
    dt.save(update_fields=["latitude", "longitude"])
    changes = {"from": before, "latitude": str(lat), "longitude": str(lon), "reason": reason[:200]}
    record_audit(actor=actor, channel=channel, action="network.transformer_moved", obj=dt, changes=changes)
    return dt


def _node_rules() -> dict:
    return regdata.load("minigrid/rules.toml")["network"]


@transaction.atomic
def site_transformer(*, site: MiniGridSite) -> DistributionTransformer:
    """The mini-grid site's distribution point on the network, created with its feeder (the plant's LT
    bus, on the site's section) when the site has none. Idempotent."""
    site = MiniGridSite.objects.select_for_update().get(pk=site.pk)
    if site.transformer_id:
        return site.transformer
    rules = _node_rules()
    code = rules["node_code"].format(site=site.code)
    feeder, _ = Feeder.objects.get_or_create(
        code=code,
        defaults={"name": f"{site.name} mini-grid bus", "office": site.office, "voltage_kv": Decimal(rules["bus_kv"])},
    )
    dt, _ = DistributionTransformer.objects.get_or_create(
        code=code, defaults={"feeder": feeder, "capacity_kva": site.capacity_kw}
    )
    site.transformer = dt
    site.save(update_fields=["transformer"])
    record_audit(actor=None, channel="system", action="network.minigrid_node", obj=site,
                 changes={"feeder": feeder.code, "transformer": dt.code})  # fmt: skip
    return dt


@transaction.atomic
def create_minigrid_site(*, code: str, name: str, office: Office, **fields) -> MiniGridSite:
    """A mini-grid site with its node on the network (feeder and DT) from the start."""
    site = MiniGridSite.objects.create(code=code, name=name, office=office, **fields)
    site_transformer(site=site)
    site.refresh_from_db()
    return site
