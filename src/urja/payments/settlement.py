"""Bank / collection-agency settlement files: streamed parse, per-row report, set-based posting.

Format (CSV, UTF-8, header row, any column order, extra columns ignored):

    row_key,consumer_number,amount,paid_at[,reference][,method]

`row_key` is the agency's unique transaction id: a row posts once per (source, row_key) however
often the file is imported. Valid rows are posted in chunks, in one transaction, through the same
post-payment steps as a counter payment (services._post), each done for the whole chunk at once:
receipt numbers and codes (services.allocate_receipt_numbers, services.verification_codes),
allocation (selectors.allocate_payments), the ledger entries (billing.ledger.prepare_new_entries
and post_prepared, or post_entries: checked), the bills' conditional rebates
(billing.rebates.rebates_on_payments), collection-case settlement (services.settle_collection_cases)
and, for prepaid accounts, the recharge follow-ups. On PostgreSQL each chunk's lookups run a chunk
ahead on a connection of their own (_looked_up) and its rows are written behind, in a thread of
their own, while the next chunk is settled (_Writer); docs/payments.md. Called from
services.import_settlement (the public entry point).
"""

from __future__ import annotations

import codecs
import collections
import csv
import functools
import gc
import hashlib
import json
import queue
import re
import sys
import threading
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

import numpy as np
from django.db import DEFAULT_DB_ALIAS, connection, connections, transaction
from django.utils import timezone

from urja.billing import bulk, ledger
from urja.billing.bulk import Column
from urja.billing.models import EntryType, LedgerEntry
from urja.billing.rebates import latest_bills, rebates_on_payments
from urja.core import boundary, regdata
from urja.core.services import NumberBlocks, record_audit
from urja.customers.models import Account, AccountStatus
from urja.network.models import Office

from . import selectors
from .models import ImportBatch, Payment, PaymentChannel, PaymentMethod, PaymentStatus, SuspenseCode

REQUIRED = ("row_key", "consumer_number", "amount", "paid_at")
OPTIONAL = ("reference", "method")
# re.ASCII: \d alone also matches "१", "１", "١" — and Decimal() reads them (the input boundary's rule)
AMOUNT = re.compile(r"\d{1,12}(\.\d{1,2})?", re.ASCII)
# the report is JSON in the database: PostgreSQL's jsonb refuses a NUL, so the key is shown without
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
FILE_METHODS = {
    PaymentMethod.BANK,
    PaymentMethod.CASH,
    PaymentMethod.CHEQUE,
    PaymentMethod.UPI,
    PaymentMethod.NETBANKING,
}
CHUNK = 10_000


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


