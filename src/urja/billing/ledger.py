"""Ledger services: post (one entry, or in bulk), reverse and balance (arrears ageing: payments.ageing).

The only writers of LedgerEntry: no other module (and no other app) creates, updates or deletes
ledger rows; on PostgreSQL a trigger refuses UPDATE and DELETE on the table (migration 0008).
"""

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

import numpy as np
from django.db import IntegrityError, connection, transaction
from django.db.models import Sum
from django.utils import timezone

from urja.core.errors import Conflict, DomainError
from urja.core.money import paise
from urja.core.services import record_audit

from . import bulk
from .bulk import Column
from .models import EntryType, LedgerEntry

# Entry types that are credits (reduce what the consumer owes): their amount must be negative.
CREDIT_TYPES = {
    EntryType.PAYMENT,
    EntryType.CREDIT_NOTE,
    EntryType.REBATE,
    EntryType.SUBSIDY,
    EntryType.DEPOSIT_INTEREST,
    EntryType.ADVANCE_INTEREST,
    EntryType.COMPENSATION,
    EntryType.WRITE_OFF,
    EntryType.ESTIMATE_WITHDRAWAL,
}
DEBIT_TYPES = {
    EntryType.BILL_CHARGE,
    EntryType.DEBIT_NOTE,
    EntryType.DPS,
    EntryType.CHARGE,
    EntryType.INSTALMENT,
    EntryType.REFUND,
    EntryType.DEPOSIT_REFUND,
}


def _check(entry_type: str, value: Decimal) -> None:
    """The rules every posted entry obeys (one entry or a bulk post)."""
    if entry_type not in EntryType.values:
        raise DomainError(f"unknown ledger entry type {entry_type!r}", code="unknown_entry_type")
    if value == 0:
        raise DomainError("a ledger entry cannot be zero", code="zero_amount")
    if entry_type in CREDIT_TYPES and value > 0:
        raise DomainError(f"{entry_type} is a credit and must be negative", code="wrong_sign")
    if entry_type in DEBIT_TYPES and value < 0:
        raise DomainError(f"{entry_type} is a debit and must be positive", code="wrong_sign")


def post_entry(
    *,
    account,
    entry_type: str,
    amount: object,
    description: str,
    actor=None,
    channel: str = "system",
    reference_type: str = "",
    reference_id: str = "",
    idempotency_key: str | None = None,
    due_date: date | None = None,
    posted_at: datetime | None = None,
) -> LedgerEntry:
    """Post one entry. With an idempotency key, a repeat returns the entry already posted."""
    value = paise(amount)
    _check(entry_type, value)
    fields = dict(
        account=account,
        entry_type=entry_type,
        amount=value,
        description=description[:200],
        reference_type=reference_type,
        reference_id=str(reference_id),
        due_date=due_date,
        posted_at=posted_at or timezone.now(),
        created_by=actor if getattr(actor, "pk", None) else None,
        channel=channel,
    )
    with transaction.atomic():
        if idempotency_key:
            entry, created = LedgerEntry.objects.get_or_create(idempotency_key=idempotency_key, defaults=fields)
            if not created and (entry.account_id != account.pk or entry.amount != value):
                raise Conflict(
                    "this idempotency key was used for a different posting",
                    code="idempotency_key_reused",
                    details={"key": idempotency_key},
                )
        else:
            entry, created = LedgerEntry.objects.create(**fields), True
        if created:
            record_audit(
                actor=actor,
                channel=channel,
                action=f"ledger.{entry_type}",
                obj=account,
                changes={"amount": value, "entry": entry.pk, "reference": f"{reference_type}:{reference_id}"},
            )
    return entry


# --- bulk post ------------------------------------------------------------------------------------

# Columns of a bulk post, in the order written; those not given take these values in every row.
BULK_COLUMNS = {
    "account_id": None,
    "entry_type": None,
    "amount": None,
    "posted_at": None,
    "description": None,
    "due_date": None,
    "reference_type": "",
    "reference_id": "",
    "idempotency_key": None,
    "channel": "system",
    "created_by_id": None,
}
_REQUIRED = ("account_id", "entry_type", "amount", "posted_at", "description")


