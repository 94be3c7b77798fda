"""Reliability indices, compensation paid and arrears ageing (issue 14.6)."""

from datetime import timedelta
from decimal import Decimal as D

from django.utils import timezone

from urja.billing.ledger import post_entry
from urja.customers.models import Account
from urja.demo import testing
from urja.network.models import Feeder
from urja.reports import operations as ops
from urja.reports.operations import Interruption
from urja.reports.tests import factories as f
from urja.servicedesk import catalogue
from urja.servicedesk import services as desk


def test_saifi_saidi_by_hand():
    m = timedelta(minutes=1)
    interruptions = [
        Interruption(1, 10, 90 * m), Interruption(1, 10, 90 * m), Interruption(1, 11, 30 * m),
        Interruption(1, 12, 5 * m),  # exactly five minutes: momentary (IEEE 1366: sustained is longer)
        Interruption(2, 20, 600 * m), Interruption(2, 20, 5 * m + timedelta(seconds=1)),
    ]  # fmt: skip
    got = ops.reliability(interruptions)
    assert got[1] == ops.Totals(2, 3, 210 * m) and got[2] == ops.Totals(1, 2, 605 * m + timedelta(seconds=1))
    # feeder 1 serves 200: SAIFI 3/200, SAIDI 210/200 min; feeder 3 serves nobody: no index, no ÷ 0
    assert (ops.saifi(3, 200), ops.saidi(210 * m, 200)) == (D("0.015"), D("1.1"))
    assert ops.saifi(0, 0) is None and ops.saidi(timedelta(0), 0) is None
    assert ops.customer_minutes(605 * m + timedelta(seconds=1)) == D("605.0")


def _row(outage, account, *, failed, restored=None, supplied=False):
    from urja.servicedesk.models import OutageAccount

    return OutageAccount.objects.create(outage=outage, account_id=account.pk, transformer_id=account.transformer_id,
                                        failed_at=failed, restored_at=restored, supplied=supplied)  # fmt: skip


def _outage(fd, *, number, start, end=None, dt=None, status="restored"):
    from urja.servicedesk.models import Outage

    return Outage.objects.create(number=number, kind="unplanned", status=status, feeder=fd, transformer=dt,
                                 office=fd.office, reason="fault", starts_at=start, restored_at=end)  # fmt: skip


def test_indices_come_from_each_accounts_own_interruption(offices):
    """Hand-computed: the stored rows, not the network now, with each account's own failure and restoration."""
    sec = offices["section1"]
    fd, empty = f.feeder(sec, code="FA"), f.feeder(sec, code="FB")
    dt = f.dt(fd)
    acc = [f.account(sec, transformer=dt) for _ in range(4)]
    off = f.account(sec, feeder_=fd)
    Account.objects.filter(pk=off.pk).update(status="temp_disconnected")  # not served: no supply to lose
    t0 = timezone.now() - timedelta(days=2)
    h = timedelta(hours=1)
    a = _outage(fd, number="O1", start=t0, end=t0 + 2 * h, dt=dt)
    _row(a, acc[0], failed=t0)  # restored with the outage: 120 min
    _row(a, acc[1], failed=t0 + timedelta(minutes=10), restored=t0 + h)  # own last gasp and restore: 50 min
    _row(a, acc[2], failed=t0, restored=t0, supplied=True)  # its meter proved supply: never out
    _row(a, acc[3], failed=t0, restored=t0 + timedelta(minutes=4))  # back in 4 min: momentary
    b = _outage(fd, number="O2", start=t0 + 5 * h, end=t0 + 8 * h)  # the whole feeder
    _row(b, acc[3], failed=t0 + 5 * h)  # 180 min
    # a consumer who moved off the DT since still counts where the outage stored it
    acc[0].transformer = f.dt(fd)
    acc[0].save(update_fields=["transformer"])
    _row(_outage(fd, number="O3", start=t0, status="active"), acc[0], failed=t0)  # not over: not counted
    _row(_outage(fd, number="O4", start=t0 - timedelta(days=40), end=t0 - timedelta(days=39)), acc[1], failed=t0)
    feeders = Feeder.objects.filter(pk__in=[fd.pk, empty.pk])
    rows = ops.feeder_reliability(feeders=feeders, since=t0 - timedelta(days=1), until=t0 + timedelta(days=1))
    got = {r["feeder"].code: r for r in rows}
    # 4 served; 3 customer interruptions (120 + 50 + 180 = 350 min) over 2 outages
    assert {k: got["FA"][k] for k in ("consumers", "interruptions", "interrupted", "customer_minutes")} == {
        "consumers": 4, "interruptions": 2, "interrupted": 3, "customer_minutes": D("350.0")
    }  # fmt: skip
    assert (got["FA"]["saifi"], got["FA"]["saidi"]) == (D("0.750"), D("87.5"))
    assert (got["FB"]["consumers"], got["FB"]["saifi"], got["FB"]["saidi"]) == (0, None, None)
    total = ops.scope_reliability(rows)
    assert (total["consumers"], total["interrupted"], total["saifi"], total["saidi"]) == (4, 3, D("0.750"), D("87.5"))
    header, lines = ops.reliability_export(rows)
    assert header[-2:] == ["SAIFI", "SAIDI (min)"]
    assert lines[-1] == ["Total", "", 4, 2, 3, D("350.0"), D("0.750"), D("87.5")]


def test_the_indices_are_a_few_queries_whatever_the_feeders(offices, django_assert_max_num_queries):
    sec = offices["section1"]
    for _ in range(6):
        fd = f.feeder(sec)
        f.account(sec, feeder_=fd)
    now = timezone.now()
    with django_assert_max_num_queries(4):  # the rows grouped, the consumers served, the feeders, the setting
        rows = ops.feeder_reliability(feeders=Feeder.objects.all(), since=now - timedelta(days=1), until=now)
    assert len(rows) == 6


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


def test_the_page_groups_digits_the_indian_way_and_totals_the_office(client, offices):
    sec = offices["section1"]
    fd = f.feeder(sec, code="FG")
    dt = f.dt(fd)
    acc = [f.account(sec, transformer=dt) for _ in range(3)]
    start = timezone.now() - timedelta(days=29)
    outage = _outage(fd, number="OG", start=start, end=start + timedelta(minutes=40_000), dt=dt)
    for a in acc:
        _row(outage, a, failed=start)
    client.force_login(testing.staff_user("manager", offices["division1"]))
    span = {"from": (timezone.localdate() - timedelta(days=30)).isoformat(), "to": timezone.localdate().isoformat()}
    html = client.get("/reports/operations/", span).content.decode()
    # 3 consumers × 40,000 min = 1,20,000 consumer minutes; SAIDI 40,000 min; SAIFI 1
    total = html[html.index('id="reliability-total"') :].split("</tr>")[0]
    assert ">1,20,000.0<" in total and ">40,000.0<" in total and ">1.000<" in total
    lines = client.get("/reports/operations/", {**span, "format": "csv"}).content.decode().splitlines()
    assert lines[0].startswith("Feeder,Name,Consumers,Interruptions,Consumers interrupted,Consumer minutes")
    assert lines[-1] == "Total,,3,1,3,120000.0,1.000,40000.0"
