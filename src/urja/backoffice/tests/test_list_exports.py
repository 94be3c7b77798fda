"""Issue 15 part 5 across the apps: every staff list page answers ?format=csv and ?format=xlsx with the
same header, a row of the user's scope, and never a row of another division (core.listing's one entry
point). One division-1 manager asks every page; a twin record sits in division 2 each time."""

from __future__ import annotations

import csv
import io
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from urja.core.tests.xlsx import read_rows
from urja.demo import testing

MINE, THEIRS = "Mine", "Theirs"  # every name in division 1 starts with MINE, in division 2 with THEIRS


def _ht(section, name):
    return testing.domestic_account(
        section, name=name, mobile="", load="150", supply_type="ht", unit="kVA", category="industrial",
        sub_category="large",
    )  # fmt: skip


def _bill(account, number: str, kind: str = "bill"):
    from urja.billing.models import Bill

    day = date(2025, 7, 2)
    return Bill.objects.create(
        account=account, kind=kind, bill_number=number, period_start=date(2025, 6, 1), period_end=date(2025, 6, 30),
        bill_date=day, due_date=day + timedelta(days=7), tariff_versions="1", sanctioned_load=account.sanctioned_load,
        total=Decimal("1234.50"), net_payable=Decimal("1234.50"), created_at=timezone.now(),
    )  # fmt: skip


def _twins(offices, make) -> dict:
    """`make(who, n, section, division)` for division 1 (MINE) and division 2 (THEIRS); their results by who."""
    return {who: make(who, n, offices[f"section{n}"], offices[f"division{n}"]) for n, who in ((1, MINE), (2, THEIRS))}


def _account(who, n, section, division):
    return testing.domestic_account(section, name=f"{who} Behera", mobile=f"943701111{n}")


def _applications(w):
    from urja.connections.models import Application

    def make(who, n, section, division):
        account = _account(who, n, section, division)
        Application.objects.create(
            number=f"NC{n}0001", channel="care_centre", consumer=account.consumer, mobile=f"+91943701111{n}",
            premises_address="Station Road", latitude=Decimal("21.5"), longitude=Decimal("86.9"),
            area_class="municipal", area="urban", section=section, office_path=section.path, supply_type="lt_1ph",
            load=Decimal("2"), category="domestic", application_fee=Decimal("100.00"), fee_order="test",
            registered_at=timezone.now(),
        )  # fmt: skip

    _twins(w["offices"], make)


def _changes(w):
    from urja.connections.models import ChangeRequest

    def make(who, n, section, division):
        account = _account(who, n, section, division)
        ChangeRequest.objects.create(
            number=f"CR{n}0001", kind="load_change", account=account, office_path=account.office_path,
            channel="care_centre", requested_at=timezone.now(),
        )  # fmt: skip

    _twins(w["offices"], make)


def _orders(w):
    from urja.connections.models import Order

    def make(who, n, section, division):
        account = _account(who, n, section, division)
        Order.objects.create(
            number=f"DO{n}0001", kind="disconnect", account=account, office_path=account.office_path,
            reason="non_payment", account_status="disconnected", created_at=timezone.now(),
        )  # fmt: skip

    _twins(w["offices"], make)


def _requests(w, *, awards: bool = False):
    from urja.servicedesk import catalogue
    from urja.servicedesk import services as desk
    from urja.servicedesk.models import CompensationAward

    catalogue.load_file("servicedesk/oerc_sop.toml")

    def make(who, n, section, division):
        account = _account(who, n, section, division)
        request = desk.register_request(
            actor=None, channel="call_centre", type_code="no_power_supply", subtype_code="no_power_supply",
            account=account,
        ).request  # fmt: skip
        if awards:
            CompensationAward.objects.create(
                request=request, account=account, division=division, amount=Decimal("200.00"), units_late=4,
                basis="hour", month=timezone.localdate().replace(day=1), created_at=timezone.now(),
            )  # fmt: skip
        w[f"{who}-request"] = request.number

    _twins(w["offices"], make)


