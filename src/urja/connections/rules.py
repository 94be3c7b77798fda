"""Pure rules of the connection workflows (no database): the checklist, the utility's area, the
timelines plan, Mo Bidyut eligibility, the demand note's lines and the L x D x H x F estimate.

Inputs are the parsed data files (data/connections/connections.toml, the document matrix and the
tariff order's [fees]); the services read them and pass them in, so everything here is testable
exhaustively.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from urja.core.calendars import WorkingCalendar
from urja.core.money import paise
from urja.servicedesk import sla

# --- the checklist -----------------------------------------------------------------------------------


def checklist(matrix: Mapping, applicant_type: str) -> list[dict]:
    """The document matrix's lines for `applicant_type` (each: code, name, any_of, conditional)."""
    return [dict(d) for d in matrix["document"] if applicant_type in d.get("required_for", [])]


def missing_documents(matrix: Mapping, applicant_type: str, given: Iterable[str]) -> list[str]:
    """Codes of the required (non-conditional) lines not given."""
    have = set(given)
    return [d["code"] for d in checklist(matrix, applicant_type) if not d.get("conditional") and d["code"] not in have]


# --- the utility's area --------------------------------------------------------------------------------


def inside(polygon: Sequence[Sequence[float]], latitude: float, longitude: float) -> bool:
    """Ray casting: is (latitude, longitude) inside the polygon of (lat, lon) vertices (edges count in)."""
    n = len(polygon)
    result = False
    for i in range(n):
        (y1, x1), (y2, x2) = polygon[i], polygon[(i + 1) % n]
        # on an edge: inside
        cross = (x2 - x1) * (latitude - y1) - (y2 - y1) * (longitude - x1)
        if abs(cross) < 1e-12 and min(x1, x2) <= longitude <= max(x1, x2) and min(y1, y2) <= latitude <= max(y1, y2):
            return True
        if (y1 > latitude) != (y2 > latitude):
            x_at = x1 + (latitude - y1) * (x2 - x1) / (y2 - y1)
            if longitude < x_at:
                result = not result
    return result


# --- timelines -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    area: str
    voltage: str
    up_to_dn: int
    after_dn: int
    with_extension: int


def rows(doc: Mapping) -> list[Row]:
    return [
        Row(r["area"], r["voltage"], int(r["up_to_dn"]), int(r["after_dn"]), int(r["with_extension"]))
        for r in doc["timelines"]["row"]
    ]


def row_for(doc: Mapping, *, area: str, supply_type: str) -> Row:
    voltage = doc["timelines"]["voltage_of"].get(supply_type, "lt")
    for r in rows(doc):
        if r.area == area and r.voltage == voltage:
            return r
    raise LookupError(f"no timelines row for {area} / {voltage}")


def area_of(doc: Mapping, area_class: str) -> str:
    return str(doc["caps"]["area_of"][area_class])


@dataclass(frozen=True)
class Plan:
    """The timelines of one application: each stage's SLA timeline and the overall cap."""

    up_to_dn: sla.Timeline
    after_dn: sla.Timeline
    cap: sla.Timeline | None  # None: no cap (extension needed: the SERC's period applies)
    fast_track: sla.Timeline | None


def plan(doc: Mapping, *, area_class: str, supply_type: str, extension: bool = False, fast_track: bool = False) -> Plan:
    unit = doc["timelines"]["unit"]
    row = row_for(doc, area=area_of(doc, area_class), supply_type=supply_type)
    after = row.with_extension if extension else row.after_dn
    caps = doc["caps"]
    cap = None if extension else sla.Timeline(caps["unit"], int(caps[area_class]))
    fast = doc["fast_track"]
    return Plan(
        up_to_dn=sla.Timeline(unit, row.up_to_dn),
        after_dn=sla.Timeline(unit, after),
        cap=cap,
        fast_track=sla.Timeline(fast["unit"], int(fast["value"])) if fast_track else None,
    )


def dn_due(
    plan_: Plan, *, registered_at: datetime, calendar: WorkingCalendar, pauses: Sequence = ()
) -> datetime | None:
    return sla.due_at(registered_at, plan_.up_to_dn, calendar, pauses)


def connection_due(
    plan_: Plan,
    *,
    registered_at: datetime,
    dn_paid_at: datetime,
    calendar: WorkingCalendar,
    pauses: Sequence = (),
) -> datetime | None:
    """When the supply must be on: fast track 48 h from the complete, paid application; else the
    table's 'after DN' period from the payment, but never later than the Rules' cap counted from
    registration (without extension). None while paused."""
    if plan_.fast_track is not None:
        return sla.due_at(dn_paid_at, plan_.fast_track, calendar, [p for p in pauses if p[0] >= dn_paid_at])
    after = sla.due_at(dn_paid_at, plan_.after_dn, calendar, [p for p in pauses if p[0] >= dn_paid_at])
    if after is None or plan_.cap is None:
        return after
    cap = sla.due_at(registered_at, plan_.cap, calendar, pauses)
    if cap is None:
        return None
    return min(after, cap)