def post_entries(
    batches: list[tuple[int, list[Column]]], *, actor=None, channel: str = "system", return_ids: bool = False
) -> list[int] | None:
    """Post many entries at once (bill runs, settlement files): COPY on PostgreSQL.

    `batches` are (row count, columns) as for `billing.bulk.insert`: account_id, entry_type, amount
    (a numpy array of paise with scale 2, or a list of amounts), posted_at and description are
    required; due_date, reference_type, reference_id, idempotency_key, channel and created_by_id
    are optional. Every row is checked as `post_entry` checks one (known type, not zero, credits
    negative, debits positive) before anything is written; one bad row refuses the whole post.
    Rows with an idempotency key posted before (in this call or earlier) are not written again —
    unless the key was used for another account or amount (`idempotency_key_reused`). With
    `return_ids`, the ids of the entries, one per row given (the earlier entry's for a repeat).
    The caller records the audit event of the post (one per bill run chunk, per file)."""
    prepared = [(n, _prepare(n, cols, actor=actor, channel=channel)) for n, cols in batches if n]
    keys: dict[str, tuple[int, int]] = {}  # key → (account, paise) of its first row in this call
    keep_masks = []
    for n, cols in prepared:
        keep_masks.append(_dedupe_keys(n, cols, keys))
    existing = _existing_keys(keys)
    out_batches, id_slots, total = [], [], 0
    key_ids: dict[str, int] = {}
    for (n, cols), keep in zip(prepared, keep_masks, strict=True):
        key_col = cols["idempotency_key"]
        per_row_keys = key_col.values if isinstance(key_col.values, list) else [key_col.values] * n
        if existing:
            keep = [k and (key is None or key not in existing) for k, key in zip(keep, per_row_keys, strict=True)]
        idx = [i for i, k in enumerate(keep) if k]
        id_slots.append((n, per_row_keys, keep, total))
        total += len(idx)
        if len(idx) == n:
            out_batches.append((n, list(cols.values())))
        elif idx:
            out_batches.append((len(idx), [_take(c, idx) for c in cols.values()]))
    ids: list[int] = []
    if return_ids and total and connection.vendor == "postgresql":
        ids = bulk.reserve_ids(LedgerEntry, total)
        out_batches = _with_ids(out_batches, ids)
    with transaction.atomic():
        created = bulk.insert(LedgerEntry, out_batches)
    if not return_ids:
        return None
    if created is not None:
        ids = [obj.pk for obj in created]
    result: list[int] = []
    for n, per_row_keys, keep, start in id_slots:
        pos = start
        for i in range(n):
            key = per_row_keys[i]
            if keep[i]:
                result.append(ids[pos])
                if key is not None:
                    key_ids[key] = ids[pos]
                pos += 1
            else:
                result.append(existing[key][2] if key in existing else key_ids[key])
    return result


def _prepare(n: int, cols: list[Column], *, actor, channel: str) -> dict[str, Column]:
    """The batch's columns in BULK_COLUMNS order, defaults filled in, amounts as paise, checked."""
    given = {c.name: c for c in cols}
    unknown = set(given) - set(BULK_COLUMNS)
    if unknown:
        raise ValueError(f"bulk ledger post: unknown column(s) {sorted(unknown)}")
    missing = [name for name in _REQUIRED if name not in given]
    if missing:
        raise ValueError(f"bulk ledger post: missing column(s) {missing}")
    defaults = {**BULK_COLUMNS, "channel": channel, "created_by_id": actor.pk if getattr(actor, "pk", None) else None}
    out = {name: given.get(name) or Column(name, default) for name, default in defaults.items()}
    amount = out["amount"]
    if isinstance(amount.values, np.ndarray):
        if amount.scale != 2 or amount.values.dtype.kind not in "iu":
            raise ValueError("bulk ledger post: a numpy amount column holds integer paise (scale 2)")
        cents = amount.values.astype(np.int64)
    else:
        values = amount.values if isinstance(amount.values, list) else [amount.values] * n
        cents = np.array([int(paise(v) * 100) for v in values], dtype=np.int64)
    if len(cents) != n:
        raise ValueError(f"bulk ledger post: {len(cents)} amounts for {n} rows")
    out["amount"] = Column("amount", cents, 2)
    types = out["entry_type"].values
    if isinstance(types, list):
        for i, (etype, cent) in enumerate(zip(types, cents.tolist(), strict=True)):
            _check_row(etype, cent, i)
    else:
        _check_type_column(types, cents)
    desc = out["description"]
    if isinstance(desc.values, list):
        if desc.values and max(map(len, desc.values)) > 200:
            out["description"] = Column("description", [d[:200] for d in desc.values])
    elif isinstance(desc.values, str):
        out["description"] = Column("description", desc.values[:200])
    return out


