"""The outage view by feeder and DT (issue 14.4): engineers and managers of an office see the outages in
force, planned ahead and restored lately on their feeders, grouped feeder → DT, with the start and
restoration measured by the meters, the duration and who declared them; another office's are not shown."""

from datetime import timedelta

import pytest
from django.utils import timezone

from urja.demo import testing
from urja.reports.models import DetectedOutage
from urja.reports.tests import factories as f
from urja.servicedesk import catalogue
from urja.servicedesk import services as desk


@pytest.fixture
def board(offices):
    catalogue.load_file("servicedesk/oerc_sop.toml")
    engineer = testing.staff_user("engineer", offices["division1"])
    feeder = f.feeder(offices["section1"], code="FBX1")
    dt_a, dt_b = f.dt(feeder, code="DTA1"), f.dt(feeder, code="DTB1")
    for dt in (dt_a, dt_a, dt_b):
        f.account(offices["section1"], transformer=dt)
    now = timezone.now()
    # by the meters: began 50 min ago by the meters' clock, restored 8 min ago (42 min measured)
    detected = desk.declare_outage(actor=None, channel="system", kind="unplanned", reason="Detected: 2 smart meter(s)",
                                   transformer=dt_a, starts_at=now - timedelta(minutes=50))  # fmt: skip
    desk.restore_outage(actor=None, channel="system", outage=detected, restored_at=now - timedelta(minutes=8))
    DetectedOutage.objects.create(outage=detected, first_event_at=now - timedelta(minutes=50), meters_failed=2,
                                  failed_meter_ids=[1, 2], meters_restored=2, restored_at=now - timedelta(minutes=8),
                                  measured_minutes=42)  # fmt: skip
    # by hand, in force on DT B for 30 minutes
    by_hand = desk.declare_outage(actor=engineer, channel="backoffice", kind="unplanned", reason="DT fuse blown",
                                  transformer=dt_b, starts_at=now - timedelta(minutes=30))  # fmt: skip
    # planned for tomorrow on the whole feeder
    planned = desk.declare_outage(actor=engineer, channel="backoffice", kind="planned", reason="Line maintenance",
                                  feeder=feeder, starts_at=now + timedelta(days=1),
                                  expected_restore_at=now + timedelta(days=1, hours=3))  # fmt: skip
    # another division's outage, and an old one of this feeder (restored 10 days ago)
    away = f.feeder(offices["section2"], code="FAWAY")
    elsewhere = desk.declare_outage(actor=None, channel="system", kind="unplanned", reason="Far away", feeder=away,
                                    starts_at=now - timedelta(minutes=5))  # fmt: skip
    old = desk.declare_outage(actor=None, channel="system", kind="unplanned", reason="Old", transformer=dt_b,
                              starts_at=now - timedelta(days=10, hours=2))  # fmt: skip
    desk.restore_outage(actor=None, channel="system", outage=old, restored_at=now - timedelta(days=10))
    return {"engineer": engineer, "detected": detected, "by_hand": by_hand, "planned": planned,
            "elsewhere": elsewhere, "old": old, "feeder": feeder}  # fmt: skip


def _rows(html):
    import re

    return dict(re.findall(r'data-number="([^"]+)">(.*?)</tr>', html, re.S))


def test_engineer_sees_their_feeders_outages_grouped_by_feeder_and_dt(client, board):
    client.force_login(board["engineer"])
    page = client.get("/reports/outages/")
    assert page.status_code == 200
    html = page.content.decode()
    rows = _rows(html)
    assert set(rows) == {board["detected"].number, board["by_hand"].number, board["planned"].number}
    assert board["elsewhere"].number not in html and board["old"].number not in html
    assert html.index("Whole feeder") < html.index("DTA1") < html.index("DTB1")  # feeder → its DTs
    detected = rows[board["detected"].number]
    assert "42 min" in detected and "by the meters (2 smart meters)" in detected and "Restored" in detected
    by_hand = rows[board["by_hand"].number]
    assert "In force" in by_hand and "by hand" in by_hand and board["engineer"].username in by_hand
    assert "30 min" in by_hand and "so far" in by_hand
    assert "Planned" in rows[board["planned"].number] and "expected" in rows[board["planned"].number]
    assert "1 outage in force" in html
    # ?days widens the recent window: the outage restored 10 days ago appears; bad input falls back
    assert board["old"].number in client.get("/reports/outages/", {"days": "30"}).content.decode()
    assert client.get("/reports/outages/", {"days": "many"}).status_code == 200


