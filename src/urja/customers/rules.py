"""Pure rules for consumers and accounts, driven by regulation data."""

from dataclasses import dataclass
from decimal import Decimal

import phonenumbers

from urja.core import ids


@dataclass(frozen=True)
class SupplyType:
    code: str
    name: str
    min_load: Decimal
    min_exclusive: bool
    max_load: Decimal | None
    unit: str
    max_unit: str


def supply_types(doc: dict) -> dict[str, SupplyType]:
    result = {}
    for row in doc["supply_type"]:
        result[row["code"]] = SupplyType(
            code=row["code"],
            name=row["name"],
            min_load=Decimal(str(row.get("min_load", 0))),
            min_exclusive=row.get("min_exclusive", False),
            max_load=Decimal(str(row["max_load"])) if "max_load" in row else None,
            unit=row["unit"],
            max_unit=row.get("max_unit", row["unit"]),
        )
    return result


def convert_load(value: Decimal, from_unit: str, to_unit: str, power_factor: Decimal) -> Decimal:
    if from_unit == to_unit:
        return value
    if from_unit == "kVA" and to_unit == "kW":
        return value * power_factor
    if from_unit == "kW" and to_unit == "kVA":
        return value / power_factor
    raise ValueError(f"cannot convert {from_unit} to {to_unit}")


def load_problem(supply: SupplyType, load: Decimal, unit: str, power_factor: Decimal) -> str | None:
    """None when `load` fits the supply type's range; otherwise a sentence saying why not."""
    low = convert_load(load, unit, supply.unit, power_factor)
    if low < supply.min_load or (supply.min_exclusive and low <= supply.min_load):
        word = "above" if supply.min_exclusive else "at least"
        return f"{supply.name} needs a load {word} {supply.min_load} {supply.unit}; got {load} {unit}"
    if supply.max_load is not None:
        high = convert_load(load, unit, supply.max_unit, power_factor)
        if high > supply.max_load:
            return f"{supply.name} allows at most {supply.max_load} {supply.max_unit}; got {load} {unit}"
    return None


def load_in_kw(load: Decimal, unit: str, power_factor: Decimal) -> Decimal:
    return convert_load(load, unit, "kW", power_factor)


def normalise_mobile(raw: str) -> str | None:
    """E.164 form of a valid Indian mobile number, or None."""
    try:
        number = phonenumbers.parse(raw, "IN")
    except phonenumbers.NumberParseException:
        return None
    if number.country_code != 91 or not phonenumbers.is_valid_number(number):
        return None
    if phonenumbers.number_type(number) not in (
        phonenumbers.PhoneNumberType.MOBILE,
        phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE,
    ):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def aadhaar_valid(raw: str) -> bool:
    """12 digits, not starting with 0 or 1, Verhoeff check digit (UIDAI)."""
    digits = raw.replace(" ", "").replace("-", "")
    return len(digits) == 12 and digits.isdigit() and digits[0] not in "01" and ids.verhoeff_valid(digits)


def mask_aadhaar(raw: str) -> str:
    digits = raw.replace(" ", "").replace("-", "")
    return "XXXX XXXX " + digits[-4:]


# First bytes of the file kinds a KYC document may be (data/customers/document_matrix.toml [upload]).
FILE_SIGNATURES = {"pdf": (b"%PDF-",), "jpeg": (b"\xff\xd8\xff",), "png": (b"\x89PNG\r\n\x1a\n",)}


def file_kind(head: bytes) -> str | None:
    """'pdf', 'jpeg' or 'png' by the file's first bytes (its name and declared type are not trusted)."""
    for kind, signatures in FILE_SIGNATURES.items():
        if any(head.startswith(s) for s in signatures):
            return kind
    return None


def file_problem(*, head: bytes, size: int, kinds: list[str], max_bytes: int) -> str | None:
    """None when a document file of `size` bytes starting with `head` is acceptable; else why not."""
    if size <= 0:
        return "the file is empty"
    if size > max_bytes:
        return f"the file is {size / 1048576:.1f} MB; at most {max_bytes / 1048576:.0f} MB is accepted"
    kind = file_kind(head)
    if kind not in kinds:
        return "only " + ", ".join(k.upper() for k in kinds) + " files are accepted"
    return None
