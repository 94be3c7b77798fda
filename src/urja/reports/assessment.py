"""Assessed energy of unmetered and load-limiter consumers (issue 14.1). Pure: no database.

    package consumer:   max load (W) x supply hours per day x days / 1000
    otherwise:          sanctioned load (kW) x days x hours of use per day x demand factor  (L x D x H x F)

The hours and factors per category come from data/reports/energy.toml ([assessment.norm]).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

KWH = Decimal("0.001")


@dataclass(frozen=True)
class Norm:
    hours_per_day: Decimal
    factor: Decimal


def norms(config: Mapping) -> tuple[dict[str, Norm], dict[str, Decimal]]:
    """({category: Norm}, {load unit: kW per unit}) from the [assessment] table; checked."""
    table = config["assessment"]
    out = {}
    for category, n in table["norm"].items():
        norm = Norm(Decimal(str(n["hours_per_day"])), Decimal(str(n["factor"])))
        if not (0 <= norm.hours_per_day <= 24) or not (0 <= norm.factor <= 1):
            raise ValueError(f"assessment.norm.{category}: hours 0-24, factor 0-1")
        out[category] = norm
    if "default" not in out:
        raise ValueError("assessment.norm needs a 'default'")
    units = {u: Decimal(str(v)) for u, v in table["load_unit_kw"].items()}
    return out, units


def category_kwh(
    *, load: Decimal, load_unit: str, category: str, days: int, table: Mapping[str, Norm], units: Mapping[str, Decimal]
) -> Decimal:
    """L x D x H x F for a sanctioned load in its unit (kW, kVA, HP)."""
    norm = table.get(category) or table["default"]
    kw = load * units.get(load_unit, Decimal(1))
    return (kw * days * norm.hours_per_day * norm.factor).quantize(KWH)


def package_kwh(*, max_load_w: int, hours_per_day: Decimal, days: int, count: int = 1) -> Decimal:
    """A package's energy: its maximum load for its supply hours, every day (`count` consumers)."""
    return (Decimal(max_load_w) * hours_per_day * days * count / 1000).quantize(KWH)
