"""Reliability indices, compensation paid and arrears ageing (issue 14.6)."""

from datetime import timedelta
from decimal import Decimal as D

from django.utils import timezone

from urja.billing.ledger import post_entry
from urja.demo import testing
from urja.reports import operations as ops
from urja.reports.operations import Interruption
from urja.reports.tests import factories as f
from urja.servicedesk import catalogue
from urja.servicedesk import services as desk


def test_saifi_saidi_by_hand():
    served = {1: 200, 2: 50, 3: 0}
    got = ops.reliability(
        served,
        [Interruption(1, 200, 90), Interruption(1, 40, 30), Interruption(1, 200, 3), Interruption(2, 50, 600),
         Interruption(3, 0, 60)],
    )  # fmt: skip
    # feeder 1: (200 + 40) / 200 = 1.2; (200×90 + 40×30) / 200 = 96 min; the 3-minute blip is not sustained
    assert got[1] == (2, D("1.200"), D("96.0"))
    assert got[2] == (1, D("1.000"), D("600.0"))
    assert got[3] == (1, None, None)  # serves nobody: no index, no division by zero


def test_operations_page(client, offices):
    catalogue.load_file("servicedesk/oerc_sop.toml")
    sec = offices["section1"]
    fd = f.feeder(sec)
    dt = f.dt(fd)
    accounts = [f.account(sec, transformer=dt) for _ in range(3)] + [f.account(sec, feeder_=fd)]
    now = timezone.now()
    outage = desk.declare_outage(actor=None, channel="system", kind="unplanned", reason="DT fuse",
                                 transformer=dt, starts_at=now - timedelta(hours=3))  # fmt: skip
    desk.restore_outage(actor=None, channel="system", outage=outage, restored_at=now - timedelta(hours=1))
    today = timezone.localdate()
    post_entry(account=accounts[0], entry_type="bill_charge", amount="1000", description="bill",
               due_date=today - timedelta(days=40), posted_at=now - timedelta(days=55))  # fmt: skip
    post_entry(account=accounts[0], entry_type="payment", amount="-300", description="paid",
               posted_at=now - timedelta(days=10))  # fmt: skip
    post_entry(account=accounts[1], entry_type="bill_charge", amount="500", description="bill",
               due_date=today + timedelta(days=5), posted_at=now - timedelta(days=2))  # fmt: skip
    client.force_login(testing.staff_user("manager", offices["division1"]))
    since = (today - timedelta(days=1)).isoformat()
    html = client.get("/reports/operations/", {"from": since, "to": today.isoformat()}).content.decode()
    # 3 of the feeder's 4 consumers out for 120 min: SAIFI 0.75, SAIDI 90 min
    assert fd.code in html and "0.750" in html and "90.0" in html
    assert "₹700.00" in html and "₹500.00" in html  # 31–60 days and current
    csv = client.get("/reports/operations/", {"from": since, "to": today.isoformat(), "format": "csv"}).content
    assert csv.decode().splitlines()[1].startswith(f"{fd.code},")
    other = testing.staff_user("manager", offices["division2"])
    client.force_login(other)
    assert fd.code not in client.get("/reports/operations/").content.decode()


def _application(account, number: str, status: str, *, due, cap):
    from urja.connections.models import Application

    sec = account.section if hasattr(account, "section") else None
    return Application.objects.create(
        number=number, status=status, channel="office", consumer=account.consumer, mobile="+919437012345",
        premises_address="x", latitude=0, longitude=0, area_class="urban", area="urban", section=sec,
        office_path=sec.path, supply_type="lt_1ph", load=2, category="domestic", application_fee=0,
        fee_order="t", registered_at=timezone.now() - timedelta(days=40), connection_due_at=due, cap_due_at=cap,
    )  # fmt: skip


def test_connections_pending_and_prepaid_panels(client, offices):
    from urja.connections.models import ApplicationStatus as S
    from urja.payments.models import PrepaidWallet

    catalogue.load_file("servicedesk/oerc_sop.toml")
    sec = offices["section1"]
    a = testing.domestic_account(sec)
    now = timezone.now()
    past, future = now - timedelta(days=1), now + timedelta(days=5)
    _application(a, "NC1", S.REGISTERED, due=future, cap=future)
    _application(a, "NC2", S.DN_PAID, due=past, cap=future)
    _application(a, "NC3", S.DN_PAID, due=past, cap=past)
    _application(a, "NC4", S.ENERGIZED, due=past, cap=past)  # closed: not pending
    manager = testing.staff_user("manager", offices["division1"])
    got = ops.connections_pending(user=manager, now=now)
    assert (got["open"], got["late"], got["past_cap"]) == (3, 2, 1)
    assert got["on_time_pct"] == 33.3
    assert {r["status"]: r["open"] for r in got["rows"]}[S.DN_PAID] == 2
    other = testing.staff_user("manager", offices["division2"])
    empty = ops.connections_pending(user=other, now=now)
    assert empty["open"] == 0 and empty["on_time_pct"] is None  # nobody pending: no ÷ 0

    b = testing.domestic_account(sec, name="Prepaid One", mobile="9437000001")
    c = testing.domestic_account(sec, name="Prepaid Two", mobile="9437000002")
    PrepaidWallet.objects.create(account=b)
    PrepaidWallet.objects.create(account=c, supply="disconnected", last_command="disconnect",
                                 last_command_at=now - timedelta(hours=2))  # fmt: skip
    post_entry(account=b, entry_type="payment", amount="-250", description="recharge", posted_at=now)
    post_entry(account=c, entry_type="bill_charge", amount="40", description="daily charge", posted_at=now)
    from urja.customers.models import Account

    pre = ops.prepaid_summary(
        accounts=Account.objects.all(), since=now - timedelta(days=1), until=now + timedelta(hours=1)
    )
    assert (pre["wallets"], pre["connected"], pre["disconnected"]) == (2, 1, 1)
    assert pre["balance_held"] == D("250.00") and pre["debt"] == D("40.00") and pre["in_debt"] == 1
    assert pre["remote_disconnects"] == 1

    client.force_login(manager)
    html = client.get("/reports/operations/").content.decode()
    assert 'id="pending"' in html and 'id="prepaid"' in html and "₹250.00" in html and "33.3%" in html
    rows = client.get("/reports/operations/", {"table": "connections", "format": "csv"}).content.decode().splitlines()
    assert rows[0].startswith("Status,") and len(rows) == 5
    xlsx = client.get("/reports/operations/", {"table": "sla", "format": "xlsx"})
    assert xlsx.status_code == 200 and xlsx.content[:2] == b"PK"


def test_the_dashboard_ages_arrears_by_payments_one_definition():
    from urja.payments import ageing
    from urja.reports import operations

    assert operations.arrears_ageing is ageing.arrears_ageing and operations.age_items is ageing.age_items