def _check_row(entry_type: str, cents: int, row: int) -> None:
    try:
        if entry_type == EntryType.REVERSAL:  # it must point at what it reverses: reverse_entry
            raise DomainError("a reversal is posted with reverse_entry, not in bulk", code="reversal_not_bulk")
        _check(entry_type, Decimal(cents))
    except DomainError as exc:
        exc.details = {**(exc.details or {}), "row": row}
        raise


def _check_type_column(entry_type: str, cents: np.ndarray) -> None:
    """The same checks as `_check`, on every amount of one entry type at once."""
    bad = None
    if entry_type not in EntryType.values or entry_type == EntryType.REVERSAL:
        bad = 0
    elif (cents == 0).any():
        bad = int(np.flatnonzero(cents == 0)[0])
    elif entry_type in CREDIT_TYPES and (cents > 0).any():
        bad = int(np.flatnonzero(cents > 0)[0])
    elif entry_type in DEBIT_TYPES and (cents < 0).any():
        bad = int(np.flatnonzero(cents < 0)[0])
    if bad is not None:
        _check_row(entry_type, int(cents[bad]) if len(cents) else 0, bad)


def _dedupe_keys(n: int, cols: dict[str, Column], keys: dict) -> list[bool]:
    """Which rows to write: a key repeated in this call posts once (same account and amount) or is
    refused (another posting)."""
    key_col = cols["idempotency_key"]
    if key_col.values is None:
        return [True] * n
    per_row = key_col.values if isinstance(key_col.values, list) else [key_col.values] * n
    accounts = cols["account_id"].python(n)
    cents = cols["amount"].values.tolist()
    keep = []
    for key, account, cent in zip(per_row, accounts, cents, strict=True):
        if key is None:
            keep.append(True)
            continue
        first = keys.get(key)
        if first is None:
            keys[key] = (account, cent)
            keep.append(True)
        elif first != (account, cent):
            raise Conflict(
                "this idempotency key was used for a different posting",
                code="idempotency_key_reused",
                details={"key": key},
            )
        else:
            keep.append(False)
    return keep


def _existing_keys(keys: dict[str, tuple[int, int]]) -> dict[str, tuple[int, int, int]]:
    """Keys of this call posted before: key → (account, paise, entry id); a key posted before for
    another account or amount is refused."""
    if not keys:
        return {}
    found = {}
    for key, account, amount, pk in bulk.select_in(
        "SELECT idempotency_key, account_id, amount, id FROM billing_ledgerentry WHERE idempotency_key {in}", keys
    ):
        found[key] = (account, int(amount * 100), pk)
        if keys[key] != (account, int(amount * 100)):
            raise Conflict(
                "this idempotency key was used for a different posting",
                code="idempotency_key_reused",
                details={"key": key},
            )
    return found


def _take(col: Column, idx: list[int]) -> Column:
    v = col.values
    if isinstance(v, np.ndarray):
        v = v[np.asarray(idx, dtype=np.int64)]
    elif isinstance(v, list):
        v = [v[i] for i in idx]
    return Column(col.name, v, col.scale, col.nullable)