def parse(stream, report: Report, hasher=None, tz=None) -> Iterator[Row]:
    """Validate rows one at a time; bad rows go to the report, good ones are yielded. A date
    without a zone is in `tz` (default: the current time zone)."""
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
    tz = tz or timezone.get_current_timezone()
    bounds = boundary.bounds()
    latest = timezone.now() + bounds.clock_skew
    earliest_year = bounds.earliest_year
    has_control = boundary.has_control
    parse_dt = datetime.fromisoformat
    amount_ok = AMOUNT.fullmatch
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
            if has_control(key + number + (values[i_ref] if i_ref is not None else "")):
                add(
                    line,
                    _CONTROL.sub("?", key[:60]),
                    "invalid_text",
                    "a control character (e.g. NUL) in row_key, account or reference",
                )
                continue
            text = values[i_amt].strip()
            if not amount_ok(text):
                text = text.replace(",", "")
                if not amount_ok(text):
                    add(
                        line,
                        key,
                        "invalid_amount",
                        f"amount {values[i_amt]!r} is not a positive amount in digits 0-9 with at most two decimals",
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
                    parsed = None if moment > latest or moment.year < earliest_year else moment
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


def run_import(
    *, actor, source: str, filename: str, stream, max_report: int = 10_000, staged: bool | None = None
) -> ImportBatch:
    """`staged`: the rows written behind by COPY in a thread of their own (the default on PostgreSQL,
    where it is faster; False: the generic writes, one chunk after the other — the tests compare
    the two)."""
    if staged is None:
        staged = connection.vendor == "postgresql"
    elif staged and connection.vendor != "postgresql":
        raise ValueError("the staged writes need PostgreSQL")
    # Lookups a chunk ahead on a connection of their own, beside the writes — only when the import
    # is its own transaction: another connection would not see what a caller's open one wrote.
    ahead = staged and not connection.in_atomic_block
    report = Report(max_items=max_report)
    hasher = hashlib.sha256()
    with transaction.atomic():
        batch = ImportBatch.objects.create(
            source=source,
            filename=filename[:200],
            sha256="",
            imported_by=actor if getattr(actor, "pk", None) else None,
        )
        if connection.vendor == "postgresql":
            with connection.cursor() as cur:
                # imports of one source one at a time: the check for rows imported before is then exact
                cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [f"urja.payments.import:{source}"])
                cur.execute("SET LOCAL synchronous_commit = off")
                # Every lookup of a chunk is by key (accounts, payments, ledger entries, bills, cases).
                # The tables grow inside this transaction, unseen by their statistics: a planner that
                # believes the ledger small would scan all of it for every chunk.
                cur.execute("SET LOCAL enable_seqscan = off")
                cur.execute("SET LOCAL jit = off")
        rows = _read_ahead(stream, report, hasher)
        try:
            with _gc_paused(), _short_turns(), _references_checked_as_written():
                posted, suspense, total, prepaid = _post_rows(
                    batch=batch, source=source, rows=rows, report=report, actor=actor, staged=staged, ahead=ahead
                )
        except FileError as exc:
            from urja.core.errors import DomainError

            raise DomainError(str(exc), code="invalid_file") from exc
        finally:
            rows.close()  # the reading thread stops (at once if the posting failed)
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


class _Recorder:
    """The report as the reading thread sees it: errors go into the current block, in order with
    the rows around them."""

    def __init__(self):
        self.block: list[tuple] = []
        self.rows = 0

    def add(self, line: int, key: str, code: str, message: str) -> None:
        self.block.append((line, key, code, message))


_BLOCK_ROWS = 2000


def _read_ahead(stream, report: Report, hasher) -> Iterator[Row]:
    """parse() in a thread of its own, a few blocks ahead: the file is read and validated while
    this thread waits on the database (on PostgreSQL, most of an import's time). The errors reach
    the report here, in the order parse() gives them with the rows (as when parse() runs here)."""
    blocks: queue.Queue = queue.Queue(maxsize=8)
    stop = threading.Event()
    tz = timezone.get_current_timezone()  # thread-local: the caller's

    def put(item) -> bool:
        while not stop.is_set():
            try:
                blocks.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        recorder = _Recorder()
        try:
            for row in parse(stream, recorder, hasher, tz):  # type: ignore[arg-type]
                recorder.block.append(row)
                if len(recorder.block) >= _BLOCK_ROWS:
                    block, recorder.block = recorder.block, []
                    if not put(block):
                        return
        except BaseException as exc:  # handed to the importing thread, raised there
            put(recorder.block)
            put(exc)
            return
        put(recorder.block)
        put(recorder.rows)

    reader = threading.Thread(target=produce, name="settlement-parse", daemon=True)
    reader.start()
    try:
        while True:
            item = blocks.get()
            if isinstance(item, int):
                report.rows += item
                return
            if isinstance(item, BaseException):
                raise item
            for event in item:
                if len(event) == 4:
                    report.add(*event)
                else:
                    yield event
    finally:
        stop.set()
        reader.join()


def _prepaid_followups(keys: list[str], *, actor) -> None:
    """Prepaid accounts paid by file get their rebate, token and reconnection (as at the counter)."""
    from urja.billing.ledger import balance

    from . import services

    payments = Payment.objects.filter(channel=PaymentChannel.FILE, idempotency_key__in=keys).select_related(
        "account__consumer", "account__section"
    )
    for payment in payments:
        account = Account.objects.select_for_update().select_related("consumer", "section").get(pk=payment.account_id)
        services._after_prepaid_recharge(payment, account=account, actor=actor)
        Payment.objects.filter(pk=payment.pk).update(
            payg_token=payment.payg_token, balance_after=balance(account=account)
        )


