"""The tariff engine, scalar reference implementation. Pure: no database, no clock.

    calculate(segments_for(schedules, start, end), BillInput(...)) -> Bill(lines, totals)

Written to be obviously right rather than fast: exact rationals (Fraction) for everything that
is scaled by the month factor, Decimal for money, and exactly one rounding (half away from
zero, to the paisa) per bill line. The vectorised engine (`vector.py`) used by bill runs must
agree with this one to the paisa on every input (tests/test_vector.py, hypothesis).

Order of computation in each tariff segment of the period:
energy (slabs) → time of day → fixed/demand charges → monthly charges (meter rent, customer
service charge, package price) → minimum-charge top-up → riders (in file order) → subsidies →
rebates. Once per bill, after the segments: delayed payment surcharge, one-off charges, rounding.
"""

from __future__ import annotations

import calendar
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal
from fractions import Fraction

from .schema import FixedCharge, Schedule

PAISA = Decimal("0.01")
MILLI = Decimal("0.001")


class TariffGap(ValueError):
    """No tariff version covers part of the period."""

    def __init__(self, message: str, missing: list[tuple[date, date]]):
        super().__init__(message)
        self.missing = missing


# ---------------------------------------------------------------------------------------
# Inputs and outputs


@dataclass(frozen=True)
class BillInput:
    period_start: date
    period_end: date  # inclusive
    units: Decimal = Decimal(0)  # kWh in the period (3 decimals)
    sanctioned_load: Decimal = Decimal(1)
    load_unit: str = "kW"
    recorded_md: Decimal | None = None  # maximum demand, in load_unit
    tod_units: Mapping[str, Decimal] = field(default_factory=dict)  # kWh per TOD window code
    area: str = "urban"
    metered: bool = True
    meter_type: str = "static"  # static | smart | prepaid
    meter_owner: str = "utility"  # utility | consumer
    e_bill: bool = False
    prepaid: bool = False
    overdue_principal: Decimal = Decimal(0)  # unpaid principal of earlier bills past their due date
    overdue_days: int = 0
    extra_charges: tuple[tuple[str, str, Decimal], ...] = ()  # (code, description, amount): fees, instalments

    def flags(self) -> dict:
        return {
            "area": self.area,
            "e_bill": self.e_bill,
            "prepaid": self.prepaid,
            "smart_meter": self.meter_type == "smart",
            "metered": self.metered,
            "meter_owner": self.meter_owner,
        }


@dataclass(frozen=True)
class Line:
    code: str
    description: str
    group: str  # energy tod fixed monthly minimum rider subsidy rebate conditional dps extra rounding
    base: Decimal | None
    base_unit: str
    rate: Decimal | None
    rate_unit: str
    amount: Decimal
    explanation: str
    segment: int = 0

    def as_dict(self) -> dict:
        return {
            "code": self.code,
            "description": self.description,
            "group": self.group,
            "base": None if self.base is None else str(self.base),
            "base_unit": self.base_unit,
            "rate": None if self.rate is None else str(self.rate),
            "rate_unit": self.rate_unit,
            "amount": str(self.amount),
            "explanation": self.explanation,
            "segment": self.segment,
        }


CHARGE_GROUPS = ("energy", "tod", "fixed", "monthly", "minimum", "rider")
TOTAL_GROUPS = (*CHARGE_GROUPS, "subsidy", "rebate", "dps", "extra", "rounding")


@dataclass(frozen=True)
class Segment:
    schedule: Schedule
    start: date
    end: date

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1


