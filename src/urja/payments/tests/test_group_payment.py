"""Group accounts (issue 15.6): one payment spread over the group's connections — oldest dues first
across the group, paisa-exact, idempotent — its page and API, and the consolidated statement."""

import json
from datetime import date, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from urja.billing import ledger
from urja.billing.models import EntryType
from urja.core.errors import Conflict, DomainError, Forbidden, NotFound
from urja.customers.models import Account, AccountGroup
from urja.demo import testing
from urja.payments import allocation as alloc
from urja.payments import group, services
from urja.payments.models import GroupPayment, Payment

ORDER = ["instalment", "arrears", "dps", "current", "charge"]
TODAY = date(2026, 12, 1)


# --- the pure rule against a simple reference ------------------------------------------------------


def reference(amount: Decimal, items: dict[str, list[alloc.OpenItem]], advance_to: str) -> dict[str, Decimal]:
    """Paisa by paisa is too slow; instead: every item in one list sorted by (category rank, due,
    connection), paid greedily in whole paise; the rest to advance_to."""
    rank = {c: i for i, c in enumerate(ORDER)}
    flat = sorted(
        ((rank[i.category], i.due, acct, i.key, int(i.amount * 100)) for acct, its in items.items() for i in its),
    )
    left = int(amount * 100)
    out: dict[str, int] = {}
    for _r, _d, acct, _k, cents in flat:
        take = min(left, cents)
        if take > 0:
            out[acct] = out.get(acct, 0) + take
        left -= take
    if left:
        out[advance_to] = out.get(advance_to, 0) + left
    return {a: Decimal(c) / 100 for a, c in out.items() if c}


cents = st.integers(min_value=1, max_value=5_000_000).map(lambda c: Decimal(c) / 100)
item = st.builds(
    lambda cat, days, amt, key: alloc.OpenItem(cat, str(key), TODAY - timedelta(days=days), amt),
    st.sampled_from(ORDER),
    st.integers(0, 400),
    cents,
    st.integers(1, 10**6),
)
group_items = st.dictionaries(
    st.sampled_from(["C1", "C2", "C3", "C4", "C5"]), st.lists(item, max_size=6, unique_by=lambda i: i.key), min_size=1
)


@settings(max_examples=300, deadline=None)
@given(amount=cents, items=group_items)
def test_spread_is_paisa_exact_and_matches_the_reference(amount, items):
    advance_to = sorted(items)[0]
    shares = group.spread(amount, items, ORDER, advance_to=advance_to)
    assert sum(s.amount for s in shares) == amount  # the parts add up to the payment, to the paisa
    assert all(s.amount > 0 and s.amount == s.amount.quantize(Decimal("0.01")) for s in shares)
    assert {s.account: s.amount for s in shares} == reference(amount, items, advance_to)
    for s in shares:  # no connection is paid more than it owes, except the advance on the first
        owed = sum((i.amount for i in items[s.account]), Decimal(0))
        assert s.amount <= owed or s.account == advance_to
        assert sum(s.by_category.values()) == s.amount


def test_spread_takes_the_oldest_arrears_of_any_connection_first():
    items = {
        "A": [alloc.OpenItem("current", "1", TODAY, Decimal("500.00"))],
        "B": [alloc.OpenItem("arrears", "2", TODAY - timedelta(days=90), Decimal("300.00"))],
        "C": [alloc.OpenItem("arrears", "3", TODAY - timedelta(days=30), Decimal("300.00"))],
    }
    shares = {s.account: s.amount for s in group.spread(Decimal("400.00"), items, ORDER, advance_to="A")}
    assert shares == {"B": Decimal("300.00"), "C": Decimal("100.00")}
    over = {s.account: s.by_category for s in group.spread(Decimal("1200.00"), items, ORDER, advance_to="A")}
    assert over["A"] == {"current": Decimal("500.00"), "advance": Decimal("100.00")}


# --- the service -----------------------------------------------------------------------------------


def _bill(account, amount, *, due, key):
    return ledger.post_entry(
        account=account, entry_type=EntryType.BILL_CHARGE, amount=amount, description="bill", due_date=due,
        idempotency_key=key,
    )  # fmt: skip


