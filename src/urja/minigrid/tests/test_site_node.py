"""A mini-grid site's node on the network (issue 12): each site has its distribution point as a DT (with
the feeder of its LT bus) on its section, created with the site if none; its accounts hang on it, so
outages (servicedesk.affected_accounts) and energy accounting see them; grid connections never do; a data
migration placed the accounts opened before without a DT."""

import importlib
from decimal import Decimal

import pytest
from django.apps import apps as django_apps

from urja.core.errors import DomainError
from urja.core.models import AuditEvent
from urja.customers import services as customers
from urja.customers.models import Account
from urja.customers.selectors import section_transformers
from urja.demo.testing import domestic_account
from urja.minigrid import services
from urja.network import services as network
from urja.network.models import DistributionTransformer, Feeder, MiniGridSite
from urja.servicedesk.selectors import affected_accounts

pytestmark = pytest.mark.django_db

migration = importlib.import_module("urja.minigrid.migrations.0003_place_site_accounts_on_the_site_node")


def test_a_new_customer_hangs_on_the_site_s_dt_created_with_the_site(customer, site):
    site.refresh_from_db()
    dt = site.transformer
    assert dt.code == "MG-MG01" and dt.feeder.code == "MG-MG01" and dt.feeder.office == site.office
    assert dt.capacity_kva == Decimal("30.0") and dt.feeder.voltage_kv == Decimal("0.40")
    account = customer.account
    assert (account.transformer, account.feeder) == (dt, dt.feeder)
    assert (account.bill_cycle, account.route) == ("MG", "MG01-R01")
    assert list(affected_accounts(transformer=dt)) == [account]  # an outage of the site reaches it
    assert network.site_transformer(site=site) == dt  # idempotent: one node per site
    assert DistributionTransformer.objects.filter(code__startswith="MG-").count() == 1


def test_create_minigrid_site_gives_the_node_at_once(offices):
    site = network.create_minigrid_site(
        code="MG02", name="Jashipur mini-grid", office=offices["section1"], village="Jashipur",
        district="Mayurbhanj", capacity_kw=Decimal("12"), operator="Test operator",
    )  # fmt: skip
    assert site.transformer.code == "MG-MG02"
    assert AuditEvent.objects.filter(action="network.minigrid_node").count() == 1


def test_an_account_opened_without_a_dt_is_placed_on_the_node_when_enrolled(site, offices):
    account = domestic_account(offices["section1"])
    Account.objects.filter(pk=account.pk).update(
        minigrid_site=site, category="minigrid", package_code="MG-SOLAR-50W", bill_cycle="MG", route="MG01-R01",
        transformer=None, feeder=None,
    )  # fmt: skip
    account.refresh_from_db()
    customer = services.enrol_account(account=account)
    customer.account.refresh_from_db()
    assert customer.account.transformer.code == "MG-MG01"
    assert AuditEvent.objects.filter(action="account.placed", object_id=str(account.pk)).count() == 1
    services.enrol_account(account=customer.account)  # again: nothing more
    assert AuditEvent.objects.filter(action="account.placed", object_id=str(account.pk)).count() == 1


def test_grid_connections_never_hang_on_a_site_s_node(customer, site, offices):
    dt = MiniGridSite.objects.get(pk=site.pk).transformer
    assert dt not in section_transformers(offices["section1"])  # not among the choices
    grid = domestic_account(offices["section1"])
    before = (grid.transformer_id, grid.bill_cycle, grid.route)
    with pytest.raises(DomainError) as err:
        customers.place_account(actor=None, channel="system", account=grid, transformer=dt, bill_cycle="C01",
                                route="R-TEST")  # fmt: skip
    assert err.value.code == "transformer_of_minigrid"
    grid.refresh_from_db()
    assert (grid.transformer_id, grid.bill_cycle, grid.route) == before


def test_the_data_migration_places_the_accounts_opened_without_a_dt(site, offices):
    account = domestic_account(offices["section1"])
    other = domestic_account(offices["section1"])
    Account.objects.filter(pk=account.pk).update(minigrid_site=site, transformer=None, feeder=None)
    other_dt = other.transformer_id
    migration.place(django_apps, None)
    site.refresh_from_db()
    account.refresh_from_db()
    assert site.transformer.code == "MG-MG01"
    assert account.transformer == site.transformer and account.feeder == site.transformer.feeder
    other.refresh_from_db()
    assert other.transformer_id == other_dt  # a grid account is left where it is
    migration.place(django_apps, None)  # rerun: one node, nothing moved
    assert Feeder.objects.filter(code="MG-MG01").count() == 1