def test_only_the_network_roles_in_the_navigation_open_it(client, offices):
    for role in ("engineer", "manager", "billing_officer", "cre", "field_agent"):
        user = testing.staff_user(role, offices["division1"])
        client.force_login(user)
        home = client.get("/backoffice/")
        assert home.status_code == 200, role
        in_nav = 'href="/reports/outages/"' in home.content.decode()  # the navigation drawn for the role
        status = client.get("/reports/outages/").status_code
        assert in_nav == (role in ("engineer", "manager"))
        assert status == (200 if in_nav else 403), role
    client.logout()
    assert client.get("/reports/outages/").status_code == 302  # to the login


def test_the_board_counts_affected_and_restored_accounts(client, board):
    client.force_login(board["engineer"])
    rows = _rows(client.get("/reports/outages/").content.decode())
    assert "2 <span" in rows[board["detected"].number] and "(2 restored)" in rows[board["detected"].number]
    assert "(0 restored)" in rows[board["by_hand"].number]
    assert f'href="/reports/outages/{board["by_hand"].number}/"' in rows[board["by_hand"].number]


def test_one_outage_lists_its_accounts_a_page_at_a_time_with_duration_award_and_complaints(client, board, offices):
    from decimal import Decimal

    from urja.core import listing
    from urja.reports import outages
    from urja.servicedesk.models import OutageAccount

    by_hand = board["by_hand"]
    dt_b = by_hand.transformer
    extra = [f.account(offices["section1"], transformer=dt_b) for _ in range(listing.PER_PAGE)]
    # accounts opened after a declaration are not its outage's: DT B is out again, with them
    desk.restore_outage(actor=None, channel="system", outage=by_hand, restored_at=timezone.now())
    complaint = desk.register_request(actor=None, channel="call_centre", type_code="no_power_supply",
                                      subtype_code="no_power_supply", account=extra[0]).request  # fmt: skip
    start = timezone.now() - timedelta(hours=6)
    outage = desk.declare_outage(actor=board["engineer"], channel="backoffice", kind="unplanned",
                                 reason="Jumper cut", transformer=dt_b, starts_at=start)  # fmt: skip
    complaint.refresh_from_db()
    assert complaint.outage_id == outage.pk
    desk.restore_outage(actor=None, channel="system", outage=outage, restored_at=start + timedelta(hours=5))
    outages.compensate_due()
    client.force_login(board["engineer"])
    html = client.get(f"/reports/outages/{outage.number}/").content.decode()
    n = 1 + len(extra)
    assert f'data-affected="{n}"' in html and f'data-restored="{n}"' in html and f'data-compensated="{n}"' in html
    assert complaint.number in html and "Complaints linked to this outage" in html
    assert html.count("data-consumer=") == listing.PER_PAGE and "page 1 of 2" in html
    # 5 h from the outage's start, 1 hour late; 52 consumers ≥ many_affected_threshold (50): Rs 25 each
    assert "300 min" in html and "₹25.00" in html
    second = client.get(f"/reports/outages/{outage.number}/", {"page": "2"}).content.decode()
    assert second.count("data-consumer=") == 1
    export = client.get(f"/reports/outages/{outage.number}/", {"format": "csv"})
    lines = b"".join(export.streaming_content).decode("utf-8-sig").strip().splitlines()
    assert lines[0].startswith("consumer_number,name,dt,meter,power_failed,restored,minutes_from_outage_start")
    assert len(lines) == 1 + n and all(line.endswith(",25.00") and ",300," in line for line in lines[1:])
    assert set(OutageAccount.objects.filter(outage=outage).values_list("award", flat=True)) == {Decimal("25.00")}
    xlsx = client.get(f"/reports/outages/{outage.number}/", {"format": "xlsx"})
    assert xlsx.status_code == 200 and xlsx["Content-Type"].startswith("application/vnd.openxmlformats")
    assert 'href="?format=xlsx"' in html
    # another office's outage answers like a nonexistent one
    assert client.get(f"/reports/outages/{board['elsewhere'].number}/").status_code == 404
    assert client.get("/reports/outages/OUT000000000/").status_code == 404
