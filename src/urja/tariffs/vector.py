"""The tariff engine, vectorised (numpy) for bill runs. Pure: no database.

Every account of a batch shares the tariff segments and the period; everything per account is
an int64 array: energy in milli-kWh, loads in milli-kW/kVA, money in paise. Rates are scaled to
integers (Rs × 10^4), and every line is rounded exactly once, half away from zero, like the
scalar reference (`engine.py`); tests/test_vector.py checks both agree to the paisa (hypothesis).
Amounts scaled by a rational month factor use Python integers on the (few) distinct values.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction

import numpy as np

from . import engine
from .schema import FixedCharge, Schedule

METER_TYPES = {"static": 0, "smart": 1, "prepaid": 2}
E4 = 10_000


def _i(value: Decimal, scale: int = E4) -> int:
    scaled = value * scale
    if scaled != scaled.to_integral_value():
        raise ValueError(f"{value} has more than {len(str(scale)) - 1} decimal places")
    return int(scaled)


def rhu(num: np.ndarray, den: int) -> np.ndarray:
    """num / den rounded half away from zero (den > 0), integer arrays (int64 or object)."""
    q = (2 * abs(num) + den) // (2 * den)
    return np.where(num < 0, -q, q)


def rhu_int(num: int, den: int) -> int:
    q = (2 * abs(num) + den) // (2 * den)
    return -q if num < 0 else q


def frac_paise(value: Fraction) -> int:
    """A rupee amount given as a fraction → paise, half away from zero."""
    v = value * 100
    return rhu_int(v.numerator, v.denominator)


@dataclass
class Batch:
    units: np.ndarray  # milli-kWh
    load: np.ndarray  # sanctioned load, milli-units of `load_kva`'s unit
    load_kva: np.ndarray  # bool: load given in kVA (else kW)
    md: np.ndarray | None = None  # milli-units, -1 = not recorded
    tod: dict[str, np.ndarray] = field(default_factory=dict)  # milli-kWh, -1 = no register
    rural: np.ndarray | None = None
    metered: np.ndarray | None = None
    meter_type: np.ndarray | None = None  # METER_TYPES codes
    consumer_meter: np.ndarray | None = None
    e_bill: np.ndarray | None = None
    prepaid: np.ndarray | None = None
    overdue: np.ndarray | None = None  # paise
    overdue_days: np.ndarray | None = None
    extra: np.ndarray | None = None  # paise of one-off charges (fees, instalments)

    def __post_init__(self):
        n = len(self.units)
        self.units = np.asarray(self.units, dtype=np.int64)
        self.load = np.asarray(self.load, dtype=np.int64)
        self.load_kva = np.asarray(self.load_kva, dtype=bool)
        zeros_b = np.zeros(n, dtype=bool)
        zeros_i = np.zeros(n, dtype=np.int64)
        self.md = np.full(n, -1, dtype=np.int64) if self.md is None else np.asarray(self.md, dtype=np.int64)
        self.rural = zeros_b if self.rural is None else np.asarray(self.rural, dtype=bool)
        self.metered = np.ones(n, dtype=bool) if self.metered is None else np.asarray(self.metered, dtype=bool)
        self.meter_type = zeros_i if self.meter_type is None else np.asarray(self.meter_type, dtype=np.int64)
        self.consumer_meter = zeros_b if self.consumer_meter is None else np.asarray(self.consumer_meter, dtype=bool)
        self.e_bill = zeros_b if self.e_bill is None else np.asarray(self.e_bill, dtype=bool)
        self.prepaid = zeros_b if self.prepaid is None else np.asarray(self.prepaid, dtype=bool)
        self.overdue = zeros_i if self.overdue is None else np.asarray(self.overdue, dtype=np.int64)
        self.overdue_days = zeros_i if self.overdue_days is None else np.asarray(self.overdue_days, dtype=np.int64)
        self.extra = zeros_i if self.extra is None else np.asarray(self.extra, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.units)


@dataclass
class Result:
    """Per-account amounts in paise: by line code (summed over segments) and by group."""

    codes: dict[str, np.ndarray]
    groups: dict[str, np.ndarray]
    code_group: dict[str, str]

    @property
    def total(self) -> np.ndarray:
        return sum(
            (a for g, a in self.groups.items() if not g.startswith("conditional")), np.zeros_like(self.groups["energy"])
        )

    def conditional(self, on_payment: str) -> np.ndarray:
        key = f"conditional:{on_payment}"
        return self.groups.get(key, np.zeros_like(self.groups["energy"]))


GROUPS = (*engine.TOTAL_GROUPS, "conditional")


class _Lines:
    def __init__(self, n: int):
        self.n = n
        self.items: list[tuple[str, str, np.ndarray]] = []

    def add(self, code: str, group: str, amount: np.ndarray):
        self.items.append((code, group, np.asarray(amount, dtype=np.int64)))

    def subtotal(self, names: Sequence[str]) -> np.ndarray:
        total = np.zeros(self.n, dtype=np.int64)
        for code, group, amount in self.items:
            if group.startswith("conditional"):
                continue
            for name in names:
                if (
                    code == name
                    or group == name
                    or (name == "current" and group in engine.CHARGE_GROUPS)
                    or (name == "net" and group in (*engine.CHARGE_GROUPS, "subsidy"))
                ):
                    total = total + amount
                    break
        return total


def _convert(values: np.ndarray, kva: np.ndarray, to_unit: str, pf_e4: int) -> np.ndarray:
    """Loads (milli) given in kW or kVA per account → `to_unit`, rounded to 0.001 like the scalar."""
    converted = rhu(values * pf_e4, E4) if to_unit == "kW" else rhu(values * E4, pf_e4)
    return np.where(kva == (to_unit == "kVA"), values, np.where(values < 0, values, converted))


def _fixed_monthly_e7(charge: FixedCharge, load_milli: int) -> int:
    """Monthly amount for a load, in Rs × 10^7 (milli-load × Rs×10^4)."""
    if charge.bracket_mode == "slab_reached":
        for b in charge.brackets:
            if b.upto is None or load_milli <= _i(b.upto, 1000):
                return load_milli * _i(b.rate)
    total, lower = 0, 0
    for b in charge.brackets:
        upper = load_milli if b.upto is None else min(load_milli, _i(b.upto, 1000))
        if upper > lower:
            total += (upper - lower) * _i(b.rate)
        if b.upto is None or load_milli <= _i(b.upto, 1000):
            break
        lower = _i(b.upto, 1000)
    return total


def _when_mask(batch: Batch, when) -> np.ndarray:
    mask = np.ones(len(batch), dtype=bool)
    for key, value in when:
        if key == "area":
            mask &= batch.rural == (value == "rural")
        elif key == "e_bill":
            mask &= batch.e_bill == bool(value)
        elif key == "prepaid":
            mask &= batch.prepaid == bool(value)
        elif key == "smart_meter":
            mask &= (batch.meter_type == METER_TYPES["smart"]) == bool(value)
        elif key == "metered":
            mask &= batch.metered == bool(value)
        elif key == "meter_owner":
            mask &= batch.consumer_meter == (value == "consumer")
    return mask


def _segment(s: Schedule, seg: engine.Segment, batch: Batch, units: np.ndarray, tod: dict, last: bool) -> _Lines:
    n = len(batch)
    f = engine.month_factor(seg.start, seg.end)
    lines = _Lines(n)
    pf_e4 = _i(s.power_factor)
    load_kw = _convert(batch.load, batch.load_kva, "kW", pf_e4)

    if s.energy:
        bounds = engine.scaled_bounds([sl.upto for sl in s.energy.slabs], f, s.slab_rounding, s.energy.prorate)
        ubounds = [None if b is None else _i(b, 1000) for b in bounds]
        u = np.where(batch.metered, units, 0)
        if s.energy.method == "telescopic":
            lower = 0
            for i, (sl, upper) in enumerate(zip(s.energy.slabs, ubounds, strict=True)):
                q = np.maximum(u - lower, 0) if upper is None else np.clip(u - lower, 0, upper - lower)
                lines.add(f"EC{i + 1}", "energy", rhu(q * _i(sl.rate), 100_000))
                if upper is None:
                    break
                lower = upper
        else:
            chosen = np.full(n, -1, dtype=np.int64)
            for i, upper in enumerate(ubounds):
                hit = (chosen < 0) & (True if upper is None else (u <= upper))
                chosen = np.where(hit, i, chosen)
            for i, sl in enumerate(s.energy.slabs):
                lines.add(f"EC{i + 1}", "energy", np.where(chosen == i, rhu(u * _i(sl.rate), 100_000), 0))
    energy_total = lines.subtotal(["energy"])

    for w in s.tod:
        if w.code not in tod:
            continue
        wu = tod[w.code]
        mask = (wu >= 0) & (load_kw > _i(w.min_load_kw, 1000))
        if w.smart_meter_only:
            mask &= batch.meter_type == METER_TYPES["smart"]
        if w.adder is not None:
            amount = rhu(np.maximum(wu, 0) * _i(w.adder), 100_000)
        else:
            num = energy_total.astype(object) * np.maximum(wu, 0).astype(object) * (_i(w.multiplier) - E4)
            den = np.maximum(units, 1).astype(object) * E4
            q = (2 * abs(num) + den) // (2 * den)
            amount = np.where(num < 0, -q, q).astype(np.int64)
            mask &= units > 0
        lines.add(w.code, "tod", np.where(mask, amount, 0))

    for charge in s.fixed:
        if charge.basis == "connection":
            lines.add(
                charge.code, "fixed", np.full(n, frac_paise(Fraction(charge.brackets[0].rate) * f), dtype=np.int64)
            )
            continue
        sanctioned = _convert(batch.load, batch.load_kva, charge.unit, pf_e4)
        md = _convert(batch.md, batch.load_kva, charge.unit, pf_e4)
        if charge.basis == "sanctioned_load":
            load = sanctioned
        elif charge.basis == "recorded_md":
            load = np.where(batch.md >= 0, md, sanctioned)
        else:
            floor = rhu(sanctioned * _i(charge.billing_demand_percent), 100 * E4)
            recorded = np.where(batch.md >= 0, md, 0)
            load = np.where(recorded >= floor, recorded, floor)
        if charge.load_rounding == "ceil":
            load = -((-load) // 1000) * 1000
        load = np.maximum(load, _i(charge.minimum_load, 1000))
        distinct, inverse = np.unique(load, return_inverse=True)
        amounts = np.array(
            [rhu_int(_fixed_monthly_e7(charge, int(v)) * f.numerator, f.denominator * 100_000) for v in distinct],
            dtype=np.int64,
        )
        lines.add(charge.code, "fixed", amounts[inverse.reshape(-1)])

    for mc in s.monthly:
        mask = np.ones(n, dtype=bool)
        if mc.meter_types:
            mask &= np.isin(batch.meter_type, [METER_TYPES[t] for t in mc.meter_types if t in METER_TYPES])
        if mc.unmetered_only:
            mask &= ~batch.metered
        waived = np.zeros(n, dtype=bool)
        if mc.waive_upto_load_kw is not None:
            waived |= load_kw <= _i(mc.waive_upto_load_kw, 1000)
        if mc.waive_if_consumer_meter:
            waived |= batch.consumer_meter
        amount = frac_paise(Fraction(mc.amount) * f)
        lines.add(mc.code, "monthly", np.where(mask & ~waived, amount, 0))

    if s.minimum:
        num = _i(s.minimum.amount_per_month) * 1000 + _i(s.minimum.per_kw_per_month) * load_kw.astype(object)
        minimum = rhu(num * f.numerator, f.denominator * 100_000).astype(np.int64)
        have = lines.subtotal(s.minimum.base)
        lines.add("MIN", "minimum", np.where(have < minimum, minimum - have, 0))

    for rider in s.riders:
        if rider.percent == 0:
            continue
        lines.add(rider.code, "rider", rhu(lines.subtotal(rider.base) * _i(rider.percent), 100 * E4))

    for sub in s.subsidies:
        above = (
            -1
            if sub.units_above is None
            else _i(engine.round_units(Fraction(sub.units_above) * f, s.slab_rounding), 1000)
        )
        mask = units > above
        if sub.units_upto is not None:
            mask &= units <= _i(engine.round_units(Fraction(sub.units_upto) * f, s.slab_rounding), 1000)
        amount = rhu(lines.subtotal(sub.base) * _i(sub.percent), 100 * E4)
        if sub.cap_per_month is not None:
            amount = np.minimum(amount, frac_paise(Fraction(sub.cap_per_month) * f))
        lines.add(sub.code, "subsidy", np.where(mask, -amount, 0))

    for rb in s.rebates:
        if rb.kind == "fixed" and not last:
            continue
        mask = _when_mask(batch, rb.when)
        if rb.kind == "per_unit":
            amount = rhu(units * _i(rb.value), 100_000)
        elif rb.kind == "percent":
            amount = rhu(lines.subtotal(rb.base) * _i(rb.value), 100 * E4)
        else:
            amount = np.full(n, _i(rb.value, 100), dtype=np.int64)
        group = f"conditional:{rb.on_payment}" if rb.on_payment else "rebate"
        lines.add(rb.code, group, np.where(mask, -np.maximum(amount, 0), 0))  # a rebate is a credit
    return lines


def _apportion(values: np.ndarray, segments: Sequence[engine.Segment]) -> list[np.ndarray]:
    days = sum(s.days for s in segments)
    parts = [rhu(values * s.days, days) for s in segments[:-1]]
    return [*parts, values - sum(parts, np.zeros_like(values))]


def calculate(segments: Sequence[engine.Segment], batch: Batch) -> Result:
    n = len(batch)
    units = np.where(batch.metered, batch.units, 0)
    unit_parts = _apportion(units, segments)
    tod_parts = {}
    for code, arr in batch.tod.items():
        arr = np.asarray(arr, dtype=np.int64)
        parts = _apportion(np.maximum(arr, 0), segments)
        tod_parts[code] = [np.where(arr >= 0, p, -1) for p in parts]
    codes: dict[str, np.ndarray] = {}
    code_group: dict[str, str] = {}
    groups = {g: np.zeros(n, dtype=np.int64) for g in GROUPS}

    def put(code, group, amount):
        codes[code] = codes.get(code, np.zeros(n, dtype=np.int64)) + amount
        code_group[code] = group
        groups[group] = groups.get(group, np.zeros(n, dtype=np.int64)) + amount
        if group.startswith("conditional:"):
            groups["conditional"] = groups["conditional"] + amount

    for i, seg in enumerate(segments):
        tod = {code: parts[i] for code, parts in tod_parts.items()}
        for code, group, amount in _segment(seg.schedule, seg, batch, unit_parts[i], tod, i == len(segments) - 1).items:
            put(code, group, amount)
    s = segments[-1].schedule
    if not (s.dps.waived or s.dps.percent == 0):
        mask = (batch.overdue > 0) & (batch.overdue_days > 0)
        if mask.any():
            days = batch.overdue_days.astype(object)
            months = -((-days) // 30)
            if s.dps.per == "month":
                pnum, pden = (months, 1) if s.dps.count == "started_month" else (days, 30)
            else:
                pnum, pden = (months, 12) if s.dps.count == "started_month" else (days, 365)
            num = batch.overdue.astype(object) * _i(s.dps.percent) * pnum
            den = 100 * E4 * pden
            q = (2 * abs(num) + den) // (2 * den)
            put("DPS", "dps", np.where(mask, q, 0).astype(np.int64))
    if batch.extra.any():
        put("EXTRA", "extra", batch.extra)
    if s.bill_rounding == "rupee":
        total = sum(
            (a for g, a in groups.items() if g != "conditional" and not g.startswith("conditional:")),
            np.zeros(n, dtype=np.int64),
        )
        put("RND", "rounding", rhu(total, 100) * 100 - total)
    result_groups = {g: a for g, a in groups.items() if not g.startswith("conditional:")}
    for g, a in groups.items():
        if g.startswith("conditional:"):
            result_groups[g] = a
    return Result(codes=codes, groups=result_groups, code_group=code_group)
