"""Tariff services: load tariff files, resolve the version(s) in force, run the calculator."""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.db.models import Q

from urja.core.errors import Conflict, DomainError, NotFound
from urja.core.services import record_audit

from . import engine, schema
from .models import TariffOrder, TariffVersion


def tariff_dir() -> Path:
    return Path(settings.DATA_DIR) / "tariffs"


@dataclass
class LoadResult:
    order: TariffOrder
    created: bool
    versions: int


def _overlaps(a_from: date, a_to: date | None, b_from: date, b_to: date | None) -> bool:
    return a_from <= (b_to or date.max) and b_from <= (a_to or date.max)


def _selectors_intersect(s: schema.Schedule, v: TariffVersion) -> bool:
    if s.category != v.category:
        return False
    if s.category == "minigrid":
        return s.code == v.schedule_code
    if not set(s.sub_categories) & set(v.sub_categories) or not set(s.areas) & set(v.areas):
        return False
    return not s.supply_types or not v.supply_types or bool(set(s.supply_types) & set(v.supply_types))


@transaction.atomic
def load_text(*, text: str, file_name: str, actor=None, channel: str = "system") -> LoadResult:
    """Load one tariff file. Reloading the same file is a no-op. A version left open-ended ("in force until
    further orders") is ended the day before a later order for the same consumers starts; any other
    overlap is refused."""
    try:
        parsed = schema.parse_text(text, file=file_name)
    except schema.TariffFileError as exc:
        raise DomainError(
            str(exc),
            code="invalid_tariff_file",
            details={"file": exc.file, "line": exc.line, "field": exc.field, "problem": exc.problem},
        ) from exc
    digest = hashlib.sha256(text.encode()).hexdigest()
    existing = TariffOrder.objects.filter(code=parsed.code).first()
    if existing is not None:
        if existing.sha256 == digest:
            return LoadResult(existing, False, existing.versions.count())
        raise Conflict(
            f"{file_name}: order {parsed.code!r} is already loaded with different content; "
            "a new order (or a correction) must be a new file with its own code and dates",
            code="tariff_order_changed",
            details={"file": file_name, "order": parsed.code},
        )
    clashes, superseded = [], {}
    for s in parsed.schedules:
        candidates = TariffVersion.objects.filter(category=s.category).select_related("order")
        for v in candidates:
            if not _selectors_intersect(s, v):
                continue
            if v.effective_to is None and v.effective_from < s.effective_from:
                # An order "in force until further orders" ends the day before its successor starts.
                end = s.effective_from - timedelta(days=1)
                superseded[v.pk] = min(end, superseded.get(v.pk, end))
                continue
            if _overlaps(s.effective_from, s.effective_to, v.effective_from, v.effective_to):
                clashes.append(
                    {
                        "schedule": s.code,
                        "from": str(s.effective_from),
                        "to": str(s.effective_to or ""),
                        "clashes_with": f"{v.order.code}/{v.schedule_code}",
                        "its_dates": f"{v.effective_from}..{v.effective_to or 'open'}",
                    }
                )
    if clashes:
        first = clashes[0]
        raise Conflict(
            f"{file_name}: schedule {first['schedule']} overlaps {first['clashes_with']} ({first['its_dates']}) "
            "for the same category; end the earlier version first (effective_to) in its own file",
            code="tariff_overlap",
            details={"file": file_name, "clashes": clashes},
        )
    for version in TariffVersion.objects.filter(pk__in=superseded).select_related("order"):
        version.effective_to = superseded[version.pk]
        version.save(update_fields=["effective_to"])
        record_audit(
            actor=actor,
            channel=channel,
            action="tariff.version_superseded",
            obj=version,
            changes={"effective_to": str(version.effective_to), "by": parsed.code},
        )
    order = TariffOrder.objects.create(
        code=parsed.code,
        kind=parsed.kind,
        regulator=parsed.regulator,
        reference=parsed.reference,
        order_date=parsed.order_date,
        effective_from=parsed.effective_from,
        effective_to=parsed.effective_to,
        source=parsed.source,
        fees={k: str(v) for k, v in parsed.fees.items()},
        file_name=Path(file_name).name,
        text=text,
        sha256=digest,
        loaded_by=actor if getattr(actor, "pk", None) else None,
    )
    for s in parsed.schedules:
        TariffVersion.objects.create(
            order=order,
            schedule_code=s.code,
            name=s.name,
            category=s.category,
            sub_categories=list(s.sub_categories),
            areas=list(s.areas),
            supply_types=list(s.supply_types),
            effective_from=s.effective_from,
            effective_to=s.effective_to,
            package_id=s.package.package_id if s.package else "",
            unconfirmed=list(s.unconfirmed),
        )
    record_audit(
        actor=actor,
        channel=channel,
        action="tariff.order_loaded",
        obj=order,
        changes={"file": file_name, "sha256": digest, "schedules": [s.code for s in parsed.schedules]},
    )
    return LoadResult(order, True, len(parsed.schedules))


