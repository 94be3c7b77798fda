"""Validation, estimation and editing (VEE) rules and estimation methods. Pure: no database.

Rules and their thresholds come from `data/metering/vee.toml` (regulation/policy as data). Each
rule returns a `Failure` with a severity: "review" holds the reading for a billing officer;
"flag" records it and lets the reading through (e.g. maximum demand above the sanctioned load:
the cycle is billed on the actual MD and the consumer is told).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

KWH = Decimal("0.001")


@dataclass(frozen=True)
class Failure:
    rule: str
    severity: str  # "review" | "flag"
    message: str

    def as_dict(self) -> dict:
        return {"rule": self.rule, "severity": self.severity, "message": self.message}


@dataclass(frozen=True)
class ReadingCheck:
    """What the rules need to know about one reading, gathered by the caller."""

    read_at: datetime
    consumption: Decimal | None  # units since the previous reading (None: no previous reading)
    negative: bool = False  # the register went backwards with no rollover and no replacement
    backwards: tuple[Decimal, Decimal] | None = None  # the register values (from, to) when it went backwards
    days: Decimal = Decimal(30)  # days since the previous reading
    daily_average: Decimal | None = None  # average daily units over the previous actual months
    occupied: bool = True  # premises occupied (account active, not door-locked)
    in_window: bool | None = None  # inside the reading window (None: no window applies)
    md: Decimal | None = None  # maximum demand in the sanctioned load's unit
    sanctioned_load: Decimal | None = None
    load_unit: str = "kW"


@dataclass(frozen=True)
class Rules:
    config: Mapping[str, Mapping] = field(default_factory=dict)

    def get(self, name: str) -> Mapping | None:
        rule = self.config.get(name)
        if rule is None or not rule.get("enabled", True):
            return None
        return rule


def validate(check: ReadingCheck, rules: Rules) -> list[Failure]:
    failures: list[Failure] = []

    rule = rules.get("negative_consumption")
    if rule and (check.negative or check.backwards is not None):
        where = f" from {check.backwards[0]} to {check.backwards[1]}" if check.backwards else ""
        failures.append(
            Failure(
                "negative_consumption",
                rule["severity"],
                f"register went backwards{where} without rollover or replacement",
            )
        )

    rule = rules.get("spike")
    if rule and check.consumption is not None and check.daily_average is not None and check.days > 0:
        expected = check.daily_average * check.days
        factor = Decimal(str(rule["factor"]))
        minimum = Decimal(str(rule.get("min_units", 0)))
        if check.consumption > expected * factor and check.consumption >= minimum:
            failures.append(
                Failure(
                    "spike",
                    rule["severity"],
                    f"{check.consumption} units is above {factor} × the usual {expected.quantize(KWH)}",
                )
            )

    rule = rules.get("zero_consumption")
    backwards = check.negative or check.backwards is not None
    if rule and check.consumption is not None and check.consumption == 0 and check.occupied and not backwards:
        failures.append(Failure("zero_consumption", rule["severity"], "no consumption on an occupied premises"))

    rule = rules.get("outside_window")
    if rule and check.in_window is False:
        failures.append(Failure("outside_window", rule["severity"], "reading date is outside the reading window"))

    rule = rules.get("md_exceeded")
    if rule and check.md is not None and check.sanctioned_load:
        tolerance = Decimal(str(rule.get("tolerance_percent", 0)))
        limit = check.sanctioned_load * (1 + tolerance / 100)
        if check.md > limit:
            failures.append(
                Failure(
                    "md_exceeded",
                    rule["severity"],
                    f"maximum demand {check.md} {check.load_unit} is above the sanctioned {check.sanctioned_load}",
                )
            )
    return failures


def outcome(failures: Sequence[Failure]) -> str:
    """VEE status for a reading from its failures."""
    if any(f.severity == "review" for f in failures):
        return "review"
    if failures:
        return "flagged"
    return "passed"


# --- estimation ------------------------------------------------------------------------


@dataclass(frozen=True)
class MonthUse:
    year: int
    month: int
    kwh: Decimal
    actual: bool = True

    @property
    def key(self) -> int:
        return self.year * 12 + self.month - 1


def _key(year: int, month: int) -> int:
    return year * 12 + month - 1


def average_of_previous(history: Sequence[MonthUse], year: int, month: int, n: int) -> Decimal | None:
    """Average of the previous `n` actual months before (year, month)."""
    target = _key(year, month)
    previous = sorted((h for h in history if h.actual and h.key < target), key=lambda h: h.key)[-n:]
    if not previous:
        return None
    return (sum((h.kwh for h in previous), Decimal(0)) / len(previous)).quantize(KWH, rounding=ROUND_HALF_UP)


def same_month_last_year(history: Sequence[MonthUse], year: int, month: int) -> Decimal | None:
    target = _key(year - 1, month)
    return next((h.kwh for h in history if h.key == target and h.actual), None)


def last_month(history: Sequence[MonthUse], year: int, month: int) -> Decimal | None:
    """Door-locked provisional reading: last month's consumption (actual or not)."""
    target = _key(year, month)
    previous = [h for h in history if h.key < target]
    return max(previous, key=lambda h: h.key).kwh if previous else None


METHODS = ("average", "same_month_last_year", "last_month")


def estimate(
    history: Sequence[MonthUse], year: int, month: int, *, methods: Sequence[str], n: int
) -> tuple[Decimal, str] | None:
    """Units for (year, month) by the first method in `methods` that has data."""
    for method in methods:
        if method == "average":
            value = average_of_previous(history, year, month, n)
        elif method == "same_month_last_year":
            value = same_month_last_year(history, year, month)
        elif method == "last_month":
            value = last_month(history, year, month)
        else:
            raise ValueError(f"unknown estimation method {method!r}")
        if value is not None:
            return value, method
    return None
