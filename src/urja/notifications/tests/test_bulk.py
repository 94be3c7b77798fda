"""Area messages in bulk (notifications.bulk): the set-based INSERT … SELECT queues exactly what the
row-by-row reference queues — same recipients, addresses, languages and texts — and a rerun adds nothing."""

import pytest
from django.db import connection

from urja.core.errors import DomainError
from urja.customers.models import Account, Contact
from urja.customers.services import ContactInput, open_account, register_consumer
from urja.notifications import bulk
from urja.notifications.models import OutboxMessage


def _fields(key):
    return sorted(
        (m.account_id, m.channel, m.to, m.language, m.subject, m.body, m.status)
        for m in OutboxMessage.objects.filter(idempotency_key__startswith=key)
    )


def test_set_based_equals_the_row_by_row_reference(offices):
    sec = offices["section1"]
    made = []
    for i, (lang, verified) in enumerate([("en", True), ("hi", True), ("or", True), ("en", False), ("hi", True)]):
        consumer = register_consumer(actor=None, channel="system", name=f"C{i}", preferred_language=lang,
                                     contacts=[ContactInput("mobile", f"94371{i:05d}", verified)])  # fmt: skip
        made.append(open_account(actor=None, channel="system", consumer=consumer, section=sec, premises_address="x",
                                 category="domestic", supply_type="lt_1ph", sanctioned_load="2"))  # fmt: skip
    # the last consumer also has a non-primary verified mobile that opted in to WhatsApp
    Contact.objects.create(consumer=made[4].consumer, kind="mobile", value="+919437199999", is_primary=False,
                           verified=True, whatsapp_opt_in=True)  # fmt: skip
    Contact.objects.filter(consumer=made[4].consumer, is_primary=True).update(verified=False)
    accounts = Account.objects.filter(pk__in=[a.pk for a in made])
    context = {"area": "DT 7 (Station Road)", "outage": "OUT2600001", "start": made[0].created_at}
    n_sql = bulk.notify_accounts(event="outage.detected", accounts=accounts, context=context, key="sql")
    n_py = bulk.notify_accounts_rows(event="outage.detected", accounts=accounts, context=context, key="py")
    assert n_sql == n_py == 5  # 4 SMS (one consumer has no verified mobile) + 1 WhatsApp (opted in)
    assert _fields("sql:") == _fields("py:")
    assert {m.language for m in OutboxMessage.objects.filter(idempotency_key__startswith="sql:")} == {"en", "hi", "or"}
    assert bulk.notify_accounts(event="outage.detected", accounts=accounts, context=context, key="sql") == 0


def test_many_areas_in_one_statement_each_consumer_gets_their_areas_text(offices, django_assert_max_num_queries):
    sec = offices["section1"]
    made = []
    for i, lang in enumerate(["en", "hi", "or"]):
        consumer = register_consumer(actor=None, channel="system", name=f"A{i}", preferred_language=lang,
                                     contacts=[ContactInput("mobile", f"94372{i:05d}", True)])  # fmt: skip
        made.append(open_account(actor=None, channel="system", consumer=consumer, section=sec, premises_address="x",
                                 category="domestic", supply_type="lt_1ph", sanctioned_load="2"))  # fmt: skip
    start = made[0].created_at
    east = Account.objects.filter(pk__in=[made[0].pk, made[1].pk])
    west = Account.objects.filter(pk__in=[made[1].pk, made[2].pk])  # made[1] is in both areas
    messages = [
        bulk.AreaMessage(east, {"area": "DT East-7", "outage": "OUT26E", "start": start}, "area:E"),
        bulk.AreaMessage(west, {"area": "DT West-9", "outage": "OUT26W", "start": start}, "area:W"),
    ]
    # the INSERT … SELECT; on PostgreSQL also the JIT switch off and back (per statement)
    with django_assert_max_num_queries(4 if connection.vendor == "sqlite" else 6):
        assert bulk.notify_areas(event="outage.detected", messages=messages) == 4
    rows = {(m.idempotency_key.split(":")[1], m.account_id): m for m in OutboxMessage.objects.filter(
        idempotency_key__startswith="area:")}  # fmt: skip
    assert set(rows) == {("E", made[0].pk), ("E", made[1].pk), ("W", made[1].pk), ("W", made[2].pk)}
    assert "East-7" in rows[("E", made[1].pk)].body and "West-9" in rows[("W", made[1].pk)].body
    assert "OUT26W" in rows[("W", made[2].pk)].body and rows[("W", made[2].pk)].language == "or"
    assert rows[("E", made[1].pk)].language == "hi" and rows[("E", made[1].pk)].to.endswith("9437200001")
    # the same again: nobody is told twice
    assert bulk.notify_areas(event="outage.detected", messages=messages) == 0
    # an area without its context: refused before anything is queued for any area
    bad = [*messages[:1], bulk.AreaMessage(west, {"area": "DT West-9"}, "area:X")]
    before = OutboxMessage.objects.count()
    with pytest.raises(DomainError) as err:
        bulk.notify_areas(event="outage.detected", messages=bad)
    assert err.value.code == "missing_context" and OutboxMessage.objects.count() == before
    assert bulk.notify_areas(event="outage.detected", messages=[]) == 0
