"""Consumption between two register readings, exact across meter replacement and register rollover.

Pure: no database. A reading chain is a list of `Segment`s, one per meter that served the
account in the period: the register value where the period (or the installation) starts on that
meter, and where it ends (the final reading at removal, or the closing reading). Each meter's
register wraps at 10^digits (a 5-digit register goes 99999 → 00000). Consumption is the sum of
(end − start, modulo the register size) × multiplying factor, each segment rounded to 0.001 kWh half
away from zero — the rule the bill run's set-based path uses too (milli-kWh, `vector.rhu`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

KWH = Decimal("0.001")


class RegisterError(ValueError):
    """A register went backwards without a rollover, or a value does not fit the register."""

    def __init__(self, message: str, *, code: str):
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Segment:
    start: Decimal
    end: Decimal
    digits: int = 6
    multiplying_factor: Decimal = Decimal(1)


def register_size(digits: int) -> Decimal:
    return Decimal(10) ** digits


def is_rollover(start: Decimal, end: Decimal, digits: int, margin: Decimal = Decimal("0.2")) -> bool:
    """A backwards step is a rollover when the register was in its top `margin` and is now in its
    bottom `margin` (e.g. 99 870 → 00 012 on a 5-digit register); anything else is a real negative."""
    size = register_size(digits)
    return end < start and start >= size * (1 - margin) and end < size * margin


def register_delta(start: Decimal, end: Decimal, digits: int, margin: Decimal = Decimal("0.2")) -> Decimal:
    """Units advanced by the register from `start` to `end`, with at most one wrap."""
    size = register_size(digits)
    for value in (start, end):
        if value < 0 or value >= size:
            raise RegisterError(f"register value {value} does not fit a {digits}-digit register", code="out_of_range")
    if end >= start:
        return end - start
    if is_rollover(start, end, digits, margin):
        return end + size - start
    raise RegisterError(f"register went backwards from {start} to {end}", code="negative_consumption")


def consumption(segments: Iterable[Segment], margin: Decimal = Decimal("0.2")) -> Decimal:
    """Total energy over a chain of segments (meter replacements), each with its own register."""
    total = Decimal(0)
    for seg in segments:
        total += energy(register_delta(seg.start, seg.end, seg.digits, margin), seg.multiplying_factor)
    return total


def energy(delta: Decimal, multiplying_factor: Decimal) -> Decimal:
    """Register units × multiplying factor in kWh, to 0.001 half away from zero (not the context's
    half-even: the bill run rounds milli-kWh half up, and both must give the same units)."""
    return (delta * multiplying_factor).quantize(KWH, rounding=ROUND_HALF_UP)


def tod_consumption(
    segments: Iterable[tuple[Mapping[str, object], Mapping[str, object], int, Decimal]],
    margin: Decimal = Decimal("0.2"),
) -> dict[str, Decimal]:
    """Time-of-day registers: the same arithmetic per zone. Zones missing at either end are skipped."""
    result: dict[str, Decimal] = {}
    for start, end, digits, mf in segments:
        for zone in sorted(set(start) & set(end)):
            delta = energy(register_delta(Decimal(str(start[zone])), Decimal(str(end[zone])), digits, margin), mf)
            result[zone] = result.get(zone, Decimal(0)) + delta
    return result