# --- posting ---------------------------------------------------------------------------------------
#
# Every database runs the same steps for a chunk of rows (lookups, receipts, allocation, balances,
# rebates, collection cases). The rows are then written either staged (PostgreSQL): one COPY of the
# chunk's computed columns into a temporary table, then billing's set-based ledger post and one
# INSERT … SELECT for the payments; or generic (any database): billing's bulk post and bulk insert.

# the fields of a validated row (see parse)
_LINE, _KEY, _NUMBER, _AMOUNT, _PAID_AT, _REFERENCE, _METHOD = range(7)


def _chunks(rows: Iterable[Row], size: int) -> Iterator[list[Row]]:
    chunk: list[Row] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


@contextmanager
def _gc_paused():
    """No cyclic garbage collection while a file is posted: the rows are plain tuples, strings and
    numbers (no cycles), and the collector's passes over the hundreds of thousands of them alive at
    once cost about a third of the import's Python time."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@contextmanager
def _short_turns():
    """Threads take the interpreter in shorter turns while a file is posted: the writing thread
    feeds the server a COPY megabyte at a time and must not wait the default 5 ms each time the
    importing thread (pure Python, most of the time) holds the interpreter — the server waited."""
    interval = sys.getswitchinterval()
    sys.setswitchinterval(0.0002)
    try:
        yield
    finally:
        sys.setswitchinterval(interval)


@contextmanager
def _references_checked_as_written():
    """PostgreSQL: the foreign keys (the ledger entries' account, above all) checked as each chunk's
    rows are written — behind, beside the next chunk's Python — instead of all at commit, when
    nothing else runs (a million checks, a fifth of an import). Deferred again after (Django
    declares every foreign key deferrable, initially deferred): a caller's transaction goes on as
    before."""
    if connection.vendor != "postgresql":
        yield
        return
    with connection.cursor() as cur:
        cur.execute("SET CONSTRAINTS ALL IMMEDIATE")
    yield
    # only after a success: a failed import's transaction (or savepoint) is rolled back, which takes
    # the setting back with it — and a statement sent into an aborted transaction would raise in
    # place of the import's own error
    with connection.cursor() as cur:
        cur.execute("SET CONSTRAINTS ALL DEFERRED")


def _post_rows(*, batch, source, rows, report, actor, staged: bool, ahead: bool):
    posted = suspense = 0
    total = Decimal(0)
    seen_in_file: set[str] = set()
    prepaid: list[str] = []
    offices: dict[int, str] = {}
    # Balances after this import's own postings, per account already paid in an earlier chunk: the
    # import is the only writer it knows of, so those accounts' sums are not read again (reading
    # them was the largest lookup of a chunk). A posting by another channel during the import is
    # not seen by the later rows of an account already seen — as within one chunk before.
    known: dict[int, Decimal] = {}
    with (
        _writer(staged) as writer,
        _looked_up(_chunks(rows, CHUNK), source=source, reserve=staged, ahead=ahead, before=writer.wait) as chunks,
    ):
        # receipt numbers drawn a block at a time (what is left is given back at the end): the series
        # are then not written for most chunks, which need not wait for the chunk written behind
        receipt_numbers = NumberBlocks(block=50_000, before_draw=writer.wait)
        for chunk, found in chunks:
            accounts, existing = found.accounts, found.existing
            good: list[tuple[Row, dict]] = []
            for row, key in zip(chunk, found.keys, strict=True):
                row_key = row[_KEY]
                if row_key in seen_in_file:
                    report.add(row[_LINE], row_key, "duplicate_in_file", "the same row_key appears earlier in the file")
                    continue
                seen_in_file.add(row_key)
                if key in existing:
                    report.add(row[_LINE], row_key, "duplicate", "already imported")
                    continue
                account = accounts.get(row[_NUMBER])
                if account is None:
                    report.add(row[_LINE], row_key, "unknown_account", f"no account {row[_NUMBER]}")
                    continue
                good.append((row, account))
            if not good:
                continue
            # the previous chunk's rows are written while this one is settled and its rows are built
            settled = _settle_chunk(
                good, batch=batch, source=source, actor=actor, offices=offices, known=known, staged=staged,
                writer=writer, found=found, receipt_numbers=receipt_numbers,
            )  # fmt: skip
            writer.write(_chunk_rows(settled, batch=batch, source=source, actor=actor, staged=staged))
            post = settled.post
            posted += len(post)
            suspense += len(good) - len(post)
            total += sum((good[i][0][_AMOUNT] for i in post), Decimal(0))
            prepaid += [f"{source}:{good[i][0][_KEY]}" for i in post if good[i][1]["is_prepaid"]]
        receipt_numbers.give_back()
    return posted, suspense, total, prepaid


@dataclass
class _Found:
    """What a chunk's rows need read before they are settled (see _look_up)."""

    accounts: dict[str, dict]  # consumer number → id, consumer_number, status, section_id, is_prepaid
    keys: list[str]  # each row's payment key (source:row_key)
    existing: set[str]  # the chunk's payment keys imported before
    balances: dict[int, Decimal]  # what the accounts first met in this chunk owe
    latest_bills: dict[int, int]  # the accounts' latest bills (billing.rebates.latest_bills)
    open_cases: list[tuple[int, int]]  # (case, account) of their open collection cases
    histories: dict[int, list]  # the ledger histories of the accounts first met that owe (allocation)
    entry_ids: list[int]  # ledger entry ids drawn for the chunk's rows (written behind), one a row


def _look_up(chunk: list[Row], *, source: str, met: set[int], tz, reserve: bool) -> _Found:
    """A chunk's reads that its own import's writes cannot change: the accounts by number, the
    payments imported before (rows of this file are caught by row key), what the accounts not met
    in an earlier chunk owe and, for those that owe, their ledger histories (the import's writes to
    an account follow its first chunk), their latest bills (written by bill runs only) and open
    collection cases (settled under their lock only if still open); with `reserve`, ledger entry
    ids (a sequence: outside any transaction).
    So they can be read ahead, on another connection."""
    accounts = {
        row[1]: dict(zip(("id", "consumer_number", "status", "section_id", "is_prepaid"), row, strict=True))
        for row in bulk.select_in(
            "SELECT id, consumer_number, status, section_id, is_prepaid FROM customers_account"
            " WHERE consumer_number {in}",
            {r[_NUMBER] for r in chunk},
        )
    }
    keys = [f"{source}:{r[_KEY]}" for r in chunk]
    existing = _imported_before(keys)
    ids = {a["id"] for a in accounts.values()}
    first = ids - met
    met |= first
    balances = selectors.ledger_balances(first)
    owing = [pk for pk, balance in balances.items() if balance > 0]
    with timezone.override(tz):  # the caller's (thread-local): a history's days as the caller sees them
        read = selectors.ledger_histories(owing)
    histories = {pk: read[pk] for pk in owing}
    last_day = timezone.localdate(max(r[_PAID_AT] for r in chunk), timezone=tz)
    return _Found(
        accounts,
        keys,
        existing,
        balances,
        latest_bills(ids, on_or_before=last_day),
        selectors.open_collection_cases(ids),
        histories,
        bulk.reserve_ids(LedgerEntry, len(chunk)) if reserve else [],
    )


@contextmanager
def _looked_up(chunks: Iterable[list[Row]], *, source: str, reserve: bool, ahead: bool, before):
    """(chunk, _Found) for each chunk. `ahead` (PostgreSQL): each chunk's lookups run in a thread on
    a connection of its own while the chunk before is settled and written — on one connection they
    took turns with the writes; otherwise each chunk's when it is taken, on this connection, after
    `before()` (the writer's wait: the connection is then this thread's)."""
    look = functools.partial(_look_up, source=source, met=set(), tz=timezone.get_current_timezone(), reserve=reserve)
    if not ahead:
        yield ((chunk, before() or look(chunk)) for chunk in chunks)
        return
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="settlement-lookup", initializer=_lookup_session)

    def pairs():
        pending = None
        for chunk in chunks:
            future = pool.submit(look, chunk)
            if pending is not None:
                yield pending[0], pending[1].result()
            pending = (chunk, future)
        if pending is not None:
            yield pending[0], pending[1].result()

    try:
        yield pairs()
    finally:
        pool.submit(lambda: connections[DEFAULT_DB_ALIAS].close())
        pool.shutdown(wait=True)


