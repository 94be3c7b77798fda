"""CSV and Excel (.xlsx) exports of report tables. The .xlsx comes from core.listing's writer (XlsxWriter)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from decimal import Decimal

from urja.core.listing import write_xlsx

from .models import EnergyBalance

COLUMNS = (
    ("period", "Period"),
    ("level", "Level"),
    ("code", "Code"),
    ("name", "Name"),
    ("category", "Category"),
    ("input_kwh", "Input kWh"),
    ("input_status", "Input status"),
    ("metered_kwh", "Metered kWh"),
    ("estimated_kwh", "Estimated kWh"),
    ("assessed_kwh", "Assessed kWh"),
    ("prepaid_kwh", "Prepaid kWh"),
    ("billed_kwh", "Billed kWh"),
    ("billed_amount", "Billed Rs"),
    ("collected_amount", "Collected Rs"),
    ("billing_efficiency", "Billing efficiency"),
    ("collection_efficiency", "Collection efficiency"),
    ("atc_loss", "AT&C loss"),
    ("accounts", "Accounts"),
    ("flags", "Flags"),
)


def balance_rows(rows: Iterable[EnergyBalance]) -> tuple[list[str], list[list]]:
    header = [label for _, label in COLUMNS]
    out = []
    for r in rows:
        line = []
        for attr, _ in COLUMNS:
            v = getattr(r, attr)
            if attr == "flags":
                v = "; ".join(f"{f['code']}: {f['message']}" for f in v)
            line.append(v)
        out.append(line)
    return header, out


def _cell_text(v) -> str:
    text = "" if v is None else str(v)
    # a cell that a spreadsheet would run as a formula is written as text (CSV injection)
    return "'" + text if text[:1] in ("=", "+", "-", "@") and not _is_number(text) else text


def _is_number(text: str) -> bool:
    try:
        Decimal(text)
        return True
    except Exception:
        return False


def to_csv(header: Sequence[str], rows: Iterable[Sequence]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(header)
    for row in rows:
        w.writerow([_cell_text(v) for v in row])
    return buf.getvalue()


def to_xlsx(header: Sequence[str], rows: Iterable[Sequence], sheet: str = "Report") -> bytes:
    """The table as an .xlsx workbook (core.listing's writer: numbers as numbers, the same injection guard)."""
    with write_xlsx(header, rows, sheet=sheet) as f:
        return f.read()
