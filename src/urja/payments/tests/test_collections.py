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