def load_file(*, path, actor=None, channel: str = "system") -> LoadResult:
    file = Path(path)
    if not file.exists():
        raise DomainError(f"{file}: no such tariff file", code="tariff_file_missing")
    return load_text(text=file.read_text(encoding="utf-8"), file_name=str(file), actor=actor, channel=channel)


def tariff_files(directory=None) -> list[Path]:
    """The tariff orders in data/tariffs/, in name order. The app's navigation.toml (links and
    panels, core navigation) lives there too and is not a tariff order."""
    folder = Path(directory) if directory else tariff_dir()
    return [p for p in sorted(folder.glob("*.toml")) if p.name != "navigation.toml"]


def load_all(*, directory=None, actor=None) -> list[LoadResult]:
    """Load every tariff order of data/tariffs/; all or nothing."""
    with transaction.atomic():
        return [load_file(path=p, actor=actor) for p in tariff_files(directory)]


@lru_cache(maxsize=256)
def _parsed(order_id: int, sha: str) -> schema.TariffFile:
    order = TariffOrder.objects.get(pk=order_id)
    return schema.parse_text(order.text, file=order.file_name)


def schedule_of(version: TariffVersion) -> schema.Schedule:
    order = version.order
    parsed = _parsed(order.pk, order.sha256)
    schedule = next(s for s in parsed.schedules if s.code == version.schedule_code)
    if schedule.effective_to != version.effective_to:  # ended by a later order (superseded)
        schedule = dataclasses.replace(schedule, effective_to=version.effective_to)
    return schedule


def versions_in_force(start: date, end: date):
    return (
        TariffVersion.objects.filter(effective_from__lte=end)
        .filter(Q(effective_to__isnull=True) | Q(effective_to__gte=start))
        .select_related("order")
    )


def matching_versions(
    *,
    category: str,
    sub_category: str = "general",
    area: str = "urban",
    supply_type: str = "",
    package_code: str = "",
    start: date,
    end: date,
    candidates=None,
) -> list[TariffVersion]:
    found = []
    for v in candidates if candidates is not None else versions_in_force(start, end).filter(category=category):
        if v.category != category:
            continue
        if category == "minigrid":
            if v.schedule_code == package_code or (package_code and v.package_id == package_code):
                found.append(v)
            continue
        if (
            sub_category in v.sub_categories
            and area in v.areas
            and (not v.supply_types or supply_type in v.supply_types)
        ):
            found.append(v)
    return sorted(found, key=lambda v: v.effective_from)


def segments(*, versions: list[TariffVersion], start: date, end: date, what: str) -> list[engine.Segment]:
    """Segments of the period, one per version in force; a gap raises DomainError(missing_tariff)."""
    try:
        return engine.segments_for([schedule_of(v) for v in versions], start, end)
    except engine.TariffGap as exc:
        raise DomainError(
            f"no tariff for {what}: {exc}",
            code="missing_tariff",
            details={"for": what, "missing": [[str(a), str(b)] for a, b in exc.missing]},
        ) from exc


