"""Batch VEE (`metering.vee_batch`, what `validate_many` runs) gives every reading the same outcome
as validating the readings one by one (`validate_one_by_one`, the per-reading path): same status,
same failed rules and messages, same estimates settled by the same actual reading — over random
reading histories (hypothesis): registers going up, flat, backwards, spiking and rolling over,
estimates and provisional readings, readings already validated or held for review, readings
validated out of order, a meter replaced in the middle, two accounts in one batch."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from urja.core.errors import DomainError
from urja.demo import testing
from urja.metering import selectors, services
from urja.metering.models import Reading, ReadingSource, ReadingStatus, VeeStatus

from .conftest import local

STEP = st.tuples(
    st.integers(min_value=0, max_value=45),  # days since the previous reading (0: same day, an hour on)
    st.sampled_from(["up", "up", "up", "flat", "back", "spike"]),
    st.integers(min_value=1, max_value=400),  # units
    st.sampled_from(["actual", "actual", "actual", "estimated", "provisional"]),
    st.sampled_from(["pending", "pending", "pending", "passed", "review"]),
    st.sampled_from([None, None, "1.5", "4.5"]),  # MD (sanctioned 2 kW)
    st.sampled_from([ReadingSource.SMART_METER, ReadingSource.AMR, ReadingSource.FIELD_AGENT]),
)
HISTORY = st.lists(STEP, min_size=1, max_size=14)


@pytest.fixture
def two_accounts(offices, make_meter):
    accounts = []
    for i, initial in enumerate(("1000", "999700")):  # the second rolls over its 6-digit register
        acc = testing.domestic_account(offices["section1"], name=f"Batch {i}", mobile=f"943701234{i}")
        services.install_meter(
            account=acc,
            meter=make_meter(),
            actor=None,
            channel="system",
            installed_at=local(2025, 1, 1),
            initial_kwh=initial,
        )
        accounts.append(acc)
    return accounts


def _plant(account, steps, *, start, replace_after, make_meter) -> list[int]:
    """Readings of `steps` stored as given (pending ones wait for VEE); returns the pending ids."""
    inst = selectors.current_installation(account)
    at, register, pending = start, inst.initial_kwh, []
    size = Decimal(10**6)
    for n, (days, kind, units, status, vee_status, md, source) in enumerate(steps):
        at = at + (timedelta(days=days) if days else timedelta(hours=1))
        if n == replace_after:
            try:
                services.replace_meter(
                    account=account,
                    new_meter=make_meter(),
                    final_kwh=register,
                    reason="test",
                    actor=None,
                    channel="system",
                    replaced_at=at - timedelta(minutes=30),
                    initial_kwh=0,
                )
            except DomainError:  # a final reading below an earlier one is refused: the old meter stays
                pass
            else:
                inst, register = selectors.current_installation(account), Decimal(0)
        delta = {"up": units, "flat": 0, "back": -units, "spike": units * 40}[kind]
        register = (register + Decimal(delta)) % size
        r = Reading.objects.create(
            meter=inst.meter,
            account=account,
            installation=inst,
            read_at=at,
            source=source,
            status=status,
            kwh=register,
            md_kw=Decimal(md) if md else None,
            vee_status=vee_status,
        )
        if vee_status == VeeStatus.PENDING:
            pending.append(r.pk)
    return pending


def _snapshot(accounts) -> list[tuple]:
    return list(
        Reading.objects.filter(account__in=accounts)
        .order_by("pk")
        .values_list("pk", "vee_status", "exceptions", "reconciled_by_id")
    )


def _outcome(path, ids, accounts) -> list[tuple]:
    with transaction.atomic():
        path(ids)
        result = _snapshot(accounts)
        transaction.set_rollback(True)
    return result


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    first=HISTORY,
    second=HISTORY,
    replace_after=st.one_of(st.none(), st.integers(min_value=1, max_value=8)),
    order=st.randoms(use_true_random=False),
    shuffle=st.booleans(),
)
def test_batch_vee_equals_reading_by_reading(two_accounts, make_meter, first, second, replace_after, order, shuffle):
    a, b = two_accounts
    with transaction.atomic():
        ids = _plant(a, first, start=local(2025, 2, 1), replace_after=replace_after, make_meter=make_meter)
        ids += _plant(b, second, start=local(2025, 2, 3), replace_after=None, make_meter=make_meter)
        if shuffle:  # validated out of order (a late reading, a retried batch)
            order.shuffle(ids)
        else:
            ids.sort(key=lambda pk: (Reading.objects.get(pk=pk).read_at, pk))
        one_by_one = _outcome(services.validate_one_by_one, ids, [a, b])
        batched = _outcome(services.validate_many, ids, [a, b])
        assert batched == one_by_one
        # the per-reading path really validated the pending ones (the comparison is not vacuous)
        assert all(status != VeeStatus.PENDING for pk, status, *_ in one_by_one if pk in ids)
        transaction.set_rollback(True)


def test_batch_vee_holds_a_backwards_register_and_settles_an_estimate(two_accounts):
    """A concrete case of the property: an estimate settled by the next actual, a register that
    went backwards held for review, in one batch."""
    a, _ = two_accounts
    inst = selectors.current_installation(a)
    common = {"meter": inst.meter, "account": a, "installation": inst, "source": ReadingSource.AMR}
    Reading.objects.create(read_at=local(2025, 2, 1), kwh=Decimal("1100"), vee_status="passed", **common)
    est = Reading.objects.create(
        read_at=local(2025, 3, 1), kwh=Decimal("1200"), status=ReadingStatus.ESTIMATED, vee_status="passed", **common
    )
    good = Reading.objects.create(read_at=local(2025, 4, 1), kwh=Decimal("1290"), vee_status="pending", **common)
    back = Reading.objects.create(read_at=local(2025, 5, 1), kwh=Decimal("1000"), vee_status="pending", **common)
    assert services.validate_many([good.pk, back.pk]) == 2
    good.refresh_from_db()
    back.refresh_from_db()
    est.refresh_from_db()
    assert good.vee_status == "passed" and est.reconciled_by_id == good.pk
    assert back.vee_status == "review" and back.exceptions[0]["rule"] == "negative_consumption"
    assert services.validate_many([good.pk, back.pk]) == 0  # validated once
