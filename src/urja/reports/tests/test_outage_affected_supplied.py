"""An outage affects the accounts on its DT (feeder) that have a supply to lose: a new connection's
pending account and a permanently disconnected one are not counted, told or compensated (found by
`urja simulate`: ₹1,400 credited for an outage to a connection closed a month before)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from urja.billing.models import LedgerEntry
from urja.customers import services as customers
from urja.reports.outages import compensate_outage
from urja.reports.tests import factories as f
from urja.servicedesk import catalogue
from urja.servicedesk import services as desk
from urja.servicedesk.selectors import affected_accounts


@pytest.fixture
def dt_accounts(offices):
    catalogue.load_file("servicedesk/oerc_sop.toml")
    dt = f.dt(f.feeder(offices["section1"]))
    supplied, closed, pending = (f.account(offices["section1"], transformer=dt) for _ in range(3))
    customers.change_account_status(
        actor=None, channel="system", account=closed, status="perm_disconnected", reason="consumer left"
    )
    pending.status = "pending"  # a new connection's account: opened at its demand note, no supply yet
    pending.save(update_fields=["status"])
    return dt, supplied, closed, pending


@pytest.mark.django_db
def test_accounts_without_supply_are_not_affected(dt_accounts):
    from urja.customers.models import Account

    dt, supplied = dt_accounts[:2]
    assert Account.objects.filter(transformer=dt).count() == 3
    assert list(affected_accounts(transformer=dt)) == [supplied]
    assert list(affected_accounts(feeder=dt.feeder)) == [supplied]


@pytest.mark.django_db
def test_a_late_restoration_compensates_only_the_supplied_accounts(dt_accounts):
    dt, supplied = dt_accounts[:2]
    start = timezone.now() - timedelta(hours=30)
    outage = desk.declare_outage(
        actor=None, channel="system", kind="unplanned", reason="DT fuse", starts_at=start, transformer=dt
    )
    assert outage.affected_accounts == 1
    outage = desk.restore_outage(actor=None, channel="system", outage=outage, restored_at=start + timedelta(hours=24))
    assert compensate_outage(outage=outage) == 1
    credited = set(
        LedgerEntry.objects.filter(reference_type="outage", reference_id=str(outage.pk)).values_list(
            "account_id", flat=True
        )
    )
    assert credited == {supplied.pk}
