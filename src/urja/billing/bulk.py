"""Column-wise bulk writes: COPY on PostgreSQL, bulk_create elsewhere.

Bill runs (bills), the ledger's bulk post and payment settlement files write rows given column by
column: a value the same in every row, or one value per row (a numpy array of scaled integers, or a
list). Building the COPY text by hand is several times faster than the csv module or executemany.
"""

from __future__ import annotations

import itertools
import json
import re
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

import numpy as np
from django.db import connection

# COPY text format: these characters must be escaped inside a field.
_SPECIAL = re.compile(r"[\\\t\n\r]")
_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


@dataclass
class Column:
    """One column of rows to write: a value the same in every row, or one value per row (a numpy
    array of integers — scaled by 10**-scale, -1 for NULL when nullable — or a list of values)."""

    name: str
    values: object
    scale: int = 0
    nullable: bool = False

    def python(self, n: int) -> list:
        v = self.values
        if isinstance(v, np.ndarray):
            if v.dtype == bool:
                return v.tolist()
            if not self.scale:
                return v.tolist()
            exp = Decimal(1).scaleb(-self.scale)
            return [None if self.nullable and x < 0 else Decimal(x) * exp for x in v.tolist()]
        return v if isinstance(v, list) else [v] * n

    def copy_text(self) -> tuple[str, list | None]:
        """(%-format of the column in a COPY text row, the per-row values it takes or None)."""
        v = self.values
        if isinstance(v, list):
            # the same in every row: written once — equal as text, not only as values (Decimal 1128
            # equals 1128.00, and 1 equals 1.0 and True, but each is written as given)
            # (the last and middle values first: most columns differ, and count() reads all of them)
            if v and v[-1] == v[0] == v[len(v) // 2] and v.count(v[0]) == len(v) and _same_text(v):
                return _copy_literal(v[0]), None
            kinds = set(map(type, v))
            if kinds == {str}:
                # escaping is rare (keys and references with a backslash or tab): check once
                return "%s", [x.translate(_ESCAPES) for x in v] if _SPECIAL.search("".join(v)) else v
            if kinds == {datetime}:
                # str() of an aware datetime costs a microsecond (its offset), and a column holds few
                # distinct ones: each written once (equal instants once: the same timestamptz)
                memo: dict[datetime, str] = {}
                return "%s", [memo.get(x) or memo.setdefault(x, str(x)) for x in v]
            if kinds <= _PLAIN:  # their str() is already a valid COPY field
                return "%s", v
            return "%s", [_copy_value(x) for x in v]
        if not isinstance(v, np.ndarray):
            return _copy_literal(v), None
        if v.dtype == bool:
            if v.all() or not v.any():
                return ("t" if len(v) and v[0] else "f"), None
            return "%s", np.where(v, "t", "f").tolist()
        suffix = f"e-{self.scale}" if self.scale else ""
        if len(v) and (v == v[0]).all():  # the same in every row (zero groups, defaults): written once
            return ("\\N" if self.nullable and v[0] < 0 else f"{int(v[0])}{suffix}"), None
        if self.nullable and (v < 0).any():
            return "%s", [f"{x}{suffix}" if x >= 0 else "\\N" for x in v.tolist()]
        return f"%d{suffix}", v.tolist()


_PLAIN = {int, Decimal, datetime}


def _same_text(values: list) -> bool:
    """Whether values equal to the first are also written as it is (a string equal to a string is
    the same text, an object is itself; otherwise compared as text)."""
    first = values[0]
    if isinstance(first, str) or all(x is first for x in values):
        return True
    return len({str(x) for x in values}) == 1


def _copy_value(value) -> str:
    """One field of a COPY text row."""
    if value is None:
        return "\\N"
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict | list):
        value = json.dumps(value, separators=(",", ":"))
    return str(value).translate(_ESCAPES)


def _copy_literal(value) -> str:
    """A constant field, as it goes into the %-format of a row."""
    return _copy_value(value).replace("%", "%%")