def _lookup_session() -> None:
    """The lookup thread's connection reads by key, as the import's own (see run_import)."""
    with connection.cursor() as cur:
        cur.execute("SET enable_seqscan = off")
        cur.execute("SET jit = off")


class _Writer:
    """A chunk's writes in a thread of their own on this thread's connection and transaction
    (PostgreSQL), while the importing thread settles the next chunks and builds their receipt codes
    and COPY text — Python, beside the server's writes on the other core. Up to two writes wait their
    turn (one written, one next), so the server never waits for a chunk that took the importing
    thread longer than most. Only one thread uses the connection at a time: the importing thread
    calls wait() before it does; what it then reads includes every chunk written so far. After a
    write fails, the ones queued behind it are not sent. Without a thread, each write is done at once."""

    QUEUED = 2

    def __init__(self, pool):
        self.pool = pool
        self.queued: collections.deque = collections.deque()  # the writes sent to the thread, oldest first
        self.failed = False

    def wait(self) -> None:
        while self.queued:
            self.queued.popleft().result()  # a failed write fails the import here

    def write(self, rows) -> None:
        """Queue a chunk's write (a callable), after waiting for the oldest when the queue is full."""
        if self.pool is None:
            rows()
            return
        while len(self.queued) >= self.QUEUED:
            self.queued.popleft().result()
        self.queued.append(self.pool.submit(self._run, rows))

    def _run(self, rows) -> None:
        if self.failed:  # the transaction is lost: refuse quietly, the first error is raised
            return
        try:
            rows()
        except BaseException:
            self.failed = True
            raise


