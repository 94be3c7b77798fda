"""Property test (issue 14.6): the set-based SAIFI/SAIDI (one grouped query over the outages' stored
accounts) equal a plain Python reading of IEEE 1366 over the same random outages and rows."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from urja.customers.models import Account
from urja.network.models import Feeder
from urja.reports import operations as ops
from urja.reports.tests import factories as f
from urja.servicedesk.models import Outage, OutageAccount

BASE = datetime(2026, 6, 1, tzinfo=UTC)
SINCE, UNTIL = BASE, BASE + timedelta(days=10)
seconds = st.integers(0, 6 * 3600).map(lambda s: timedelta(seconds=s))
micros = st.integers(0, 999_999).map(lambda u: timedelta(microseconds=u))


@st.composite
def outages(draw, n_feeders: int, n_accounts: int):
    """[(feeder index, start, end or None, [(account index, failed, own restore or None, never out)])]"""
    out = []
    for _ in range(draw(st.integers(0, 8))):
        # starts from a day before the range to a day after it: some fall outside
        start = BASE + timedelta(days=draw(st.integers(-1, 11)), seconds=draw(st.integers(0, 86_399))) + draw(micros)
        end = start + draw(seconds) + draw(micros) if draw(st.integers(0, 4)) else None  # some still in force
        rows = []
        for account in draw(st.lists(st.integers(0, n_accounts - 1), unique=True, max_size=n_accounts)):
            failed = start + draw(st.sampled_from([timedelta(0), timedelta(0), timedelta(minutes=3)])) + draw(micros)
            own = failed + draw(seconds) + draw(micros) if draw(st.booleans()) else None
            rows.append((account, failed, own, draw(st.integers(0, 5)) == 0))
        out.append((draw(st.integers(0, n_feeders - 1)), start, end, rows))
    return out


@pytest.fixture
def network(offices):
    sec = offices["section1"]
    feeders = [f.feeder(sec) for _ in range(3)]
    accounts = [f.account(sec, transformer=f.dt(fd)) for fd in feeders for _ in range(2)]
    accounts.append(f.account(sec, feeder_=feeders[0]))
    off = f.account(sec, feeder_=feeders[2])
    Account.objects.filter(pk=off.pk).update(status="perm_disconnected")  # serves no one
    return feeders, accounts


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), sustained=st.sampled_from([0, 5, 30]))
def test_set_based_indices_equal_the_reference(network, data, sustained):
    feeders, accounts = network
    case = data.draw(outages(len(feeders), len(accounts)))
    sid = transaction.savepoint()
    try:
        reference = []
        for n, (fi, start, end, rows) in enumerate(case):
            fd = feeders[fi]
            status = "restored" if end else "active"
            o = Outage.objects.create(number=f"P{n}", kind="unplanned", status=status, feeder=fd,
                                      office=fd.office, reason="x", starts_at=start, restored_at=end)  # fmt: skip
            OutageAccount.objects.bulk_create(
                OutageAccount(outage=o, account_id=accounts[ai].pk, failed_at=failed, restored_at=own, supplied=never)
                for ai, failed, own, never in rows
            )
            if end is None or not SINCE <= start < UNTIL:
                continue  # not over, or outside the range
            reference += [ops.Interruption(fd.pk, o.pk, (own or end) - failed) for _, failed, own, never in rows
                          if not never]  # fmt: skip
        want = ops.reliability(reference, sustained)
        scope = Feeder.objects.filter(pk__in=[fd.pk for fd in feeders])
        assert ops.interruption_totals(feeders=scope, since=SINCE, until=UNTIL, sustained=sustained) == want
        served = {fd.pk: sum(1 for a in accounts if a.feeder_id == fd.pk) for fd in feeders}
        assert ops.consumers_served(scope) == served
        if sustained == ops.sustained_minutes():
            for r in ops.feeder_reliability(feeders=scope, since=SINCE, until=UNTIL):
                t = want.get(r["feeder"].pk, ops.Totals())
                assert (r["saifi"], r["saidi"]) == (
                    ops.saifi(t.interrupted, served[r["feeder"].pk]),
                    ops.saidi(t.duration, served[r["feeder"].pk]),
                )
    finally:
        transaction.savepoint_rollback(sid)
