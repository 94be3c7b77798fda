"""Area messages in bulk (notifications.bulk): the set-based INSERT … SELECT queues exactly what the
row-by-row reference queues — same recipients, addresses, languages and texts — and a rerun adds nothing."""

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