@dataclass
class Bill:
    lines: list[Line]
    segments: list[Segment]

    def group_total(self, group: str) -> Decimal:
        return sum((ln.amount for ln in self.lines if ln.group == group), Decimal("0.00"))

    @property
    def current_charges(self) -> Decimal:
        return sum((self.group_total(g) for g in CHARGE_GROUPS), Decimal("0.00"))

    @property
    def total(self) -> Decimal:
        """What the bill asks for (conditional rebates are not deducted)."""
        return sum((ln.amount for ln in self.lines if ln.group != "conditional"), Decimal("0.00"))

    def conditional(self, on_payment: str) -> Decimal:
        return sum(
            (ln.amount for ln in self.lines if ln.group == "conditional" and ln.rate_unit.endswith(on_payment)),
            Decimal("0.00"),
        )

    @property
    def payable_by_due_date(self) -> Decimal:
        return self.total + self.conditional("by_due_date")

    def by_code(self) -> dict[str, Decimal]:
        result: dict[str, Decimal] = {}
        for ln in self.lines:
            result[ln.code] = result.get(ln.code, Decimal("0.00")) + ln.amount
        return result

    def totals(self) -> dict[str, Decimal]:
        result = {g: self.group_total(g) for g in TOTAL_GROUPS}
        result["conditional"] = self.group_total("conditional")
        result["total"] = self.total
        return result


# ---------------------------------------------------------------------------------------
# Period arithmetic (shared with the vectorised engine: it is per period, not per account)


def month_factor(start: date, end: date) -> Fraction:
    """Sum over calendar months of (days of the period in the month / days in the month)."""
    factor = Fraction(0)
    day = start
    while day <= end:
        last = date(day.year, day.month, calendar.monthrange(day.year, day.month)[1])
        stop = min(last, end)
        factor += Fraction((stop - day).days + 1, last.day)
        day = stop + timedelta(days=1)
    return factor


def segments_for(schedules: Sequence[Schedule], start: date, end: date) -> list[Segment]:
    """Split [start, end] by the versions' effective dates; raise TariffGap if any day is uncovered."""
    if end < start:
        raise ValueError(f"period end {end} is before its start {start}")
    ordered = sorted(schedules, key=lambda s: s.effective_from)
    segments, day, missing = [], start, []
    for s in ordered:
        s_to = s.effective_to or date.max
        if s_to < day or s.effective_from > end:
            continue
        if s.effective_from > day:
            missing.append((day, s.effective_from - timedelta(days=1)))
        seg_start = max(day, s.effective_from)
        seg_end = min(end, s_to)
        segments.append(Segment(s, seg_start, seg_end))
        if seg_end >= end:
            day = end + timedelta(days=1)
            break
        day = seg_end + timedelta(days=1)
    if day <= end:
        missing.append((day, end))
    if missing:
        text = ", ".join(f"{a}..{b}" for a, b in missing)
        raise TariffGap(f"no tariff in force for {text}", missing)
    return segments