@contextmanager
def _writer(background: bool):
    """A _Writer; `background` (the writes behind): its writes in a thread sharing this thread's
    connection and transaction. Leaving waits for the write in flight."""
    if not background:
        yield _Writer(None)
        return
    shared = connections[DEFAULT_DB_ALIAS]
    shared.inc_thread_sharing()
    pool = ThreadPoolExecutor(
        max_workers=1,
        thread_name_prefix="settlement-write",
        initializer=connections.__setitem__,
        initargs=(DEFAULT_DB_ALIAS, shared),
    )
    writer = _Writer(pool)
    try:
        yield writer
        writer.wait()
    finally:
        pool.shutdown(wait=True)  # a write in flight ends before the transaction does
        shared.dec_thread_sharing()


def _imported_before(keys: list[str]) -> set[str]:
    """Which of a chunk's payment keys were imported before. A bank's or agency's transaction ids
    mostly grow, so the keys between the chunk's least and greatest (in the database's order) are
    few — none for a new file — and one range scan of the key index finds them; when the range
    holds many, one lookup per key."""
    cap = 2 * len(keys)
    with connection.cursor() as cur:
        if connection.vendor == "postgresql":
            cur.execute(
                "SELECT p.idempotency_key FROM (SELECT min(k) AS lo, max(k) AS hi FROM unnest(%s::text[]) AS k) r"
                " JOIN payments_payment p ON p.channel = %s AND p.idempotency_key BETWEEN r.lo AND r.hi LIMIT %s",
                [bulk.array_literal(keys), PaymentChannel.FILE, cap + 1],
            )
        else:
            cur.execute(
                "SELECT idempotency_key FROM payments_payment WHERE channel = %s AND idempotency_key BETWEEN %s AND %s"
                " LIMIT %s",
                [PaymentChannel.FILE, min(keys), max(keys), cap + 1],
            )
        found = cur.fetchall()
    if len(found) <= cap:
        return {key for (key,) in found}.intersection(keys)
    return {
        key
        for (key,) in bulk.select_in(
            "SELECT idempotency_key FROM payments_payment WHERE channel = %s AND idempotency_key {in}",
            keys,
            [PaymentChannel.FILE],
        )
    }


@dataclass
class _Settled:
    """A chunk after its database steps: what its rows need to be written."""

    good: list  # (row, account) in file order
    post: list[int]  # positions in good of the rows posted (the others wait in suspense)
    numbers: list[str]  # receipt numbers, per row of good
    entry_ids: list[int]  # ledger entry ids, per posted row
    splits: dict[int, object]  # allocation by position in post (accounts that owed)
    after: list[Decimal]  # balance after each posted row
    now: datetime


