"""A settlement file that is its own transaction on PostgreSQL reads each chunk's lookups a chunk
ahead, in a thread on a connection of its own (settlement._looked_up: accounts, payments imported
before, first balances, latest bills, open collection cases, ledger entry ids), while the chunk
before is settled and written. It gives exactly what the generic writes give (the comparison of
test_settlement_staged): the same payments, ledger entries in the same (posted_at, id) order,
collection cases and report. The data is committed
here (another connection sees only that), so the generic run is rolled back and the one ahead kept."""

import io
import itertools
import threading
from unittest import mock

import pytest
from django.db import connection, transaction
from django.db.models import Max
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from urja.billing.models import LedgerEntry
from urja.billing.tests.conftest import make_account, tariffs_loaded  # noqa: F401
from urja.payments import settlement
from urja.payments.tests.test_settlement_staged import DAYS, assert_same, csv_bytes, numbers, row, snapshot  # noqa: F401

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="the lookups ahead are PostgreSQL's"),
]

_sources = itertools.count(1)


def run(*, ahead: bool, data: bytes, chunk: int, source: str) -> dict:
    """Import `data` as its own transaction (ahead, kept) or inside one (generic, rolled back)."""
    threads: list[str] = []
    original = settlement._look_up

    def spy(*args, **kwargs):
        threads.append(threading.current_thread().name)
        return original(*args, **kwargs)

    with mock.patch.object(settlement, "CHUNK", chunk), mock.patch.object(settlement, "_look_up", spy):
        before = LedgerEntry.objects.aggregate(m=Max("id"))["m"] or 0
        if ahead:
            batch = settlement.run_import(
                actor=None, source=source, filename="f.csv", stream=io.BytesIO(data), staged=True
            )
            result = snapshot(batch, before)
        else:
            with transaction.atomic():
                batch = settlement.run_import(
                    actor=None, source=source, filename="f.csv", stream=io.BytesIO(data), staged=False
                )
                result = snapshot(batch, before)
                transaction.set_rollback(True)
    # every chunk's lookups in the lookup thread (ahead) or here (none without a valid row)
    assert {name == threading.current_thread().name for name in threads} <= {not ahead}, threads
    result["chunks looked up"] = len(threads)
    return result


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(row, min_size=1, max_size=20), chunk=st.sampled_from([1, 2, 3, 10_000]))
def test_lookups_ahead_give_what_the_generic_writes_give(numbers, tariffs_loaded, rows, chunk):  # noqa: F811
    data, source = csv_bytes(rows, numbers), f"SRC{next(_sources)}"
    generic = run(ahead=False, data=data, chunk=chunk, source=source)
    ahead = run(ahead=True, data=data, chunk=chunk, source=source)
    assert_same(ahead, generic)


def test_a_rebate_posted_while_the_next_chunk_is_looked_up(numbers, tariffs_loaded):  # noqa: F811
    # the first chunk's digital in-full payment earns the bill's rebates, posted after the next
    # chunks' entry ids were drawn ahead: read in (posted_at, id) order, the entries are the same
    rows = [(1, 0, "1128.00", DAYS[1], "upi"), (2, 1, "500.00", DAYS[1], "cash"), (3, 0, "75.00", DAYS[1], "bank")]
    data = csv_bytes(rows, numbers)
    generic = run(ahead=False, data=data, chunk=1, source="REB")
    ahead = run(ahead=True, data=data, chunk=1, source="REB")
    assert_same(ahead, generic)
    assert [entry[1] for entry in ahead["entries"]] == ["payment", "payment", "payment", "rebate"]
    assert ahead["chunks looked up"] == 3