def _dec(value, name: str) -> Decimal:
    try:
        result = Decimal(str(value))
    except (InvalidOperation, ValueError) as exc:
        raise DomainError(
            f"{name} must be a number, got {value!r}", code="invalid_number", details={"field": name}
        ) from exc
    if not result.is_finite() or result < 0:
        raise DomainError(f"{name} must be zero or more, got {value!r}", code="invalid_number", details={"field": name})
    return result


def calculate(
    *,
    period_start: date,
    period_end: date,
    units: object = 0,
    category: str = "domestic",
    sub_category: str = "general",
    area: str = "urban",
    supply_type: str = "",
    schedule: str = "",
    package_code: str = "",
    sanctioned_load: object = 1,
    load_unit: str = "kW",
    recorded_md: object = None,
    tod_units: dict | None = None,
    meter_type: str = "static",
    meter_owner: str = "utility",
    metered: bool = True,
    e_bill: bool = False,
    prepaid: bool = False,
    overdue_principal: object = 0,
    overdue_days: int = 0,
) -> engine.Bill:
    """The public bill calculator: line-by-line bill for the given inputs (nothing is stored)."""
    if period_end < period_start:
        raise DomainError("period end is before its start", code="invalid_period")
    if (period_end - period_start).days > 366:
        raise DomainError("a billing period is at most a year", code="invalid_period")
    if load_unit not in ("kW", "kVA"):
        raise DomainError("load unit must be kW or kVA", code="invalid_load_unit")
    if area not in ("urban", "rural"):
        raise DomainError("area must be urban or rural", code="invalid_area")
    if schedule:
        versions = list(versions_in_force(period_start, period_end).filter(schedule_code=schedule))
        if not versions and not TariffVersion.objects.filter(schedule_code=schedule).exists():
            raise NotFound(f"no tariff schedule {schedule!r}", code="unknown_schedule")
        what = schedule
    else:
        versions = matching_versions(
            category=category,
            sub_category=sub_category,
            area=area,
            supply_type=supply_type,
            package_code=package_code,
            start=period_start,
            end=period_end,
        )
        what = f"{category}/{sub_category}/{area}" + (f"/{package_code}" if package_code else "")
    segs = segments(versions=versions, start=period_start, end=period_end, what=what)
    inp = engine.BillInput(
        period_start=period_start,
        period_end=period_end,
        units=_dec(units, "units").quantize(Decimal("0.001")),
        sanctioned_load=_dec(sanctioned_load, "sanctioned_load"),
        load_unit=load_unit,
        recorded_md=None if recorded_md in (None, "") else _dec(recorded_md, "recorded_md"),
        tod_units={k: _dec(v, f"tod_units.{k}") for k, v in (tod_units or {}).items()},
        area=area,
        metered=metered,
        meter_type=meter_type,
        meter_owner=meter_owner,
        e_bill=e_bill,
        prepaid=prepaid,
        overdue_principal=_dec(overdue_principal, "overdue_principal"),
        overdue_days=int(overdue_days),
    )
    return engine.calculate(segs, inp)


def bill_as_dict(bill: engine.Bill) -> dict:
    return {
        "segments": [
            {
                "schedule": s.schedule.code,
                "name": s.schedule.name,
                "order": s.schedule.order_code,
                "from": str(s.start),
                "to": str(s.end),
                "month_factor": engine.fmt(engine.month_factor(s.start, s.end)),
            }
            for s in bill.segments
        ],
        "lines": [ln.as_dict() for ln in bill.lines],
        "totals": {k: str(v) for k, v in bill.totals().items()},
        "total": str(bill.total),
        "payable_by_due_date": str(bill.payable_by_due_date),
        "if_paid_digitally": str(bill.total + bill.conditional("digital")),
    }
