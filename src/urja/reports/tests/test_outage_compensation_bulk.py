"""Outage compensation in bulk (issue 14.5): every award of an outage's accounts computed in one pass,
credited through billing's checked bulk post and told through notifications.bulk — a bounded number of
queries for a 1,000-account outage, and nothing paid or told twice when the judgement is replayed."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from urja.billing.models import LedgerEntry
from urja.customers.models import Account, Consumer, Contact
from urja.notifications.models import OutboxMessage
from urja.reports import outages
from urja.reports.models import OutageAward
from urja.reports.tests import factories as f
from urja.servicedesk import catalogue
from urja.servicedesk import services as desk
from urja.servicedesk.models import OutageAccount

# the queries of one judgement: the rows, the schedule, the complaints' awards, the awards made, the ledger
# post (keys looked up, the entries: one COPY on PostgreSQL, SQLite's parameter-limit batches), its audit
# event, the awards' insert (batches on SQLite), the messages (one INSERT … SELECT) and the judgement saved
# (one UPDATE per distinct award). About 13 queries an account before the bulk path: 13,000 here.
BUDGET = 40


def _accounts(section, dt, n: int, prefix: str) -> list[Account]:
    """n consumers with a verified mobile on the DT, set-based (the factories cost ~20 queries each); every
    third one rural (the 18-hour standard instead of 4: two amounts in one judgement)."""
    consumers = Consumer.objects.bulk_create(Consumer(name=f"Bulk consumer {i}") for i in range(n))
    Contact.objects.bulk_create(
        Contact(consumer=c, kind="mobile", value=f"+91943{i:07d}", verified=True) for i, c in enumerate(consumers)
    )
    return Account.objects.bulk_create(
        Account(consumer=c, consumer_number=f"{prefix}{i:08d}", premises_address="House", category="domestic",
                supply_type="lt_1ph", sanctioned_load=Decimal(2), area="rural" if i % 3 == 0 else "urban",
                section=section, office_path=section.path, feeder=dt.feeder, transformer=dt)
        for i, c in enumerate(consumers)
    )  # fmt: skip


@pytest.fixture
def restored(offices):
    catalogue.load_file("servicedesk/oerc_sop.toml")

    def make(n: int, prefix: str):
        dt = f.dt(f.feeder(offices["section1"]))
        accounts = _accounts(offices["section1"], dt, n, prefix)
        start = timezone.now() - timedelta(hours=30)
        outage = desk.declare_outage(actor=None, channel="system", kind="unplanned", reason="DT burnt",
                                     starts_at=start, transformer=dt)  # fmt: skip
        # 20 h without supply: urban 16 hours late (Rs 50 a started hour), rural 2 hours late
        outage = desk.restore_outage(
            actor=None, channel="system", outage=outage, restored_at=start + timedelta(hours=20)
        )
        return outage, accounts, start

    return make


def _paid(outage):
    return LedgerEntry.objects.filter(reference_type="outage", reference_id=str(outage.pk))


def test_a_1000_account_outage_is_compensated_in_a_bounded_number_of_queries(restored):
    outage, accounts, start = restored(1000, "BK")
    with CaptureQueriesContext(connection) as queries:
        assert outages.compensate_outage(outage=outage, now=start + timedelta(hours=21)) == 1000
    assert len(queries) <= BUDGET, f"{len(queries)} queries for 1,000 accounts"
    rural = {a.pk for a in accounts if a.area == "rural"}
    # 20 h out, many affected (≥ 50: the schedule's many-affected rate): urban 16 started hours past the
    # 4-hour standard → Rs 650, rural 2 past the 18-hour one → Rs 50 — each account's own standard
    got = {(acc in rural, amount) for acc, amount in _paid(outage).values_list("account_id", "amount")}
    assert got == {(False, Decimal("-650.00")), (True, Decimal("-50.00"))}
    assert _paid(outage).count() == 1000 == OutageAward.objects.filter(outage=outage).count()
    told = OutboxMessage.objects.filter(event="outage.compensation_credited", account__in=[a.pk for a in accounts])
    assert told.filter(channel="sms").count() == 1000
    assert not OutageAccount.objects.filter(outage=outage, judged_at__isnull=True).exists()


def test_a_replayed_judgement_pays_and_tells_nobody_twice(restored):
    outage, _, start = restored(60, "RP")
    assert outages.compensate_outage(outage=outage, now=start + timedelta(hours=21)) == 60
    credits = sorted(_paid(outage).values_list("account_id", "amount", "pk"))
    messages = OutboxMessage.objects.filter(event="outage.compensation_credited").count()
    judged = sorted(OutageAccount.objects.filter(outage=outage).values_list("account_id", "award", "units_late"))
    assert {award for _, award, _ in judged} == {amount * -1 for _, amount, _ in credits}

    # the job again, the due sweep again: every row is judged, nothing is found to pay
    assert outages.compensate_outage(outage=outage) == 0
    assert outages.compensate_due(now=start + timedelta(hours=22)) == 0
    # the judgement lost (a replay from before it was recorded): the rows are judged again the same way, but
    # the awards made and the ledger's keys stop every credit and message a second time
    OutageAccount.objects.filter(outage=outage).update(judged_at=None, award=None, units_late=None)
    assert outages.compensate_due(now=start + timedelta(hours=23)) == 0
    assert (
        sorted(OutageAccount.objects.filter(outage=outage).values_list("account_id", "award", "units_late")) == judged
    )
    assert sorted(_paid(outage).values_list("account_id", "amount", "pk")) == credits
    assert OutageAward.objects.filter(outage=outage).count() == 60
    assert OutboxMessage.objects.filter(event="outage.compensation_credited").count() == messages