def _settle_chunk(
    good: list[tuple[Row, dict]],
    *,
    batch,
    source: str,
    actor,
    offices: dict[int, str],
    known: dict[int, Decimal],
    staged: bool,
    writer: _Writer,
    found: _Found,
    receipt_numbers: NumberBlocks,
) -> _Settled:
    """The post-payment steps of services._post for a chunk of rows at once that read or write the
    database (see the module doc): receipt numbers, balances, allocation, the ledger entries' ids,
    rebates and collection cases. The rows themselves are written by _chunk_rows' write. Each step
    that uses the connection waits for the chunk written behind first (writer.wait): most chunks
    need none, and are settled while it is written."""
    from . import services

    db = writer.wait
    missing = {a["section_id"] for _, a in good} - offices.keys()
    if missing:
        db()
        offices.update(Office.objects.filter(pk__in=missing).values_list("pk", "code"))
    numbers = services.allocate_receipt_numbers(
        channel=PaymentChannel.FILE, offices=[offices.get(a["section_id"]) for _, a in good], blocks=receipt_numbers
    )
    # Money for a permanently disconnected account waits in suspense (it has already left the payer).
    post = [i for i, (_, a) in enumerate(good) if a["status"] != AccountStatus.PERMANENTLY_DISCONNECTED]
    days = _local_days(good)
    paying = {good[i][1]["id"] for i in post}
    balances = {pk: known[pk] for pk in paying & known.keys()}
    balances.update({pk: found.balances[pk] for pk in paying - known.keys() if pk in found.balances})
    if len(balances) < len(paying):  # met before but not yet paid (a closed account's suspense, say)
        db()
        balances.update(selectors.ledger_balances(paying - balances.keys()))
    if any(balance > 0 and pk not in found.histories for pk, balance in balances.items()):
        db()  # the allocation reads the histories of accounts that owe, this import's payments included
    splits = _splits(good, post, days, balances, found.histories)
    if staged:
        # drawn a chunk ahead: a rebate posted by the chunk before may have a greater id — entries
        # are read in (posted_at, id) order, and a rebate is posted at the time of posting
        entry_ids = found.entry_ids[: len(post)]
    else:
        entry_ids = _post_ledger_generic(good, post, numbers, batch=batch, source=source, actor=actor)
    # Balances after each payment, then the bills' conditional rebates those payments earn (not for
    # prepaid accounts: their recharge rebate comes with the follow-ups), carried into the balances.
    digital = set(selectors._data("charges")["digital_payment"]["methods"])
    running = dict(balances)
    after: list[Decimal] = []
    per_account: dict[int, list] = {}
    positions: dict[int, list[int]] = {}
    billed = found.latest_bills  # only their payments can earn a bill's rebates
    for k, i in enumerate(post):
        row, account = good[i]
        account_id = account["id"]
        running[account_id] -= row[_AMOUNT]
        after.append(running[account_id])
        if account_id in billed:
            positions.setdefault(account_id, []).append(k)
            if not account["is_prepaid"]:
                per_account.setdefault(account_id, []).append((k, days[i], row[_METHOD] in digital, after[k]))
    if per_account:
        db()
        for k, credit in rebates_on_payments(
            payments=per_account, actor=actor, channel="import", latest=found.latest_bills
        ):
            account_id = good[post[k]][1]["id"]
            running[account_id] += credit
            for later in positions[account_id]:
                if later >= k:
                    after[later] += credit
    known.update(running)
    if any(account_id in paying for _, account_id in found.open_cases):
        db()
        services.settle_collection_cases(
            settled={good[i][1]["id"]: (running[good[i][1]["id"]], days[i]) for i in post},
            open_cases=found.open_cases,
        )
    return _Settled(good, post, numbers, entry_ids, splits, after, timezone.now())


