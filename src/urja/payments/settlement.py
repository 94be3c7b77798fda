"""Bank / collection-agency settlement files: streamed parse, per-row report, set-based posting.

Format (CSV, UTF-8, header row, any column order, extra columns ignored):

    row_key,consumer_number,amount,paid_at[,reference][,method]

`row_key` is the agency's unique transaction id: a row posts once per (source, row_key) however
often the file is imported. On PostgreSQL the valid rows are streamed with COPY into a temporary
staging table, resolved by one statement and posted by two (payments, ledger entries) in one
transaction; elsewhere they are posted in chunks with bulk inserts. Called from
services.import_settlement (the public entry point).
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import NamedTuple

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from urja.billing.models import EntryType, LedgerEntry
from urja.core import regdata
from urja.core.services import record_audit
from urja.customers.models import Account, AccountStatus

from .models import ImportBatch, Payment, PaymentChannel, PaymentMethod, PaymentStatus, SuspenseCode

REQUIRED = ("row_key", "consumer_number", "amount", "paid_at")
OPTIONAL = ("reference", "method")
AMOUNT = re.compile(r"^\d{1,12}(\.\d{1,2})?$")
FILE_METHODS = {
    PaymentMethod.BANK,
    PaymentMethod.CASH,
    PaymentMethod.CHEQUE,
    PaymentMethod.UPI,
    PaymentMethod.NETBANKING,
}
CHUNK = 5000


class FileError(ValueError):
    pass


@dataclass
class Report:
    rows: int = 0
    errors: int = 0
    duplicates: int = 0
    items: list = field(default_factory=list)
    max_items: int = 10_000

    def add(self, line: int, key: str, code: str, message: str) -> None:
        if code in ("duplicate", "duplicate_in_file"):
            self.duplicates += 1
        else:
            self.errors += 1
        if len(self.items) < self.max_items:
            self.items.append({"line": line, "key": key, "code": code, "message": message})


# A validated row: (line, row_key, consumer_number, amount, paid_at, reference, method). Plain tuples:
# a million of them go through here per file.
Row = tuple


BLOCK = 1 << 20


def _blocks(stream) -> Iterator:
    read = getattr(stream, "read", None)
    if read is not None:
        while block := read(BLOCK):
            yield block
    else:
        yield from stream


def _text_lines(stream, hasher=None) -> Iterator[str]:
    """Lines of a text or binary stream, whatever its chunking (UTF-8, BOM dropped)."""
    decoder = codecs.getincrementaldecoder("utf-8-sig")()
    pending = ""
    for chunk in _blocks(stream):
        if isinstance(chunk, str):
            chunk = chunk.encode()
        if hasher is not None:
            hasher.update(chunk)
        try:
            text = pending + decoder.decode(chunk)
        except UnicodeDecodeError as exc:
            raise FileError("the file is not UTF-8 text") from exc
        lines = text.splitlines(keepends=True)
        pending = lines.pop() if lines and not lines[-1].endswith(("\n", "\r")) else ""
        yield from lines
    if pending:
        yield pending


def parse(stream, report: Report, hasher=None) -> Iterator[Row]:
    """Validate rows one at a time; bad rows go to the report, good ones are yielded."""
    reader = csv.reader(_text_lines(stream, hasher))
    try:
        header = [h.strip().lstrip("\ufeff").lower() for h in next(reader)]
    except StopIteration as exc:
        raise FileError("the file is empty") from exc
    except csv.Error as exc:
        raise FileError(f"not a CSV file: {exc}") from exc
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise FileError(f"missing column(s): {', '.join(missing)}; expected {', '.join(REQUIRED + OPTIONAL)}")
    idx = {name: header.index(name) for name in REQUIRED + OPTIONAL if name in header}
    width = len(header)
    i_key, i_num, i_amt, i_at = (idx[c] for c in REQUIRED)
    i_ref, i_method = idx.get("reference"), idx.get("method")
    limit = Decimal(regdata.load("payments/charges.toml")["limits"]["max_payment"])
    tz = timezone.get_current_timezone()
    latest = timezone.now() + timedelta(days=1)
    parse_dt = datetime.fromisoformat
    amount_ok = AMOUNT.match
    zero = Decimal(0)
    dates: dict[str, datetime | None] = {}  # a file has few distinct timestamps
    add = report.add
    rows = 0
    try:
        for values in reader:
            if not values:
                continue
            rows += 1
            line = reader.line_num
            if len(values) != width:
                add(line, "", "malformed_row", f"expected {width} fields, got {len(values)}")
                continue
            key = values[i_key].strip()
            if not key or len(key) > 60:
                add(line, key[:60], "missing_key", "row_key is required (at most 60 characters)")
                continue
            number = values[i_num].strip().upper()
            if not number:
                add(line, key, "missing_account", "consumer_number is required")
                continue
            text = values[i_amt].strip()
            if not amount_ok(text):
                text = text.replace(",", "")
                if not amount_ok(text):
                    add(
                        line,
                        key,
                        "invalid_amount",
                        f"amount {values[i_amt]!r} is not a positive amount with at most two decimals",
                    )
                    continue
            amount = Decimal(text)
            if amount <= zero or amount > limit:
                add(line, key, "invalid_amount", f"amount {text} must be above 0 and at most {limit}")
                continue
            stamp = values[i_at]
            parsed = dates.get(stamp, False)
            if parsed is False:
                try:
                    moment = parse_dt(stamp.strip())
                    if moment.tzinfo is None:
                        moment = moment.replace(tzinfo=tz)
                    parsed = None if moment > latest else moment
                except ValueError:
                    parsed = None
                if len(dates) < 100_000:
                    dates[stamp] = parsed
            if parsed is None:
                add(line, key, "invalid_date", f"paid_at {stamp!r} is not a past date (YYYY-MM-DD[ HH:MM])")
                continue
            method = (
                values[i_method].strip().lower() or PaymentMethod.BANK if i_method is not None else PaymentMethod.BANK
            )
            if method not in FILE_METHODS:
                add(line, key, "invalid_method", f"method {method!r} is not one of {sorted(FILE_METHODS)}")
                continue
            reference = values[i_ref].strip()[:64] if i_ref is not None else ""
            yield (line, key, number, amount, parsed, reference, method)
    except csv.Error as exc:
        raise FileError(f"line {reader.line_num}: {exc}") from exc
    finally:
        report.rows += rows


def run_import(*, actor, source: str, filename: str, stream, max_report: int = 10_000) -> ImportBatch:
    report = Report(max_items=max_report)
    hasher = hashlib.sha256()
    with transaction.atomic():
        batch = ImportBatch.objects.create(
            source=source,
            filename=filename[:200],
            sha256="",
            imported_by=actor if getattr(actor, "pk", None) else None,
        )
        rows = parse(stream, report, hasher)
        try:
            if connection.vendor == "postgresql":
                posted, suspense, total, prepaid = _post_postgres(
                    batch=batch, source=source, rows=rows, report=report, actor=actor
                )
            else:
                posted, suspense, total, prepaid = _post_chunked(
                    batch=batch, source=source, rows=rows, report=report, actor=actor
                )
        except FileError as exc:
            from urja.core.errors import DomainError

            raise DomainError(str(exc), code="invalid_file") from exc
        report.items.sort(key=lambda item: item["line"])
        batch.sha256 = hasher.hexdigest()
        batch.rows, batch.posted, batch.suspense = report.rows, posted, suspense
        batch.errors, batch.duplicates = report.errors, report.duplicates
        batch.total_posted = total
        batch.report = report.items
        batch.save()
        record_audit(
            actor=actor,
            channel="import",
            action="payments.file_imported",
            obj=batch,
            changes={
                "source": source,
                "rows": report.rows,
                "posted": posted,
                "suspense": suspense,
                "errors": report.errors,
                "duplicates": report.duplicates,
                "total": total,
            },
        )
        if prepaid:
            _prepaid_followups(prepaid, actor=actor)
    return batch


def _prepaid_followups(payment_ids: list[int], *, actor) -> None:
    """Prepaid accounts paid by file still get their rebate, token and reconnection."""
    from . import services

    for payment in Payment.objects.filter(pk__in=payment_ids).select_related("account__consumer", "account__section"):
        account = Account.objects.select_for_update().select_related("consumer", "section").get(pk=payment.account_id)
        services._after_prepaid_recharge(payment, account=account, actor=actor)
        if payment.payg_token:
            Payment.objects.filter(pk=payment.pk).update(payg_token=payment.payg_token)


# --- generic path (SQLite, or any database) --------------------------------------------------------


def _chunks(rows: Iterable[Row], size: int) -> Iterator[list[Row]]:
    chunk: list[Row] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


class _Named(NamedTuple):
    line: int
    row_key: str
    consumer_number: str
    amount: Decimal
    paid_at: datetime
    reference: str
    method: str


def _post_chunked(*, batch, source, rows, report, actor):
    posted = suspense = 0
    total = Decimal(0)
    seen_in_file: set[str] = set()
    prepaid: list[int] = []
    now = timezone.now()
    actor_id = actor.pk if getattr(actor, "pk", None) else None
    for raw in _chunks(rows, CHUNK):
        chunk = [_Named._make(r) for r in raw]
        numbers = {r.consumer_number for r in chunk}
        accounts = {
            a["consumer_number"]: a
            for a in Account.objects.filter(consumer_number__in=numbers).values(
                "id", "consumer_number", "status", "section_id", "is_prepaid"
            )
        }
        keys = [f"{source}:{r.row_key}" for r in chunk]
        existing = set(
            Payment.objects.filter(channel=PaymentChannel.FILE, idempotency_key__in=keys).values_list(
                "idempotency_key", flat=True
            )
        )
        good: list[tuple[Row, dict]] = []
        for row in chunk:
            key = f"{source}:{row.row_key}"
            if row.row_key in seen_in_file:
                report.add(row.line, row.row_key, "duplicate_in_file", "the same row_key appears earlier in the file")
                continue
            seen_in_file.add(row.row_key)
            if key in existing:
                report.add(row.line, row.row_key, "duplicate", "already imported")
                continue
            account = accounts.get(row.consumer_number)
            if account is None:
                report.add(row.line, row.row_key, "unknown_account", f"no account {row.consumer_number}")
                continue
            good.append((row, account))
        entries = [
            LedgerEntry(
                account_id=a["id"],
                entry_type=EntryType.PAYMENT,
                amount=-r.amount,
                posted_at=r.paid_at,
                description=f"Payment via {source} ({r.row_key})"[:200],
                reference_type="payment_file",
                reference_id=str(batch.pk),
                idempotency_key=f"pay:file:{source}:{r.row_key}",
                channel="import",
                created_by_id=actor_id,
            )
            for r, a in good
            if a["status"] != AccountStatus.PERMANENTLY_DISCONNECTED
        ]
        LedgerEntry.objects.bulk_create(entries, batch_size=1000)
        by_key = {e.idempotency_key: e for e in entries}
        payments = []
        for r, a in good:
            entry = by_key.get(f"pay:file:{source}:{r.row_key}")
            payments.append(
                Payment(
                    channel=PaymentChannel.FILE,
                    method=r.method,
                    idempotency_key=f"{source}:{r.row_key}",
                    account_id=a["id"],
                    consumer_number=r.consumer_number,
                    amount=r.amount,
                    status=PaymentStatus.POSTED if entry else PaymentStatus.IN_SUSPENSE,
                    received_at=r.paid_at,
                    posted_at=now if entry else None,
                    ledger_entry=entry,
                    reference=r.reference,
                    office_id=a["section_id"],
                    batch=batch,
                    suspense_reason="" if entry else "account is permanently disconnected",
                    suspense_code="" if entry else SuspenseCode.ACCOUNT_CLOSED,
                )
            )
            if entry:
                posted += 1
                total += r.amount
            else:
                suspense += 1
        Payment.objects.bulk_create(payments, batch_size=1000)
        prepaid += [p.pk for p, (_, a) in zip(payments, good, strict=True) if a["is_prepaid"] and p.ledger_entry]
    return posted, suspense, total, prepaid


# --- PostgreSQL path: COPY into staging + set-based posting ----------------------------------------

# COPY text format: these characters must be escaped inside a field.
_COPY_SPECIAL = re.compile(r"[\\\t\n\r]")
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _copy_blocks(rows: Iterable[Row], size: int = 20_000) -> Iterator[bytes]:
    """Tab-separated blocks for COPY … FROM STDIN (text format), built by hand: the csv module's
    writer cost two microseconds a row. A file has few distinct timestamps, so their text is cached."""
    special = _COPY_SPECIAL.search
    escapes = _COPY_ESCAPES
    stamps: dict[datetime, str] = {}
    parts: list[str] = []
    for line, key, number, amount, paid_at, reference, method in rows:
        stamp = stamps.get(paid_at)
        if stamp is None:
            stamp = paid_at.isoformat()
            if len(stamps) < 100_000:
                stamps[paid_at] = stamp
        if special(f"{key}{number}{reference}"):
            key, number, reference = key.translate(escapes), number.translate(escapes), reference.translate(escapes)
        parts.append(f"{line}\t{key}\t{number}\t{amount}\t{stamp}\t{reference}\t{method}\n")
        if len(parts) >= size:
            yield "".join(parts).encode()
            parts.clear()
    if parts:
        yield "".join(parts).encode()


def _post_postgres(*, batch, source, rows, report, actor):
    """COPY the valid rows into a staging table, resolve them in one statement, then post.

    The posting is optimistic: the payments and ledger entries are written with plain INSERTs inside
    a savepoint, without first looking up every key among the payments already imported (that join
    cost more than the inserts). A row imported before by another file of this source breaks the
    payments' unique key; then the savepoint is rolled back, the rows already imported are marked,
    and the rest is posted. Either way every row posts at most once, and imports of one source are
    serialised by an advisory lock, so the outcome is the same as checking first.
    """
    actor_id = actor.pk if getattr(actor, "pk", None) else None
    with connection.cursor() as cur:
        cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [f"urja.payments.import:{source}"])
        # room for the staging sort and hash joins in memory (this transaction only); JIT compiling
        # the big statements costs more than it saves here
        cur.execute("SET LOCAL work_mem = '256MB'")
        cur.execute("SET LOCAL synchronous_commit = off")
        cur.execute("SET LOCAL jit = off")
        cur.execute(
            "CREATE TEMP TABLE pay_stage (line integer, row_key text, consumer_number text,"
            " amount numeric(14,2), paid_at timestamptz, reference text, method text) ON COMMIT DROP"
        )
        with cur.copy("COPY pay_stage FROM STDIN") as copy:
            for block in _copy_blocks(rows):
                copy.write(block)
        cur.execute("ANALYZE pay_stage")
        cur.execute(
            "SELECT pg_get_serial_sequence('payments_payment', 'id'),"
            " pg_get_serial_sequence('billing_ledgerentry', 'id')"
        )
        payment_seq, entry_seq = cur.fetchone()
        # One pass: the account, the first occurrence of each row_key in the file, and the ids of the
        # payment and (unless in suspense) the ledger entry, reserved from the tables' sequences. The
        # duplicate check sorts by row_key in byte order (C collation): any order groups equal keys,
        # and this one is cheap. Only there: keys built from row_key must keep the default collation,
        # or the payments' key index cannot serve the lookups below.
        cur.execute(
            """
            CREATE TEMP TABLE pay_rows ON COMMIT DROP AS
            SELECT r.*, false AS seen,
                   CASE WHEN r.account_id IS NULL OR r.dup THEN NULL ELSE nextval(%s::regclass) END AS payment_id,
                   CASE WHEN r.account_id IS NULL OR r.dup OR r.account_status = %s THEN NULL
                        ELSE nextval(%s::regclass) END AS entry_id
            FROM (SELECT s.*, a.id AS account_id, a.status AS account_status, a.section_id, a.is_prepaid,
                         row_number() OVER (PARTITION BY s.row_key COLLATE "C" ORDER BY s.line) > 1 AS dup
                  FROM pay_stage s LEFT JOIN customers_account a ON a.consumer_number = s.consumer_number) r
            """,
            [payment_seq, AccountStatus.PERMANENTLY_DISCONNECTED, entry_seq],
        )
        cur.execute("DROP TABLE pay_stage")
        try:
            with transaction.atomic():
                _insert_posted(cur, batch=batch, source=source, actor_id=actor_id)
        except IntegrityError:
            # Some rows were imported before: leave those out (their ids stay unused) and post the rest.
            cur.execute(
                """
                UPDATE pay_rows r SET seen = true, payment_id = NULL, entry_id = NULL
                FROM payments_payment p
                WHERE r.payment_id IS NOT NULL AND p.channel = 'file' AND p.idempotency_key = %s || ':' || r.row_key
                """,
                [source],
            )
            _insert_posted(cur, batch=batch, source=source, actor_id=actor_id)
        # Rows not posted, for the report. A row of an unknown account whose key was imported before
        # is a duplicate; there are few such rows, so that is looked up row by row (a scalar subquery:
        # an EXISTS could be planned as a hash of every file payment ever imported).
        cur.execute(
            """
            SELECT line, row_key,
                   CASE WHEN dup THEN 'duplicate_in_file' WHEN seen THEN 'duplicate'
                        WHEN (SELECT true FROM payments_payment p
                              WHERE p.channel = 'file' AND p.idempotency_key = %s || ':' || r.row_key) IS NOT NULL
                        THEN 'duplicate' ELSE 'unknown_account' END,
                   consumer_number
            FROM pay_rows r WHERE payment_id IS NULL ORDER BY line
            """,
            [source],
        )
        messages = {
            "duplicate_in_file": "the same row_key appears earlier in the file",
            "duplicate": "already imported",
        }
        for line, key, code, number in cur:
            report.add(line, key, code, messages.get(code, f"no account {number}"))
        cur.execute(
            "SELECT count(*) FILTER (WHERE entry_id IS NOT NULL),"
            " count(*) FILTER (WHERE payment_id IS NOT NULL AND entry_id IS NULL),"
            " coalesce(sum(amount) FILTER (WHERE entry_id IS NOT NULL), 0),"
            " coalesce(array_agg(payment_id) FILTER (WHERE is_prepaid AND entry_id IS NOT NULL), '{}')"
            " FROM pay_rows"
        )
        posted, suspense, total, prepaid = cur.fetchone()
        cur.execute("DROP TABLE pay_rows")
    return posted, suspense, Decimal(total), list(prepaid)


def _insert_posted(cur, *, batch, source: str, actor_id) -> None:
    """The payments (first: a key imported before fails here, before any ledger work) and the ledger
    entries of the rows in pay_rows that have ids."""
    cur.execute(
        """
        INSERT INTO payments_payment (id, channel, method, idempotency_key, account_id, consumer_number, amount,
            status, received_at, posted_at, ledger_entry_id, reference, instrument_number, instrument_bank,
            instrument_date, office_id, collected_by_id, session_id, batch_id, receipt_number, verification_code,
            allocation, balance_after, suspense_reason, suspense_code, payg_token, notes)
        SELECT payment_id, 'file', method, %s || ':' || row_key, account_id, consumer_number, amount,
               CASE WHEN entry_id IS NULL THEN 'in_suspense' ELSE 'posted' END, paid_at,
               CASE WHEN entry_id IS NULL THEN NULL ELSE now() END, entry_id, reference, '', '', NULL,
               section_id, NULL, NULL, %s, NULL, '', '{}'::jsonb, NULL,
               CASE WHEN entry_id IS NULL THEN 'account is permanently disconnected' ELSE '' END,
               CASE WHEN entry_id IS NULL THEN %s ELSE '' END, '', ''
        FROM pay_rows WHERE payment_id IS NOT NULL
        """,
        [source, batch.pk, SuspenseCode.ACCOUNT_CLOSED],
    )
    cur.execute(
        """
        INSERT INTO billing_ledgerentry (id, account_id, entry_type, amount, posted_at, due_date, description,
            reference_type, reference_id, idempotency_key, reverses_id, created_by_id, channel)
        SELECT entry_id, account_id, %s, -amount, paid_at, NULL, left('Payment via ' || %s || ' (' || row_key
               || ')', 200), 'payment_file', %s, 'pay:file:' || %s || ':' || row_key, NULL, %s, 'import'
        FROM pay_rows WHERE entry_id IS NOT NULL
        """,
        [EntryType.PAYMENT, source, str(batch.pk), source, actor_id],
    )