def _runs(w):
    from urja.billing import services as billing
    from urja.billing.models import BillException, BillRun, BillRunPartition

    run = BillRun.objects.create(
        cycle=billing.get_cycle("C01"), period="2025-06", period_start=date(2025, 6, 1),
        period_end=date(2025, 6, 30), bill_date=date(2025, 7, 1), due_date=date(2025, 7, 8),
    )  # fmt: skip

    def make(who, n, section, division):
        BillRunPartition.objects.create(run=run, division=division, division_path=division.path)
        account = _account(who, n, section, division)
        BillException.objects.create(run=run, account=account, kind="no_reading", message=f"{who} has no reading")

    _twins(w["offices"], make)
    # a run of division 2 alone never shows to division 1
    other = BillRun.objects.create(
        cycle=billing.get_cycle("C02"), period="2025-05", period_start=date(2025, 5, 1),
        period_end=date(2025, 5, 31), bill_date=date(2025, 6, 1), due_date=date(2025, 6, 8),
    )  # fmt: skip
    division2 = w["offices"]["division2"]
    BillRunPartition.objects.create(run=other, division=division2, division_path=division2.path)
    w["run"], w["other_run"] = f"{run.pk}", f"{other.pk}"


def _revisions(w):
    from urja.billing.models import BillRevision

    def make(who, n, section, division):
        bill = _bill(_account(who, n, section, division), f"B{n}0001")
        BillRevision.objects.create(bill=bill, kind="credit_note", amount=Decimal("10.00"), reason=f"{who} wrong read",
                                    proposed_by=w["manager"])  # fmt: skip

    _twins(w["offices"], make)


def _closed(w):
    from urja.customers.models import Account

    def make(who, n, section, division):
        closed = testing.domestic_account(section, name=f"{who} Closed", mobile="")  # awaiting its final bill
        billed = testing.domestic_account(section, name=f"{who} Billed", mobile="")
        Account.objects.filter(pk__in=[closed.pk, billed.pk]).update(status="perm_disconnected")
        _bill(billed, f"F{n}0001", kind="final")

    _twins(w["offices"], make)


def _accounts(w):
    _twins(w["offices"], _account)


def _outreach(w):
    from urja.outreach.models import EventIssue, OutreachEvent

    def make(who, n, section, division):
        event = OutreachEvent.objects.create(
            kind="rwa_meeting", office=section, office_path=section.path, held_on=timezone.localdate(),
            venue=f"{who} Community Hall",
        )  # fmt: skip
        EventIssue.objects.create(event=event, text=f"{who} street light", owner=w["manager"],
                                  due_on=timezone.localdate() + timedelta(days=15))  # fmt: skip

    _twins(w["offices"], make)


def _key_accounts(w):
    from urja.customers.models import Account, AccountGroup

    group = AccountGroup.objects.create(name="Water Resources Department", kind="government")

    def make(who, n, section, division):
        Account.objects.filter(pk=_ht(section, f"{who} Steel Ltd").pk).update(group=group)

    _twins(w["offices"], make)
    w["group"] = f"{group.pk}"


def _minigrid(w):
    from urja.minigrid import services as minigrid
    from urja.network.models import MiniGridSite

    def make(who, n, section, division):
        site = MiniGridSite.objects.create(
            code=f"MG0{n}", name=f"{who} mini-grid", office=section, village="Kaptipada", district="Mayurbhanj",
            capacity_kw=Decimal("30"), operator="Test operator",
        )  # fmt: skip
        operator = testing.staff_user("mgoperator", section)
        customer = minigrid.add_customer(actor=operator, channel="backoffice", site=site, name=f"{who} Hembram",
                                         mobile="", address="Kaptipada", package_code="MG-SOLAR-50W")  # fmt: skip
        minigrid.request_package_change(actor=operator, channel="backoffice", customer=customer,
                                        to_package="MG-SOLAR-100W")  # fmt: skip
        minigrid.sell_appliance(actor=operator, channel="backoffice", customer=customer, appliance=f"{who} lamp",
                                price="900", instalments=3, first_due=date(2026, 1, 10))  # fmt: skip
        w[f"{who}-operator"] = operator

    _twins(w["offices"], make)


def _messages(w):
    from urja.notifications import services as notifications

    def make(who, n, section, division):
        account = _account(who, n, section, division)
        bill = {"bill_number": f"B{n}0001", "amount": "1500", "due_date": date(2025, 7, 15)}
        notifications.notify(event="bill.issued", consumer=account.consumer, account=account, context=bill,
                             idempotency_key=f"bill-{n}")  # fmt: skip
        w[f"{who}-account"] = account.consumer_number

    _twins(w["offices"], make)


def _feeders(w):
    from urja.network.models import Feeder

    def make(who, n, section, division):
        Feeder.objects.create(code=f"F{n}{section.pk}", name=f"{who} 11 kV feeder", office=section)

    _twins(w["offices"], make)