def _chunk_rows(settled: _Settled, *, batch, source: str, actor, staged: bool):
    """A settled chunk's rows, built without the database (receipt codes, and on PostgreSQL the
    COPY text of its ledger entries and payments): the write that sends them, as a callable for
    _Writer."""
    from . import services

    good = settled.good
    codes = services.verification_codes(
        rows=[(None, r[_NUMBER], r[_AMOUNT], r[_PAID_AT]) for r, _ in good], numbers=settled.numbers
    )
    receipts = list(zip(settled.numbers, codes, strict=True))
    if not staged:
        return functools.partial(_write_generic, settled, batch=batch, source=source, receipts=receipts)
    good, post, numbers = settled.good, settled.post, settled.numbers
    entries = ledger.prepare_new_entries(
        _ledger_batches(good, post, numbers, batch=batch, source=source), ids=settled.entry_ids, actor=actor,
        channel="import",
    )  # fmt: skip
    payments = bulk.copy_text(
        [(len(good), _payment_columns(settled, batch=batch, source=source, receipts=receipts, as_text=True))]
    )
    return functools.partial(_write_behind, entries, payments)


def _splits(good, post: list[int], days: list, balances: dict[int, Decimal], histories) -> dict[int, object]:
    """The allocation of each posted row (by its position in `post`) of an account that owes before
    the chunk (selectors.allocate_payments, with the `histories` read already); the others are all
    advance — an account that owes nothing owes nothing after paying, so allocate_payments splits
    none of its payments."""
    owing = {pk: balance for pk, balance in balances.items() if balance > 0}
    if not owing:
        return {}
    ks = [k for k, i in enumerate(post) if good[i][1]["id"] in owing]
    splits = selectors.allocate_payments(
        payments=[(good[post[k]][1]["id"], good[post[k]][0][_AMOUNT], days[post[k]]) for k in ks],
        balances=owing,
        histories=histories,
    )
    return dict(zip(ks, splits, strict=True))


def _ledger_batches(good, post, numbers, *, batch, source: str) -> list:
    """The ledger entries of a chunk's posted rows, as batches for billing's bulk post. Without an
    idempotency key (as a bill run's): each is written in the transaction that writes its payment,
    whose unique (channel, source:row_key) posts a row once, and it is the payment's one entry
    (ledger_entry); a key a row would cost an index entry on millions of rows."""
    if not post:
        return []
    return [
        (
            len(post),
            [
                Column("account_id", [good[i][1]["id"] for i in post]),
                Column("entry_type", EntryType.PAYMENT),
                Column("amount", -np.array([int(good[i][0][_AMOUNT] * 100) for i in post], dtype=np.int64), 2),
                Column("posted_at", [good[i][0][_PAID_AT] for i in post]),
                Column("description", [f"Payment {numbers[i]} via {source} ({good[i][0][_KEY]})"[:200] for i in post]),
                Column("reference_type", "payment_file"),
                Column("reference_id", str(batch.pk)),
            ],
        )
    ]


def _post_ledger_generic(good, post, numbers, *, batch, source: str, actor) -> list[int]:
    if not post:
        return []
    return ledger.post_entries(
        _ledger_batches(good, post, numbers, batch=batch, source=source),
        actor=actor,
        channel="import",
        return_ids=True,
    )


def _write_generic(settled: _Settled, *, batch, source, receipts) -> None:
    as_text = connection.vendor == "postgresql"  # bulk.insert writes by COPY there
    columns = _payment_columns(settled, batch=batch, source=source, receipts=receipts, as_text=as_text)
    bulk.insert(Payment, [(len(settled.good), columns)])


def _write_behind(entries: ledger.PreparedPost, payments: tuple[list[str], str]) -> None:
    """A chunk's rows written behind (PostgreSQL), from the COPY text _chunk_rows built: billing's
    checked ledger entries, then the payments. Runs in _Writer's thread (see there)."""
    ledger.post_prepared(entries)
    bulk.copy(Payment._meta.db_table, *payments)