def round_units(value: Fraction, mode: str) -> Decimal:
    """A pro-rated slab bound, rounded as the tariff file says (to 0.001 kWh when 'none')."""
    exact = Decimal(value.numerator) / Decimal(value.denominator)
    if mode == "none":
        return _frac_to_decimal(value, MILLI)
    if mode == "unit":
        return _frac_to_decimal(value, Decimal(1))
    if mode == "floor":
        return exact.to_integral_value(rounding=ROUND_FLOOR)
    if mode == "ceil":
        # exact division can carry 28-digit noise; decide on the rational value
        return Decimal(-((-value.numerator) // value.denominator))
    raise ValueError(mode)


def _frac_to_decimal(value: Fraction, quantum: Decimal) -> Decimal:
    """Round a rational half away from zero to `quantum` (0.01, 0.001 or 1), exactly."""
    scale = 1 / quantum  # Decimal 100, 1000 or 1
    n = value * Fraction(int(scale))
    sign = -1 if n < 0 else 1
    n = abs(n)
    q, r = divmod(n.numerator, n.denominator)
    if 2 * r >= n.denominator:
        q += 1
    return (Decimal(sign * q) / scale).quantize(quantum)


def money(value: Fraction | Decimal) -> Decimal:
    if isinstance(value, Decimal):
        return value.quantize(PAISA, rounding=ROUND_HALF_UP)
    return _frac_to_decimal(value, PAISA)


def F(value: Decimal | int) -> Fraction:
    return Fraction(value)


def scaled_bounds(upper_bounds: Sequence[Decimal | None], factor: Fraction, mode: str, prorate: bool):
    """Slab upper bounds after pro-rating: each slab's *width* is scaled and rounded."""
    result: list[Decimal | None] = []
    previous_raw = Decimal(0)
    running = Decimal(0)
    for upto in upper_bounds:
        if upto is None:
            result.append(None)
            continue
        width = upto - previous_raw
        previous_raw = upto
        running += round_units(F(width) * factor, mode) if prorate else width
        result.append(running)
    return result


def apportion(total: Decimal, segments: Sequence[Segment]) -> list[Decimal]:
    """Split units over segments by days (to 0.001 kWh); the last segment takes the remainder."""
    days = sum(s.days for s in segments)
    parts = [_frac_to_decimal(F(total) * Fraction(s.days, days), MILLI) for s in segments[:-1]]
    return [*parts, total - sum(parts, Decimal(0))]


def convert_load(load: Decimal, from_unit: str, to_unit: str, pf: Decimal) -> Decimal:
    if from_unit == to_unit:
        return load
    if from_unit == "kVA" and to_unit == "kW":
        return _frac_to_decimal(F(load) * F(pf), MILLI)
    return _frac_to_decimal(F(load) / F(pf), MILLI)


def fmt(d: Decimal | Fraction) -> str:
    if isinstance(d, Fraction):
        return f"{float(d):.4f}".rstrip("0").rstrip(".")
    return format(d.normalize(), "f") if d == d.to_integral_value() else str(d)


# ---------------------------------------------------------------------------------------
# One segment


def _fixed_load(charge: FixedCharge, inp: BillInput, pf: Decimal) -> tuple[Decimal, str]:
    sanctioned = convert_load(inp.sanctioned_load, inp.load_unit, charge.unit, pf)
    md = None if inp.recorded_md is None else convert_load(inp.recorded_md, inp.load_unit, charge.unit, pf)
    if charge.basis == "sanctioned_load":
        load, why = sanctioned, "sanctioned load"
    elif charge.basis == "recorded_md":
        load, why = (md, "recorded maximum demand") if md is not None else (sanctioned, "sanctioned load (no MD)")
    else:  # billing_demand
        floor = _frac_to_decimal(F(sanctioned) * F(charge.billing_demand_percent) / 100, MILLI)
        recorded = md if md is not None else Decimal(0)
        load, why = (
            (recorded, "recorded MD")
            if recorded >= floor
            else (floor, f"{fmt(charge.billing_demand_percent)}% of sanctioned load")
        )
    if charge.load_rounding == "ceil":
        load = load.to_integral_value(rounding=ROUND_CEILING)
    if load < charge.minimum_load:
        load, why = charge.minimum_load, "minimum billable load"
    return load, why


def _bracket_amount(charge: FixedCharge, load: Decimal) -> tuple[Fraction, Decimal | None, str]:
    """Monthly amount for `load` (before the month factor) and the rate shown."""
    if charge.bracket_mode == "slab_reached":
        for b in charge.brackets:
            if b.upto is None or load <= b.upto:
                bracket = (
                    ""
                    if b.upto is None and len(charge.brackets) == 1
                    else f" (load bracket up to {fmt(b.upto)})"
                    if b.upto is not None
                    else " (top load bracket)"
                )
                return F(load) * F(b.rate), b.rate, bracket
    total, lower = Fraction(0), Decimal(0)
    for b in charge.brackets:
        upper = load if b.upto is None else min(load, b.upto)
        if upper > lower:
            total += F(upper - lower) * F(b.rate)
        if b.upto is None or load <= b.upto:
            break
        lower = b.upto
    return total, None, " (telescopic load brackets)"


def _segment_lines(
    seg: Segment, inp: BillInput, units: Decimal, tod_units: Mapping[str, Decimal], index: int, last: bool
) -> list[Line]:
    s = seg.schedule
    factor = month_factor(seg.start, seg.end)
    lines: list[Line] = []
    flags = inp.flags()
    load_kw = convert_load(inp.sanctioned_load, inp.load_unit, "kW", s.power_factor)
    period = f"{seg.start:%d-%m-%Y} to {seg.end:%d-%m-%Y}"
    factor_text = f"month factor {fmt(factor)} for {period}"

    # energy
    if s.energy and inp.metered:
        bounds = scaled_bounds([sl.upto for sl in s.energy.slabs], factor, s.slab_rounding, s.energy.prorate)
        if s.energy.method == "telescopic":
            lower = Decimal(0)
            for i, (sl, upper) in enumerate(zip(s.energy.slabs, bounds, strict=True)):
                in_slab = max(Decimal(0), (units if upper is None else min(units, upper)) - lower)
                if in_slab > 0:
                    band = f"{fmt(lower)}–{fmt(upper)}" if upper is not None else f"above {fmt(lower)}"
                    # one rate for every unit (no slabs): no slab to name
                    single = len(s.energy.slabs) == 1 and upper is None
                    how = "single rate" if single else f"telescopic slab {band} kWh"
                    lines.append(
                        Line(
                            f"EC{i + 1}",
                            "Energy charge" if single else f"Energy charge, slab {band} kWh",
                            "energy",
                            in_slab,
                            "kWh",
                            sl.rate,
                            "Rs/kWh",
                            money(in_slab * sl.rate),
                            f"{fmt(in_slab)} kWh × Rs {fmt(sl.rate)} ({how}; {factor_text})",
                            index,
                        )
                    )
                if upper is None or units <= upper:
                    break
                lower = upper
        else:
            for i, (sl, upper) in enumerate(zip(s.energy.slabs, bounds, strict=True)):
                if upper is None or units <= upper:
                    reach = f"up to {fmt(upper)}" if upper is not None else "above the last slab"
                    lines.append(
                        Line(
                            f"EC{i + 1}",
                            "Energy charge (volumetric)",
                            "energy",
                            units,
                            "kWh",
                            sl.rate,
                            "Rs/kWh",
                            money(units * sl.rate),
                            f"all {fmt(units)} kWh at Rs {fmt(sl.rate)}: consumption {reach} kWh ({factor_text})",
                            index,
                        )
                    )
                    break
    energy_total = sum((ln.amount for ln in lines if ln.group == "energy"), Decimal(0))

    # time of day
    for w in s.tod:
        if w.code not in tod_units or (w.smart_meter_only and inp.meter_type != "smart") or load_kw <= w.min_load_kw:
            continue
        wu = tod_units[w.code]
        window = f"{w.start:%H:%M}–{w.end:%H:%M}"
        if w.adder is not None:
            lines.append(
                Line(
                    w.code,
                    f"Time of day: {w.name}",
                    "tod",
                    wu,
                    "kWh",
                    w.adder,
                    "Rs/kWh",
                    money(wu * w.adder),
                    f"{fmt(wu)} kWh in {window} × Rs {fmt(w.adder)}",
                    index,
                )
            )
        elif units > 0:
            amount = money(F(energy_total) * F(wu) / F(units) * (F(w.multiplier) - 1))
            lines.append(
                Line(
                    w.code,
                    f"Time of day: {w.name}",
                    "tod",
                    wu,
                    "kWh",
                    w.multiplier,
                    "× energy rate",
                    amount,
                    f"{fmt(wu)} kWh in {window} at {fmt(w.multiplier)}× the average energy rate",
                    index,
                )
            )

    # fixed / demand charges
    for charge in s.fixed:
        if charge.basis == "connection":
            rate = charge.brackets[0].rate
            lines.append(
                Line(
                    charge.code,
                    charge.name,
                    "fixed",
                    None,
                    "",
                    rate,
                    "Rs/month",
                    money(F(rate) * factor),
                    f"Rs {fmt(rate)} per connection per month × {factor_text}",
                    index,
                )
            )
            continue
        load, why = _fixed_load(charge, inp, s.power_factor)
        monthly, rate, bracket = _bracket_amount(charge, load)
        amount = money(monthly * factor)
        rate_text = f"Rs {fmt(rate)}/{charge.unit}/month" if rate is not None else f"Rs {fmt(monthly)}/month"
        lines.append(
            Line(
                charge.code,
                charge.name,
                "fixed",
                load,
                charge.unit,
                rate,
                f"Rs/{charge.unit}/month",
                amount,
                f"{fmt(load)} {charge.unit} ({why}) × {rate_text}{bracket} × {factor_text}",
                index,
            )
        )

    # monthly charges
    for mc in s.monthly:
        if mc.meter_types and inp.meter_type not in mc.meter_types:
            continue
        if mc.unmetered_only and inp.metered:
            continue
        waived = ""
        if mc.waive_upto_load_kw is not None and load_kw <= mc.waive_upto_load_kw:
            waived = f"waived: load {fmt(load_kw)} kW is not above {fmt(mc.waive_upto_load_kw)} kW"
        elif mc.waive_if_consumer_meter and inp.meter_owner == "consumer":
            waived = "waived: the meter is the consumer's own"
        amount = Decimal("0.00") if waived else money(F(mc.amount) * factor)
        lines.append(
            Line(
                mc.code,
                mc.name,
                "monthly",
                None,
                "",
                mc.amount,
                "Rs/month",
                amount,
                waived or f"Rs {fmt(mc.amount)} per month × {factor_text}",
                index,
            )
        )

    def subtotal(names: Sequence[str]) -> Decimal:
        total = Decimal(0)
        for ln in lines:
            if ln.group == "conditional":
                continue
            for name in names:
                if (
                    ln.code == name
                    or ln.group == name
                    or (name == "current" and ln.group in CHARGE_GROUPS)
                    or (name == "net" and ln.group in (*CHARGE_GROUPS, "subsidy"))
                ):
                    total += ln.amount
                    break
        return total

    # minimum charge
    if s.minimum:
        minimum = money(F(s.minimum.amount_per_month) * factor + F(s.minimum.per_kw_per_month) * F(load_kw) * factor)
        have = subtotal(s.minimum.base)
        if have < minimum:
            lines.append(
                Line(
                    "MIN",
                    "Minimum charge top-up",
                    "minimum",
                    have,
                    "Rs",
                    minimum,
                    "Rs",
                    minimum - have,
                    f"minimum charge Rs {minimum} ({factor_text}) less Rs {have} of {' + '.join(s.minimum.base)}",
                    index,
                )
            )

    # riders
    for rider in s.riders:
        if rider.percent == 0:  # a rider kept in the file but not levied
            continue
        base = subtotal(rider.base)
        lines.append(
            Line(
                rider.code,
                rider.name,
                "rider",
                base,
                "Rs",
                rider.percent,
                "%",
                money(base * rider.percent / 100),
                f"{fmt(rider.percent)}% of Rs {base} ({' + '.join(rider.base)})",
                index,
            )
        )

    # subsidies
    for sub in s.subsidies:
        above = Decimal(-1) if sub.units_above is None else round_units(F(sub.units_above) * factor, s.slab_rounding)
        upto = None if sub.units_upto is None else round_units(F(sub.units_upto) * factor, s.slab_rounding)
        if units <= above or (upto is not None and units > upto):
            continue
        base = subtotal(sub.base)
        amount = money(base * sub.percent / 100)
        cap_text = ""
        if sub.cap_per_month is not None:
            cap = money(F(sub.cap_per_month) * factor)
            if amount > cap:
                amount, cap_text = cap, f", capped at Rs {cap}"
        lines.append(
            Line(
                sub.code,
                sub.name,
                "subsidy",
                base,
                "Rs",
                sub.percent,
                "%",
                -amount,
                f"{fmt(sub.percent)}% of Rs {base} paid by {sub.payer} ({fmt(units)} kWh is in the band){cap_text}",
                index,
            )
        )

    # rebates
    for rb in s.rebates:
        if any(flags.get(k) != v for k, v in rb.when):
            continue
        if rb.kind == "fixed" and not last:
            continue
        if rb.kind == "per_unit":
            base, amount, text = units, money(units * rb.value), f"{fmt(units)} kWh × Rs {fmt(rb.value)}"
            unit = "Rs/kWh"
        elif rb.kind == "percent":
            base = subtotal(rb.base)
            amount, text, unit = money(base * rb.value / 100), f"{fmt(rb.value)}% of Rs {base}", "%"
        else:
            base, amount, text, unit = None, money(rb.value), f"Rs {fmt(rb.value)} per bill", "Rs/bill"
        amount = max(amount, Decimal(0))  # a rebate is a credit, whatever its base
        if rb.on_payment:
            when = "if paid by the due date" if rb.on_payment == "by_due_date" else "if paid in full digitally"
            lines.append(
                Line(
                    rb.code,
                    f"{rb.name} ({when})",
                    "conditional",
                    base,
                    "",
                    rb.value,
                    f"{unit} {rb.on_payment}",
                    -amount,
                    f"{text}, {when}",
                    index,
                )
            )
        else:
            lines.append(Line(rb.code, rb.name, "rebate", base, "", rb.value, unit, -amount, text, index))
    return lines


def calculate(segments: Sequence[Segment], inp: BillInput) -> Bill:
    if not segments:
        raise ValueError("no tariff segments")
    units_parts = apportion(inp.units if inp.metered else Decimal(0), segments)
    tod_parts = {code: apportion(v, segments) for code, v in inp.tod_units.items()}
    lines: list[Line] = []
    for i, seg in enumerate(segments):
        tod = {code: parts[i] for code, parts in tod_parts.items()}
        lines += _segment_lines(seg, inp, units_parts[i], tod, i, i == len(segments) - 1)
    s = segments[-1].schedule
    dps = s.dps
    if inp.overdue_principal > 0 and inp.overdue_days > 0:
        if dps.waived or dps.percent == 0:
            lines.append(
                Line(
                    "DPS",
                    "Delayed payment surcharge",
                    "dps",
                    inp.overdue_principal,
                    "Rs",
                    Decimal(0),
                    "%",
                    Decimal("0.00"),
                    "waived for this category by the tariff order",
                    len(segments) - 1,
                )
            )
        else:
            months = -(-inp.overdue_days // 30)
            if dps.per == "month":
                periods = Fraction(months) if dps.count == "started_month" else Fraction(inp.overdue_days, 30)
            else:
                periods = Fraction(months, 12) if dps.count == "started_month" else Fraction(inp.overdue_days, 365)
            amount = money(F(inp.overdue_principal) * F(dps.percent) / 100 * periods)
            count_text = f"{months} month(s) started" if dps.count == "started_month" else f"{inp.overdue_days} days"
            lines.append(
                Line(
                    "DPS",
                    "Delayed payment surcharge",
                    "dps",
                    inp.overdue_principal,
                    "Rs",
                    dps.percent,
                    f"%/{dps.per}",
                    amount,
                    f"{fmt(dps.percent)}% per {dps.per} on overdue principal Rs {inp.overdue_principal} "
                    f"for {count_text} (simple; never on surcharge)",
                    len(segments) - 1,
                )
            )
    for code, description, amount in inp.extra_charges:
        lines.append(
            Line(code, description, "extra", None, "", None, "", money(amount), description, len(segments) - 1)
        )
    if s.bill_rounding == "rupee":
        total = sum((ln.amount for ln in lines if ln.group != "conditional"), Decimal(0))
        rounded = total.quantize(Decimal(1), rounding=ROUND_HALF_UP)
        if rounded != total:
            lines.append(
                Line(
                    "RND",
                    "Rounding to the rupee",
                    "rounding",
                    total,
                    "Rs",
                    None,
                    "",
                    rounded - total,
                    f"Rs {total} rounded to Rs {rounded}",
                    len(segments) - 1,
                )
            )
    return Bill(lines=lines, segments=list(segments))
