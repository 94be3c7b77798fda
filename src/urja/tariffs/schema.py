"""Tariff files (TOML) → validated, immutable schedules. Pure: no database access.

A tariff file holds one regulator order (or one mini-grid operator's price list). It has a
`[source]` citation, an `[order]` table with the effective dates, and `[[schedule]]` tables,
one per category / sub-category, plus optional `[[package]]` tables (mini-grids) and a fee
table. docs/tariffs.md documents every key. Any problem raises TariffFileError naming the
file, the line (when it can be found) and the field.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from datetime import date, time
from decimal import Decimal
from typing import Any

from urja.core import ids
from urja.core.money import MoneyError, to_decimal


class TariffFileError(ValueError):
    def __init__(self, file: str, field_path: str, message: str, line: int | None = None):
        self.file, self.field, self.line, self.problem = file, field_path, line, message
        where = f"{file}:{line}" if line else file
        super().__init__(f"{where}: {field_path}: {message}" if field_path else f"{where}: {message}")


# ---------------------------------------------------------------------------------------
# The model (frozen dataclasses; Decimal for every number)


@dataclass(frozen=True)
class Slab:
    upto: Decimal | None  # upper bound of the slab in units per month; None = no upper bound
    rate: Decimal  # Rs per kWh


@dataclass(frozen=True)
class Energy:
    method: str  # telescopic | volumetric
    slabs: tuple[Slab, ...]
    prorate: bool = True  # scale slab widths by the month factor


@dataclass(frozen=True)
class Bracket:
    upto: Decimal | None  # load (kW/kVA) up to which this rate applies; None = above the last
    rate: Decimal  # Rs per kW (or kVA) per month


@dataclass(frozen=True)
class FixedCharge:
    code: str
    name: str
    basis: str  # sanctioned_load | recorded_md | billing_demand | connection
    unit: str  # kW | kVA (ignored for connection)
    brackets: tuple[Bracket, ...]
    bracket_mode: str = "slab_reached"  # slab_reached (all load at the bracket's rate) | telescopic
    minimum_load: Decimal = Decimal(0)
    load_rounding: str = "none"  # none | ceil (whole kW/kVA up)
    billing_demand_percent: Decimal = Decimal(0)  # billing_demand = max(MD, this % of sanctioned)


@dataclass(frozen=True)
class MonthlyCharge:
    code: str
    name: str
    amount: Decimal  # Rs per month (pro-rated)
    waive_upto_load_kw: Decimal | None = None
    waive_if_consumer_meter: bool = False
    meter_types: tuple[str, ...] = ()  # only for these meter types (empty = all)
    unmetered_only: bool = False


@dataclass(frozen=True)
class TodWindow:
    code: str
    name: str
    start: time
    end: time
    adder: Decimal | None = None  # Rs per kWh in the window (negative = discount)
    multiplier: Decimal | None = None  # of the average energy rate
    min_load_kw: Decimal = Decimal(0)  # applies above this sanctioned load (kW)
    smart_meter_only: bool = True


@dataclass(frozen=True)
class Rider:
    code: str
    name: str
    percent: Decimal
    base: tuple[str, ...]


@dataclass(frozen=True)
class Rebate:
    code: str
    name: str
    kind: str  # per_unit | percent | fixed
    value: Decimal
    base: tuple[str, ...] = ("current",)
    when: tuple[tuple[str, Any], ...] = ()  # flag conditions for the rebate to apply
    on_payment: str = ""  # "" (given on the bill) | by_due_date | digital (shown, given at payment)


@dataclass(frozen=True)
class Subsidy:
    code: str
    name: str
    percent: Decimal
    base: tuple[str, ...]
    units_above: Decimal | None = None  # monthly units; the band is (above, upto] (None: from zero)
    units_upto: Decimal | None = None
    cap_per_month: Decimal | None = None
    payer: str = "State government"


@dataclass(frozen=True)
class Minimum:
    amount_per_month: Decimal = Decimal(0)
    per_kw_per_month: Decimal = Decimal(0)
    base: tuple[str, ...] = ("energy", "fixed")


@dataclass(frozen=True)
class Dps:
    percent: Decimal = Decimal(0)
    per: str = "month"  # month | year
    count: str = "started_month"  # started_month | day
    waived: bool = False


@dataclass(frozen=True)
class Package:
    code: str
    package_id: str
    name: str
    site: str
    max_load_w: int
    windows: tuple[tuple[time, time], ...]
    pricing: str  # per_unit | fixed_monthly
    price: Decimal
    mode: str  # prepaid | postpaid
    deposit_months: Decimal = Decimal(1)

    @property
    def hours_per_day(self) -> Decimal:
        total = 0
        for start, end in self.windows:
            s, e = start.hour * 60 + start.minute, end.hour * 60 + end.minute
            total += (e - s) if e > s else (24 * 60 - s + e)
        return Decimal(total) / 60


@dataclass(frozen=True)
class Schedule:
    code: str
    name: str
    order_code: str
    category: str
    sub_categories: tuple[str, ...]
    areas: tuple[str, ...]
    supply_types: tuple[str, ...]
    effective_from: date
    effective_to: date | None
    energy: Energy | None
    fixed: tuple[FixedCharge, ...] = ()
    monthly: tuple[MonthlyCharge, ...] = ()
    tod: tuple[TodWindow, ...] = ()
    riders: tuple[Rider, ...] = ()
    subsidies: tuple[Subsidy, ...] = ()
    rebates: tuple[Rebate, ...] = ()
    minimum: Minimum | None = None
    dps: Dps = field(default_factory=Dps)
    slab_rounding: str = "unit"  # none | unit | floor | ceil — rounding of pro-rated slab widths
    bill_rounding: str = "paise"  # paise | rupee
    power_factor: Decimal = Decimal("0.9")
    deposit_months: Decimal = Decimal(2)
    package: Package | None = None
    unconfirmed: tuple[str, ...] = ()  # keys flagged as not confirmed from the order
    notes: str = ""


@dataclass(frozen=True)
class TariffFile:
    path: str
    code: str
    kind: str  # order | packages
    regulator: str
    reference: str
    order_date: date | None
    effective_from: date
    effective_to: date | None
    source: dict
    schedules: tuple[Schedule, ...]
    fees: dict[str, Decimal]
    raw: dict


# ---------------------------------------------------------------------------------------
# Locating a field in the text (best effort: tomllib does not report positions of values)

_HEADER = re.compile(r"^\s*\[\[?\s*([\w.\-]+)\s*\]\]?\s*(#.*)?$")


def locate(text: str, path: list) -> int | None:
    """Line number (1-based) of the element at `path` (e.g. ["schedule", 1, "energy", "slabs", 2]).

    The line whose TOML path is the longest prefix of `path` wins (a key beats its table header)."""
    counts: dict[str, int] = {}
    table: list = []
    best, best_len = None, -1
    for number, line in enumerate(text.splitlines(), start=1):
        m = _HEADER.match(line)
        if m:
            name = m.group(1)
            if line.strip().startswith("[["):
                counts[name] = counts.get(name, -1) + 1
            table = _table_path(name.split("."), counts)
            here = table
        else:
            stripped = line.strip()
            if not stripped or stripped.startswith("#") or "=" not in stripped:
                continue
            here = [*table, stripped.split("=", 1)[0].strip().strip('"')]
        if len(here) <= len(path) and here == path[: len(here)] and len(here) > best_len:
            best, best_len = number, len(here)
    return best


def _table_path(table: list[str], counts: dict[str, int]) -> list:
    result: list = []
    for i, name in enumerate(table):
        result.append(name)
        joined = ".".join(table[: i + 1])
        if joined in counts:
            result.append(counts[joined])
    return result


# ---------------------------------------------------------------------------------------
# Parsing


class _Reader:
    def __init__(self, file: str, text: str):
        self.file, self.text = file, text

    def fail(self, path: list, message: str):
        label = ""
        for part in path:
            label += f"[{part}]" if isinstance(part, int) else (f".{part}" if label else str(part))
        raise TariffFileError(self.file, label, message, locate(self.text, path))

    def get(self, table: dict, path: list, key: str, kind, *, required: bool = True, default=None):
        if key not in table:
            if required:
                self.fail([*path, key], "is required")
            return default
        value = table[key]
        p = [*path, key]
        if kind is Decimal:
            if isinstance(value, bool) or not isinstance(value, int | float | str):
                self.fail(p, f"must be a number, got {value!r}")
            try:
                return to_decimal(value)
            except MoneyError:
                self.fail(p, f"must be a number, got {value!r}")
        if kind is date:
            if isinstance(value, date) and not hasattr(value, "hour"):
                return value
            if isinstance(value, str):
                try:
                    return date.fromisoformat(value)
                except ValueError:
                    pass
            self.fail(p, f"must be a date (YYYY-MM-DD), got {value!r}")
        if kind is time:
            if isinstance(value, time):
                return value
            if isinstance(value, str) and re.fullmatch(r"\d{2}:\d{2}", value):
                hh, mm = int(value[:2]), int(value[3:])
                if hh == 24 and mm == 0:
                    return time(0, 0)
                if hh < 24 and mm < 60:
                    return time(hh, mm)
            self.fail(p, f"must be a clock time HH:MM, got {value!r}")
        if kind is bool:
            if not isinstance(value, bool):
                self.fail(p, f"must be true or false, got {value!r}")
            return value
        if kind is str:
            if not isinstance(value, str) or not value.strip():
                self.fail(p, f"must be a non-empty string, got {value!r}")
            return value.strip()
        if kind is list:
            if not isinstance(value, list):
                self.fail(p, f"must be a list, got {value!r}")
            return value
        if kind is dict:
            if not isinstance(value, dict):
                self.fail(p, f"must be a table, got {value!r}")
            return value
        if kind is int:
            if isinstance(value, bool) or not isinstance(value, int):
                self.fail(p, f"must be a whole number, got {value!r}")
            return value
        raise AssertionError(kind)

    def choice(self, table, path, key, allowed, default=None):
        value = self.get(table, path, key, str, required=default is None, default=default)
        if value not in allowed:
            self.fail([*path, key], f"must be one of {', '.join(allowed)}; got {value!r}")
        return value

    def strings(self, table, path, key, default=()):
        value = self.get(table, path, key, list, required=False, default=None)
        if value is None:
            return tuple(default)
        for i, item in enumerate(value):
            if not isinstance(item, str) or not item:
                self.fail([*path, key, i], f"must be a string, got {item!r}")
        return tuple(value)

    def unknown(self, table: dict, path: list, allowed: set[str]):
        for key in table:
            if key not in allowed:
                self.fail([*path, key], f"unknown field (allowed: {', '.join(sorted(allowed))})")


CODE = re.compile(r"^[A-Za-z0-9_.\-]+$")
BASE_GROUPS = {"energy", "fixed", "tod", "monthly", "minimum", "current", "rider", "subsidy", "net"}


def parse_text(text: str, *, file: str = "<tariff>") -> TariffFile:
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        m = re.search(r"line (\d+)", str(exc))
        raise TariffFileError(file, "", f"not valid TOML: {exc}", int(m.group(1)) if m else None) from exc
    r = _Reader(file, text)
    r.unknown(doc, [], {"source", "order", "schedule", "package", "package_set", "fees"})
    source = r.get(doc, [], "source", dict)
    for key in ("document",):
        r.get(source, ["source"], key, str)
    order = r.get(doc, [], "order", dict)
    r.unknown(
        order,
        ["order"],
        {
            "code",
            "regulator",
            "reference",
            "order_date",
            "effective_from",
            "effective_to",
            "power_factor",
            "slab_rounding",
            "bill_rounding",
            "notes",
        },
    )
    code = r.get(order, ["order"], "code", str)
    if not CODE.match(code):
        r.fail(["order", "code"], "may contain only letters, digits, '.', '_' and '-'")
    eff_from = r.get(order, ["order"], "effective_from", date)
    eff_to = r.get(order, ["order"], "effective_to", date, required=False)
    if eff_to is not None and eff_to < eff_from:
        r.fail(["order", "effective_to"], f"{eff_to} is before effective_from {eff_from}")
    defaults = {
        "power_factor": r.get(order, ["order"], "power_factor", Decimal, required=False, default=Decimal("0.9")),
        "slab_rounding": r.choice(order, ["order"], "slab_rounding", ("none", "unit", "floor", "ceil"), "unit"),
        "bill_rounding": r.choice(order, ["order"], "bill_rounding", ("paise", "rupee"), "paise"),
    }
    meta = {"code": code, "from": eff_from, "to": eff_to}
    schedules = []
    seen: set[str] = set()
    for i, table in enumerate(doc.get("schedule", [])):
        schedule = _schedule(r, table, ["schedule", i], meta, defaults)
        if schedule.code in seen:
            r.fail(["schedule", i, "code"], f"schedule {schedule.code!r} appears twice in this file")
        seen.add(schedule.code)
        schedules.append(schedule)
    kind = "order"
    if "package" in doc:
        kind = "packages"
        pset = r.get(doc, [], "package_set", dict)
        for i, table in enumerate(doc["package"]):
            schedule = _package(r, table, ["package", i], pset, meta, defaults)
            if schedule.code in seen:
                r.fail(["package", i, "code"], f"package {schedule.code!r} appears twice in this file")
            seen.add(schedule.code)
            schedules.append(schedule)
    if not schedules:
        r.fail([], "a tariff file needs at least one [[schedule]] or [[package]]")
    fees = {}
    for key, _value in doc.get("fees", {}).items():
        fees[key] = r.get(doc["fees"], ["fees"], key, Decimal)
    return TariffFile(
        path=file,
        code=code,
        kind=kind,
        regulator=r.get(order, ["order"], "regulator", str),
        reference=r.get(order, ["order"], "reference", str),
        order_date=r.get(order, ["order"], "order_date", date, required=False),
        effective_from=eff_from,
        effective_to=eff_to,
        source=_jsonable(source),
        schedules=tuple(schedules),
        fees=fees,
        raw=_jsonable(doc),
    )


def _jsonable(value):
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, date | time):
        return value.isoformat()
    return value


SCHEDULE_KEYS = {
    "code",
    "name",
    "category",
    "sub_categories",
    "areas",
    "supply_types",
    "effective_from",
    "effective_to",
    "energy",
    "fixed",
    "monthly_charge",
    "tod",
    "rider",
    "subsidy",
    "rebate",
    "minimum",
    "dps",
    "slab_rounding",
    "bill_rounding",
    "power_factor",
    "deposit_months",
    "unconfirmed",
    "notes",
}


def _schedule(r: _Reader, t: dict, p: list, meta: dict, defaults: dict) -> Schedule:
    r.unknown(t, p, SCHEDULE_KEYS)
    code = r.get(t, p, "code", str)
    if not CODE.match(code):
        r.fail([*p, "code"], "may contain only letters, digits, '.', '_' and '-'")
    eff_from = r.get(t, p, "effective_from", date, required=False, default=meta["from"])
    eff_to = r.get(t, p, "effective_to", date, required=False, default=meta["to"])
    if eff_to is not None and eff_to < eff_from:
        r.fail([*p, "effective_to"], f"{eff_to} is before effective_from {eff_from}")
    energy = None
    if "energy" in t:
        energy = _energy(r, r.get(t, p, "energy", dict), [*p, "energy"])
    fixed = tuple(
        _fixed(r, x, [*p, "fixed", i]) for i, x in enumerate(r.get(t, p, "fixed", list, required=False, default=[]))
    )
    monthly = tuple(
        _monthly(r, x, [*p, "monthly_charge", i])
        for i, x in enumerate(r.get(t, p, "monthly_charge", list, required=False, default=[]))
    )
    tod = tuple(_tod(r, x, [*p, "tod", i]) for i, x in enumerate(r.get(t, p, "tod", list, required=False, default=[])))
    riders = tuple(
        _rider(r, x, [*p, "rider", i]) for i, x in enumerate(r.get(t, p, "rider", list, required=False, default=[]))
    )
    subsidies = tuple(
        _subsidy(r, x, [*p, "subsidy", i])
        for i, x in enumerate(r.get(t, p, "subsidy", list, required=False, default=[]))
    )
    rebates = tuple(
        _rebate(r, x, [*p, "rebate", i]) for i, x in enumerate(r.get(t, p, "rebate", list, required=False, default=[]))
    )
    minimum = None
    if "minimum" in t:
        m = r.get(t, p, "minimum", dict)
        mp = [*p, "minimum"]
        r.unknown(m, mp, {"amount_per_month", "per_kw_per_month", "base"})
        minimum = Minimum(
            amount_per_month=r.get(m, mp, "amount_per_month", Decimal, required=False, default=Decimal(0)),
            per_kw_per_month=r.get(m, mp, "per_kw_per_month", Decimal, required=False, default=Decimal(0)),
            base=r.strings(m, mp, "base", ("energy", "fixed")),
        )
    dps = Dps()
    if "dps" in t:
        d = r.get(t, p, "dps", dict)
        dp = [*p, "dps"]
        r.unknown(d, dp, {"percent", "per", "count", "waived"})
        dps = Dps(
            percent=r.get(d, dp, "percent", Decimal, required=False, default=Decimal(0)),
            per=r.choice(d, dp, "per", ("month", "year"), "month"),
            count=r.choice(d, dp, "count", ("started_month", "day"), "started_month"),
            waived=r.get(d, dp, "waived", bool, required=False, default=False),
        )
    schedule = Schedule(
        code=code,
        name=r.get(t, p, "name", str),
        order_code=meta["code"],
        category=r.get(t, p, "category", str),
        sub_categories=r.strings(t, p, "sub_categories", ("general",)),
        areas=r.strings(t, p, "areas", ("urban", "rural")),
        supply_types=r.strings(t, p, "supply_types", ()),
        effective_from=eff_from,
        effective_to=eff_to,
        energy=energy,
        fixed=fixed,
        monthly=monthly,
        tod=tod,
        riders=riders,
        subsidies=subsidies,
        rebates=rebates,
        minimum=minimum,
        dps=dps,
        slab_rounding=r.choice(t, p, "slab_rounding", ("none", "unit", "floor", "ceil"), defaults["slab_rounding"]),
        bill_rounding=r.choice(t, p, "bill_rounding", ("paise", "rupee"), defaults["bill_rounding"]),
        power_factor=r.get(t, p, "power_factor", Decimal, required=False, default=defaults["power_factor"]),
        deposit_months=r.get(t, p, "deposit_months", Decimal, required=False, default=Decimal(2)),
        unconfirmed=r.strings(t, p, "unconfirmed", ()),
        notes=t.get("notes", ""),
    )
    _check_bases(r, schedule, p)
    return schedule


def _check_bases(r: _Reader, s: Schedule, p: list) -> None:
    known = set(BASE_GROUPS)
    known |= {f.code for f in s.fixed} | {m.code for m in s.monthly} | {w.code for w in s.tod}
    if s.energy:
        known |= {f"EC{i + 1}" for i in range(len(s.energy.slabs))}
    for i, rider in enumerate(s.riders):
        for name in rider.base:
            if name not in known:
                r.fail([*p, "rider", i, "base"], f"unknown subtotal {name!r} (known here: {', '.join(sorted(known))})")
        known.add(rider.code)
    for kind, items in (("subsidy", s.subsidies), ("rebate", s.rebates)):
        for i, item in enumerate(items):
            for name in item.base:
                if name not in known:
                    r.fail([*p, kind, i, "base"], f"unknown subtotal {name!r} (known: {', '.join(sorted(known))})")
    if s.minimum:
        for name in s.minimum.base:
            if name not in known:
                r.fail([*p, "minimum", "base"], f"unknown subtotal {name!r}")


def _energy(r: _Reader, t: dict, p: list) -> Energy:
    r.unknown(t, p, {"method", "slabs", "prorate"})
    method = r.choice(t, p, "method", ("telescopic", "volumetric"), "telescopic")
    raw = r.get(t, p, "slabs", list)
    if not raw:
        r.fail([*p, "slabs"], "needs at least one slab")
    slabs = []
    last = Decimal(0)
    for i, s in enumerate(raw):
        if not isinstance(s, dict):
            r.fail([*p, "slabs", i], "must be a table {upto = …, rate = …}")
        r.unknown(s, [*p, "slabs", i], {"upto", "rate"})
        upto = r.get(s, [*p, "slabs", i], "upto", Decimal, required=False)
        rate = r.get(s, [*p, "slabs", i], "rate", Decimal)
        if upto is None and i != len(raw) - 1:
            r.fail([*p, "slabs", i, "upto"], "only the last slab may be open-ended")
        if upto is not None and upto <= last:
            r.fail([*p, "slabs", i, "upto"], f"slab bounds must increase ({upto} after {last})")
        if upto is not None:
            last = upto
        slabs.append(Slab(upto, rate))
    if slabs[-1].upto is not None:
        slabs.append(Slab(None, slabs[-1].rate))
    return Energy(method=method, slabs=tuple(slabs), prorate=r.get(t, p, "prorate", bool, required=False, default=True))


def _fixed(r: _Reader, t: dict, p: list) -> FixedCharge:
    r.unknown(
        t,
        p,
        {
            "code",
            "name",
            "basis",
            "unit",
            "rate",
            "brackets",
            "bracket_mode",
            "minimum_load",
            "load_rounding",
            "billing_demand_percent",
        },
    )
    basis = r.choice(t, p, "basis", ("sanctioned_load", "recorded_md", "billing_demand", "connection"))
    if "rate" in t and "brackets" in t:
        r.fail([*p, "rate"], "give either rate or brackets, not both")
    if "rate" in t:
        brackets = (Bracket(None, r.get(t, p, "rate", Decimal)),)
    else:
        raw = r.get(t, p, "brackets", list)
        items = []
        last = Decimal(0)
        for i, b in enumerate(raw):
            bp = [*p, "brackets", i]
            if not isinstance(b, dict):
                r.fail(bp, "must be a table {upto = …, rate = …}")
            upto = r.get(b, bp, "upto", Decimal, required=False)
            if upto is None and i != len(raw) - 1:
                r.fail([*bp, "upto"], "only the last bracket may be open-ended")
            if upto is not None and upto <= last:
                r.fail([*bp, "upto"], "bracket bounds must increase")
            last = upto if upto is not None else last
            items.append(Bracket(upto, r.get(b, bp, "rate", Decimal)))
        if not items:
            r.fail([*p, "brackets"], "needs at least one bracket")
        if items[-1].upto is not None:
            items.append(Bracket(None, items[-1].rate))
        brackets = tuple(items)
    return FixedCharge(
        code=r.get(t, p, "code", str),
        name=r.get(t, p, "name", str),
        basis=basis,
        unit=r.choice(t, p, "unit", ("kW", "kVA"), "kW"),
        brackets=brackets,
        bracket_mode=r.choice(t, p, "bracket_mode", ("slab_reached", "telescopic"), "slab_reached"),
        minimum_load=r.get(t, p, "minimum_load", Decimal, required=False, default=Decimal(0)),
        load_rounding=r.choice(t, p, "load_rounding", ("none", "ceil"), "none"),
        billing_demand_percent=r.get(t, p, "billing_demand_percent", Decimal, required=False, default=Decimal(0)),
    )


def _monthly(r: _Reader, t: dict, p: list) -> MonthlyCharge:
    r.unknown(
        t,
        p,
        {"code", "name", "amount", "waive_upto_load_kw", "waive_if_consumer_meter", "meter_types", "unmetered_only"},
    )
    return MonthlyCharge(
        code=r.get(t, p, "code", str),
        name=r.get(t, p, "name", str),
        amount=r.get(t, p, "amount", Decimal),
        waive_upto_load_kw=r.get(t, p, "waive_upto_load_kw", Decimal, required=False),
        waive_if_consumer_meter=r.get(t, p, "waive_if_consumer_meter", bool, required=False, default=False),
        meter_types=r.strings(t, p, "meter_types", ()),
        unmetered_only=r.get(t, p, "unmetered_only", bool, required=False, default=False),
    )


def _tod(r: _Reader, t: dict, p: list) -> TodWindow:
    r.unknown(t, p, {"code", "name", "start", "end", "adder", "multiplier", "min_load_kw", "smart_meter_only"})
    adder = r.get(t, p, "adder", Decimal, required=False)
    multiplier = r.get(t, p, "multiplier", Decimal, required=False)
    if (adder is None) == (multiplier is None):
        r.fail([*p, "adder"], "give exactly one of adder (Rs/kWh) or multiplier")
    return TodWindow(
        code=r.get(t, p, "code", str),
        name=r.get(t, p, "name", str),
        start=r.get(t, p, "start", time),
        end=r.get(t, p, "end", time),
        adder=adder,
        multiplier=multiplier,
        min_load_kw=r.get(t, p, "min_load_kw", Decimal, required=False, default=Decimal(0)),
        smart_meter_only=r.get(t, p, "smart_meter_only", bool, required=False, default=True),
    )


def _rider(r: _Reader, t: dict, p: list) -> Rider:
    r.unknown(t, p, {"code", "name", "percent", "base"})
    base = r.strings(t, p, "base")
    if not base:
        r.fail([*p, "base"], "is required (the subtotals the percentage applies to)")
    return Rider(
        code=r.get(t, p, "code", str), name=r.get(t, p, "name", str), percent=r.get(t, p, "percent", Decimal), base=base
    )


WHEN_FLAGS = {"area", "e_bill", "prepaid", "smart_meter", "metered", "meter_owner"}


def _rebate(r: _Reader, t: dict, p: list) -> Rebate:
    r.unknown(t, p, {"code", "name", "kind", "value", "base", "when", "on_payment"})
    when = r.get(t, p, "when", dict, required=False, default={})
    for key in when:
        if key not in WHEN_FLAGS:
            r.fail([*p, "when", key], f"unknown condition (allowed: {', '.join(sorted(WHEN_FLAGS))})")
    return Rebate(
        code=r.get(t, p, "code", str),
        name=r.get(t, p, "name", str),
        kind=r.choice(t, p, "kind", ("per_unit", "percent", "fixed")),
        value=r.get(t, p, "value", Decimal),
        base=r.strings(t, p, "base", ("current",)),
        when=tuple(sorted(when.items())),
        on_payment=r.choice(t, p, "on_payment", ("", "by_due_date", "digital"), ""),
    )


def _subsidy(r: _Reader, t: dict, p: list) -> Subsidy:
    r.unknown(t, p, {"code", "name", "percent", "base", "units_above", "units_upto", "cap_per_month", "payer"})
    return Subsidy(
        code=r.get(t, p, "code", str),
        name=r.get(t, p, "name", str),
        percent=r.get(t, p, "percent", Decimal),
        base=r.strings(t, p, "base", ("current",)),
        units_above=r.get(t, p, "units_above", Decimal, required=False),
        units_upto=r.get(t, p, "units_upto", Decimal, required=False),
        cap_per_month=r.get(t, p, "cap_per_month", Decimal, required=False),
        payer=t.get("payer", "State government"),
    )


PACKAGE_KEYS = {"code", "name", "class", "max_load_w", "windows", "pricing", "price", "mode", "deposit_months"}


def _package(r: _Reader, t: dict, p: list, pset: dict, meta: dict, defaults: dict) -> Schedule:
    r.unknown(t, p, PACKAGE_KEYS)
    site = r.get(pset, ["package_set"], "site", str)
    template = r.get(pset, ["package_set"], "package_id_template", str)
    code = r.get(t, p, "code", str)
    windows_raw = r.get(t, p, "windows", list)
    windows = []
    for i, w in enumerate(windows_raw):
        if not isinstance(w, str) or not re.fullmatch(r"\d{2}:\d{2}-\d{2}:\d{2}", w):
            r.fail([*p, "windows", i], f"must look like '18:00-23:00', got {w!r}")
        a, b = w.split("-")
        windows.append((r.get({"v": a}, [*p, "windows", i], "v", time), r.get({"v": b}, [*p, "windows", i], "v", time)))
    if not windows:
        r.fail([*p, "windows"], "needs at least one supply window")
    pricing = r.choice(t, p, "pricing", ("per_unit", "fixed_monthly"))
    mode = r.choice(t, p, "mode", ("prepaid", "postpaid"))
    price = r.get(t, p, "price", Decimal)
    max_load_w = r.get(t, p, "max_load_w", int)
    klass = r.get(t, p, "class", str, required=False, default="H")
    pkg = Package(
        code=code,
        package_id="",
        name=r.get(t, p, "name", str),
        site=site,
        max_load_w=max_load_w,
        windows=tuple(windows),
        pricing=pricing,
        price=price,
        mode=mode,
        deposit_months=r.get(t, p, "deposit_months", Decimal, required=False, default=Decimal(1)),
    )
    try:
        package_id = ids.render_number(
            template,
            seq=0,
            fields={
                "site": site,
                "class": klass,
                "load": str(max_load_w),
                "hours": str(int(pkg.hours_per_day)),
                "pricing": "U" if pricing == "per_unit" else "F",
                "mode": "P" if mode == "prepaid" else "B",
            },
        )
    except ids.TemplateError as exc:
        r.fail(["package_set", "package_id_template"], str(exc))
    pkg = Package(**{**pkg.__dict__, "package_id": package_id})
    if pricing == "per_unit":
        energy = Energy("telescopic", (Slab(None, price),), prorate=False)
        monthly: tuple = ()
    else:
        energy = None
        monthly = (MonthlyCharge("PKG", f"Package {pkg.name} (fixed monthly)", price),)
    return Schedule(
        code=code,
        name=pkg.name,
        order_code=meta["code"],
        category="minigrid",
        sub_categories=r.strings(pset, ["package_set"], "sub_categories", ("household", "business", "productive")),
        areas=("urban", "rural"),
        supply_types=(),
        effective_from=meta["from"],
        effective_to=meta["to"],
        energy=energy,
        monthly=monthly,
        slab_rounding=defaults["slab_rounding"],
        bill_rounding=defaults["bill_rounding"],
        deposit_months=pkg.deposit_months,
        package=pkg,
    )


def parse_file(path) -> TariffFile:
    from pathlib import Path

    file = Path(path)
    return parse_text(file.read_text(encoding="utf-8"), file=str(file))