def _payment_columns(settled: _Settled, *, batch, source, receipts, as_text: bool) -> list[Column]:
    """A chunk's payments, column by column (`as_text`: the allocation as JSON text, for COPY)."""
    good, post, entry_ids, splits, after, now = (
        settled.good,
        settled.post,
        settled.entry_ids,
        settled.splits,
        settled.after,
        settled.now,
    )
    # COPY (PostgreSQL) takes the allocation as JSON text: most splits are all advance, written
    # without json.dumps; bulk_create (elsewhere) takes the dict
    if len(post) == len(good):  # every row posted (the usual file): the same status etc. in every row
        status, posted_at, entry, balance_after, reason, code = PaymentStatus.POSTED, now, entry_ids, after, "", ""
        if as_text:
            split_json = [
                _allocation_text(splits[k]) if k in splits else _advance_text(r[_AMOUNT])
                for k, (r, _) in enumerate(good)
            ]
        else:
            split_json = [
                splits[k].as_json() if k in splits else {"parts": [], "advance": str(r[_AMOUNT])}
                for k, (r, _) in enumerate(good)
            ]
        return _payment_column_list(
            good, batch, source, receipts, status, posted_at, entry, split_json, balance_after, reason, code
        )
    posted_of = dict(zip(post, range(len(post)), strict=True))
    status, posted_at, entry, split_json, balance_after, reason, code = [], [], [], [], [], [], []
    for i in range(len(good)):
        k = posted_of.get(i)
        if k is None:
            status.append(PaymentStatus.IN_SUSPENSE)
            posted_at.append(None)
            entry.append(None)
            split_json.append("{}" if as_text else {})
            balance_after.append(None)
            reason.append(SUSPENSE_CLOSED)
            code.append(SuspenseCode.ACCOUNT_CLOSED)
        else:
            split = splits.get(k)
            amount = good[i][0][_AMOUNT]
            if split is not None:
                split_json.append(_allocation_text(split) if as_text else split.as_json())
            else:
                split_json.append(_advance_text(amount) if as_text else {"parts": [], "advance": str(amount)})
            status.append(PaymentStatus.POSTED)
            posted_at.append(now)
            entry.append(entry_ids[k])
            balance_after.append(after[k])
            reason.append("")
            code.append("")
    return _payment_column_list(
        good, batch, source, receipts, status, posted_at, entry, split_json, balance_after, reason, code
    )


def _payment_column_list(
    good, batch, source, receipts, status, posted_at, entry, split_json, balance_after, reason, code
):
    return [
        Column("channel", PaymentChannel.FILE),
        Column("method", [r[_METHOD] for r, _ in good]),
        Column("idempotency_key", [f"{source}:{r[_KEY]}" for r, _ in good]),
        Column("account_id", [a["id"] for _, a in good]),
        Column("consumer_number", [r[_NUMBER] for r, _ in good]),
        Column("amount", np.array([int(r[_AMOUNT] * 100) for r, _ in good], dtype=np.int64), 2),
        Column("status", status),
        Column("received_at", [r[_PAID_AT] for r, _ in good]),
        Column("posted_at", posted_at),
        Column("ledger_entry_id", entry),
        Column("reference", [r[_REFERENCE] for r, _ in good]),
        Column("instrument_number", ""),
        Column("instrument_bank", ""),
        Column("instrument_date", None),
        Column("office_id", [a["section_id"] for _, a in good]),
        Column("collected_by_id", None),
        Column("session_id", None),
        Column("batch_id", batch.pk),
        Column("receipt_number", [number for number, _ in receipts]),
        Column("verification_code", [code_ for _, code_ in receipts]),
        Column("allocation", split_json),
        Column("balance_after", balance_after),
        Column("suspense_reason", reason),
        Column("suspense_code", code),
        Column("payg_token", ""),
        Column("notes", ""),
    ]


SUSPENSE_CLOSED = "account is permanently disconnected"


def _allocation_text(split) -> str:
    """split.as_json() as JSON text."""
    if not split.parts:
        return _advance_text(split.advance)
    return json.dumps(split.as_json())


def _advance_text(amount: Decimal) -> str:
    """An allocation that is all advance, as JSON text."""
    return f'{{"parts": [], "advance": "{amount}"}}'


def _local_days(good) -> list:
    """The local day of each row's paid_at (a file has few distinct timestamps)."""
    cache: dict[datetime, object] = {}
    out = []
    for r, _ in good:
        day = cache.get(r[_PAID_AT])
        if day is None:
            day = cache[r[_PAID_AT]] = timezone.localdate(r[_PAID_AT])
        out.append(day)
    return out
