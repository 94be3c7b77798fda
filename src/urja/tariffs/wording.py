"""Tariff lines in the consumer's language (data/billing/bill_line_names.toml). Pure: no database.

The tariff engine describes every line in English; the bill document and the bill calculator
translate the description by whole name or by pattern, and replace the English explanation with the
bare computation (numbers and units), so a Hindi or Odia page carries no English prose. In English
the engine's explanation is kept, its amounts and quantities grouped the Indian way.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache

from urja.core import regdata
from urja.core.money import group_indian
from urja.tariffs.engine import fmt


@dataclass(frozen=True)
class Wording:
    names: dict[str, dict[str, str]]
    patterns: list[tuple[re.Pattern, dict[str, str]]]
    units: dict[str, dict[str, str]]


@lru_cache(maxsize=1)
def wording() -> Wording:
    data = regdata.load("billing/bill_line_names.toml")
    patterns = []
    for p in data.get("patterns", []):
        parts = re.split(r"\{(\w+)\}", p["en"])
        regex = "".join(re.escape(t) if i % 2 == 0 else f"(?P<{t}>.+?)" for i, t in enumerate(parts))
        patterns.append((re.compile(f"^{regex}$"), p))
    return Wording(dict(data.get("names", {})), patterns, dict(data.get("units", {})))


def translate(text: str, language: str, w: Wording | None = None) -> str:
    """`text` (an English line description) in `language`; English when no wording is known."""
    w = w or wording()
    if not text:
        return text
    if language == "en":  # English as the engine wrote it, unless the file words it better
        return w.names.get(text, {}).get("en", text)
    whole = w.names.get(text, {}).get(language)
    if whole:
        return whole
    for regex, pattern in w.patterns:
        m = regex.match(text)
        if m and language in pattern:
            return pattern[language].format(**{k: translate(v, language, w) for k, v in m.groupdict().items()})
    return text


def computation(line, language: str, w: Wording | None = None) -> str:
    """The line's arithmetic without prose: '57.4 kWh × ₹4.70/kWh', '2 kW × ₹20/kW/माह', '4%'."""
    w = w or wording()
    words = w.units.get(language, {})
    unit = (line.rate_unit or "").split(" ")[0] if line.rate_unit != "× energy rate" else ""
    unit = unit.replace("Rs/", "₹/").replace("/month", "/" + words.get("month", "month"))
    unit = unit.replace("/bill", "/" + words.get("bill", "bill"))
    if line.rate is None:
        return ""
    if (line.explanation or "").startswith("waived"):
        return words.get("waived", "waived")
    if line.rate_unit == "× energy rate":
        rate = f"{fmt(line.rate)} {words.get('energy_rate', '× energy rate')}"
    elif unit == "%":
        rate = f"{fmt(line.rate)}%"
    elif unit.startswith("₹/"):
        rate = f"₹{fmt(line.rate)}{unit[1:]}"
    else:
        rate = f"{fmt(line.rate)} {unit}".strip()
    if line.base is not None and unit != "%":
        base = line.base if isinstance(line.base, Decimal) else Decimal(str(line.base))
        base_unit = line.base_unit or unit.split("/")[1]  # e.g. a per-kWh rebate on kWh
        return f"{grouped(fmt(base))} {base_unit} × {rate}"
    if line.base is not None:
        return f"{rate} × ₹{grouped(fmt(Decimal(str(line.base))))}"
    return rate


# An amount after "Rs " or a quantity before its unit, in the engine's English explanations.
_FIGURE = re.compile(r"(?<=Rs )\d+(?:\.\d+)?|\d+(?:\.\d+)?(?= (?:kWh|kVAh|kW|kVA|HP)\b)")


def grouped_prose(text: str) -> str:
    """The engine's English explanation with its figures grouped: 'Rs 191250.00' → 'Rs 1,91,250.00'."""
    return _FIGURE.sub(lambda m: grouped(m.group(0)), text or "")


def grouped(number: str) -> str:
    """A formatted number with Indian digit grouping of its whole part: '191250.00' → '1,91,250.00'."""
    sign, digits = ("-", number[1:]) if number.startswith("-") else ("", number)
    whole, dot, frac = digits.partition(".")
    return f"{sign}{group_indian(whole)}{dot}{frac}" if whole.isdigit() else number


@dataclass(frozen=True)
class PrintedLine:
    code: str
    group: str
    description: str
    explanation: str
    amount: Decimal


def printed_lines(lines, language: str) -> list[PrintedLine]:
    w = wording()
    if language == "en":
        return [
            PrintedLine(ln.code, ln.group, translate(ln.description, "en", w), grouped_prose(ln.explanation), ln.amount)
            for ln in lines
        ]
    return [
        PrintedLine(ln.code, ln.group, translate(ln.description, language, w), computation(ln, language, w), ln.amount)
        for ln in lines
    ]