# --- Mo Bidyut fast track ----------------------------------------------------------------------------


def fast_track_problems(
    doc: Mapping,
    *,
    supply_type: str,
    load_kw: Decimal,
    missing: Sequence[str] = (),
    arrears: bool = False,
    distance_m: int | None = None,
    right_of_way_issue: bool = False,
) -> list[str]:
    """Why an application is not on the fast track (empty: it is). Distance and RoW are known after
    the inspection; before it, they are not held against the applicant."""
    rule = doc["fast_track"]
    problems = []
    if supply_type not in rule["supply_types"]:
        problems.append("not LT single phase")
    if load_kw > Decimal(str(rule["max_load_kw"])):
        problems.append(f"load above {rule['max_load_kw']} kW")
    if missing:
        problems.append("documents incomplete")
    if arrears:
        problems.append("arrears")
    if distance_m is not None and distance_m > int(rule["max_distance_m"]):
        problems.append(f"premises more than {rule['max_distance_m']} m from the connecting point")
    if right_of_way_issue:
        problems.append("right-of-way issue")
    return problems


# --- the demand note ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Line:
    code: str
    label: str
    amount: Decimal

    def as_json(self) -> dict:
        return {"code": self.code, "label": self.label, "amount": str(self.amount)}


def estimated_units(doc: Mapping, *, category: str, load_kw: Decimal) -> Decimal:
    """L x D x H x F: a month's units for the security deposit's estimated bill."""
    est = doc["estimate"]
    hours = Decimal(str(est["hours"].get(category, 8)))
    factor = Decimal(str(est["load_factor"].get(category, "0.3")))
    return (load_kw * int(est["days"]) * hours * factor).quantize(Decimal("0.001"))


def extension_estimate(doc: Mapping, *, distance_m: int, given: Decimal | None) -> Decimal:
    """The engineer's estimate, or the data's rate per metre beyond the free distance."""
    if given is not None and given > 0:
        return paise(given)
    charges = doc["charges"]
    extra = max(int(distance_m) - int(charges["free_distance_m"]), 0)
    return paise(Decimal(str(charges["extension_rate_per_metre"])) * extra)


def temporary_months(start: date, end: date) -> int:
    return max(1, math.ceil(((end - start).days + 1) / 30))


def demand_note_lines(
    doc: Mapping,
    *,
    application_fee: Decimal,
    supply_type: str,
    meter_option: str,
    deposit: Decimal,
    extension: Decimal,
    advance: Decimal = Decimal("0.00"),
) -> list[Line]:
    lines = [Line("application_fee", "Application fee (tariff order [fees])", paise(application_fee))]
    if meter_option == "purchase":
        lines.append(Line("meter_cost", "Meter cost", paise(Decimal(str(doc["charges"]["meter_cost"][supply_type])))))
    if extension > 0:
        lines.append(Line("extension", "Network extension estimate", paise(extension)))
    if advance > 0:
        lines.append(Line("temporary_advance", "Advance: estimated bills for the temporary period", paise(advance)))
    lines.append(Line("security_deposit", "Security deposit", paise(deposit)))
    return lines


def fee_key(doc: Mapping, *, supply_type: str, category: str = "*", which: str = "application") -> str:
    charges = doc["charges"]
    if which == "application":
        return str(charges["application_fee_key"][supply_type])
    for rule in charges["reconnection_fee_key"]:
        if rule["supply_type"] == supply_type and rule["category"] in ("*", category):
            return str(rule["key"])
    raise LookupError(f"no reconnection fee for {category}/{supply_type}")


# --- effective dates of changes ----------------------------------------------------------------------


def first_of_next_month(day: date) -> date:
    return date(day.year + (day.month == 12), day.month % 12 + 1, 1)


def distance_m(lat1, lon1, lat2, lon2) -> float:
    """Great-circle distance in metres (haversine; ample for 'the nearest DT' within a section)."""
    from math import asin, cos, radians, sin, sqrt

    p1, p2 = radians(float(lat1)), radians(float(lat2))
    dp, dl = p2 - p1, radians(float(lon2) - float(lon1))
    h = sin(dp / 2) ** 2 + cos(p1) * cos(p2) * sin(dl / 2) ** 2
    return 2 * 6_371_000 * asin(sqrt(h))
