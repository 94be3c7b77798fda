"""Compensation for a missed standard of performance (pure: no database).

A rule comes from the schedule's ``[compensation.<key>]`` table:

    basis        per_hour | per_day | flat
    rate         amount per started hour/day of delay (or the flat amount)
    higher_after units after which `higher_rate` applies to each further unit (optional)
    higher_rate  the rate for those units
    many_rate    per-consumer rate when an outage affects many consumers (optional)
    cap_lt / cap_ht / cap   the most one consumer receives for one request
    threshold    units of delay below which nothing is due (optional; 0 = any delay)
    count_from   "start" (default) | "threshold": whether the payable units and `higher_after`
                 count from the start of the event or from the threshold
    per_event    a flat amount per event, added to the per-unit amount once anything is due
    subtypes     {subtype: {field: value}}: a sub-type's own values over the rule's (other states'
                 schedules differ per sub-type, e.g. DT failure against a fuse call)

Electricity (Rights of Consumers) Rules 2020: paid automatically, credited in the next bill.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from urja.core.money import paise

BASES = ("per_hour", "per_day", "flat")
COUNT_FROM = ("start", "threshold")


@dataclass(frozen=True)
class Award:
    amount: Decimal
    units_late: int
    basis: str
    capped: bool
    many_affected: bool


def validate_rule(key: str, rule: Mapping) -> None:
    if rule.get("basis") not in BASES:
        raise ValueError(f"compensation.{key}: basis must be one of {', '.join(BASES)}")
    for name in ("rate", "higher_rate", "many_rate", "cap", "cap_lt", "cap_ht"):
        if name in rule and Decimal(str(rule[name])) < 0:
            raise ValueError(f"compensation.{key}.{name} must not be negative")
    if "higher_rate" in rule and "higher_after" not in rule:
        raise ValueError(f"compensation.{key}: higher_rate needs higher_after")
    if rule.get("count_from", "start") not in COUNT_FROM:
        raise ValueError(f"compensation.{key}.count_from must be one of {', '.join(COUNT_FROM)}")
    for name in ("threshold", "higher_after", "per_event"):
        if name in rule and Decimal(str(rule[name])) < 0:
            raise ValueError(f"compensation.{key}.{name} must not be negative")
    subtypes = rule.get("subtypes", {})
    if not isinstance(subtypes, Mapping):
        raise ValueError(f"compensation.{key}.subtypes must be a table of sub-types")
    for sub, override in subtypes.items():
        if not isinstance(override, Mapping) or "subtypes" in override:
            raise ValueError(f"compensation.{key}.subtypes.{sub} must be a table of fields")
        validate_rule(f"{key}.subtypes.{sub}", {**{k: v for k, v in rule.items() if k != "subtypes"}, **override})


def for_subtype(rule: Mapping, subtype: str | None) -> dict:
    """The rule as it applies to `subtype`: its `subtypes` entry over the common fields."""
    base = {k: v for k, v in rule.items() if k != "subtypes"}
    return {**base, **rule.get("subtypes", {}).get(subtype or "", {})}


def describe(award: Award) -> str:
    """What the award was for, for the consumer's message and the ledger text."""
    if award.basis == "flat":
        return "the event"
    unit = "hour" if award.basis == "per_hour" else "day"
    return f"{award.units_late} {unit}{'s' if award.units_late != 1 else ''} of delay"


def compute(rule: Mapping, *, units_late: int, supply_class: str = "lt", many_affected: bool = False) -> Award:
    """Amount due for `units_late` started hours/days of delay (0 when not late)."""
    basis = rule["basis"]
    minimum = int(rule.get("threshold", 0) or 0)
    if units_late <= 0 or units_late <= minimum:
        return Award(Decimal("0.00"), max(units_late, 0), basis, False, many_affected)
    payable = units_late - minimum if rule.get("count_from", "start") == "threshold" else units_late
    base_rate = Decimal(str(rule["rate"]))
    if many_affected and "many_rate" in rule:
        base_rate = Decimal(str(rule["many_rate"]))
    if basis == "flat":
        amount = base_rate
    else:
        threshold = int(rule.get("higher_after", 0) or 0)
        if threshold and "higher_rate" in rule and payable > threshold:
            higher = Decimal(str(rule["higher_rate"]))
            if many_affected and "many_rate" in rule:
                # the many-affected rate scales the higher rate by the same ratio
                higher = higher * base_rate / Decimal(str(rule["rate"])) if Decimal(str(rule["rate"])) else higher
            amount = base_rate * threshold + higher * (payable - threshold)
        else:
            amount = base_rate * payable
        amount += Decimal(str(rule.get("per_event", 0) or 0))
    cap_key = "cap_ht" if supply_class == "ht" else "cap_lt"
    cap = rule.get(cap_key, rule.get("cap"))
    capped = False
    if cap is not None and amount > Decimal(str(cap)):
        amount, capped = Decimal(str(cap)), True
    return Award(paise(amount), units_late, basis, capped, many_affected)


def supply_class_of(supply_type: str) -> str:
    """'ht' for HT/EHT supply (higher caps), 'lt' otherwise."""
    return "ht" if supply_type.lower().startswith(("ht", "eht")) else "lt"
