import threading

import pytest
from django.db import connection, transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from urja.core import ids
from urja.core.models import NumberSeries
from urja.core.services import NumberBlocks, allocate_numbers, next_number


@pytest.mark.django_db
def test_sequential_numbers_are_unique_and_checked():
    numbers = [next_number(key="receipt:T", template="R{seq:6}{check}") for _ in range(20)]
    assert len(set(numbers)) == 20
    assert numbers[0] == "R000001" + ids.check_character("R000001")
    assert all(ids.has_valid_check(n) for n in numbers)


@pytest.mark.django_db
def test_bulk_allocation_is_contiguous_and_continues():
    first = allocate_numbers(key="bill", template="{seq:5}", count=3)
    assert first == ["00001", "00002", "00003"]
    assert next_number(key="bill", template="{seq:5}") == "00004"


@pytest.mark.django_db(transaction=True)
def test_concurrent_allocation_never_repeats(on_postgres):
    if not on_postgres:
        pytest.skip("SQLite test databases are in-memory per connection; concurrency is proven on PostgreSQL")
    results: list[str] = []
    errors: list[Exception] = []

    def worker():
        try:
            for _ in range(25):
                results.extend(allocate_numbers(key="conc", template="{seq:6}", count=2))
        except Exception as exc:  # surfaced below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(results) == 200
    assert sorted(results) == [f"{i:06d}" for i in range(1, 201)]


@pytest.mark.django_db
def test_the_stored_template_renders_and_a_new_series_starts_at_one():
    from urja.core.models import NumberSeries

    assert allocate_numbers(key="notes", template="N{seq:3}", count=2) == ["N001", "N002"]
    assert NumberSeries.objects.get(key="notes").template == "N{seq:3}"
    # a later caller's template does not change an existing series
    assert next_number(key="notes", template="X{seq:9}") == "N003"
    assert NumberSeries.objects.get(key="notes").next_value == 4


@pytest.mark.django_db(transaction=True)
def test_outside_a_transaction_an_allocation_is_one_statement():
    from django.test.utils import CaptureQueriesContext

    next_number(key="one-statement", template="{seq}")  # creates the series
    with CaptureQueriesContext(connection) as queries:
        assert allocate_numbers(key="one-statement", template="{seq}", count=3) == ["2", "3", "4"]
    assert [q["sql"].split()[0] for q in queries.captured_queries] == ["UPDATE"]  # no BEGIN/COMMIT around it


# --- NumberBlocks: numbers drawn a block at a time inside one transaction ------------------------


@pytest.mark.django_db
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    takes=st.lists(st.tuples(st.sampled_from(["a", "b"]), st.integers(1, 9)), min_size=1, max_size=12),
    block=st.integers(1, 10),
)
def test_blocks_hand_out_what_allocate_numbers_would_and_give_back_the_rest(takes, block):
    # reference: one allocate_numbers per take, on series of their own, rolled back after
    def numbers(blocks: bool) -> tuple[list[list[str]], dict[str, int]]:
        sid = transaction.savepoint()
        try:
            drawn = NumberBlocks(block=block) if blocks else None
            out = [
                (drawn.take if drawn else allocate_numbers)(
                    key=f"blk:{key}", template=f"{key.upper()}{{seq:4}}", count=n
                )
                for key, n in takes
            ]
            if drawn:
                drawn.give_back()
            after = dict(NumberSeries.objects.filter(key__startswith="blk:").values_list("key", "next_value"))
            return out, after
        finally:
            transaction.savepoint_rollback(sid)

    assert numbers(blocks=True) == numbers(blocks=False)


@pytest.mark.django_db
def test_blocks_draw_once_a_block_and_give_back_before_others_draw():
    calls = []
    blocks = NumberBlocks(block=100, before_draw=lambda: calls.append("draw"))
    assert blocks.take(key="blk:c", template="{seq:4}", count=3) == ["0001", "0002", "0003"]
    assert blocks.take(key="blk:c", template="{seq:4}", count=2) == ["0004", "0005"]
    assert calls == ["draw"]  # one statement for both takes
    assert NumberSeries.objects.get(key="blk:c").next_value == 101  # the block is held meanwhile
    blocks.give_back()
    assert calls == ["draw", "draw"]
    assert next_number(key="blk:c", template="{seq:4}") == "0006"  # no gap
    blocks.give_back()  # nothing left: no statement
    assert calls == ["draw", "draw"]