def insert(model, batches: list[tuple[int, list[Column]]]) -> list | None:
    """Write batches of rows (row count, columns): COPY on PostgreSQL, bulk_create elsewhere (then
    the objects created are returned, with their ids)."""
    if not batches:
        return None
    columns = [c.name for c in batches[0][1]]
    if connection.vendor == "postgresql":
        copy_batches(model._meta.db_table, batches)
        return None
    objs = []
    for n, cols in batches:
        for values in zip(*(c.python(n) for c in cols), strict=True):
            objs.append(model(**dict(zip(columns, values, strict=True))))
    return model.objects.bulk_create(objs)


def copy_batches(table: str, batches: list[tuple[int, list[Column]]]) -> None:
    """COPY batches of rows (row count, columns) into `table` (PostgreSQL)."""
    copy(table, *copy_text(batches))


def copy_text(batches: list[tuple[int, list[Column]]]) -> tuple[list[str], str]:
    """(column names, COPY text) of batches of rows — pure, so a caller can build a chunk's text
    while the database writes the previous one."""
    columns = [c.name for c in batches[0][1]]
    parts = []
    for n, cols in batches:
        assert [c.name for c in cols] == columns
        formats, values = zip(*(c.copy_text() for c in cols), strict=True)
        row = "\t".join(formats) + "\n"
        per_row = [v for v in values if v is not None]
        if not per_row:
            parts.append((row % ()) * n)
            continue
        # a few thousand rows at a time: one join over a whole chunk is one call that holds the
        # interpreter for tens of milliseconds, while a thread sending COPY data waits for it
        rows = zip(*per_row, strict=True)
        while piece := "".join(map(row.__mod__, itertools.islice(rows, _ROWS_AT_A_TIME))):
            parts.append(piece)
    return columns, "".join(parts)


_ROWS_AT_A_TIME = 2000


def copy(table: str, columns: list[str], text: str) -> None:
    sql = f"COPY {table} ({', '.join(columns)}) FROM STDIN"
    # the driver's errors as Django's (an IntegrityError for a unique or foreign key refused)
    with connection.cursor() as cursor, connection.wrap_database_errors, cursor.cursor.copy(sql) as cp:
        cp.write(text)


def reserve_ids(model, count: int) -> list[int]:
    """`count` ids from the table's sequence (PostgreSQL), for rows written by COPY whose ids the
    caller needs (e.g. payments pointing at their ledger entries)."""
    if count <= 0:
        return []
    table = model._meta.db_table
    with connection.cursor() as cur:
        # the sequence named once, the ids as one text value: a row per id cost more to fetch than to draw
        cur.execute(
            "SELECT array_to_string(ARRAY(SELECT nextval(seq) FROM generate_series(1, %s)), ',')"
            " FROM CAST(pg_get_serial_sequence(%s, 'id') AS regclass) AS seq",
            [count, table],
        )
        return list(map(int, cur.fetchone()[0].split(",")))


def select_in(sql: str, values, params: list | tuple = ()) -> list[tuple]:
    """Rows of `sql` whose `{in}` is a membership test in `values` (a chunk's keys or ids): one
    array parameter on PostgreSQL (`= ANY(%s)`; building and parsing a statement with thousands of
    placeholders cost more than running it), IN lists of 500 elsewhere. `params` come before it."""
    values = list(values)
    if not values:
        return []
    with connection.cursor() as cur:
        if connection.vendor == "postgresql":
            # one array literal, built here: psycopg quotes a list element by element (client binding)
            cast = "text[]" if isinstance(values[0], str) else "bigint[]"
            cur.execute(sql.replace("{in}", f"= ANY(%s::{cast})"), [*params, array_literal(values)])
            return cur.fetchall()
        rows = []
        for start in range(0, len(values), 500):
            part = values[start : start + 500]
            cur.execute(sql.replace("{in}", f"IN ({', '.join(['%s'] * len(part))})"), [*params, *part])
            rows += cur.fetchall()
        return rows


def array_literal(values: list) -> str:
    """An array parameter as one literal (text or integers), for `%s::text[]` / `%s::bigint[]`."""
    if not isinstance(values[0], str):
        return "{" + ",".join(str(int(v)) for v in values) + "}"
    text = "".join(values)
    if "\\" in text or '"' in text:
        values = [v.replace("\\", "\\\\").replace('"', '\\"') for v in values]
    return '{"' + '","'.join(values) + '"}'
