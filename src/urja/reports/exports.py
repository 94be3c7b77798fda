"""CSV and Excel (.xlsx) exports of report tables. The .xlsx is written directly (Office Open XML:
a zip of a few XML parts with inline strings), so no spreadsheet library is needed."""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Iterable, Sequence
from decimal import Decimal
from xml.sax.saxutils import escape

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


def _col(i: int) -> str:
    name = ""
    i += 1
    while i:
        i, rem = divmod(i - 1, 26)
        name = chr(65 + rem) + name
    return name


def _xml_cell(ref: str, v) -> str:
    if isinstance(v, bool):
        v = str(v)
    if isinstance(v, int | float | Decimal):
        return f'<c r="{ref}"><v>{v}</v></c>'
    text = escape("" if v is None else str(v))
    return f'<c r="{ref}" t="inlineStr"><is><t xml:space="preserve">{text}</t></is></c>'


def to_xlsx(header: Sequence[str], rows: Iterable[Sequence], sheet: str = "Report") -> bytes:
    lines = []
    for r, row in enumerate([list(header), *rows], start=1):
        cells = "".join(_xml_cell(f"{_col(c)}{r}", v) for c, v in enumerate(row))
        lines.append(f'<row r="{r}">{cells}</row>')
    sheet_xml = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
        f"<sheetData>{''.join(lines)}</sheetData></worksheet>"
    )
    parts = {
        "[Content_Types].xml": (
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
            '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
            '<Default Extension="xml" ContentType="application/xml"/>'
            '<Override PartName="/xl/workbook.xml" '
            'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
            '<Override PartName="/xl/worksheets/sheet1.xml" '
            'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
            "</Types>"
        ),
        "_rels/.rels": (
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
            '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            '<Relationship Id="rId1" '
            'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" '
            'Target="xl/workbook.xml"/></Relationships>'
        ),
        "xl/workbook.xml": (
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
            '<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
            'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
            f'<sheets><sheet name="{escape(sheet[:31])}" sheetId="1" r:id="rId1"/></sheets></workbook>'
        ),
        "xl/_rels/workbook.xml.rels": (
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
            '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            '<Relationship Id="rId1" '
            'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" '
            'Target="worksheets/sheet1.xml"/></Relationships>'
        ),
        "xl/worksheets/sheet1.xml": sheet_xml,
    }
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, text in parts.items():
            z.writestr(name, text)
    return buf.getvalue()
