"""Reliability indices, compensation paid and arrears ageing (issue 14.6)."""

from datetime import timedelta
from decimal import Decimal as D

from django.utils import timezone

from urja.billing.ledger import post_entry
from urja.core import testing
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