@pytest.fixture
def department(offices):
    """A government department with three connections in division 1 and one in division 2."""
    grp = AccountGroup.objects.create(name="Water Resources Department", kind="government")
    accounts = []
    for i, section in enumerate(["section1", "section1", "section1", "section2"]):
        a = testing.domestic_account(offices[section], name=f"WRD Pump House {i}", mobile="")
        Account.objects.filter(pk=a.pk).update(group=grp)
        accounts.append(Account.objects.get(pk=a.pk))
    today = date.today()
    _bill(accounts[0], "1000.00", due=today + timedelta(days=10), key="g0")  # current
    _bill(accounts[1], "400.00", due=today - timedelta(days=60), key="g1")  # oldest arrears
    _bill(accounts[2], "250.50", due=today - timedelta(days=20), key="g2")  # arrears
    _bill(accounts[3], "999.00", due=today - timedelta(days=90), key="g3")  # another division
    return grp, accounts


@pytest.fixture
def kam(offices):
    return testing.staff_user("key_account_manager", offices["division1"])


def _take(actor, grp, amount, key="utr-1", **kw):
    kw.setdefault("channel", "file")
    kw.setdefault("method", "bank")
    kw.setdefault("reference", "UTR0001")
    return group.take_group_payment(actor=actor, group_id=grp.pk, amount=amount, idempotency_key=key, **kw)


def test_group_payment_settles_oldest_dues_first_within_scope(kam, department):
    grp, (a0, a1, a2, a3) = department
    gp = _take(kam, grp, "1000.00")
    assert gp.posted and gp.amount == Decimal("1000.00")
    parts = {p["consumer_number"]: Decimal(p["amount"]) for p in gp.spread}
    # a3 is in another division: not in the KAM's scope, not touched
    assert parts == {a1.consumer_number: Decimal("400.00"), a2.consumer_number: Decimal("250.50"),
                     a0.consumer_number: Decimal("349.50")}  # fmt: skip
    assert sum(parts.values()) == gp.amount
    assert ledger.balance(account=a1) == 0 and ledger.balance(account=a2) == 0
    assert ledger.balance(account=a0) == Decimal("650.50") and ledger.balance(account=a3) == Decimal("999.00")
    payments = group.parts(gp)
    assert len(payments) == 3 and all(p.receipt_number and p.status == "posted" for p in payments)


def test_a_replayed_group_payment_posts_nothing_twice(kam, department):
    grp, _accounts = department
    first = _take(kam, grp, "500.00")
    again = _take(kam, grp, "500.00")
    assert again.pk == first.pk and GroupPayment.objects.count() == 1
    assert Payment.objects.count() == len(first.spread)
    with pytest.raises(Conflict):
        _take(kam, grp, "501.00")
    assert Payment.objects.count() == len(first.spread)


def test_an_interrupted_group_payment_is_finished_with_the_same_parts(kam, department):
    grp, _accounts = department
    gp = _take(kam, grp, "700.00")
    # as if the process had died after the plan and its parts, before the flag
    planned = [dict(p) for p in gp.spread]
    GroupPayment.objects.filter(pk=gp.pk).update(posted=False)
    again = _take(kam, grp, "700.00")
    assert again.posted and again.spread == planned and Payment.objects.count() == len(planned)


def test_overpayment_is_advance_on_the_first_connection(kam, department):
    grp, (a0, _a1, _a2, _a3) = department
    gp = _take(kam, grp, "2000.00")
    parts = {p["consumer_number"]: p for p in gp.spread}
    assert Decimal(parts[a0.consumer_number]["amount"]) == Decimal("1349.50")
    assert parts[a0.consumer_number]["by_category"]["advance"] == "349.50"
    assert ledger.balance(account=a0) == Decimal("-349.50")


def test_bad_group_payments_change_nothing(offices, kam, department):
    grp, accounts = department
    with pytest.raises(DomainError) as bad:
        _take(kam, grp, "-5")
    assert bad.value.code == "invalid_amount"
    with pytest.raises(DomainError) as no_ref:
        _take(kam, grp, "100", reference="")
    assert no_ref.value.code == "reference_required"
    with pytest.raises(DomainError) as method:
        _take(kam, grp, "100", method="upi")
    assert method.value.code == "method_not_allowed"
    with pytest.raises(Forbidden):  # the KAM does not take money at the counter
        _take(kam, grp, "100", channel="counter", method="cheque", instrument_number="123456")
    other_division = testing.staff_user("key_account_manager", offices["division2"])
    with pytest.raises(NotFound):
        group.statement(actor=other_division, group_id=987654)
    only_division1 = AccountGroup.objects.create(name="Only division 1", kind="industrial")
    Account.objects.filter(pk=accounts[0].pk).update(group=only_division1)
    with pytest.raises(NotFound) as hidden:  # no connection in scope: like a group that does not exist
        _take(other_division, only_division1, "1")
    assert hidden.value.code == "group_not_found"
    empty = AccountGroup.objects.create(name="Nobody here", kind="industrial")
    with pytest.raises(NotFound):
        _take(kam, empty, "100")
    assert not GroupPayment.objects.exists() and not Payment.objects.exists()