def _with_ids(batches: list[tuple[int, list[Column]]], ids: list[int]) -> list[tuple[int, list[Column]]]:
    out, pos = [], 0
    for n, cols in batches:
        out.append((n, [Column("id", np.asarray(ids[pos : pos + n], dtype=np.int64)), *cols]))
        pos += n
    return out


@dataclass(frozen=True)
class PreparedPost:
    """Entries checked and written out as COPY text by `prepare_new_entries`, posted by `post_prepared`."""

    count: int
    columns: list[str]
    text: str


def prepare_new_entries(
    batches: list[tuple[int, list[Column]]], *, ids: list[int], actor=None, channel: str = "system"
) -> PreparedPost:
    """The entries of `batches` (as for `post_entries`), every row checked as `post_entries` checks
    it, with the ids the caller reserved (`bulk.reserve_ids`, one per row), as COPY text
    (PostgreSQL). Pure: a caller builds it while the database does something else, and posts it
    later with `post_prepared` — a settlement file builds a chunk's entries while the chunk before is
    written. Keys must be new (for callers that know it: a settlement file checks its rows against
    the payments imported before): a key posted before is refused when written, not returned."""
    prepared = [(n, _prepare(n, cols, actor=actor, channel=channel)) for n, cols in batches if n]
    count = sum(n for n, _ in prepared)
    if len(ids) != count:
        raise ValueError(f"prepared ledger post: {len(ids)} ids for {count} rows")
    if not count:
        return PreparedPost(0, [], "")
    columns, text = bulk.copy_text(_with_ids([(n, list(cols.values())) for n, cols in prepared], ids))
    return PreparedPost(count, columns, text)


def post_prepared(prepared: PreparedPost) -> int:
    """Write entries built by `prepare_new_entries` (one COPY). A key posted before refuses the
    post (`idempotency_key_reused`) and leaves the caller's transaction to be rolled back: without
    a savepoint, as the callers (whole-file imports) roll back anyway. Returns how many were posted."""
    if not prepared.count:
        return 0
    try:
        with transaction.atomic(savepoint=False):
            bulk.copy(LedgerEntry._meta.db_table, prepared.columns, prepared.text)
    except IntegrityError as exc:
        if "ledger_idempotency_key_unique" not in str(exc):
            raise
        raise Conflict("an idempotency key of this post was used before", code="idempotency_key_reused") from exc
    return prepared.count


def reverse_entry(*, entry: LedgerEntry, reason: str, actor=None, channel: str = "backoffice") -> LedgerEntry:
    """A reversal is a new entry of the opposite amount pointing at the original."""
    if not reason.strip():
        raise DomainError("a reason is required to reverse an entry", code="reason_required")
    with transaction.atomic():
        original = LedgerEntry.objects.select_for_update().get(pk=entry.pk)
        if original.entry_type == EntryType.REVERSAL:
            raise Conflict("a reversal cannot itself be reversed", code="cannot_reverse_reversal")
        if LedgerEntry.objects.filter(reverses=original).exists():
            raise Conflict(f"entry {original.pk} is already reversed", code="already_reversed")
        reversal = LedgerEntry.objects.create(
            account_id=original.account_id,
            entry_type=EntryType.REVERSAL,
            amount=-original.amount,
            description=f"Reversal: {reason}"[:200],
            reference_type=original.reference_type,
            reference_id=original.reference_id,
            reverses=original,
            posted_at=timezone.now(),
            created_by=actor if getattr(actor, "pk", None) else None,
            channel=channel,
        )
        record_audit(
            actor=actor,
            channel=channel,
            action="ledger.reversal",
            obj=original.account,
            changes={"reverses": original.pk, "amount": reversal.amount, "reason": reason},
        )
    return reversal


def balance(*, account, as_of: datetime | None = None) -> Decimal:
    """What the consumer owes (negative: credit / advance with the utility)."""
    qs = LedgerEntry.objects.filter(account=account)
    if as_of is not None:
        qs = qs.filter(posted_at__lte=as_of)
    return paise(qs.aggregate(total=Sum("amount"))["total"] or 0)
