"""Bulk reading import (AMR files, mobile-app batches): CSV or JSON, streamed, idempotent.

* Streamed: the file is read in chunks; a 1M-row file never sits in memory.
* Idempotent: a reading is unique on (meter, read_at, source); the same file twice adds nothing
  (the second batch reports every row as a duplicate, and names the earlier batch with that hash).
* Per-row error report: `ImportRowError` rows (row number, code, message, raw line).
* PostgreSQL: COPY into a temporary staging table, validation as set-based SQL, then
  INSERT … ON CONFLICT DO NOTHING. SQLite: batched Python validation and bulk_create.
* Scoped: a file uploaded by a staff member writes readings only for the accounts that member may
  see (core.scope, the one scope rule). Out of scope answers like nonexistent, per row: a meter
  installed now on an account out of scope is `unknown_meter`, as a serial no meter has; a row read
  while the meter served an account out of scope is `meter_not_installed`, as if that installation
  did not exist. No actor (the command line): the whole utility.

Formats are documented in docs/metering.md ("Bulk import").
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import json
import re
import time as _time
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import BinaryIO

import psycopg
from django.db import DatabaseError, DataError, IntegrityError, connection, transaction
from django.db.models import Count, Max, Min
from django.utils import timezone

from urja.core import boundary, regdata, scope
from urja.core.errors import DomainError
from urja.core.services import record_audit
from urja.customers.models import Account

from .models import ImportBatch, ImportRowError, Installation, Meter, Reading, ReadingSource, ReadingStatus, VeeStatus

CHUNK = 1 << 20
BATCH = 5000
SOURCES = (
    ReadingSource.AMR,
    ReadingSource.FIELD_AGENT,
    ReadingSource.SMART_METER,
    ReadingSource.STAFF,
    ReadingSource.SELF,
)
BASE_COLUMNS = ["meter_serial", "read_at", "kwh", "kvah", "md_kw", "md_kva"]
REQUIRED = {"meter_serial", "read_at", "kwh"}
NUM_RE = r"^[0-9]{1,11}(\.[0-9]{1,3})?$"
TS_RE = (
    r"^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])[T ]([01][0-9]|2[0-3]):[0-5][0-9]"
    r"(:[0-5][0-9](\.[0-9]{1,6})?)?(Z|[+-]([01][0-9]|2[0-3]):?[0-5][0-9])$"
)
_NUM = re.compile(NUM_RE)
_TS = re.compile(TS_RE)
MESSAGES = {
    "unknown_meter": "no meter with this serial",
    "invalid_timestamp": "read_at is not an ISO 8601 timestamp with a UTC offset",
    "timestamp_in_future": "read_at is in the future",
    "timestamp_too_early": "read_at is before the earliest year this system records",
    "missing_register": "kwh is required",
    "negative_register": "register values must not be negative",
    "non_numeric_register": "a register value is not a number (at most 3 decimals)",
    "register_out_of_range": "kwh does not fit the meter's register",
    "meter_not_installed": "the meter was not installed at read_at",
    "wrong_bill_cycle": "the meter's account is in another bill cycle than the file's",
    "invalid_row": "the row is not an object of known fields",
}
CYCLE_RE = re.compile(r"^[A-Za-z0-9_-]{1,12}$")


def cycle_message(account_cycle: str, file_cycle: str) -> str:
    return f"the account is in bill cycle {account_cycle}, the file is for cycle {file_cycle}"


# Order matters: the first failing check is reported, the same on both databases.
CHECK_ORDER = list(MESSAGES)


def tod_zones() -> list[str]:
    return list(regdata.load("metering/reading.toml").get("tod_zones", []))


def columns() -> list[str]:
    return BASE_COLUMNS + [f"tod_{z}" for z in tod_zones()]


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def detect_format(path: Path, file_format: str | None) -> str:
    if file_format:
        fmt = file_format.lower()
    else:
        suffix = path.suffix.lower()
        fmt = {".csv": "csv", ".json": "json", ".jsonl": "jsonl", ".ndjson": "jsonl"}.get(suffix, "")
    if fmt not in ("csv", "json", "jsonl"):
        raise DomainError("file format must be csv, json or jsonl", code="invalid_file_format")
    return fmt


# --- streaming readers -----------------------------------------------------------------------


def iter_json_array(fh: BinaryIO) -> Iterator[object]:
    """Objects of a top-level JSON array, or of the array under {"readings": [...]}, decoded in chunks."""
    decoder = json.JSONDecoder()
    reader = codecs.getincrementaldecoder("utf-8")()
    buf = ""
    pos = 0
    eof = False

    def fill() -> bool:
        nonlocal buf, pos, eof
        chunk = fh.read(CHUNK)
        if not chunk:
            eof = True
            buf = buf[pos:] + reader.decode(b"", final=True)
        else:
            buf = buf[pos:] + reader.decode(chunk)
        pos = 0
        return not eof

    def skip_ws() -> None:
        nonlocal pos
        while True:
            while pos < len(buf) and buf[pos] in " \t\r\n":
                pos += 1
            if pos < len(buf) or eof:
                return
            fill()

    fill()
    skip_ws()
    if buf[pos : pos + 1] == "{":  # {"readings": [ ... ]}
        m = None
        while m is None:
            m = re.match(r'\{\s*"readings"\s*:\s*', buf[pos:])
            if m is None:
                if eof or len(buf) - pos > 1000:
                    raise DomainError('JSON must be an array or {"readings": [...]}', code="invalid_file")
                fill()
        pos += m.end()
        skip_ws()
    if buf[pos : pos + 1] != "[":
        raise DomainError('JSON must be an array or {"readings": [...]}', code="invalid_file")
    pos += 1
    while True:
        skip_ws()
        if buf[pos : pos + 1] == "]":
            return
        if buf[pos : pos + 1] == ",":
            pos += 1
            skip_ws()
        while True:
            try:
                obj, end = decoder.raw_decode(buf, pos)
                if end == len(buf) and not eof:
                    raise ValueError("maybe truncated")
                break
            except ValueError as exc:
                if eof:
                    raise DomainError(f"invalid JSON near character {pos}: {exc}", code="invalid_file") from exc
                fill()
        pos = end
        yield obj


def iter_json_lines(fh: BinaryIO) -> Iterator[object]:
    for number, line in enumerate(io.TextIOWrapper(fh, encoding="utf-8"), start=1):
        if line.strip():
            try:
                yield json.loads(line)
            except ValueError:
                yield {"__invalid__": f"line {number} is not JSON"}


def _cell(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool | dict | list):
        return "!invalid"
    return str(value)


def json_rows(obj_iter: Iterator[object], zones: list[str]) -> Iterator[tuple[list[str | None], str | None]]:
    """Flatten JSON objects to the staging columns; structural problems become a row error."""
    for obj in obj_iter:
        if not isinstance(obj, dict) or "__invalid__" in obj:
            yield [None] * (len(BASE_COLUMNS) + len(zones)), "invalid_row"
            continue
        tod = obj.get("tod") or {}
        unknown = set(obj) - set(BASE_COLUMNS) - {"tod"}
        if not isinstance(tod, dict) or unknown or set(tod) - set(zones):
            yield [None] * (len(BASE_COLUMNS) + len(zones)), "invalid_row"
            continue
        yield [_cell(obj.get(c)) for c in BASE_COLUMNS] + [_cell(tod.get(z)) for z in zones], None


# --- import ---------------------------------------------------------------------------------------


def scoped_accounts(actor):
    """The accounts the importer may write readings for (a queryset), or None: every account (no
    actor, or a role whose scope is the whole utility)."""
    if actor is None or not getattr(actor, "is_authenticated", False):
        return None
    if scope.account_rule(actor) == "all":
        return None
    return scope.scope_accounts(actor, Account.objects.all())


def import_file(
    *,
    path: str | Path,
    actor,
    channel: str,
    source: str = ReadingSource.AMR,
    file_format: str | None = None,
    name: str | None = None,
    enqueue_vee: bool = True,
    bill_cycle: str | None = None,
) -> ImportBatch:
    """Import a reading file; returns the batch with counts. Row errors are kept, never half-applied:
    valid rows are inserted in one transaction with the batch's error report.

    `bill_cycle`: the cycle the file was read for (an AMR file per cycle). A row whose account is in
    another cycle is not imported: it is reported as `wrong_bill_cycle`, naming both cycles (a file from
    the wrong cycle would otherwise bill readings in a run they do not belong to)."""
    path = Path(path)
    if source not in SOURCES:
        raise DomainError(f"source must be one of {', '.join(SOURCES)}", code="invalid_source")
    if bill_cycle is not None and not CYCLE_RE.match(bill_cycle):
        raise DomainError("bill_cycle must be a cycle code such as C01", code="invalid_bill_cycle")
    if not path.exists():
        raise DomainError(f"no such file {path}", code="invalid_file")
    fmt = detect_format(path, file_format)
    accounts = scoped_accounts(actor)
    sha = file_sha256(path)
    earlier = ImportBatch.objects.filter(file_sha256=sha, source=source, state=ImportBatch.State.DONE).first()
    started = _time.perf_counter()
    batch = ImportBatch.objects.create(
        file_name=(name or path.name)[:255],
        file_sha256=sha,
        file_format=fmt,
        source=source,
        imported_by=actor if getattr(actor, "pk", None) else None,
    )
    try:
        with transaction.atomic():
            if connection.vendor == "postgresql":
                counts = _import_postgres(batch, path, fmt, bill_cycle, accounts)
            else:
                try:
                    counts = _import_python(batch, path, fmt, bill_cycle, accounts)
                except UnicodeDecodeError as exc:  # as the PostgreSQL path reports it: not a 500
                    raise DomainError("the file is not UTF-8 text", code="invalid_file") from exc
            batch.rows, batch.inserted, batch.rejected = counts["rows"], counts["inserted"], counts["rejected"]
            batch.duplicates = batch.rows - batch.inserted - batch.rejected
            batch.first_reading_id, batch.last_reading_id = counts.get("first_id"), counts.get("last_id")
            batch.vee_done = not batch.inserted
            batch.state = ImportBatch.State.DONE
            if earlier:
                batch.message = f"the same file was imported before (batch {earlier.pk}); duplicates were skipped"
            batch.finished_at = timezone.now()
            batch.seconds = _time.perf_counter() - started
            batch.save()
            record_audit(
                actor=actor,
                channel=channel,
                action="readings.imported",
                obj=batch,
                changes={
                    "rows": batch.rows,
                    "inserted": batch.inserted,
                    "rejected": batch.rejected,
                    "bill_cycle": bill_cycle,
                },
            )
    except DomainError as exc:
        ImportBatch.objects.filter(pk=batch.pk).update(
            state=ImportBatch.State.FAILED, message=exc.message[:2000], finished_at=timezone.now()
        )
        raise
    if batch.inserted and enqueue_vee:
        from urja.core.jobs import enqueue_background

        from . import tasks

        enqueue_background(tasks.vee_pending)  # never inside the upload's request; deferred if the broker is down
    return batch


def _csv_header(path: Path) -> list[str]:
    with open(path, encoding="utf-8-sig", newline="") as fh:
        header = next(csv.reader(fh), None)
    if not header:
        raise DomainError("the file is empty", code="invalid_file")
    header = [h.strip().lower() for h in header]
    known = set(columns())
    unknown = [h for h in header if h not in known]
    if unknown:
        raise DomainError(f"unknown columns: {', '.join(unknown)}", code="invalid_file", details={"allowed": columns()})
    missing = REQUIRED - set(header)
    if missing:
        raise DomainError(f"missing columns: {', '.join(sorted(missing))}", code="invalid_file")
    if len(set(header)) != len(header):
        raise DomainError("duplicate column names", code="invalid_file")
    return header


# --- PostgreSQL: COPY + set-based validation ------------------------------------------------------


def _copy_in(raw, path: Path, fmt: str, cols: list[str], zones: list[str]) -> None:
    with raw.cursor() as pcur:
        if fmt == "csv":
            header = _csv_header(path)
            with (
                pcur.copy(f"COPY reading_stage ({', '.join(header)}) FROM STDIN (FORMAT csv)") as copy,
                open(path, "rb") as fh,
            ):
                fh.readline()  # the header
                while chunk := fh.read(CHUNK):
                    copy.write(chunk)
        else:
            with (
                pcur.copy(f"COPY reading_stage (pre_error, {', '.join(cols)}) FROM STDIN") as copy,
                open(path, "rb") as fh,
            ):
                objs = iter_json_array(fh) if fmt == "json" else iter_json_lines(fh)
                for values, error in json_rows(objs, zones):
                    copy.write_row([error, *values])


def _scope_sql(accounts) -> str | None:
    """The ids of the accounts in scope as one SQL subquery with its values bound (the same query the
    scope rule gives the ORM), `%` doubled for the parametrised statements it goes into."""
    if accounts is None:
        return None
    sql, params = accounts.values("id").query.sql_with_params()
    return connection.ops.compose_sql(sql, params).replace("%", "%%")


def _validated_sql(
    zones: list[str], *, careful: bool, bill_cycle: str | None = None, scope_sql: str | None = None
) -> str:
    """A query over the staged rows: each row's parsed values, meter, installation and `code` — the
    first failing check, NULL for a good row. `scope_sql`: the accounts in the importer's scope
    (None: all); out of scope reads as nonexistent (see the module's docstring).

    Fast path (careful=False): plain casts with cheap shape checks — a clean AMR file never pays for
    pattern matching; any value that fails to cast aborts the statement and the careful path
    (patterns guard every cast) runs instead. Both give the same codes for the same rows.
    """
    num_cols = ["kwh", "kvah", "md_kw", "md_kva", *[f"tod_{z}" for z in zones]]
    shape = (
        "substr(s.read_at, 5, 1) = '-' AND substr(s.read_at, 8, 1) = '-' AND substr(s.read_at, 11, 1) IN ('T', ' ') "
        "AND substr(s.read_at, 14, 1) = ':' AND (right(s.read_at, 1) = 'Z' "
        "OR substr(s.read_at, length(s.read_at) - 5, 1) IN ('+', '-') "
        "OR substr(s.read_at, length(s.read_at) - 4, 1) IN ('+', '-'))"
    )
    if careful:
        valid_day = (
            "substr(s.read_at, 9, 2)::int <= extract(day from (make_date(substr(s.read_at, 1, 4)::int, "
            "substr(s.read_at, 6, 2)::int, 1) + interval '1 month - 1 day'))"
        )
        ts = f"CASE WHEN s.read_at ~ '{TS_RE}' AND {shape} AND {valid_day} THEN s.read_at::timestamptz END"
        parsed = [f"CASE WHEN s.{c} ~ '{NUM_RE}' THEN s.{c}::numeric END AS {c}_n" for c in num_cols]
        flags = [f"coalesce(s.{c} LIKE '-%%', false) AS {c}_neg" for c in num_cols] + [
            f"(coalesce(s.{c}, '') <> '' AND s.{c} !~ '{NUM_RE}') AS {c}_bad" for c in num_cols
        ]
        neg = " OR ".join(f"p.{c}_neg" for c in num_cols)
        bad = " OR ".join(f"p.{c}_bad" for c in num_cols)
    else:
        ts = f"CASE WHEN {shape} THEN s.read_at::timestamptz END"
        parsed = [f"nullif(s.{c}, '')::numeric AS {c}_n" for c in num_cols]
        flags = []
        neg = " OR ".join(f"coalesce(p.{c}_n < 0, false)" for c in num_cols)
        bad = " OR ".join(f"coalesce(p.{c}_n >= 1e11 OR scale(p.{c}_n) > 3, false)" for c in num_cols)
    lateral = ", ".join([f"{ts} AS ts", *parsed, *flags])
    bounds = boundary.bounds()  # the clock-skew allowance and earliest year every input path uses
    # The account is joined only when the file declares its cycle (CYCLE_RE-checked, so safe as a literal).
    cycle_check, cycle_join, account_cycle = "", "", "NULL::text"
    if bill_cycle is not None:
        cycle_check = f"WHEN a.bill_cycle <> '{bill_cycle}' THEN 'wrong_bill_cycle'"
        cycle_join = "LEFT JOIN customers_account a ON a.id = i.account_id"
        account_cycle = "a.bill_cycle"
    hidden_meter, hidden_inst, scope_join = "", "", ""
    if scope_sql is not None:
        hidden_meter = "OR (ci.id IS NOT NULL AND cs.id IS NULL)"
        hidden_inst = "OR si.id IS NULL"
        scope_join = f"""
        LEFT JOIN metering_installation ci ON ci.meter_id = m.id AND ci.removed_at IS NULL
        LEFT JOIN ({scope_sql}) cs ON cs.id = ci.account_id
        LEFT JOIN ({scope_sql}) si ON si.id = i.account_id"""
    return f"""
        SELECT p.row_no, p.ts, {", ".join(f"p.{c}_n" for c in num_cols)},
            m.id AS meter_id, i.id AS inst_id, i.account_id, {account_cycle} AS account_cycle,
            CASE
                WHEN p.pre_error IS NOT NULL THEN p.pre_error
                WHEN m.id IS NULL {hidden_meter} THEN 'unknown_meter'
                WHEN p.ts IS NULL THEN 'invalid_timestamp'
                WHEN p.ts > now() + interval '{int(bounds.clock_skew.total_seconds())} seconds'
                    THEN 'timestamp_in_future'
                WHEN p.ts < make_date({int(bounds.earliest_year)}, 1, 1) THEN 'timestamp_too_early'
                WHEN coalesce(p.kwh, '') = '' THEN 'missing_register'
                WHEN {neg} THEN 'negative_register'
                WHEN {bad} THEN 'non_numeric_register'
                WHEN p.kwh_n >= power(10::numeric, m.register_digits) THEN 'register_out_of_range'
                WHEN i.id IS NULL {hidden_inst} THEN 'meter_not_installed'
                {cycle_check}
            END AS code
        FROM (
            SELECT s.*, t.* FROM reading_stage s CROSS JOIN LATERAL (SELECT {lateral} OFFSET 0) t
        ) p
        LEFT JOIN metering_meter m ON m.serial = upper(btrim(p.meter_serial))
        LEFT JOIN metering_installation i
            ON i.meter_id = m.id AND i.installed_at <= p.ts AND (i.removed_at IS NULL OR i.removed_at >= p.ts)
        {cycle_join}{scope_join}
    """


def _readings_insert(zones: list[str], source: str, *, on_conflict: bool) -> str:
    """INSERT of the good rows of `source` (validated rows, aliased v) into readings, RETURNING id.
    Parameters: source, status, VEE status, batch id, created at (the application's clock, as the ORM
    stamps other readings, so a simulated month's file readings are not taken for late arrivals)."""
    tod_expr = (
        "nullif(jsonb_strip_nulls(jsonb_build_object("
        + ", ".join(f"'{z}', v.tod_{z}_n::text" for z in zones)
        + ")), '{}'::jsonb)"
        if zones
        else "NULL::jsonb"
    )
    conflict = "ON CONFLICT (meter_id, read_at, source) DO NOTHING" if on_conflict else ""
    return f"""
        INSERT INTO metering_reading (meter_id, account_id, installation_id, read_at, source, status, kwh,
            kvah, md_kw, md_kva, tod, photo, vee_status, estimation_method, review_reason, batch_id, created_at)
        SELECT v.meter_id, v.account_id, v.inst_id, v.ts, %s, %s, v.kwh_n, v.kvah_n, v.md_kw_n, v.md_kva_n,
            {tod_expr}, '', %s, '', '', %s, %s
        FROM {source} v WHERE v.code IS NULL
        {conflict}
        RETURNING id
    """


def _errors_insert(source: str, bill_cycle: str | None = None) -> str:
    """INSERT of the per-row error report for the rows of `source` (aliased v) that fail a check."""
    quoted = {c: "'" + m.replace("'", "''") + "'" for c, m in MESSAGES.items()}
    if bill_cycle is not None:  # names both cycles, as cycle_message does
        quoted["wrong_bill_cycle"] = (
            f"'the account is in bill cycle ' || v.account_cycle || ', the file is for cycle {bill_cycle}'"
        )
    message_case = "CASE v.code " + " ".join(f"WHEN '{c}' THEN {m}" for c, m in quoted.items()) + " END"
    return f"""
        INSERT INTO metering_importrowerror (batch_id, row_number, code, message, raw)
        SELECT %s, v.row_no, v.code, {message_case},
            left(concat_ws(',', s.meter_serial, s.read_at, s.kwh, s.kvah, s.md_kw, s.md_kva), 500)
        FROM {source} v JOIN reading_stage s ON s.row_no = v.row_no
        WHERE v.code IS NOT NULL
    """


def _insert_and_report(
    cur,
    batch: ImportBatch,
    zones: list[str],
    rows: int,
    *,
    careful: bool,
    bill_cycle: str | None = None,
    scope_sql: str | None = None,
) -> tuple:
    """(inserted, first id, last id, rejected).

    A plain INSERT first: a new file (the usual case) skips the per-row speculative insertion that
    ON CONFLICT costs, and only when some row did not go in does a second pass write the error
    report. A duplicate (a file sent again, an overlapping AMR window, a concurrent import of the
    same readings) aborts that attempt; then one statement validates the rows once, writes the
    error report and inserts with ON CONFLICT DO NOTHING.
    """
    validated = f"({_validated_sql(zones, careful=careful, bill_cycle=bill_cycle, scope_sql=scope_sql)})"
    insert = _readings_insert(zones, validated, on_conflict=False)
    params = [batch.source, ReadingStatus.ACTUAL, VeeStatus.PENDING, batch.pk, timezone.now()]
    try:
        with transaction.atomic():
            cur.execute(f"WITH ins AS ({insert}) SELECT count(*), min(id), max(id) FROM ins", params)
            inserted, first_id, last_id = cur.fetchone()
    except IntegrityError:
        insert = _readings_insert(zones, "v", on_conflict=True)
        cur.execute(
            f"""WITH v AS MATERIALIZED {validated},
                errs AS ({_errors_insert("v", bill_cycle)} RETURNING 1),
                ins AS ({insert})
            SELECT count(*), min(id), max(id), (SELECT count(*) FROM errs) FROM ins""",
            [batch.pk, *params],
        )
        return cur.fetchone()
    rejected = 0
    if inserted < rows:
        cur.execute(_errors_insert(validated, bill_cycle), [batch.pk])
        rejected = cur.rowcount
    return inserted, first_id, last_id, rejected


def _import_postgres(batch: ImportBatch, path: Path, fmt: str, bill_cycle: str | None = None, accounts=None) -> dict:
    zones = tod_zones()
    cols = columns()
    scope_sql = _scope_sql(accounts)
    with connection.cursor() as cur:
        try:  # a bigger temp buffer keeps the staging table in memory (only settable before first use)
            with transaction.atomic():
                cur.execute("SET temp_buffers = '256MB'")
        except DatabaseError:
            pass
        cur.execute("DROP TABLE IF EXISTS pg_temp.reading_stage")
        cur.execute(
            "CREATE TEMP TABLE reading_stage (row_no bigint GENERATED ALWAYS AS IDENTITY, pre_error text, "
            + ", ".join(f"{c} text" for c in cols)
            + ") ON COMMIT DROP"
        )
        raw = cur.connection  # psycopg connection
        try:
            _copy_in(raw, path, fmt, cols, zones)
        except (psycopg.errors.DataError, psycopg.errors.BadCopyFileFormat, UnicodeDecodeError) as exc:
            message = str(exc).splitlines()[0]
            context = getattr(getattr(exc, "diag", None), "context", None) or ""
            raise DomainError(f"{message} ({context.strip()})" if context else message, code="invalid_file") from exc
        # The hash joins stay in memory; JIT compilation costs more than it saves on these statements.
        cur.execute("SET LOCAL work_mem = '256MB'")
        cur.execute("SET LOCAL jit = off")
        cur.execute("SELECT count(*) FROM reading_stage")
        (rows,) = cur.fetchone()
        try:
            with transaction.atomic():
                inserted, first_id, last_id, rejected = _insert_and_report(
                    cur, batch, zones, rows, careful=False, bill_cycle=bill_cycle, scope_sql=scope_sql
                )
        except DataError:
            # Some value does not even cast: validate every field with patterns first (slower).
            inserted, first_id, last_id, rejected = _insert_and_report(
                cur, batch, zones, rows, careful=True, bill_cycle=bill_cycle, scope_sql=scope_sql
            )
        cur.execute("DROP TABLE reading_stage")
    return {"rows": rows, "inserted": inserted, "rejected": rejected, "first_id": first_id, "last_id": last_id}


# --- SQLite (and any other database): batched Python validation ----------------------------------


class _Lookup:
    """Meters and their installations, loaded on demand per batch of serials. `accounts`: the
    accounts in the importer's scope (a queryset; None: all)."""

    def __init__(self, accounts=None):
        self.meters: dict[str, tuple[int, int] | None] = {}
        self.installs: dict[int, list[tuple[datetime, datetime | None, int, int]]] = {}
        self.cycles: dict[int, str] = {}  # account id → bill cycle
        self.accounts = accounts
        self.in_scope: set[int] = set()  # of the accounts loaded, those in scope

    def load(self, serials: set[str]) -> None:
        missing = {s for s in serials if s not in self.meters}
        if not missing:
            return
        found = {
            s: (pk, d)
            for s, pk, d in Meter.objects.filter(serial__in=missing).values_list("serial", "id", "register_digits")
        }
        for s in missing:
            self.meters[s] = found.get(s)
        ids = [v[0] for v in found.values()]
        for meter_id, at, removed, pk, account_id in Installation.objects.filter(meter_id__in=ids).values_list(
            "meter_id", "installed_at", "removed_at", "id", "account_id"
        ):
            self.installs.setdefault(meter_id, []).append((at, removed, pk, account_id))
        accounts = {a for items in self.installs.values() for *_, a in items} - set(self.cycles)
        self.cycles.update(Account.objects.filter(pk__in=accounts).values_list("id", "bill_cycle"))
        if self.accounts is not None:
            self.in_scope.update(self.accounts.filter(pk__in=accounts).values_list("id", flat=True))

    def visible(self, account_id: int) -> bool:
        return self.accounts is None or account_id in self.in_scope

    def hidden(self, meter_id: int) -> bool:
        """A meter installed now on an account out of scope: as if no meter had the serial."""
        current = [a for _at, removed, _pk, a in self.installs.get(meter_id, []) if removed is None]
        return bool(current) and not self.visible(current[0])

    def installation(self, meter_id: int, ts: datetime) -> tuple[int, int] | None:
        best = None
        for at, removed, pk, account_id in self.installs.get(meter_id, []):
            if at <= ts and (removed is None or removed >= ts) and (best is None or at > best[0]):
                best = (at, pk, account_id)
        return (best[1], best[2]) if best else None


def _parse_ts(text: str) -> datetime | None:
    if not _TS.match(text):
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00").replace(" ", "T", 1))
    except ValueError:
        return None


def check_row(row: dict, lookup: _Lookup, now: datetime, zones: list[str], bill_cycle: str | None = None):
    """(code, None) for a bad row, (None, values) for a good one — the same rules as the SQL path
    (wrong_bill_cycle: (code, the account's cycle))."""
    serial = (row.get("meter_serial") or "").strip().upper()
    meter = lookup.meters.get(serial)
    if meter is None or lookup.hidden(meter[0]):
        return "unknown_meter", None
    ts = _parse_ts(row.get("read_at") or "")
    if ts is None:
        return "invalid_timestamp", None
    bounds = boundary.bounds()
    if ts > now + bounds.clock_skew:
        return "timestamp_in_future", None
    if ts.year < bounds.earliest_year:
        return "timestamp_too_early", None
    kwh = row.get("kwh") or ""
    if kwh == "":
        return "missing_register", None
    others = ["kvah", "md_kw", "md_kva", *[f"tod_{z}" for z in zones]]
    values = [kwh] + [row.get(c) or "" for c in others]
    if any(v.startswith("-") for v in values):
        return "negative_register", None
    if not _NUM.match(kwh) or any(v and not _NUM.match(v) for v in values[1:]):
        return "non_numeric_register", None
    if Decimal(kwh) >= Decimal(10) ** meter[1]:
        return "register_out_of_range", None
    inst = lookup.installation(meter[0], ts)
    if inst is None or not lookup.visible(inst[1]):
        return "meter_not_installed", None
    if bill_cycle is not None and lookup.cycles.get(inst[1]) != bill_cycle:
        return "wrong_bill_cycle", lookup.cycles.get(inst[1])
    tod = {z: row[f"tod_{z}"] for z in zones if row.get(f"tod_{z}")}
    return None, {
        "meter_id": meter[0],
        "installation_id": inst[0],
        "account_id": inst[1],
        "read_at": ts,
        "kwh": Decimal(kwh),
        "kvah": Decimal(row["kvah"]) if row.get("kvah") else None,
        "md_kw": Decimal(row["md_kw"]) if row.get("md_kw") else None,
        "md_kva": Decimal(row["md_kva"]) if row.get("md_kva") else None,
        "tod": tod or None,
    }


def _python_rows(path: Path, fmt: str, zones: list[str]) -> Iterator[dict]:
    if fmt == "csv":
        header = _csv_header(path)
        with open(path, encoding="utf-8-sig", newline="") as fh:
            reader = csv.reader(fh)
            next(reader)
            for cells in reader:
                if len(cells) != len(header):
                    raise DomainError(
                        f"line {reader.line_num}: {len(cells)} fields, the header has {len(header)}",
                        code="invalid_file",
                    )
                yield dict(zip(header, cells, strict=True))
        return
    cols = columns()
    with open(path, "rb") as fh:
        objs = iter_json_array(fh) if fmt == "json" else iter_json_lines(fh)
        for values, error in json_rows(objs, zones):
            row = {c: v for c, v in zip(cols, values, strict=True) if v is not None}
            if error:
                row["__error__"] = error
            yield row


def _import_python(batch: ImportBatch, path: Path, fmt: str, bill_cycle: str | None = None, accounts=None) -> dict:
    zones = tod_zones()
    lookup = _Lookup(accounts)
    now = timezone.now()
    rows = rejected = 0
    pending: list[dict] = []

    def flush(chunk: list[dict]) -> None:
        nonlocal rejected
        lookup.load({(r.get("meter_serial") or "").strip().upper() for r in chunk})
        good, errors = [], []
        seen = set()
        for r in chunk:
            code, values = (r["__error__"], None) if "__error__" in r else check_row(r, lookup, now, zones, bill_cycle)
            if code:
                raw = ",".join(str(r[c]) for c in BASE_COLUMNS if r.get(c) not in (None, ""))[:500]
                message = cycle_message(values, bill_cycle) if code == "wrong_bill_cycle" else MESSAGES[code]
                errors.append(ImportRowError(batch=batch, row_number=r["__row__"], code=code, message=message, raw=raw))
                continue
            key = (values["meter_id"], values["read_at"])
            if key in seen:
                continue
            seen.add(key)
            good.append(
                Reading(
                    **values,
                    source=batch.source,
                    status=ReadingStatus.ACTUAL,
                    vee_status=VeeStatus.PENDING,
                    batch=batch,
                )
            )
        rejected += len(errors)
        ImportRowError.objects.bulk_create(errors)
        Reading.objects.bulk_create(good, ignore_conflicts=True)

    for number, row in enumerate(_python_rows(path, fmt, zones), start=1):
        row["__row__"] = number
        rows += 1
        pending.append(row)
        if len(pending) >= BATCH:
            flush(pending)
            pending = []
    if pending:
        flush(pending)
    ids = Reading.objects.filter(batch=batch).aggregate(n=Count("id"), first=Min("id"), last=Max("id"))
    return {"rows": rows, "inserted": ids["n"], "rejected": rejected, "first_id": ids["first"], "last_id": ids["last"]}