def test_counter_group_payment_needs_the_cashiers_session(offices, department):
    grp, _accounts = department
    cre = testing.staff_user("cre", offices["division1"])
    with pytest.raises(DomainError) as no_session:
        _take(cre, grp, "300", channel="counter", method="cheque", instrument_number="000123")
    assert no_session.value.code == "no_open_session"
    assert not GroupPayment.objects.exists() and not Payment.objects.exists()
    services.open_session(actor=cre, opening_balance="0.00")
    gp = _take(cre, grp, "300", key="chq-1", channel="counter", method="cheque", instrument_number="000123")
    assert all(p.session_id and p.instrument_number == "000123" for p in group.parts(gp))


# --- page and API ----------------------------------------------------------------------------------


def test_group_payment_page(client, offices, kam, department):
    grp, (_a0, a1, _a2, a3) = department
    client.force_login(kam)
    page = client.get(f"/payments/groups/{grp.pk}/")
    text = page.content.decode()
    assert page.status_code == 200 and a1.consumer_number in text and a3.consumer_number not in text
    assert "₹1,650.50" in text  # the balance in scope, Indian grouping
    bad = client.post(f"/payments/groups/{grp.pk}/", {"amount": "abc", "channel": "file", "method": "bank",
                                                       "reference": "UTR9", "key": "k1"})  # fmt: skip
    assert bad.status_code == 400 and not Payment.objects.exists()
    done = client.post(f"/payments/groups/{grp.pk}/", {"amount": "650.50", "channel": "file", "method": "bank",
                                                        "reference": "UTR9", "key": "k2"})  # fmt: skip
    assert done.status_code == 302
    after = client.get(f"/payments/groups/{grp.pk}/").content.decode()
    assert "₹1,000.00" in after and "UTR9" in after
    assert client.get("/payments/groups/987654/").status_code == 404
    other = testing.staff_user("key_account_manager", offices["division2"])
    client.force_login(other)
    assert client.get(f"/payments/groups/{grp.pk}/").status_code == 200  # its own connection (a3) only
    client.force_login(testing.staff_user("field_agent", offices["section1"]))
    assert client.get(f"/payments/groups/{grp.pk}/").status_code == 403


def test_group_payment_api(client, offices, kam, department):
    grp, accounts = department
    client.force_login(kam)
    url = f"/api/v1/payments/groups/{grp.pk}/payments"
    body = {"amount": "400.00", "idempotency_key": "neft-77", "reference": "UTR77"}
    first = client.post(url, json.dumps(body), content_type="application/json")
    assert first.status_code == 201, first.content
    data = first.json()
    assert data["parts"][0]["consumer_number"] == accounts[1].consumer_number and data["parts"][0]["receipt_number"]
    again = client.post(url, json.dumps(body), content_type="application/json")
    assert again.json()["id"] == data["id"] and Payment.objects.count() == 1
    conflict = client.post(url, json.dumps({**body, "amount": "5"}), content_type="application/json")
    assert conflict.status_code == 409 and conflict.json()["code"] == "idempotency_conflict"
    bad = client.post(
        url, json.dumps({**body, "idempotency_key": "x", "amount": "-1"}), content_type="application/json"
    )
    assert bad.status_code in (400, 422) and set(bad.json()) >= {"code", "message", "details"}
    missing = client.post("/api/v1/payments/groups/987654/payments", json.dumps(body), content_type="application/json")
    assert missing.status_code == 404
    st_ = client.get(f"/api/v1/payments/groups/{grp.pk}/statement").json()
    assert st_["connections"] == 3 and Decimal(st_["total_balance"]) == Decimal("1250.50")
    assert client.get(f"/api/v1/payments/groups/payments/{data['id']}").status_code == 200
    client.force_login(testing.staff_user("key_account_manager", offices["division2"]))
    assert client.get(f"/api/v1/payments/groups/payments/{data['id']}").status_code == 200  # a3 is in its scope
    client.force_login(testing.staff_user("billing_officer", offices["division2"]))
    hidden = AccountGroup.objects.create(name="Only division 1", kind="industrial")
    Account.objects.filter(pk=accounts[0].pk).update(group=hidden)
    assert client.get(f"/api/v1/payments/groups/{hidden.pk}/statement").status_code == 404