# (page, query, what to build, first header cell, a cell of the division-1 row, a cell only division 2 has)
PAGES = [
    ("/connections/", {"status": "open"}, _applications, "Number", "NC10001", "NC20001"),
    ("/connections/changes/", {}, _changes, "Number", "CR10001", "CR20001"),
    ("/connections/orders/", {}, _orders, "Number", "DO10001", "DO20001"),
    ("/servicedesk/", {"status": ""}, _requests, "Number", "{Mine-request}", "{Theirs-request}"),
    ("/servicedesk/compensation/", {}, lambda w: _requests(w, awards=True), "Request", "{Mine-request}",
     "{Theirs-request}"),
    ("/billing/runs/", {}, _runs, "Run", "2025-06", "2025-05"),  # periods: the division-2 run's is May
    ("/billing/runs/{run}/", {}, _runs, "consumer_number", "Mine has no reading", "Theirs has no reading"),
    ("/billing/revisions/", {}, _revisions, "bill", "B10001", "B20001"),
    ("/billing/deposits/", {}, _accounts, "consumer_number", "Mine Behera", "Theirs Behera"),
    ("/billing/final-bills/", {}, _closed, "consumer_number", "Mine Closed", "Theirs Closed"),
    ("/billing/final-bills/", {"list": "issued"}, _closed, "bill", "F10001", "F20001"),
    ("/outreach/", {}, _outreach, "id", "Mine Community Hall", "Theirs Community Hall"),
    ("/outreach/issues/", {}, _outreach, "id", "Mine street light", "Theirs street light"),
    ("/backoffice/portfolio/", {}, _key_accounts, "consumer_number", "Mine Steel Ltd", "Theirs Steel Ltd"),
    ("/backoffice/groups/{group}/", {}, _key_accounts, "consumer_number", "Mine Steel Ltd", "Theirs Steel Ltd"),
    ("/minigrid/", {}, _minigrid, "Customer ID", "Mine Hembram", "Theirs Hembram"),
    # the mini-grid lists are the user's site's (the one in their office subtree): the division-1 manager's
    # is MG01; test_a_site_list_is_its_site_s_own holds the site rule for the operators themselves
    ("/minigrid/package-changes/", {}, _minigrid, "Number", "Mine Hembram", "Theirs Hembram"),
    ("/minigrid/appliances/plans/", {}, _minigrid, "Sold", "Mine lamp", "Theirs lamp"),
    ("/notifications/outbox/", {}, _messages, "Queued", "{Mine-account}", "{Theirs-account}"),
    ("/metering/route-book/", {"cycle": "all"}, _accounts, "Route", "Mine Behera", "Theirs Behera"),
    ("/reports/operations/", {"table": "reliability"}, _feeders, "Feeder", "Mine 11 kV feeder", "Theirs 11 kV feeder"),
]  # fmt: skip


def _fill(text: str, w: dict) -> str:
    return text.format(**{k: v for k, v in w.items() if isinstance(v, str)}) if "{" in text else text


