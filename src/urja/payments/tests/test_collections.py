from datetime import date, timedelta
from decimal import Decimal

import pytest

from urja.demo.testing import domestic_account
from urja.payments import selectors, services
from urja.payments.models import CollectionCase
from urja.payments.tests.conftest import bill

pytestmark = pytest.mark.django_db
TODAY = date(2025, 6, 10)


def test_flag_notice_and_disconnection_list(offices, cashier):
    late = domestic_account(offices["section1"], mobile="9437000031")
    in_grace = domestic_account(offices["section1"], mobile="9437000032")
    big = domestic_account(offices["section1"], mobile="9437000033")
    small = domestic_account(offices["section1"], mobile="9437000034")
    bill(late, "1500.00", due=TODAY - timedelta(days=20), key="l1")
    bill(in_grace, "900.00", due=TODAY - timedelta(days=2), key="g1")  # grace is 3 days (data)
    bill(big, "30000.00", due=TODAY + timedelta(days=5), key="b1")  # not due, but above the credit limit
    bill(small, "50.00", due=TODAY - timedelta(days=40), key="s1")  # below the minimum overdue
    counts = services.sweep_collections(today=TODAY)
    assert counts["flagged"] == 2
    cases = {c.account_id: c for c in CollectionCase.objects.all()}
    assert set(cases) == {late.pk, big.pk}
    assert cases[late.pk].reason == "overdue" and cases[late.pk].amount_due == Decimal("1500.00")
    assert cases[big.pk].reason == "credit_limit"
    assert services.sweep_collections(today=TODAY)["flagged"] == 0  # idempotent

    assert services.issue_disconnection_notices(today=TODAY) == 2
    assert services.issue_disconnection_notices(today=TODAY) == 0
    case = CollectionCase.objects.get(account=late)
    calendar = late.section.calendar()
    assert case.pay_by == calendar.add_working_days(TODAY, 15)  # OERC Supply Code, from data
    assert calendar.working_days_between(TODAY, case.pay_by) == 15
    assert case.status == "notice_sent" and case.notice_number.startswith("DN")

    after = case.pay_by + timedelta(days=1)
    services.sweep_collections(today=after)
    assert [c.account_id for c in selectors.disconnection_list()] == [late.pk, big.pk] or {
        c.account_id for c in selectors.disconnection_list()
    } == {late.pk, big.pk}

    # paying the dues settles the case at once and takes it off the list
    services.take_payment(
        actor=cashier,
        channel="counter",
        consumer_number=late.consumer_number,
        amount="1500.00",
        idempotency_key="settle",
    )
    assert CollectionCase.objects.get(pk=case.pk).status == "settled"
    assert late.pk not in {c.account_id for c in selectors.disconnection_list()}


def test_list_through_the_api(offices, admin_user, client):
    late = domestic_account(offices["section1"], mobile="9437000041")
    bill(late, "1500.00", due=TODAY - timedelta(days=20), key="l1")
    services.sweep_collections(today=TODAY)
    client.force_login(admin_user)
    body = client.get("/api/v1/payments/collections").json()
    assert [c["consumer_number"] for c in body] == [late.consumer_number]


def test_notices_go_out_in_groups_one_send_task_each(offices, monkeypatch, django_capture_on_commit_callbacks):
    from urja.notifications.models import OutboxMessage
    from urja.payments.services import collection

    monkeypatch.setattr(collection, "NOTICE_BATCH", 2)  # 5 cases: groups of 2, 2 and 1
    batches, single = [], []
    monkeypatch.setattr("urja.notifications.services._enqueue_many", lambda ids: batches.append(list(ids)))
    monkeypatch.setattr("urja.notifications.services._enqueue", single.append)
    accounts = [domestic_account(offices["section1"], mobile=f"943700006{i}") for i in range(5)]
    for i, account in enumerate(accounts):
        bill(account, "1500.00", due=TODAY - timedelta(days=20), key=f"n{i}")
    services.sweep_collections(today=TODAY)
    seen = []
    with django_capture_on_commit_callbacks(execute=True):
        assert services.issue_disconnection_notices(today=TODAY, progress=lambda done, total: seen.append(done)) == 5
    messages = OutboxMessage.objects.filter(event="disconnection.notice")
    assert messages.count() == 5 and not single
    assert [len(b) for b in batches] == [2, 2, 1]  # one send task a group, each message once
    assert sorted(pk for b in batches for pk in b) == sorted(m.pk for m in messages)
    assert seen[0] == 0 and seen[-1] == 5
    numbers = sorted(CollectionCase.objects.values_list("notice_number", flat=True))
    assert len(set(numbers)) == 5 and all(n.startswith("DN") for n in numbers)
    with django_capture_on_commit_callbacks(execute=True):  # a second sweep: nothing again
        assert services.issue_disconnection_notices(today=TODAY) == 0
    assert messages.count() == 5 and len(batches) == 3


def test_a_notice_that_fails_to_queue_does_not_stop_its_group(offices, monkeypatch, django_capture_on_commit_callbacks):
    from urja.notifications import services as notifications
    from urja.notifications.models import OutboxMessage

    monkeypatch.setattr("urja.notifications.services._enqueue_many", lambda ids: None)
    accounts = [domestic_account(offices["section1"], mobile=f"943700007{i}") for i in range(3)]
    for i, account in enumerate(accounts):
        bill(account, "1500.00", due=TODAY - timedelta(days=20), key=f"f{i}")
    services.sweep_collections(today=TODAY)
    real = notifications.notify

    def flaky(**kw):
        if kw["consumer"] == accounts[1].consumer:
            raise RuntimeError("template gone")
        return real(**kw)

    monkeypatch.setattr(notifications, "notify", flaky)
    with django_capture_on_commit_callbacks(execute=True):
        assert services.issue_disconnection_notices(today=TODAY) == 3  # the notices stand
    sent_to = set(OutboxMessage.objects.filter(event="disconnection.notice").values_list("consumer_id", flat=True))
    assert sent_to == {accounts[0].consumer_id, accounts[2].consumer_id}
    assert CollectionCase.objects.filter(status="notice_sent").count() == 3
