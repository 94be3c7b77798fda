"""Issue 15 part 6: the key-account manager's portfolio — accounts above 100 kW and groups of its
scope with consumption, MD against contract demand, arrears, open requests; a group's statement."""

from decimal import Decimal

import pytest
from django.core.cache import cache

from urja.billing.models import EntryType, LedgerEntry
from urja.customers.models import Account, AccountGroup
from urja.demo import testing


@pytest.fixture(autouse=True)
def _clear_cache():
    cache.clear()


def _ht(section, name):
    return testing.domestic_account(
        section, name=name, mobile="", load="150", supply_type="ht", unit="kVA", category="industrial",
        sub_category="large",
    )  # fmt: skip


def _owe(account, amount):
    from django.utils import timezone

    LedgerEntry.objects.create(
        account=account, entry_type=EntryType.ADJUSTMENT, amount=Decimal(amount), posted_at=timezone.now(),
        description="test arrears",
    )  # fmt: skip


@pytest.fixture
def book(offices):
    steel = _ht(offices["section1"], "Kalinga Steel Ltd")
    far = _ht(offices["section2"], "Paradip Cement Ltd")
    small = testing.domestic_account(offices["section1"], name="Sunita Behera", mobile="")
    group = AccountGroup.objects.create(name="Water Resources Department", kind="government")
    pump = testing.domestic_account(offices["section1"], name="WRD Pump House 3", mobile="")
    Account.objects.filter(pk=pump.pk).update(group=group)
    _owe(steel, "468474.00")
    _owe(pump, "1200.50")
    return {"steel": steel, "far": far, "small": small, "pump": pump, "group": group}


def test_portfolio_shows_the_key_accounts_of_the_scope_only(client, offices, book):
    kam = testing.staff_user("key_account_manager", offices["division1"])
    client.force_login(kam)
    assert "/backoffice/portfolio/" in client.get("/backoffice/").content.decode()  # in the navigation
    page = client.get("/backoffice/portfolio/").content.decode()
    assert book["steel"].consumer_number in page and book["pump"].consumer_number in page
    assert book["small"].consumer_number not in page  # below the threshold, no group
    assert book["far"].consumer_number not in page  # another division
    assert "₹4,68,474.00" in page  # arrears with Indian grouping
    assert "Water Resources Department" in page

    statement = client.get(f"/backoffice/groups/{book['group'].pk}/").content.decode()
    assert "Consolidated statement" in statement and "₹1,200.50" in statement

    csv = b"".join(client.get("/backoffice/portfolio/", {"format": "csv"}).streaming_content).decode("utf-8-sig")
    assert book["steel"].consumer_number in csv and book["far"].consumer_number not in csv


def test_a_group_outside_the_scope_is_not_found_and_a_cre_has_no_portfolio(client, offices, book):
    kam2 = testing.staff_user("key_account_manager", offices["division2"])
    client.force_login(kam2)
    assert client.get(f"/backoffice/groups/{book['group'].pk}/").status_code == 404
    assert client.get("/backoffice/groups/987654/").status_code == 404
    client.force_login(testing.staff_user("cre", offices["division1"]))
    assert client.get("/backoffice/portfolio/").status_code == 403