def _body(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


def _rows(response, fmt: str) -> list[list[str]]:
    assert response.status_code == 200, response.status_code
    if fmt == "csv":
        assert response["Content-Type"].startswith("text/csv")
        return list(csv.reader(io.StringIO(_body(response).decode("utf-8-sig"))))
    assert response["Content-Type"] == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    return [["" if v is None else (str(int(v)) if isinstance(v, float) and v.is_integer() else str(v)) for v in row]
            for row in read_rows(_body(response))]  # fmt: skip


@pytest.mark.parametrize(("page", "query", "build", "first", "mine", "theirs"), PAGES,
                         ids=[p[0] + "".join(f"?{k}={v}" for k, v in p[1].items()) for p in PAGES])  # fmt: skip
def test_every_list_exports_its_scope_as_csv_and_excel(client, offices, page, query, build, first, mine, theirs):
    w = {"offices": offices, "manager": testing.staff_user("manager", offices["division1"])}
    build(w)
    client.force_login(w["manager"])
    url, mine, theirs = _fill(page, w), _fill(mine, w), _fill(theirs, w)
    for fmt in ("csv", "xlsx"):
        rows = _rows(client.get(url, {**query, "format": fmt}), fmt)
        assert rows[0][0] == first, (url, fmt, rows[0])
        assert any(mine in cell for row in rows[1:] for cell in row), (url, fmt, rows[:3])
        assert not any(theirs in cell for row in rows for cell in row), (url, fmt)
    # the page itself offers both downloads, keeping its filters
    html = client.get(url, query).content.decode()
    assert "format=csv" in html and "format=xlsx" in html, url
    # the twin is there and exportable: division 2's manager downloads it (so its absence above is the scope)
    client.force_login(testing.staff_user("manager", offices["division2"]))
    for fmt in ("csv", "xlsx"):
        rows = _rows(client.get(url, {**query, "format": fmt}), fmt)
        assert any(theirs in cell for row in rows[1:] for cell in row), (url, fmt, "division 2", rows[:3])


def test_a_run_the_console_does_not_list_answers_like_one_that_does_not_exist(client, offices):
    """The division-2 run is not in the division-1 manager's console: its page (and its download) is the
    404 of a run number that was never used, not a page with the run's figures and no rows."""
    w = {"offices": offices, "manager": testing.staff_user("manager", offices["division1"])}
    _runs(w)
    client.force_login(w["manager"])
    assert client.get(f"/billing/runs/{w['run']}/").status_code == 200
    missing = client.get("/billing/runs/999999/")
    assert missing.status_code == 404
    for query in ({}, {"format": "xlsx"}):
        theirs = client.get(f"/billing/runs/{w['other_run']}/", query)
        assert theirs.status_code == 404 and b"2025-05" not in theirs.content  # nothing of the run shows


@pytest.mark.parametrize(("page", "first", "mine", "theirs"), [
    ("/minigrid/package-changes/", "Number", "Mine Hembram", "Theirs Hembram"),
    ("/minigrid/appliances/plans/", "Sold", "Mine lamp", "Theirs lamp"),
])  # fmt: skip
def test_a_site_list_is_its_site_s_own(client, offices, page, first, mine, theirs):
    """The mini-grid lists belong to a site, not to an office filter: each site's operator downloads their
    own site's rows and never the other site's; a user with no site in their office subtree gets the 404
    of a page that does not exist, in both formats."""
    w = {"offices": offices, "manager": testing.staff_user("manager", offices["division1"])}
    _minigrid(w)
    for operator, shown, hidden in ((w[f"{MINE}-operator"], mine, theirs), (w[f"{THEIRS}-operator"], theirs, mine)):
        client.force_login(operator)
        for fmt in ("csv", "xlsx"):
            rows = _rows(client.get(page, {"format": fmt}), fmt)
            assert rows[0][0] == first, (page, fmt, rows[0])
            assert any(shown in cell for row in rows[1:] for cell in row), (page, fmt, rows[:3])
            assert not any(hidden in cell for row in rows for cell in row), (page, fmt)
    from urja.network.services import create_office

    no_site = create_office(code="TXNOSITE", name="Section without a site", level="section",
                            parent=offices["subdivision1"])  # fmt: skip
    client.force_login(testing.staff_user("mgoperator", no_site))
    for query in ({}, {"format": "csv"}, {"format": "xlsx"}):
        answer = client.get(page, query)
        assert answer.status_code == 404 and b"Mine" not in _body(answer), (page, query)


def test_the_public_tariff_list_exports_the_filtered_schedules(client, db):
    """The tariff browser is public and belongs to no office: anyone downloads it, and the CSV and the
    Excel hold exactly the schedules of the filter (irrigation here; the domestic ones are in the whole
    list and never in the filtered one)."""
    from urja.tariffs import services as tariffs
    from urja.tariffs.models import TariffVersion

    tariffs.load_all()
    irrigation = set(TariffVersion.objects.filter(category="irrigation").values_list("schedule_code", flat=True))
    assert "oerc.lt.irrigation" in irrigation and "oerc.lt.domestic" not in irrigation
    for fmt in ("csv", "xlsx"):
        every = _rows(client.get("/tariffs/", {"format": fmt}), fmt)
        rows = _rows(client.get("/tariffs/", {"category": "irrigation", "format": fmt}), fmt)
        assert rows[0][:5] == every[0][:5] == ["Order", "Regulator", "Order reference", "Order date", "Schedule code"]
        assert len(rows) - 1 == TariffVersion.objects.filter(category="irrigation").count(), fmt
        assert {row[4] for row in rows[1:]} == irrigation and {row[6] for row in rows[1:]} == {"irrigation"}, fmt
        assert "oerc.lt.domestic" in {row[4] for row in every[1:]}, fmt
