"""Reads back an .xlsx written by core.listing (tests only; XlsxWriter writes but does not read).

Parses the sheet's XML with the standard library: inline and shared strings, numbers, booleans, and the
number format of each cell (so a test can tell a date from a number and see the decimals)."""

from __future__ import annotations

import io
import re
import zipfile
from dataclasses import dataclass
from datetime import datetime, timedelta
from xml.etree import ElementTree

NS = {"m": "http://schemas.openxmlformats.org/spreadsheetml/2006/main"}
EPOCH = datetime(1899, 12, 30)  # Excel's day 0 (1900 date system, past its leap-year bug)
BUILTIN_FORMATS = {0: "General"}


@dataclass(frozen=True)
class Cell:
    value: object  # str, float, bool, datetime (for a date-formatted number) or None
    number_format: str = "General"


def _col(ref: str) -> int:
    letters = re.match(r"[A-Z]+", ref).group(0)
    n = 0
    for ch in letters:
        n = n * 26 + ord(ch) - 64
    return n - 1


def read_cells(content: bytes) -> list[list[Cell]]:
    with zipfile.ZipFile(io.BytesIO(content)) as z:
        sheet = ElementTree.fromstring(z.read("xl/worksheets/sheet1.xml"))
        styles = ElementTree.fromstring(z.read("xl/styles.xml"))
        names = z.namelist()
        shared = []
        if "xl/sharedStrings.xml" in names:
            sst = ElementTree.fromstring(z.read("xl/sharedStrings.xml"))
            shared = ["".join(t.text or "" for t in si.iter(f"{{{NS['m']}}}t")) for si in sst.findall("m:si", NS)]
    custom = {int(f.get("numFmtId")): f.get("formatCode") for f in styles.iterfind("m:numFmts/m:numFmt", NS)}
    xf_formats = []
    for xf in styles.iterfind("m:cellXfs/m:xf", NS):
        fid = int(xf.get("numFmtId", "0"))
        xf_formats.append(custom.get(fid) or BUILTIN_FORMATS.get(fid, str(fid)))
    out: list[list[Cell]] = []
    for row in sheet.iterfind("m:sheetData/m:row", NS):
        cells: list[Cell] = []
        for c in row.findall("m:c", NS):
            i = _col(c.get("r"))
            cells.extend([Cell(None)] * (i - len(cells)))
            fmt = xf_formats[int(c.get("s", "0"))]
            kind = c.get("t", "n")
            if kind == "inlineStr":
                value = "".join(t.text or "" for t in c.iter(f"{{{NS['m']}}}t"))
            elif kind == "s":
                value = shared[int(c.find("m:v", NS).text)]
            elif kind == "b":
                value = c.find("m:v", NS).text == "1"
            else:
                value = float(c.find("m:v", NS).text)
                if "yy" in fmt:
                    value = EPOCH + timedelta(seconds=round(value * 86400))
            cells.append(Cell(value, fmt))
        out.append(cells)
    return out


def read_rows(content: bytes) -> list[list]:
    """The sheet's values, row by row (dates as datetimes, numbers as floats)."""
    return [[c.value for c in row] for row in read_cells(content)]
